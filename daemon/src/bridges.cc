#include "vcrm/daemon/bridges.h"

#include <algorithm>
#include <atomic>
#include <regex>
#include <system_error>
#include <thread>

#include "vcrm/common/crypto.h"
#include "vcrm/common/error.h"

namespace vcrm {

namespace {

constexpr const char* kComponent = "bridges";


Bridge fromRow(const db::Result& r, int i) {
  Bridge b;
  b.id = r.int64(i, 0);
  b.name = r.text(i, 1);
  b.type = r.text(i, 2);
  b.url = r.text(i, 3);
  b.adminUrl = r.text(i, 4);
  b.adminSecret = r.text(i, 5);
  b.capacityPorts = static_cast<int>(r.int64(i, 6));
  b.pool = r.text(i, 7);
  b.state = r.text(i, 8);
  b.health = r.text(i, 9);
  b.healthCause = r.optText(i, 10);
  b.healthMessage = r.optText(i, 11);
  if (!r.isNull(i, 12)) b.latencyMs = static_cast<int>(r.int64(i, 12));
  b.version = r.optText(i, 13);
  b.checkedAt = r.optText(i, 14);
  b.eventsSecret = r.text(i, 15);
  return b;
}

bool validHttpUrl(const std::string& url) {
  static const std::regex pattern(R"(^https?://[A-Za-z0-9.\-\[\]:]+(:[0-9]{1,5})?(/[A-Za-z0-9._~\-/]*)?$)");
  return url.size() <= 512 && std::regex_match(url, pattern);
}

Poco::Dynamic::Var opt(const std::optional<std::string>& v) {
  return v ? Poco::Dynamic::Var(*v) : Poco::Dynamic::Var();
}

}  // namespace

BridgeService::BridgeService(db::Pool& pool, Logger& log, EventBus& bus)
    : pool_(pool), log_(log), bus_(bus) {}

void BridgeService::validate(const Bridge& b) {
  if (b.name.empty() || b.name.size() > 64) {
    throw InvalidInput("name must be 1 to 64 characters", "invalid_field");
  }
  if (b.type != "janus") throw InvalidInput("type must be \"janus\" (the only bridge type so far)", "invalid_field");
  if (!validHttpUrl(b.url)) {
    throw InvalidInput("url must be the bridge's HTTP API, e.g. http://10.0.0.5:8088/janus", "invalid_field");
  }
  if (!validHttpUrl(b.adminUrl)) {
    throw InvalidInput("admin_url must be the bridge's Admin API, e.g. http://10.0.0.5:7088/admin",
                       "invalid_field");
  }
  if (b.adminSecret.empty()) throw InvalidInput("admin_secret is required", "missing_field");
  if (b.capacityPorts < 1 || b.capacityPorts > 100000) {
    throw InvalidInput("capacity_ports must be from 1 to 100000", "invalid_field");
  }
  static const std::regex poolPattern("^[a-z0-9][a-z0-9_-]{0,31}$");
  if (!std::regex_match(b.pool, poolPattern)) {
    throw InvalidInput("pool must be lower-case letters, digits, '-' or '_' (at most 32)", "invalid_field");
  }
  if (b.state != "enabled" && b.state != "cordoned" && b.state != "disabled") {
    throw InvalidInput("state must be enabled, cordoned or disabled", "invalid_field");
  }
}

std::vector<Bridge> BridgeService::query(std::optional<std::int64_t> id) {
  auto c = pool_.acquire();
  auto r = c->exec(
      "SELECT id, name, type, url, admin_url, admin_secret, capacity_ports, pool, state, health, "
      "health_cause, health_message, latency_ms, bridge_version, rfc3339(health_checked_at), "
      "events_secret FROM bridges WHERE $1::bigint IS NULL OR id = $1 ORDER BY name",
      {id});
  std::vector<Bridge> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(fromRow(r, i));
  return out;
}

std::vector<Bridge> BridgeService::list() { return query(std::nullopt); }

Bridge BridgeService::get(std::int64_t id) {
  auto found = query(id);
  if (found.empty()) throw NotFound("no bridge with id " + std::to_string(id), "bridge_not_found");
  return found.front();
}

Bridge BridgeService::create(const json::ObjectPtr& body, const AuditedCommit& audit) {
  json::onlyKeys(body, {"name", "type", "url", "admin_url", "admin_secret", "capacity_ports", "pool", "state"});
  Bridge b;
  b.name = json::requireString(body, "name", 64);
  b.type = json::optString(body, "type", 16).value_or("janus");
  b.url = json::requireString(body, "url", 512);
  b.adminUrl = json::requireString(body, "admin_url", 512);
  b.adminSecret = json::requireString(body, "admin_secret", 256);
  const auto cap = json::optInt(body, "capacity_ports");
  if (!cap) throw InvalidInput("field \"capacity_ports\" is required", "missing_field");
  b.capacityPorts = static_cast<int>(std::clamp<std::int64_t>(*cap, -1, 1000000));
  b.pool = json::optString(body, "pool", 32).value_or("default");
  b.state = json::optString(body, "state", 16).value_or("enabled");
  validate(b);
  try {
    auto c = pool_.acquire();
    db::Transaction tx(*c);
    if (licensedBridges_) {
      // One registration at a time, so two cannot both take the licence's last bridge.
      tx.exec("SELECT pg_advisory_xact_lock(1986356002)");
      const std::int64_t allowed = licensedBridges_();
      const std::int64_t registered = tx.exec("SELECT count(*) FROM bridges").int64(0, 0);
      if (registered >= allowed) {
        throw Conflict("the licence allows " + std::to_string(allowed) + " bridges and " +
                           std::to_string(registered) +
                           " are registered: remove one, or apply a licence with more bridges",
                       "licence_bridges");
      }
    }
    auto r = tx.exec(
        "INSERT INTO bridges (name, type, url, admin_url, admin_secret, capacity_ports, pool, "
        "state, events_secret) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        {b.name, b.type, b.url, b.adminUrl, b.adminSecret, b.capacityPorts, b.pool, b.state,
         crypto::base64UrlEncode(crypto::randomBytes(24))});
    b.id = r.int64(0, 0);
    audit.commit(tx);
  } catch (const DbError& e) {
    if (e.sqlState() == "23505") throw Conflict("a bridge named \"" + b.name + "\" already exists", "bridge_exists");
    throw;
  }
  log_.info(kComponent, "BRIDGE_ADDED", "bridge registered: " + b.name + " " + b.url, std::to_string(b.id));
  auto out = get(b.id);
  bus_.publish("bridge", json::stringify(toJson(out)));
  return out;
}

