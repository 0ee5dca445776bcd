// Accounts, roles and sessions: scrypt password hashes, bearer/cookie sessions with a CSRF
// token each, and a throttle that slows repeated failed logins per user and per address.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "vcrm/common/crypto.h"
#include "vcrm/common/db.h"
#include "vcrm/common/guarded.h"
#include "vcrm/common/log.h"

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

// Counts failed logins per key and says how long the next attempt must wait.
class LoginThrottle {
 public:
  using Clock = std::chrono::steady_clock;
  // Free failures before slowing starts, per user and per address.
  LoginThrottle(int freeUserFailures = 3, int freeAddressFailures = 20);

  // Seconds until an attempt for this user from this address is allowed; 0 = now.
  int waitSeconds(const std::string& username, const std::string& address, Clock::time_point now = Clock::now());
  void recordFailure(const std::string& username, const std::string& address, Clock::time_point now = Clock::now());
  void recordSuccess(const std::string& username);

 private:
  struct Entry {
    int failures = 0;
    Clock::time_point last;
  };
  static int delayFor(int failures, int freeFailures);
  void prune(std::map<std::string, Entry>& m, Clock::time_point now);
  int freeUser_;
  int freeAddress_;
  struct State {
    std::map<std::string, Entry> byUser;
    std::map<std::string, Entry> byAddress;
  };
  Guarded<State> state_;
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
  };
  AuthService(db::Pool& pool, Logger& log, Options options);

  LoginResult login(const std::string& username, const std::string& password,
                    const std::string& remoteAddr);
  // The session for a bearer token, refreshing its idle timer; nullopt if unknown/expired.
  std::optional<Session> authenticate(const std::string& token);
  void logout(const std::string& token);

  // Creates `admin` with a random password when there are no users; returns that password.
  std::optional<std::string> bootstrapAdmin();

  std::vector<User> listUsers();
  User getUser(const std::string& username);  // NotFound
  User createUser(const std::string& username, const std::string& password,
                  const std::vector<std::string>& roles);
  struct UserPatch {
    std::optional<std::vector<std::string>> roles;
    std::optional<bool> disabled;
    std::optional<std::string> password;  // admin reset; the user must change it at next login
  };
  User updateUser(const std::string& actor, const std::string& username, const UserPatch& patch);
  void deleteUser(const std::string& actor, const std::string& username);
  void changeOwnPassword(const std::string& username, const std::string& current,
                         const std::string& next);

  // Throws Unprocessable("weak_password") with the rule that failed.
  static void checkPasswordPolicy(const std::string& username, const std::string& password);
  static void checkUsername(const std::string& username);
  static void checkRoles(const std::vector<std::string>& roles);

 private:
  void ensureAnotherActiveAdmin(db::Transaction& tx, const std::string& username);
  db::Pool& pool_;
  Logger& log_;
  Options options_;
  LoginThrottle throttle_;
  std::string dummyHash_;  // verified against for unknown users so timing does not tell
};

}  // namespace vcrm
