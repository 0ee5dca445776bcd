#include "licence_cases.h"

#include "vcrm/common/files.h"
#include "vcrm/licensing/armour.h"
#include "vcrm/licensing/licence_file.h"
#include "vcrmd_process.h"

namespace vcrm::test {

using namespace licensing;

namespace {

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  if (at == std::string::npos)
    throw std::logic_error("licence_cases: \"" + from + "\" not in " + text);
  return text.replace(at, from.size(), to);
}

// The decoded envelope of a file, changed by `change`, armoured again (the signature is not).
template <typename F>
std::string reEnveloped(const std::string& file, F change) {
  std::string bytes = std::get<std::string>(dearmour(file));
  change(bytes);
  return armour(bytes);
}

std::string payloadOffsetChanged(const std::string& file, std::size_t fromEnd) {
  return reEnveloped(file, [&](std::string& b) { b[b.size() - fromEnd] ^= 0x01; });
}

std::string rewrapped(const std::string& file, std::size_t width, const std::string& eol,
                      const std::string& quote) {
  const auto bytes = std::get<std::string>(dearmour(file));
  const std::string body = crypto::base64Encode(bytes);
  std::string out = quote + std::string(kArmourBegin) + eol;
  for (std::size_t i = 0; i < body.size(); i += width) out += quote + body.substr(i, width) + eol;
  return out + quote + std::string(kArmourEnd) + eol;
}

}  // namespace

SigningKey testLicenceKey() {
  const auto path = sourceDir() / "licensing/keys/vcrm-test-licence.key";
  return SigningKey::parse(files::readFile(path), path.string());
}

Licence sampleLicence(const std::string& serial, std::int64_t now, std::int64_t sequence) {
  Licence l;
  l.licenceId = "L-TEST-" + std::to_string(sequence);
  l.keyId = "vcrm-test-1";
  l.sequence = sequence;
  l.serial = serial;
  l.customer = "Example Hospital Trust";
  l.issuedAt = now - 86400;
  l.validFrom = now - 86400;
  l.validUntil = now + 365 * 86400;
  l.graceDays = 30;
  l.upgradesUntil = (now / 86400 + 365) * 86400;
  l.features.concurrentPorts = 40;
  l.features.bridges = 4;
  l.features.redundancy = false;
  return l;
}

Licence unlimitedTestLicence(const std::string& serial, std::int64_t now) {
  Licence l = sampleLicence(serial, now, 1);
  l.licenceId = "L-TEST-UNLIMITED";
  l.customer = "vcrm test suite";
  l.validUntil = std::nullopt;
  l.features.concurrentPorts = 1000000;
  l.features.bridges = 10000;
  l.features.redundancy = true;
  return l;
}

std::string signRaw(const std::string& payload, const SigningKey& key) {
  return armour(envelope(key.keyId, key.key.sign(signedMessage(key.keyId, payload)), payload));
}

