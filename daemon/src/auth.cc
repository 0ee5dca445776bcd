#include "vcrm/daemon/auth.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <regex>
#include <set>

#include "vcrm/common/error.h"

namespace vcrm {

namespace {

constexpr const char* kComponent = "auth";
// The account bootstrapAdmin() creates, whose one-time password sits in a file.
constexpr const char* kFirstAdmin = "admin";

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
LoginThrottle::LoginThrottle(Limits limits) : limits_(limits) {}

std::string LoginThrottle::addressGroup(const std::string& address) {
  in6_addr a6{};
  if (inet_pton(AF_INET6, address.c_str(), &a6) != 1) return address;  // IPv4 or not an address
  char text[INET6_ADDRSTRLEN] = {};
  if (IN6_IS_ADDR_V4MAPPED(&a6)) {
    inet_ntop(AF_INET, &a6.s6_addr[12], text, sizeof text);
    return text;
  }
  std::fill(std::begin(a6.s6_addr) + 8, std::end(a6.s6_addr), 0);
  inet_ntop(AF_INET6, &a6, text, sizeof text);
  return std::string(text) + "/64";
}

int LoginThrottle::backoffWait(const Backoff& b, int freeFailures, Clock::time_point now, bool settledOnly) const {
  // A quiet spell forgives earlier failures (never while an attempt is in flight: it is recent).
  if (b.inFlight == 0 && now - b.last > limits_.forgiveAfter) return 0;
  const int failures = settledOnly ? b.failures - b.inFlight : b.failures;
  if (failures < freeFailures) return 0;
  const int over = std::min(failures - freeFailures, 20);
  const auto delay = std::min<std::chrono::seconds>(std::chrono::seconds(1LL << over), limits_.maxDelay);
  const auto ready = b.last + delay;
  if (ready <= now) return 0;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(ready - now).count();
  return static_cast<int>((left + 999) / 1000);
}

namespace {
double drained(double level, LoginThrottle::Clock::time_point last, LoginThrottle::Clock::time_point now,
               std::chrono::seconds drain) {
  if (now <= last) return level;
  return std::max(0.0, level - std::chrono::duration<double>(now - last) / drain);
}
}  // namespace

int LoginThrottle::bucketWait(const Bucket& b, Clock::time_point now, bool settledOnly) const {
  const double level = drained(b.level - (settledOnly ? b.inFlight : 0), b.last, now, limits_.userDrain);
  if (level + 1 <= limits_.userBurst) return 0;
  // Until the bucket has room for one more.
  const double seconds = (level + 1 - limits_.userBurst) * static_cast<double>(limits_.userDrain.count());
  return std::max(1, static_cast<int>(std::ceil(seconds)));
}

int LoginThrottle::check(const State& st, const std::string& pair, const std::string& group,
                         const std::string& username, Clock::time_point now, bool settledOnly) const {
  int wait = 0;
  if (auto it = st.byPair.find(pair); it != st.byPair.end()) {
    wait = std::max(wait, backoffWait(it->second, limits_.freePerUserAddress, now, settledOnly));
  }
  if (auto it = st.byAddress.find(group); it != st.byAddress.end()) {
    wait = std::max(wait, backoffWait(it->second, limits_.freePerAddress, now, settledOnly));
  }
  if (auto it = st.byUser.find(username); it != st.byUser.end()) {
    wait = std::max(wait, bucketWait(it->second, now, settledOnly));
  }
  return wait;
}

void LoginThrottle::prune(State& st, Clock::time_point now) {
  auto stale = [&](const Backoff& b) { return b.inFlight == 0 && now - b.last > limits_.forgiveAfter; };
  for (auto* m : {&st.byPair, &st.byAddress}) {
    if (m->size() < 10000) continue;
    for (auto it = m->begin(); it != m->end();) it = stale(it->second) ? m->erase(it) : std::next(it);
  }
  if (st.byUser.size() >= 10000) {
    for (auto it = st.byUser.begin(); it != st.byUser.end();) {
      const bool empty = it->second.inFlight == 0 && drained(it->second.level, it->second.last, now, limits_.userDrain) <= 0;
      it = empty ? st.byUser.erase(it) : std::next(it);
    }
  }
}

int LoginThrottle::waitSeconds(const std::string& username, const std::string& address,
                               Clock::time_point now) {
  const std::string group = addressGroup(address);
  auto st = state_.lock();
  return check(*st, username + '\n' + group, group, username, now, false);
}

int LoginThrottle::reserve(const std::string& username, const std::string& address,
                           Clock::time_point now, std::chrono::milliseconds inFlightWait) {
  const std::string group = addressGroup(address);
  const std::string pair = username + '\n' + group;
  const auto giveUp = Clock::now() + inFlightWait;
  auto st = state_.lock();
  // Checked and charged under one lock: the next parallel attempt already sees this one.
  for (;;) {
    const int wait = check(*st, pair, group, username, now, false);
    if (wait == 0) break;
    // Refused for settled failures, or still undecided at the end: the caller waits `wait`.
    if (check(*st, pair, group, username, now, true) > 0 || Clock::now() >= giveUp) return wait;
    const auto seen = st->settledCount;
    st.waitFor(settled_, giveUp - Clock::now(), [&] { return st->settledCount != seen; });
    now = std::max(now, Clock::now());
  }
  prune(*st, now);
  for (auto* b : {&st->byPair[pair], &st->byAddress[group]}) {
    if (b->inFlight == 0 && now - b->last > limits_.forgiveAfter) b->failures = 0;
    ++b->failures;
    ++b->inFlight;
    b->last = now;
  }
  auto& bucket = st->byUser[username];
  bucket.level = drained(bucket.level, bucket.last, now, limits_.userDrain) + 1;
  bucket.last = now;
  ++bucket.inFlight;
  return 0;
}

void LoginThrottle::settle(State& st, const std::string& pair, const std::string& group,
                           const std::string& username, bool success, Clock::time_point now) {
  for (auto* m : {&st.byPair, &st.byAddress}) {
    auto it = m->find(m == &st.byPair ? pair : group);
    if (it == m->end()) continue;
    auto& b = it->second;
    b.inFlight = std::max(0, b.inFlight - 1);
    if (success) {
      b.failures = std::max(0, b.failures - 1);
    } else {
      b.last = std::max(b.last, now);  // the wait runs from the end of the hash
    }
  }
  if (auto it = st.byUser.find(username); it != st.byUser.end()) {
    it->second.inFlight = std::max(0, it->second.inFlight - 1);
    if (success) it->second.level = std::max(0.0, it->second.level - 1);
  }
  // A right password clears its (user, address) counter, attempts still in flight excepted.
  if (success) {
    if (auto it = st.byPair.find(pair); it != st.byPair.end()) {
      it->second.failures = it->second.inFlight;
      if (it->second.inFlight == 0) st.byPair.erase(it);
    }
  }
  ++st.settledCount;
}

void LoginThrottle::failed(const std::string& username, const std::string& address, Clock::time_point now) {
  const std::string group = addressGroup(address);
  {
    auto st = state_.lock();
    settle(*st, username + '\n' + group, group, username, false, now);
  }
  settled_.notify_all();
}

void LoginThrottle::succeeded(const std::string& username, const std::string& address) {
  const std::string group = addressGroup(address);
  {
    auto st = state_.lock();
    settle(*st, username + '\n' + group, group, username, true, Clock::now());
  }
  settled_.notify_all();
}

// ---------------------------------------------------------------------------------------------
AuthService::AuthService(db::Pool& pool, Logger& log, Options options)
    : pool_(pool),
      log_(log),
      options_(options),
      throttle_(options.throttle),
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
                               const std::string& remoteAddr, const AuditedCommit& audit) {
  LoginResult result;
  if (const int wait = throttle_.reserve(username, remoteAddr); wait > 0) {
    result.status = LoginResult::Status::Throttled;
    result.retryAfterSeconds = wait;
    log_.warn(kComponent, "LOGIN_THROTTLED", "login refused: too many failed attempts from " + remoteAddr,
              username.substr(0, 64));
    return result;
  }
  // The lease is given back before scrypt: a hash takes far longer than the query, and
  // sign-ins must not starve the pool.
  const db::Result r = [&] {
    auto c = pool_.acquire();
    return c->exec(
        "SELECT id, username, roles, disabled, must_change_password, rfc3339(created_at), "
        "rfc3339(last_login_at), password_hash FROM users WHERE username = $1",
        {username});
  }();
  const bool found = !r.empty();
  // Verify against a dummy hash for unknown users so response time does not reveal names.
  const bool passwordOk = crypto::verifyPassword(password, found ? r.text(0, 7) : dummyHash_);
  if (!found || !passwordOk || r.boolean(0, 3)) {
    log_.warn(kComponent, "LOGIN_FAILED",
              std::string("login failed from ") + remoteAddr +
                  (found && passwordOk ? " (account disabled)" : ""),
              username.substr(0, 64));
    throttle_.failed(username, remoteAddr);
    return result;
  }
  throttle_.succeeded(username, remoteAddr);
  result.session.user = userFromRow(r, 0);
  result.token = newToken();
  result.session.csrfToken = newToken();
  auto c = pool_.acquire();
  db::Transaction tx(*c);
  tx.exec("DELETE FROM sessions WHERE expires_at < now() OR last_seen_at < now() - $1::interval",
          {std::to_string(options_.idle.count()) + " minutes"});
  auto s = tx.exec(
      "INSERT INTO sessions (token_sha256, user_id, csrf_token, remote_addr, expires_at) "
      "VALUES ($1, $2, $3, $4, now() + $5::interval) RETURNING rfc3339(expires_at)",
      {crypto::sha256Hex(result.token), result.session.user.id, result.session.csrfToken,
       remoteAddr, std::to_string(options_.maxAge.count()) + " hours"});
  tx.exec("UPDATE users SET last_login_at = now() WHERE id = $1", {result.session.user.id});
  audit.commit(tx);
  result.session.expiresAt = s.text(0, 0);
  result.status = LoginResult::Status::Ok;
  log_.info(kComponent, "LOGIN_OK", "signed in from " + remoteAddr, username);
  return result;
}

void AuthService::requirePasswordChanged(const Session& session, bool routeAllowsIt) {
  if (session.user.mustChangePassword && !routeAllowsIt) {
    throw Forbidden("choose your own password first: this account signed in with a one-time "
                    "password (POST /api/v1/auth/password, or the Account page)",
                    "password_change_required");
  }
}

std::optional<Session> AuthService::authenticate(const std::string& token) {
  return findSession(token, true);
}

std::optional<Session> AuthService::revalidate(const std::string& token) {
  return findSession(token, false);
}

std::optional<Session> AuthService::findSession(const std::string& token, bool touch) {
  if (token.empty() || token.size() > 256) return std::nullopt;
  const std::string hash = crypto::sha256Hex(token);
  auto c = pool_.acquire();
  auto r = c->exec(
      "SELECT u.id, u.username, u.roles, u.disabled, u.must_change_password,"
      "       rfc3339(u.created_at), rfc3339(u.last_login_at), s.csrf_token, rfc3339(s.expires_at),"
      "       s.last_seen_at < now() - interval '1 minute'"
      " FROM sessions s JOIN users u ON u.id = s.user_id"
      " WHERE s.token_sha256 = $1 AND s.expires_at > now()"
      "   AND s.last_seen_at > now() - $2::interval AND NOT u.disabled",
      {hash, std::to_string(options_.idle.count()) + " minutes"});
  if (r.empty()) return std::nullopt;
  // The idle timer moves at most once a minute so reads do not each cost a write.
  if (touch && r.boolean(0, 9))
    c->exec("UPDATE sessions SET last_seen_at = now() WHERE token_sha256 = $1", {hash});
  Session s;
  s.user = userFromRow(r, 0);
  s.csrfToken = r.text(0, 7);
  s.expiresAt = r.text(0, 8);
  return s;
}

void AuthService::logout(const std::string& token, const AuditedCommit& audit) {
  auto c = pool_.acquire();
  db::Transaction tx(*c);
  tx.exec("DELETE FROM sessions WHERE token_sha256 = $1", {crypto::sha256Hex(token)});
  audit.commit(tx);
}

std::optional<std::string> AuthService::bootstrapAdmin() {
  const auto anyUser = [](db::Connection& c) { return !c.exec("SELECT 1 FROM users LIMIT 1").empty(); };
  {
    auto c = pool_.acquire();
    if (anyUser(*c)) return std::nullopt;  // every start but the first: no hash needed
  }
  const std::string password = crypto::base64UrlEncode(crypto::randomBytes(18));
  const std::string hash = crypto::hashPassword(password, options_.scrypt);  // holding no lease
  auto c = pool_.acquire();
  db::Transaction tx(*c);
  // Serialises concurrent first starts against the same database.
  tx.exec("LOCK TABLE users IN EXCLUSIVE MODE");
  if (!tx.exec("SELECT 1 FROM users LIMIT 1").empty()) return std::nullopt;
  tx.exec(
      "INSERT INTO users (username, password_hash, roles, must_change_password) "
      "VALUES ($1, $2, '{admin}', true)",
      {std::string(kFirstAdmin), hash});
  tx.commit();
  log_.info(kComponent, "ADMIN_CREATED", "first start: created the admin account", kFirstAdmin);
  return password;
}

void AuthService::forgetSpentInitialPassword() {
  if (options_.initialPasswordFile.empty() || !std::filesystem::exists(options_.initialPasswordFile)) return;
  auto c = pool_.acquire();
  auto r = c->exec("SELECT must_change_password FROM users WHERE username = $1", {std::string(kFirstAdmin)});
  if (r.empty() || !r.boolean(0, 0)) removeInitialPasswordFile();
}

void AuthService::removeInitialPasswordFile() {
  if (options_.initialPasswordFile.empty()) return;
  std::error_code ec;
  if (std::filesystem::remove(options_.initialPasswordFile, ec)) {
    log_.info(kComponent, "INITIAL_PASSWORD_REMOVED",
              "the first admin's one-time password was replaced; removed its file",
              options_.initialPasswordFile.string());
  } else if (ec) {
    log_.warn(kComponent, "INITIAL_PASSWORD_NOT_REMOVED",
              "cannot remove the spent one-time password file: " + ec.message() + "; delete it by hand",
              options_.initialPasswordFile.string());
  }
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
                             const std::vector<std::string>& roles, const AuditedCommit& audit) {
  checkUsername(username);
  checkRoles(roles);
  checkPasswordPolicy(username, password);
  const std::string hash = crypto::hashPassword(password, options_.scrypt);  // before the lease
  auto c = pool_.acquire();
  try {
    db::Transaction tx(*c);
    auto r = tx.exec(
        "INSERT INTO users (username, password_hash, roles, must_change_password) "
        "VALUES ($1, $2, $3::text[], true) "
        "RETURNING id, username, roles, disabled, must_change_password, rfc3339(created_at), "
        "rfc3339(last_login_at)",
        {username, hash, toPgArray(roles)});
    audit.commit(tx);
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
                             const UserPatch& patch, const AuditedCommit& audit) {
  if (patch.roles) checkRoles(*patch.roles);
  if (patch.password) checkPasswordPolicy(username, *patch.password);
  std::optional<std::string> hash;  // made before the lease is taken
  if (patch.password) hash = crypto::hashPassword(*patch.password, options_.scrypt);
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
        {before.id, *hash});
  }
  // Roles, status or password changed: existing sessions must not keep the old rights.
  if (patch.roles || (patch.disabled && *patch.disabled) || patch.password) {
    tx.exec("DELETE FROM sessions WHERE user_id = $1", {before.id});
  }
  auto after = tx.exec(
      "SELECT id, username, roles, disabled, must_change_password, rfc3339(created_at), rfc3339(last_login_at) "
      "FROM users WHERE id = $1",
      {before.id});
  audit.commit(tx);
  // An admin reset of the first admin's password spends the one in the file as well.
  if (patch.password && username == kFirstAdmin) removeInitialPasswordFile();
  return userFromRow(after, 0);
}

