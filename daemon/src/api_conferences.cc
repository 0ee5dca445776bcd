// Routes for bridges, conferences, the live event stream and CDRs.
#include <regex>

#include "vcrm/common/error.h"
#include "vcrm/daemon/api.h"
#include "vcrm/daemon/bridges.h"
#include "vcrm/daemon/cdrs.h"
#include "vcrm/daemon/conferences.h"
#include "vcrm/daemon/event_bus.h"

namespace vcrm {

namespace {

std::int64_t idParam(const RequestContext& ctx, const std::string& name, const char* what) {
  const std::string& v = ctx.param(name);
  static const std::regex digits("^[0-9]{1,18}$");
  if (!std::regex_match(v, digits)) throw NotFound(std::string("no ") + what + " \"" + v.substr(0, 40) + "\"");
  return std::stoll(v);
}

http::Response csv(const std::string& filename, std::function<void(std::ostream&)> writer) {
  http::Response r;
  r.contentType = "text/csv; charset=utf-8";
  r.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + filename + "\"");
  r.stream = std::move(writer);
  return r;
}

// ?series=true applies to the rest of the series; anything but true, false or nothing is refused
// rather than read as "just this one".
bool seriesScope(const RequestContext& ctx) {
  const auto v = ctx.request.queryParam("series");
  if (!v || *v == "false") return false;
  if (*v == "true") return true;
  throw InvalidInput("series must be true or false, not \"" + v->substr(0, 40) + "\"", "invalid_field");
}

bool wantsCsv(const RequestContext& ctx) {
  return ctx.request.queryParam("format").value_or("") == "csv";
}

}  // namespace

