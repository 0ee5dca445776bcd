// The vendor keys an appliance trusts to sign licences, by key id, with rotation (several keys)
// and revocation (a key id that is no longer trusted, whatever it signed). Text form, one entry
// a line:
//   key <key-id> <base64 Ed25519 public key>
//   revoked <key-id>
// '#' starts a comment. A release build is given its keyring at build time
// (-DVCRM_LICENCE_KEYRING=FILE) and an installation may name another (`licence.keyring`).
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "vcrm/common/crypto.h"

namespace vcrm::licensing {

// Key ids are 1 to 32 of a-z, 0-9 and '-'.
bool validKeyId(std::string_view id);

class Keyring {
 public:
  // Throws InvalidInput naming `origin` and the line for anything it cannot use.
  static Keyring parse(std::string_view text, const std::string& origin);
  // The keyring this build was given (the repository's test key unless the build chose another).
  static Keyring builtIn();
  static std::string_view builtInText();

  void add(const std::string& keyId, const crypto::Bytes& publicKey32);
  void revoke(const std::string& keyId);

  enum class Trust { Trusted, Unknown, Revoked };
  Trust trust(const std::string& keyId) const;
  // The public key of a trusted key id; nullopt otherwise.
  std::optional<crypto::Bytes> publicKey(const std::string& keyId) const;
  const std::map<std::string, crypto::Bytes>& keys() const { return keys_; }
  const std::set<std::string>& revoked() const { return revoked_; }

 private:
  std::map<std::string, crypto::Bytes> keys_;
  std::set<std::string> revoked_;
};

// A vendor signing key. Text form: "vcrm-licence-signing-key <key-id> <base64 seed>".
struct SigningKey {
  std::string keyId;
  crypto::Ed25519PrivateKey key;

  static SigningKey generate(const std::string& keyId);
  static SigningKey parse(std::string_view text, const std::string& origin);  // throws InvalidInput
  std::string text() const;         // the private key file (keep it secret)
  std::string keyringLine() const;  // "key <id> <public>" for the appliances' keyring
};

}  // namespace vcrm::licensing
