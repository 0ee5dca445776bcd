// PostgreSQL access on libpq: RAII connection and result, a transaction that rolls back
// unless committed, and a small pool. Statements are SQL literals with $1..$n parameters:
// `Sql` can only be built from a string literal, so SQL cannot be assembled from input.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vcrm/common/guarded.h"

namespace vcrm::db {

// A compile-time SQL text. Only literals convert to it (consteval), which keeps user input
// out of statement text; values travel as parameters.
class Sql {
 public:
  template <std::size_t N>
  consteval Sql(const char (&text)[N]) : text_(text) {}  // NOLINT(google-explicit-constructor)
  const char* c_str() const { return text_; }

 private:
  const char* text_;
};

// A statement parameter: text or SQL NULL. Numbers and bools convert to their text form.
class Param {
 public:
  Param(std::nullptr_t) {}                               // NOLINT
  Param(std::string v) : value_(std::move(v)) {}         // NOLINT
  Param(std::string_view v) : value_(std::string(v)) {}  // NOLINT
  Param(const char* v) : value_(std::string(v)) {}       // NOLINT
  Param(bool v) : value_(v ? "t" : "f") {}               // NOLINT
  Param(int v) : value_(std::to_string(v)) {}            // NOLINT
  Param(long v) : value_(std::to_string(v)) {}           // NOLINT
  Param(long long v) : value_(std::to_string(v)) {}      // NOLINT
  Param(unsigned v) : value_(std::to_string(v)) {}       // NOLINT
  Param(unsigned long v) : value_(std::to_string(v)) {}  // NOLINT
  Param(double v) : value_(std::to_string(v)) {}         // NOLINT
  template <typename T>
  Param(const std::optional<T>& v) {  // NOLINT
    if (v) value_ = Param(*v).value_;
  }
  const std::optional<std::string>& value() const { return value_; }

 private:
  std::optional<std::string> value_;
};

struct PGresultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
struct PGconnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};

// The rows of a successful statement. Values are text; NULL is distinguishable.
class Result {
 public:
  explicit Result(PGresult* r) : r_(r) {}
  int rows() const { return PQntuples(r_.get()); }
  int columns() const { return PQnfields(r_.get()); }
  bool empty() const { return rows() == 0; }
  bool isNull(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
  std::string text(int row, int col) const;
  std::optional<std::string> optText(int row, int col) const;
  std::int64_t int64(int row, int col) const;
  bool boolean(int row, int col) const;
  int column(std::string_view name) const;  // throws DbError if absent
  std::string columnName(int col) const { return PQfname(r_.get(), col); }
  long affected() const;  // rows changed by INSERT/UPDATE/DELETE

 private:
  std::unique_ptr<PGresult, PGresultDeleter> r_;
};

class Connection {
 public:
  // Connects with a libpq connection string; throws DbError saying what failed.
  explicit Connection(const std::string& dsn);
  Result exec(Sql sql, const std::vector<Param>& params = {});
  // Runs a multi-statement script as-is (migrations only: the text comes from our own files).
  void execScript(const std::string& script);
  bool ok() const;
  // Like ok(), but first reads whatever the server sent an idle connection: a server that
  // restarted or ended this backend has closed the socket, and only a read tells. Never blocks
  // (libpq sockets are non-blocking).
  bool alive();
  // Resets a broken connection; returns false if the server is still unreachable.
  bool reset();
  PGconn* raw() { return c_.get(); }

 private:
  std::unique_ptr<PGconn, PGconnDeleter> c_;
};

// BEGIN on construction; ROLLBACK in the destructor unless commit() succeeded.
class Transaction {
 public:
  enum class Isolation { ReadCommitted, RepeatableRead, Serializable };
  explicit Transaction(Connection& c, Isolation iso = Isolation::ReadCommitted);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  Result exec(Sql sql, const std::vector<Param>& params = {}) { return c_.exec(sql, params); }
  void execScript(const std::string& script) { c_.execScript(script); }
  void commit();
  Connection& connection() { return c_; }

 private:
  Connection& c_;
  bool done_ = false;
};

// A fixed-size pool of connections. acquire() waits up to `timeout` for a free one.
// A thread holds at most one lease at a time: a second acquire while holding one can wait on
// connections that are all held by threads doing the same (a burst then exhausts the pool).
// With strict leases (tests, `db.strict_leases`) such an acquire aborts the process, loudly.
class Pool {
 public:
  Pool(std::string dsn, std::size_t size, bool strictLeases = false);
  ~Pool();

  class Lease {
   public:
    Lease(Pool* pool, std::unique_ptr<Connection> c);
    ~Lease();
    Lease(Lease&&) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    Connection& operator*() { return *c_; }
    Connection* operator->() { return c_.get(); }

   private:
    Pool* pool_;
    std::unique_ptr<Connection> c_;
  };

  Lease acquire(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  const std::string& dsn() const { return dsn_; }
  // Closes every connection for good (an upgrade snapshots the database, which needs no other
  // session on it): acquire() throws DbError from now on, idle connections are closed at once
  // and leased ones as they are given back. Returns whether every lease came back within
  // `timeout`; the caller must not hold one.
  bool close(std::chrono::milliseconds timeout);
  // Leases the calling thread holds now (from any pool).
  static int leasesHeldByThisThread();

 private:
  void giveBack(std::unique_ptr<Connection> c);
  struct State {
    std::vector<std::unique_ptr<Connection>> idle;
    std::size_t outstanding = 0;  // connections created and not destroyed
    bool closed = false;
  };
  std::string dsn_;
  std::size_t size_;
  bool strictLeases_;
  Guarded<State> state_;
  std::condition_variable freed_;
};

// Quotes an SQL identifier (for the rare statements, like CREATE DATABASE, that cannot take
// parameters). Throws InvalidInput unless the name is [a-z_][a-z0-9_]{0,62}.
std::string quoteIdentifier(std::string_view name);
// DROP DATABASE IF EXISTS name WITH (FORCE), on `c` (connected to another database): its
// sessions are ended, and a database that is not there is not an error.
void dropDatabase(Connection& c, std::string_view name);

// Quotes a connection-string value per libpq rules ('...' with \ and ' escaped).
std::string dsnQuote(std::string_view value);

// `dsn` (key=value or a postgresql:// URI) naming database `dbname` instead, as key='value'
// pairs; parsed by libpq (PQconninfoParse), so quoting and URIs are read as libpq reads them.
// Throws ConfigError when libpq cannot parse `dsn`.
std::string withDatabase(const std::string& dsn, const std::string& dbname);
// The database `dsn` names ("" when it names none).
std::string databaseOf(const std::string& dsn);

}  // namespace vcrm::db
