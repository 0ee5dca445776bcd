// PgCluster: the embedded PostgreSQL's life cycle as an operator sees it — first start,
// restart with data kept, recovery from a crash's leftovers, adopting a running server, and
// clear refusals when it cannot work.
#include "vcrm/common/pg_cluster.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "temp_dir.h"
#include "vcrm/common/db.h"
#include "vcrm/common/error.h"
#include "vcrm/common/guarded.h"
#include "vcrm/common/log.h"

namespace fs = std::filesystem;

namespace vcrm {
namespace {

using namespace std::chrono_literals;

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void writeFile(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::trunc);
  out << text;
}

// `text` with its first line replaced by `first`.
std::string withFirstLine(const std::string& text, const std::string& first) {
  const auto nl = text.find('\n');
  return first + (nl == std::string::npos ? std::string("\n") : text.substr(nl));
}

class PgClusterTest : public ::testing::Test {
 protected:
  PgCluster::Settings settings() const {
    PgCluster::Settings s;
    s.dataDir = dir_.path() / "pgdata";
    s.socketDir = dir_.path() / "sock";
    s.database = "vcrm_pg";
    return s;
  }

  // The postmaster pid from postmaster.pid, if that process still runs.
  std::optional<pid_t> postmaster() const {
    std::ifstream in(settings().dataDir / "postmaster.pid");
    long pid = 0;
    if (!(in >> pid) || pid <= 0 || kill(static_cast<pid_t>(pid), 0) != 0) return std::nullopt;
    return static_cast<pid_t>(pid);
  }

  // Every process whose working directory is our data directory: the server and its children.
  std::vector<pid_t> serverProcesses() const {
    std::vector<pid_t> pids;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/proc", ec)) {
      const std::string name = entry.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::error_code ec2;
      const fs::path cwd = fs::read_symlink(entry.path() / "cwd", ec2);
      if (!ec2 && cwd == settings().dataDir) pids.push_back(std::stoi(name));
    }
    return pids;
  }

  // As a power cut would: SIGKILL to every server process, then wait until they are gone.
  void killServerHard() {
    for (int round = 0; round < 100; ++round) {
      const auto pids = serverProcesses();
      if (pids.empty()) return;
      for (pid_t p : pids) kill(p, SIGKILL);
      std::this_thread::sleep_for(50ms);
    }
    FAIL() << "server processes survived SIGKILL";
  }

  // Nothing of a test's server survives it, even after a failed assertion.
  void TearDown() override {
    if (!serverProcesses().empty()) {
      ADD_FAILURE() << "a PostgreSQL server outlived its PgCluster objects";
      killServerHard();
    }
  }

  bool logged(const std::string& msgId) const {
    for (const auto& l : *lines_.lock()) {
      if (l.find(" " + msgId + " ") != std::string::npos) return true;
    }
    return false;
  }

  test::TempDir dir_{"vcrm-pg"};
  Guarded<std::vector<std::string>> lines_;
  Logger log_{LogLevel::Debug,
              [this](std::string_view line) { lines_.lock()->emplace_back(line); }};
};

TEST_F(PgClusterTest, FirstStartCreatesTheClusterAndTheDatabase) {
  // Leftovers of an initdb interrupted by a crash must not get in the way.
  fs::create_directories(dir_.path() / "pgdata.initdb");
  writeFile(dir_.path() / "pgdata.initdb/PG_VERSION", "garbage");

  PgCluster pg(settings(), log_);
  EXPECT_FALSE(pg.running());
  pg.start();
  EXPECT_TRUE(pg.running());
  EXPECT_TRUE(logged("PG_INITDB"));
  EXPECT_TRUE(logged("PG_STARTED"));
  EXPECT_TRUE(logged("PG_CREATEDB"));
  EXPECT_TRUE(fs::exists(settings().dataDir / "PG_VERSION"));
  EXPECT_FALSE(fs::exists(dir_.path() / "pgdata.initdb"));

  db::Connection c(pg.dsn());
  EXPECT_EQ(c.exec("SELECT current_database()").text(0, 0), "vcrm_pg");
  EXPECT_EQ(c.exec("SELECT current_user").text(0, 0), "vcrm");
  // Reachable only through the Unix socket.
  EXPECT_EQ(c.exec("SHOW listen_addresses").text(0, 0), "");
  EXPECT_EQ(c.exec("SHOW unix_socket_directories").text(0, 0), settings().socketDir.string());
  EXPECT_TRUE(fs::exists(settings().socketDir / ".s.PGSQL.5432"));

  if (geteuid() == 0) {
    // PostgreSQL refuses root; the server runs as the unprivileged user.
    const auto pid = postmaster();
    ASSERT_TRUE(pid);
    struct stat st {};
    ASSERT_EQ(stat(("/proc/" + std::to_string(*pid)).c_str(), &st), 0);
    ASSERT_TRUE(pg.runAs());
    EXPECT_EQ(st.st_uid, pg.runAs()->uid);
    EXPECT_NE(st.st_uid, 0u);
  }

  pg.stop();
  EXPECT_FALSE(pg.running());
  EXPECT_TRUE(logged("PG_STOPPED"));
  EXPECT_FALSE(fs::exists(settings().socketDir / ".s.PGSQL.5432"));
  EXPECT_THROW(db::Connection{pg.dsn()}, DbError);
}

