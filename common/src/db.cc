#include "vcrm/common/db.h"

#include <charconv>
#include <cstdio>
#include <cstdlib>

#include "vcrm/common/error.h"

namespace vcrm::db {

namespace {

std::string trimmed(const char* msg) {
  std::string s = msg ? msg : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Turns a finished PGresult into a Result, or throws DbError carrying SQLSTATE.
Result check(PGresult* raw, PGconn* conn) {
  Result r(raw);
  const auto status = raw ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return r;
  std::string state;
  std::string msg;
  if (raw) {
    const char* s = PQresultErrorField(raw, PG_DIAG_SQLSTATE);
    state = s ? s : "";
    msg = trimmed(PQresultErrorMessage(raw));
  }
  if (msg.empty()) msg = trimmed(PQerrorMessage(conn));
  throw DbError("database: " + msg, state);
}

}  // namespace

std::string Result::text(int row, int col) const {
  return std::string(PQgetvalue(r_.get(), row, col),
                     static_cast<std::size_t>(PQgetlength(r_.get(), row, col)));
}

std::optional<std::string> Result::optText(int row, int col) const {
  if (isNull(row, col)) return std::nullopt;
  return text(row, col);
}

std::int64_t Result::int64(int row, int col) const {
  const std::string t = text(row, col);
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc() || p != t.data() + t.size()) {
    throw DbError("database: column " + columnName(col) + " is not an integer: \"" + t + "\"");
  }
  return v;
}

bool Result::boolean(int row, int col) const {
  return text(row, col) == "t";
}

int Result::column(std::string_view name) const {
  const int c = PQfnumber(r_.get(), std::string(name).c_str());
  if (c < 0) throw DbError("database: result has no column \"" + std::string(name) + "\"");
  return c;
}

long Result::affected() const {
  const char* n = PQcmdTuples(r_.get());
  return (n && *n) ? std::strtol(n, nullptr, 10) : 0;
}

Connection::Connection(const std::string& dsn) : c_(PQconnectdb(dsn.c_str())) {
  if (!c_ || PQstatus(c_.get()) != CONNECTION_OK) {
    throw DbError("cannot connect to PostgreSQL: " +
                  (c_ ? trimmed(PQerrorMessage(c_.get())) : std::string("out of memory")));
  }
  // Notices (e.g. "relation already exists, skipping") are not operator news.
  PQsetNoticeProcessor(
      c_.get(), [](void*, const char*) {}, nullptr);
}

Result Connection::exec(Sql sql, const std::vector<Param>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) {
    // libpq takes C strings: a NUL would silently cut the value short, so refuse it the way
    // PostgreSQL refuses NUL in text.
    if (p.value() && p.value()->find('\0') != std::string::npos) {
      throw DbError("database: parameter $" + std::to_string(values.size() + 1) +
                        " contains a NUL byte, which PostgreSQL text cannot store",
                    "22021");
    }
    values.push_back(p.value() ? p.value()->c_str() : nullptr);
  }
  PGresult* r = PQexecParams(c_.get(), sql.c_str(), static_cast<int>(params.size()), nullptr,
                             values.data(), nullptr, nullptr, 0);
  return check(r, c_.get());
}

void Connection::execScript(const std::string& script) {
  check(PQexec(c_.get(), script.c_str()), c_.get());
}

bool Connection::ok() const {
  return c_ && PQstatus(c_.get()) == CONNECTION_OK;
}

bool Connection::alive() {
  if (!ok()) return false;
  if (PQtransactionStatus(c_.get()) != PQTRANS_IDLE) return true;
  // The first read may take the server's last words (a FATAL notice); the second meets the EOF.
  for (int i = 0; i < 2 && ok(); ++i) {
    if (!PQconsumeInput(c_.get())) break;
  }
  return ok();
}

bool Connection::reset() {
  PQreset(c_.get());
  return ok();
}

Transaction::Transaction(Connection& c, Isolation iso) : c_(c) {
  switch (iso) {
    case Isolation::ReadCommitted:
      c_.exec("BEGIN");
      break;
    case Isolation::RepeatableRead:
      c_.exec("BEGIN ISOLATION LEVEL REPEATABLE READ");
      break;
    case Isolation::Serializable:
      c_.exec("BEGIN ISOLATION LEVEL SERIALIZABLE");
      break;
  }
}

Transaction::~Transaction() {
  if (done_) return;
  try {
    c_.exec("ROLLBACK");
  } catch (...) {  // NOLINT(bugprone-empty-catch): a broken connection has rolled back anyway
  }
}

void Transaction::commit() {
  c_.exec("COMMIT");
  done_ = true;
}

namespace {
thread_local int leasesHeld = 0;
}  // namespace

Pool::Pool(std::string dsn, std::size_t size, bool strictLeases)
    : dsn_(std::move(dsn)), size_(size ? size : 1), strictLeases_(strictLeases) {}

Pool::~Pool() = default;

int Pool::leasesHeldByThisThread() {
  return leasesHeld;
}

Pool::Lease::Lease(Pool* pool, std::unique_ptr<Connection> c) : pool_(pool), c_(std::move(c)) {
  ++leasesHeld;
}

