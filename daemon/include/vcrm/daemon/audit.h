// The audit log: who did what, when, from where, with what outcome, for every state-changing
// request. A change in the database and its row commit in one transaction (AuditedCommit);
// refusals of requests without a session are collapsed so they cannot flood it; old rows are
// pruned by age and by a row cap.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "vcrm/common/db.h"
#include "vcrm/common/error.h"
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

// The audit row of a change could not be written, so the change was not made (500
// "audit_failed" at the API boundary).
class AuditWriteFailed : public Error {
 public:
  explicit AuditWriteFailed(const std::string& action)
      : Error("audit_failed",
              "the change was not made because its audit record could not be written (" + action +
                  "); the appliance log has details") {}
};

class AuditLog;

// How a service commits a change a request asked for: `commit(tx)` instead of `tx.commit()`
// writes the request's audit row into the same transaction first, so the change and its row
// commit or roll back together (a failed row fails the request and leaves nothing changed).
// The first commit through it writes the row; later ones (a change made in several
// transactions, such as a series cancelled one booking at a time) only commit. Copies share
// that state. A default-constructed one writes no row: changes no request asked for (the
// scheduler's, a bridge's events).
class AuditedCommit {
 public:
  AuditedCommit() = default;
  AuditedCommit(AuditLog& log, AuditEntry entry);
  void commit(db::Transaction& tx) const;
  // Whether a transaction committed with the row.
  bool committed() const { return state_ && state_->written; }

 private:
  struct State {
    AuditLog* log;
    AuditEntry entry;
    bool written = false;
  };
  std::shared_ptr<State> state_;
};

class AuditLog {
 public:
  AuditLog(db::Pool& pool, Logger& log) : pool_(pool), log_(log) {}

  // The row of a change, inside the transaction that makes it: AuditWriteFailed (or the
  // DbError of a lost connection) when it cannot be written, and `tx` must then roll back.
  void recordIn(db::Transaction& tx, const AuditEntry& e);
  // A row on a connection of its own, for an outcome that changed nothing in the database (a
  // refused or failed request) or changed something outside it (an upload's file). Never
  // throws: a failure is logged as AUDIT_WRITE_FAILED. The caller must hold no lease.
  void record(const AuditEntry& e);
  // A refusal of a request that had no valid session (a 401, a malformed sign-in, a refused
  // bridge event post, a body refused before the API): at most one row per address (IPv6 by
  // /64), action and status per minute, counting the refusals it stands for. Never throws.
  void recordRefusal(const AuditEntry& e);

  struct Retention {
    int days = 365;
    std::int64_t maxRows = 1000000;
    int batch = 5000;      // rows per DELETE, each its own transaction
    int maxBatches = 200;  // per call: a huge backlog is worked off over several passes
  };
  // Deletes rows older than `days`, then the oldest beyond `maxRows`; returns how many.
  std::int64_t prune(const Retention& r);

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
