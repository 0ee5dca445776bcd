// Backups through a real vcrmd: support makes an archive with a passphrase and watches its
// progress on the event stream, finds it in the list with the counts of what it holds,
// downloads it (the bytes verify with the passphrase), verifies it on the appliance, deletes
// it; each step leaves an audit row. Short passphrases, a second backup while one runs and a
// backup that cannot be made are refused with their reasons and leave no archive. And bookings
// made while a large database is being dumped neither wait for the dump nor get into it.
#include <Poco/JSON/Array.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>
#include <thread>

#include "api_times.h"
#include "bridge_setup.h"
#include "child.h"
#include "event_stream.h"
#include "eventually.h"
#include "moved_aside.h"
#include "temp_dir.h"
#include "vcrm/common/db.h"
#include "vcrm/common/files.h"
#include "vcrm/common/json.h"
#include "vcrm/upgrade/archive_error.h"
#include "vcrm/upgrade/backup_archive.h"
#include "vcrm/upgrade/pg_tools.h"
#include "vcrmd_process.h"

namespace vcrm {
namespace {

namespace fs = std::filesystem;
using test::EventStream;
using test::eventually;
using test::HttpResult;
using test::HttpsClient;
using test::isoIn;
using test::VcrmdProcess;

constexpr const char* kPassphrase = "correct horse battery staple";
constexpr const char* kUserPassword = "a password for the backup tests";

std::string passphraseBody(const std::string& passphrase) {
  json::ObjectPtr o = new json::Object;
  o->set("passphrase", passphrase);
  return json::stringify(o);
}

class BackupsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    app_ = new VcrmdProcess();
    app_->start();
    auto admin = app_->adminClient();
    ASSERT_EQ(app_->createReadyUser(admin, "sup", {"support"}, kUserPassword).status, 201);
    ASSERT_EQ(app_->createReadyUser(admin, "ops", {"operator"}, kUserPassword).status, 201);
  }
  static void TearDownTestSuite() {
    delete app_;
    app_ = nullptr;
  }

  static HttpsClient signedIn(const std::string& user) {
    auto c = app_->client();
    const auto r = c.loginBearer(user, kUserPassword);
    if (r.status != 200) throw std::runtime_error("sign-in of " + user + " failed: " + r.body);
    return c;
  }

  // Starts a backup and waits until it is listed (or failed); returns its id.
  static std::string makeBackup(HttpsClient& c,
                                std::chrono::seconds timeout = std::chrono::seconds(120)) {
    const auto started = c.postJson("/api/v1/backups", passphraseBody(kPassphrase));
    if (started.status != 202) throw std::runtime_error("backup refused: " + started.body);
    const std::string id = started.json()->getObject("backup")->getValue<std::string>("id");
    if (!eventually([&] { return c.get("/api/v1/backups").json()->isNull("running"); }, timeout)) {
      throw std::runtime_error("backup " + id + " still running after the time limit");
    }
    return id;
  }

  static std::int64_t auditRows(const std::string& action, const std::string& target) {
    auto db = app_->database();
    return db
        .exec("SELECT count(*) FROM audit_log WHERE action = $1 AND target = $2", {action, target})
        .int64(0, 0);
  }

  static std::vector<std::string> leftovers() {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(app_->stateDir() / "backups")) {
      const std::string name = e.path().filename().string();
      if (name.find(".part") != std::string::npos || name.rfind(".work-", 0) == 0)
        out.push_back(name);
    }
    return out;
  }

  static VcrmdProcess* app_;
};
VcrmdProcess* BackupsTest::app_ = nullptr;

