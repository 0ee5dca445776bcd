#include "vcrm/daemon/api.h"

#include <Poco/JSON/Array.h>

#include <algorithm>
#include <set>

#include "vcrm/common/crypto.h"
#include "vcrm/common/error.h"
#include "vcrm/common/utf8.h"
#include "vcrm/daemon/http_errors.h"

namespace vcrm {

namespace {


bool changesState(const std::string& method) {
  return method != "GET" && method != "HEAD" && method != "OPTIONS";
}

// Percent-decoding can yield any bytes; only UTF-8 text goes on to the routes (and to
// PostgreSQL, which would refuse it without saying which parameter it was).
void requireText(const http::Request& request) {
  for (const auto& [name, value] : request.pathParams) {
    if (!utf8::isValid(value)) {
      throw InvalidInput("path parameter \"" + name + "\" is not UTF-8 text", "invalid_field");
    }
  }
  for (const auto& [name, value] : request.query) {
    if (!utf8::isValid(name) || !utf8::isValid(value)) {
      throw InvalidInput("query parameter \"" + utf8::sanitized(name) + "\" is not UTF-8 text",
                         "invalid_field");
    }
  }
}

}  // namespace

const char* accessName(Route::Access access) {
  switch (access) {
    case Route::Access::Public: return "public";
    case Route::Access::AnyUser: return "any_user";
    case Route::Access::Roles: return "roles";
    case Route::Access::Undeclared: break;
  }
  return "undeclared";
}

Api::Api(Options options, AuthService& auth, AuditLog& audit, Logger& log, std::vector<Route> routes)
    : options_(std::move(options)),
      auth_(auth),
      audit_(audit),
      log_(log),
      static_(options_.webuiDir),
      routes_(std::move(routes)) {
  // The API describes itself: what a script may call, and what the role tests walk.
  routes_.push_back(roleRoute("GET", "/api/v1/routes", roles::kAdmin, "api.routes", [this](RequestContext&) {
    json::ArrayPtr arr = new json::Array;
    for (const auto& r : routes_) {
      json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
      o->set("method", r.method);
      o->set("pattern", r.pattern);
      o->set("access", std::string(accessName(r.access)));
      json::ArrayPtr rs = new json::Array;
      for (const auto& role : r.roles) rs->add(role);
      o->set("roles", rs);
      o->set("action", r.action);
      arr->add(o);
    }
    json::ObjectPtr out = new json::Object;
    out->set("routes", arr);
    return http::Response::json(200, out);
  }));
  std::set<std::string> seen;
  for (const auto& r : routes_) {
    const std::string name = r.method + " " + r.pattern;
    if (r.access == Route::Access::Undeclared) {
      throw StartupError("route " + name + " does not declare who may call it (public, any user or roles)");
    }
    if (r.access == Route::Access::Roles) {
      if (r.roles.empty()) throw StartupError("route " + name + " is for roles but names none");
      for (const auto& role : r.roles) {
        if (!isRoleName(role)) throw StartupError("route " + name + " names an unknown role \"" + role + "\"");
      }
    }
    if (r.action.empty() || !r.handler) throw StartupError("route " + name + " has no audit action or handler");
    if (!seen.insert(name).second) throw StartupError("route " + name + " is declared twice");
  }
}

bool Api::streamsBody(const http::Request& request) const {
  for (const auto& route : routes_) {
    std::map<std::string, std::string> params;
    if (route.streamsBody && route.method == request.method &&
        matchPattern(route.pattern, request.path, params)) {
      return true;
    }
  }
  return false;
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

http::Response Api::handle(http::Request& request) {
  RequestContext ctx{request, std::nullopt, {}, false, std::nullopt, std::nullopt, &audit_, {}, {}};
  const Route* matched = nullptr;
  http::Response response;
  try {
    response = dispatch(request, ctx, matched);
  } catch (const std::exception& e) {
    response = http::errorResponse(e, log_);
  }
  // Nothing the API answers may be kept by a browser or a proxy: sessions, PINs in calendar
  // files, CDR exports.
  if (request.path.rfind("/api/", 0) == 0 || request.path == "/healthz") {
    const bool has = std::any_of(response.headers.begin(), response.headers.end(),
                                 [](const auto& h) { return h.first == "Cache-Control"; });
    if (!has) response.headers.emplace_back("Cache-Control", "no-store");
  }
  if (matched && matched->upload) {
    // tus: every answer names the protocol version, and a refused version lists ours.
    response.headers.emplace_back("Tus-Resumable", "1.0.0");
    if (response.status == 412) response.headers.emplace_back("Tus-Version", "1.0.0");
  }
  // A change in the database was recorded with it (RequestContext::audited). Otherwise the
  // row is written now: for a change elsewhere, and for every failure (also after a change
  // that committed, say half a series). Routes too busy to audit (bridge event posts) still
  // leave a row when they refuse.
  const bool recordedWithChange = ctx.auditedCommit.committed();
  if (response.status >= 400 || (!recordedWithChange && (!matched || matched->audited))) {
    audit(request, matched ? matched->action : "unknown", response.status,
          ctx.session ? std::optional<std::string>(ctx.session->user.username) : ctx.auditUser,
          ctx.auditTarget, ctx.session.has_value());
  }
  return response;
}

void Api::auditRefused(const http::Request& request, int status) {
  audit(request, "refused", status, std::nullopt, std::nullopt, false);
}

void Api::audit(const http::Request& request, const std::string& action, int status,
                const std::optional<std::string>& username,
                const std::optional<std::string>& target, bool signedIn) {
  if (!changesState(request.method) || request.path.rfind("/api/", 0) != 0) return;
  const AuditEntry entry = auditEntry(request, action, status, username, target);
  // Anyone can send refusals without a session, as fast as the network goes: those are
  // collapsed. What a signed-in user does, refused or not, is always a row of its own.
  if (!signedIn && status >= 400) {
    audit_.recordRefusal(entry);
  } else {
    audit_.record(entry);
  }
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
    ctx.action = route.action;
    request.pathParams = std::move(params);
    break;
  }
  if (!matched) {
    if (!allowed.empty()) {
      std::string allow;
      for (const auto& m : allowed) allow += (allow.empty() ? "" : ", ") + m;
      throw MethodNotAllowed(request.method + " is not allowed on " + request.path + " (allowed: " + allow + ")",
                             allow);
    }
    throw NotFound("no API endpoint " + request.path);
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
    AuthService::requirePasswordChanged(*ctx.session, matched->allowedWhilePasswordChangeRequired);
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
  requireText(request);
  if (changesState(request.method) && !request.body.empty()) {
    const std::string type = request.header("content-type");
    if (type.rfind("application/json", 0) != 0) {
      throw UnsupportedMediaType("send the request body as JSON with Content-Type: application/json");
    }
  }
  return matched->handler(ctx);
}

}  // namespace vcrm
