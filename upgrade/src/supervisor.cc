// vcrm-supervisor's loop (see supervisor.h).
#include "vcrm/upgrade/supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "vcrm/common/error.h"
#include "vcrm/common/files.h"
#include "vcrm/common/json.h"
#include "vcrm/upgrade/apply.h"
#include "vcrm/upgrade/slots.h"

namespace fs = std::filesystem;
using namespace std::chrono;

namespace vcrm::upgrade {

namespace {

constexpr const char* kComponent = "supervisor";

sigset_t handledSignals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGCHLD}) sigaddset(&set, s);
  return set;
}

std::string describeExit(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by ") + strsignal(WTERMSIG(status));
  return "stopped";
}

}  // namespace

Supervisor::Supervisor(SupervisorOptions options, Logger& log)
    : options_(std::move(options)), log_(log) {}

fs::path Supervisor::runDir() const {
  return options_.root / "var/lib/vcrm/run";
}

void Supervisor::writeState() {
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("pid", static_cast<int>(getpid()));
  o->set("vcrmd_pid", static_cast<int>(child_));
  o->set("slot", slot_);
  o->set("state", state_);
  o->set("starts", starts_);
  o->set("crashes", crashes_);
  o->set("trial", trialId_);
  files::atomicWrite(runDir() / "supervisor.json", json::stringify(o) + "\n", 0644);
}

void Supervisor::checkTrial() {
  const UpgradeLayout layout(options_.root);
  try {
    finishSupervisorRollback(layout, log_);
    const auto trial = upgradeOnTrial(layout);
    if (!trial) {
      trialId_.clear();
      return;
    }
    if (trial->id != trialId_) {
      trialId_ = trial->id;
      trialVersion_ = trial->toVersion;
      trialDeadline_ = steady_clock::now() + options_.trialTimeout;
      trialCrashes_ = 0;
      log_.info(kComponent, "UPGRADE_TRIAL",
                "version " + trialVersion_ + " in slot " + slotName(trial->to) + " is on trial: " +
                    std::to_string(options_.trialTimeout.count()) + " ms to mark itself good, " +
                    std::to_string(options_.trialCrashes) + " crashes allowed",
                trialId_);
    }
  } catch (const Error& e) {
    // A journal that cannot be read is left as it is: vcrmd's recover() refuses it with what
    // to do, and no trial is run on it.
    log_.error(kComponent, "UPGRADE_JOURNAL_UNREADABLE", e.what());
    trialId_.clear();
  }
}

void Supervisor::rollBackTrial(const std::string& why) {
  log_.error(kComponent, "UPGRADE_ROLLING_BACK",
             "version " + trialVersion_ + " " + why + "; rolling back to the previous version",
             trialId_);
  try {
    rollBackBySupervisor(UpgradeLayout(options_.root), "version " + trialVersion_ + " " + why,
                         log_);
  } catch (const Error& e) {
    log_.error(kComponent, "UPGRADE_ROLLBACK_FAILED", e.what(), trialId_);
  }
  trialId_.clear();
}

