#include "modules/restores/restores_module.h"

#include "modules/conferences/conferences_module.h"
#include "modules/licensing/licensing_module.h"
#include "modules/uploads/uploads_module.h"
#include "vcrm/upgrade/backup_archive.h"

namespace vcrm {

namespace {

// Archives as large as the archive reader accepts; the uploads quota bounds them further.
constexpr std::uint64_t kMaxArchiveBytes = upgrade::ArchiveLimits{}.maxTotalBytes + (1u << 30);

}  // namespace

RestoresModule::RestoresModule(const ModuleContext& ctx)
    : NamedModule("restores"),
      uploads_(ctx.require<UploadsModule>()),
      service_(RestoreService::Deps{ctx.config, ctx.log, ctx.pool, ctx.bus, ctx.dbDsn, ctx.version,
                                    ctx.schema, ctx.require<LicensingModule>().service().serial(),
                                    ctx.require<ConferencesModule>().service(),
                                    ctx.requestRestart}),
      sweeper_({"restore-upload-sweeper",
                Worker::RunsOn::EveryNode,
                std::chrono::minutes(1),
                [this] { service_.sweepUploads(); },
                {}},
               ctx.log) {
  service_.recordCompletion(ctx.audit);
}

std::vector<Route> RestoresModule::routes() {
  std::vector<Route> out = uploads_.serve(
      uploadRoute("/api/v1/restores/uploads", roles::kSupport, "restore.upload",
                  UploadSpec{"backup-archive", kMaxArchiveBytes,
                             [this](RequestContext&, const FinishedUpload& upload) {
                               return http::Response::json(201, service_.keepUpload(upload));
                             }}));
  out.push_back(roleRoute("POST", "/api/v1/restores", roles::kSupport, "restore.verify",
                          [this](RequestContext& ctx) {
                            auto r = service_.prepare(ctx.body(), ctx.session->user.username);
                            ctx.auditTarget = r->getValue<std::string>("id");
                            json::ObjectPtr o = new json::Object;
                            o->set("restore", r);
                            return http::Response::json(201, o);
                          }));
  out.push_back(roleRoute("POST", "/api/v1/restores/{id}/confirm", roles::kSupport,
                          "restore.confirm", [this](RequestContext& ctx) {
                            ctx.auditTarget = ctx.param("id");
                            json::ObjectPtr o = new json::Object;
                            o->set("restore",
                                   service_.confirm(ctx.param("id"), ctx.session->user.username));
                            return http::Response::json(202, o);
                          }));
  out.push_back(
      roleRoute("GET", "/api/v1/restores/current", roles::kSupport, "restore.current",
                [this](RequestContext&) { return http::Response::json(200, service_.current()); }));
  out.push_back(roleRoute(
      "GET", "/api/v1/restores/previous", roles::kSupport, "restore.previous",
      [this](RequestContext&) { return http::Response::json(200, service_.previous()); }));
  out.push_back(roleRoute("POST", "/api/v1/restores/previous/revert", roles::kSupport,
                          "restore.revert", [this](RequestContext& ctx) {
                            json::ObjectPtr o = new json::Object;
                            auto r = service_.revert(ctx.session->user.username);
                            ctx.auditTarget = r->getValue<std::string>("id");
                            o->set("restore", r);
                            return http::Response::json(202, o);
                          }));
  out.push_back(roleRoute("DELETE", "/api/v1/restores/previous", roles::kSupport, "restore.discard",
                          [this](RequestContext&) {
                            service_.discard();
                            return http::Response::noContent();
                          }));
  return out;
}

}  // namespace vcrm
