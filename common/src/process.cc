#include "vcrm/common/process.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <thread>

#include "vcrm/common/error.h"
#include "vcrm/common/files.h"

extern char** environ;

namespace vcrm::process {

std::optional<RunAs> lookupUser(const std::string& name) {
  struct passwd pw {};
  struct passwd* result = nullptr;
  std::string buf(16384, '\0');
  if (getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &result) != 0 || !result) {
    return std::nullopt;
  }
  return RunAs{pw.pw_uid, pw.pw_gid, pw.pw_dir ? pw.pw_dir : "/"};
}

bool alive(pid_t pid) {
  if (pid <= 0) return false;
  return kill(pid, 0) == 0 || errno == EPERM;
}

std::string selfDir() {
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) throw IoError("cannot read /proc/self/exe: " + errnoText(errno));
  buf[n] = '\0';
  std::string path(buf);
  return path.substr(0, path.rfind('/'));
}

Outcome run(const std::vector<std::string>& argv, const Options& options) {
  if (argv.empty()) throw IoError("no program to run");
  int pipeFds[2];
  if (pipe2(pipeFds, O_CLOEXEC) != 0) throw IoError("pipe: " + errnoText(errno));
  files::Fd readEnd(pipeFds[0]);
  files::Fd writeEnd(pipeFds[1]);

  // Everything the child needs is prepared before fork: after fork only async-signal-safe
  // calls are allowed.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> envStore;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    if (options.runAs && (kv.rfind("HOME=", 0) == 0 || kv.rfind("USER=", 0) == 0)) continue;
    envStore.push_back(std::move(kv));
  }
  if (options.runAs) envStore.push_back("HOME=" + options.runAs->home);
  for (const auto& e : options.extraEnv) envStore.push_back(e);
  std::vector<char*> env;
  for (auto& e : envStore) env.push_back(e.data());
  env.push_back(nullptr);
  const std::string execFailed = "cannot run " + argv[0] + ": ";

  const pid_t pid = fork();
  if (pid < 0) throw IoError("fork: " + errnoText(errno));
  if (pid == 0) {
    setpgid(0, 0);
    dup2(writeEnd.get(), STDOUT_FILENO);
    dup2(writeEnd.get(), STDERR_FILENO);
    const int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (!options.workDir.empty() && chdir(options.workDir.c_str()) != 0) _exit(126);
    if (options.runAs) {
      if (setgroups(0, nullptr) != 0 || setgid(options.runAs->gid) != 0 ||
          setuid(options.runAs->uid) != 0) {
        _exit(126);
      }
    }
    execve(args[0], args.data(), env.data());
    // Say which program and why; strerrordesc_np is async-signal-safe, unlike strerror.
    const char* why = strerrordesc_np(errno);
    if (why == nullptr) why = "exec failed";
    (void)!write(STDERR_FILENO, execFailed.data(), execFailed.size());
    (void)!write(STDERR_FILENO, why, strlen(why));
    (void)!write(STDERR_FILENO, "\n", 1);
    _exit(127);
  }
  writeEnd.reset();

  Outcome out;
  const auto deadline = std::chrono::steady_clock::now() + options.timeout;
  char buf[8192];
  bool eof = false;
  while (!eof) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      out.timedOut = true;
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      break;
    }
    pollfd p{readEnd.get(), POLLIN, 0};
    const int r = poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (r < 0 && errno != EINTR) break;
    if (r <= 0) continue;
    const ssize_t n = read(readEnd.get(), buf, sizeof buf);
    if (n > 0) {
      if (out.output.size() < (1u << 20)) out.output.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      eof = true;
    }
  }
  // The output can end before the program does (it may close or redirect it), so the time
  // limit still applies while waiting for the exit.
  int status = 0;
  auto pause = std::chrono::milliseconds(1);
  for (;;) {
    const pid_t w = waitpid(pid, &status, out.timedOut ? 0 : WNOHANG);
    if (w == pid || (w < 0 && errno != EINTR)) break;
    if (w != 0) continue;
    if (std::chrono::steady_clock::now() >= deadline) {
      out.timedOut = true;
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
    } else {
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::milliseconds(20));
    }
  }
  out.exitCode = (!out.timedOut && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
  return out;
}

}  // namespace vcrm::process
