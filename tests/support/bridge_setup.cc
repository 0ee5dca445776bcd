#include "bridge_setup.h"

#include <regex>
#include <stdexcept>

namespace vcrm::test {

RegisteredBridge registerJanusBridge(HttpsClient& admin, const std::string& name, int capacity,
                                     const std::string& pool, JanusProcess::Options janusOptions) {
  // Registered first with a placeholder address: the events credentials exist only once the
  // bridge does, and Janus needs them in its configuration before it starts.
  auto r = admin.postJson("/api/v1/bridges",
                          R"({"name":")" + name +
                              R"(","url":"http://127.0.0.1:9/janus","admin_url":"http://127.0.0.1:9/admin",)"
                              R"("admin_secret":")" + janusOptions.adminSecret + R"(","capacity_ports":)" +
                              std::to_string(capacity) + R"(,"pool":")" + pool + R"("})");
  if (r.status != 201) throw std::runtime_error("registering bridge " + name + " failed: " + r.body);
  RegisteredBridge out;
  out.id = r.json()->getValue<std::int64_t>("id");
  auto cfg = admin.get("/api/v1/bridges/" + std::to_string(out.id) + "/janus-config");
  std::smatch backend;
  std::smatch user;
  std::smatch pwd;
  if (cfg.status != 200 || !std::regex_search(cfg.body, backend, std::regex("backend = \"([^\"]+)\"")) ||
      !std::regex_search(cfg.body, user, std::regex("backend_user = \"([^\"]+)\"")) ||
      !std::regex_search(cfg.body, pwd, std::regex("backend_pwd = \"([^\"]+)\""))) {
    throw std::runtime_error("janus-config for bridge " + name + " is not usable: " + cfg.body);
  }
  out.eventsUrl = backend[1].str();
  janusOptions.eventsUrl = out.eventsUrl;
  janusOptions.eventsUser = user[1].str();
  janusOptions.eventsPassword = pwd[1].str();
  out.janus = std::make_unique<JanusProcess>(janusOptions);
  auto p = admin.request("PATCH", "/api/v1/bridges/" + std::to_string(out.id),
                         R"({"url":")" + out.janus->httpUrl() + R"(","admin_url":")" + out.janus->adminUrl() + R"("})");
  if (p.status != 200) throw std::runtime_error("pointing bridge " + name + " at Janus failed: " + p.body);
  return out;
}

}  // namespace vcrm::test
