#include "child.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <thread>

namespace vcrm::test {

pid_t spawnLogged(const std::vector<std::string>& args, const SpawnOptions& options) {
  // Everything the child needs is prepared before fork: after it, only system calls.
  std::vector<std::string> owned = args;
  std::vector<char*> argv;
  argv.reserve(owned.size() + 1);
  for (auto& a : owned) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> environment = options.env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    const std::string name = entry.substr(0, entry.find('=') + 1);
    bool replaced = false;
    for (const auto& extra : options.env) replaced = replaced || extra.rfind(name, 0) == 0;
    if (!replaced) environment.push_back(entry);
  }
  std::vector<char*> envp;
  envp.reserve(environment.size() + 1);
  for (auto& e : environment) envp.push_back(e.data());
  envp.push_back(nullptr);
  const std::string log = options.log.string();
  const std::string netnsPath = options.netns.empty() ? "" : "/var/run/netns/" + options.netns;
  const int logFlags = O_WRONLY | O_CREAT | (options.appendLog ? O_APPEND : O_TRUNC);
  const pid_t parent = getpid();

  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    if (options.dieWithParent) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(1);
    }
    const int fd = open(log.c_str(), logFlags, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
    }
    if (!netnsPath.empty()) {
      const int ns = open(netnsPath.c_str(), O_RDONLY | O_CLOEXEC);
      if (ns < 0 || setns(ns, CLONE_NEWNET) != 0) _exit(125);
    }
    if (options.closeInheritedFds) close_range(3, ~0U, 0);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  return pid;
}

bool waitExit(pid_t pid, std::chrono::milliseconds timeout, int* status) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    const pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

int terminate(pid_t pid, std::chrono::milliseconds grace) {
  kill(pid, SIGTERM);
  int status = 0;
  if (!waitExit(pid, grace, &status)) {
    kill(pid, SIGKILL);
    waitExit(pid, std::chrono::seconds(10), &status);
    return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Ran runToEnd(const std::vector<std::string>& args, const std::filesystem::path& log,
             std::chrono::milliseconds timeout) {
  SpawnOptions so;
  so.log = log;
  const pid_t pid = spawnLogged(args, so);
  int status = 0;
  Ran out;
  if (!waitExit(pid, timeout, &status)) {
    kill(pid, SIGKILL);
    waitExit(pid, std::chrono::seconds(10), &status);
    out.output = "timed out";
    return out;
  }
  out.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(log, std::ios::binary);
  out.output.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return out;
}

}  // namespace vcrm::test
