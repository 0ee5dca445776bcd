#include "vcrm/upgrade/bundle_keyring.h"

#include <algorithm>
#include <sstream>
#include <vector>

#include "vcrm/common/error.h"

namespace vcrm::upgrade {

namespace {

constexpr std::string_view kSigningKeyTag = "vcrm-bundle-signing-key";
constexpr std::string_view kAlgorithm = "ed25519";

// The lines of `text` that say something, split on blanks, with their 1-based line numbers.
std::vector<std::pair<int, std::vector<std::string>>> meaningfulLines(std::string_view text) {
  std::vector<std::pair<int, std::vector<std::string>>> out;
  std::istringstream in{std::string(text)};
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    line = line.substr(0, line.find('#'));
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string word; words >> word;) w.push_back(word);
    if (!w.empty()) out.emplace_back(number, std::move(w));
  }
  return out;
}

crypto::Bytes rawKey(const std::string& base64, const std::string& where) {
  crypto::Bytes raw;
  try {
    raw = crypto::base64Decode(base64);
  } catch (const InvalidInput&) {
    throw InvalidInput(where + ": the key is not base64");
  }
  if (raw.size() != 32) {
    throw InvalidInput(where + ": an Ed25519 key is 32 bytes, this one " +
                       std::to_string(raw.size()));
  }
  return raw;
}

void requireKeyId(const std::string& id, const std::string& where) {
  if (!validBundleKeyId(id)) {
    throw InvalidInput(where + ": \"" + id.substr(0, 40) +
                       "\" is not a key id (1 to 32 of a-z, 0-9 and -)");
  }
}

}  // namespace

bool validBundleKeyId(std::string_view id) {
  return !id.empty() && id.size() <= 32 && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

BundleKeyring BundleKeyring::parse(std::string_view text, const std::string& origin) {
  BundleKeyring ring;
  for (const auto& [number, w] : meaningfulLines(text)) {
    const std::string where = origin + " line " + std::to_string(number);
    if (w.size() == 4 && w[0] == "key" && w[2] == kAlgorithm) {
      requireKeyId(w[1], where);
      if (ring.keys_.count(w[1]) != 0) {
        throw InvalidInput(where + ": key id \"" + w[1] + "\" is listed twice");
      }
      ring.add(w[1], rawKey(w[3], where));
    } else if (w.size() == 2 && w[0] == "revoked") {
      requireKeyId(w[1], where);
      ring.revoke(w[1]);
    } else {
      throw InvalidInput(where +
                         ": expected \"key <key-id> ed25519 <base64 public key>\" or "
                         "\"revoked <key-id>\"");
    }
  }
  return ring;
}

void BundleKeyring::add(const std::string& keyId, const crypto::Bytes& publicKey32) {
  keys_[keyId] = publicKey32;
}

void BundleKeyring::revoke(const std::string& keyId) {
  revoked_.insert(keyId);
}

BundleKeyring::Trust BundleKeyring::trust(const std::string& keyId) const {
  if (revoked_.count(keyId) != 0) return Trust::Revoked;
  return keys_.count(keyId) != 0 ? Trust::Trusted : Trust::Unknown;
}

std::optional<crypto::Bytes> BundleKeyring::publicKey(const std::string& keyId) const {
  if (trust(keyId) != Trust::Trusted) return std::nullopt;
  return keys_.at(keyId);
}

std::string BundleKeyring::text() const {
  std::string out;
  for (const auto& [id, key] : keys_) {
    out += "key " + id + " " + std::string(kAlgorithm) + " " + crypto::base64Encode(key) + "\n";
  }
  for (const std::string& id : revoked_) out += "revoked " + id + "\n";
  return out;
}

BundleSigningKey BundleSigningKey::generate(const std::string& keyId) {
  requireKeyId(keyId, "the new signing key");
  return BundleSigningKey{keyId, crypto::Ed25519PrivateKey::generate()};
}

BundleSigningKey BundleSigningKey::parse(std::string_view text, const std::string& origin) {
  const auto lines = meaningfulLines(text);
  if (lines.size() != 1 || lines[0].second.size() != 3 || lines[0].second[0] != kSigningKeyTag) {
    throw InvalidInput(origin + " is not a bundle signing key: expected one line \"" +
                       std::string(kSigningKeyTag) + " <key-id> <base64 seed>\"");
  }
  const auto& [number, w] = lines[0];
  const std::string where = origin + " line " + std::to_string(number);
  requireKeyId(w[1], where);
  return BundleSigningKey{w[1], crypto::Ed25519PrivateKey::fromSeed(rawKey(w[2], where))};
}

std::string BundleSigningKey::text() const {
  return "# vcrm upgrade bundle signing key: whoever holds this file can sign bundles that "
         "appliances trusting it install. Keep it secret.\n" +
         std::string(kSigningKeyTag) + " " + keyId + " " + crypto::base64Encode(key.seed()) + "\n";
}

std::string BundleSigningKey::keyringLine() const {
  return "key " + keyId + " " + std::string(kAlgorithm) + " " +
         crypto::base64Encode(key.publicKey());
}

}  // namespace vcrm::upgrade
