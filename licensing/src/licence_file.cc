#include "vcrm/licensing/licence_file.h"

#include "vcrm/common/error.h"
#include "vcrm/licensing/armour.h"

namespace vcrm::licensing {

namespace {

constexpr std::size_t kSignatureSize = 64;

Refusal envelopeError(const std::string& what) {
  return {Reason::EnvelopeMalformed, "the licence block decodes, but " + what +
                                         ": the file was altered; ask the vendor to send it again"};
}

}  // namespace

std::string signedMessage(std::string_view keyId, std::string_view payload) {
  std::string m(kSignatureDomain);
  m += '\0';
  m += keyId;
  m += '\0';
  m += payload;
  return m;
}

std::string envelope(std::string_view keyId, std::string_view signature, std::string_view payload) {
  std::string out(kEnvelopeMagic);
  out += static_cast<char>(keyId.size());
  out += keyId;
  out += signature;
  out += static_cast<char>((payload.size() >> 8) & 0xff);
  out += static_cast<char>(payload.size() & 0xff);
  out += payload;
  return out;
}

std::string issueLicence(const Licence& l, const SigningKey& key) {
  if (l.keyId != key.keyId) {
    throw InvalidInput("the licence names key \"" + l.keyId + "\" but is signed with \"" +
                       key.keyId + "\"");
  }
  const std::string payload = canonicalPayload(l);
  if (payload.size() > kMaxPayloadBytes)
    throw InvalidInput("the licence payload is larger than " + std::to_string(kMaxPayloadBytes) +
                       " bytes");
  // What we sign must read back as the same licence, or no appliance would take it.
  const auto back = parsePayload(payload);
  if (const auto* r = std::get_if<Refusal>(&back))
    throw InvalidInput("the licence would be refused: " + r->message);
  return armour(envelope(key.keyId, key.key.sign(signedMessage(key.keyId, payload)), payload));
}

std::variant<Licence, Refusal> readLicence(std::string_view fileText, const Keyring& keyring) {
  auto decoded = dearmour(fileText);
  if (auto* r = std::get_if<Refusal>(&decoded)) return std::move(*r);
  const std::string_view b = std::get<std::string>(decoded);

  // The envelope: fixed framing only; nothing signed is read yet.
  if (b.size() < kEnvelopeMagic.size() + 1 ||
      b.substr(0, kEnvelopeMagic.size()) != kEnvelopeMagic) {
    return envelopeError("it does not start with the licence marker");
  }
  std::size_t p = kEnvelopeMagic.size();
  const std::size_t idLen = static_cast<unsigned char>(b[p++]);
  if (idLen == 0 || idLen > 32 || b.size() < p + idLen + kSignatureSize + 2) {
    return envelopeError("its header is cut short");
  }
  const std::string keyId(b.substr(p, idLen));
  p += idLen;
  const std::string_view signature = b.substr(p, kSignatureSize);
  p += kSignatureSize;
  const std::size_t payloadLen = (static_cast<std::size_t>(static_cast<unsigned char>(b[p])) << 8) |
                                 static_cast<unsigned char>(b[p + 1]);
  p += 2;
  if (b.size() != p + payloadLen) {
    return envelopeError("its payload length (" + std::to_string(payloadLen) +
                         ") does not match the " + std::to_string(b.size() - p) + " bytes present");
  }
  if (!validKeyId(keyId)) return envelopeError("its key id is not a key id");

  switch (keyring.trust(keyId)) {
    case Keyring::Trust::Unknown:
      return Refusal{Reason::KeyUnknown,
                     "the licence is signed with the key \"" + keyId +
                         "\", which this appliance does not trust: it was not issued by "
                         "the vendor of this release; ask the vendor for a licence signed "
                         "with a current key"};
    case Keyring::Trust::Revoked:
      return Refusal{Reason::KeyRevoked,
                     "the licence is signed with the key \"" + keyId +
                         "\", which the vendor has revoked: ask the vendor to issue the "
                         "licence again with a current key"};
    case Keyring::Trust::Trusted:
      break;
  }
  const std::string_view payload = b.substr(p);
  if (!crypto::ed25519Verify(*keyring.publicKey(keyId), signedMessage(keyId, payload), signature)) {
    return Refusal{Reason::SignatureInvalid,
                   "the licence's signature does not match its contents: the file "
                   "was altered after the vendor signed it; ask the vendor to send "
                   "it again"};
  }

  auto parsed = parsePayload(payload);
  if (auto* l = std::get_if<Licence>(&parsed); l && l->keyId != keyId) {
    return Refusal{Reason::PayloadMalformed, "the licence names the key \"" + l->keyId +
                                                 "\" but is signed with \"" + keyId + "\""};
  }
  return parsed;
}

}  // namespace vcrm::licensing
