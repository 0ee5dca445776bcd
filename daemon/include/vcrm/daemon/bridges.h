// The registry of media bridges: CRUD, a driver per bridge, and the health probe that records
// up/down, latency and, when down, the likely cause (address, port, credentials, firewall).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vcrm/common/db.h"
#include "vcrm/common/guarded.h"
#include "vcrm/common/json.h"
#include "vcrm/common/log.h"
#include "vcrm/daemon/audit.h"
#include "vcrm/daemon/event_bus.h"
#include "vcrm/daemon/janus.h"

namespace vcrm {

struct Bridge {
  std::int64_t id = 0;
  std::string name;
  std::string type;
  std::string url;
  std::string adminUrl;
  std::string adminSecret;
  int capacityPorts = 0;
  std::string pool;
  std::string state;   // enabled | cordoned | disabled
  std::string health;  // unknown | up | down
  std::optional<std::string> healthCause;
  std::optional<std::string> healthMessage;
  std::optional<int> latencyMs;
  std::optional<std::string> version;
  std::optional<std::string> checkedAt;
  std::string eventsSecret;
};

class BridgeService {
 public:
  BridgeService(db::Pool& pool, Logger& log, EventBus& bus);

  std::vector<Bridge> list();
  Bridge get(std::int64_t id);  // NotFound
  // The changes commit through `audit`, with the request's audit row. Conflict licence_bridges
  // when the licence's bridge count is reached (see limitBridges).
  Bridge create(const json::ObjectPtr& body, const AuditedCommit& audit);
  // The number of bridges the licence allows, asked at each registration; unset: no limit.
  void limitBridges(std::function<std::int64_t()> allowed) { licensedBridges_ = std::move(allowed); }
  Bridge update(std::int64_t id, const json::ObjectPtr& body, const AuditedCommit& audit);
  void remove(std::int64_t id,
              const AuditedCommit& audit);  // Conflict while conferences are booked on it

  // The driver for a bridge, shared and rebuilt when its endpoint changes.
  std::shared_ptr<janus::Driver> driver(std::int64_t id);
  std::shared_ptr<janus::Driver> driver(const Bridge& b);

  // Probes every enabled or cordoned bridge once, all at once (one thread each, so a bridge that
  // does not answer delays only itself); returns the ids that just went down. `downAfter`
  // consecutive failures mark a bridge down (one blip is not an outage). Holds no database
  // connection while a bridge is asked.
  std::vector<std::int64_t> probeAll(int downAfter = 2);

  bool checkEventAuth(std::int64_t id, const std::string& authorizationHeader);
  // The Janus configuration fragments that point a bridge's event handler at vcrmd.
  std::string janusConfig(std::int64_t id, const std::string& eventsUrl);

  json::ObjectPtr toJson(const Bridge& b) const;  // never includes secrets

 private:
  std::function<std::int64_t()> licensedBridges_;
  struct Cached {
    std::string key;  // url|admin_url|secret: rebuilt when it changes
    std::shared_ptr<janus::Driver> driver;
  };
  static void validate(const Bridge& b);
  // Writes one probe's outcome; true when the bridge just went from up to down.
  bool recordProbe(const Bridge& b, const janus::ProbeResult& result, int downAfter);
  std::vector<Bridge> query(std::optional<std::int64_t> id);
  db::Pool& pool_;
  Logger& log_;
  EventBus& bus_;
  Guarded<std::map<std::int64_t, Cached>> drivers_;
  Guarded<std::map<std::int64_t, int>> failures_;
};

}  // namespace vcrm
