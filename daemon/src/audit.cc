#include "vcrm/daemon/audit.h"

#include "vcrm/daemon/auth.h"

namespace vcrm {

namespace {

constexpr const char* kComponent = "audit";

const char* outcomeOf(int status) {
  return status < 400 ? "ok" : (status == 401 || status == 403) ? "denied" : "failed";
}

std::vector<db::Param> insertParams(const AuditEntry& e) {
  return {e.username, e.remoteAddr, e.method, e.path.substr(0, 512),
          e.action,   e.target,     e.status, outcomeOf(e.status)};
}

constexpr db::Sql kInsert =
    "INSERT INTO audit_log (username, remote_addr, method, path, action, target, status, outcome) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

}  // namespace

AuditedCommit::AuditedCommit(AuditLog& log, AuditEntry entry)
    : state_(std::make_shared<State>(State{&log, std::move(entry)})) {}

void AuditedCommit::commit(db::Transaction& tx) const {
  if (!state_ || state_->written) {
    tx.commit();
    return;
  }
  state_->log->recordIn(tx, state_->entry);
  tx.commit();
  state_->written = true;
}

void AuditLog::recordIn(db::Transaction& tx, const AuditEntry& e) {
  try {
    tx.exec(kInsert, insertParams(e));
  } catch (const DbError& ex) {
    log_.error(kComponent, "AUDIT_WRITE_FAILED",
               "could not write the audit row of " + e.action +
                   ", so the change is rolled back: " + ex.what());
    throw AuditWriteFailed(e.action);
  }
}

void AuditLog::record(const AuditEntry& e) {
  try {
    pool_.acquire()->exec(kInsert, insertParams(e));
  } catch (const std::exception& ex) {
    log_.error(kComponent, "AUDIT_WRITE_FAILED",
               std::string("could not write audit row for ") + e.action + ": " + ex.what());
  }
}

void AuditLog::recordRefusal(const AuditEntry& e) {
  // The key names the address as the sign-in throttle counts it: a host owning a whole IPv6
  // /64 cannot make a row per address.
  const std::string key =
      LoginThrottle::addressGroup(e.remoteAddr) + " " + e.action + " " + std::to_string(e.status);
  try {
    auto params = insertParams(e);
    params.emplace_back(key);
    // The name tried at sign-in stays only while every collapsed attempt tried the same one.
    pool_.acquire()->exec(
        "INSERT INTO audit_log (username, remote_addr, method, path, action, target, status, "
        "outcome, "
        "  collapse_key, collapse_minute, last_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, date_trunc('minute', now()), now()) "
        "ON CONFLICT (collapse_key, collapse_minute) WHERE collapse_key IS NOT NULL DO UPDATE SET "
        "  count = audit_log.count + 1, last_at = excluded.last_at, "
        "  username = CASE WHEN audit_log.username IS NOT DISTINCT FROM excluded.username "
        "                  THEN audit_log.username END",
        params);
  } catch (const std::exception& ex) {
    log_.error(kComponent, "AUDIT_WRITE_FAILED",
               std::string("could not write audit row for ") + e.action + ": " + ex.what());
  }
}

std::int64_t AuditLog::prune(const Retention& r) {
  std::int64_t byAge = 0;
  std::int64_t byCap = 0;
  // Each batch is a statement of its own on a lease of its own: the pruner never holds a
  // connection or long row locks while the API writes.
  for (int i = 0; i < r.maxBatches; ++i) {
    const long n =
        pool_.acquire()
            ->exec(
                "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log "
                "  WHERE at < now() - make_interval(days => $1::int) ORDER BY id LIMIT $2)",
                {r.days, r.batch})
            .affected();
    byAge += n;
    if (n < r.batch) break;
  }
  for (int i = 0; i < r.maxBatches; ++i) {
    const long n =
        pool_.acquire()
            ->exec(
                "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE id <= "
                "  (SELECT id FROM audit_log ORDER BY id DESC OFFSET $1 LIMIT 1) "
                "  ORDER BY id LIMIT $2)",
                {r.maxRows, r.batch})
            .affected();
    byCap += n;
    if (n < r.batch) break;
  }
  if (byAge + byCap > 0) {
    log_.info(kComponent, "AUDIT_PRUNED",
              "pruned " + std::to_string(byAge) + " audit row(s) older than " +
                  std::to_string(r.days) + " days and " + std::to_string(byCap) +
                  " beyond the cap of " + std::to_string(r.maxRows));
  }
  return byAge + byCap;
}

json::ObjectPtr AuditLog::list(const Filter& f) {
  auto c = pool_.acquire();
  auto r = c->exec(
      "SELECT id, rfc3339(at), username, "
      "remote_addr, method, path, action, target, status, outcome, count, rfc3339(last_at) FROM "
      "audit_log "
      "WHERE ($1::bigint IS NULL OR id < $1) AND ($2::text IS NULL OR username = $2) "
      "  AND ($3::text IS NULL OR action = $3) "
      "ORDER BY id DESC LIMIT $4",
      {f.beforeId, f.username, f.action, f.limit});
  json::ArrayPtr entries = new json::Array;
  for (int i = 0; i < r.rows(); ++i) {
    json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("id", r.int64(i, 0));
    o->set("at", r.text(i, 1));
    o->set("username", r.isNull(i, 2) ? Poco::Dynamic::Var() : Poco::Dynamic::Var(r.text(i, 2)));
    o->set("remote_addr", r.text(i, 3));
    o->set("method", r.text(i, 4));
    o->set("path", r.text(i, 5));
    o->set("action", r.text(i, 6));
    o->set("target", r.isNull(i, 7) ? Poco::Dynamic::Var() : Poco::Dynamic::Var(r.text(i, 7)));
    o->set("status", r.int64(i, 8));
    o->set("outcome", r.text(i, 9));
    o->set("count", r.int64(i, 10));
    o->set("last_at", r.isNull(i, 11) ? Poco::Dynamic::Var() : Poco::Dynamic::Var(r.text(i, 11)));
    entries->add(o);
  }
  json::ObjectPtr out = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  out->set("entries", entries);
  if (r.rows() == f.limit && r.rows() > 0) {
    out->set("next_before_id", r.int64(r.rows() - 1, 0));
  } else {
    out->set("next_before_id", Poco::Dynamic::Var());
  }
  return out;
}

}  // namespace vcrm
