#include "vcrm/daemon/route.h"

#include <regex>

#include "vcrm/common/error.h"

namespace vcrm {

const std::string& RequestContext::param(const std::string& name) const {
  return request.pathParams.at(name);
}

json::ObjectPtr RequestContext::body() const { return json::parseObject(request.body); }

AuditedCommit RequestContext::audited(int status) {
  if (!auditLog) throw Error("internal", "audited() outside the Api: no audit log to write to");
  auditedCommit = AuditedCommit(
      *auditLog,
      auditEntry(request, action, status,
                 session ? std::optional<std::string>(session->user.username) : auditUser,
                 auditTarget));
  return auditedCommit;
}

AuditEntry auditEntry(const http::Request& request, std::string action, int status,
                      std::optional<std::string> username, std::optional<std::string> target) {
  AuditEntry e;
  e.username = std::move(username);
  e.remoteAddr = request.remoteAddr;
  e.method = request.method;
  e.path = request.path;
  e.action = std::move(action);
  e.target = std::move(target);
  e.status = status;
  return e;
}

Route publicRoute(std::string method, std::string pattern, std::string action, Handler handler) {
  Route r;
  r.method = std::move(method);
  r.pattern = std::move(pattern);
  r.access = Route::Access::Public;
  r.action = std::move(action);
  r.handler = std::move(handler);
  return r;
}

Route userRoute(std::string method, std::string pattern, std::string action, Handler handler) {
  Route r = publicRoute(std::move(method), std::move(pattern), std::move(action), std::move(handler));
  r.access = Route::Access::AnyUser;
  return r;
}

Route roleRoute(std::string method, std::string pattern, std::vector<std::string> roles,
                std::string action, Handler handler) {
  Route r = publicRoute(std::move(method), std::move(pattern), std::move(action), std::move(handler));
  r.access = Route::Access::Roles;
  r.roles = std::move(roles);
  return r;
}

Route uploadRoute(std::string collection, std::vector<std::string> roles, std::string action,
                  UploadSpec spec) {
  Route r;
  r.method = "POST";
  r.pattern = std::move(collection);
  r.access = Route::Access::Roles;
  r.roles = std::move(roles);
  r.action = std::move(action);
  r.upload = std::move(spec);
  return r;
}

std::int64_t idParam(const RequestContext& ctx, const std::string& name, const char* what) {
  const std::string& v = ctx.param(name);
  static const std::regex digits("^[0-9]{1,18}$");
  if (!std::regex_match(v, digits)) throw NotFound(std::string("no ") + what + " \"" + v.substr(0, 40) + "\"");
  return std::stoll(v);
}

http::Response csvResponse(const std::string& filename, std::function<void(std::ostream&)> writer) {
  http::Response r;
  r.contentType = "text/csv; charset=utf-8";
  r.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + filename + "\"");
  r.stream = std::move(writer);
  return r;
}

}  // namespace vcrm
