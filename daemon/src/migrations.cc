#include "vcrm/daemon/migrations.h"

#include <algorithm>
#include <map>
#include <regex>

#include "vcrm/common/crypto.h"
#include "vcrm/common/error.h"
#include "vcrm/common/files.h"

namespace vcrm {

namespace {

constexpr const char* kComponent = "migrate";

Migration makeMigration(const std::string& name, std::string sql) {
  static const std::regex pattern(R"(^(\d{4})_[a-z0-9_]+\.sql$)");
  std::smatch m;
  if (!std::regex_match(name, m, pattern)) {
    throw StartupError("migration file \"" + name + "\" is not named NNNN_name.sql");
  }
  Migration mig{std::stoi(m[1].str()), name, std::move(sql), {}};
  mig.sha256 = crypto::sha256Hex(mig.sql);
  return mig;
}

void ensureTable(db::Connection& c) {
  c.exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations ("
      " version integer PRIMARY KEY,"
      " name text NOT NULL,"
      " sha256 text NOT NULL,"
      " applied_at timestamptz NOT NULL DEFAULT now())");
}

}  // namespace

std::vector<Migration> loadMigrations(const std::filesystem::path& dir) {
  std::vector<Migration> out;
  if (dir.empty()) {
    for (const auto& e : embeddedMigrations()) {
      out.push_back(makeMigration(std::string(e.name), std::string(e.sql)));
    }
  } else {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      if (entry.path().extension() != ".sql") continue;
      out.push_back(makeMigration(entry.path().filename().string(), files::readFile(entry.path())));
    }
    if (ec) throw StartupError("cannot read migrations from " + dir.string() + ": " + ec.message());
  }
  std::sort(out.begin(), out.end(),
            [](const Migration& a, const Migration& b) { return a.version < b.version; });
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i].version != static_cast<int>(i) + 1) {
      throw StartupError("migrations must be numbered 0001, 0002, ... without gaps or repeats; "
                         "found " + out[i].name + " at position " + std::to_string(i + 1));
    }
  }
  if (out.empty()) throw StartupError("no migrations found" + (dir.empty() ? "" : " in " + dir.string()));
  return out;
}

int schemaVersion(db::Connection& c) {
  auto exists = c.exec("SELECT to_regclass('schema_migrations') IS NOT NULL");
  if (!exists.boolean(0, 0)) return 0;
  auto r = c.exec("SELECT coalesce(max(version), 0) FROM schema_migrations");
  return static_cast<int>(r.int64(0, 0));
}

int migrate(db::Connection& c, const std::vector<Migration>& migrations, Logger& log) {
  // A session-level advisory lock: two vcrmd processes on one database never migrate at once.
  c.exec("SELECT pg_advisory_lock(hashtext('vcrm.schema_migrations'))");
  struct Unlock {
    db::Connection& c;
    ~Unlock() {
      try {
        c.exec("SELECT pg_advisory_unlock(hashtext('vcrm.schema_migrations'))");
      } catch (...) {  // NOLINT(bugprone-empty-catch): the lock dies with the connection anyway
      }
    }
  } unlock{c};

  ensureTable(c);
  const int newestKnown = migrations.back().version;
  auto applied = c.exec("SELECT version, name, sha256 FROM schema_migrations ORDER BY version");
  for (int i = 0; i < applied.rows(); ++i) {
    const int v = static_cast<int>(applied.int64(i, 0));
    if (v > newestKnown) {
      throw StartupError("the database schema is at version " +
                         std::to_string(applied.int64(applied.rows() - 1, 0)) +
                         " but this vcrmd knows versions up to " + std::to_string(newestKnown) +
                         ": the database was written by a newer vcrm. Start the newer version, "
                         "or restore a backup taken with this one.");
    }
    const auto& m = migrations[static_cast<std::size_t>(v - 1)];
    if (applied.text(i, 2) != m.sha256 || applied.text(i, 1) != m.name) {
      throw StartupError("migration " + applied.text(i, 1) + " was changed after it was applied " +
                         "(recorded SHA-256 " + applied.text(i, 2) + ", now " + m.name + " " +
                         m.sha256 + "). Released migrations must never be edited: restore the " +
                         "original file and put the change in a new migration.");
    }
  }
  int current = applied.empty() ? 0 : static_cast<int>(applied.int64(applied.rows() - 1, 0));
  for (const auto& m : migrations) {
    if (m.version <= current) continue;
    log.info(kComponent, "MIGRATE_APPLY", "applying migration " + m.name, std::to_string(m.version));
    db::Transaction tx(c);
    try {
      tx.execScript(m.sql);
    } catch (const DbError& e) {
      throw StartupError("migration " + m.name + " failed and was rolled back: " + e.what());
    }
    tx.exec("INSERT INTO schema_migrations (version, name, sha256) VALUES ($1, $2, $3)",
            {m.version, m.name, m.sha256});
    tx.commit();
    current = m.version;
  }
  return current;
}

}  // namespace vcrm
