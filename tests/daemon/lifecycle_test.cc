// vcrmd as a supervised service: restarts, crashes, a database that goes away, schema
// guards, an external database, configuration errors. Each test runs its own appliance.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <thread>

#include "vcrm/common/log.h"
#include "vcrm/common/pg_cluster.h"
#include "vcrm/common/db.h"
#include "vcrm/common/process.h"
#include "vcrm/common/crypto.h"
#include "vcrm/daemon/migrations.h"
#include "eventually.h"
#include "vcrmd_process.h"

namespace fs = std::filesystem;
using vcrm::test::TempDir;
using vcrm::test::VcrmdProcess;
using vcrm::test::eventually;

namespace {

const std::string kPw = "correct horse battery";

void createUser(VcrmdProcess& app, const std::string& name) {
  auto c = app.client();
  ASSERT_EQ(c.loginBearer("admin", app.adminPassword()).status, 200);
  auto r = c.postJson("/api/v1/users",
                      R"({"username":")" + name + R"(","password":")" + kPw + R"(","roles":["noc"]})");
  ASSERT_EQ(r.status, 201) << r.body;
}

// pg_dump --schema-only of a running appliance's database, comments and blank lines removed.
std::string schemaDump(const VcrmdProcess& app) {
  const std::string bin = vcrm::findPgBinDir();
  auto out = vcrm::process::run({bin + "/pg_dump", "--schema-only", "--no-owner", "-h",
                                 (app.stateDir() / "pgsocket").string(), "-U", "vcrm", "vcrm"});
  EXPECT_TRUE(out.ok()) << out.output;
  std::string kept;
  std::istringstream in(out.output);
  std::string line;
  while (std::getline(in, line)) {
    // \restrict lines carry a random nonce per dump (pg_dump's guard against psql meta-commands).
    if (line.empty() || line.rfind("--", 0) == 0 || line.rfind("\\restrict", 0) == 0 ||
        line.rfind("\\unrestrict", 0) == 0) {
      continue;
    }
    kept += line + "\n";
  }
  return kept;
}

void copyMigrations(const fs::path& to, int upTo) {
  fs::create_directories(to);
  for (const auto& e : fs::directory_iterator(vcrm::test::sourceDir() / "migrations")) {
    if (std::stoi(e.path().filename().string().substr(0, 4)) <= upTo) {
      fs::copy_file(e.path(), to / e.path().filename());
    }
  }
}

int migrationCount() {
  int n = 0;
  for (const auto& e : fs::directory_iterator(vcrm::test::sourceDir() / "migrations")) {
    n += e.path().extension() == ".sql";
  }
  return n;
}

TEST(Lifecycle, DataAndSettingsSurviveARestart) {
  VcrmdProcess app;
  app.start();
  createUser(app, "survivor");
  {
    auto c = app.client();
    c.loginBearer("admin", app.adminPassword());
    ASSERT_EQ(c.request("PUT", "/api/v1/system/log-level", R"({"level":"warn"})").status, 200);
  }
  EXPECT_EQ(app.stop(), 0);
  EXPECT_FALSE(app.postmasterPid()) << "the embedded database must stop with vcrmd";
  app.start();
  auto c = app.client();
  EXPECT_EQ(c.loginBearer("survivor", kPw).status, 200);
  auto admin = app.client();
  admin.loginBearer("admin", app.adminPassword());
  EXPECT_EQ(admin.get("/api/v1/system/log-level").json()->getValue<std::string>("level"), "warn");
  // The first-start password is printed once only.
  EXPECT_EQ(app.output().find("First start"), app.output().rfind("First start"));
}

TEST(Lifecycle, KillNineOfEverythingThenStartWorks) {
  VcrmdProcess app;
  app.start();
  createUser(app, "crashsurvivor");
  app.killHard(/*alsoDatabase=*/true);
  EXPECT_TRUE(fs::exists(app.stateDir() / "pgdata/postmaster.pid"))
      << "the crash should leave a stale lock behind for this test to mean anything";
  app.start();
  EXPECT_EQ(app.client().get("/healthz").status, 200);
  EXPECT_EQ(app.client().loginBearer("crashsurvivor", kPw).status, 200);
}

TEST(Lifecycle, KillNineOfVcrmdAloneThenStartAdoptsTheRunningDatabase) {
  VcrmdProcess app;
  app.start();
  createUser(app, "adopted");
  const auto pm = app.postmasterPid();
  ASSERT_TRUE(pm);
  app.killHard(/*alsoDatabase=*/false);
  app.start();
  EXPECT_EQ(app.postmasterPid(), pm);
  EXPECT_EQ(app.client().loginBearer("adopted", kPw).status, 200);
  EXPECT_NE(app.output().find("PG_ADOPT"), std::string::npos);
}

TEST(Lifecycle, SigintStopsCleanlyToo) {
  VcrmdProcess app;
  app.start();
  kill(app.pid(), SIGINT);
  EXPECT_TRUE(eventually([&] { return !app.postmasterPid(); }, std::chrono::seconds(15)))
      << "the embedded database outlived a SIGINT";
  EXPECT_NE(app.output().find("STOPPED"), std::string::npos);
}

TEST(Lifecycle, ASecondVcrmdOnTheSameRootIsRefused) {
  VcrmdProcess first;
  first.start();
  VcrmdProcess::Options o;
  o.root = first.root();
  VcrmdProcess second(o);
  const std::string out = second.startExpectingFailure();
  EXPECT_NE(out.find("another vcrmd is already running"), std::string::npos) << out;
  EXPECT_EQ(first.client().get("/healthz").status, 200);
}

TEST(Lifecycle, HealthIs503WhileTheDatabaseIsDown) {
  VcrmdProcess app;
  app.start();
  const auto pm = app.postmasterPid();
  ASSERT_TRUE(pm);
  kill(*pm, SIGQUIT);  // immediate shutdown of PostgreSQL under a running vcrmd
  ASSERT_TRUE(eventually([&] { return !app.postmasterPid(); }, std::chrono::seconds(5)))
      << "PostgreSQL did not go down";
  auto r = app.client().get("/healthz");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.json()->getValue<std::string>("database"), "unreachable");
  // Version stays answerable: it needs no database.
  EXPECT_EQ(app.client().get("/api/v1/version").status, 200);
}

