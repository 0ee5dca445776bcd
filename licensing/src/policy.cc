#include "vcrm/licensing/policy.h"

#include <set>

#include "vcrm/licensing/serial.h"

namespace vcrm::licensing {

std::string_view reasonCode(Reason r) {
  switch (r) {
    case Reason::TooLarge:
      return "licence_too_large";
    case Reason::ArmourMalformed:
      return "licence_armour_malformed";
    case Reason::EnvelopeMalformed:
      return "licence_envelope_malformed";
    case Reason::KeyUnknown:
      return "licence_key_unknown";
    case Reason::KeyRevoked:
      return "licence_key_revoked";
    case Reason::SignatureInvalid:
      return "licence_signature_invalid";
    case Reason::PayloadMalformed:
      return "licence_malformed";
    case Reason::PayloadDuplicateKey:
      return "licence_duplicate_key";
    case Reason::PayloadUnknownKey:
      return "licence_unknown_key";
    case Reason::PayloadWrongType:
      return "licence_wrong_type";
    case Reason::PayloadTooDeep:
      return "licence_too_deep";
    case Reason::PayloadNotCanonical:
      return "licence_not_canonical";
    case Reason::FormatUnsupported:
      return "licence_format_unsupported";
    case Reason::SerialNotCanonical:
      return "licence_serial_not_canonical";
    case Reason::SerialMismatch:
      return "licence_serial_mismatch";
    case Reason::RoleMismatch:
      return "licence_role_mismatch";
    case Reason::NotYetValid:
      return "licence_not_yet_valid";
    case Reason::Expired:
      return "licence_expired";
    case Reason::SequenceNotNewer:
      return "licence_sequence_not_newer";
  }
  return "licence_refused";
}

std::optional<Refusal> checkApplicable(const Licence& candidate,
                                       const std::optional<Licence>& active,
                                       std::string_view serial, Role role, std::int64_t now,
                                       std::int64_t latestSeenTime) {
  if (!isCanonicalSerial(candidate.serial)) {
    return Refusal{
        Reason::SerialNotCanonical,
        "the licence names the serial \"" + candidate.serial +
            "\", which is not a serial number in canonical form: the vendor's tool did not "
            "make this file; ask the vendor for a new one"};
  }
  if (candidate.serial != serial) {
    return Refusal{Reason::SerialMismatch,
                   "the licence is for the server with serial " + candidate.serial +
                       ", and this server's serial is " + std::string(serial) +
                       ": upload the file made for this server, or ask the vendor for "
                       "one for " +
                       std::string(serial)};
  }
  if (candidate.peerSerial && !isCanonicalSerial(*candidate.peerSerial)) {
    return Refusal{Reason::SerialNotCanonical,
                   "the licence names the peer serial \"" + *candidate.peerSerial +
                       "\", which is not in canonical form; ask the vendor for a new file"};
  }
  if (candidate.role != role) {
    return Refusal{Reason::RoleMismatch,
                   "the licence is for a " + std::string(roleName(candidate.role)) +
                       " server, and this server is the " + std::string(roleName(role)) +
                       ": upload the " + std::string(roleName(role)) +
                       " server's licence file here"};
  }
  const std::int64_t t = trustedNow(now, latestSeenTime);
  if (t < candidate.validFrom) {
    return Refusal{Reason::NotYetValid, "the licence is valid from " +
                                            formatUtcTime(candidate.validFrom) +
                                            " and the appliance's time is " + formatUtcTime(t) +
                                            ": apply it from then on, or check the server's clock"};
  }
  if (candidate.validUntil && t >= *candidate.validUntil) {
    return Refusal{Reason::Expired, "the licence expired at " +
                                        formatUtcTime(*candidate.validUntil) +
                                        " (the appliance's time is " + formatUtcTime(t) +
                                        "): ask the vendor for a current licence"};
  }
  if (active && candidate.sequence <= active->sequence) {
    return Refusal{
        Reason::SequenceNotNewer,
        "the licence has sequence number " + std::to_string(candidate.sequence) +
            ", not newer than the active licence's " + std::to_string(active->sequence) +
            (candidate.sequence == active->sequence ? " (it is the active licence or a copy of it)"
                                                    : " (it is an older licence)") +
            ": upload the newest licence file the vendor sent"};
  }
  return std::nullopt;
}

std::string_view stateName(State s) {
  switch (s) {
    case State::Evaluation:
      return "evaluation";
    case State::NotYetValid:
      return "not_yet_valid";
    case State::Valid:
      return "valid";
    case State::Grace:
      return "grace";
    case State::Expired:
      return "expired";
  }
  return "?";
}

namespace {

std::int64_t daysUntil(std::int64_t from, std::int64_t to) {
  return to <= from ? 0 : (to - from + 86399) / 86400;
}

std::string limitsText(const Limits& l) {
  return std::to_string(l.concurrentPorts) + " concurrent ports and " + std::to_string(l.bridges) +
         " bridges";
}

}  // namespace

Status evaluate(const std::optional<Licence>& active, std::int64_t now,
                std::int64_t latestSeenTime) {
  Status s;
  if (!active) {
    s.message = "no licence is applied: the appliance runs in evaluation mode (" +
                limitsText(kEvaluationLimits) + "); apply a licence file for this server's serial";
    return s;
  }
  const std::int64_t t = trustedNow(now, latestSeenTime);
  const Limits licensed{active->features.concurrentPorts, active->features.bridges,
                        active->features.redundancy};
  if (t < active->validFrom) {
    s.state = State::NotYetValid;
    s.message = "the licence is valid from " + formatUtcTime(active->validFrom) +
                "; until then evaluation limits apply";
    return s;
  }
  if (!active->validUntil || t < *active->validUntil) {
    s.state = State::Valid;
    s.limits = licensed;
    s.endsAt = active->validUntil;
    if (s.endsAt) s.daysLeft = daysUntil(t, *s.endsAt);
    s.message = s.endsAt ? "licensed until " + formatUtcTime(*s.endsAt)
                         : std::string("licensed with no end date");
    return s;
  }
  const std::int64_t graceEnd =
      *active->validUntil + static_cast<std::int64_t>(active->graceDays) * 86400;
  if (t < graceEnd) {
    s.state = State::Grace;
    s.limits = licensed;
    s.endsAt = graceEnd;
    s.daysLeft = daysUntil(t, graceEnd);
    s.message = "the licence expired at " + formatUtcTime(*active->validUntil) +
                "; its grace period ends at " + formatUtcTime(graceEnd) +
                ", then only evaluation limits apply: apply a renewed licence";
    return s;
  }
  s.state = State::Expired;
  s.message = "the licence expired at " + formatUtcTime(*active->validUntil) +
              " and its grace period is over: new bookings get evaluation limits (" +
              limitsText(kEvaluationLimits) + ") and live calls continue; apply a renewed licence";
  return s;
}

json::ObjectPtr toJson(const Limits& l) {
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("concurrent_ports", l.concurrentPorts);
  o->set("bridges", l.bridges);
  o->set("redundancy", l.redundancy);
  return o;
}

json::ObjectPtr toJson(const Status& s) {
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("state", std::string(stateName(s.state)));
  o->set("limits", toJson(s.limits));
  o->set("ends_at", s.endsAt ? Poco::Dynamic::Var(formatUtcTime(*s.endsAt)) : Poco::Dynamic::Var());
  o->set("days_left", s.daysLeft ? Poco::Dynamic::Var(*s.daysLeft) : Poco::Dynamic::Var());
  o->set("message", s.message);
  return o;
}

namespace {

// The licence flattened to field -> value, features as "features.<name>".
std::map<std::string, Poco::Dynamic::Var> flatten(const json::ObjectPtr& o,
                                                  const std::string& prefix = {}) {
  std::map<std::string, Poco::Dynamic::Var> out;
  for (const auto& [k, v] : *o) {
    if (v.type() == typeid(json::ObjectPtr)) {
      for (auto& kv : flatten(v.extract<json::ObjectPtr>(), prefix + k + "."))
        out.insert(std::move(kv));
    } else {
      out[prefix + k] = v;
    }
  }
  return out;
}

}  // namespace

std::vector<Change> diff(const std::optional<Licence>& active, const Licence& candidate) {
  auto after = flatten(toJson(candidate));
  std::map<std::string, Poco::Dynamic::Var> before;
  if (active) {
    before = flatten(toJson(*active));
  } else {
    before["features.concurrent_ports"] = kEvaluationLimits.concurrentPorts;
    before["features.bridges"] = kEvaluationLimits.bridges;
    before["features.redundancy"] = kEvaluationLimits.redundancy;
  }
  std::set<std::string> fields;
  for (const auto& kv : after) fields.insert(kv.first);
  for (const auto& kv : before) fields.insert(kv.first);
  std::vector<Change> out;
  for (const auto& f : fields) {
    const auto b = before.find(f);
    const auto a = after.find(f);
    Poco::Dynamic::Var bv = b == before.end() ? Poco::Dynamic::Var() : b->second;
    Poco::Dynamic::Var av = a == after.end() ? Poco::Dynamic::Var() : a->second;
    if (bv.isEmpty() && av.isEmpty()) continue;
    if (!bv.isEmpty() && !av.isEmpty() && bv.toString() == av.toString() && bv.type() == av.type())
      continue;
    out.push_back({f, bv, av});
  }
  return out;
}

json::ArrayPtr toJson(const std::vector<Change>& changes) {
  json::ArrayPtr a = new json::Array;
  for (const auto& c : changes) {
    json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("field", c.field);
    o->set("before", c.before);
    o->set("after", c.after);
    a->add(o);
  }
  return a;
}

}  // namespace vcrm::licensing
