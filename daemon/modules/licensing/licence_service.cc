#include "modules/licensing/licence_service.h"

#include <chrono>
#include <filesystem>

#include "vcrm/common/error.h"
#include "vcrm/common/files.h"
#include "vcrm/licensing/licence_file.h"
#include "vcrm/licensing/serial.h"

namespace vcrm {

namespace {

constexpr const char* kComponent = "licensing";

licensing::Keyring loadKeyring(const Config& config) {
  if (config.licenceKeyringFile.empty()) return licensing::Keyring::builtIn();
  try {
    return licensing::Keyring::parse(files::readFile(config.licenceKeyringFile, 1 << 20),
                                     config.licenceKeyringFile);
  } catch (const Error& e) {
    throw StartupError(std::string("licence.keyring: ") + e.what());
  }
}

// The serial in <state>/serial, made at first start.
std::string loadSerial(const Paths& paths, Logger& log) {
  const auto path = paths.serialFile();
  if (!std::filesystem::exists(path)) {
    const std::string serial = licensing::newSerial();
    files::ensureDir(path.parent_path(), 0755);
    files::atomicWrite(path, serial + "\n", 0644);
    log.info(kComponent, "SERIAL_CREATED", "this installation's serial number was made", serial);
    return serial;
  }
  std::string text = files::readFile(path, 256);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (!licensing::isCanonicalSerial(text)) {
    throw StartupError(path.string() +
                       " does not hold a serial number; restore it from a backup of this "
                       "server's state directory (removing it makes a new serial, and the licence "
                       "will not match)");
  }
  return text;
}

}  // namespace

LicenceService::LicenceService(const Config& config, db::Pool& pool, Logger& log)
    : pool_(pool),
      log_(log),
      keyring_(loadKeyring(config)),
      serial_(loadSerial(config.paths, log)) {
  auto c = pool_.acquire();
  auto r = c->exec(
      "INSERT INTO appliance_serials (serial, latest_seen) VALUES ($1, $2) "
      "ON CONFLICT (serial) DO UPDATE SET latest_seen = greatest(appliance_serials.latest_seen, "
      "excluded.latest_seen) "
      "RETURNING latest_seen",
      {serial_, static_cast<long long>(now())});
  auto a = active_.lock();
  a->latestSeen = r.int64(0, 0);
  auto lic =
      c->exec("SELECT file, id FROM licences WHERE serial = $1 AND replaced_at IS NULL", {serial_});
  if (!lic.empty()) a->licence = readStored(lic.text(0, 0), "stored licence " + lic.text(0, 1));
}

std::int64_t LicenceService::now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::optional<licensing::Licence> LicenceService::readStored(const std::string& file,
                                                             const std::string& where) {
  auto r = licensing::readLicence(file, keyring_);
  if (auto* refusal = std::get_if<licensing::Refusal>(&r)) {
    // E.g. its key has been revoked since: the appliance falls back to evaluation limits.
    log_.warn(kComponent, "LICENCE_STORED_REFUSED",
              where + " no longer verifies: " + refusal->message, serial_);
    return std::nullopt;
  }
  return std::get<licensing::Licence>(r);
}

licensing::Licence LicenceService::verified(const std::string& file) {
  auto r = licensing::readLicence(file, keyring_);
  if (auto* refusal = std::get_if<licensing::Refusal>(&r))
    throw licensing::LicenceRefused(*refusal);
  return std::get<licensing::Licence>(r);
}

void LicenceService::noteTime() {
  const std::int64_t t = now();
  {
    auto a = active_.lock();
    if (t <= a->latestSeen) return;
    a->latestSeen = t;
  }
  auto c = pool_.acquire();
  c->exec("UPDATE appliance_serials SET latest_seen = greatest(latest_seen, $2) WHERE serial = $1",
          {serial_, static_cast<long long>(t)});
}

licensing::Status LicenceService::status() {
  auto a = active_.lock();
  return licensing::evaluate(a->licence, now(), a->latestSeen);
}

std::optional<std::string> LicenceService::upgradesUntil() {
  auto a = active_.lock();
  if (!a->licence) return std::nullopt;
  return licensing::formatUtcDate(a->licence->upgradesUntil);
}

json::ObjectPtr LicenceService::describe() {
  const auto s = status();
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("serial", serial_);
  o->set("role", std::string(licensing::roleName(role())));
  o->set("state", std::string(licensing::stateName(s.state)));
  o->set("status", licensing::toJson(s));
  o->set("evaluation_limits", licensing::toJson(licensing::kEvaluationLimits));
  auto c = pool_.acquire();
  auto r = c->exec(
      "SELECT file, rfc3339(applied_at), applied_by FROM licences WHERE serial = $1 AND "
      "replaced_at IS NULL",
      {serial_});
  auto prev = c->exec(
      "SELECT licence_id, sequence, rfc3339(applied_at), rfc3339(replaced_at) FROM licences "
      "WHERE serial = $1 AND replaced_at IS NOT NULL ORDER BY replaced_at DESC, id DESC LIMIT 1",
      {serial_});
  std::optional<licensing::Licence> active;
  { active = active_.lock()->licence; }
  if (active && !r.empty()) {
    auto l = licensing::toJson(*active);
    o->set("active", l);
    o->set("applied_at", r.text(0, 1));
    o->set("applied_by", r.isNull(0, 2) ? Poco::Dynamic::Var() : Poco::Dynamic::Var(r.text(0, 2)));
    o->set("file",
           r.text(0, 0));  // so an admin can keep a copy, as the guide asks before an update
  } else {
    o->set("active", Poco::Dynamic::Var());
    o->set("file", Poco::Dynamic::Var());
  }
  if (!prev.empty()) {
    json::ObjectPtr p = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    p->set("licence_id", prev.text(0, 0));
    p->set("sequence", prev.int64(0, 1));
    p->set("applied_at", prev.text(0, 2));
    p->set("replaced_at", prev.text(0, 3));
    o->set("previous", p);
  } else {
    o->set("previous", Poco::Dynamic::Var());
  }
  return o;
}

json::ObjectPtr LicenceService::preview(const std::string& file) {
  const licensing::Licence candidate = verified(file);
  std::optional<licensing::Licence> active;
  std::int64_t seen = 0;
  {
    auto a = active_.lock();
    active = a->licence;
    seen = a->latestSeen;
  }
  if (auto refusal = licensing::checkApplicable(candidate, active, serial_, role(), now(), seen)) {
    throw licensing::LicenceRefused(*refusal);
  }
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("licence", licensing::toJson(candidate));
  o->set("active", active ? Poco::Dynamic::Var(licensing::toJson(*active)) : Poco::Dynamic::Var());
  o->set("changes", licensing::toJson(licensing::diff(active, candidate)));
  o->set("status_after", licensing::toJson(licensing::evaluate(candidate, now(), seen)));
  return o;
}

json::ObjectPtr LicenceService::apply(const std::string& file, const std::string& user,
                                      const AuditFor& audit) {
  const licensing::Licence candidate = verified(file);
  {
    auto c = pool_.acquire();
    db::Transaction tx(*c);
    // The serial's row serialises concurrent applies; the active licence is read under it.
    auto row = tx.exec("SELECT latest_seen FROM appliance_serials WHERE serial = $1 FOR UPDATE",
                       {serial_});
    const std::int64_t seen = std::max(row.int64(0, 0), active_.lock()->latestSeen);
    auto cur = tx.exec("SELECT file, id FROM licences WHERE serial = $1 AND replaced_at IS NULL",
                       {serial_});
    std::optional<licensing::Licence> active;
    if (!cur.empty()) active = readStored(cur.text(0, 0), "stored licence " + cur.text(0, 1));
    if (auto refusal =
            licensing::checkApplicable(candidate, active, serial_, role(), now(), seen)) {
      throw licensing::LicenceRefused(*refusal);
    }
    tx.exec("UPDATE licences SET replaced_at = now() WHERE serial = $1 AND replaced_at IS NULL",
            {serial_});
    tx.exec(
        "INSERT INTO licences (serial, licence_id, sequence, file, applied_by) VALUES ($1, $2, $3, "
        "$4, $5)",
        {serial_, candidate.licenceId, static_cast<long long>(candidate.sequence), file, user});
    audit(candidate.licenceId).commit(tx);
    active_.lock()->licence = candidate;
  }
  log_.info(kComponent, "LICENCE_APPLIED",
            "licence " + candidate.licenceId + " sequence " + std::to_string(candidate.sequence) +
                " applied by " + user,
            serial_);
  return describe();
}

}  // namespace vcrm
