// backup_vs_pg_dump: what a vcrm backup and restore cost against PostgreSQL's own tools on the
// same database, in the same run. The database is vcrm's real schema (its migrations) filled
// with 1,000,000 participant CDRs (participant legs with names, join and leave times, end
// reasons) of 100,000 ended conferences with their conference CDRs. Baselines: `pg_dump -Fc`
// with its defaults into a file, and `pg_restore` with its defaults into an empty database.
// Ours: the create the daemon does (upgrade::dumpDatabase, then upgrade::writeArchive of the
// dump and the appliance's other members: hashing, AES-256-GCM, scrypt) and the restore it does
// (upgrade::extractArchive, which verifies everything, then upgrade::restoreDatabase into an
// empty database). Each measurement runs in a forked process of its own, so the peak memory of
// that process (VmHWM) and of the programs it ran (RUSAGE_CHILDREN) are its own.
// Prints "backup_vs_pg_dump: <ratio>" where ratio = the larger of (our create time / pg_dump's)
// and (our restore time / pg_restore's), best of N interleaved rounds, with the shipped defaults
// (<= 1.0: no slower than PostgreSQL's tools alone), then a table of every lever measured (pg_dump
// -Z 0/1/6, pg_restore -j 1/2, the container's chunk size).
//   bench_backup_vs_pg_dump [participant legs, default 1000000] [rounds, default 3]
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "temp_dir.h"
#include "vcrm/common/crypto.h"
#include "vcrm/common/db.h"
#include "vcrm/common/error.h"
#include "vcrm/common/files.h"
#include "vcrm/common/log.h"
#include "vcrm/common/pg_cluster.h"
#include "vcrm/common/process.h"
#include "vcrm/daemon/migrations.h"
#include "vcrm/upgrade/backup_archive.h"
#include "vcrm/upgrade/pg_tools.h"

namespace fs = std::filesystem;
namespace db = vcrm::db;
namespace upgrade = vcrm::upgrade;

