#include "modules/conferences/conferences_module.h"

#include <algorithm>
#include <regex>

#include "modules/backups/backups_module.h"
#include "modules/bridges/bridges_module.h"
#include "modules/licensing/licensing_module.h"
#include "vcrm/common/error.h"
#include "vcrm/daemon/cdrs.h"

namespace vcrm {

namespace {

ConferenceService::Options optionsFrom(const Config& config, LicenceService& licence) {
  ConferenceService::Options co;
  co.licensedPorts = [&licence] { return licence.limits().concurrentPorts; };
  co.prelaunch = std::chrono::seconds(config.prelaunchSeconds);
  co.reconcileEvery = std::chrono::seconds(config.reconcileSeconds);
  // Reconcile workers each hold a database connection: leave at least half the pool to the API.
  co.reconcileWorkers = std::min(config.reconcileWorkers, std::max(1, config.dbPoolSize / 2));
  co.emptyGrace = std::chrono::seconds(config.emptyGraceSeconds);
  return co;
}

// ?series=true applies to the rest of the series; anything but true, false or nothing is refused
// rather than read as "just this one".
bool seriesScope(const RequestContext& ctx) {
  const auto v = ctx.request.queryParam("series");
  if (!v || *v == "false") return false;
  if (*v == "true") return true;
  throw InvalidInput("series must be true or false, not \"" + v->substr(0, 40) + "\"", "invalid_field");
}

}  // namespace

ConferencesModule::ConferencesModule(const ModuleContext& ctx)
    : NamedModule("conferences"),
      bridges_(ctx.require<BridgesModule>().service()),
      licence_(ctx.require<LicensingModule>().service()),
      backups_(ctx.require<BackupsModule>()),
      pool_(ctx.pool),
      version_(ctx.version),
      service_(ctx.pool, ctx.log, ctx.bus, bridges_, optionsFrom(ctx.config, licence_)),
      scheduler_({"scheduler", Worker::RunsOn::ActiveNode, service_.options().tick,
                  [this] { service_.tick(); }, [this] { service_.resume(); }},
                 ctx.log) {
  service_.onWork([this] { scheduler_.wake(); });
  ctx.require<BridgesModule>().onBridgeDown([this](std::int64_t bridgeId) { service_.relocateOrFail(bridgeId); });
}

std::vector<Route> ConferencesModule::routes() {
  std::vector<Route> out;
  // Janus's event handler posts here with HTTP basic auth (bridge-<id> and its events secret).
  // Too many to audit one by one: only refusals leave a row.
  Route events = publicRoute("POST", "/api/v1/bridges/{id}/events", "bridge.events", [this](RequestContext& ctx) {
    const std::string& raw = ctx.param("id");
    static const std::regex digits("^[0-9]{1,18}$");
    if (!std::regex_match(raw, digits) || !bridges_.checkEventAuth(std::stoll(raw), ctx.request.header("authorization"))) {
      throw Unauthenticated("bridge event posts need the bridge's basic-auth credentials", "unauthenticated",
                            "Basic realm=\"vcrm bridge events\"");
    }
    service_.ingest(std::stoll(raw), janus::parseEvents(ctx.request.body));
    return http::Response::noContent();
  });
  events.audited = false;
  out.push_back(std::move(events));

  out.push_back(
      roleRoute("GET", "/api/v1/dashboard", roles::kWatchers, "dashboard", [this](RequestContext&) {
        auto d = service_.dashboard();
        // The licence pane: its state (a warning in grace), days left, ports reserved now against
        // licensed.
        auto status = licensing::toJson(licence_.status());
        auto c = pool_.acquire();
        status->set("ports_reserved_now",
                    c->exec("SELECT coalesce(sum(ports), 0) FROM conferences WHERE state IN "
                            "('scheduled', 'starting', "
                            "'active') AND starts_at <= now() AND ends_at > now()")
                        .int64(0, 0));
        d->set("licence", status);
        // The backups pane: a failed scheduled backup or copy shows here until one succeeds.
        d->set("backups", backups_.dashboard());
        return http::Response::json(200, d);
      }));

  // --- conferences -------------------------------------------------------------------------
  out.push_back(roleRoute("GET", "/api/v1/conferences", roles::kAdmin, "conference.list", [this](RequestContext& ctx) {
    return http::Response::json(200, service_.list(ctx.request.query));
  }));
  out.push_back(roleRoute("POST", "/api/v1/conferences", roles::kAdmin, "conference.create", [this](RequestContext& ctx) {
    auto body = ctx.body();
    ctx.auditTarget = json::optString(body, "name", 200);
    auto o = service_.create(ctx.session->user.username, body, ctx.audited(201));
    auto r = http::Response::json(201, o);
    if (o->has("id")) r.headers.emplace_back("Location", "/api/v1/conferences/" + o->getValue<std::string>("id"));
    return r;
  }));
  out.push_back(roleRoute("GET", "/api/v1/conferences/{id}.ics", roles::kAdmin, "conference.ics",
                     [this](RequestContext& ctx) {
    auto c = pool_.acquire();
    http::Response r;
    r.contentType = "text/calendar; charset=utf-8";
    r.body = CdrService::icsForConference(*c, idParam(ctx, "id", "conference"), version_);
    r.headers.emplace_back("Content-Disposition", "attachment; filename=\"conference-" + ctx.param("id") + ".ics\"");
    return r;
  }));
  out.push_back(roleRoute("GET", "/api/v1/conferences/{id}", roles::kAdmin, "conference.get", [this](RequestContext& ctx) {
    return http::Response::json(200, service_.get(idParam(ctx, "id", "conference")));
  }));
  out.push_back(roleRoute("PATCH", "/api/v1/conferences/{id}", roles::kAdmin, "conference.update",
                     [this](RequestContext& ctx) {
    ctx.auditTarget = ctx.param("id");
    const auto id = idParam(ctx, "id", "conference");
    if (seriesScope(ctx)) {
      return http::Response::json(200, service_.updateSeries(id, ctx.body(), ctx.audited(200)));
    }
    return http::Response::json(200, service_.update(id, ctx.body(), ctx.audited(200)));
  }));
  out.push_back(roleRoute("DELETE", "/api/v1/conferences/{id}", roles::kAdmin, "conference.cancel",
                     [this](RequestContext& ctx) {
    ctx.auditTarget = ctx.param("id");
    const bool series = seriesScope(ctx);
    return http::Response::json(
        200, service_.cancel(idParam(ctx, "id", "conference"), series, ctx.audited(200)));
  }));
  out.push_back(roleRoute("POST", "/api/v1/conferences/{id}/terminate", roles::kAdmin, "conference.terminate",
                     [this](RequestContext& ctx) {
    ctx.auditTarget = ctx.param("id");
    return http::Response::json(
        200, service_.terminate(idParam(ctx, "id", "conference"), ctx.session->user.username,
                                ctx.audited(200)));
  }));
  out.push_back(roleRoute("POST", "/api/v1/conferences/{id}/extend", roles::kAdmin, "conference.extend",
                     [this](RequestContext& ctx) {
    ctx.auditTarget = ctx.param("id");
    auto body = ctx.body();
    json::onlyKeys(body, {"minutes"});
    const auto minutes = json::optInt(body, "minutes");
    if (!minutes) throw InvalidInput("field \"minutes\" is required", "missing_field");
    return http::Response::json(
        200, service_.extend(idParam(ctx, "id", "conference"),
                             static_cast<int>(std::clamp<std::int64_t>(*minutes, -1, 100000)),
                             ctx.audited(200)));
  }));
  out.push_back(roleRoute("POST", "/api/v1/conferences/{id}/participants/{pid}/mute", roles::kAdmin,
                     "participant.mute", [this](RequestContext& ctx) {
    ctx.auditTarget = ctx.param("id") + "/" + ctx.param("pid");
    auto body = ctx.request.body.empty() ? json::ObjectPtr(new json::Object) : ctx.body();
    json::onlyKeys(body, {"muted"});
    service_.muteParticipant(idParam(ctx, "id", "conference"), idParam(ctx, "pid", "participant"),
                             json::optBool(body, "muted").value_or(true), ctx.audited(204));
    return http::Response::noContent();
  }));
  out.push_back(roleRoute("POST", "/api/v1/conferences/{id}/participants/{pid}/drop", roles::kAdmin,
                     "participant.drop", [this](RequestContext& ctx) {
    ctx.auditTarget = ctx.param("id") + "/" + ctx.param("pid");
    service_.dropParticipant(idParam(ctx, "id", "conference"), idParam(ctx, "pid", "participant"),
                             ctx.session->user.username, ctx.audited(204));
    return http::Response::noContent();
  }));

  return out;
}

}  // namespace vcrm
