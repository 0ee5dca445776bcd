// Pieces of the bundle format shared by its parser and its reader/writer. Internal to
// vcrm_upgrade.
#pragma once

#include <string>
#include <string_view>

namespace vcrm::upgrade {

struct SignatureBlock {
  std::string keyId;
  std::string signature;  // 64 bytes
};

// u16 key id length, the key id, the 64-byte Ed25519 signature.
std::string signatureBlock(std::string_view keyId, std::string_view signature);
SignatureBlock parseSignatureBlock(std::string_view bytes);  // throws BundleRefused
// What the signature covers: the domain, the header, the key id and the manifest text.
std::string signedMessage(std::string_view headerBytes, std::string_view keyId,
                          std::string_view manifestText);

}  // namespace vcrm::upgrade
