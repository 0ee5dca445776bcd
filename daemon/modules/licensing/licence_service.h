// This server's serial number and licence: made and kept at start, read by the API and by
// admission, replaced atomically by an admin (the previous file is kept in the database).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "vcrm/common/config.h"
#include "vcrm/common/db.h"
#include "vcrm/common/guarded.h"
#include "vcrm/common/json.h"
#include "vcrm/common/log.h"
#include "vcrm/daemon/audit.h"
#include "vcrm/licensing/keyring.h"
#include "vcrm/licensing/policy.h"

namespace vcrm {

class LicenceService {
 public:
  // Reads (or at first start makes) the serial, records it in the database, loads the active
  // licence. Throws StartupError when the serial file or the keyring cannot be used.
  LicenceService(const Config& config, db::Pool& pool, Logger& log);

  const std::string& serial() const { return serial_; }
  // A standalone server is the primary; the redundancy module will say otherwise.
  licensing::Role role() const { return licensing::Role::Primary; }

  // The state and limits now (the clock, never before the latest time seen).
  licensing::Status status();
  licensing::Limits limits() { return status().limits; }
  // The active licence's "upgrades until" date (YYYY-MM-DD) that upgrade bundles are checked
  // against; nullopt without an active licence (evaluation sets no date).
  std::optional<std::string> upgradesUntil();

  // GET /api/v1/license.
  json::ObjectPtr describe();
  // The parsed licence and what it changes; throws LicenceRefused if it would be refused.
  json::ObjectPtr preview(const std::string& file);
  // Makes `file` the active licence (one transaction; the previous one is kept); throws
  // LicenceRefused and changes nothing if it would be refused.
  // The audit row of an apply, given the licence id once the file is verified; it is written
  // in the apply's own transaction.
  using AuditFor = std::function<AuditedCommit(const std::string& licenceId)>;
  json::ObjectPtr apply(const std::string& file, const std::string& user, const AuditFor& audit);

  // Records the clock's time as seen (never moving it back). Called periodically.
  void noteTime();

 private:
  struct Active {
    std::optional<licensing::Licence> licence;
    std::int64_t latestSeen = 0;
  };
  licensing::Licence verified(const std::string& file);
  std::optional<licensing::Licence> readStored(const std::string& file, const std::string& where);
  static std::int64_t now();

  db::Pool& pool_;
  Logger& log_;
  licensing::Keyring keyring_;
  std::string serial_;
  Guarded<Active> active_;
};

}  // namespace vcrm