Bridge BridgeService::update(std::int64_t id, const json::ObjectPtr& body,
                             const AuditedCommit& audit) {
  static const std::vector<std::string> fields{
      "name", "url", "admin_url", "admin_secret", "capacity_ports", "pool", "state"};
  json::onlyKeys(body, fields);
  json::requireAny(body, fields);
  Bridge b = get(id);
  const Bridge before = b;
  if (auto v = json::optString(body, "name", 64)) b.name = *v;
  if (auto v = json::optString(body, "url", 512)) b.url = *v;
  if (auto v = json::optString(body, "admin_url", 512)) b.adminUrl = *v;
  if (auto v = json::optString(body, "admin_secret", 256)) b.adminSecret = *v;
  if (auto v = json::optInt(body, "capacity_ports")) b.capacityPorts = static_cast<int>(std::clamp<std::int64_t>(*v, -1, 1000000));
  if (auto v = json::optString(body, "pool", 32)) b.pool = *v;
  if (auto v = json::optString(body, "state", 16)) b.state = *v;
  validate(b);
  {
  auto c = pool_.acquire();
  db::Transaction tx(*c);
  tx.exec("SELECT 1 FROM bridges WHERE id = $1 FOR UPDATE", {id});
  // Lowering capacity below what is already booked would break promises made to users.
  auto peak = tx.exec(
      "WITH o AS (SELECT starts_at, ends_at, ports FROM conferences WHERE bridge_id = $1 "
      "  AND state IN ('scheduled', 'starting', 'active') AND ends_at > now()) "
      "SELECT coalesce(max(s.used), 0) FROM (SELECT (SELECT coalesce(sum(o2.ports), 0) FROM o o2 "
      "  WHERE o2.starts_at <= greatest(o.starts_at, now()) AND o2.ends_at > greatest(o.starts_at, now())) AS used "
      "  FROM o) s",
      {id});
  if (peak.int64(0, 0) > b.capacityPorts) {
    throw Conflict("bridge " + b.name + " has up to " + std::to_string(peak.int64(0, 0)) +
                       " ports booked; capacity cannot go below that (move or cancel bookings first)",
                   "capacity_in_use");
  }
  try {
    tx.exec(
        "UPDATE bridges SET name = $2, url = $3, admin_url = $4, admin_secret = $5, "
        "capacity_ports = $6, pool = $7, state = $8, updated_at = now() WHERE id = $1",
        {id, b.name, b.url, b.adminUrl, b.adminSecret, b.capacityPorts, b.pool, b.state});
    // The health was of the old address: unknown (bookable) until the next probe, at once.
    if (b.url != before.url || b.adminUrl != before.adminUrl ||
        b.adminSecret != before.adminSecret) {
      tx.exec(
          "UPDATE bridges SET health = 'unknown', health_cause = NULL, health_message = NULL, "
          "health_changed_at = CASE WHEN health <> 'unknown' THEN now() ELSE health_changed_at "
          "END WHERE id = $1",
          {id});
    }
    audit.commit(tx);
  } catch (const DbError& e) {
    if (e.sqlState() == "23505") throw Conflict("a bridge named \"" + b.name + "\" already exists", "bridge_exists");
    throw;
  }
  }
  drivers_.lock()->erase(id);
  auto out = get(id);
  bus_.publish("bridge", json::stringify(toJson(out)));
  return out;
}

