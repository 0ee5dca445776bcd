// Schema migrations: migrations/NNNN_name.sql applied in order, each in one transaction and
// recorded with its SHA-256. A schema newer than the binary, or an applied migration whose
// text changed, stops start-up with a message that says what to do.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "vcrm/common/db.h"
#include "vcrm/common/log.h"

namespace vcrm {

struct EmbeddedMigration {
  std::string_view name;
  std::string_view sql;
};
// Generated at build time from migrations/*.sql.
const std::vector<EmbeddedMigration>& embeddedMigrations();

struct Migration {
  int version;
  std::string name;  // file name, e.g. 0001_initial.sql
  std::string sql;
  std::string sha256;  // hex of the file's bytes
};

// The built-in migrations, or those in `dir` when it is not empty. Throws StartupError for a
// badly named file, a gap or a duplicate version.
std::vector<Migration> loadMigrations(const std::filesystem::path& dir = {});

// Brings the database to the newest schema; returns the resulting version.
int migrate(db::Connection& c, const std::vector<Migration>& migrations, Logger& log);

// The newest applied version, 0 for an empty database.
int schemaVersion(db::Connection& c);

}  // namespace vcrm