TEST_F(BackupsTest, SupportCreatesListsDownloadsVerifiesAndDeletesAnArchive) {
  auto support = signedIn("sup");
  auto operatorClient = signedIn("ops");
  EventStream supportEvents(*app_, support.bearer());
  EventStream operatorEvents(*app_, operatorClient.bearer());
  ASSERT_EQ(supportEvents.status(), 200);
  ASSERT_EQ(operatorEvents.status(), 200);

  const auto started = support.postJson("/api/v1/backups", passphraseBody(kPassphrase));
  ASSERT_EQ(started.status, 202) << started.body;
  const auto backup = started.json()->getObject("backup");
  const std::string id = backup->getValue<std::string>("id");
  EXPECT_EQ(backup->getValue<std::string>("state"), "running");
  EXPECT_EQ(started.header("location"), "/api/v1/backups/" + id);
  EXPECT_TRUE(std::regex_match(id, std::regex("^vcrm-[0-9A-Z-]+-[0-9]{8}T[0-9]{6}Z$"))) << id;

  // Progress on the event stream: the dump, the archive, then complete.
  auto isBackup = [&](const std::string& phase) {
    return [&, phase](const test::StreamEvent& e) {
      if (e.type != "backup") return false;
      auto o = json::parseObject(e.data);
      return o->getValue<std::string>("id") == id && o->getValue<std::string>("phase") == phase;
    };
  };
  ASSERT_TRUE(supportEvents.waitFor(isBackup("complete"), std::chrono::seconds(120)));
  EXPECT_TRUE(supportEvents.waitFor(isBackup("dump"), std::chrono::seconds(1)));
  EXPECT_TRUE(supportEvents.waitFor(isBackup("archive"), std::chrono::seconds(1)));
  std::uint64_t lastDone = 0, lastTotal = 0;
  for (const auto& e : supportEvents.events()) {
    if (e.type != "backup") continue;
    auto o = json::parseObject(e.data);
    if (o->getValue<std::string>("phase") != "archive") continue;
    lastDone = o->getValue<std::uint64_t>("done");
    lastTotal = o->getValue<std::uint64_t>("total");
  }
  EXPECT_GT(lastTotal, 0u);
  EXPECT_EQ(lastDone, lastTotal) << "the archive phase reports all of its bytes done";
  // An operator's stream carries no backup progress. The bus is in order: once a later event
  // every role reads (a bridge registered) has reached it, every backup event has gone by.
  auto admin = app_->adminClient();
  const auto marker = admin.postJson("/api/v1/bridges",
                                     R"({"name":"marker","url":"http://127.0.0.1:9/janus",)"
                                     R"("admin_url":"http://127.0.0.1:9/admin","admin_secret":"x",)"
                                     R"("capacity_ports":1})");
  ASSERT_EQ(marker.status, 201) << marker.body;
  ASSERT_TRUE(operatorEvents.waitFor([](const test::StreamEvent& e) { return e.type == "bridge"; },
                                     std::chrono::seconds(30)));
  for (const auto& e : operatorEvents.events()) EXPECT_NE(e.type, "backup") << e.data;

  // Listed, with what it holds counted.
  const auto list = support.get("/api/v1/backups");
  ASSERT_EQ(list.status, 200) << list.body;
  EXPECT_TRUE(list.json()->isNull("running"));
  auto backups = list.json()->getArray("backups");
  ASSERT_EQ(backups->size(), 1u) << list.body;
  auto listed = backups->getObject(0);
  EXPECT_EQ(listed->getValue<std::string>("id"), id);
  EXPECT_EQ(listed->getValue<std::string>("origin"), "manual");
  EXPECT_EQ(listed->getValue<std::string>("created_by"), "sup");
  auto db = app_->database();
  EXPECT_EQ(listed->getObject("counts")->getValue<std::int64_t>("users"),
            db.exec("SELECT count(*) FROM users").int64(0, 0));
  EXPECT_EQ(listed->getObject("counts")->getValue<std::int64_t>("conferences"), 0);
  const auto size = listed->getValue<std::uint64_t>("size");
  const fs::path file = app_->stateDir() / "backups" / (id + ".vcrmbak");
  EXPECT_EQ(fs::file_size(file), size);
  EXPECT_EQ(fs::status(app_->stateDir() / "backups").permissions() & fs::perms::all,
            fs::perms::owner_all);
  EXPECT_EQ(fs::status(file).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_TRUE(leftovers().empty());
  EXPECT_EQ(support.get("/api/v1/backups/" + id).status, 200);

  // The download is the file, and it verifies with the passphrase.
  const auto got = support.get("/api/v1/backups/" + id + "/download");
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(got.header("content-type"), "application/octet-stream");
  EXPECT_EQ(got.header("content-disposition"), "attachment; filename=\"" + id + ".vcrmbak\"");
  // Its size up front, so a browser shows the download's progress; HEAD says the same.
  EXPECT_EQ(got.header("content-length"), std::to_string(size));
  EXPECT_EQ(support.request("HEAD", "/api/v1/backups/" + id + "/download").header("content-length"),
            std::to_string(size));
  ASSERT_EQ(got.body.size(), size);
  EXPECT_TRUE(got.body == files::readFile(file, 1u << 30));
  upgrade::StringSource source(got.body);
  const auto manifest = upgrade::verifyArchive(source, kPassphrase);
  std::vector<std::string> members;
  for (const auto& m : manifest.members) members.push_back(m.path);
  std::vector<std::string> want{"db/vcrm.dump"};
  if (fs::exists(app_->root() / "etc/vcrm/vcrmd.conf")) want.push_back("etc/vcrmd.conf");
  for (const char* m : {"state/serial", "tls/server.crt", "tls/server.key", "licence/active.lic"})
    want.push_back(m);
  EXPECT_EQ(members, want);
  std::string serial = files::readFile(app_->stateDir() / "serial");
  serial.erase(serial.find_last_not_of("\n") + 1);
  EXPECT_EQ(manifest.info.sourceSerial, serial);
  EXPECT_EQ(id.rfind("vcrm-" + serial.substr(0, 19) + "-", 0), 0u)
      << "the serial without its check symbol";
  EXPECT_EQ(manifest.info.counts.at("users"),
            listed->getObject("counts")->getValue<std::int64_t>("users"));
  EXPECT_EQ(manifest.info.schemaVersion,
            db.exec("SELECT max(version) FROM schema_migrations").int64(0, 0));

  // Verified on the appliance; a wrong passphrase is refused with its reason.
  const auto verified =
      support.postJson("/api/v1/backups/" + id + "/verify", passphraseBody(kPassphrase));
  ASSERT_EQ(verified.status, 200) << verified.body;
  EXPECT_TRUE(verified.json()->getValue<bool>("verified"));
  const auto wrong =
      support.postJson("/api/v1/backups/" + id + "/verify", passphraseBody("not the passphrase"));
  EXPECT_EQ(wrong.status, 422) << wrong.body;
  EXPECT_EQ(wrong.errorCode(), "archive_wrong_passphrase");

  // Deleted, and gone.
  EXPECT_EQ(support.request("DELETE", "/api/v1/backups/" + id).status, 204);
  EXPECT_EQ(support.get("/api/v1/backups/" + id).errorCode(), "backup_not_found");
  EXPECT_FALSE(fs::exists(file));
  EXPECT_EQ(support.get("/api/v1/backups").json()->getArray("backups")->size(), 0u);

  // Every step is in the audit log, the download included.
  EXPECT_EQ(auditRows("backup.create", id), 1);
  EXPECT_EQ(auditRows("backup.download", id), 1);
  EXPECT_EQ(auditRows("backup.verify", id), 2);
  EXPECT_EQ(auditRows("backup.delete", id), 1);
  // The passphrase is in no log line.
  EXPECT_EQ(app_->output().find(kPassphrase), std::string::npos);
}

TEST_F(BackupsTest, ShortPassphrasesAndASecondBackupWhileOneRunsAreRefused) {
  auto support = signedIn("sup");
  const auto shortOne = support.postJson("/api/v1/backups", passphraseBody("short"));
  EXPECT_EQ(shortOne.status, 400) << shortOne.body;
  EXPECT_EQ(shortOne.errorCode(), "passphrase_too_short");
  EXPECT_NE(shortOne.body.find("at least 12 characters"), std::string::npos) << shortOne.body;
  EXPECT_EQ(support.postJson("/api/v1/backups", "{}").errorCode(), "missing_field");

  const auto first = support.postJson("/api/v1/backups", passphraseBody(kPassphrase));
  ASSERT_EQ(first.status, 202) << first.body;
  const auto second = support.postJson("/api/v1/backups", passphraseBody(kPassphrase));
  EXPECT_EQ(second.status, 409) << second.body;
  EXPECT_EQ(second.errorCode(), "backup_running");
  const std::string id = first.json()->getObject("backup")->getValue<std::string>("id");
  ASSERT_TRUE(eventually([&] { return support.get("/api/v1/backups").json()->isNull("running"); },
                         std::chrono::seconds(120)));
  EXPECT_EQ(support.request("DELETE", "/api/v1/backups/" + id).status, 204)
      << support.get("/api/v1/backups").body;
  // Ids that name nothing, or that are not ids at all.
  EXPECT_EQ(support.get("/api/v1/backups/" + id).status, 404);
  EXPECT_EQ(support.get("/api/v1/backups/..%2Fserial/download").status, 404);
  EXPECT_EQ(support.request("DELETE", "/api/v1/backups/nothing").errorCode(), "backup_not_found");
}

TEST_F(BackupsTest, ABackupThatCannotBeMadeLeavesNoArchiveAndSaysWhy) {
  auto support = signedIn("sup");
  // The private key went missing (vcrmd loaded it at start and goes on serving).
  const test::MovedAside key(app_->stateDir() / "tls/server.key");

  EventStream events(*app_, support.bearer());
  const auto started = support.postJson("/api/v1/backups", passphraseBody(kPassphrase));
  ASSERT_EQ(started.status, 202) << started.body;
  const std::string id = started.json()->getObject("backup")->getValue<std::string>("id");
  ASSERT_TRUE(events.waitFor(
      [&](const test::StreamEvent& e) {
        return e.type == "backup" &&
               json::parseObject(e.data)->getValue<std::string>("state") == "failed";
      },
      std::chrono::seconds(120)));
  const auto list = support.get("/api/v1/backups");
  EXPECT_EQ(list.json()->getArray("backups")->size(), 0u) << list.body;
  auto failure = list.json()->getObject("last_failure");
  ASSERT_TRUE(failure) << list.body;
  EXPECT_EQ(failure->getValue<std::string>("id"), id);
  EXPECT_NE(failure->getValue<std::string>("error").find("server.key"), std::string::npos)
      << list.body;
  EXPECT_EQ(support.get("/api/v1/backups/" + id).status, 404);
  EXPECT_TRUE(leftovers().empty());
}

TEST_F(BackupsTest, VcrmctlCreatesWithProgressListsDownloadsAndDeletes) {
  test::TempDir dir("vcrm-backup-cli");
  const fs::path passphrase = dir.path() / "passphrase";
  files::atomicWrite(passphrase, std::string(kPassphrase) + "\n", 0600);
  const fs::path password = dir.path() / "password";
  files::atomicWrite(password, app_->adminPassword() + "\n", 0600);
  const std::string ctl = (test::binDir() / "vcrmctl").string();
  const std::vector<std::string> connect{ctl, "--root", app_->root().string(), "--password-file",
                                         password.string()};
  auto run = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = connect;
    argv.insert(argv.end(), args.begin(), args.end());
    return test::runToEnd(argv, dir.path() / "vcrmctl.log", std::chrono::seconds(180));
  };
  const fs::path out = dir.path() / "site.vcrmbak";
  auto created =
      run({"backup", "create", "--passphrase-file", passphrase.string(), "--out", out.string()});
  ASSERT_EQ(created.status, 0) << created.output;
  EXPECT_NE(created.output.find("started"), std::string::npos) << created.output;
  EXPECT_NE(created.output.find("saved to " + out.string()), std::string::npos) << created.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(created.output, m,
                                std::regex("backup (vcrm-[0-9A-Z-]+-[0-9]{8}T[0-9]{6}Z) started")))
      << created.output;
  const std::string id = m[1];
  EXPECT_FALSE(fs::exists(out.string() + ".part"));

  // The file verifies locally, with the same tool.
  auto verified = test::runToEnd(
      {ctl, "backup", "verify", out.string(), "--passphrase-file", passphrase.string()},
      dir.path() / "verify.log");
  EXPECT_EQ(verified.status, 0) << verified.output;
  EXPECT_NE(verified.output.find("\"counts\""), std::string::npos) << verified.output;

  auto listed = run({"backup", "list"});
  EXPECT_EQ(listed.status, 0) << listed.output;
  EXPECT_NE(listed.output.find(id), std::string::npos) << listed.output;
  EXPECT_NE(listed.output.find("manual"), std::string::npos) << listed.output;

  const fs::path again = dir.path() / "again.vcrmbak";
  auto downloaded = run({"backup", "download", id, "--out", again.string()});
  EXPECT_EQ(downloaded.status, 0) << downloaded.output;
  EXPECT_TRUE(files::readFile(again, 1u << 30) == files::readFile(out, 1u << 30));

  auto deleted = run({"backup", "delete", id});
  EXPECT_EQ(deleted.status, 0) << deleted.output;
  auto gone = run({"backup", "download", id, "--out", again.string()});
  EXPECT_EQ(gone.status, 1);
  EXPECT_NE(gone.output.find("backup_not_found"), std::string::npos) << gone.output;

  auto weak = dir.path() / "weak";
  files::atomicWrite(weak, "short\n", 0600);
  auto refused = run({"backup", "create", "--passphrase-file", weak.string()});
  EXPECT_EQ(refused.status, 1);
  EXPECT_NE(refused.output.find("at least 12 characters"), std::string::npos) << refused.output;
}