void BridgeService::remove(std::int64_t id, const AuditedCommit& audit) {
  auto c = pool_.acquire();
  db::Transaction tx(*c);
  auto r = tx.exec("SELECT name FROM bridges WHERE id = $1 FOR UPDATE", {id});
  if (r.empty()) throw NotFound("no bridge with id " + std::to_string(id), "bridge_not_found");
  auto booked = tx.exec(
      "SELECT count(*) FROM conferences WHERE (bridge_id = $1 OR requested_bridge_id = $1) "
      "AND state IN ('scheduled', 'starting', 'active')",
      {id});
  if (booked.int64(0, 0) > 0) {
    throw Conflict("bridge " + r.text(0, 0) + " has " + std::to_string(booked.int64(0, 0)) +
                       " conferences booked or running: cordon it, let them end or cancel them, then remove it",
                   "bridge_in_use");
  }
  // Past conferences keep their CDRs; their link to the bridge is dropped.
  tx.exec("UPDATE conferences SET bridge_id = NULL WHERE bridge_id = $1", {id});
  tx.exec("UPDATE conferences SET requested_bridge_id = NULL WHERE requested_bridge_id = $1", {id});
  tx.exec("DELETE FROM bridges WHERE id = $1", {id});
  audit.commit(tx);
  drivers_.lock()->erase(id);
  json::ObjectPtr o = new json::Object;
  o->set("id", id);
  o->set("removed", true);
  bus_.publish("bridge", json::stringify(o));
}

std::shared_ptr<janus::Driver> BridgeService::driver(std::int64_t id) {
  // Endpoints change only through update(), which drops the cached driver.
  {
    auto d = drivers_.lock();
    auto it = d->find(id);
    if (it != d->end() && it->second.driver) return it->second.driver;
  }
  return driver(get(id));
}

std::shared_ptr<janus::Driver> BridgeService::driver(const Bridge& b) {
  const std::string key = b.name + "|" + b.url + "|" + b.adminUrl + "|" + b.adminSecret;
  auto d = drivers_.lock();
  auto& slot = (*d)[b.id];
  if (!slot.driver || slot.key != key) {
    janus::Endpoint ep;
    ep.name = b.name;
    ep.url = b.url;
    ep.adminUrl = b.adminUrl;
    ep.adminSecret = b.adminSecret;
    slot.driver = std::make_shared<janus::Driver>(ep);
    slot.key = key;
  }
  return slot.driver;
}

std::vector<std::int64_t> BridgeService::probeAll(int downAfter) {
  std::vector<Bridge> probed;
  for (auto& b : list()) {
    if (b.state != "disabled") probed.push_back(std::move(b));
  }
  // All at once (up to kProbeThreads): a bridge that does not answer costs its own timeout,
  // not everyone's. Each result is written as soon as it is in, by the thread that probed it.
  constexpr std::size_t kProbeThreads = 64;
  std::vector<std::int64_t> wentDown;
  Guarded<std::vector<std::int64_t>> down;
  std::atomic<std::size_t> next{0};
  const auto work = [&] {
    for (std::size_t i = next++; i < probed.size(); i = next++) {
      const Bridge& b = probed[i];
      try {
        if (recordProbe(b, driver(b)->probe(), downAfter)) down.lock()->push_back(b.id);
      } catch (const std::exception& e) {
        log_.error(kComponent, "PROBE_FAILED", e.what(), std::to_string(b.id));
      }
    }
  };
  std::vector<std::thread> threads;
  const std::size_t helpers = std::min(probed.size(), kProbeThreads) - (probed.empty() ? 0 : 1);
  threads.reserve(helpers);
  for (std::size_t t = 0; t < helpers; ++t) {
    try {
      threads.emplace_back(work);
    } catch (const std::system_error& e) {  // no thread to be had: fewer at once, same pass
      log_.warn(kComponent, "PROBE_THREAD", e.what());
      break;
    }
  }
  work();
  for (auto& t : threads) t.join();
  wentDown = std::move(*down.lock());
  std::sort(wentDown.begin(), wentDown.end());
  return wentDown;
}

