// A signed licence file. Inside the armour:
//   "VCRMLIC1" | key-id length (1 byte) | key id | Ed25519 signature (64) | payload length
//   (2 bytes, big-endian) | payload (canonical JSON)
// The signature covers kSignatureDomain, the key id and the payload; it is checked against the
// keyring before a byte of the payload is parsed.
#pragma once

#include <string>
#include <string_view>
#include <variant>

#include "vcrm/licensing/keyring.h"
#include "vcrm/licensing/licence.h"
#include "vcrm/licensing/refusal.h"

namespace vcrm::licensing {

inline constexpr std::string_view kEnvelopeMagic = "VCRMLIC1";
inline constexpr std::string_view kSignatureDomain = "vcrm licence signature v1";

// What a signature covers: the domain, a NUL, the key id, a NUL, the payload.
std::string signedMessage(std::string_view keyId, std::string_view payload);

// The licence file text for `l`, signed with `key` (l.keyId must be the key's id).
std::string issueLicence(const Licence& l, const SigningKey& key);

// The envelope around already-signed parts (tests build broken ones with it).
std::string envelope(std::string_view keyId, std::string_view signature, std::string_view payload);

// Reads and verifies a licence file: armour, envelope, key, signature, then the payload.
std::variant<Licence, Refusal> readLicence(std::string_view fileText, const Keyring& keyring);

}  // namespace vcrm::licensing
