// `vcrmctl backup verify FILE`: the real binary against archives on disk, sound and damaged.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>

#include "child.h"
#include "hostile_tar.h"
#include "temp_dir.h"
#include "vcrm/common/files.h"

namespace vcrm::upgrade {
namespace {

using namespace vcrm::upgrade::test;
namespace fs = std::filesystem;

struct CliRun {
  int exitCode = -1;
  std::string output;  // stdout and stderr
};

CliRun verifyWithCli(const fs::path& dir, const std::string& archive) {
  { std::ofstream(dir / "archive.vcrmbak", std::ios::binary) << archive; }
  { std::ofstream(dir / "passphrase") << kPassphrase << "\n"; }
  vcrm::test::SpawnOptions spawn;
  spawn.log = dir / "vcrmctl.log";
  const pid_t pid = vcrm::test::spawnLogged(
      {std::string(VCRM_BIN_DIR) + "/vcrmctl", "backup", "verify",
       (dir / "archive.vcrmbak").string(), "--passphrase-file", (dir / "passphrase").string()},
      spawn);
  int status = 0;
  if (!vcrm::test::waitExit(pid, std::chrono::seconds(60), &status)) {
    ::kill(pid, SIGKILL);
    vcrm::test::waitExit(pid, std::chrono::seconds(10), &status);
    ADD_FAILURE() << "vcrmctl did not exit";
  }
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, files::readFile(spawn.log)};
}

// An archive from an older schema than this build knows.
std::string soundArchive() {
  const auto m = typicalMembers();
  return sealBytes(archiveTar(m, m, [](json::Object& o) { o.set("schema_version", 1); }));
}

TEST(BackupCliTest, VerifyPrintsTheManifestOfASoundArchive) {
  vcrm::test::TempDir tmp;
  const CliRun run = verifyWithCli(tmp.path(), soundArchive());
  EXPECT_EQ(run.exitCode, 0) << run.output;
  const json::ObjectPtr manifest = json::parseObject(run.output);
  EXPECT_EQ(manifest->getValue<std::string>("source_serial"), "VCRM-0001-2345-6");
  EXPECT_EQ(manifest->getArray("members")->size(), typicalMembers().size());
}

TEST(BackupCliTest, VerifyRefusesADamagedArchiveSayingWhy) {
  vcrm::test::TempDir tmp;
  std::string damaged = soundArchive();
  damaged[damaged.size() / 2] = static_cast<char>(damaged[damaged.size() / 2] ^ 1);
  const CliRun run = verifyWithCli(tmp.path(), damaged);
  EXPECT_EQ(run.exitCode, 1) << run.output;
  EXPECT_NE(run.output.find("backup refused (archive_altered)"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("fails authentication"), std::string::npos) << run.output;
}

TEST(BackupCliTest, VerifyRefusesAnArchiveFromANewerSchema) {
  vcrm::test::TempDir tmp;
  const auto m = typicalMembers();
  const CliRun run = verifyWithCli(
      tmp.path(),
      sealBytes(archiveTar(m, m, [](json::Object& o) { o.set("schema_version", 9999); })));
  EXPECT_EQ(run.exitCode, 1) << run.output;
  EXPECT_NE(run.output.find("archive_too_new"), std::string::npos) << run.output;
}

}  // namespace
}  // namespace vcrm::upgrade
