// The HTTP API of vcrmd: matches a request against the route table the modules declared,
// authenticates, checks CSRF and roles, calls the handler, turns a failure into a status (via
// http_errors.h) and leaves the audit row. Everything else it hands to the static web UI.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "vcrm/common/db.h"
#include "vcrm/common/log.h"
#include "vcrm/daemon/audit.h"
#include "vcrm/daemon/auth.h"
#include "vcrm/daemon/http.h"
#include "vcrm/daemon/route.h"
#include "vcrm/daemon/static_files.h"

namespace vcrm {

class Api {
 public:
  struct Options {
    std::size_t maxBodyBytes = 1 << 20;
    std::filesystem::path webuiDir;
  };
  // Throws StartupError for a route table that is not sound: a route without declared access,
  // a role route naming no role or an unknown one, a route without an audit action, or two
  // routes with the same method and pattern.
  Api(Options options, AuthService& auth, AuditLog& audit, Logger& log, std::vector<Route> routes);

  http::Response handle(http::Request& request);
  // Records a state-changing API request the listener refused before it reached handle() (a
  // declared oversize body, a path the events listener does not take) in the audit log, as a
  // refusal without a session (collapsed).
  void auditRefused(const http::Request& request, int status);
  const std::vector<Route>& routes() const { return routes_; }
  std::size_t maxBodyBytes() const { return options_.maxBodyBytes; }
  // Whether the request goes to a route that takes its body as a stream (an upload's PATCH):
  // the server then hands over the body stream instead of reading up to maxBodyBytes.
  bool streamsBody(const http::Request& request) const;
  Logger& log() { return log_; }

  static bool matchPattern(const std::string& pattern, const std::string& path,
                           std::map<std::string, std::string>& params);

 private:
  // One audit row for a state-changing API request (collapsed for refusals of requests
  // without a session); nothing for reads or non-API paths.
  void audit(const http::Request& request, const std::string& action, int status,
             const std::optional<std::string>& username, const std::optional<std::string>& target,
             bool signedIn);
  http::Response dispatch(http::Request& request, RequestContext& ctx, const Route*& matched);

  Options options_;
  AuthService& auth_;
  AuditLog& audit_;
  Logger& log_;
  StaticFiles static_;
  std::vector<Route> routes_;
};

// "PATCH, GET": a route's access for the route listing and messages.
const char* accessName(Route::Access access);

}  // namespace vcrm
