#include "modules/system/system_module.h"

#include "vcrm/common/error.h"

namespace vcrm {

namespace {
constexpr const char* kComponent = "api";
}  // namespace

SystemModule::SystemModule(const ModuleContext& ctx)
    : NamedModule("system"), pool_(ctx.pool), log_(ctx.log), version_(ctx.version), schema_(ctx.schema) {
  // The level an admin set last wins over the configuration file.
  auto c = pool_.acquire();
  auto r = c->exec("SELECT value FROM appliance_settings WHERE key = 'log.level'");
  if (!r.empty()) {
    if (auto level = parseLogLevel(r.text(0, 0))) log_.setLevel(*level);
  }
}

std::vector<Route> SystemModule::routes() {
  std::vector<Route> out;
  out.push_back(publicRoute("GET", "/healthz", "health", [this](RequestContext&) {
    json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
#ifdef VCRM_TEST_UNHEALTHY
    // A test build of a broken new version (-DVCRM_TEST_UNHEALTHY=ON): never healthy.
    o->set("status", "unavailable");
    o->set("test_build", "unhealthy by construction (VCRM_TEST_UNHEALTHY)");
    return http::Response::json(503, o);
#endif
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
  }));

  out.push_back(publicRoute("GET", "/api/v1/version", "version", [this](RequestContext&) {
    json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("product", "vcrm");
    o->set("version", version_);
    o->set("schema", schema_);
    return http::Response::json(200, o);
  }));

  out.push_back(roleRoute("GET", "/api/v1/system/log-level", roles::kAdmin, "system.log_level.get",
                     [this](RequestContext&) {
    json::ObjectPtr o = new json::Object;
    o->set("level", std::string(logLevelName(log_.level())));
    return http::Response::json(200, o);
  }));

  out.push_back(roleRoute("PUT", "/api/v1/system/log-level", roles::kAdmin, "system.log_level.set",
                     [this](RequestContext& ctx) {
    auto body = ctx.body();
    json::onlyKeys(body, {"level"});
    const std::string text = json::requireString(body, "level", 16);
    auto level = parseLogLevel(text);
    if (!level) throw InvalidInput("\"" + text + "\" is not a log level: use debug, info, warn or error");
    ctx.auditTarget = std::string(logLevelName(*level));
    {
      auto c = pool_.acquire();
      db::Transaction tx(*c);
      tx.exec(
          "INSERT INTO appliance_settings (key, value) VALUES ('log.level', $1) "
          "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = now()",
          {std::string(logLevelName(*level))});
      ctx.audited(200).commit(tx);
    }
    log_.setLevel(*level);
    log_.info(kComponent, "LOG_LEVEL_SET", "log level changed by " + ctx.session->user.username,
              std::string(logLevelName(*level)));
    json::ObjectPtr o = new json::Object;
    o->set("level", std::string(logLevelName(*level)));
    return http::Response::json(200, o);
  }));
  return out;
}

}  // namespace vcrm