namespace {

constexpr const char* kPassphrase = "bench passphrase, long enough";
constexpr int kLegsPerConference = 10;

// ---- the database ----------------------------------------------------------------------

// 4 bridges, legs / 10 ended conferences of an hour each (5 minutes apart over the last
// year), their conference CDRs, and 10 legs per conference with display names from a list of
// first and last names, joins and leaves within the hour, and end reasons.
void fill(db::Connection& c, long legs) {
  c.exec(
      "INSERT INTO bridges (name, type, url, admin_url, admin_secret, capacity_ports, "
      "events_secret, health) "
      "SELECT 'janus-' || g, 'janus', 'http://10.0.0.' || g || ':8088/janus', "
      "'http://10.0.0.' || g || ':7088/admin', md5('admin' || g), 500, md5('events' || g), 'up' "
      "FROM generate_series(1, 4) g");
  const std::string conferences = std::to_string(legs / kLegsPerConference);
  c.exec(
      "INSERT INTO conferences (name, owner, starts_at, ends_at, time_zone, ports, pin, "
      "requested_bridge_id, bridge_id, room, room_secret, state, end_cause, actual_start, "
      "actual_end, peak_participants, created_at, updated_at) "
      "SELECT (ARRAY['Weekly sync','Board meeting','Sales review','Engineering stand-up',"
      "'Customer call','All hands','Training','Support escalation'])[1 + g % 8] || ' ' || g, "
      "'user' || (g % 250) || '@example.com', t, t + interval '1 hour', "
      "(ARRAY['UTC','Europe/Paris','America/New_York','Asia/Tokyo'])[1 + g % 4], 10 + g % 20, "
      "lpad((g * 7919 % 1000000)::text, 6, '0'), NULL, 1 + g % 4, 1000000 + g, md5('room' || g), "
      "'ended', 'scheduled_end', t + interval '30 seconds', t + interval '1 hour', "
      "8 + g % 3, t - interval '1 day', t + interval '1 hour' "
      "FROM generate_series(1, $1::bigint) g, "
      "LATERAL (SELECT now() - interval '365 days' + g * interval '5 minutes' AS t) s",
      {conferences});
  c.exec(
      "INSERT INTO participant_legs (conference_id, bridge_id, room, participant_id, "
      "display_name, joined_at, left_at, publishing, muted, end_reason) "
      "SELECT c.id, c.bridge_id, c.room, g, "
      "(ARRAY['Alice','Bob','Chloé','David','Eva','François','Grace','Hiroshi','Ines','Jamal',"
      "'Katarzyna','Liam','Mei','Nikolai','Olga','Pedro'])[1 + g % 16] || ' ' || "
      "(ARRAY['Martin','Schmidt','Rossi','García','Kowalski','Tanaka','Dubois','Smith',"
      "'Nguyen','Okafor','Johansson','Silva'])[1 + (g / 16) % 12], "
      "c.actual_start + (g % 300) * interval '1 second', "
      "c.actual_end - (g % 600) * interval '1 second', g % 3 <> 0, g % 7 = 0, "
      "(ARRAY['left','left','left','hangup','kicked','conference_ended'])[1 + g % 6] "
      "FROM generate_series(1, $1::bigint) g JOIN conferences c ON c.id = 1 + (g - 1) / 10",
      {std::to_string(legs)});
  c.exec(
      "INSERT INTO conference_cdrs (conference_id, name, owner, bridge_id, bridge_name, room, "
      "reserved_start, reserved_end, actual_start, actual_end, ports, peak_participants, legs, "
      "end_cause, final_state) "
      "SELECT c.id, c.name, c.owner, c.bridge_id, b.name, c.room, c.starts_at, c.ends_at, "
      "c.actual_start, c.actual_end, c.ports, c.peak_participants, 10, c.end_cause, c.state "
      "FROM conferences c JOIN bridges b ON b.id = c.bridge_id");
  c.exec("VACUUM ANALYZE");
}

std::int64_t legsIn(const std::string& dsn) {
  db::Connection c(dsn);
  return c.exec("SELECT count(*) FROM participant_legs").int64(0, 0);
}

void recreateRestoreDb(db::Connection& admin) {
  admin.exec("DROP DATABASE IF EXISTS bench_restore");
  admin.exec("CREATE DATABASE bench_restore");
}

// ---- measuring one step in a process of its own -----------------------------------------

struct Measured {
  double seconds = 0;
  long selfPeakKib = 0;   // VmHWM of the process that did the step
  long childPeakKib = 0;  // the largest program it ran (pg_dump, pg_restore and its workers)
  std::uint64_t bytes = 0;
  bool ok = false;
};

long peakRssKib() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

Measured inChild(const std::function<std::uint64_t()>& step) {
  int fds[2];
  if (pipe(fds) != 0) std::exit(1);
  const pid_t pid = fork();
  if (pid < 0) std::exit(1);
  if (pid == 0) {
    close(fds[0]);
    { std::ofstream("/proc/self/clear_refs") << "5"; }  // the peak starts from here
    Measured m;
    try {
      const auto t0 = std::chrono::steady_clock::now();
      m.bytes = step();
      m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      m.ok = true;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "step failed: %s\n", e.what());
    }
    m.selfPeakKib = peakRssKib();
    rusage ru{};
    getrusage(RUSAGE_CHILDREN, &ru);
    m.childPeakKib = ru.ru_maxrss;
    (void)!write(fds[1], &m, sizeof m);
    _exit(m.ok ? 0 : 1);
  }
  close(fds[1]);
  Measured m;
  const bool got = read(fds[0], &m, sizeof m) == static_cast<ssize_t>(sizeof m);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!got || !m.ok) {
    std::fprintf(stderr, "backup_vs_pg_dump: a measured step failed\n");
    std::exit(1);
  }
  return m;
}

// One configuration measured `rounds` times, interleaved with the others so that a burst of
// load from elsewhere on the machine falls on all of them alike.
struct Case {
  std::string label{};
  std::function<void()> before{};         // not measured (a fresh empty database)
  std::function<std::uint64_t()> step{};  // measured; returns the size of what it made or read
  std::function<void()> after{};          // not measured (checks)
  int z = -1;  // the dump's compression level (-1: PostgreSQL's defaults)
  int jobs = 0;
  std::size_t chunk = 0;
  std::vector<Measured> runs{};

  [[nodiscard]] double bestSeconds() const {
    double b = runs.at(0).seconds;
    for (const auto& m : runs) b = std::min(b, m.seconds);
    return b;
  }
  [[nodiscard]] double medianSeconds() const {
    std::vector<double> v;
    for (const auto& m : runs) v.push_back(m.seconds);
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  }
  [[nodiscard]] long selfPeakKib() const {
    long p = 0;
    for (const auto& m : runs) p = std::max(p, m.selfPeakKib);
    return p;
  }
  [[nodiscard]] long childPeakKib() const {
    long p = 0;
    for (const auto& m : runs) p = std::max(p, m.childPeakKib);
    return p;
  }
};

void measure(std::vector<Case>& cases, int rounds) {
  for (int r = 0; r < rounds; ++r) {
    for (auto& c : cases) {
      if (c.before) c.before();
      c.runs.push_back(inChild(c.step));
      if (c.after) c.after();
    }
  }
}

// ---- the steps -----------------------------------------------------------------------------

std::uint64_t fileSize(const fs::path& p) {
  return fs::file_size(p);
}

void runTool(const std::vector<std::string>& argv) {
  vcrm::process::Options o;
  o.timeout = std::chrono::hours(1);
  const auto r = vcrm::process::run(argv, o);
  if (!r.ok()) throw vcrm::IoError(argv[0] + ": " + r.output);
}

