#include "modules/audit/audit_module.h"

#include "vcrm/common/error.h"

namespace vcrm {

namespace {
AuditLog::Retention retentionFrom(const Config& config) {
  AuditLog::Retention r;
  r.days = config.auditRetentionDays;
  r.maxRows = config.auditMaxRows;
  return r;
}
}  // namespace

AuditModule::AuditModule(const ModuleContext& ctx)
    : NamedModule("audit"),
      audit_(ctx.audit),
      retention_(retentionFrom(ctx.config)),
      pruner_({"audit-pruner",
               Worker::RunsOn::ActiveNode,
               std::chrono::seconds(ctx.config.auditPruneSeconds),
               [this] { audit_.prune(retention_); },
               {}},
              ctx.log) {}

std::vector<Route> AuditModule::routes() {
  std::vector<Route> out;
  out.push_back(roleRoute("GET", "/api/v1/audit", roles::kAdmin, "audit.list", [this](RequestContext& ctx) {
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
  }));

  return out;
}

}  // namespace vcrm
