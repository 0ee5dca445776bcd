#include "modules/licensing/licensing_module.h"

#include "vcrm/licensing/armour.h"

namespace vcrm {

namespace {

// The licence file from {"file": "<armoured text>"}; the library judges its size and content.
std::string licenceFile(RequestContext& ctx) {
  auto body = ctx.body();
  json::onlyKeys(body, {"file"});
  auto file = json::optString(body, "file", 4 * licensing::kMaxLicenceFileBytes);
  if (!file)
    throw InvalidInput(
        "send the licence file's text as {\"file\": \"-----BEGIN VCRM LICENCE-----...\"}",
        "missing_field");
  return *file;
}

}  // namespace

LicensingModule::LicensingModule(const ModuleContext& ctx)
    : NamedModule("licensing"),
      service_(ctx.config, ctx.pool, ctx.log),
      clock_({"licence-clock",
              Worker::RunsOn::EveryNode,
              std::chrono::seconds(60),
              [this] { service_.noteTime(); },
              {}},
             ctx.log) {}

std::vector<Route> LicensingModule::routes() {
  std::vector<Route> out;
  out.push_back(roleRoute(
      "GET", "/api/v1/license", roles::kWatchers, "licence.get",
      [this](RequestContext&) { return http::Response::json(200, service_.describe()); }));
  out.push_back(roleRoute("POST", "/api/v1/license/preview", roles::kAdmin, "licence.preview",
                          [this](RequestContext& ctx) {
                            return http::Response::json(200, service_.preview(licenceFile(ctx)));
                          }));
  out.push_back(roleRoute(
      "POST", "/api/v1/license", roles::kAdmin, "licence.apply", [this](RequestContext& ctx) {
        const std::string file = licenceFile(ctx);
        auto described =
            service_.apply(file, ctx.session->user.username, [&ctx](const std::string& licenceId) {
              ctx.auditTarget = licenceId;
              return ctx.audited(200);
            });
        return http::Response::json(200, described);
      }));
  return out;
}

}  // namespace vcrm