std::uint64_t pgDumpDefaults(const upgrade::PgTools& tools, const std::string& dsn,
                             const fs::path& out) {
  runTool({tools.program("pg_dump"), "-Fc", "--file=" + out.string(), "--dbname=" + dsn});
  return fileSize(out);
}

std::uint64_t pgRestoreDefaults(const upgrade::PgTools& tools, const std::string& dsn,
                                const fs::path& dump) {
  runTool({tools.program("pg_restore"), "--dbname=" + dsn, dump.string()});
  return fileSize(dump);
}

// What the daemon puts beside the dump: config, serial, certificate and key, licence.
std::vector<upgrade::MemberSource> applianceMembers(const fs::path& dump) {
  return {upgrade::memberFromFile("db/vcrm.dump", dump),
          upgrade::memberFromBytes("etc/vcrmd.conf", "[http]\nport = 443\n[db]\n"),
          upgrade::memberFromBytes("state/serial", "VCRM-0001-2345-6\n"),
          upgrade::memberFromBytes("tls/server.crt", std::string(1200, 'C')),
          upgrade::memberFromBytes("tls/server.key", std::string(1700, 'K')),
          upgrade::memberFromBytes("licence/active.lic", std::string(900, 'L'))};
}

std::uint64_t ourCreate(const upgrade::PgTools& tools, const std::string& dsn, const fs::path& work,
                        const fs::path& archive, int compressLevel, std::size_t chunkSize) {
  const fs::path dump = work / "vcrm.dump";
  fs::remove(dump);
  upgrade::dumpDatabase(tools, dsn, dump, {.compressLevel = compressLevel});
  upgrade::ArchiveInfo info{.productVersion = "0.1.0",
                            .schemaVersion = 7,
                            .sourceSerial = "VCRM-0001-2345-6",
                            .sourceRole = "standalone",
                            .postgresVersion = tools.version("postgres"),
                            .pgDumpVersion = tools.version("pg_dump")};
  vcrm::files::Fd fd(::open(archive.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) throw vcrm::IoError("cannot create " + archive.string());
  upgrade::FdSink sink(fd.get(), archive.string());
  upgrade::WriteOptions options;
  options.seal.chunkSize = chunkSize;
  upgrade::writeArchive(sink, kPassphrase, info, applianceMembers(dump), options);
  if (fsync(fd.get()) != 0) throw vcrm::IoError("fsync " + archive.string());
  fs::remove(dump);
  return fileSize(archive);
}

std::uint64_t ourRestore(const upgrade::PgTools& tools, const std::string& dsn,
                         const fs::path& archive, const fs::path& work,
                         const upgrade::RestoreOptions& options) {
  const fs::path fresh = work / "extracted";
  fs::remove_all(fresh);
  vcrm::files::Fd fd(::open(archive.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw vcrm::IoError("cannot open " + archive.string());
  upgrade::FdSource source(fd.get(), archive.string());
  upgrade::extractArchive(source, kPassphrase, fresh);
  upgrade::restoreDatabase(tools, dsn, fresh / "db" / "vcrm.dump", options);
  fs::remove_all(fresh);
  return fileSize(archive);
}

void table(const char* title, const std::vector<Case>& cases) {
  std::printf("  %-48s %8s %8s %6s %10s %10s %10s\n", title, "best", "median", "ratio", "size",
              "our peak", "child peak");
  const double base = cases.front().bestSeconds();
  for (const auto& c : cases) {
    std::printf("  %-48s %6.2f s %6.2f s %6.2f %6.1f MiB %6.1f MiB %6.1f MiB\n", c.label.c_str(),
                c.bestSeconds(), c.medianSeconds(), c.bestSeconds() / base,
                static_cast<double>(c.runs.back().bytes) / 1048576.0,
                static_cast<double>(c.selfPeakKib()) / 1024.0,
                static_cast<double>(c.childPeakKib()) / 1024.0);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const long legs = argc > 1 ? std::stol(argv[1]) : 1000000;
  const int rounds = argc > 2 ? std::stoi(argv[2]) : 3;
  vcrm::test::TempDir root("vcrm-bench-backup");
  vcrm::Logger log(vcrm::LogLevel::Warn);
  vcrm::PgCluster::Settings s;
  s.dataDir = root.path() / "pgdata";
  s.socketDir = root.path() / "sock";
  vcrm::PgCluster cluster(s, log);
  cluster.start();
  const std::string dsn = cluster.dsn();
  const std::string restoreDsn = cluster.dsn("bench_restore");
  const upgrade::PgTools tools{.binDir = cluster.settings().binDir};
  const fs::path work = root.path() / "work";
  fs::create_directories(work);
  // pg_dump and pg_restore run as this process's user; the server as its own.
  db::Connection admin(dsn);
  {
    const auto t0 = std::chrono::steady_clock::now();
    vcrm::migrate(admin, vcrm::loadMigrations(), log);
    fill(admin, legs);
    const auto size = admin.exec("SELECT pg_database_size(current_database())").int64(0, 0);
    std::printf("  database: %ld participant legs, %ld conferences, %.0f MiB, filled in %.1f s\n",
                legs, legs / kLegsPerConference, static_cast<double>(size) / 1048576.0,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  const auto fresh = [&] { recreateRestoreDb(admin); };
  const auto check = [&](const char* what) {
    if (legsIn(restoreDsn) != legs) {
      std::fprintf(stderr, "backup_vs_pg_dump: %s restored the wrong number of legs\n", what);
      std::exit(1);
    }
  };

  // Create: pg_dump's defaults against ours at each compression level and chunk size.
  const fs::path baseDump = work / "baseline.dump";
  const auto archiveOf = [&](int z, std::size_t chunk) {
    return work / ("z" + std::to_string(z) + "-c" + std::to_string(chunk) + ".vcrmbak");
  };
  std::vector<Case> creates;
  creates.push_back({.label = "pg_dump -Fc (defaults)",
                     .before = [&] { fs::remove(baseDump); },
                     .step = [&] { return pgDumpDefaults(tools, dsn, baseDump); }});
  const auto ourCreateCase = [&](int z, std::size_t chunk) {
    Case c;
    c.label = "ours: pg_dump -Z " + std::to_string(z) + " + archive, chunk " +
              std::to_string(chunk >> 10) + " KiB";
    c.step = [&, z, chunk] { return ourCreate(tools, dsn, work, archiveOf(z, chunk), z, chunk); };
    c.z = z;
    c.chunk = chunk;
    return c;
  };
  for (const int z : {0, 1, 6}) creates.push_back(ourCreateCase(z, upgrade::kDefaultChunkSize));
  for (const std::size_t chunk : {std::size_t{64} << 10, std::size_t{4} << 20}) {
    creates.push_back(ourCreateCase(upgrade::DumpOptions{}.compressLevel, chunk));
  }
  measure(creates, rounds);

  // Restore: pg_restore's defaults against ours at 1 and 2 jobs, from each level's archive.
  std::vector<Case> restores;
  restores.push_back({.label = "pg_restore (defaults) of the pg_dump file",
                      .before = fresh,
                      .step = [&] { return pgRestoreDefaults(tools, restoreDsn, baseDump); },
                      .after = [&] { check("pg_restore"); }});
  const auto ourRestoreCase = [&](int z, int jobs) {
    Case c;
    c.label = "ours: verify+extract + pg_restore -j " + std::to_string(jobs) + ", -Z " +
              std::to_string(z);
    c.before = fresh;
    c.step = [&, z, jobs] {
      return ourRestore(tools, restoreDsn, archiveOf(z, upgrade::kDefaultChunkSize), work,
                        {.jobs = jobs});
    };
    c.after = [&] { check("our restore"); };
    c.z = z;
    c.jobs = jobs;
    return c;
  };
  for (const int z : {0, 1, 6}) {
    for (const int jobs : {1, 2}) restores.push_back(ourRestoreCase(z, jobs));
  }
  measure(restores, rounds);

  // The shipped defaults.
  const upgrade::DumpOptions dumpDefaults;
  const upgrade::RestoreOptions restoreDefaults;
  const std::size_t chunkDefault = upgrade::SealOptions{}.chunkSize;
  double createRatio = 0, restoreRatio = 0;
  for (const auto& c : creates) {
    if (c.z == dumpDefaults.compressLevel && c.chunk == chunkDefault) {
      createRatio = c.bestSeconds() / creates.front().bestSeconds();
    }
  }
  for (const auto& c : restores) {
    if (c.z == dumpDefaults.compressLevel && c.jobs == restoreDefaults.jobs) {
      restoreRatio = c.bestSeconds() / restores.front().bestSeconds();
    }
  }
  std::printf("backup_vs_pg_dump: %.2f\n", std::max(createRatio, restoreRatio));
  std::printf(
      "  shipped defaults (pg_dump -Z %d, pg_restore -j %d, chunk %zu KiB): create ratio %.2f, "
      "restore ratio %.2f (our time / PostgreSQL's, best of %d interleaved rounds)\n",
      dumpDefaults.compressLevel, restoreDefaults.jobs, chunkDefault >> 10, createRatio,
      restoreRatio, rounds);
  table("create", creates);
  table("restore", restores);
  std::printf(
      "  size: the dump (pg_dump) or the archive (ours); peaks: VmHWM of the measured process "
      "(ours includes scrypt's 128 MiB) and the largest program it ran\n");
  admin.exec("DROP DATABASE IF EXISTS bench_restore");
  return 0;
}
