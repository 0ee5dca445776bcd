// The archives on disk as the backups module lists them: an id for a serial with any check
// symbol (the serial's last symbol may be one of "*~$=U", left out of file names), found,
// listed newest first and removed; what an interrupted backup left removed at start; ids that are
// not ids refused.
#include "modules/backups/backup_store.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "temp_dir.h"
#include "vcrm/common/error.h"
#include "vcrm/common/files.h"

namespace vcrm {
namespace {

namespace fs = std::filesystem;

TEST(BackupStoreTest, ArchivesOfEverySerialAreListedFoundAndRemoved) {
  test::TempDir dir("vcrm-store");
  BackupStore store(dir.path() / "backups");
  EXPECT_EQ(fs::status(store.dir()).permissions() & fs::perms::all, fs::perms::owner_all);
  const auto t0 = std::chrono::system_clock::from_time_t(1764657000);  // 2025-12-02T06:30:00Z
  std::vector<std::string> ids;
  int i = 0;
  for (const char* check : {"Q", "*", "~", "$", "=", "U"}) {
    const std::string serial = std::string("7K3M-Q9RT-2XWB-HN4D-") + check;
    const std::string id = store.newId(serial, t0 + std::chrono::seconds(i++));
    EXPECT_EQ(id.rfind("vcrm-7K3M-Q9RT-2XWB-HN4D-2025", 0), 0u) << id;
    EXPECT_EQ(id.find_first_not_of("vcrmABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"), std::string::npos)
        << id;
    files::atomicWrite(store.archivePath(id), "archive bytes", 0600);
    BackupRecord r;
    r.id = id;
    r.createdAt = isoUtc(t0 + std::chrono::seconds(i));
    r.origin = "manual";
    store.writeRecord(r);
    EXPECT_EQ(store.get(id).id, id) << id;
    EXPECT_EQ(store.get(id).size, 13u);
    ids.push_back(id);
  }
  const auto listed = store.list();
  ASSERT_EQ(listed.size(), ids.size());
  EXPECT_EQ(listed.front().id, ids.back()) << "newest first";
  // The same second twice: the next second's name.
  EXPECT_NE(store.newId("7K3M-Q9RT-2XWB-HN4D-Q", t0), ids.front());
  for (const auto& id : ids) store.remove(id);
  EXPECT_TRUE(store.list().empty());
  for (const char* bad :
       {"", "..", "../serial", "vcrm-x-20251202T063000Z", "schedule", "vcrm-AB-2025"}) {
    EXPECT_THROW(store.get(bad), NotFound) << bad;
  }
}

TEST(BackupStoreTest, WhatAnInterruptedBackupLeftIsRemovedAtStart) {
  test::TempDir dir("vcrm-store");
  const fs::path backups = dir.path() / "backups";
  fs::create_directories(backups / ".work-vcrm-AB-20251202T063000Z");
  files::atomicWrite(backups / ".work-vcrm-AB-20251202T063000Z/vcrm.dump", "half a dump");
  files::atomicWrite(backups / "vcrm-AB-20251202T063000Z.vcrmbak.part", "half an archive");
  files::atomicWrite(backups / "vcrm-AB-20251202T062000Z.vcrmbak", "a whole one");
  BackupStore store(backups);
  EXPECT_FALSE(fs::exists(backups / ".work-vcrm-AB-20251202T063000Z"));
  EXPECT_FALSE(fs::exists(backups / "vcrm-AB-20251202T063000Z.vcrmbak.part"));
  ASSERT_EQ(store.list().size(), 1u);
  EXPECT_EQ(store.list()[0].origin, "unknown") << "no sidecar: what the file says";
  EXPECT_EQ(store.list()[0].createdAt.size(), 20u);
}

}  // namespace
}  // namespace vcrm