TEST_F(PgClusterTest, StopThenStartKeepsData) {
  {
    PgCluster pg(settings(), log_);
    pg.start();
    db::Connection c(pg.dsn());
    c.execScript("CREATE TABLE kept (v text)");
    c.exec("INSERT INTO kept VALUES ($1)", {"survives a restart"});
  }  // the destructor stops the server it started
  EXPECT_TRUE(serverProcesses().empty());
  lines_.lock()->clear();

  PgCluster again(settings(), log_);
  again.start();
  EXPECT_FALSE(logged("PG_INITDB")) << "the cluster was created a second time";
  EXPECT_FALSE(logged("PG_CREATEDB"));
  db::Connection c(again.dsn());
  const auto r = c.exec("SELECT v FROM kept");
  ASSERT_EQ(r.rows(), 1);
  EXPECT_EQ(r.text(0, 0), "survives a restart");
}

TEST_F(PgClusterTest, StaleLockNamingALiveUnrelatedProcessDoesNotPreventStart) {
  PgCluster pg(settings(), log_);
  pg.start();
  const fs::path pidFile = settings().dataDir / "postmaster.pid";
  const fs::path sockLock = settings().socketDir / ".s.PGSQL.5432.lock";
  const std::string realPid = slurp(pidFile);
  const std::string realSockLock = slurp(sockLock);
  ASSERT_FALSE(realPid.empty());
  ASSERT_FALSE(realSockLock.empty());
  db::Connection(pg.dsn()).execScript("CREATE TABLE t (v int); INSERT INTO t VALUES (1)");
  pg.stop();

  // After a reboot the old pid may belong to anything: init, or the shell that runs vcrmd.
  for (const pid_t unrelated : {static_cast<pid_t>(1), getppid()}) {
    SCOPED_TRACE("stale pid " + std::to_string(unrelated));
    ASSERT_EQ(kill(unrelated, 0), 0) << "the stand-in pid must be alive for this test";
    writeFile(pidFile, withFirstLine(realPid, std::to_string(unrelated)));
    writeFile(sockLock, withFirstLine(realSockLock, std::to_string(unrelated)));
    lines_.lock()->clear();
    ASSERT_NO_THROW(pg.start());
    EXPECT_TRUE(logged("PG_STALE_LOCK"));
    EXPECT_FALSE(logged("PG_ADOPT")) << "an unrelated process was taken for our server";
    EXPECT_NE(postmaster(), unrelated);
    EXPECT_EQ(db::Connection(pg.dsn()).exec("SELECT v FROM t").int64(0, 0), 1);
    pg.stop();
    EXPECT_TRUE(kill(unrelated, 0) == 0) << "the unrelated process was harmed";
  }
}

TEST_F(PgClusterTest, StartsAfterEveryServerProcessWasKilled) {
  PgCluster pg(settings(), log_);
  pg.start();
  db::Connection(pg.dsn()).execScript("CREATE TABLE crash (v int); INSERT INTO crash VALUES (7)");
  killServerHard();
  ASSERT_TRUE(fs::exists(settings().dataDir / "postmaster.pid"));  // left behind
  EXPECT_FALSE(pg.running());

  PgCluster after(settings(), log_);
  ASSERT_NO_THROW(after.start());
  EXPECT_TRUE(logged("PG_STALE_LOCK"));
  EXPECT_EQ(db::Connection(after.dsn()).exec("SELECT v FROM crash").int64(0, 0), 7);
}

TEST_F(PgClusterTest, AdoptsAServerOfOursThatIsAlreadyRunning) {
  PgCluster first(settings(), log_);
  first.start();
  const auto pid = postmaster();
  ASSERT_TRUE(pid);
  db::Connection open(first.dsn());
  open.execScript("CREATE TABLE adopt (v int); INSERT INTO adopt VALUES (3)");

  {
    PgCluster second(settings(), log_);
    ASSERT_NO_THROW(second.start());
    EXPECT_TRUE(logged("PG_ADOPT"));
    EXPECT_EQ(postmaster(), pid) << "the running server was restarted instead of adopted";
    EXPECT_EQ(db::Connection(second.dsn()).exec("SELECT v FROM adopt").int64(0, 0), 3);
    // A connection made before the adoption is unaffected.
    EXPECT_EQ(open.exec("SELECT count(*) FROM adopt").int64(0, 0), 1);
  }  // `second` stops the server it adopted, as vcrmd does on exit
  EXPECT_FALSE(first.running());
  // `first` finds nothing to stop and does not fail.
  EXPECT_NO_THROW(first.stop());
}