// The consistent snapshot while serving: a database with a million participant CDRs takes
// seconds to dump; bookings made meanwhile are answered at once, the backup completes and
// verifies, and the archive's counts are what its dump holds.
TEST_F(BackupsTest, BookingsDuringABackupNeitherWaitNorBreakIt) {
  auto admin = app_->adminClient();
  auto bridge = test::registerJanusBridge(admin, "backup-bridge", 100000);
  // Bookings need the bridge up: its first probes may take a while on a busy machine.
  ASSERT_TRUE(eventually(
      [&] {
        return admin.get("/api/v1/bridges/" + std::to_string(bridge.id))
                   .json()
                   ->getValue<std::string>("health") == "up";
      },
      std::chrono::seconds(30)));
  const auto seed = admin.postJson(
      "/api/v1/conferences", R"({"name":"seed","start":")" + isoIn(std::chrono::hours(24 * 30)) +
                                 R"(","duration_minutes":30,"ports":1,"bridge_id":)" +
                                 std::to_string(bridge.id) + "}");
  ASSERT_EQ(seed.status, 201) << seed.body;
  const std::string seedId = seed.json()->getValue<std::string>("id");
  {
    auto db = app_->database();
    db.exec(
        "INSERT INTO participant_legs (conference_id, room, participant_id, display_name, "
        "joined_at, left_at, "
        "end_reason) SELECT $1::bigint, 1, g, 'participant number ' || g || ' of the backup test', "
        "now() - interval '2 hours', now() - interval '1 hour', 'left' FROM generate_series(1, "
        "1000000) g",
        {seedId});
  }
  auto support = signedIn("sup");

  // Two admins book before, during and after the backup's start: the snapshot is taken while
  // bookings commit.
  std::atomic<bool> stop{false};
  std::mutex m;
  std::vector<double> latencies;
  std::vector<std::string> failures;
  std::vector<std::thread> bookers;
  for (int t = 0; t < 2; ++t) {
    bookers.emplace_back([&, t] {
      auto c = app_->adminClient();
      for (int i = 0; !stop; ++i) {
        const auto b0 = std::chrono::steady_clock::now();
        const auto r =
            c.postJson("/api/v1/conferences",
                       R"({"name":"during backup )" + std::to_string(t) + "-" + std::to_string(i) +
                           R"(","start":")" + isoIn(std::chrono::hours(24 * 31 + i)) +
                           R"(","duration_minutes":30,"ports":1,"bridge_id":)" +
                           std::to_string(bridge.id) + "}");
        const double ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - b0)
                .count();
        std::lock_guard lock(m);
        latencies.push_back(ms);
        if (r.status != 201) failures.push_back(r.body);
      }
    });
  }
  struct JoinAll {
    std::atomic<bool>& stop;
    std::vector<std::thread>& threads;
    ~JoinAll() {
      stop = true;
      for (auto& t : threads)
        if (t.joinable()) t.join();
    }
  } joinAll{stop, bookers};
  ASSERT_TRUE(eventually(
      [&] {
        std::lock_guard lock(m);
        return latencies.size() >= 10;
      },
      std::chrono::seconds(60)));
  const auto started = support.postJson("/api/v1/backups", passphraseBody(kPassphrase));
  ASSERT_EQ(started.status, 202) << started.body;
  const std::string id = started.json()->getObject("backup")->getValue<std::string>("id");
  const auto t0 = std::chrono::steady_clock::now();
  const std::size_t before = [&] {
    std::lock_guard lock(m);
    return latencies.size();
  }();
  bool dumpEnded = false;
  const bool finished = eventually(
      [&] {
        auto running = support.get("/api/v1/backups").json()->getObject("running");
        if (running && running->getValue<std::string>("phase") != "dump") dumpEnded = true;
        return !running;
      },
      std::chrono::seconds(300), std::chrono::milliseconds(100));
  const double backupSeconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  stop = true;
  for (auto& t : bookers) t.join();
  ASSERT_TRUE(finished);
  ASSERT_GT(latencies.size(), before + 4) << "bookings went on during the backup";
  EXPECT_TRUE(dumpEnded);

  const auto record = support.get("/api/v1/backups/" + id);
  ASSERT_EQ(record.status, 200) << support.get("/api/v1/backups").body;
  EXPECT_TRUE(failures.empty()) << failures.size() << " bookings refused, e.g. "
                                << failures.front();
  ASSERT_GE(latencies.size(), 4u);
  const double worst = *std::max_element(latencies.begin(), latencies.end());
  std::cout << "[ figures  ] backup of 1,000,000 participant CDRs in " << backupSeconds << " s ("
            << record.json()->getValue<std::uint64_t>("size") / 1000000.0 << " MB); "
            << latencies.size() << " bookings meanwhile, worst " << worst << " ms\n";
  EXPECT_LT(worst, 2000.0) << "a booking waited for the backup";

  const auto verified =
      support.postJson("/api/v1/backups/" + id + "/verify", passphraseBody(kPassphrase));
  ASSERT_EQ(verified.status, 200) << verified.body;

  // The counts are the dump's: restore it into a database of its own and count there. The
  // bookings made during the dump are in the live database, not in the archive.
  auto counts = record.json()->getObject("counts");
  EXPECT_EQ(counts->getValue<std::int64_t>("participant_cdrs"), 1000000);
  test::TempDir out("vcrm-backup-extract");
  {
    const int fd =
        ::open((app_->stateDir() / "backups" / (id + ".vcrmbak")).c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    files::Fd owned(fd);
    upgrade::FdSource source(fd, id);
    upgrade::extractArchive(source, kPassphrase, out.path() / "x");
  }
  auto db = app_->database();
  db.exec("DROP DATABASE IF EXISTS backup_check");
  db.exec("CREATE DATABASE backup_check");
  const std::string dsn = "host=" + db::dsnQuote((app_->stateDir() / "pgsocket").string()) +
                          " port=5432 user=vcrm dbname=backup_check";
  upgrade::restoreDatabase(upgrade::PgTools{}, dsn, out.path() / "x/db/vcrm.dump");
  {
    db::Connection restored(dsn);
    auto r = restored.exec(
        "SELECT (SELECT count(*) FROM conferences), (SELECT count(*) FROM conference_cdrs), "
        "(SELECT count(*) FROM participant_legs), (SELECT count(*) FROM users)");
    EXPECT_EQ(r.int64(0, 0), counts->getValue<std::int64_t>("conferences"));
    EXPECT_EQ(r.int64(0, 1), counts->getValue<std::int64_t>("cdrs"));
    EXPECT_EQ(r.int64(0, 2), counts->getValue<std::int64_t>("participant_cdrs"));
    EXPECT_EQ(r.int64(0, 3), counts->getValue<std::int64_t>("users"));
  }
  db.exec("DROP DATABASE backup_check");
  const auto live = db.exec("SELECT count(*) FROM conferences").int64(0, 0);
  EXPECT_EQ(live, 1 + static_cast<std::int64_t>(latencies.size()));
  EXPECT_LT(counts->getValue<std::int64_t>("conferences"), live)
      << "bookings made during the dump are not in it";
  EXPECT_EQ(support.request("DELETE", "/api/v1/backups/" + id).status, 204);
  db.exec("DELETE FROM participant_legs");
}

}  // namespace
}  // namespace vcrm
