// One API route: method, path pattern, who may call it, the audit action, and its handler.
// Modules declare their routes with these; the Api matches, authenticates, checks roles and
// CSRF, and audits, so a handler only does its own work.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "vcrm/common/json.h"
#include "vcrm/daemon/audit.h"
#include "vcrm/daemon/auth.h"
#include "vcrm/daemon/http.h"
#include "vcrm/daemon/upload_spec.h"

namespace vcrm {

// The session cookie browsers carry (HttpOnly, Secure, SameSite=Strict).
inline constexpr char kSessionCookie[] = "vcrm_session";

struct RequestContext {
  const http::Request& request;
  std::optional<Session> session;  // set for authenticated requests
  std::string token;               // the bearer/cookie token of the session
  bool viaCookie = false;
  std::optional<std::string> auditUser;  // who the audit row names (login: the name tried)
  std::optional<std::string> auditTarget;
  AuditLog* auditLog = nullptr;   // set by the Api
  std::string action;             // the route's audit action, set by the Api
  AuditedCommit auditedCommit{};  // what audited() handed out

  const std::string& param(const std::string& name) const;
  json::ObjectPtr body() const;  // parses the JSON body (InvalidInput if malformed)
  // The one way a route whose change is in the database is audited: the service it calls
  // commits the change through this, with the request's audit row (user, address, action,
  // auditTarget as set now, and `status`, what the route answers when it succeeds) in the
  // same transaction. The Api then adds a row of its own only if the request fails after all.
  // Routes whose change is elsewhere (files) need nothing: the Api records them afterwards.
  AuditedCommit audited(int status);
};

using Handler = std::function<http::Response(RequestContext&)>;

struct Route {
  // Who may call the route. There is no default: a route that does not say is refused when
  // the Api is built (StartupError), so vcrmd does not start with it.
  enum class Access {
    Undeclared,
    Public,   // no session: sign-in, health, version, bridge event posts (own credentials)
    AnyUser,  // any signed-in user
    Roles,    // a signed-in user with one of `roles`
  };

  std::string method;
  std::string pattern;  // "/api/v1/users/{name}"
  Access access = Access::Undeclared;
  std::vector<std::string> roles;  // with Access::Roles: any of these
  std::string action;              // audit action name, e.g. "user.create"
  Handler handler;
  bool audited = true;  // false only for machine traffic such as bridge event posts
  // Set on a route built by uploadRoute() and on the tus routes UploadsModule::serve() makes of
  // it (which keep its access and carry the spec along).
  std::optional<UploadSpec> upload{};
  bool streamsBody = false;  // the body reaches the handler as a stream (tus PATCH), not a string
  // Open to a session whose user must still change the password (change it, read the
  // session, sign out); every other route answers 403 password_change_required.
  bool allowedWhilePasswordChangeRequired = false;
};

// An upload collection at `collection` (e.g. "/api/v1/upgrade/bundles") for users with one of
// `roles`, to be passed to UploadsModule::serve(): POST creates an upload, and HEAD/PATCH/DELETE/GET on "<collection>/{upload_id}"
// report, append, remove and read the result (tus 1.0 core, creation, termination,
// expiration). `action` prefixes the audit actions: "<action>.create", ".append", ".terminate".
Route uploadRoute(std::string collection, std::vector<std::string> roles, std::string action,
                  UploadSpec spec);

// Route builders that make the access visible where the route is written.
Route publicRoute(std::string method, std::string pattern, std::string action, Handler handler);
Route userRoute(std::string method, std::string pattern, std::string action, Handler handler);
Route roleRoute(std::string method, std::string pattern, std::vector<std::string> roles,
                std::string action, Handler handler);

// The audit entry of a request: who (`username`), from where, what (`action`, `target`), and
// the answer's `status`.
AuditEntry auditEntry(const http::Request& request, std::string action, int status,
                      std::optional<std::string> username, std::optional<std::string> target);

// The numeric id in path parameter `name`; NotFound ("no <what> ...") for anything else.
std::int64_t idParam(const RequestContext& ctx, const std::string& name, const char* what);
// A CSV download streamed by `writer` (chunked, any size).
http::Response csvResponse(const std::string& filename, std::function<void(std::ostream&)> writer);

// The roles of vcrm, and which route needs which.
namespace roles {
inline const std::vector<std::string> kAdmin{"admin"};
inline const std::vector<std::string> kWatchers{"admin", "noc"};  // live status, read-only
inline const std::vector<std::string> kSupport{"admin", "support"};  // backups and restores
inline const std::vector<std::string> kOperators{"admin", "operator"};  // upgrade bundles
}  // namespace roles

}  // namespace vcrm
