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
  // 0-9, as pg_dump -Z. 1: measured by tests/bench/backup_vs_pg_dump on 1,000,000 CDRs, a
  // whole backup at -Z 1 takes 0.52 of plain pg_dump's time (its default -Z 6) for an archive
  // 1.25 times its dump; at -Z 6 it takes 1.14, at -Z 0 0.79 for 7.5 times the size.
  int compressLevel = 1;
  // A snapshot exported by a transaction the caller holds open (pg_export_snapshot()): the dump
  // then sees exactly what that transaction sees, so counts taken in it match the dump.
  std::string snapshot{};
};

// Dumps `dsn` with pg_dump -Fc into `file`, which must not exist; on failure the file is
// removed and IoError says what pg_dump said.
void dumpDatabase(const PgTools& tools, const std::string& dsn, const std::filesystem::path& file,
                  const DumpOptions& options = {});

struct RestoreOptions {
  // pg_restore -j; custom-format files from a seekable file allow it. 2: on the 2-core dev box
  // a whole restore (verification included) takes 0.94 of plain pg_restore's time, against 1.12
  // with one job in one transaction (tests/bench/backup_vs_pg_dump).
  int jobs = 2;
};

// Loads a custom-format dump into the empty database `dsn` (no owner or privilege statements,
// everything in one go or an IoError with pg_restore's words).
void restoreDatabase(const PgTools& tools, const std::string& dsn, const std::filesystem::path& file,
                     const RestoreOptions& options = {});

}  // namespace vcrm::upgrade
