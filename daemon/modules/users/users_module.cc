#include "modules/users/users_module.h"

#include <Poco/JSON/Array.h>

#include "vcrm/common/error.h"

namespace vcrm {

namespace {

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

UsersModule::UsersModule(const ModuleContext& ctx)
    : NamedModule("users"), auth_(ctx.auth), sessionMaxHours_(ctx.config.sessionMaxHours) {}

std::vector<Route> UsersModule::routes() {
  std::vector<Route> out;
  out.push_back(publicRoute("POST", "/api/v1/auth/login", "auth.login", [this](RequestContext& ctx) {
    auto body = ctx.body();
    json::onlyKeys(body, {"username", "password"});
    const std::string username = json::requireString(body, "username", 64);
    const std::string password = json::requireString(body, "password", 1024);
    ctx.auditUser = username;
    auto result = auth_.login(username, password, ctx.request.remoteAddr, ctx.audited(200));
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
                                             std::to_string(sessionMaxHours_ * 3600) +
                                             "; HttpOnly; Secure; SameSite=Strict");
    return r;
  }));

  out.push_back(userRoute("GET", "/api/v1/auth/session", "auth.session", [](RequestContext& ctx) {
    return http::Response::json(200, sessionJson(*ctx.session));
  }));
  out.back().allowedWhilePasswordChangeRequired = true;

  out.push_back(
      userRoute("POST", "/api/v1/auth/logout", "auth.logout", [this](RequestContext& ctx) {
        auth_.logout(ctx.token, ctx.audited(204));
        auto r = http::Response::noContent();
        r.headers.emplace_back("Set-Cookie",
                               std::string(kSessionCookie) +
                                   "=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict");
        return r;
      }));
  out.back().allowedWhilePasswordChangeRequired = true;

  out.push_back(userRoute("POST", "/api/v1/auth/password", "auth.change_password",
                     [this](RequestContext& ctx) {
    auto body = ctx.body();
    json::onlyKeys(body, {"current_password", "new_password"});
    auth_.changeOwnPassword(ctx.session->user.username,
                            json::requireString(body, "current_password", 1024),
                            json::requireString(body, "new_password", 4096), ctx.request.remoteAddr,
                            ctx.token, ctx.audited(204));
    return http::Response::noContent();
  }));
  out.back().allowedWhilePasswordChangeRequired = true;

  out.push_back(roleRoute("GET", "/api/v1/users", roles::kAdmin, "user.list", [this](RequestContext&) {
    json::ArrayPtr arr = new json::Array;
    for (const auto& u : auth_.listUsers()) arr->add(userJson(u));
    json::ObjectPtr o = new json::Object;
    o->set("users", arr);
    return http::Response::json(200, o);
  }));

  out.push_back(roleRoute("POST", "/api/v1/users", roles::kAdmin, "user.create", [this](RequestContext& ctx) {
    auto body = ctx.body();
    json::onlyKeys(body, {"username", "password", "roles"});
    const std::string username = json::requireString(body, "username", 64);
    ctx.auditTarget = username;
    auto roles = json::optStringArray(body, "roles");
    if (!roles) throw InvalidInput("field \"roles\" is required", "missing_field");
    auto u = auth_.createUser(username, json::requireString(body, "password", 4096), *roles,
                              ctx.audited(201));
    auto r = http::Response::json(201, userJson(u));
    r.headers.emplace_back("Location", "/api/v1/users/" + u.username);
    return r;
  }));

  out.push_back(roleRoute("GET", "/api/v1/users/{name}", roles::kAdmin, "user.get", [this](RequestContext& ctx) {
    return http::Response::json(200, userJson(auth_.getUser(ctx.param("name"))));
  }));

  out.push_back(roleRoute("PATCH", "/api/v1/users/{name}", roles::kAdmin, "user.update",
                     [this](RequestContext& ctx) {
    ctx.auditTarget = ctx.param("name");
    auto body = ctx.body();
    static const std::vector<std::string> fields{"roles", "disabled", "password"};
    json::onlyKeys(body, fields);
    json::requireAny(body, fields);
    AuthService::UserPatch patch;
    patch.roles = json::optStringArray(body, "roles");
    patch.disabled = json::optBool(body, "disabled");
    patch.password = json::optString(body, "password", 4096);
    auto u =
        auth_.updateUser(ctx.session->user.username, ctx.param("name"), patch, ctx.audited(200));
    return http::Response::json(200, userJson(u));
  }));

  out.push_back(roleRoute("DELETE", "/api/v1/users/{name}", roles::kAdmin, "user.delete",
                     [this](RequestContext& ctx) {
    ctx.auditTarget = ctx.param("name");
    auth_.deleteUser(ctx.session->user.username, ctx.param("name"), ctx.audited(204));
    return http::Response::noContent();
  }));

  return out;
}

}  // namespace vcrm
