// vcrm-supervisor's loop: runs the current slot's vcrmd on one root prefix and keeps it running.
// It is what `packaging/dev run` and the tests use where production uses systemd
// (packaging/vcrm.service); both keep the same contract with vcrmd:
//
//  - each start resolves <root>/opt/vcrm/current anew (SlotLayout), so a switched pointer
//    takes effect on the next start;
//  - vcrmd exiting with kRestartFromCurrent (75) means "start me again from current": it is
//    restarted at once, not counted as a crash (the upgrade apply engine switches the pointer and
//    exits with it); the crashLoopAfter-th such exit in a row, each within healthyAfter of its
//    start, is handled as a crash (a vcrmd asking at every start is looping too);
//  - any other non-zero exit or death by a signal is a crash: restarted after a backoff that
//    doubles up to a cap; several crashes in a row are reported once as a crash loop (log line
//    SUPERVISOR_CRASH_LOOP, "state": "crash-loop" in the state file) and retried at the cap;
//  - exit status 0 means vcrmd was told to stop: the supervisor stops too;
//  - SIGTERM/SIGINT to the supervisor are forwarded to vcrmd, which is waited for (SIGKILL
//    after the stop timeout); SIGUSR1 asks for a restart from current (SIGTERM, wait, start);
//  - vcrmd's own in-place restart (SIGUSR2, used by restores) keeps its pid and is not seen here;
//  - an upgrade on trial (apply.h: the journal is past its commit point and `current` names the
//    new slot) gets trialTimeout from its first start to mark itself good and trialCrashes
//    crashes; a new version that uses them up is stopped and rolled back by the supervisor
//    (rollBackBySupervisor: the journal says why, `current` goes back to the old slot), and
//    the old version is started at once, whose recover() puts the database pointer back.
//
// The supervisor writes <root>/var/lib/vcrm/run/supervisor.json (atomically, at every change):
// {"pid", "vcrmd_pid", "slot", "state", "starts", "crashes", "trial"} ("trial": the id of the
// upgrade on trial, "" when none), and holds supervisor.lock there so
// only one supervisor runs per root. Both go when it stops.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "vcrm/common/log.h"

namespace vcrm::upgrade {

// The exit status with which vcrmd asks to be started again from the current slot.
inline constexpr int kRestartFromCurrent = 75;

struct SupervisorOptions {
  std::filesystem::path root;           // passed to vcrmd as --root
  std::vector<std::string> daemonArgs;  // after --root DIR
  std::chrono::milliseconds firstBackoff{500};
  std::chrono::milliseconds maxBackoff{std::chrono::seconds(30)};
  int crashLoopAfter = 5;                 // crashes in a row reported as a crash loop
  std::chrono::seconds healthyAfter{60};  // a run this long resets the backoff
  std::chrono::seconds stopTimeout{90};   // SIGTERM to SIGKILL
  // An upgrade's new version must mark itself good within this, from its first start...
  std::chrono::milliseconds trialTimeout{std::chrono::seconds(120)};
  int trialCrashes = 3;  // ...and is rolled back at this many crashes
};

class Supervisor {
 public:
  Supervisor(SupervisorOptions options, Logger& log);
  // Runs until told to stop (or vcrmd stops by itself); returns the exit status for main.
  // Blocks the signals it handles in the calling thread: call it from a single-threaded main.
  int run();

 private:
  SupervisorOptions options_;
  Logger& log_;
  pid_t child_ = -1;
  std::string slot_;
  int starts_ = 0;
  int crashes_ = 0;
  std::string state_ = "starting";
  // The upgrade on trial, its deadline and its crashes so far.
  std::string trialId_;
  std::string trialVersion_;
  std::chrono::steady_clock::time_point trialDeadline_{};
  int trialCrashes_ = 0;

  bool startChild();
  // Waits for a signal or for the child to exit within `timeout` (negative: forever). Returns the
  // signal (SIGCHLD when the child has exited, with its status in `status`), or 0 on timeout.
  int waitEvent(std::chrono::milliseconds timeout, int* status);
  // SIGTERM (or `sig`) to vcrmd and wait for it, SIGKILL after the stop timeout.
  void stopChild(int sig);
  void writeState();
  // Before each start: finishes a rollback of ours a crash interrupted, and notices an upgrade
  // on trial (a new one starts its deadline and crash count).
  void checkTrial();
  // Gives up on the upgrade on trial (vcrmd is not running): rolled back, `why` journalled.
  void rollBackTrial(const std::string& why);
  std::filesystem::path runDir() const;
};

}  // namespace vcrm::upgrade