void Api::buildConferenceRoutes() {
  using A = Route::Access;
  const std::vector<std::string> admin{"admin"};
  const std::vector<std::string> watchers{"admin", "noc"};

  // --- bridges -----------------------------------------------------------------------------
  routes_.push_back({"GET", "/api/v1/bridges", A::Roles, watchers, "bridge.list", [this](RequestContext&) {
    json::ArrayPtr arr = new json::Array;
    for (const auto& b : s_.bridges.list()) arr->add(s_.bridges.toJson(b));
    json::ObjectPtr o = new json::Object;
    o->set("bridges", arr);
    return http::Response::json(200, o);
  }});
  routes_.push_back({"POST", "/api/v1/bridges", A::Roles, admin, "bridge.create", [this](RequestContext& ctx) {
    auto b = s_.bridges.create(ctx.body());
    ctx.auditTarget = b.name;
    auto r = http::Response::json(201, s_.bridges.toJson(b));
    r.headers.emplace_back("Location", "/api/v1/bridges/" + std::to_string(b.id));
    return r;
  }});
  routes_.push_back({"GET", "/api/v1/bridges/{id}", A::Roles, watchers, "bridge.get", [this](RequestContext& ctx) {
    return http::Response::json(200, s_.bridges.toJson(s_.bridges.get(idParam(ctx, "id", "bridge"))));
  }});
  routes_.push_back({"PATCH", "/api/v1/bridges/{id}", A::Roles, admin, "bridge.update", [this](RequestContext& ctx) {
    ctx.auditTarget = ctx.param("id");
    return http::Response::json(200, s_.bridges.toJson(s_.bridges.update(idParam(ctx, "id", "bridge"), ctx.body())));
  }});
  routes_.push_back({"DELETE", "/api/v1/bridges/{id}", A::Roles, admin, "bridge.delete", [this](RequestContext& ctx) {
    ctx.auditTarget = ctx.param("id");
    s_.bridges.remove(idParam(ctx, "id", "bridge"));
    return http::Response::noContent();
  }});
  routes_.push_back({"GET", "/api/v1/bridges/{id}/janus-config", A::Roles, admin, "bridge.janus_config",
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
    if (eventsPort_ >= 0) {
      const bool anyAddress = eventsListen_ == "0.0.0.0" || eventsListen_ == "::";
      std::string eventsHost = anyAddress ? host : eventsListen_;
      if (eventsHost.find(':') != std::string::npos && eventsHost.front() != '[') eventsHost = "[" + eventsHost + "]";
      url = "http://" + eventsHost + ":" + std::to_string(eventsPort_) + path;
    } else {
      // Janus verifies TLS peers: the bridge host must trust vcrmd's certificate for this.
      url = "https://" + ctx.request.header("host") + path;
    }
    http::Response r;
    r.contentType = "text/plain; charset=utf-8";
    r.body = s_.bridges.janusConfig(id, url);
    return r;
  }});
  // Janus's event handler posts here with HTTP basic auth (bridge-<id> and its events secret).
  routes_.push_back({"POST", "/api/v1/bridges/{id}/events", A::Public, {}, "bridge.events",
                     [this](RequestContext& ctx) {
    const std::string& raw = ctx.param("id");
    static const std::regex digits("^[0-9]{1,18}$");
    if (!std::regex_match(raw, digits) || !s_.bridges.checkEventAuth(std::stoll(raw), ctx.request.header("authorization"))) {
      auto r = http::Response::error(401, "unauthenticated", "bridge event posts need the bridge's basic-auth credentials");
      r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"vcrm bridge events\"");
      return r;
    }
    s_.conferences.ingest(std::stoll(raw), janus::parseEvents(ctx.request.body));
    return http::Response::noContent();
  }, false});

  routes_.push_back({"GET", "/api/v1/dashboard", A::Roles, watchers, "dashboard", [this](RequestContext&) {
    return http::Response::json(200, s_.conferences.dashboard());
  }});

  // --- conferences -------------------------------------------------------------------------
  routes_.push_back({"GET", "/api/v1/conferences", A::Roles, admin, "conference.list", [this](RequestContext& ctx) {
    return http::Response::json(200, s_.conferences.list(ctx.request.query));
  }});
  routes_.push_back({"POST", "/api/v1/conferences", A::Roles, admin, "conference.create", [this](RequestContext& ctx) {
    auto body = ctx.body();
    ctx.auditTarget = json::optString(body, "name", 200);
    auto o = s_.conferences.create(ctx.session->user.username, body);
    auto r = http::Response::json(201, o);
    if (o->has("id")) r.headers.emplace_back("Location", "/api/v1/conferences/" + o->getValue<std::string>("id"));
    return r;
  }});
  routes_.push_back({"GET", "/api/v1/conferences/{id}.ics", A::Roles, admin, "conference.ics",
                     [this](RequestContext& ctx) {
    auto c = pool_.acquire();
    http::Response r;
    r.contentType = "text/calendar; charset=utf-8";
    r.body = CdrService::icsForConference(*c, idParam(ctx, "id", "conference"), info_.version);
    r.headers.emplace_back("Content-Disposition", "attachment; filename=\"conference-" + ctx.param("id") + ".ics\"");
    return r;
  }});
  routes_.push_back({"GET", "/api/v1/conferences/{id}", A::Roles, admin, "conference.get", [this](RequestContext& ctx) {
    return http::Response::json(200, s_.conferences.get(idParam(ctx, "id", "conference")));
  }});
  routes_.push_back({"PATCH", "/api/v1/conferences/{id}", A::Roles, admin, "conference.update",
                     [this](RequestContext& ctx) {
    ctx.auditTarget = ctx.param("id");
    const auto id = idParam(ctx, "id", "conference");
    if (seriesScope(ctx)) {
      return http::Response::json(200, s_.conferences.updateSeries(id, ctx.body()));
    }
    return http::Response::json(200, s_.conferences.update(id, ctx.body()));
  }});
  routes_.push_back({"DELETE", "/api/v1/conferences/{id}", A::Roles, admin, "conference.cancel",
                     [this](RequestContext& ctx) {
    ctx.auditTarget = ctx.param("id");
    const bool series = seriesScope(ctx);
    return http::Response::json(200, s_.conferences.cancel(idParam(ctx, "id", "conference"), series));
  }});
  routes_.push_back({"POST", "/api/v1/conferences/{id}/terminate", A::Roles, admin, "conference.terminate",
                     [this](RequestContext& ctx) {
    ctx.auditTarget = ctx.param("id");
    return http::Response::json(200, s_.conferences.terminate(idParam(ctx, "id", "conference"),
                                                              ctx.session->user.username));
  }});
  routes_.push_back({"POST", "/api/v1/conferences/{id}/extend", A::Roles, admin, "conference.extend",
                     [this](RequestContext& ctx) {
    ctx.auditTarget = ctx.param("id");
    auto body = ctx.body();
    json::onlyKeys(body, {"minutes"});
    const auto minutes = json::optInt(body, "minutes");
    if (!minutes) throw InvalidInput("field \"minutes\" is required", "missing_field");
    return http::Response::json(200, s_.conferences.extend(idParam(ctx, "id", "conference"),
                                                           static_cast<int>(std::clamp<std::int64_t>(*minutes, -1, 100000))));
  }});
  routes_.push_back({"POST", "/api/v1/conferences/{id}/participants/{pid}/mute", A::Roles, admin,
                     "participant.mute", [this](RequestContext& ctx) {
    ctx.auditTarget = ctx.param("id") + "/" + ctx.param("pid");
    auto body = ctx.request.body.empty() ? json::ObjectPtr(new json::Object) : ctx.body();
    json::onlyKeys(body, {"muted"});
    s_.conferences.muteParticipant(idParam(ctx, "id", "conference"), idParam(ctx, "pid", "participant"),
                                   json::optBool(body, "muted").value_or(true));
    return http::Response::noContent();
  }});
  routes_.push_back({"POST", "/api/v1/conferences/{id}/participants/{pid}/drop", A::Roles, admin,
                     "participant.drop", [this](RequestContext& ctx) {
    ctx.auditTarget = ctx.param("id") + "/" + ctx.param("pid");
    s_.conferences.dropParticipant(idParam(ctx, "id", "conference"), idParam(ctx, "pid", "participant"),
                                   ctx.session->user.username);
    return http::Response::noContent();
  }});

  // --- live events (server-sent events) ----------------------------------------------------
  routes_.push_back({"GET", "/api/v1/events", A::AnyUser, {}, "events", [this](RequestContext& ctx) {
    std::uint64_t after = s_.bus.lastId();
    const std::string last = ctx.request.header("last-event-id");
    if (!last.empty() && std::regex_match(last, std::regex("^[0-9]{1,18}$"))) after = std::stoull(last);
    http::Response r;
    r.contentType = "text/event-stream";
    r.headers.emplace_back("Cache-Control", "no-cache");
    EventBus& bus = s_.bus;
    // Conference and participant changes carry PINs and names: admins only. Everyone else
    // (the NOC, operators, support) sees bridge changes.
    const bool admin = ctx.session->user.hasRole("admin");
    r.stream = [&bus, after, admin](std::ostream& os) mutable {
      os << "retry: 3000\n\n";
      os.flush();
      while (os.good() && !bus.closed()) {
        auto msgs = bus.waitAfter(after, std::chrono::seconds(15));
        if (msgs.empty()) {
          os << ": keep-alive\n\n";  // also how a vanished client is noticed
        }
        for (const auto& m : msgs) {
          after = m.id;
          if (!admin && m.type != "bridge") continue;
          os << "id: " << m.id << "\nevent: " << m.type << "\ndata: " << m.json << "\n\n";
        }
        os.flush();
      }
    };
    return r;
  }});

  // --- CDRs --------------------------------------------------------------------------------
  routes_.push_back({"GET", "/api/v1/cdrs/conferences", A::Roles, admin, "cdr.conferences", [this](RequestContext& ctx) {
    const auto q = CdrService::fromParams(ctx.request.query);
    if (wantsCsv(ctx)) {
      CdrService& cdrs = s_.cdrs;
      return csv("conference-cdrs.csv", [&cdrs, q](std::ostream& os) { cdrs.conferencesCsv(q, os); });
    }
    return http::Response::json(200, s_.cdrs.conferences(q));
  }});
  routes_.push_back({"GET", "/api/v1/cdrs/participants", A::Roles, admin, "cdr.participants", [this](RequestContext& ctx) {
    const auto q = CdrService::fromParams(ctx.request.query);
    if (wantsCsv(ctx)) {
      CdrService& cdrs = s_.cdrs;
      return csv("participant-cdrs.csv", [&cdrs, q](std::ostream& os) { cdrs.participantsCsv(q, os); });
    }
    return http::Response::json(200, s_.cdrs.participants(q));
  }});
}

}  // namespace vcrm
