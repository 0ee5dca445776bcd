// vcrm::db against a real PostgreSQL (an embedded cluster started once for the suite):
// values travel unchanged, errors carry SQLSTATE, transactions roll back unless committed,
// and the pool hands out clean connections under load.
#include "vcrm/common/db.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "eventually.h"
#include "temp_dir.h"
#include "vcrm/common/error.h"
#include "vcrm/common/files.h"
#include "vcrm/common/log.h"
#include "vcrm/common/pg_cluster.h"

namespace vcrm::db {
namespace {

using namespace std::chrono_literals;

class DbTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      dir_ = std::make_unique<test::TempDir>("vcrm-db");
      log_ = std::make_unique<Logger>(LogLevel::Warn);
      PgCluster::Settings s;
      s.dataDir = dir_->path() / "pgdata";
      s.socketDir = dir_->path() / "sock";
      s.database = "vcrm_test";
      cluster_ = std::make_unique<PgCluster>(s, *log_);
      cluster_->start();
    } catch (const std::exception& e) {
      startError_ = e.what();
    }
  }

  static void TearDownTestSuite() {
    cluster_.reset();  // stops the server
    log_.reset();
    dir_.reset();
  }

  void SetUp() override {
    ASSERT_TRUE(startError_.empty()) << "the test PostgreSQL did not start: " << startError_;
  }

  static std::string dsn() { return cluster_->dsn(); }

  static std::unique_ptr<test::TempDir> dir_;
  static std::unique_ptr<Logger> log_;
  static std::unique_ptr<PgCluster> cluster_;
  static std::string startError_;
};

std::unique_ptr<test::TempDir> DbTest::dir_;
std::unique_ptr<Logger> DbTest::log_;
std::unique_ptr<PgCluster> DbTest::cluster_;
std::string DbTest::startError_;

// The DbError thrown by `f`, or a test failure.
template <typename F>
DbError dbError(F&& f) {
  try {
    f();
  } catch (const DbError& e) {
    return e;
  }
  ADD_FAILURE() << "no DbError thrown";
  return DbError("none");
}

TEST_F(DbTest, HostileParametersRoundTripUnchanged) {
  Connection c(dsn());
  const std::vector<std::string> values = {
      "",
      "plain",
      "O'Brien",
      "''",
      "\"double\" quotes",
      "back\\slash \\\\ \\x00 \\'",
      "'; DROP TABLE x; --",
      "Robert'); DROP TABLE students;--",
      "1 OR 1=1",
      "$1 $2 ?",
      "line\nbreak\ttab\rreturn",
      "caf\xc3\xa9 \xe2\x9c\x93 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x8e\xa5",
      std::string(100000, 'x'),
  };
  for (const auto& v : values) {
    const auto r = c.exec("SELECT $1::text AS v, length($1::text) AS n", {v});
    ASSERT_EQ(r.rows(), 1);
    EXPECT_EQ(r.text(0, 0), v);
    EXPECT_FALSE(r.isNull(0, 0));
  }
  const auto null = c.exec("SELECT $1::text", {nullptr});
  EXPECT_TRUE(null.isNull(0, 0));
  EXPECT_EQ(null.optText(0, 0), std::nullopt);
  const auto nullOpt = c.exec("SELECT $1::text", {std::optional<std::string>()});
  EXPECT_TRUE(nullOpt.isNull(0, 0));
  const auto setOpt = c.exec("SELECT $1::int", {std::optional<int>(7)});
  EXPECT_EQ(setOpt.int64(0, 0), 7);
}

TEST_F(DbTest, NulByteInAParameterIsRefusedNotTruncated) {
  // "admin\0x" must not quietly become "admin".
  Connection c(dsn());
  const auto e = dbError([&] {
    c.exec("SELECT $1::text, $2::text", {"ok", std::string("admin\0x", 7)});
  });
  EXPECT_EQ(e.sqlState(), "22021");
  EXPECT_NE(std::string(e.what()).find("$2"), std::string::npos) << e.what();
  EXPECT_EQ(c.exec("SELECT 1").int64(0, 0), 1);
}

TEST_F(DbTest, InjectionLookingValuesAreStoredAsData) {
  Connection c(dsn());
  c.execScript("DROP TABLE IF EXISTS inj; CREATE TABLE inj (name text NOT NULL)");
  const std::string evil = "x'); DROP TABLE inj; --";
  c.exec("INSERT INTO inj (name) VALUES ($1)", {evil});
  const auto r = c.exec("SELECT name FROM inj WHERE name = $1", {evil});
  ASSERT_EQ(r.rows(), 1);  // the table still exists and holds the text as given
  EXPECT_EQ(r.text(0, 0), evil);
  EXPECT_EQ(c.exec("SELECT count(*) FROM inj WHERE name = $1", {"' OR '1'='1"}).int64(0, 0), 0);
  c.execScript("DROP TABLE inj");
}

