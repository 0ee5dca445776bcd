// PostgreSQL's own dump and restore programs, run for the backup archives: pg_dump of one
// database into a custom-format file (a consistent snapshot, taking only ACCESS SHARE locks, so
// the appliance keeps serving), and pg_restore of such a file into an empty database. The
// compression level and the number of restore jobs are the levers tests/bench/backup_vs_pg_dump
// measures.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

namespace vcrm::upgrade {

// Where the programs are and how long one run may take.
struct PgTools {
  std::string binDir;  // e.g. /usr/lib/postgresql/15/bin; empty: the newest installed
  std::chrono::milliseconds timeout = std::chrono::hours(6);
  [[nodiscard]] std::string program(const std::string& name) const;
  // "pg_dump (PostgreSQL) 15.8" -> "15.8"
  [[nodiscard]] std::string version(const std::string& name) const;
};

struct DumpOptions {
  int compressLevel = 1;  // 0-9, as pg_dump -Z; 1 is fast and still shrinks CDRs well
};

// Dumps `dsn` with pg_dump -Fc into `file`, which must not exist; on failure the file is
// removed and IoError says what pg_dump said.
void dumpDatabase(const PgTools& tools, const std::string& dsn, const std::filesystem::path& file,
                  const DumpOptions& options = {});

struct RestoreOptions {
  int jobs = 2;  // pg_restore -j; custom-format files from a seekable file allow it
};

// Loads a custom-format dump into the empty database `dsn` (no owner or privilege statements,
// everything in one go or an IoError with pg_restore's words).
void restoreDatabase(const PgTools& tools, const std::string& dsn, const std::filesystem::path& file,
                     const RestoreOptions& options = {});

}  // namespace vcrm::upgrade
