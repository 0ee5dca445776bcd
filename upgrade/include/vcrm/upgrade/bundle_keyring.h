// The public keys an appliance trusts to sign upgrade bundles, by key id: several keys for
// rotation, and revocation of a key id whatever it signed. Text form (README, "Bundle
// keyring"), one entry a line, '#' starts a comment:
//   key <key-id> ed25519 <base64 32-byte public key>
//   revoked <key-id>
// The vendor's signing key is a file of one line "vcrm-bundle-signing-key <key-id> <base64
// seed>". The repository's TEST pair is upgrade/keys/vcrm-test-bundle.{key,pub}.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "vcrm/common/crypto.h"

namespace vcrm::upgrade {

// Key ids are 1 to 32 of a-z, 0-9 and '-'.
bool validBundleKeyId(std::string_view id);

class BundleKeyring {
 public:
  // Throws InvalidInput naming `origin` and the line for anything it cannot use.
  static BundleKeyring parse(std::string_view text, const std::string& origin);

  void add(const std::string& keyId, const crypto::Bytes& publicKey32);
  void revoke(const std::string& keyId);

  enum class Trust { Trusted, Unknown, Revoked };
  [[nodiscard]] Trust trust(const std::string& keyId) const;
  // The public key of a trusted key id; nullopt for an unknown or revoked one.
  [[nodiscard]] std::optional<crypto::Bytes> publicKey(const std::string& keyId) const;
  [[nodiscard]] std::string text() const;  // the file form of this keyring
  [[nodiscard]] bool hasKeys() const { return !keys_.empty(); }  // trusts any key at all

 private:
  std::map<std::string, crypto::Bytes> keys_;
  std::set<std::string> revoked_;
};

// A vendor's bundle signing key.
struct BundleSigningKey {
  std::string keyId;
  crypto::Ed25519PrivateKey key;

  static BundleSigningKey generate(const std::string& keyId);  // throws InvalidInput
  static BundleSigningKey parse(std::string_view text, const std::string& origin);
  [[nodiscard]] std::string text() const;         // the private key file (keep it secret)
  [[nodiscard]] std::string keyringLine() const;  // "key <id> ed25519 <public>"
};

}  // namespace vcrm::upgrade