bool Supervisor::startChild() {
  checkTrial();
  if (!trialId_.empty() && steady_clock::now() >= trialDeadline_) {
    rollBackTrial("did not mark itself good within " +
                  std::to_string(options_.trialTimeout.count()) + " ms");
  }
  const SlotLayout layout(options_.root);
  const auto slot = layout.current();
  if (!slot) {
    throw StartupError(
        "nothing is installed under " + layout.base().string() +
        " (no current pointer); install a build into a slot first: packaging/dev run");
  }
  slot_ = slotName(*slot);
  const fs::path binary = layout.slotDir(*slot) / "bin/vcrmd";
  std::vector<std::string> args{binary.string(), "--root", options_.root.string()};
  args.insert(args.end(), options_.daemonArgs.begin(), options_.daemonArgs.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) throw IoError(std::string("cannot fork vcrmd: ") + errnoText(errno));
  if (pid == 0) {
    // Its own process group, so a terminal's Ctrl-C reaches the supervisor, which forwards it.
    // A supervisor killed outright takes vcrmd down with it (SIGTERM: a clean stop), so no
    // orphaned vcrmd holds the root's lock against the next supervisor.
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  child_ = pid;
  ++starts_;
  state_ = "running";
  writeState();
  log_.info(
      kComponent, "VCRMD_STARTED",
      "started " + binary.string() + " (slot " + slot_ + ", pid " + std::to_string(pid) + ")");
  return true;
}

int Supervisor::waitEvent(milliseconds timeout, int* status) {
  const sigset_t set = handledSignals();
  const auto deadline = steady_clock::now() + timeout;
  for (;;) {
    // A SIGCHLD may have been merged with an earlier one: look at the child first.
    if (child_ > 0 && waitpid(child_, status, WNOHANG) == child_) {
      child_ = -1;
      return SIGCHLD;
    }
    siginfo_t info{};
    int sig;
    if (timeout.count() < 0) {
      sig = sigwaitinfo(&set, &info);
    } else {
      const auto left = std::max(nanoseconds(0), deadline - steady_clock::now());
      timespec ts{static_cast<time_t>(duration_cast<seconds>(left).count()),
                  static_cast<long>((left % seconds(1)).count())};
      sig = sigtimedwait(&set, &info, &ts);
      if (sig < 0 && errno == EAGAIN) return 0;
    }
    if (sig < 0) continue;  // EINTR
    if (sig == SIGCHLD) continue;
    return sig;
  }
}

void Supervisor::stopChild(int sig) {
  if (child_ <= 0) return;
  state_ = "stopping";
  writeState();
  kill(child_, sig);
  const auto deadline = steady_clock::now() + options_.stopTimeout;
  int status = 0;
  while (child_ > 0) {
    const auto left = duration_cast<milliseconds>(deadline - steady_clock::now());
    if (left.count() <= 0) {
      log_.warn(kComponent, "VCRMD_KILLED",
                "vcrmd did not stop within " + std::to_string(options_.stopTimeout.count()) +
                    " s; killing it");
      kill(child_, SIGKILL);
      waitpid(child_, &status, 0);
      child_ = -1;
      break;
    }
    const int got = waitEvent(left, &status);
    if (got == SIGCHLD) {
      log_.info(kComponent, "VCRMD_STOPPED", "vcrmd " + describeExit(status));
    } else if (got == SIGTERM || got == SIGINT) {
      kill(child_, got);  // a second Ctrl-C is passed on too
    }
  }
}

int Supervisor::run() {
  const sigset_t set = handledSignals();
  sigprocmask(SIG_BLOCK, &set, nullptr);
  files::ensureDir(runDir(), 0755);
  const fs::path lockPath = runDir() / "supervisor.lock";
  files::Fd lock(::open(lockPath.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!lock) throw StartupError("cannot open " + lockPath.string() + ": " + errnoText(errno));
  if (flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    throw StartupError("another vcrm-supervisor is running on " + options_.root.string() +
                       " (it holds " + lockPath.string() + "); stop it first");
  }
  const auto cleanup = [&] {
    std::error_code ec;
    fs::remove(runDir() / "supervisor.json", ec);
  };

  milliseconds backoff = options_.firstBackoff;
  int inARow = 0;
  int quickRequests = 0;
  bool restartNow = true;
  for (;;) {
    if (restartNow) {
      startChild();
    }
    restartNow = false;
    const auto startedAt = steady_clock::now();
    int status = 0;
    int sig = 0;
    for (;;) {
      // On trial, wake at the deadline: a new version not marked good by then is given up on.
      const auto timeout =
          trialId_.empty()
              ? milliseconds(-1)
              : std::max(milliseconds(0),
                         duration_cast<milliseconds>(trialDeadline_ - steady_clock::now()));
      sig = waitEvent(timeout, &status);
      if (sig == SIGHUP) {
        log_.info(kComponent, "SIGHUP", "SIGHUP ignored; vcrmd's settings change through its API");
        continue;
      }
      if (sig != 0) break;
      if (upgradeMarkedGood(UpgradeLayout(options_.root), trialId_)) {
        // The state file first: the log line is what a watcher waits for.
        const std::string kept = trialId_;
        trialId_.clear();
        writeState();
        log_.info(kComponent, "UPGRADE_KEPT",
                  "version " + trialVersion_ + " marked itself good; its trial is over", kept);
        continue;
      }
      stopChild(SIGTERM);
      rollBackTrial("did not mark itself good within " +
                    std::to_string(options_.trialTimeout.count()) + " ms");
      break;
    }
    if (sig == 0) {
      restartNow = true;
      inARow = 0;
      backoff = options_.firstBackoff;
      continue;
    }
    if (sig == SIGTERM || sig == SIGINT) {
      log_.info(kComponent, "STOPPING", std::string("stopping on ") + strsignal(sig));
      stopChild(sig);
      cleanup();
      return 0;
    }
    if (sig == SIGUSR1) {
      log_.info(kComponent, "RESTART_REQUESTED", "restart requested (SIGUSR1); starting current");
      stopChild(SIGTERM);
      restartNow = true;
      inARow = 0;
      backoff = options_.firstBackoff;
      continue;
    }
    // SIGCHLD: vcrmd exited by itself.
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      log_.info(kComponent, "VCRMD_EXITED", "vcrmd stopped (status 0); stopping too");
      cleanup();
      return 0;
    }
    const bool ranLong = steady_clock::now() - startedAt >= options_.healthyAfter;
    if (WIFEXITED(status) && WEXITSTATUS(status) == kRestartFromCurrent) {
      // Restart requests are honoured at once, but a vcrmd that asks every time it starts is
      // looping too: the crashLoopAfter-th short run in a row is handled as a crash.
      quickRequests = ranLong ? 0 : quickRequests + 1;
      if (quickRequests < options_.crashLoopAfter) {
        log_.info(kComponent, "RESTART_REQUESTED",
                  "vcrmd asked to be restarted from current (exit status 75)");
        restartNow = true;
        inARow = 0;
        backoff = options_.firstBackoff;
        continue;
      }
      inARow = std::max(inARow, options_.crashLoopAfter - 1);
    } else {
      quickRequests = 0;
    }
    ++crashes_;
    if (!trialId_.empty() && !upgradeMarkedGood(UpgradeLayout(options_.root), trialId_) &&
        ++trialCrashes_ >= options_.trialCrashes) {
      rollBackTrial("crashed " + std::to_string(trialCrashes_) + " times (the last " +
                    describeExit(status) + ")");
      restartNow = true;
      inARow = 0;
      backoff = options_.firstBackoff;
      continue;
    }
    if (ranLong) {
      inARow = 0;
      backoff = options_.firstBackoff;
    }
    ++inARow;
    if (inARow == options_.crashLoopAfter) {
      log_.error(kComponent, "SUPERVISOR_CRASH_LOOP",
                 "vcrmd " + describeExit(status) + ", its " + std::to_string(inARow) +
                     "th failure in a row; retrying every " +
                     std::to_string(duration_cast<seconds>(options_.maxBackoff).count()) +
                     " s. See its log lines above (START_FAILED says why)");
    } else {
      log_.warn(kComponent, "VCRMD_CRASHED",
                "vcrmd " + describeExit(status) + "; restarting in " +
                    std::to_string(backoff.count()) + " ms");
    }
    state_ = inARow >= options_.crashLoopAfter ? "crash-loop" : "backoff";
    writeState();
    // Wait out the backoff; a stop or a restart request still counts during it.
    const auto until = steady_clock::now() + backoff;
    for (;;) {
      const auto left = duration_cast<milliseconds>(until - steady_clock::now());
      if (left.count() <= 0) break;
      const int got = waitEvent(left, &status);
      if (got == SIGTERM || got == SIGINT) {
        cleanup();
        return 0;
      }
      if (got == SIGUSR1) break;
    }
    backoff = inARow >= options_.crashLoopAfter ? options_.maxBackoff
                                                : std::min(backoff * 2, options_.maxBackoff);
    restartNow = true;
  }
}

}  // namespace vcrm::upgrade
