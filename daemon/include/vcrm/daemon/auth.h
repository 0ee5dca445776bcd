// Accounts, roles and sessions: scrypt password hashes, bearer/cookie sessions with a CSRF
// token each, and a throttle that slows repeated failed logins per user and per address.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "vcrm/common/crypto.h"
#include "vcrm/common/db.h"
#include "vcrm/common/guarded.h"
#include "vcrm/common/log.h"
#include "vcrm/daemon/audit.h"

namespace vcrm {

enum class Role { Admin, Operator, Support, Noc };
const std::vector<std::string>& allRoleNames();
bool isRoleName(const std::string& name);

struct User {
  std::int64_t id = 0;
  std::string username;
  std::vector<std::string> roles;
  bool disabled = false;
  bool mustChangePassword = false;
  std::string createdAt;
  std::optional<std::string> lastLoginAt;
  bool hasRole(const std::string& role) const;
};

struct Session {
  User user;
  std::string csrfToken;
  std::string expiresAt;
};

// Slows repeated failed sign-ins (and current-password checks). An attempt reserves its place
// before the password is hashed and counts as a failure until it is known to have succeeded,
// so parallel guesses cannot all slip past the check. Three counters, checked and charged
// together under one lock:
//   (user, address)  the tight one: a few free failures, then 1, 2, 4 ... s, at most 5 min;
//   address          across all users, looser: password spraying from one place;
//   user             across all addresses, a leaky bucket much larger than one address can
//                    fill, so guesses from one address never lock the user out elsewhere.
// Addresses are grouped: IPv6 by /64 (one host usually owns a whole /64), IPv4-mapped IPv6
// as the IPv4 address.
class LoginThrottle {
 public:
  using Clock = std::chrono::steady_clock;
  struct Limits {
    int freePerUserAddress = 3;
    int freePerAddress = 20;
    int userBurst = 100;                           // failures per user before all addresses wait
    std::chrono::seconds userDrain{60};            // the bucket forgets one failure this often
    std::chrono::seconds maxDelay{300};
    std::chrono::minutes forgiveAfter{15};         // a quiet spell resets the exponential counters
  };
  LoginThrottle() : LoginThrottle(Limits{}) {}
  explicit LoginThrottle(Limits limits);

  // 0: the attempt may go ahead and is counted as a failure until succeeded() is called.
  // Otherwise the seconds to wait; nothing is counted for a refused attempt. An attempt that
  // is refused only because of attempts still in flight waits (up to `inFlightWait`) for
  // their outcome: if they succeed it may go ahead, so a script signing in several times at
  // once is not refused, while parallel wrong guesses still get only the free tries.
  int reserve(const std::string& username, const std::string& address, Clock::time_point now = Clock::now(),
              std::chrono::milliseconds inFlightWait = std::chrono::seconds(5));
  // The reserved attempt had the right password: its failure is taken back and the
  // (user, address) counter cleared.
  void succeeded(const std::string& username, const std::string& address);
  // The reserved attempt was wrong: it stays counted, and the wait runs from now (the end of
  // the hash), not from when it was reserved.
  void failed(const std::string& username, const std::string& address, Clock::time_point now = Clock::now());
  // Seconds an attempt would wait now, without reserving one.
  int waitSeconds(const std::string& username, const std::string& address, Clock::time_point now = Clock::now());

  // The key an address is counted under: "2001:db8:1:2::/64", "192.0.2.7".
  static std::string addressGroup(const std::string& address);
  const Limits& limits() const { return limits_; }