TEST_F(PgClusterTest, OverlongSocketPathIsRefused) {
  PgCluster::Settings s = settings();
  s.socketDir = dir_.path() / std::string(100, 's');
  PgCluster pg(s, log_);
  try {
    pg.start();
    FAIL() << "started with a socket path over 100 bytes";
  } catch (const StartupError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("shorter root prefix"), std::string::npos) << msg;
    EXPECT_NE(msg.find(s.socketDir.string()), std::string::npos) << msg;
  }
  EXPECT_FALSE(fs::exists(s.dataDir)) << "work was done before the refusal";
}

TEST_F(PgClusterTest, MissingProgramsFailClearlyAndLeaveNothingHalfDone) {
  PgCluster::Settings s = settings();
  s.binDir = "/nonexistent";
  {
    PgCluster pg(s, log_);
    try {
      pg.start();
      FAIL() << "started without PostgreSQL programs";
    } catch (const StartupError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("initdb"), std::string::npos) << msg;
      EXPECT_NE(msg.find("/nonexistent/initdb"), std::string::npos)
          << "the message does not say which program could not run: " << msg;
    }
    EXPECT_FALSE(pg.running());
  }
  EXPECT_FALSE(fs::exists(s.dataDir / "PG_VERSION"));
  EXPECT_FALSE(fs::exists(dir_.path() / "pgdata.initdb"));

  // With the right programs the same directories work.
  PgCluster fixed(settings(), log_);
  ASSERT_NO_THROW(fixed.start());
  EXPECT_EQ(db::Connection(fixed.dsn()).exec("SELECT 1").int64(0, 0), 1);
}

TEST_F(PgClusterTest, UnreachableStateDirectoryIsExplained) {
  if (geteuid() != 0) GTEST_SKIP() << "only root hands the server to another user";
  // Like a root prefix under /root: the database user cannot pass through a 0700 parent.
  const fs::path locked = dir_.path() / "locked";
  fs::create_directories(locked);
  chmod(locked.c_str(), 0700);
  PgCluster::Settings s = settings();
  s.dataDir = locked / "pgdata";
  s.socketDir = locked / "sock";
  PgCluster pg(s, log_);
  try {
    pg.start();
    FAIL() << "started although the database user cannot reach its directories";
  } catch (const StartupError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("cannot reach"), std::string::npos) << msg;
    EXPECT_NE(msg.find("choose a root prefix outside it"), std::string::npos) << msg;
  }
  EXPECT_FALSE(fs::exists(s.dataDir / "PG_VERSION"));
}

TEST_F(PgClusterTest, ConnectionStringAndPrograms) {
  PgCluster pg(settings(), log_);
  const std::string dsn = pg.dsn();
  EXPECT_NE(dsn.find("host='" + settings().socketDir.string() + "'"), std::string::npos) << dsn;
  EXPECT_NE(dsn.find("dbname='vcrm_pg'"), std::string::npos) << dsn;
  EXPECT_NE(pg.dsn("postgres").find("dbname='postgres'"), std::string::npos);
  EXPECT_TRUE(fs::exists(pg.binary("pg_ctl"))) << pg.binary("pg_ctl");
  EXPECT_EQ(fs::path(pg.binary("initdb")).parent_path(), fs::path(findPgBinDir()));
}

// Root writes vcrm.conf and reads server.log inside the data directory, which the database user
// owns: that user could swap either for a link to a file only root may touch.
TEST_F(PgClusterTest, LinksPlantedInTheDataDirectoryAreNeverFollowedByRoot) {
  if (geteuid() != 0) GTEST_SKIP() << "the database user and root are the same user unless run as root";
  const fs::path secret = dir_.path() / "shadow";
  writeFile(secret, "root:SECRET-HASH:19000:0:99999:7:::\n");
  ASSERT_EQ(chmod(secret.c_str(), 0600), 0);
  auto unchanged = [&] {
    struct stat st {};
    EXPECT_EQ(lstat(secret.c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 0u) << "the target was given to the database user";
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    EXPECT_EQ(slurp(secret), "root:SECRET-HASH:19000:0:99999:7:::\n");
  };
  {
    PgCluster pg(settings(), log_);
    pg.start();
    pg.stop();
  }
  // vcrm.conf as a link: replaced by a file of the database user's, the target left alone.
  fs::remove(settings().dataDir / "vcrm.conf");
  fs::create_symlink(secret, settings().dataDir / "vcrm.conf");
  {
    PgCluster pg(settings(), log_);
    pg.start();
    struct stat st {};
    ASSERT_EQ(lstat((settings().dataDir / "vcrm.conf").c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode));
    EXPECT_NE(st.st_uid, 0u);
    pg.stop();
  }
  unchanged();
  // server.log as a link: the server cannot open it and does not start; the error message must
  // not carry the target's lines.
  fs::remove(settings().dataDir / "server.log");
  fs::create_symlink(secret, settings().dataDir / "server.log");
  PgCluster pg(settings(), log_);
  try {
    pg.start();
    ADD_FAILURE() << "the server started with its log file a link to a root-only file";
    pg.stop();
  } catch (const StartupError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find("SECRET-HASH"), std::string::npos) << what;
    EXPECT_NE(what.find("symbolic link"), std::string::npos) << what;
  }
  unchanged();
}

}  // namespace
}  // namespace vcrm
