// Scheduled backups. The scheduler's pass runs in the test with a clock the test sets (no real
// minutes go by) against a real vcrmd's database and files: nothing before the time of day, one
// backup when it comes (in the zone's own rules, across a daylight-saving change), none twice,
// retention pruning only scheduled archives. Through the API: the schedule's secrets are never
// shown, bad schedules are refused, and a scheduled backup whose copy off the box is refused (a
// real OpenSSH server presenting another host key than the pinned one) shows on the dashboard
// and in the list. Copies reach a real OpenSSH server byte for byte.
#include <Poco/JSON/Array.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <atomic>
#include <csignal>
#include <filesystem>

#include "api_times.h"
#include "child.h"
#include "eventually.h"
#include "modules/backups/backup_scheduler.h"
#include "moved_aside.h"
#include "sshd_process.h"
#include "temp_dir.h"
#include "vcrm/common/db.h"
#include "vcrm/common/files.h"
#include "vcrm/common/json.h"
#include "vcrm/common/version.h"
#include "vcrm/daemon/event_bus.h"
#include "vcrmd_process.h"

namespace vcrm {
namespace {

namespace fs = std::filesystem;
using test::eventually;
using test::VcrmdProcess;

constexpr const char* kPassphrase = "scheduled backups passphrase";

// A private key and public key line made by ssh-keygen.
struct KeyPair {
  std::string privateKey;
  std::string publicLine;
};
KeyPair makeKeyPair(const fs::path& dir) {
  const fs::path key = dir / "id_ed25519";
  test::SpawnOptions so;
  so.log = dir / "ssh-keygen.log";
  const pid_t pid = test::spawnLogged({"/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                                       "vcrm-test", "-f", key.string()},
                                      so);
  int status = 0;
  if (!test::waitExit(pid, std::chrono::seconds(30), &status) || status != 0) {
    throw std::runtime_error("ssh-keygen failed: " + files::readFile(so.log));
  }
  return {files::readFile(key), files::readFile(key.string() + ".pub")};
}

class BackupScheduleTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    app_ = new VcrmdProcess();
    app_->start();
  }
  static void TearDownTestSuite() {
    delete app_;
    app_ = nullptr;
  }

  // The scheduler as vcrmd composes it, on the test's clock, over a directory of its own.
  struct InProcess {
    test::TempDir dir{"vcrm-schedule"};
    std::atomic<std::int64_t> now{0};
    Logger log{LogLevel::Warn};
    EventBus bus;
    db::Pool pool;
    BackupStore store;
    BackupService service;
    BackupScheduler scheduler;

    explicit InProcess(ArchiveCopier copier)
        : pool(dsn(), 2),
          store(dir.path() / "backups"),
          service(options(), store, bus, log),
          scheduler(service, store, pool, log, std::move(copier), [this] {
            return std::chrono::system_clock::time_point(std::chrono::seconds(now.load()));
          }) {}

    void setClock(const std::string& iso) { now = static_cast<std::int64_t>(test::epochOf(iso)); }
    std::vector<BackupRecord> scheduled() {
      std::vector<BackupRecord> out;
      for (auto& r : store.list())
        if (r.origin == "scheduled") out.push_back(r);
      return out;
    }
    static std::string dsn() {
      return "host=" + db::dsnQuote((app_->stateDir() / "pgsocket").string()) +
             " port=5432 user=vcrm dbname=vcrm";
    }
    static BackupService::Options options() {
      BackupService::Options o;
      o.dsn = dsn();
      o.productVersion = vcrm::productVersion();
      o.schemaVersion = 7;
      std::string serial = files::readFile(app_->stateDir() / "serial");
      serial.erase(serial.find_last_not_of('\n') + 1);
      o.serial = serial;
      o.configFile = app_->root() / "etc/vcrm/vcrmd.conf";
      o.serialFile = app_->stateDir() / "serial";
      o.tlsCertFile = app_->stateDir() / "tls/server.crt";
      o.tlsKeyFile = app_->stateDir() / "tls/server.key";
      return o;
    }
  };

