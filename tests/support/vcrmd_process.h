// A real vcrmd started from the build tree on a root prefix of its own (a TempDir unless one
// is given), with ephemeral ports. The destructor stops it, and its embedded PostgreSQL,
// even when a test fails half-way.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "https_client.h"
#include "temp_dir.h"
#include "vcrm/common/db.h"

namespace vcrm::test {

std::filesystem::path binDir();     // build/bin
std::filesystem::path sourceDir();  // the repository

class VcrmdProcess {
 public:
  struct Options {
    std::vector<std::string> settings;   // extra "key=value" overrides
    std::filesystem::path root;          // empty: a fresh TempDir owned by this object
    std::filesystem::path binary;        // empty: build/bin/vcrmd
    // When set, this vcrm-supervisor runs vcrmd from <root>/opt/vcrm/current (installed by the
    // test) and pid() is the supervisor's; stop() stops both.
    std::filesystem::path supervisor;
    std::vector<std::string> supervisorArgs;  // before its "--" (e.g. --trial-crashes 3)
    std::chrono::seconds readyTimeout{90};
    // Do what an operator does first: sign in with the one-time password and choose
    // kAdminPassword (vcrmd then removes the one-time file). Off to look at that file.
    bool chooseAdminPassword = true;
    // Then apply a licence made with the repository's test key that lifts every limit, so tests
    // of other things are not bound by evaluation mode. Off for tests of licensing itself.
    bool applyTestLicence = true;
    std::vector<std::string> env;  // "NAME=value" for vcrmd's environment
  };
  static constexpr const char* kAdminPassword = "admin password chosen by the test";
  VcrmdProcess();
  explicit VcrmdProcess(Options options);
  ~VcrmdProcess();
  VcrmdProcess(const VcrmdProcess&) = delete;
  VcrmdProcess& operator=(const VcrmdProcess&) = delete;

  // Starts and waits until the ready file appears. Throws with vcrmd's output on failure.
  void start();
  // Starts and expects vcrmd to exit with an error; returns its output.
  std::string startExpectingFailure();
  // SIGTERM and wait; returns the exit status (or -1).
  int stop();
  // SIGKILL vcrmd, and with `alsoDatabase` its PostgreSQL too, as a power cut would.
  void killHard(bool alsoDatabase);

  // The pid of the vcrmd that wrote the ready file (with a supervisor: not pid()); -1 if none.
  pid_t daemonPid() const;
  // With a supervisor: waits until a vcrmd other than `previous` is ready and takes its ports.
  void awaitRestart(pid_t previous);
  // After vcrmd restarted in place, in the same process (a restore): waits for the ready file
  // of the new start (its started_at differs) and reads the new ports.
  void awaitInPlaceRestart();
  // Waits until vcrmd has exited by itself (a crash hook); false on timeout.
  bool awaitExit(std::chrono::seconds timeout);
  // The environment of the next start() ("NAME=value"), e.g. VCRM_TEST_CRASH_AT.
  void setEnv(std::vector<std::string> env) { options_.env = std::move(env); }

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  int httpsPort() const { return httpsPort_; }
  int httpPort() const { return httpPort_; }
  int eventsPort() const { return eventsPort_; }
  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path stateDir() const { return root_ / "var/lib/vcrm"; }
  std::string adminPassword() const;         // the admin's password now
  std::string initialAdminPassword() const;  // what the one-time file holds ("" when gone)
  std::string output() const;         // everything vcrmd printed so far
  std::optional<pid_t> postmasterPid() const;
  HttpsClient client() const;  // trusts this appliance's certificate
  // A client signed in as admin with a bearer token; throws if the sign-in is refused.
  HttpsClient adminClient() const;
  // The embedded database's clock (seconds since the epoch): the clock that stamps every time
  // vcrmd records, for tests that must wait until a recorded time is far enough behind.
  double databaseClock() const;
  // A connection to the embedded database as its superuser, for tests that look at stored data.
  // The active database (the one <state>/database names after a restore), or `name`.
  db::Connection database() const;
  db::Connection database(const std::string& name) const;
  std::string activeDatabaseName() const;

  // Creates a user as `admin` and makes the user's own first password change (to
  // `password`), so the account is ready as its owner would leave it. Returns the creation.
  HttpResult createReadyUser(HttpsClient& admin, const std::string& name,
                             const std::vector<std::string>& roles, const std::string& password) const;

 private:
  Options options_;
  std::unique_ptr<TempDir> ownedRoot_;
  std::filesystem::path root_;
  std::filesystem::path logFile_;
  pid_t pid_ = -1;
  int httpsPort_ = 0;
  int httpPort_ = 0;
  int eventsPort_ = 0;
  int runs_ = 0;
  void chooseAdminPassword();
  // Reads the ports from a ready file written by a live vcrmd other than `notPid`.
  bool readReadyFile(pid_t notPid);
  std::int64_t startedAt_ = 0;  // the ready file's started_at, as last read
  // Polls for that until the ready timeout (false); throws `whenExited` if pid() exits.
  bool awaitReady(pid_t notPid, const std::string& whenExited);
  void applyTestLicence();
};

}  // namespace vcrm::test