TEST(Lifecycle, ASchemaNewerThanTheBinaryIsRefused) {
  VcrmdProcess app;
  app.start();
  ASSERT_EQ(app.stop(), 0);
  {
    vcrm::Logger log(vcrm::LogLevel::Error);
    vcrm::PgCluster::Settings s;
    s.dataDir = app.stateDir() / "pgdata";
    s.socketDir = app.stateDir() / "pgsocket";
    vcrm::PgCluster cluster(s, log);
    cluster.start();
    vcrm::db::Connection c(cluster.dsn());
    c.exec("INSERT INTO schema_migrations (version, name, sha256) VALUES (999, '0999_future.sql', 'x')");
  }
  const std::string out = app.startExpectingFailure();
  EXPECT_NE(out.find("written by a newer vcrm"), std::string::npos) << out;
}

TEST(Lifecycle, AnEditedAppliedMigrationIsRefused) {
  TempDir migrations("vcrm-mig");
  copyMigrations(migrations.path(), 999);
  VcrmdProcess::Options o;
  o.settings = {"db.migrations_dir=" + migrations.path().string()};
  VcrmdProcess app(o);
  app.start();
  ASSERT_EQ(app.stop(), 0);
  std::ofstream(migrations.path() / "0001_initial.sql", std::ios::app) << "\n-- edited later\n";
  const std::string out = app.startExpectingFailure();
  EXPECT_NE(out.find("0001_initial.sql was changed after it was applied"), std::string::npos) << out;
}

