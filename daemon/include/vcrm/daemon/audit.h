// The audit log: one row per state-changing request (who, what, when, from where, outcome).
#pragma once

#include <optional>
#include <string>

#include "vcrm/common/db.h"
#include "vcrm/common/json.h"
#include "vcrm/common/log.h"

namespace vcrm {

struct AuditEntry {
  std::optional<std::string> username;
  std::string remoteAddr;
  std::string method;
  std::string path;
  std::string action;
  std::optional<std::string> target;
  int status = 0;
};

class AuditLog {
 public:
  AuditLog(db::Pool& pool, Logger& log) : pool_(pool), log_(log) {}
  // Never throws: a failure to audit is logged as an error for the operator.
  void record(const AuditEntry& e);

  struct Filter {
    int limit = 100;
    std::optional<std::int64_t> beforeId;
    std::optional<std::string> username;
    std::optional<std::string> action;
  };
  // Newest first, as {"entries":[...], "next_before_id": n|null}.
  json::ObjectPtr list(const Filter& f);

 private:
  db::Pool& pool_;
  Logger& log_;
};

}  // namespace vcrm