std::vector<BadLicence> badLicences(const std::string& serial, std::int64_t now,
                                    std::int64_t activeSequence, const SigningKey& revokedKey) {
  const SigningKey key = testLicenceKey();
  const Licence base = sampleLicence(serial, now, activeSequence + 1);
  const std::string good = issueLicence(base, key);
  const std::string payload = canonicalPayload(base);
  auto with = [&](auto change) {
    Licence l = base;
    change(l);
    return issueLicence(l, key);
  };
  auto signedPayload = [&](const std::string& from, const std::string& to) {
    return signRaw(replaced(payload, from, to), key);
  };
  const std::string lines = good.substr(0, good.size() - 1);

  std::vector<BadLicence> out;
  auto add = [&](std::string name, std::string file, Reason r) {
    out.push_back({std::move(name), std::move(file), r});
  };

  // Tampering.
  add("flipped byte in the payload", payloadOffsetChanged(good, 10), Reason::SignatureInvalid);
  add("flipped byte in the signature",
      reEnveloped(
          good,
          [&](std::string& b) { b[kEnvelopeMagic.size() + 1 + key.keyId.size() + 5] ^= 0x40; }),
      Reason::SignatureInvalid);
  add("flipped byte in the begin line", replaced(good, "BEGIN VCRM", "BEGIN VCRN"),
      Reason::ArmourMalformed);
  add("flipped byte in the end line", replaced(good, "END VCRM", "END VCRL"),
      Reason::ArmourMalformed);
  add("non-base64 character in the body", replaced(good, "\n", "\n%"), Reason::ArmourMalformed);
  add("flipped byte in the envelope marker",
      reEnveloped(good, [](std::string& b) { b[3] ^= 0x01; }), Reason::EnvelopeMalformed);
  add("payload length field off by one",
      reEnveloped(good,
                  [&](std::string& b) {
                    b[kEnvelopeMagic.size() + 1 + key.keyId.size() + 64 + 1] ^= 0x01;
                  }),
      Reason::EnvelopeMalformed);
  add("signed without the domain prefix",
      armour(envelope(key.keyId, key.key.sign(payload), payload)), Reason::SignatureInvalid);
  // Keys.
  {
    const SigningKey stranger = SigningKey::generate("vcrm-stranger");
    Licence l = base;
    l.keyId = stranger.keyId;
    add("signed with an unknown key", issueLicence(l, stranger), Reason::KeyUnknown);
    l.keyId = revokedKey.keyId;
    add("signed with a revoked key", issueLicence(l, revokedKey), Reason::KeyRevoked);
    // The test key's signature over a payload naming another key.
    add("payload names another key than the signer", signRaw(canonicalPayload(l), key),
        Reason::PayloadMalformed);
  }
  // Binding to this server.
  add("another server's serial", with([](Licence& l) { l.serial = "0000-0000-0000-0000-0"; }),
      Reason::SerialMismatch);
  {
    std::string lower = serial;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    add("non-canonical serial (lower case)", with([&](Licence& l) { l.serial = lower; }),
        Reason::SerialNotCanonical);
    std::string undashed;
    for (char c : serial)
      if (c != '-') undashed += c;
    add("non-canonical serial (no dashes)", with([&](Licence& l) { l.serial = undashed; }),
        Reason::SerialNotCanonical);
  }
  add("redundant server's licence on the primary", with([](Licence& l) {
        l.role = Role::Redundant;
        l.peerSerial = "0000-0000-0000-0000-0";
        l.features.redundancy = true;
      }),
      Reason::RoleMismatch);
  // Time.
  add("not yet valid", with([&](Licence& l) { l.validFrom = now + 86400; }), Reason::NotYetValid);
  add("expired", with([&](Licence& l) {
        l.validFrom = now - 400 * 86400;
        l.validUntil = now - 86400;
      }),
      Reason::Expired);
  add("exactly at expiry", with([&](Licence& l) { l.validUntil = now; }), Reason::Expired);
  // Replay.
  add("older sequence (replay)", with([&](Licence& l) { l.sequence = activeSequence - 1; }),
      Reason::SequenceNotNewer);
  add("same sequence as the active licence", with([&](Licence& l) { l.sequence = activeSequence; }),
      Reason::SequenceNotNewer);
  // Broken files.
  add("truncated half-way", good.substr(0, good.size() / 2), Reason::ArmourMalformed);
  add("body lines dropped", replaced(good, lines.substr(kArmourBegin.size() + 1, 65), ""),
      Reason::EnvelopeMalformed);
  add("empty file", "", Reason::ArmourMalformed);
  add("only the armour lines", std::string(kArmourBegin) + "\n" + std::string(kArmourEnd) + "\n",
      Reason::ArmourMalformed);
  add("huge file", good + std::string(kMaxLicenceFileBytes, 'A'), Reason::TooLarge);
  add("embedded NUL in the file", replaced(good, "\n", std::string("\n\0", 2)),
      Reason::ArmourMalformed);
  add("two licence blocks", good + good, Reason::ArmourMalformed);
  add("not a licence at all", "Dear customer,\nplease find your licence attached.\n",
      Reason::ArmourMalformed);
  // Signed by the vendor's key but not a valid payload: the parser's own defences.
  add("embedded NUL in a payload string", signedPayload("Example", "Exa\\u0000mple"),
      Reason::PayloadMalformed);
  add("raw NUL in a payload string", signedPayload("Example", std::string("Exa\0mple", 8)),
      Reason::PayloadMalformed);
  add("byte-order mark before the payload", signRaw("\xEF\xBB\xBF" + payload, key),
      Reason::PayloadMalformed);
  add("duplicate key", signedPayload("{", "{\"customer\":\"Someone Else\","),
      Reason::PayloadDuplicateKey);
  add("duplicate feature", signedPayload("\"features\":{", "\"features\":{\"bridges\":99,"),
      Reason::PayloadDuplicateKey);
  add("unknown key", signedPayload("\"format\":1", "\"format\":1,\"ports_unlimited\":true"),
      Reason::PayloadUnknownKey);
  add("wrong type: sequence as a string",
      signedPayload("\"sequence\":" + std::to_string(base.sequence),
                    "\"sequence\":\"" + std::to_string(base.sequence) + "\""),
      Reason::PayloadWrongType);
  add("wrong type: redundancy as a string",
      signedPayload("\"redundancy\":false", "\"redundancy\":\"no\""), Reason::PayloadWrongType);
  add("wrong type: ports as a fraction",
      signedPayload("\"concurrent_ports\":40", "\"concurrent_ports\":40.5"),
      Reason::PayloadWrongType);
  add("features opened as an array (broken JSON)",
      signedPayload("\"features\":{", "\"features\":[{"), Reason::PayloadMalformed);
  add("nested too deep", signedPayload("\"features\":{", "\"features\":{\"x\":{\"y\":{\"z\":1}},"),
      Reason::PayloadTooDeep);
  add("payload not in canonical form", signedPayload("\"format\":1", "\"format\": 1"),
      Reason::PayloadNotCanonical);
  add("newer format", signedPayload("\"format\":1", "\"format\":2"), Reason::FormatUnsupported);
  add("payload is not JSON", signRaw("licence: yes", key), Reason::PayloadMalformed);
  add("impossible date",
      signedPayload("\"upgrades_until\":\"" + formatUtcDate(base.upgradesUntil),
                    "\"upgrades_until\":\"2027-02-30"),
      Reason::PayloadMalformed);
  add("missing field", signedPayload("\"customer\":\"Example Hospital Trust\",", ""),
      Reason::PayloadMalformed);
  add("payload over the size cap",
      signedPayload("\"customer\":\"", "\"customer\":\"" + std::string(9000, 'x') + "\",\"c\":\""),
      Reason::TooLarge);
  return out;
}

