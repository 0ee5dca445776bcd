#include "vcrm/daemon/http_errors.h"

#include "vcrm/common/error.h"
#include "vcrm/daemon/audit.h"
#include "vcrm/daemon/janus.h"
#include "vcrm/licensing/refusal.h"

namespace vcrm::http {

namespace {

constexpr const char* kComponent = "api";

// What an operator should check for each likely cause a bridge failure names.
std::string causeAdvice(const std::string& cause) {
  if (cause == "address") return "check the bridge's address";
  if (cause == "port") return "check that Janus listens on the bridge's port";
  if (cause == "credentials") return "check the bridge's admin secret";
  if (cause == "firewall") return "check that a firewall lets vcrm reach the bridge";
  if (cause == "plugin") return "check the bridge's VideoRoom plugin";
  return "check the bridge's log";
}

// A database error is a 503 only when the database is not there to answer; a value it refused is
// the request's fault, a broken constraint a conflict, anything else our fault.
int dbStatus(const DbError& e) {
  const std::string& state = e.sqlState();
  if (state.empty() || state.rfind("08", 0) == 0 || state.rfind("57P", 0) == 0 || state == "53300") return 503;
  if (state == "40001" || state == "40P01") return 503;  // serialization failure, deadlock: try again
  if (state.rfind("22", 0) == 0) return 400;
  if (state.rfind("23", 0) == 0) return 409;
  return 500;
}

// A file that is not a licence (too big for one included) is a bad request; a licence this
// server must not take (not trusted, not for it, not now) cannot be processed; an older one
// conflicts with the active one.
int licenceStatus(licensing::Reason r) {
  using licensing::Reason;
  switch (r) {
    case Reason::TooLarge:
    case Reason::ArmourMalformed:
    case Reason::EnvelopeMalformed:
    case Reason::PayloadMalformed:
    case Reason::PayloadDuplicateKey:
    case Reason::PayloadUnknownKey:
    case Reason::PayloadWrongType:
    case Reason::PayloadTooDeep:
    case Reason::PayloadNotCanonical:
      return 400;
    case Reason::SequenceNotNewer:
      return 409;
    default:
      return 422;
  }
}

int statusOf(const Error& err) {
  if (const auto* lr = dynamic_cast<const licensing::LicenceRefused*>(&err))
    return licenceStatus(lr->reason());
  if (dynamic_cast<const InvalidInput*>(&err)) return 400;
  if (dynamic_cast<const Unauthenticated*>(&err)) return 401;
  if (dynamic_cast<const Forbidden*>(&err)) return 403;
  if (dynamic_cast<const NotFound*>(&err)) return 404;
  if (dynamic_cast<const MethodNotAllowed*>(&err)) return 405;
  if (dynamic_cast<const Conflict*>(&err)) return 409;
  if (dynamic_cast<const PreconditionFailed*>(&err)) return 412;
  if (dynamic_cast<const TooLarge*>(&err)) return 413;
  if (dynamic_cast<const UnsupportedMediaType*>(&err)) return 415;
  if (dynamic_cast<const Unprocessable*>(&err)) return 422;
  if (dynamic_cast<const Locked*>(&err)) return 423;
  if (dynamic_cast<const RateLimited*>(&err)) return 429;
  if (dynamic_cast<const janus::BridgeError*>(&err)) return 502;
  if (const auto* db = dynamic_cast<const DbError*>(&err)) return dbStatus(*db);
  if (dynamic_cast<const InsufficientStorage*>(&err)) return 507;
  return 500;
}

}  // namespace

Response errorResponse(const std::exception& e, Logger& log) {
  const auto* err = dynamic_cast<const Error*>(&e);
  const int status = err ? statusOf(*err) : 500;
  if (status == 502) {
    const auto& be = static_cast<const janus::BridgeError&>(*err);
    log.warn(kComponent, "BRIDGE_FAILED", be.what());
    std::string message = be.what();
    message += " (likely cause: " + be.cause() + "; " + causeAdvice(be.cause()) + ")";
    auto r = Response::error(502, "bridge_failed", message);
    return r;
  }
  if (const auto* db = dynamic_cast<const DbError*>(err); db && status < 500) {
    log.info(kComponent, "REQUEST_REFUSED_BY_DB", db->what());
    // PostgreSQL's first line names the value it refused ("date/time field value out of range:
    // \"2026-13-45T99:99Z\""); the rest (detail, hint) may name tables and is not shown.
    const std::string first = std::string(db->what()).substr(0, std::string(db->what()).find('\n'));
    return status == 400 ? Response::error(400, "invalid_input", "a value in the request was refused: " + first)
                         : Response::error(409, "conflict", "the change conflicts with stored data: " + first);
  }
  if (const auto* af = dynamic_cast<const AuditWriteFailed*>(err)) {
    // Our fault, but one the operator must hear of by name: nothing changes until it is fixed.
    log.error(kComponent, "REQUEST_FAILED", af->what());
    return Response::error(500, af->code(), af->what());
  }
  if (status == 500 || status == 503) {
    log.error(kComponent, "REQUEST_FAILED", e.what());
    return status == 503 ? Response::error(503, "unavailable", "the database is not answering or is busy; try again shortly")
                         : Response::error(500, "internal_error", "internal error; the appliance log has details");
  }
  auto r = Response::error(status, err->code(), err->what());
  if (const auto* rl = dynamic_cast<const RateLimited*>(err)) {
    r.headers.emplace_back("Retry-After", std::to_string(rl->retryAfterSeconds()));
  } else if (const auto* na = dynamic_cast<const MethodNotAllowed*>(err)) {
    r.headers.emplace_back("Allow", na->allow());
  } else if (const auto* ua = dynamic_cast<const Unauthenticated*>(err); ua && !ua->challenge().empty()) {
    r.headers.emplace_back("WWW-Authenticate", ua->challenge());
  }
  return r;
}

}  // namespace vcrm::http
