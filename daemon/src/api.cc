#include "vcrm/daemon/api.h"

#include <Poco/JSON/Array.h>

#include "vcrm/common/crypto.h"
#include "vcrm/common/error.h"

namespace vcrm {

namespace {

constexpr const char* kComponent = "api";
constexpr const char* kSessionCookie = "vcrm_session";

bool changesState(const std::string& method) {
  return method != "GET" && method != "HEAD" && method != "OPTIONS";
}

json::ObjectPtr userJson(const User& u) {
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("username", u.username);
  json::ArrayPtr roles = new json::Array;
  for (const auto& r : u.roles) roles->add(r);
  o->set("roles", roles);
  o->set("disabled", u.disabled);
  o->set("must_change_password", u.mustChangePassword);
  o->set("created_at", u.createdAt);
  o->set("last_login_at", u.lastLoginAt ? Poco::Dynamic::Var(*u.lastLoginAt) : Poco::Dynamic::Var());
  return o;
}

json::ObjectPtr sessionJson(const Session& s) {
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("user", userJson(s.user));
  o->set("csrf_token", s.csrfToken);
  o->set("expires_at", s.expiresAt);
  return o;
}

}  // namespace

const std::string& RequestContext::param(const std::string& name) const {
  return request.pathParams.at(name);
}

json::ObjectPtr RequestContext::body() const { return json::parseObject(request.body); }

Api::Api(Info info, ApiServices services, std::filesystem::path webuiDir)
    : info_(std::move(info)),
      s_(services),
      auth_(services.auth),
      audit_(services.audit),
      pool_(services.pool),
      log_(services.log),
      static_(std::move(webuiDir)) {
  buildRoutes();
  buildConferenceRoutes();
}

void Api::applyStoredLogLevel() {
  auto c = pool_.acquire();
  auto r = c->exec("SELECT value FROM appliance_settings WHERE key = 'log.level'");
  if (r.empty()) return;
  if (auto level = parseLogLevel(r.text(0, 0))) log_.setLevel(*level);
}

bool Api::matchPattern(const std::string& pattern, const std::string& path,
                       std::map<std::string, std::string>& params) {
  std::size_t pi = 0;
  std::size_t si = 0;
  while (pi < pattern.size() && si < path.size()) {
    if (pattern[pi] == '{') {
      const auto close = pattern.find('}', pi);
      const std::string name = pattern.substr(pi + 1, close - pi - 1);
      // A parameter runs to the next '/' or, in "{id}.ics", to the literal that follows it.
      const std::string stop = close + 1 < pattern.size() && pattern[close + 1] != '/'
                                   ? std::string("/") + pattern[close + 1]
                                   : std::string("/");
      const auto end = path.find_first_of(stop, si);
      const std::string value = path.substr(si, end == std::string::npos ? std::string::npos : end - si);
      if (value.empty()) return false;
      params[name] = value;
      pi = close + 1;
      si = end == std::string::npos ? path.size() : end;
    } else if (pattern[pi] == path[si]) {
      ++pi;
      ++si;
    } else {
      return false;
    }
  }
  return pi == pattern.size() && si == path.size();
}

// The one place where a failure becomes an HTTP status.
http::Response Api::errorResponse(const std::exception& e) {
  if (const auto* rl = dynamic_cast<const RateLimited*>(&e)) {
    auto r = http::Response::error(429, rl->code(), rl->what());
    r.headers.emplace_back("Retry-After", std::to_string(rl->retryAfterSeconds()));
    return r;
  }
  if (const auto* err = dynamic_cast<const Error*>(&e)) {
    int status = 500;
    if (dynamic_cast<const InvalidInput*>(err)) status = 400;
    else if (dynamic_cast<const Unauthenticated*>(err)) status = 401;
    else if (dynamic_cast<const Forbidden*>(err)) status = 403;
    else if (dynamic_cast<const NotFound*>(err)) status = 404;
    else if (dynamic_cast<const Conflict*>(err)) status = 409;
    else if (dynamic_cast<const TooLarge*>(err)) status = 413;
    else if (dynamic_cast<const Unprocessable*>(err)) status = 422;
    else if (dynamic_cast<const DbError*>(err)) status = 503;
    if (status >= 500) {
      log_.error(kComponent, "REQUEST_FAILED", err->what());
      return http::Response::error(status, status == 503 ? "unavailable" : "internal_error",
                                   status == 503 ? "the database is not answering; try again shortly"
                                                 : "internal error; the appliance log has details");
    }
    return http::Response::error(status, err->code(), err->what());
  }
  log_.error(kComponent, "REQUEST_FAILED", e.what());
  return http::Response::error(500, "internal_error", "internal error; the appliance log has details");
}

http::Response Api::handle(http::Request& request) {
  RequestContext ctx{request, std::nullopt, {}, false, std::nullopt, std::nullopt};
  const Route* matched = nullptr;
  http::Response response;
  try {
    response = dispatch(request, ctx, matched);
  } catch (const std::exception& e) {
    response = errorResponse(e);
  }
  // Routes too busy to audit (bridge event posts) still leave a row when they refuse.
  if (!matched || matched->audited || response.status >= 400) {
    audit(request, matched ? matched->action : "unknown", response.status,
          ctx.session ? std::optional<std::string>(ctx.session->user.username) : ctx.auditUser, ctx.auditTarget);
  }
  return response;
}

void Api::auditRefused(const http::Request& request, int status) {
  audit(request, "refused", status, std::nullopt, std::nullopt);
}

void Api::audit(const http::Request& request, const std::string& action, int status,
                const std::optional<std::string>& username, const std::optional<std::string>& target) {
  if (!changesState(request.method) || request.path.rfind("/api/", 0) != 0) return;
  AuditEntry entry;
  entry.username = username;
  entry.remoteAddr = request.remoteAddr;
  entry.method = request.method;
  entry.path = request.path;
  entry.action = action;
  entry.target = target;
  entry.status = status;
  audit_.record(entry);
}

http::Response Api::dispatch(http::Request& request, RequestContext& ctx, const Route*& matched) {
  const bool isApi = request.path.rfind("/api/", 0) == 0 || request.path == "/healthz";
  if (!isApi) return static_.serve(request);

  std::vector<std::string> allowed;
  for (const auto& route : routes_) {
    std::map<std::string, std::string> params;
    if (!matchPattern(route.pattern, request.path, params)) continue;
    if (route.method != request.method &&
        !(request.method == "HEAD" && route.method == "GET")) {
      allowed.push_back(route.method);
      continue;
    }
    matched = &route;
    request.pathParams = std::move(params);
    break;
  }
  if (!matched) {
    if (!allowed.empty()) {
      std::string allow;
      for (const auto& m : allowed) allow += (allow.empty() ? "" : ", ") + m;
      auto r = http::Response::error(405, "method_not_allowed",
                                     request.method + " is not allowed on " + request.path +
                                         " (allowed: " + allow + ")");
      r.headers.emplace_back("Allow", allow);
      return r;
    }
    return http::Response::error(404, "not_found", "no API endpoint " + request.path);
  }

  if (matched->access != Route::Access::Public) {
    // A bearer token wins over the cookie; only cookie-borne sessions need a CSRF token,
    // because browsers attach cookies to cross-site requests but never Authorization headers.
    const std::string authz = request.header("authorization");
    if (authz.rfind("Bearer ", 0) == 0) {
      ctx.token = authz.substr(7);
    } else if (auto cookie = request.cookie(kSessionCookie)) {
      ctx.token = *cookie;
      ctx.viaCookie = true;
    }
    if (ctx.token.empty()) {
      throw Unauthenticated("sign in first: send the session cookie or an Authorization: Bearer token");
    }
    ctx.session = auth_.authenticate(ctx.token);
    if (!ctx.session) {
      throw Unauthenticated("your session has expired or was ended; sign in again", "session_expired");
    }
    if (ctx.viaCookie && changesState(request.method)) {
      const std::string csrf = request.header("x-csrf-token");
      if (csrf.empty() || !crypto::constantTimeEqual(csrf, ctx.session->csrfToken)) {
        throw Forbidden("missing or wrong X-CSRF-Token header; reload the page and try again",
                        "csrf_failed");
      }
    }
    if (matched->access == Route::Access::Roles) {
      bool ok = false;
      for (const auto& role : matched->roles) ok = ok || ctx.session->user.hasRole(role);
      if (!ok) {
        std::string need;
        for (const auto& role : matched->roles) need += (need.empty() ? "" : " or ") + role;
        throw Forbidden("this needs the " + need + " role; your account has not got it");
      }
    }
  }
  if (changesState(request.method) && !request.body.empty()) {
    const std::string type = request.header("content-type");
    if (type.rfind("application/json", 0) != 0) {
      return http::Response::error(415, "unsupported_media_type",
                                   "send the request body as JSON with Content-Type: application/json");
    }
  }
  return matched->handler(ctx);
}

void Api::buildRoutes() {
  using A = Route::Access;
  const std::vector<std::string> admin{"admin"};

  routes_.push_back({"GET", "/healthz", A::Public, {}, "health", [this](RequestContext&) {
    json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    try {
      auto c = pool_.acquire(std::chrono::seconds(2));
      c->exec("SELECT 1");
      o->set("status", "ok");
      o->set("database", "ok");
      return http::Response::json(200, o);
    } catch (const std::exception& e) {
      log_.warn(kComponent, "HEALTH_DB_DOWN", e.what());
      o->set("status", "unavailable");
      o->set("database", "unreachable");
      return http::Response::json(503, o);
    }
  }});

  routes_.push_back({"GET", "/api/v1/version", A::Public, {}, "version", [this](RequestContext&) {
    json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("product", "vcrm");
    o->set("version", info_.version);
    o->set("schema", info_.schema);
    return http::Response::json(200, o);
  }});

  routes_.push_back({"POST", "/api/v1/auth/login", A::Public, {}, "auth.login", [this](RequestContext& ctx) {
    auto body = ctx.body();
    json::onlyKeys(body, {"username", "password"});
    const std::string username = json::requireString(body, "username", 64);
    const std::string password = json::requireString(body, "password", 1024);
    ctx.auditUser = username;
    auto result = auth_.login(username, password, ctx.request.remoteAddr);
    if (result.status == LoginResult::Status::Throttled) {
      throw RateLimited("too many failed sign-ins for this user or address; wait " +
                            std::to_string(result.retryAfterSeconds) + " s and try again",
                        result.retryAfterSeconds);
    }
    if (result.status == LoginResult::Status::BadCredentials) {
      throw Unauthenticated("Wrong user name or password.", "bad_credentials");
    }
    auto o = sessionJson(result.session);
    o->set("token", result.token);
    auto r = http::Response::json(200, o);
    r.headers.emplace_back("Set-Cookie", std::string(kSessionCookie) + "=" + result.token +
                                             "; Path=/; Max-Age=" +
                                             std::to_string(info_.sessionMaxHours * 3600) +
                                             "; HttpOnly; Secure; SameSite=Strict");
    return r;
  }});

  routes_.push_back({"GET", "/api/v1/auth/session", A::AnyUser, {}, "auth.session", [](RequestContext& ctx) {
    return http::Response::json(200, sessionJson(*ctx.session));
  }});

  routes_.push_back({"POST", "/api/v1/auth/logout", A::AnyUser, {}, "auth.logout", [this](RequestContext& ctx) {
    auth_.logout(ctx.token);
    auto r = http::Response::noContent();
    r.headers.emplace_back("Set-Cookie", std::string(kSessionCookie) +
                                             "=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict");
    return r;
  }});

  routes_.push_back({"POST", "/api/v1/auth/password", A::AnyUser, {}, "auth.change_password",
                     [this](RequestContext& ctx) {
    auto body = ctx.body();
    json::onlyKeys(body, {"current_password", "new_password"});
    auth_.changeOwnPassword(ctx.session->user.username,
                            json::requireString(body, "current_password", 1024),
                            json::requireString(body, "new_password", 4096));
    return http::Response::noContent();
  }});

  routes_.push_back({"GET", "/api/v1/users", A::Roles, admin, "user.list", [this](RequestContext&) {
    json::ArrayPtr arr = new json::Array;
    for (const auto& u : auth_.listUsers()) arr->add(userJson(u));
    json::ObjectPtr o = new json::Object;
    o->set("users", arr);
    return http::Response::json(200, o);
  }});

  routes_.push_back({"POST", "/api/v1/users", A::Roles, admin, "user.create", [this](RequestContext& ctx) {
    auto body = ctx.body();
    json::onlyKeys(body, {"username", "password", "roles"});
    const std::string username = json::requireString(body, "username", 64);
    ctx.auditTarget = username;
    auto roles = json::optStringArray(body, "roles");
    if (!roles) throw InvalidInput("field \"roles\" is required", "missing_field");
    auto u = auth_.createUser(username, json::requireString(body, "password", 4096), *roles);
    auto r = http::Response::json(201, userJson(u));
    r.headers.emplace_back("Location", "/api/v1/users/" + u.username);
    return r;
  }});

  routes_.push_back({"GET", "/api/v1/users/{name}", A::Roles, admin, "user.get", [this](RequestContext& ctx) {
    return http::Response::json(200, userJson(auth_.getUser(ctx.param("name"))));
  }});

  routes_.push_back({"PATCH", "/api/v1/users/{name}", A::Roles, admin, "user.update",
                     [this](RequestContext& ctx) {
    ctx.auditTarget = ctx.param("name");
    auto body = ctx.body();
    json::onlyKeys(body, {"roles", "disabled", "password"});
    AuthService::UserPatch patch;
    patch.roles = json::optStringArray(body, "roles");
    patch.disabled = json::optBool(body, "disabled");
    patch.password = json::optString(body, "password", 4096);
    if (!patch.roles && !patch.disabled && !patch.password) {
      throw InvalidInput("nothing to change: give roles, disabled or password");
    }
    auto u = auth_.updateUser(ctx.session->user.username, ctx.param("name"), patch);
    return http::Response::json(200, userJson(u));
  }});

  routes_.push_back({"DELETE", "/api/v1/users/{name}", A::Roles, admin, "user.delete",
                     [this](RequestContext& ctx) {
    ctx.auditTarget = ctx.param("name");
    auth_.deleteUser(ctx.session->user.username, ctx.param("name"));
    return http::Response::noContent();
  }});

  routes_.push_back({"GET", "/api/v1/audit", A::Roles, admin, "audit.list", [this](RequestContext& ctx) {
    AuditLog::Filter f;
    auto intParam = [&](const std::string& name, std::int64_t lo, std::int64_t hi) -> std::optional<std::int64_t> {
      auto v = ctx.request.queryParam(name);
      if (!v) return std::nullopt;
      try {
        std::size_t used = 0;
        const long long n = std::stoll(*v, &used);
        if (used == v->size() && n >= lo && n <= hi) return n;
      } catch (const std::exception&) {
      }
      throw InvalidInput("query parameter \"" + name + "\" must be a whole number from " +
                         std::to_string(lo) + " to " + std::to_string(hi));
    };
    if (auto l = intParam("limit", 1, 1000)) f.limit = static_cast<int>(*l);
    f.beforeId = intParam("before_id", 1, INT64_MAX);
    f.username = ctx.request.queryParam("username");
    f.action = ctx.request.queryParam("action");
    return http::Response::json(200, audit_.list(f));
  }});

  routes_.push_back({"GET", "/api/v1/system/log-level", A::Roles, admin, "system.log_level.get",
                     [this](RequestContext&) {
    json::ObjectPtr o = new json::Object;
    o->set("level", std::string(logLevelName(log_.level())));
    return http::Response::json(200, o);
  }});

  routes_.push_back({"PUT", "/api/v1/system/log-level", A::Roles, admin, "system.log_level.set",
                     [this](RequestContext& ctx) {
    auto body = ctx.body();
    json::onlyKeys(body, {"level"});
    const std::string text = json::requireString(body, "level", 16);
    auto level = parseLogLevel(text);
    if (!level) throw InvalidInput("\"" + text + "\" is not a log level: use debug, info, warn or error");
    ctx.auditTarget = std::string(logLevelName(*level));
    auto c = pool_.acquire();
    c->exec(
        "INSERT INTO appliance_settings (key, value) VALUES ('log.level', $1) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = now()",
        {std::string(logLevelName(*level))});
    log_.setLevel(*level);
    log_.info(kComponent, "LOG_LEVEL_SET", "log level changed by " + ctx.session->user.username,
              std::string(logLevelName(*level)));
    json::ObjectPtr o = new json::Object;
    o->set("level", std::string(logLevelName(*level)));
    return http::Response::json(200, o);
  }});
}

}  // namespace vcrm
