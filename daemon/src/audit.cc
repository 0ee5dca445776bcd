#include "vcrm/daemon/audit.h"

namespace vcrm {

void AuditLog::record(const AuditEntry& e) {
  const char* outcome = e.status < 400 ? "ok" : (e.status == 401 || e.status == 403) ? "denied" : "failed";
  try {
    auto c = pool_.acquire();
    c->exec(
        "INSERT INTO audit_log (username, remote_addr, method, path, action, target, status, "
        "outcome) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        {e.username, e.remoteAddr, e.method, e.path.substr(0, 512), e.action, e.target, e.status,
         outcome});
  } catch (const std::exception& ex) {
    log_.error("audit", "AUDIT_WRITE_FAILED",
               std::string("could not write audit row for ") + e.action + ": " + ex.what());
  }
}

json::ObjectPtr AuditLog::list(const Filter& f) {
  auto c = pool_.acquire();
  auto r = c->exec(
      "SELECT id, rfc3339(at), username, "
      "remote_addr, method, path, action, target, status, outcome FROM audit_log "
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
