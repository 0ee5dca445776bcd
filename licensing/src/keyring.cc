#include "vcrm/licensing/keyring.h"

#include <algorithm>
#include <vector>

#include "vcrm/common/error.h"

namespace vcrm::licensing {

extern const char kBuiltInKeyring[];  // generated from VCRM_LICENCE_KEYRING at build time

namespace {

constexpr std::string_view kSigningKeyTag = "vcrm-licence-signing-key";

std::vector<std::string> words(std::string_view line) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
    if (i > start) out.emplace_back(line.substr(start, i - start));
  }
  return out;
}

// Calls `each(words, lineNo)` for every line that is not blank or a comment.
template <typename F>
void eachLine(std::string_view text, F each) {
  int lineNo = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    ++lineNo;
    if (const auto hash = line.find('#'); hash != std::string_view::npos)
      line = line.substr(0, hash);
    auto w = words(line);
    if (!w.empty()) each(w, lineNo);
  }
}

crypto::Bytes decode32(const std::string& b64, const std::string& where) {
  crypto::Bytes raw;
  try {
    raw = crypto::base64Decode(b64);
  } catch (const InvalidInput&) {
    throw InvalidInput(where + ": the key is not base64");
  }
  if (raw.size() != 32)
    throw InvalidInput(where + ": an Ed25519 key has 32 bytes, not " + std::to_string(raw.size()));
  return raw;
}

}  // namespace

bool validKeyId(std::string_view id) {
  return !id.empty() && id.size() <= 32 && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

Keyring Keyring::parse(std::string_view text, const std::string& origin) {
  Keyring k;
  eachLine(text, [&](const std::vector<std::string>& w, int lineNo) {
    const std::string where = origin + " line " + std::to_string(lineNo);
    if (w[0] == "key" && w.size() == 3) {
      if (!validKeyId(w[1]))
        throw InvalidInput(where + ": \"" + w[1] + "\" is not a key id (a-z, 0-9, -)");
      if (k.keys_.count(w[1]))
        throw InvalidInput(where + ": the key id \"" + w[1] + "\" is listed twice");
      k.add(w[1], decode32(w[2], where));
    } else if (w[0] == "revoked" && w.size() == 2) {
      if (!validKeyId(w[1]))
        throw InvalidInput(where + ": \"" + w[1] + "\" is not a key id (a-z, 0-9, -)");
      k.revoke(w[1]);
    } else {
      throw InvalidInput(where +
                         ": expected \"key <key-id> <base64 public key>\" or \"revoked <key-id>\"");
    }
  });
  return k;
}

std::string_view Keyring::builtInText() {
  return kBuiltInKeyring;
}

Keyring Keyring::builtIn() {
  return parse(builtInText(), "the built-in keyring");
}

void Keyring::add(const std::string& keyId, const crypto::Bytes& publicKey32) {
  keys_[keyId] = publicKey32;
}

void Keyring::revoke(const std::string& keyId) {
  revoked_.insert(keyId);
}

Keyring::Trust Keyring::trust(const std::string& keyId) const {
  if (revoked_.count(keyId)) return Trust::Revoked;
  return keys_.count(keyId) ? Trust::Trusted : Trust::Unknown;
}

std::optional<crypto::Bytes> Keyring::publicKey(const std::string& keyId) const {
  if (trust(keyId) != Trust::Trusted) return std::nullopt;
  return keys_.at(keyId);
}

SigningKey SigningKey::generate(const std::string& keyId) {
  if (!validKeyId(keyId))
    throw InvalidInput("\"" + keyId + "\" is not a key id: use 1 to 32 of a-z, 0-9 and -");
  return SigningKey{keyId, crypto::Ed25519PrivateKey::generate()};
}

SigningKey SigningKey::parse(std::string_view text, const std::string& origin) {
  std::optional<SigningKey> out;
  eachLine(text, [&](const std::vector<std::string>& w, int lineNo) {
    const std::string where = origin + " line " + std::to_string(lineNo);
    if (out || w.size() != 3 || w[0] != kSigningKeyTag || !validKeyId(w[1])) {
      throw InvalidInput(where + ": expected one line \"" + std::string(kSigningKeyTag) +
                         " <key-id> <base64 seed>\"");
    }
    out.emplace(SigningKey{w[1], crypto::Ed25519PrivateKey::fromSeed(decode32(w[2], where))});
  });
  if (!out) throw InvalidInput(origin + " holds no signing key");
  return std::move(*out);
}

std::string SigningKey::text() const {
  return "# vcrm licence signing key: whoever holds this file can issue licences. Keep it "
         "secret.\n" +
         std::string(kSigningKeyTag) + " " + keyId + " " + crypto::base64Encode(key.seed()) + "\n";
}

std::string SigningKey::keyringLine() const {
  return "key " + keyId + " " + crypto::base64Encode(key.publicKey());
}

}  // namespace vcrm::licensing