Pool::Lease::~Lease() {
  if (pool_ && c_) {
    --leasesHeld;
    pool_->giveBack(std::move(c_));
  }
}

Pool::Lease Pool::acquire(std::chrono::milliseconds timeout) {
  if (strictLeases_ && leasesHeld > 0) {
    // A debug guard, not an error path: the caller's code breaks the one-lease rule.
    std::fprintf(stderr,
                 "vcrm: FATAL: a second database connection was acquired by a thread that "
                 "already holds one (db.strict_leases)\n");
    std::abort();
  }
  {
    auto st = state_.lock();
    const bool got = st.waitFor(freed_, timeout, [&] {
      return st->closed || !st->idle.empty() || st->outstanding < size_;
    });
    if (st->closed) {
      throw DbError("database: the connections are closed (the appliance is stopping or upgrading)");
    }
    if (!got) {
      throw DbError("database: no free connection within " + std::to_string(timeout.count()) +
                    " ms (pool of " + std::to_string(size_) + ")");
    }
    if (!st->idle.empty()) {
      auto c = std::move(st->idle.back());
      st->idle.pop_back();
      if (c->alive() || c->reset()) return Lease(this, std::move(c));
      --st->outstanding;  // dead connection: drop it and make a new one below
    }
    ++st->outstanding;
  }
  try {
    return Lease(this, std::make_unique<Connection>(dsn_));
  } catch (...) {
    --state_.lock()->outstanding;
    freed_.notify_one();
    throw;
  }
}

bool Pool::close(std::chrono::milliseconds timeout) {
  std::vector<std::unique_ptr<Connection>> closing;
  bool allBack = false;
  {
    auto st = state_.lock();
    st->closed = true;
    freed_.notify_all();
    allBack = st.waitFor(freed_, timeout, [&] { return st->outstanding == st->idle.size(); });
    st->outstanding -= st->idle.size();
    closing.swap(st->idle);
  }
  closing.clear();  // PQfinish outside the lock
  return allBack;
}

void Pool::giveBack(std::unique_ptr<Connection> c) {
  if (state_.lock()->closed) {
    c.reset();  // the session ends before close() can see it counted out
    --state_.lock()->outstanding;
    freed_.notify_all();
    return;
  }
  {
    auto st = state_.lock();
    // A connection left inside a failed or open transaction must not be reused as is.
    if (!st->closed && c->ok() && PQtransactionStatus(c->raw()) == PQTRANS_IDLE) {
      st->idle.push_back(std::move(c));
    } else {
      --st->outstanding;
    }
  }
  freed_.notify_all();
}

std::string quoteIdentifier(std::string_view name) {
  bool valid = !name.empty() && name.size() < 64 && !(name[0] >= '0' && name[0] <= '9');
  for (char ch : name) {
    valid = valid && ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_');
  }
  if (!valid) {
    throw InvalidInput("\"" + std::string(name) +
                       "\" is not a valid database name: use lower-case letters, digits and _");
  }
  return "\"" + std::string(name) + "\"";
}

void dropDatabase(Connection& c, std::string_view name) {
  c.execScript("DROP DATABASE IF EXISTS " + quoteIdentifier(name) + " WITH (FORCE)");
}

namespace {

struct ConninfoDeleter {
  void operator()(PQconninfoOption* o) const { PQconninfoFree(o); }
};
using Conninfo = std::unique_ptr<PQconninfoOption, ConninfoDeleter>;

Conninfo parseConninfo(const std::string& dsn) {
  char* err = nullptr;
  Conninfo options(PQconninfoParse(dsn.c_str(), &err));
  if (!options) {
    std::string why = err ? err : "out of memory";
    PQfreemem(err);
    while (!why.empty() && why.back() == '\n') why.pop_back();
    throw ConfigError("the database connection string cannot be read: " + why +
                      "; fix db.dsn (key=value pairs or a postgresql:// URI)");
  }
  return options;
}

}  // namespace

std::string withDatabase(const std::string& dsn, const std::string& dbname) {
  const Conninfo options = parseConninfo(dsn);
  std::string out;
  bool named = false;
  for (const PQconninfoOption* o = options.get(); o->keyword != nullptr; ++o) {
    const std::string key = o->keyword;
    if (key == "dbname") {
      named = true;
    } else if (o->val == nullptr) {
      continue;
    }
    if (!out.empty()) out += ' ';
    out += key + "=" + dsnQuote(key == "dbname" ? std::string_view(dbname) : o->val);
  }
  if (!named) out += (out.empty() ? "" : " ") + std::string("dbname=") + dsnQuote(dbname);
  return out;
}

std::string databaseOf(const std::string& dsn) {
  const Conninfo options = parseConninfo(dsn);
  for (const PQconninfoOption* o = options.get(); o->keyword != nullptr; ++o) {
    if (std::string_view(o->keyword) == "dbname" && o->val != nullptr) return o->val;
  }
  return {};
}

std::string dsnQuote(std::string_view value) {
  std::string out = "'";
  for (char ch : value) {
    if (ch == '\'' || ch == '\\') out += '\\';
    out += ch;
  }
  out += '\'';
  return out;
}

}  // namespace vcrm::db