bool BridgeService::recordProbe(const Bridge& b, const janus::ProbeResult& result, int downAfter) {
  int fails = 0;
  {
    auto f = failures_.lock();
    fails = result.up ? 0 : ++(*f)[b.id];
    if (result.up) f->erase(b.id);
  }
  std::string health = b.health;
  if (result.up) {
    health = "up";
  } else if (fails >= downAfter || b.health == "unknown") {
    health = "down";
  }
  pool_.acquire()->exec(
      "UPDATE bridges SET health = $2, health_cause = $3, health_message = $4, latency_ms = $5, "
      "bridge_version = coalesce($6, bridge_version), health_checked_at = now(), "
      "health_changed_at = CASE WHEN health <> $2 THEN now() ELSE health_changed_at END "
      "WHERE id = $1",
      {b.id, health, result.up ? std::optional<std::string>() : std::optional<std::string>(result.cause),
       result.up ? std::optional<std::string>() : std::optional<std::string>(result.message),
       result.up ? std::optional<int>(result.latencyMs) : std::optional<int>(),
       result.up && !result.version.empty() ? std::optional<std::string>(result.version)
                                            : std::optional<std::string>()});
  if (health == b.health) return false;
  if (health == "down") {
    log_.warn(kComponent, "BRIDGE_DOWN", b.name + " is down (" + result.cause + "): " + result.message,
              std::to_string(b.id));
  } else {
    log_.info(kComponent, "BRIDGE_UP", b.name + " is up (" + std::to_string(result.latencyMs) + " ms)",
              std::to_string(b.id));
  }
  bus_.publish("bridge", json::stringify(toJson(get(b.id))));
  return health == "down" && b.health == "up";
}

bool BridgeService::checkEventAuth(std::int64_t id, const std::string& authorizationHeader) {
  if (authorizationHeader.rfind("Basic ", 0) != 0) return false;
  std::string decoded;
  try {
    decoded = crypto::base64Decode(authorizationHeader.substr(6));
  } catch (const InvalidInput&) {
    return false;
  }
  const auto colon = decoded.find(':');
  if (colon == std::string::npos) return false;
  auto c = pool_.acquire();
  auto r = c->exec("SELECT events_secret FROM bridges WHERE id = $1", {id});
  if (r.empty()) return false;
  return crypto::constantTimeEqual(decoded.substr(0, colon), "bridge-" + std::to_string(id)) &
         crypto::constantTimeEqual(decoded.substr(colon + 1), r.text(0, 0));
}

std::string BridgeService::janusConfig(std::int64_t id, const std::string& eventsUrl) {
  const Bridge b = get(id);
  return "# For bridge \"" + b.name + "\" (id " + std::to_string(b.id) + "). Paste into the bridge's\n"
         "# /etc/janus files and restart Janus.\n\n"
         "# janus.jcfg: turn event broadcasting on\n"
         "events: {\n\tbroadcast = true\n}\n\n"
         "# janus.eventhandler.sampleevh.jcfg\n"
         "general: {\n"
         "\tenabled = true\n"
         "\tevents = \"sessions,handles,plugins\"\n"
         "\tgrouping = true\n"
         "\tjson = \"compact\"\n"
         "\tbackend = \"" + eventsUrl + "\"\n"
         "\tbackend_user = \"bridge-" + std::to_string(b.id) + "\"\n"
         "\tbackend_pwd = \"" + b.eventsSecret + "\"\n"
         "}\n";
}

json::ObjectPtr BridgeService::toJson(const Bridge& b) const {
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("id", b.id);
  o->set("name", b.name);
  o->set("type", b.type);
  o->set("url", b.url);
  o->set("admin_url", b.adminUrl);
  o->set("capacity_ports", b.capacityPorts);
  o->set("pool", b.pool);
  o->set("state", b.state);
  o->set("health", b.health);
  o->set("health_cause", opt(b.healthCause));
  o->set("health_message", opt(b.healthMessage));
  o->set("latency_ms", b.latencyMs ? Poco::Dynamic::Var(*b.latencyMs) : Poco::Dynamic::Var());
  o->set("version", opt(b.version));
  o->set("checked_at", opt(b.checkedAt));
  return o;
}

}  // namespace vcrm
