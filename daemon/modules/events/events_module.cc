#include "modules/events/events_module.h"

#include <regex>

namespace vcrm {

EventsModule::EventsModule(const ModuleContext& ctx) : NamedModule("events"), bus_(ctx.bus) {}

std::vector<Route> EventsModule::routes() {
  std::vector<Route> out;
  out.push_back(userRoute("GET", "/api/v1/events", "events", [this](RequestContext& ctx) {
    std::uint64_t after = bus_.lastId();
    const std::string last = ctx.request.header("last-event-id");
    if (!last.empty() && std::regex_match(last, std::regex("^[0-9]{1,18}$"))) after = std::stoull(last);
    http::Response r;
    r.contentType = "text/event-stream";
    r.headers.emplace_back("Cache-Control", "no-store");
    EventBus& bus = bus_;
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
  }));

  return out;
}

}  // namespace vcrm
