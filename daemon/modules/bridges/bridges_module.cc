#include "modules/bridges/bridges_module.h"

#include <regex>

#include "modules/licensing/licensing_module.h"

namespace vcrm {

BridgesModule::BridgesModule(const ModuleContext& ctx)
    : NamedModule("bridges"),
      service_(ctx.pool, ctx.log, ctx.bus),
      listeners_(ctx.listeners),
      prober_({"bridge-prober",
               Worker::RunsOn::ActiveNode,
               std::chrono::seconds(ctx.config.probeSeconds),
               [this] {
                 for (auto id : service_.probeAll()) {
                   for (const auto& listener : downListeners_) listener(id);
                 }
               },
               {}},
              ctx.log) {
  auto& licence = ctx.require<LicensingModule>().service();
  service_.limitBridges([&licence] { return licence.limits().bridges; });
}

std::vector<Route> BridgesModule::routes() {
  std::vector<Route> out;
  out.push_back(roleRoute("GET", "/api/v1/bridges", roles::kWatchers, "bridge.list", [this](RequestContext&) {
    json::ArrayPtr arr = new json::Array;
    for (const auto& b : bridges_.list()) arr->add(bridges_.toJson(b));
    json::ObjectPtr o = new json::Object;
    o->set("bridges", arr);
    return http::Response::json(200, o);
  }));
  out.push_back(roleRoute(
      "POST", "/api/v1/bridges", roles::kAdmin, "bridge.create", [this](RequestContext& ctx) {
        auto body = ctx.body();
        ctx.auditTarget = json::optString(body, "name", 64);
        auto b = bridges_.create(body, ctx.audited(201));
        auto r = http::Response::json(201, bridges_.toJson(b));
        r.headers.emplace_back("Location", "/api/v1/bridges/" + std::to_string(b.id));
        return r;
      }));
  out.push_back(roleRoute("GET", "/api/v1/bridges/{id}", roles::kWatchers, "bridge.get", [this](RequestContext& ctx) {
    return http::Response::json(200, bridges_.toJson(bridges_.get(idParam(ctx, "id", "bridge"))));
  }));
  out.push_back(roleRoute("PATCH", "/api/v1/bridges/{id}", roles::kAdmin, "bridge.update", [this](RequestContext& ctx) {
    ctx.auditTarget = ctx.param("id");
    const auto b = bridges_.update(idParam(ctx, "id", "bridge"), ctx.body(), ctx.audited(200));
    if (b.health == "unknown") prober_.wake();  // a new address: probed now, not in a period
    return http::Response::json(200, bridges_.toJson(b));
  }));
  out.push_back(roleRoute("DELETE", "/api/v1/bridges/{id}", roles::kAdmin, "bridge.delete", [this](RequestContext& ctx) {
    ctx.auditTarget = ctx.param("id");
    bridges_.remove(idParam(ctx, "id", "bridge"), ctx.audited(204));
    return http::Response::noContent();
  }));
  out.push_back(roleRoute("GET", "/api/v1/bridges/{id}/janus-config", roles::kAdmin, "bridge.janus_config",
                     [this](RequestContext& ctx) {
    const auto id = idParam(ctx, "id", "bridge");
    // The host this request reached us by, without its port.
    std::string host = ctx.request.header("host");
    if (!host.empty() && host.front() == '[') {
      host = host.substr(0, host.find(']') + 1);
    } else if (auto colon = host.rfind(':'); colon != std::string::npos) {
      host = host.substr(0, colon);
    }
    if (host.empty() || !std::regex_match(host, std::regex(R"(^[A-Za-z0-9.\-\[\]:]{1,255}$)"))) host = "vcrm.example";
    const std::string path = "/api/v1/bridges/" + std::to_string(id) + "/events";
    std::string url;
    if (listeners_.eventsPort >= 0) {
      const bool anyAddress = listeners_.eventsListen == "0.0.0.0" || listeners_.eventsListen == "::";
      std::string eventsHost = anyAddress ? host : listeners_.eventsListen;
      if (eventsHost.find(':') != std::string::npos && eventsHost.front() != '[') eventsHost = "[" + eventsHost + "]";
      url = "http://" + eventsHost + ":" + std::to_string(listeners_.eventsPort) + path;
    } else {
      // Janus verifies TLS peers: the bridge host must trust vcrmd's certificate for this.
      url = "https://" + ctx.request.header("host") + path;
    }
    http::Response r;
    r.contentType = "text/plain; charset=utf-8";
    r.body = bridges_.janusConfig(id, url);
    return r;
  }));
  return out;
}

}  // namespace vcrm
