#include "vcrm/daemon/auth.h"

#include <algorithm>
#include <regex>
#include <set>

#include "vcrm/common/error.h"

namespace vcrm {

namespace {

constexpr const char* kComponent = "auth";

std::string toPgArray(const std::vector<std::string>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + items[i];
  return out + "}";
}

std::vector<std::string> fromPgArray(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : text) {
    if (c == '{' || c == '}' || c == '"') continue;
    if (c == ',') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

// Columns: id, username, roles, disabled, must_change_password, created_at, last_login_at
User userFromRow(const db::Result& r, int row, int first = 0) {
  User u;
  u.id = r.int64(row, first);
  u.username = r.text(row, first + 1);
  u.roles = fromPgArray(r.text(row, first + 2));
  u.disabled = r.boolean(row, first + 3);
  u.mustChangePassword = r.boolean(row, first + 4);
  u.createdAt = r.text(row, first + 5);
  u.lastLoginAt = r.optText(row, first + 6);
  return u;
}

std::string newToken() { return crypto::base64UrlEncode(crypto::randomBytes(32)); }

}  // namespace

const std::vector<std::string>& allRoleNames() {
  static const std::vector<std::string> names = {"admin", "operator", "support", "noc"};
  return names;
}

bool isRoleName(const std::string& name) {
  const auto& n = allRoleNames();
  return std::find(n.begin(), n.end(), name) != n.end();
}

bool User::hasRole(const std::string& role) const {
  return std::find(roles.begin(), roles.end(), role) != roles.end();
}

// ---------------------------------------------------------------------------------------------
LoginThrottle::LoginThrottle(int freeUserFailures, int freeAddressFailures)
    : freeUser_(freeUserFailures), freeAddress_(freeAddressFailures) {}

int LoginThrottle::delayFor(int failures, int freeFailures) {
  if (failures < freeFailures) return 0;
  const int over = std::min(failures - freeFailures, 9);
  return std::min(1 << over, 300);  // 1, 2, 4 ... seconds, at most 5 minutes
}

void LoginThrottle::prune(std::map<std::string, Entry>& m, Clock::time_point now) {
  if (m.size() < 10000) return;
  for (auto it = m.begin(); it != m.end();) {
    it = (now - it->second.last > std::chrono::minutes(15)) ? m.erase(it) : std::next(it);
  }
}

int LoginThrottle::waitSeconds(const std::string& username, const std::string& address,
                               Clock::time_point now) {
  auto st = state_.lock();
  int wait = 0;
  auto check = [&](std::map<std::string, Entry>& m, const std::string& key, int freeFailures) {
    auto it = m.find(key);
    if (it == m.end()) return;
    const auto ready = it->second.last + std::chrono::seconds(delayFor(it->second.failures, freeFailures));
    if (ready > now) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(ready - now).count();
      wait = std::max(wait, static_cast<int>((left + 999) / 1000));
    }
  };
  check(st->byUser, username, freeUser_);
  check(st->byAddress, address, freeAddress_);
  return wait;
}

void LoginThrottle::recordFailure(const std::string& username, const std::string& address,
                                  Clock::time_point now) {
  auto st = state_.lock();
  prune(st->byUser, now);
  prune(st->byAddress, now);
  for (auto* e : {&st->byUser[username], &st->byAddress[address]}) {
    // A quiet quarter of an hour forgives earlier failures.
    if (now - e->last > std::chrono::minutes(15)) e->failures = 0;
    ++e->failures;
    e->last = now;
  }
}

void LoginThrottle::recordSuccess(const std::string& username) {
  state_.lock()->byUser.erase(username);
}

// ---------------------------------------------------------------------------------------------
AuthService::AuthService(db::Pool& pool, Logger& log, Options options)
    : pool_(pool),
      log_(log),
      options_(options),
      dummyHash_(crypto::hashPassword(crypto::toHex(crypto::randomBytes(16)), options.scrypt)) {}

void AuthService::checkUsername(const std::string& username) {
  static const std::regex pattern("^[a-z][a-z0-9._-]{0,63}$");
  if (!std::regex_match(username, pattern)) {
    throw InvalidInput("user name \"" + username.substr(0, 80) +
                           "\" is not valid: start with a lower-case letter, then up to 63 "
                           "lower-case letters, digits, '.', '_' or '-'",
                       "invalid_username");
  }
}

void AuthService::checkRoles(const std::vector<std::string>& roles) {
  if (roles.empty()) {
    throw InvalidInput("give at least one role (admin, operator, support, noc)", "invalid_roles");
  }
  for (const auto& r : roles) {
    if (!isRoleName(r)) {
      throw InvalidInput("\"" + r.substr(0, 40) + "\" is not a role: use admin, operator, support or noc",
                         "invalid_roles");
    }
  }
}

void AuthService::checkPasswordPolicy(const std::string& username, const std::string& password) {
  if (password.size() < 10) {
    throw Unprocessable("the password must be at least 10 characters long", "weak_password");
  }
  if (password.size() > 1024) {
    throw Unprocessable("the password must be at most 1024 bytes long", "weak_password");
  }
  if (password == username) {
    throw Unprocessable("the password must not be the user name", "weak_password");
  }
  if (std::all_of(password.begin(), password.end(), [&](char c) { return c == password[0]; })) {
    throw Unprocessable("the password must not repeat one character", "weak_password");
  }
}

LoginResult AuthService::login(const std::string& username, const std::string& password,
                               const std::string& remoteAddr) {
  LoginResult result;
  if (const int wait = throttle_.waitSeconds(username, remoteAddr); wait > 0) {
    result.status = LoginResult::Status::Throttled;
    result.retryAfterSeconds = wait;
    log_.warn(kComponent, "LOGIN_THROTTLED", "login refused: too many failed attempts from " + remoteAddr,
              username);
    return result;
  }
  auto c = pool_.acquire();
  auto r = c->exec(
      "SELECT id, username, roles, disabled, must_change_password, rfc3339(created_at), rfc3339(last_login_at), "
      "password_hash FROM users WHERE username = $1",
      {username});
  const bool found = !r.empty();
  // Verify against a dummy hash for unknown users so response time does not reveal names.
  const bool passwordOk = crypto::verifyPassword(password, found ? r.text(0, 7) : dummyHash_);
  if (!found || !passwordOk || r.boolean(0, 3)) {
    throttle_.recordFailure(username, remoteAddr);
    log_.warn(kComponent, "LOGIN_FAILED",
              std::string("login failed from ") + remoteAddr +
                  (found && passwordOk ? " (account disabled)" : ""),
              username.substr(0, 64));
    return result;
  }
  throttle_.recordSuccess(username);
  result.session.user = userFromRow(r, 0);
  result.token = newToken();
  result.session.csrfToken = newToken();
  db::Transaction tx(*c);
  tx.exec("DELETE FROM sessions WHERE expires_at < now() OR last_seen_at < now() - $1::interval",
          {std::to_string(options_.idle.count()) + " minutes"});
  auto s = tx.exec(
      "INSERT INTO sessions (token_sha256, user_id, csrf_token, remote_addr, expires_at) "
      "VALUES ($1, $2, $3, $4, now() + $5::interval) RETURNING rfc3339(expires_at)",
      {crypto::sha256Hex(result.token), result.session.user.id, result.session.csrfToken,
       remoteAddr, std::to_string(options_.maxAge.count()) + " hours"});
  tx.exec("UPDATE users SET last_login_at = now() WHERE id = $1", {result.session.user.id});
  tx.commit();
  result.session.expiresAt = s.text(0, 0);
  result.status = LoginResult::Status::Ok;
  log_.info(kComponent, "LOGIN_OK", "signed in from " + remoteAddr, username);
  return result;
}

std::optional<Session> AuthService::authenticate(const std::string& token) {
  if (token.empty() || token.size() > 256) return std::nullopt;
  auto c = pool_.acquire();
  // Refreshes last_seen_at at most once a minute so reads do not each cost a write.
  auto r = c->exec(
      "WITH s AS ("
      "  SELECT token_sha256, user_id, csrf_token, expires_at, last_seen_at FROM sessions"
      "  WHERE token_sha256 = $1 AND expires_at > now()"
      "    AND last_seen_at > now() - $2::interval),"
      " touched AS ("
      "  UPDATE sessions SET last_seen_at = now() FROM s"
      "  WHERE sessions.token_sha256 = s.token_sha256"
      "    AND s.last_seen_at < now() - interval '1 minute')"
      " SELECT u.id, u.username, u.roles, u.disabled, u.must_change_password,"
      "        rfc3339(u.created_at), rfc3339(u.last_login_at), s.csrf_token, rfc3339(s.expires_at)"
      " FROM s JOIN users u ON u.id = s.user_id WHERE NOT u.disabled",
      {crypto::sha256Hex(token), std::to_string(options_.idle.count()) + " minutes"});
  if (r.empty()) return std::nullopt;
  Session s;
  s.user = userFromRow(r, 0);
  s.csrfToken = r.text(0, 7);
  s.expiresAt = r.text(0, 8);
  return s;
}

void AuthService::logout(const std::string& token) {
  auto c = pool_.acquire();
  c->exec("DELETE FROM sessions WHERE token_sha256 = $1", {crypto::sha256Hex(token)});
}

std::optional<std::string> AuthService::bootstrapAdmin() {
  auto c = pool_.acquire();
  db::Transaction tx(*c);
  // Serialises concurrent first starts against the same database.
  tx.exec("LOCK TABLE users IN EXCLUSIVE MODE");
  if (!tx.exec("SELECT 1 FROM users LIMIT 1").empty()) return std::nullopt;
  const std::string password = crypto::base64UrlEncode(crypto::randomBytes(18));
  tx.exec(
      "INSERT INTO users (username, password_hash, roles, must_change_password) "
      "VALUES ('admin', $1, '{admin}', true)",
      {crypto::hashPassword(password, options_.scrypt)});
  tx.commit();
  log_.info(kComponent, "ADMIN_CREATED", "first start: created the admin account", "admin");
  return password;
}

std::vector<User> AuthService::listUsers() {
  auto c = pool_.acquire();
  auto r = c->exec(
      "SELECT id, username, roles, disabled, must_change_password, rfc3339(created_at), rfc3339(last_login_at) "
      "FROM users ORDER BY username");
  std::vector<User> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(userFromRow(r, i));
  return out;
}

User AuthService::getUser(const std::string& username) {
  auto c = pool_.acquire();
  auto r = c->exec(
      "SELECT id, username, roles, disabled, must_change_password, rfc3339(created_at), rfc3339(last_login_at) "
      "FROM users WHERE username = $1",
      {username});
  if (r.empty()) throw NotFound("no user named \"" + username.substr(0, 80) + "\"", "user_not_found");
  return userFromRow(r, 0);
}

User AuthService::createUser(const std::string& username, const std::string& password,
                             const std::vector<std::string>& roles) {
  checkUsername(username);
  checkRoles(roles);
  checkPasswordPolicy(username, password);
  auto c = pool_.acquire();
  try {
    auto r = c->exec(
        "INSERT INTO users (username, password_hash, roles, must_change_password) "
        "VALUES ($1, $2, $3::text[], true) "
        "RETURNING id, username, roles, disabled, must_change_password, rfc3339(created_at), rfc3339(last_login_at)",
        {username, crypto::hashPassword(password, options_.scrypt), toPgArray(roles)});
    return userFromRow(r, 0);
  } catch (const DbError& e) {
    if (e.sqlState() == "23505") {
      throw Conflict("a user named \"" + username + "\" already exists", "user_exists");
    }
    throw;
  }
}

void AuthService::ensureAnotherActiveAdmin(db::Transaction& tx, const std::string& username) {
  tx.exec("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE");
  auto r = tx.exec(
      "SELECT count(*) FROM users WHERE 'admin' = ANY(roles) AND NOT disabled AND username <> $1",
      {username});
  if (r.int64(0, 0) == 0) {
    throw Conflict("\"" + username + "\" is the last enabled admin: make another admin first",
                   "last_admin");
  }
}

User AuthService::updateUser(const std::string& actor, const std::string& username,
                             const UserPatch& patch) {
  if (patch.roles) checkRoles(*patch.roles);
  if (patch.password) checkPasswordPolicy(username, *patch.password);
  auto c = pool_.acquire();
  db::Transaction tx(*c);
  auto cur = tx.exec(
      "SELECT id, username, roles, disabled, must_change_password, rfc3339(created_at), rfc3339(last_login_at) "
      "FROM users WHERE username = $1 FOR UPDATE",
      {username});
  if (cur.empty()) throw NotFound("no user named \"" + username.substr(0, 80) + "\"", "user_not_found");
  const User before = userFromRow(cur, 0);
  const bool losesAdmin =
      before.hasRole("admin") && !before.disabled &&
      ((patch.roles && std::find(patch.roles->begin(), patch.roles->end(), "admin") == patch.roles->end()) ||
       (patch.disabled && *patch.disabled));
  if (losesAdmin) ensureAnotherActiveAdmin(tx, username);
  if (patch.disabled && *patch.disabled && actor == username) {
    throw Conflict("you cannot disable your own account", "self_disable");
  }
  if (patch.roles) {
    tx.exec("UPDATE users SET roles = $2::text[], updated_at = now() WHERE id = $1",
            {before.id, toPgArray(*patch.roles)});
  }
  if (patch.disabled) {
    tx.exec("UPDATE users SET disabled = $2, updated_at = now() WHERE id = $1",
            {before.id, *patch.disabled});
  }
  if (patch.password) {
    tx.exec(
        "UPDATE users SET password_hash = $2, must_change_password = true, updated_at = now() "
        "WHERE id = $1",
        {before.id, crypto::hashPassword(*patch.password, options_.scrypt)});
  }
  // Roles, status or password changed: existing sessions must not keep the old rights.
  if (patch.roles || (patch.disabled && *patch.disabled) || patch.password) {
    tx.exec("DELETE FROM sessions WHERE user_id = $1", {before.id});
  }
  auto after = tx.exec(
      "SELECT id, username, roles, disabled, must_change_password, rfc3339(created_at), rfc3339(last_login_at) "
      "FROM users WHERE id = $1",
      {before.id});
  tx.commit();
  return userFromRow(after, 0);
}

void AuthService::deleteUser(const std::string& actor, const std::string& username) {
  if (actor == username) throw Conflict("you cannot delete your own account", "self_delete");
  auto c = pool_.acquire();
  db::Transaction tx(*c);
  auto cur = tx.exec("SELECT roles, disabled FROM users WHERE username = $1 FOR UPDATE", {username});
  if (cur.empty()) throw NotFound("no user named \"" + username.substr(0, 80) + "\"", "user_not_found");
  const auto roles = fromPgArray(cur.text(0, 0));
  if (std::find(roles.begin(), roles.end(), "admin") != roles.end() && !cur.boolean(0, 1)) {
    ensureAnotherActiveAdmin(tx, username);
  }
  tx.exec("DELETE FROM users WHERE username = $1", {username});
  tx.commit();
}

void AuthService::changeOwnPassword(const std::string& username, const std::string& current,
                                    const std::string& next) {
  auto c = pool_.acquire();
  auto r = c->exec("SELECT id, password_hash FROM users WHERE username = $1", {username});
  if (r.empty() || !crypto::verifyPassword(current, r.text(0, 1))) {
    throw Unprocessable("the current password is wrong", "wrong_password");
  }
  if (current == next) {
    throw Unprocessable("the new password must differ from the current one", "weak_password");
  }
  checkPasswordPolicy(username, next);
  c->exec(
      "UPDATE users SET password_hash = $2, must_change_password = false, updated_at = now() "
      "WHERE id = $1",
      {r.int64(0, 0), crypto::hashPassword(next, options_.scrypt)});
  log_.info(kComponent, "PASSWORD_CHANGED", "password changed", username);
}

}  // namespace vcrm