TEST_F(DbTest, NumbersAndBooleansAsParameters) {
  Connection c(dsn());
  const auto r = c.exec("SELECT $1::int, $2::bigint, $3::boolean, $4::boolean, $5::float8",
                        {-12, 9000000000LL, true, false, 2.5});
  EXPECT_EQ(r.int64(0, 0), -12);
  EXPECT_EQ(r.int64(0, 1), 9000000000LL);
  EXPECT_TRUE(r.boolean(0, 2));
  EXPECT_FALSE(r.boolean(0, 3));
  EXPECT_EQ(r.text(0, 4), "2.5");
}

TEST_F(DbTest, ResultAccessors) {
  Connection c(dsn());
  const auto r = c.exec(
      "SELECT 42::bigint AS n, '-9223372036854775808'::bigint AS lowest, true AS yes, "
      "false AS no, NULL::text AS nothing, 'word'::text AS t");
  EXPECT_EQ(r.rows(), 1);
  EXPECT_EQ(r.columns(), 6);
  EXPECT_FALSE(r.empty());
  EXPECT_EQ(r.int64(0, r.column("n")), 42);
  EXPECT_EQ(r.int64(0, r.column("lowest")), INT64_MIN);
  EXPECT_TRUE(r.boolean(0, r.column("yes")));
  EXPECT_FALSE(r.boolean(0, r.column("no")));
  EXPECT_TRUE(r.isNull(0, r.column("nothing")));
  EXPECT_EQ(r.optText(0, r.column("nothing")), std::nullopt);
  EXPECT_EQ(r.optText(0, r.column("t")), "word");
  EXPECT_EQ(r.columnName(5), "t");
  const auto missing = dbError([&] { r.column("absent"); });
  EXPECT_NE(std::string(missing.what()).find("\"absent\""), std::string::npos) << missing.what();
  const auto notInt = dbError([&] { r.int64(0, r.column("t")); });
  EXPECT_NE(std::string(notInt.what()).find("\"word\""), std::string::npos) << notInt.what();
  EXPECT_TRUE(c.exec("SELECT 1 WHERE false").empty());
}

TEST_F(DbTest, AffectedRows) {
  Connection c(dsn());
  c.execScript("DROP TABLE IF EXISTS aff; CREATE TABLE aff (id int PRIMARY KEY, v text)");
  EXPECT_EQ(c.exec("INSERT INTO aff SELECT g, 'a' FROM generate_series(1, 5) g").affected(), 5);
  EXPECT_EQ(c.exec("UPDATE aff SET v = 'b' WHERE id <= $1", {3}).affected(), 3);
  EXPECT_EQ(c.exec("UPDATE aff SET v = 'b' WHERE id = $1", {99}).affected(), 0);
  EXPECT_EQ(c.exec("DELETE FROM aff WHERE v = $1", {"a"}).affected(), 2);
  EXPECT_EQ(c.exec("SELECT * FROM aff").rows(), 3);
  c.execScript("DROP TABLE aff");
}

TEST_F(DbTest, ErrorsCarrySqlState) {
  Connection c(dsn());
  c.execScript("DROP TABLE IF EXISTS uniq; CREATE TABLE uniq (name text PRIMARY KEY)");
  c.exec("INSERT INTO uniq VALUES ($1)", {"alice"});
  const auto dup = dbError([&] { c.exec("INSERT INTO uniq VALUES ($1)", {"alice"}); });
  EXPECT_EQ(dup.sqlState(), "23505");
  EXPECT_EQ(dup.code(), "database_error");
  EXPECT_NE(std::string(dup.what()).find("duplicate key"), std::string::npos) << dup.what();

  const auto syntax = dbError([&] { c.exec("SELEC 1"); });
  EXPECT_EQ(syntax.sqlState(), "42601");
  EXPECT_NE(std::string(syntax.what()).find("syntax error"), std::string::npos) << syntax.what();

  EXPECT_EQ(dbError([&] { c.exec("SELECT * FROM no_such_table"); }).sqlState(), "42P01");
  EXPECT_EQ(dbError([&] { c.exec("SELECT $1::int", {"12abc"}); }).sqlState(), "22P02");
  EXPECT_EQ(dbError([&] { c.execScript("SELECT 1; SELEC 2"); }).sqlState(), "42601");

  // The connection stays usable after each error.
  EXPECT_TRUE(c.ok());
  EXPECT_EQ(c.exec("SELECT count(*) FROM uniq").int64(0, 0), 1);
  c.execScript("DROP TABLE uniq");
}