 private:
  struct Backoff {  // exponential: free failures, then doubling waits since the last one
    int failures = 0;  // attempts in flight included
    int inFlight = 0;
    Clock::time_point last;
  };
  struct Bucket {  // leaky: drains one failure per userDrain
    double level = 0;  // attempts in flight included
    int inFlight = 0;
    Clock::time_point last;
  };
  struct State {
    std::map<std::string, Backoff> byPair;
    std::map<std::string, Backoff> byAddress;
    std::map<std::string, Bucket> byUser;
    std::uint64_t settledCount = 0;  // attempts whose outcome is known; waiters watch it
  };
  // Waits in seconds; `settledOnly` leaves out the attempts still in flight.
  int backoffWait(const Backoff& b, int freeFailures, Clock::time_point now, bool settledOnly) const;
  int bucketWait(const Bucket& b, Clock::time_point now, bool settledOnly) const;
  int check(const State& st, const std::string& pair, const std::string& group, const std::string& username,
            Clock::time_point now, bool settledOnly) const;
  void settle(State& st, const std::string& pair, const std::string& group, const std::string& username,
              bool success, Clock::time_point now);
  void prune(State& st, Clock::time_point now);
  Limits limits_;
  Guarded<State> state_;
  std::condition_variable settled_;  // an attempt's outcome became known
};

struct LoginResult {
  enum class Status { Ok, BadCredentials, Throttled };
  Status status = Status::BadCredentials;
  int retryAfterSeconds = 0;
  std::string token;  // bearer token, shown to the client once
  Session session;
};

class AuthService {
 public:
  struct Options {
    std::chrono::minutes idle{60};
    std::chrono::hours maxAge{12};
    crypto::ScryptParams scrypt{};
    LoginThrottle::Limits throttle{};
    // Holds the first admin's one-time password; removed once that password is changed.
    std::filesystem::path initialPasswordFile;
  };
  AuthService(db::Pool& pool, Logger& log, Options options);

  // Changes made for a request (a new session, a changed user...) commit through `audit`,
  // with the request's audit row.
  LoginResult login(const std::string& username, const std::string& password,
                    const std::string& remoteAddr, const AuditedCommit& audit);
  // The session for a bearer token, refreshing its idle timer; nullopt if unknown/expired.
  std::optional<Session> authenticate(const std::string& token);
  // The same check without refreshing the idle timer, for a long-lived request that keeps
  // re-checking its session (a live event stream is not activity): nullopt once the session
  // was ended (sign-out, a role change, a disable, a password reset), timed out or its user
  // disabled. Holds a database connection only for the query.
  std::optional<Session> revalidate(const std::string& token);
  void logout(const std::string& token, const AuditedCommit& audit);

  // Creates `admin` with a random password when there are no users; returns that password.
  std::optional<std::string> bootstrapAdmin();
  // Removes the one-time password file if the first admin has already replaced that password
  // (for instance by a version that did not remove it).
  void forgetSpentInitialPassword();

  // A session whose user must change the password may only do what `routeAllowsIt` says
  // (change it, read its session, sign out): Forbidden("password_change_required") otherwise.
  static void requirePasswordChanged(const Session& session, bool routeAllowsIt);

  std::vector<User> listUsers();
  User getUser(const std::string& username);  // NotFound
  User createUser(const std::string& username, const std::string& password,
                  const std::vector<std::string>& roles, const AuditedCommit& audit);
  struct UserPatch {
    std::optional<std::vector<std::string>> roles;
    std::optional<bool> disabled;
    std::optional<std::string> password;  // admin reset; the user must change it at next login
  };
  User updateUser(const std::string& actor, const std::string& username, const UserPatch& patch,
                  const AuditedCommit& audit);
  void deleteUser(const std::string& actor, const std::string& username,
                  const AuditedCommit& audit);
  // Checks `current` (slowed like sign-in: RateLimited), sets `next`, clears "must change"
  // and ends the user's other sessions; the session of `keepToken` continues.
  void changeOwnPassword(const std::string& username, const std::string& current,
                         const std::string& next, const std::string& remoteAddr,
                         const std::string& keepToken, const AuditedCommit& audit);

  // Throws Unprocessable("weak_password") with the rule that failed.
  static void checkPasswordPolicy(const std::string& username, const std::string& password);
  static void checkUsername(const std::string& username);
  static void checkRoles(const std::vector<std::string>& roles);

 private:
  std::optional<Session> findSession(const std::string& token, bool touch);
  void ensureAnotherActiveAdmin(db::Transaction& tx, const std::string& username);
  void removeInitialPasswordFile();
  db::Pool& pool_;
  Logger& log_;
  Options options_;
  LoginThrottle throttle_;
  std::string dummyHash_;  // verified against for unknown users so timing does not tell
};

}  // namespace vcrm