std::vector<MangledLicence> mangledButValid(const std::string& file) {
  std::vector<MangledLicence> out;
  out.push_back({"as issued", file});
  out.push_back({"re-wrapped at 40 columns", rewrapped(file, 40, "\n", "")});
  out.push_back({"re-wrapped at 76 columns", rewrapped(file, 76, "\n", "")});
  out.push_back({"body on one line", rewrapped(file, 100000, "\n", "")});
  out.push_back({"quoted with \"> \"", rewrapped(file, 64, "\n", "> ")});
  out.push_back({"quoted twice", rewrapped(file, 72, "\n", "> > ")});
  out.push_back({"quoted without a blank", rewrapped(file, 64, "\n", ">")});
  out.push_back({"CRLF line ends", rewrapped(file, 64, "\r\n", "")});
  out.push_back({"quoted, CRLF and re-wrapped", rewrapped(file, 50, "\r\n", "> ")});
  out.push_back(
      {"inside an e-mail", "Hello,\n\nyour licence:\n\n" + file + "\nRegards,\nthe vendor\n"});
  out.push_back(
      {"byte-order mark and no final newline", "\xEF\xBB\xBF" + file.substr(0, file.size() - 1)});
  out.push_back({"trailing blanks on every line", rewrapped(file, 64, "  \t\n", "")});
  return out;
}

}  // namespace vcrm::test
