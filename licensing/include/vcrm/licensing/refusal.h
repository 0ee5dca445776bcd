// Why a licence file is not accepted: a stable code for programs and a sentence for the admin
// that says what is wrong and what to do. A refusal is an expected outcome, so it is a value.
#pragma once

#include <string>
#include <string_view>

#include "vcrm/common/error.h"

namespace vcrm::licensing {

enum class Reason {
  TooLarge,           // the file is bigger than any licence
  ArmourMalformed,    // no licence block, a broken begin/end line, a non-base64 body
  EnvelopeMalformed,  // the decoded block is not a signed licence (wrong magic, lengths)
  KeyUnknown,         // signed with a key this appliance does not know
  KeyRevoked,         // signed with a key the vendor has revoked
  SignatureInvalid,   // the bytes are not the ones the vendor signed
  PayloadMalformed,   // signed, but not a licence payload (syntax, NUL, BOM, bad value)
  PayloadDuplicateKey,
  PayloadUnknownKey,
  PayloadWrongType,
  PayloadTooDeep,
  PayloadNotCanonical,
  FormatUnsupported,   // a licence format newer than this release reads
  SerialNotCanonical,  // the serial inside is not in canonical form
  SerialMismatch,      // made for another server
  RoleMismatch,        // primary licence on a redundant server or the other way round
  NotYetValid,
  Expired,
  SequenceNotNewer,  // not newer than the active licence (a replay of an older file)
};

// Stable lower-case code, e.g. "licence_expired".
std::string_view reasonCode(Reason r);

struct Refusal {
  Reason reason;
  std::string message;
};

// A refusal where a caller must stop (an API request): code() is reasonCode(), what() the
// message. The HTTP status for each reason is chosen in daemon/src/http_errors.cc.
class LicenceRefused : public Error {
 public:
  explicit LicenceRefused(const Refusal& r)
      : Error(std::string(reasonCode(r.reason)), r.message), reason_(r.reason) {}
  Reason reason() const noexcept { return reason_; }

 private:
  Reason reason_;
};

}  // namespace vcrm::licensing