  static json::ObjectPtr schedule(const std::string& timeOfDay, const std::string& zone,
                                  int retention) {
    json::ObjectPtr o = new json::Object;
    o->set("enabled", true);
    o->set("time_of_day", timeOfDay);
    o->set("time_zone", zone);
    o->set("retention", retention);
    o->set("passphrase", kPassphrase);
    return o;
  }

  static VcrmdProcess* app_;
};
VcrmdProcess* BackupScheduleTest::app_ = nullptr;

TEST_F(BackupScheduleTest, ABackupIsMadeOnceAtTheTimeOfDayAndRetentionPrunesOnlyScheduledOnes) {
  int copies = 0;
  InProcess s(
      [&](const SftpSettings&, const fs::path&, const std::string&, std::size_t) -> std::string {
        ++copies;
        return "";
      });
  // 10:00 in Paris is 09:00 UTC on 28 March 2026, and 08:00 UTC from the 29th (summer time).
  s.setClock("2026-03-28T08:58:30Z");
  auto described = s.scheduler.update(schedule("10:00", "Europe/Paris", 2));
  EXPECT_EQ(described->getValue<std::string>("next_run"), "2026-03-28T09:00:00Z");
  s.scheduler.pass();
  EXPECT_TRUE(s.scheduled().empty()) << "nothing is due a minute and a half before the time";
  s.setClock("2026-03-28T08:59:59Z");
  s.scheduler.pass();
  EXPECT_TRUE(s.scheduled().empty());

  s.setClock("2026-03-28T09:00:20Z");
  s.scheduler.pass();
  ASSERT_EQ(s.scheduled().size(), 1u);
  auto last = s.scheduler.lastRun().extract<json::ObjectPtr>();
  EXPECT_EQ(last->getValue<std::string>("state"), "complete") << json::stringify(last);
  EXPECT_EQ(s.scheduled()[0].createdBy, "scheduler");
  s.setClock("2026-03-28T09:05:00Z");
  s.scheduler.pass();
  EXPECT_EQ(s.scheduled().size(), 1u) << "the same day's backup is made once";
  EXPECT_EQ(s.scheduler.describe()->getValue<std::string>("next_run"), "2026-03-29T08:00:00Z");
  EXPECT_EQ(copies, 0) << "no SFTP copy was asked for";

  // A manual archive is never pruned by the schedule's retention.
  const auto manual = s.service.run({kPassphrase, "manual", "sup"});
  ASSERT_TRUE(manual.ok) << manual.error;

  s.setClock("2026-03-29T08:00:10Z");
  s.scheduler.pass();
  ASSERT_EQ(s.scheduled().size(), 2u);
  const std::string oldest = s.scheduled()[1].id;
  s.setClock("2026-03-30T08:00:10Z");
  s.scheduler.pass();
  const auto kept = s.scheduled();
  ASSERT_EQ(kept.size(), 2u) << "retention 2";
  for (const auto& r : kept) EXPECT_NE(r.id, oldest) << "the oldest scheduled archive was pruned";
  EXPECT_NO_THROW(s.store.get(manual.id));
  EXPECT_EQ(s.store.list().size(), 3u);

  // Turned off: nothing more.
  auto off = schedule("10:00", "Europe/Paris", 2);
  off->set("enabled", false);
  s.scheduler.update(off);
  s.setClock("2026-03-31T08:00:10Z");
  s.scheduler.pass();
  EXPECT_EQ(s.scheduled().size(), 2u);
}

TEST_F(BackupScheduleTest, CopiesReachARealSftpServerAndRefusalsAndFailuresAreRecorded) {
  test::SshdProcess sshd;
  const fs::path remote = sshd.makeRemoteDir("vcrm-backups");
  InProcess s(sftpArchiveCopier());
  s.setClock("2026-06-01T01:00:00Z");
  auto settings = schedule("03:00", "UTC", 5);
  json::ObjectPtr sftp = new json::Object;
  sftp->set("enabled", true);
  sftp->set("host", "127.0.0.1");
  sftp->set("port", sshd.port());
  sftp->set("user", sshd.user());
  sftp->set("remote_dir", remote.string());
  sftp->set("private_key", sshd.clientKey().privateKey);
  sftp->set("host_key", sshd.hostKeyLine());
  settings->set("sftp", sftp);
  auto described = s.scheduler.update(settings);
  EXPECT_EQ(described->getObject("sftp")->getValue<std::string>("host_key_fingerprint"),
            test::sshKeygenFingerprint(sshd.hostKeyPublicFile()));

  // The copy arrives byte for byte under the archive's name.
  s.setClock("2026-06-01T03:00:05Z");
  s.scheduler.pass();
  auto last = s.scheduler.lastRun().extract<json::ObjectPtr>();
  EXPECT_EQ(last->getValue<std::string>("state"), "complete") << json::stringify(last);
  ASSERT_EQ(s.scheduled().size(), 1u);
  const BackupRecord first = s.scheduled()[0];
  EXPECT_EQ(first.copyState, "copied") << first.copyError;
  const fs::path copied = remote / (first.id + ".vcrmbak");
  ASSERT_TRUE(fs::exists(copied));
  EXPECT_TRUE(files::readFile(copied, 1u << 30) ==
              files::readFile(s.store.archivePath(first.id), 1u << 30));

  // A server presenting another key than the one pinned is refused: the archive stays here.
  test::TempDir keys("vcrm-keys");
  json::ObjectPtr other = new json::Object;
  other->set("host_key", makeKeyPair(keys.path()).publicLine);
  json::ObjectPtr change = new json::Object;
  change->set("enabled", true);
  change->set("sftp", other);
  s.scheduler.update(change);
  s.setClock("2026-06-02T03:00:05Z");
  s.scheduler.pass();
  last = s.scheduler.lastRun().extract<json::ObjectPtr>();
  EXPECT_EQ(last->getValue<std::string>("state"), "copy_failed") << json::stringify(last);
  EXPECT_NE(last->getValue<std::string>("error").find("not the pinned key"), std::string::npos)
      << json::stringify(last);
  ASSERT_EQ(s.scheduled().size(), 2u);
  EXPECT_EQ(s.scheduled()[0].copyState, "failed");
  EXPECT_FALSE(s.scheduled()[0].copyError.empty());
  EXPECT_FALSE(fs::exists(remote / (s.scheduled()[0].id + ".vcrmbak")));

  // The next day's backup cannot be made (the private key went missing): recorded as failed,
  // with the reason, and no archive.
  const test::MovedAside key(app_->stateDir() / "tls/server.key");
  s.setClock("2026-06-03T03:00:05Z");
  s.scheduler.pass();
  last = s.scheduler.lastRun().extract<json::ObjectPtr>();
  EXPECT_EQ(last->getValue<std::string>("state"), "failed") << json::stringify(last);
  EXPECT_NE(last->getValue<std::string>("error").find("server.key"), std::string::npos)
      << json::stringify(last);
  EXPECT_EQ(s.scheduled().size(), 2u);
}

TEST_F(BackupScheduleTest, TheApiKeepsSecretsRefusesBadSchedulesAndShowsAFailedCopyOnTheDashboard) {
  test::TempDir keys("vcrm-keys");
  const KeyPair pair = makeKeyPair(keys.path());
  auto admin = app_->adminClient();
  auto put = [&](const json::ObjectPtr& body) {
    return admin.request("PUT", "/api/v1/backups/schedule", json::stringify(body),
                         {{"Content-Type", "application/json"}});
  };
  // Refusals, each naming what is wrong; nothing is stored.
  auto bad = schedule("25:00", "UTC", 3);
  EXPECT_EQ(put(bad).status, 400);
  bad = schedule("02:00", "Mars/Olympus_Mons", 3);
  auto r = put(bad);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("time_zone"), std::string::npos) << r.body;
  bad = schedule("02:00", "UTC", 0);
  EXPECT_EQ(put(bad).status, 400);
  bad = schedule("02:00", "UTC", 3);
  bad->remove("passphrase");
  EXPECT_EQ(put(bad).errorCode(), "schedule_needs_passphrase");
  bad = schedule("02:00", "UTC", 3);
  bad->set("passphrase", "short");
  EXPECT_EQ(put(bad).errorCode(), "passphrase_too_short");
  bad = schedule("02:00", "UTC", 3);
  json::ObjectPtr half = new json::Object;
  half->set("enabled", true);
  half->set("host", "127.0.0.1");
  bad->set("sftp", half);
  EXPECT_EQ(put(bad).errorCode(), "sftp_incomplete");
  bad = schedule("02:00", "UTC", 3);
  json::ObjectPtr notAKey = new json::Object;
  notAKey->set("host_key", "backup.example.org ssh-ed25519 AAAAAAAAAAAAAAAAAAAAAAAA");
  bad->set("sftp", notAKey);
  r = put(bad);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("sftp.host_key"), std::string::npos) << r.body;
  EXPECT_FALSE(fs::exists(app_->stateDir() / "backups/schedule.json"));

  // A schedule with an SFTP copy to a real server that presents another key than the pinned one.
  test::SshdProcess sshd;
  auto settings = schedule("03:00", "UTC", 3);
  settings->set("enabled", false);
  json::ObjectPtr sftp = new json::Object;
  sftp->set("enabled", true);
  sftp->set("host", "127.0.0.1");
  sftp->set("port", sshd.port());
  sftp->set("user", sshd.user());
  sftp->set("remote_dir", sshd.makeRemoteDir("vcrm").string());
  sftp->set("private_key", sshd.clientKey().privateKey);
  sftp->set("host_key", pair.publicLine);
  settings->set("sftp", sftp);
  r = put(settings);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body.find(kPassphrase), std::string::npos) << "the passphrase is never shown";
  EXPECT_EQ(r.body.find("PRIVATE KEY"), std::string::npos) << "the key is never shown";
  EXPECT_TRUE(r.json()->getValue<bool>("passphrase_set"));
  EXPECT_TRUE(r.json()->getObject("sftp")->getValue<bool>("private_key_set"));
  const fs::path stored = app_->stateDir() / "backups/schedule.json";
  EXPECT_EQ(fs::status(stored).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  // A later change that leaves the secrets out keeps them.
  json::ObjectPtr later = new json::Object;
  later->set("enabled", false);
  later->set("retention", 4);
  r = put(later);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(r.json()->getValue<bool>("passphrase_set"));
  EXPECT_EQ(r.json()->getValue<int>("retention"), 4);

  // Run it now, as the schedule would: the archive is made, its copy refused.
  r = admin.postJson("/api/v1/backups/schedule/run", "{}");
  ASSERT_EQ(r.status, 202) << r.body;
  json::ObjectPtr pane;
  ASSERT_TRUE(eventually(
      [&] {
        pane = admin.get("/api/v1/dashboard").json()->getObject("backups");
        auto last = pane->getObject("last_scheduled");
        return last && !last->getValue<std::string>("finished_at").empty();
      },
      std::chrono::seconds(120), std::chrono::milliseconds(200)))
      << json::stringify(pane) << "\n"
      << app_->output().substr(app_->output().size() > 6000 ? app_->output().size() - 6000 : 0);
  auto last = pane->getObject("last_scheduled");
  EXPECT_EQ(last->getValue<std::string>("state"), "copy_failed") << json::stringify(pane);
  EXPECT_NE(last->getValue<std::string>("error").find("not the pinned key"), std::string::npos)
      << json::stringify(pane);
  const auto list = admin.get("/api/v1/backups").json();
  EXPECT_EQ(list->getObject("last_scheduled")->getValue<std::string>("state"), "copy_failed");
  auto backups = list->getArray("backups");
  ASSERT_EQ(backups->size(), 1u);
  EXPECT_EQ(backups->getObject(0)->getValue<std::string>("origin"), "scheduled");
  EXPECT_EQ(backups->getObject(0)->getObject("copy")->getValue<std::string>("state"), "failed");
  EXPECT_EQ(app_->output().find(kPassphrase), std::string::npos);
}

}  // namespace
}  // namespace vcrm