TEST_F(DbTest, TransactionRollsBackUnlessCommitted) {
  Connection c(dsn());
  c.execScript("DROP TABLE IF EXISTS tx; CREATE TABLE tx (v text)");
  {
    Transaction t(c);
    t.exec("INSERT INTO tx VALUES ($1)", {"discarded"});
    EXPECT_EQ(t.exec("SELECT count(*) FROM tx").int64(0, 0), 1);  // visible inside
  }
  EXPECT_EQ(PQtransactionStatus(c.raw()), PQTRANS_IDLE);
  EXPECT_EQ(c.exec("SELECT count(*) FROM tx").int64(0, 0), 0);
  {
    Transaction t(c);
    t.exec("INSERT INTO tx VALUES ($1)", {"kept"});
    t.commit();
  }
  // Another connection sees the committed row.
  Connection other(dsn());
  const auto r = other.exec("SELECT v FROM tx");
  ASSERT_EQ(r.rows(), 1);
  EXPECT_EQ(r.text(0, 0), "kept");
  c.execScript("DROP TABLE tx");
}

TEST_F(DbTest, ExceptionInsideATransactionLeavesNoRows) {
  Connection c(dsn());
  c.execScript("DROP TABLE IF EXISTS txe; CREATE TABLE txe (id int PRIMARY KEY)");
  EXPECT_THROW(
      {
        Transaction t(c);
        t.exec("INSERT INTO txe VALUES (1)");
        t.exec("INSERT INTO txe VALUES (2)");
        throw std::runtime_error("request failed half-way");
      },
      std::runtime_error);
  EXPECT_EQ(c.exec("SELECT count(*) FROM txe").int64(0, 0), 0);
  // A database error half-way (the transaction is then aborted) is rolled back the same way.
  EXPECT_THROW(
      {
        Transaction t(c);
        t.exec("INSERT INTO txe VALUES (1)");
        t.exec("INSERT INTO txe VALUES (1)");
        t.commit();
      },
      DbError);
  EXPECT_EQ(PQtransactionStatus(c.raw()), PQTRANS_IDLE);
  EXPECT_EQ(c.exec("SELECT count(*) FROM txe").int64(0, 0), 0);
  c.execScript("DROP TABLE txe");
}

TEST_F(DbTest, TransactionIsolationLevels) {
  Connection c(dsn());
  {
    Transaction t(c, Transaction::Isolation::RepeatableRead);
    EXPECT_EQ(t.exec("SHOW transaction_isolation").text(0, 0), "repeatable read");
  }
  {
    Transaction t(c, Transaction::Isolation::Serializable);
    EXPECT_EQ(t.exec("SHOW transaction_isolation").text(0, 0), "serializable");
  }
  Transaction t(c);
  EXPECT_EQ(t.exec("SHOW transaction_isolation").text(0, 0), "read committed");
}

TEST_F(DbTest, PoolReusesReturnedConnections) {
  Pool pool(dsn(), 1);
  std::string firstPid;
  {
    auto lease = pool.acquire();
    firstPid = lease->exec("SELECT pg_backend_pid()::text").text(0, 0);
  }
  auto lease = pool.acquire();
  EXPECT_EQ(lease->exec("SELECT pg_backend_pid()::text").text(0, 0), firstPid);
  EXPECT_EQ(pool.dsn(), dsn());
}

TEST_F(DbTest, PoolAcquireTimesOutWhenAllConnectionsAreLeased) {
  Pool pool(dsn(), 2);
  auto a = pool.acquire();
  auto b = pool.acquire();
  const auto start = std::chrono::steady_clock::now();
  const auto e = dbError([&] { pool.acquire(150ms); });
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, 150ms);
  EXPECT_LT(waited, 3s);
  EXPECT_NE(std::string(e.what()).find("no free connection within 150 ms (pool of 2)"),
            std::string::npos)
      << e.what();
  // Both leased connections still work, and returning one makes room again.
  EXPECT_EQ(a->exec("SELECT 1").int64(0, 0), 1);
  { auto released = std::move(b); }
  auto c = pool.acquire(150ms);
  EXPECT_EQ(c->exec("SELECT 2").int64(0, 0), 2);
}

