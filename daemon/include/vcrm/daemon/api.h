// The HTTP API of vcrmd: one route table (method, path pattern, roles, audit action,
// handler), authentication, CSRF and role checks, the audit hook, and the single place
// where an exception becomes an HTTP status.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "vcrm/common/db.h"
#include "vcrm/common/log.h"
#include "vcrm/daemon/audit.h"
#include "vcrm/daemon/auth.h"
#include "vcrm/daemon/http.h"
#include "vcrm/daemon/static_files.h"

namespace vcrm {

struct RequestContext {
  const http::Request& request;
  std::optional<Session> session;  // set for authenticated requests
  std::string token;               // the bearer/cookie token of the session
  bool viaCookie = false;
  std::optional<std::string> auditUser;  // who the audit row names (login: the name tried)
  std::optional<std::string> auditTarget;

  const std::string& param(const std::string& name) const;
  json::ObjectPtr body() const;  // parses the JSON body (InvalidInput if malformed)
};

using Handler = std::function<http::Response(RequestContext&)>;

struct Route {
  std::string method;
  std::string pattern;             // "/api/v1/users/{name}"
  enum class Access { Public, AnyUser, Roles } access = Access::Roles;
  std::vector<std::string> roles;  // with Access::Roles: any of these
  std::string action;              // audit action name, e.g. "user.create"
  Handler handler;
  bool audited = true;  // false only for machine traffic such as bridge event posts
};

class BridgeService;
class ConferenceService;
class CdrService;
class EventBus;

// The services the API exposes; the daemon owns them.
struct ApiServices {
  AuthService& auth;
  AuditLog& audit;
  db::Pool& pool;
  Logger& log;
  EventBus& bus;
  BridgeService& bridges;
  ConferenceService& conferences;
  CdrService& cdrs;
};

class Api {
 public:
  struct Info {
    std::string version;
    int schema = 0;
    std::size_t maxBodyBytes = 1 << 20;
    int sessionMaxHours = 12;
  };
  Api(Info info, ApiServices services, std::filesystem::path webuiDir);

  http::Response handle(http::Request& request);
  // Records a state-changing API request the listener refused before it reached handle() (a
  // declared oversize body, a path the events listener does not take) in the audit log.
  void auditRefused(const http::Request& request, int status);
  const std::vector<Route>& routes() const { return routes_; }
  std::size_t maxBodyBytes() const { return info_.maxBodyBytes; }

  // Where bridges post events (plain HTTP listener), known once the listeners are bound.
  void setEventsEndpoint(std::string listen, int port) {
    eventsListen_ = std::move(listen);
    eventsPort_ = port;
  }

  // Persists and applies the run-time log level (also used at start-up).
  void applyStoredLogLevel();

 private:
  // One audit row for a state-changing API request; nothing for reads or non-API paths.
  void audit(const http::Request& request, const std::string& action, int status,
             const std::optional<std::string>& username, const std::optional<std::string>& target);
  void buildRoutes();
  void buildConferenceRoutes();
  http::Response dispatch(http::Request& request, RequestContext& ctx, const Route*& matched);
  http::Response errorResponse(const std::exception& e);
  static bool matchPattern(const std::string& pattern, const std::string& path,
                           std::map<std::string, std::string>& params);

  Info info_;
  ApiServices s_;
  AuthService& auth_;
  AuditLog& audit_;
  db::Pool& pool_;
  Logger& log_;
  StaticFiles static_;
  std::vector<Route> routes_;
  std::string eventsListen_;
  int eventsPort_ = -1;
};

}  // namespace vcrm
