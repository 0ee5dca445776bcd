#include "vcrm/upgrade/pg_tools.h"

#include <algorithm>
#include <system_error>

#include "vcrm/common/error.h"
#include "vcrm/common/pg_cluster.h"
#include "vcrm/common/process.h"

namespace fs = std::filesystem;

namespace vcrm::upgrade {

namespace {

std::string lastLines(const std::string& output) {
  constexpr std::size_t kMax = 2000;
  return output.size() <= kMax ? output : "..." + output.substr(output.size() - kMax);
}

}  // namespace

std::string PgTools::program(const std::string& name) const {
  return (fs::path(binDir.empty() ? findPgBinDir() : binDir) / name).string();
}

std::string PgTools::version(const std::string& name) const {
  process::Options o;
  o.timeout = std::chrono::seconds(30);
  const auto out = process::run({program(name), "--version"}, o);
  if (!out.ok()) throw IoError(name + " --version failed: " + lastLines(out.output));
  std::string v = out.output.substr(out.output.find_last_of(' ') + 1);
  v.erase(std::remove_if(v.begin(), v.end(), [](char c) { return c == '\n' || c == '\r'; }), v.end());
  return v;
}

void dumpDatabase(const PgTools& tools, const std::string& dsn, const fs::path& file,
                  const DumpOptions& options) {
  std::error_code ec;
  if (fs::exists(fs::symlink_status(file, ec))) {
    throw IoError("cannot dump into " + file.string() + ": it already exists");
  }
  process::Options o;
  o.timeout = tools.timeout;
  std::vector<std::string> argv{
      tools.program("pg_dump"),
      "--format=custom",
      "--compress=" + std::to_string(std::clamp(options.compressLevel, 0, 9)),
      "--no-owner",
      "--no-privileges",
      "--file=" + file.string()};
  if (!options.snapshot.empty()) argv.push_back("--snapshot=" + options.snapshot);
  argv.push_back("--dbname=" + dsn);
  const auto out = process::run(argv, o);
  if (!out.ok()) {
    fs::remove(file, ec);
    throw IoError(std::string("pg_dump failed") + (out.timedOut ? " (time limit)" : "") + ": " +
                  lastLines(out.output));
  }
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write, ec);
}

void restoreDatabase(const PgTools& tools, const std::string& dsn, const fs::path& file,
                     const RestoreOptions& options) {
  process::Options o;
  o.timeout = tools.timeout;
  std::vector<std::string> argv{tools.program("pg_restore"), "--no-owner", "--no-privileges",
                                "--exit-on-error", "--dbname=" + dsn};
  if (options.jobs > 1) argv.push_back("--jobs=" + std::to_string(options.jobs));
  else argv.push_back("--single-transaction");
  argv.push_back(file.string());
  const auto out = process::run(argv, o);
  if (!out.ok()) {
    throw IoError(std::string("pg_restore failed") + (out.timedOut ? " (time limit)" : "") + ": " +
                  lastLines(out.output));
  }
}

}  // namespace vcrm::upgrade