void AuthService::deleteUser(const std::string& actor, const std::string& username,
                             const AuditedCommit& audit) {
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
  audit.commit(tx);
}

void AuthService::changeOwnPassword(const std::string& username, const std::string& current,
                                    const std::string& next, const std::string& remoteAddr,
                                    const std::string& keepToken, const AuditedCommit& audit) {
  // What needs no hash first, so a refused new password costs neither scrypt nor a try.
  if (current == next) {
    throw Unprocessable("the new password must differ from the current one", "weak_password");
  }
  checkPasswordPolicy(username, next);
  // A stolen session must not make the current password cheaper to guess than sign-in does.
  if (const int wait = throttle_.reserve(username, remoteAddr); wait > 0) {
    log_.warn(kComponent, "PASSWORD_CHECK_THROTTLED",
              "password change refused: too many wrong current passwords from " + remoteAddr, username);
    throw RateLimited("too many wrong current passwords; wait " + std::to_string(wait) +
                          " s and try again",
                      wait);
  }
  const db::Result r = [&] {
    auto c = pool_.acquire();
    return c->exec("SELECT id, password_hash FROM users WHERE username = $1", {username});
  }();
  if (r.empty() || !crypto::verifyPassword(current, r.text(0, 1))) {
    throttle_.failed(username, remoteAddr);
    log_.warn(kComponent, "PASSWORD_CHECK_FAILED", "wrong current password from " + remoteAddr, username);
    throw Unprocessable("the current password is wrong", "wrong_password");
  }
  throttle_.succeeded(username, remoteAddr);
  const std::string hash = crypto::hashPassword(next, options_.scrypt);  // holding no lease
  auto c = pool_.acquire();
  db::Transaction tx(*c);
  // Only over the hash just verified: a change that raced this one wins, this one is refused.
  auto updated = tx.exec(
      "UPDATE users SET password_hash = $2, must_change_password = false, updated_at = now() "
      "WHERE id = $1 AND password_hash = $3",
      {r.int64(0, 0), hash, r.text(0, 1)});
  if (updated.affected() != 1) {
    throw Conflict("the password was changed meanwhile; sign in again with the new one", "password_changed");
  }
  // Whoever else holds a session of this user (the reason to change a password) is signed out.
  auto ended = tx.exec("DELETE FROM sessions WHERE user_id = $1 AND token_sha256 <> $2",
                       {r.int64(0, 0), crypto::sha256Hex(keepToken)});
  audit.commit(tx);
  log_.info(kComponent, "PASSWORD_CHANGED",
            "password changed; ended " + std::to_string(ended.affected()) + " other session(s)", username);
  if (username == kFirstAdmin) removeInitialPasswordFile();
}

}  // namespace vcrm
