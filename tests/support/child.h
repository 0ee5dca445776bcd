// Starting and reaping the servers tests run (vcrmd, Janus): one fork/exec with the output in a
// log file, and a bounded wait for exit.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace vcrm::test {

struct SpawnOptions {
  std::filesystem::path log;   // stdout and stderr go here
  bool appendLog = false;      // keep what earlier runs wrote
  bool dieWithParent = false;  // SIGKILL the child if the test binary dies
  bool closeInheritedFds = false;  // keep the test's sockets out of the child
  std::string netns;           // run inside this named network namespace
  std::vector<std::string> env;  // "NAME=value" added to (or replacing in) the environment
};

// Starts argv[0] with its arguments; throws std::runtime_error if fork fails. A child that
// cannot exec exits with 127 (125 when it cannot enter the namespace).
pid_t spawnLogged(const std::vector<std::string>& args, const SpawnOptions& options);

// Reaps `pid`, waiting at most `timeout`; true if it has exited (`status` set).
bool waitExit(pid_t pid, std::chrono::milliseconds timeout, int* status);

// SIGTERM, up to `grace` for `pid` to exit, then SIGKILL; reaps it. Returns its exit code, or
// -1 if it had to be killed or died of a signal.
int terminate(pid_t pid, std::chrono::milliseconds grace);

// A command-line tool run to its end: its exit status (-1 when killed or out of time) and
// everything it printed.
struct Ran {
  int status = -1;
  std::string output;
};
// Runs `args` with its output in `log`, killing it after `timeout`.
Ran runToEnd(const std::vector<std::string>& args, const std::filesystem::path& log,
             std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace vcrm::test
