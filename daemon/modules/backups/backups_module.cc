#include "modules/backups/backups_module.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "modules/licensing/licensing_module.h"
#include "vcrm/common/error.h"
#include "vcrm/common/files.h"

namespace fs = std::filesystem;

namespace vcrm {

namespace {

BackupService::Options serviceOptions(const ModuleContext& ctx) {
  const Config& c = ctx.config;
  BackupService::Options o;
  o.dsn = ctx.dbDsn;
  o.tools.binDir = c.pgBinDir;
  o.productVersion = ctx.version;
  o.schemaVersion = ctx.schema;
  o.serial = ctx.require<LicensingModule>().service().serial();
  o.configFile = c.paths.configFile();
  o.serialFile = c.paths.serialFile();
  o.tlsCertFile = c.tlsCertFile.empty() ? c.paths.tlsDir() / "server.crt" : fs::path(c.tlsCertFile);
  o.tlsKeyFile = c.tlsKeyFile.empty() ? c.paths.tlsDir() / "server.key" : fs::path(c.tlsKeyFile);
  return o;
}

// {"passphrase": "..."}, the one field of the create and verify bodies.
std::string passphraseOf(RequestContext& ctx) {
  auto body = ctx.body();
  json::onlyKeys(body, {"passphrase"});
  auto passphrase = json::optString(body, "passphrase", BackupService::kMaxPassphrase);
  if (!passphrase || passphrase->empty()) {
    throw InvalidInput("give the archive's passphrase as {\"passphrase\": \"...\"}",
                       "missing_field");
  }
  return *passphrase;
}

// The archive's bytes, read as the client takes them: constant memory at any size.
http::Response download(const fs::path& path, const std::string& id) {
  auto fd = std::make_shared<files::Fd>(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!*fd) throw IoError("cannot open " + path.string() + ": " + errnoText(errno));
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0 || !S_ISREG(st.st_mode))
    throw IoError("cannot read " + path.string() + ": not a regular file");
  http::Response r;
  // An archive is never written in place (it is renamed in once whole): its size is final.
  r.streamLength = static_cast<std::uint64_t>(st.st_size);
  r.contentType = "application/octet-stream";
  r.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + id + ".vcrmbak\"");
  r.stream = [fd](std::ostream& os) {
    std::string buf(64u << 10, '\0');
    for (;;) {
      const ssize_t n = ::read(fd->get(), buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      os.write(buf.data(), n);
      if (!os.good()) return;
    }
  };
  return r;
}

}  // namespace

BackupsModule::BackupsModule(const ModuleContext& ctx)
    : NamedModule("backups"),
      audit_(ctx.audit),
      store_(ctx.config.paths.backupsDir()),
      service_(serviceOptions(ctx), store_, ctx.bus, ctx.log),
      scheduler_(service_, store_, ctx.pool, ctx.log, sftpArchiveCopier()),
      worker_({"backup-scheduler",
               Worker::RunsOn::ActiveNode,
               std::chrono::seconds(20),
               [this] { scheduler_.pass(); },
               {}},
              ctx.log) {}

json::ObjectPtr BackupsModule::dashboard() {
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("last_scheduled", scheduler_.lastRun());
  o->set("running", service_.running());
  o->set("last_failure", service_.lastFailure());
  return o;
}

std::vector<Route> BackupsModule::routes() {
  std::vector<Route> out;
  out.push_back(
      roleRoute("GET", "/api/v1/backups", roles::kSupport, "backup.list", [this](RequestContext&) {
        json::ArrayPtr list = new json::Array;
        for (const auto& r : store_.list()) list->add(r.toJson());
        json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
        o->set("backups", list);
        o->set("schedule", scheduler_.describe());
        o->set("running", service_.running());
        o->set("last_failure", service_.lastFailure());
        o->set("last_scheduled", scheduler_.lastRun());
        return http::Response::json(200, o);
      }));
  // Before /backups/{id}: "schedule" is not an id.
  out.push_back(roleRoute(
      "GET", "/api/v1/backups/schedule", roles::kSupport, "backup.schedule.get",
      [this](RequestContext&) { return http::Response::json(200, scheduler_.describe()); }));
  out.push_back(roleRoute("PUT", "/api/v1/backups/schedule", roles::kSupport, "backup.schedule.set",
                          [this](RequestContext& ctx) {
                            return http::Response::json(200, scheduler_.update(ctx.body()));
                          }));
  out.push_back(roleRoute("POST", "/api/v1/backups/schedule/run", roles::kSupport,
                          "backup.schedule.run", [this](RequestContext&) {
                            scheduler_.requestRun();
                            worker_.wake();
                            json::ObjectPtr o = new json::Object;
                            o->set("requested", true);
                            return http::Response::json(202, o);
                          }));
  out.push_back(roleRoute(
      "POST", "/api/v1/backups", roles::kSupport, "backup.create", [this](RequestContext& ctx) {
        BackupService::Request request;
        request.passphrase = passphraseOf(ctx);
        request.createdBy = ctx.session->user.username;
        auto o = service_.start(std::move(request));
        const std::string id = o->getObject("backup")->getValue<std::string>("id");
        ctx.auditTarget = id;
        auto r = http::Response::json(202, o);
        r.headers.emplace_back("Location", "/api/v1/backups/" + id);
        return r;
      }));
  out.push_back(roleRoute("GET", "/api/v1/backups/{id}", roles::kSupport, "backup.get",
                          [this](RequestContext& ctx) {
                            return http::Response::json(200, store_.get(ctx.param("id")).toJson());
                          }));
  out.push_back(roleRoute("GET", "/api/v1/backups/{id}/download", roles::kSupport,
                          "backup.download", [this](RequestContext& ctx) {
                            const std::string id = ctx.param("id");
                            store_.get(id);
                            auto r = download(store_.archivePath(id), id);
                            // A download changes nothing, but who took a copy of the keys is
                            // recorded (a HEAD takes nothing).
                            if (ctx.request.method == "GET") {
                              audit_.record(auditEntry(ctx.request, "backup.download", 200,
                                                       ctx.session->user.username, id));
                            }
                            return r;
                          }));
  out.push_back(roleRoute("DELETE", "/api/v1/backups/{id}", roles::kSupport, "backup.delete",
                          [this](RequestContext& ctx) {
                            ctx.auditTarget = ctx.param("id");
                            store_.remove(ctx.param("id"));
                            return http::Response::noContent();
                          }));
  out.push_back(roleRoute("POST", "/api/v1/backups/{id}/verify", roles::kSupport, "backup.verify",
                          [this](RequestContext& ctx) {
                            ctx.auditTarget = ctx.param("id");
                            const std::string passphrase = passphraseOf(ctx);
                            return http::Response::json(
                                200, service_.verify(ctx.param("id"), passphrase));
                          }));
  return out;
}

}  // namespace vcrm
