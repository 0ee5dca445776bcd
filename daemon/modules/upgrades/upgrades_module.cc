#include "modules/upgrades/upgrades_module.h"

#include "modules/backups/backups_module.h"
#include "modules/licensing/licensing_module.h"
#include "modules/uploads/uploads_module.h"
#include "vcrm/upgrade/bundle.h"

namespace vcrm {

namespace {

// Bundles as large as the bundle reader accepts (header, manifest and signature beside the
// payload); the uploads quota bounds them further.
constexpr std::uint64_t kMaxBundleBytes =
    upgrade::BundleLimits{}.maxPayloadBytes + upgrade::BundleLimits{}.maxManifestBytes + (1u << 20);

}  // namespace

UpgradesModule::UpgradesModule(const ModuleContext& ctx)
    : NamedModule("upgrades"),
      uploads_(ctx.require<UploadsModule>()),
      service_(UpgradeService::Deps{
          ctx.config, ctx.log, ctx.version, ctx.schema, ctx.require<LicensingModule>().service(),
          ctx.bus, &ctx.require<BackupsModule>().service(), ctx.dbDsn, ctx.stopServing,
          ctx.requestRestart, ctx.requestRestartFromCurrent}),
      sweeper_({"upgrade-upload-sweeper",
                Worker::RunsOn::EveryNode,
                std::chrono::minutes(1),
                [this] { service_.sweepUploads(); },
                {}},
               ctx.log) {}

std::vector<Route> UpgradesModule::routes() {
  std::vector<Route> out = uploads_.serve(
      uploadRoute("/api/v1/upgrade/uploads", roles::kOperators, "upgrade.upload",
                  UploadSpec{"upgrade-bundle", kMaxBundleBytes,
                             [this](RequestContext&, const FinishedUpload& upload) {
                               return http::Response::json(201, service_.keepUpload(upload));
                             }}));
  out.push_back(roleRoute("POST", "/api/v1/upgrade", roles::kOperators, "upgrade.verify",
                          [this](RequestContext& ctx) {
                            const auto body = ctx.body();
                            if (auto id = body->get("upload_id"); id.isString()) {
                              ctx.auditTarget = id.toString().substr(0, 128);
                            }
                            json::ObjectPtr o = new json::Object;
                            o->set("bundle", service_.verify(body, ctx.session->user));
                            return http::Response::json(201, o);
                          }));
  out.push_back(
      roleRoute("GET", "/api/v1/upgrade", roles::kOperators, "upgrade.status",
                [this](RequestContext&) { return http::Response::json(200, service_.status()); }));
  out.push_back(roleRoute("POST", "/api/v1/upgrade/confirm", roles::kOperators, "upgrade.confirm",
                          [this](RequestContext& ctx) {
                            json::ObjectPtr o = new json::Object;
                            o->set("upgrade", service_.confirm(ctx.body(), ctx.session->user));
                            return http::Response::json(202, o);
                          }));
  out.push_back(roleRoute("POST", "/api/v1/upgrade/go-back", roles::kOperators, "upgrade.go_back",
                          [this](RequestContext& ctx) {
                            json::ObjectPtr o = new json::Object;
                            o->set("upgrade", service_.goBack(ctx.session->user));
                            return http::Response::json(202, o);
                          }));
  out.push_back(roleRoute("DELETE", "/api/v1/upgrade/pending", roles::kOperators, "upgrade.discard",
                          [this](RequestContext&) {
                            service_.discard();
                            return http::Response::noContent();
                          }));
  return out;
}

}  // namespace vcrm