TEST(Lifecycle, UpgradingFromTheOldestSchemaEqualsAFreshInstall) {
  // A database as the first release left it: only migration 0001, with a user in it.
  VcrmdProcess upgraded;
  {
    TempDir oldest("vcrm-mig");
    copyMigrations(oldest.path(), 1);
    vcrm::Logger log(vcrm::LogLevel::Error);
    vcrm::PgCluster::Settings s;
    s.dataDir = upgraded.stateDir() / "pgdata";
    s.socketDir = upgraded.stateDir() / "pgsocket";
    vcrm::PgCluster cluster(s, log);
    cluster.start();
    vcrm::db::Connection c(cluster.dsn());
    ASSERT_EQ(vcrm::migrate(c, vcrm::loadMigrations(oldest.path()), log), 1);
    c.exec("INSERT INTO users (username, password_hash, roles) VALUES ('fromv1', $1, '{noc}')",
           {vcrm::crypto::hashPassword(kPw, {1 << 10, 8, 1})});
    c.exec("INSERT INTO users (username, password_hash, roles) VALUES ('admin', $1, '{admin}')",
           {vcrm::crypto::hashPassword(kPw, {1 << 10, 8, 1})});
  }
  upgraded.start();
  EXPECT_EQ(upgraded.client().get("/api/v1/version").json()->getValue<int>("schema"),
            migrationCount());
  EXPECT_EQ(upgraded.client().loginBearer("fromv1", kPw).status, 200) << "data kept";

  VcrmdProcess fresh;
  fresh.start();
  const std::string a = schemaDump(upgraded);
  const std::string b = schemaDump(fresh);
  EXPECT_NE(a.find("CREATE TABLE public.users"), std::string::npos);
  EXPECT_EQ(a, b);
}

TEST(Lifecycle, AnExternalDatabaseIsUsedWhenADsnIsSet) {
  TempDir dbRoot("vcrm-extdb");
  vcrm::Logger log(vcrm::LogLevel::Error);
  vcrm::PgCluster::Settings s;
  s.dataDir = dbRoot.path() / "data";
  s.socketDir = dbRoot.path() / "sock";
  s.database = "appliance";
  vcrm::PgCluster cluster(s, log);
  cluster.start();
  VcrmdProcess::Options o;
  o.settings = {"db.dsn=" + cluster.dsn()};
  VcrmdProcess app(o);
  app.start();
  EXPECT_FALSE(fs::exists(app.stateDir() / "pgdata")) << "no embedded cluster with a DSN";
  createUser(app, "external");
  vcrm::db::Connection c(cluster.dsn());
  EXPECT_EQ(c.exec("SELECT count(*) FROM users WHERE username = 'external'").int64(0, 0), 1);
  app.stop();
  EXPECT_TRUE(cluster.running()) << "vcrmd must not stop a database it does not own";
}

TEST(Lifecycle, AnUnreachableExternalDatabaseGivesAClearError) {
  VcrmdProcess::Options o;
  o.settings = {"db.dsn=host=/nonexistent-socket-dir dbname=vcrm connect_timeout=2"};
  VcrmdProcess app(o);
  const std::string out = app.startExpectingFailure();
  EXPECT_NE(out.find("cannot connect to PostgreSQL"), std::string::npos) << out;
  EXPECT_NE(out.find("/nonexistent-socket-dir"), std::string::npos) << out;
}

TEST(Lifecycle, ABadConfigFileStopsStartWithFileLineAndKey) {
  TempDir root("vcrm-conf");
  fs::create_directories(root.path() / "etc/vcrm");
  std::ofstream(root.path() / "etc/vcrm/vcrmd.conf") << "# ok\nlog.level = info\nhttps.prot = 9443\n";
  VcrmdProcess::Options o;
  o.root = root.path();
  VcrmdProcess app(o);
  const std::string out = app.startExpectingFailure();
  EXPECT_NE(out.find("vcrmd.conf:3"), std::string::npos) << out;
  EXPECT_NE(out.find("https.prot"), std::string::npos) << out;
}

TEST(Lifecycle, TheInitialAdminPasswordFileIsPrivate) {
  VcrmdProcess::Options o;
  o.chooseAdminPassword = false;
  VcrmdProcess app(o);
  app.start();
  const auto perms = fs::status(app.stateDir() / "initial-admin-password").permissions();
  EXPECT_EQ(perms & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_NE(app.output().find(app.initialAdminPassword()), std::string::npos) << "printed once at start";
  // ...but never through the logger.
  std::istringstream lines(app.output());
  std::string line;
  while (std::getline(lines, line)) {
    if (line.find(" INFO ") != std::string::npos || line.find(" WARN ") != std::string::npos) {
      EXPECT_EQ(line.find(app.initialAdminPassword()), std::string::npos) << line;
    }
  }
}

TEST(Lifecycle, FailedLoginsSprayedFromOneAddressAreSlowed) {
  VcrmdProcess app;
  app.start();
  auto c = app.client();
  int throttled = 0;
  for (int i = 0; i < 24; ++i) {
    throttled += c.loginBearer("spray" + std::to_string(i), "wrong-password").status == 429;
  }
  EXPECT_GE(throttled, 1);
}

}  // namespace