TEST_F(DbTest, PoolWaiterGetsAConnectionReturnedMeanwhile) {
  Pool pool(dsn(), 1);
  auto held = std::make_unique<Pool::Lease>(pool.acquire());
  std::thread releaser([&] {
    std::this_thread::sleep_for(100ms);
    held.reset();
  });
  const auto start = std::chrono::steady_clock::now();
  auto lease = pool.acquire(10s);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_EQ(lease->exec("SELECT 3").int64(0, 0), 3);
  releaser.join();
}

TEST_F(DbTest, PoolCloseEndsEverySessionOnceTheLeasesComeBack) {
  Connection watcher(dsn());
  const auto sessions = [&] {
    return watcher
        .exec("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
              "pid <> pg_backend_pid()")
        .int64(0, 0);
  };
  Pool pool(dsn(), 3);
  { auto idle = pool.acquire(); }
  auto held = std::make_unique<Pool::Lease>(pool.acquire());
  ASSERT_EQ(sessions(), 1) << "the idle connection was reused for the held lease";
  auto other = std::make_unique<Pool::Lease>(pool.acquire());
  ASSERT_EQ(sessions(), 2);
  other.reset();  // idle again
  std::thread releaser([&] {
    std::this_thread::sleep_for(150ms);
    held.reset();
  });
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(pool.close(5s));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 100ms) << "it waited for the lease";
  releaser.join();
  // close() has ended every connection (PQfinish) when it returns; each server backend then
  // exits on its own a moment later (PostgreSQL's CREATE DATABASE ... TEMPLATE waits for
  // that too), so its row leaves pg_stat_activity shortly after, not at once. Kept leases or
  // idle connections stay there for good.
  EXPECT_TRUE(vcrm::test::eventually([&] { return sessions() == 0; }, 3s, 10ms))
      << sessions() << " sessions left after close() returned";
  const auto e = dbError([&] { pool.acquire(1s); });
  EXPECT_NE(std::string(e.what()).find("closed"), std::string::npos) << e.what();
}

TEST_F(DbTest, PoolCloseGivesUpOnALeaseKeptPastItsTimeout) {
  Pool pool(dsn(), 2);
  auto held = pool.acquire();
  EXPECT_FALSE(pool.close(100ms));
  EXPECT_EQ(held->exec("SELECT 4").int64(0, 0), 4) << "a kept lease still works until returned";
}

TEST_F(DbTest, PoolDoesNotHandOutAConnectionLeftInAnOpenTransaction) {
  Connection setup(dsn());
  setup.execScript("DROP TABLE IF EXISTS dirty; CREATE TABLE dirty (v text)");
  Pool pool(dsn(), 1);
  {
    auto lease = pool.acquire();
    lease->exec("BEGIN");
    lease->exec("INSERT INTO dirty VALUES ($1)", {"never committed"});
    ASSERT_EQ(PQtransactionStatus(lease->raw()), PQTRANS_INTRANS);
  }  // returned without COMMIT or ROLLBACK
  {
    auto lease = pool.acquire();
    EXPECT_EQ(PQtransactionStatus(lease->raw()), PQTRANS_IDLE);
    // The abandoned transaction had written a row, so it had an id; a clean session has none.
    EXPECT_TRUE(lease->exec("SELECT pg_current_xact_id_if_assigned() IS NULL").boolean(0, 0));
    lease->exec("INSERT INTO dirty VALUES ($1)", {"committed"});  // autocommit
  }
  const auto r = setup.exec("SELECT v FROM dirty");
  ASSERT_EQ(r.rows(), 1);
  EXPECT_EQ(r.text(0, 0), "committed");
  setup.execScript("DROP TABLE dirty");
}

TEST_F(DbTest, PoolDoesNotHandOutAConnectionLeftInAFailedTransaction) {
  Pool pool(dsn(), 1);
  {
    auto lease = pool.acquire();
    lease->exec("BEGIN");
    EXPECT_THROW(lease->exec("SELECT 1/0"), DbError);
    ASSERT_EQ(PQtransactionStatus(lease->raw()), PQTRANS_INERROR);
  }
  auto lease = pool.acquire();
  // Would be "current transaction is aborted" on the dirty connection.
  EXPECT_EQ(lease->exec("SELECT 5").int64(0, 0), 5);
}

