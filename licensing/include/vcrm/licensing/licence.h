// A licence: what the vendor signed for one server. Its payload is canonical JSON (sorted
// keys, no blanks, integers only) read by a strict parser of our own: duplicate and unknown
// keys, wrong types, over-long values and deep nesting are refused, each with its reason.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "vcrm/common/json.h"
#include "vcrm/licensing/refusal.h"

namespace vcrm::licensing {

inline constexpr int kLicenceFormat = 1;
inline constexpr std::size_t kMaxPayloadBytes = 8 * 1024;
inline constexpr int kMaxPayloadDepth = 3;  // the payload object, features, one more for growth

enum class Role { Primary, Redundant };
std::string_view roleName(Role r);
std::optional<Role> parseRole(std::string_view text);

// Capacities and switches. The first three are enforced; further named features (integers or
// booleans) may be added by the vendor and are shown in the preview.
struct Features {
  std::int64_t concurrentPorts = 0;
  std::int64_t bridges = 0;
  bool redundancy = false;
  std::map<std::string, std::variant<std::int64_t, bool>> more;
  bool operator==(const Features&) const = default;
};

struct Licence {
  int format = kLicenceFormat;
  std::string licenceId;      // the vendor's reference, e.g. "L-2026-0042"
  std::string keyId;          // the vendor key that signs it
  std::int64_t sequence = 1;  // grows with every licence for this serial
  std::string serial;
  Role role = Role::Primary;
  std::optional<std::string> peerSerial;  // the other server of a redundant pair
  std::string customer;
  std::int64_t issuedAt = 0;  // seconds since the epoch, UTC
  std::int64_t validFrom = 0;
  std::optional<std::int64_t> validUntil;  // exclusive; none: perpetual
  int graceDays = 0;
  std::int64_t upgradesUntil = 0;  // a date (midnight UTC): the newest release date entitled
  Features features;
  bool operator==(const Licence&) const = default;
};

// The canonical payload bytes of `l` (what the vendor signs).
std::string canonicalPayload(const Licence& l);

// Reads a payload strictly. Only called on bytes whose signature has been verified.
std::variant<Licence, Refusal> parsePayload(std::string_view bytes);

// The licence as JSON for the API and the tool (times in RFC 3339, dates as YYYY-MM-DD).
json::ObjectPtr toJson(const Licence& l);

// "2026-03-01T00:00:00Z" <-> seconds; "2026-03-01" <-> seconds at midnight UTC. nullopt for
// anything else, including impossible dates.
std::optional<std::int64_t> parseUtcTime(std::string_view text);
std::optional<std::int64_t> parseUtcDate(std::string_view text);
std::string formatUtcTime(std::int64_t t);
std::string formatUtcDate(std::int64_t t);

}  // namespace vcrm::licensing
