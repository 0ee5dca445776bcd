// Running helper programs (initdb, pg_ctl, pg_dump, ...) without a shell: argv only,
// optionally as another user, with captured output and a time limit.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace vcrm::process {

struct RunAs {
  uid_t uid;
  gid_t gid;
  std::string home;
};

// Looks up a user by name; nullopt if absent.
std::optional<RunAs> lookupUser(const std::string& name);

struct Options {
  std::optional<RunAs> runAs;
  std::vector<std::string> extraEnv;  // "KEY=value"
  std::chrono::milliseconds timeout = std::chrono::minutes(2);
  std::string workDir;  // empty: inherit
};

struct Outcome {
  int exitCode = -1;  // -1 when killed by a signal or the time limit
  bool timedOut = false;
  std::string output;  // stdout and stderr interleaved, capped at 1 MiB
  bool ok() const { return exitCode == 0; }
};

// Runs argv[0] (a path) with arguments; never throws for a non-zero exit, only when the
// program cannot be started at all (IoError).
Outcome run(const std::vector<std::string>& argv, const Options& options = {});

// True if a process with this pid exists (kill(pid, 0) succeeds or fails with EPERM).
bool alive(pid_t pid);

// The executable's own directory (from /proc/self/exe).
std::string selfDir();

}  // namespace vcrm::process