TEST_F(DbTest, PoolRecoversAfterTheServerDropsAConnection) {
  Pool pool(dsn(), 1);
  std::string pid;
  {
    auto lease = pool.acquire();
    pid = lease->exec("SELECT pg_backend_pid()::text").text(0, 0);
  }
  Connection admin(dsn());
  ASSERT_TRUE(admin.exec("SELECT pg_terminate_backend($1::int)", {pid}).boolean(0, 0));
  // pg_terminate_backend only signals; wait until the backend process has exited (gone, or a
  // zombie), which is when its socket is closed.
  const auto exited = [&] {
    std::string status;
    try {
      status = vcrm::files::readFile("/proc/" + pid + "/status");
    } catch (const vcrm::IoError&) {
      return true;
    }
    return status.find("State:\tZ") != std::string::npos;
  };
  for (int i = 0; i < 500 && !exited(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(exited()) << "backend " << pid << " never exited";
  // The very next lease is a working connection: the pool noticed the closed socket itself.
  auto lease = pool.acquire();
  EXPECT_EQ(lease->exec("SELECT 6").int64(0, 0), 6);
  EXPECT_NE(lease->exec("SELECT pg_backend_pid()::text").text(0, 0), pid);
}

TEST_F(DbTest, PoolUnderConcurrentUse) {
  constexpr int kThreads = 8;
  constexpr int kQueries = 50;
  Pool pool(dsn(), 4);
  std::atomic<int> ok{0};
  std::atomic<int> wrong{0};
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      try {
        for (int i = 0; i < kQueries; ++i) {
          auto lease = pool.acquire(30s);
          const int n = t * 1000 + i;
          if (lease->exec("SELECT $1::int + 1", {n}).int64(0, 0) == n + 1) {
            ++ok;
          } else {
            ++wrong;
          }
        }
      } catch (const std::exception& e) {
        errors[static_cast<std::size_t>(t)] = e.what();
      }
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& e : errors) EXPECT_EQ(e, "");
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(ok, kThreads * kQueries);
}

TEST_F(DbTest, DsnQuotingSurvivesQuotesAndBackslashes) {
  // A database name with a quote and a backslash reaches the server intact.
  const std::string name = "we'ird\\db name";
  const auto e = dbError([&] { Connection c(cluster_->dsn(name)); });
  EXPECT_NE(std::string(e.what()).find("\"" + name + "\""), std::string::npos) << e.what();
  EXPECT_EQ(dsnQuote("a'b\\c"), "'a\\'b\\\\c'");
  EXPECT_EQ(dsnQuote(""), "''");
}

TEST_F(DbTest, ExecScriptRunsSeveralStatements) {
  Connection c(dsn());
  c.execScript(
      "DROP TABLE IF EXISTS script; CREATE TABLE script (id int);\n"
      "INSERT INTO script VALUES (1), (2);\n"
      "-- a comment\n"
      "INSERT INTO script VALUES (3);");
  EXPECT_EQ(c.exec("SELECT sum(id) FROM script").int64(0, 0), 6);
  c.execScript("DROP TABLE script");
}

TEST(DbConnection, WrongSocketDirNamesThePath) {
  // Needs no server: nothing listens there.
  test::TempDir dir("vcrm-db");
  const std::string missing = (dir.path() / "no-such-socket-dir").string();
  const auto e = dbError([&] {
    Connection c("host=" + dsnQuote(missing) + " port=5432 dbname=vcrm connect_timeout=2");
  });
  EXPECT_NE(std::string(e.what()).find("cannot connect to PostgreSQL"), std::string::npos)
      << e.what();
  EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
}

TEST(QuoteIdentifier, AcceptsPlainLowerCaseNames) {
  EXPECT_EQ(quoteIdentifier("vcrm_2"), "\"vcrm_2\"");
  EXPECT_EQ(quoteIdentifier("_x"), "\"_x\"");
  EXPECT_EQ(quoteIdentifier(std::string(63, 'a')), "\"" + std::string(63, 'a') + "\"");
}

TEST(QuoteIdentifier, RefusesEverythingElse) {
  for (const std::string& bad :
       {std::string("\"; DROP TABLE x; --"), std::string("Upper"), std::string(""),
        std::string(64, 'a'), std::string("2vcrm"), std::string("a b"), std::string("a\"b"),
        std::string("a-b"), std::string("caf\xc3\xa9"), std::string("a\nb")}) {
    try {
      quoteIdentifier(bad);
      ADD_FAILURE() << "accepted \"" << bad << "\"";
    } catch (const InvalidInput& e) {
      EXPECT_NE(std::string(e.what()).find("lower-case letters, digits and _"), std::string::npos)
          << e.what();
    }
  }
  EXPECT_THROW(quoteIdentifier(std::string("a\0b", 3)), InvalidInput);
}

}  // namespace
}  // namespace vcrm::db
