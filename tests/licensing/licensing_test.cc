// The licensing library: serials, armour, signatures, strict payloads, the keyring, the
// applicability rules, licence states, the preview diff and the vendor's tool.
#include <gtest/gtest.h>

#include <sstream>

#include "licence_cases.h"
#include "temp_dir.h"
#include "vcrmd_process.h"
#include "vcrm/common/error.h"
#include "vcrm/common/files.h"
#include "vcrm/licensing/armour.h"
#include "vcrm/licensing/licence_file.h"
#include "vcrm/licensing/policy.h"
#include "vcrm/licensing/serial.h"
#include "vcrm/licensing/tool.h"

namespace vcrm::licensing {
namespace {

constexpr std::int64_t kNow = 1798761600;  // 2027-01-01T00:00:00Z
const std::string kSerial = "7K3M-Q9RT-2XWB-HN4D-";

std::string serialWithCheck() {
  // The check symbol of kSerial's symbols, found by trying them all.
  for (char c : std::string("0123456789ABCDEFGHJKMNPQRSTVWXYZ*~$=U")) {
    if (isCanonicalSerial(kSerial + c)) return kSerial + c;
  }
  return {};
}

struct LicenceFiles : ::testing::Test {
  std::string serial = serialWithCheck();
  SigningKey key = test::testLicenceKey();
  SigningKey revoked = SigningKey::generate("vcrm-old-0");
  Keyring keyring = [this] {
    Keyring k = Keyring::builtIn();
    k.add(revoked.keyId, revoked.key.publicKey());
    k.revoke(revoked.keyId);
    return k;
  }();

  // What the appliance does with an uploaded file: verify, then check it against the active.
  std::optional<Refusal> refusalOf(const std::string& file, const std::optional<Licence>& active,
                                   std::int64_t now = kNow, std::int64_t latestSeen = 0) {
    auto r = readLicence(file, keyring);
    if (auto* refusal = std::get_if<Refusal>(&r)) return *refusal;
    return checkApplicable(std::get<Licence>(r), active, serial, Role::Primary, now, latestSeen);
  }
};

TEST(Serial, NewSerialsAreCanonicalAndDiffer) {
  const std::string a = newSerial(), b = newSerial();
  EXPECT_TRUE(isCanonicalSerial(a)) << a;
  EXPECT_NE(a, b);
  EXPECT_EQ(a.size(), 21u);
  EXPECT_EQ(a[4], '-');
  EXPECT_EQ(a[19], '-');
}

TEST(Serial, TypedInputIsForgiven) {
  const std::string s = serialWithCheck();
  ASSERT_FALSE(s.empty());
  std::string typed;
  for (char c : s) {
    if (c == '-') {
      typed += "  ";
      continue;
    }
    typed += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  EXPECT_EQ(parseSerial(typed), s);
  EXPECT_EQ(parseSerial(" " + s + " "), s);
  // Look-alikes: 0 typed as O, 1 typed as I or L.
  const std::string zeros = "0000-1111-0000-1111-";
  std::string canonical;
  for (char c : std::string("0123456789ABCDEFGHJKMNPQRSTVWXYZ*~$=U")) {
    if (isCanonicalSerial(zeros + c)) canonical = zeros + c;
  }
  ASSERT_FALSE(canonical.empty());
  EXPECT_EQ(parseSerial("OOOO-IIII-oooo-llll-" + canonical.substr(20)), canonical);
  EXPECT_FALSE(isCanonicalSerial("oooo-iiii-0000-1111-" + canonical.substr(20)));
}

TEST(Serial, CheckSymbolCatchesEverySingleMistypeAndAdjacentSwap) {
  const std::string s = serialWithCheck();
  const std::string symbols = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  int tried = 0;
  for (std::size_t i = 0; i < s.size() - 2; ++i) {
    if (s[i] == '-') continue;
    for (char c : symbols) {
      if (c == s[i]) continue;
      std::string typo = s;
      typo[i] = c;
      std::string why;
      EXPECT_FALSE(parseSerial(typo, &why)) << typo;
      ++tried;
    }
    if (i + 1 < s.size() - 2 && s[i + 1] != '-' && s[i] != s[i + 1]) {
      std::string swapped = s;
      std::swap(swapped[i], swapped[i + 1]);
      EXPECT_FALSE(parseSerial(swapped)) << swapped;
    }
  }
  EXPECT_EQ(tried, 16 * 31);
  std::string why;
  EXPECT_FALSE(parseSerial("7K3M-Q9RT", &why));
  EXPECT_NE(why.find("16 symbols"), std::string::npos);
  EXPECT_FALSE(parseSerial("7K3M-Q9RT-2XWB-HN4U-0", &why));  // U is only a check symbol
}

TEST(Payload, CanonicalRoundTrip) {
  Licence l = test::sampleLicence(serialWithCheck(), kNow);
  l.peerSerial = std::nullopt;
  l.features.more["recording_hours"] = std::int64_t{500};
  l.features.more["web_client"] = true;
  l.customer = "Klinikum M\xC3\xBCnchen \"Nord\" \\ Ost";
  const std::string p = canonicalPayload(l);
  auto back = parsePayload(p);
  ASSERT_TRUE(std::holds_alternative<Licence>(back)) << std::get<Refusal>(back).message;
  EXPECT_EQ(std::get<Licence>(back), l);
  EXPECT_EQ(p.find(' '), p.find("Klinikum") + 8);  // the only blank is inside the customer
}

TEST(Payload, TimesAndDatesAreStrict) {
  EXPECT_EQ(parseUtcTime("2027-01-01T00:00:00Z"), kNow);
  EXPECT_EQ(formatUtcTime(kNow), "2027-01-01T00:00:00Z");
  EXPECT_EQ(parseUtcDate("2028-02-29"), parseUtcTime("2028-02-29T00:00:00Z"));
  EXPECT_FALSE(parseUtcDate("2027-02-29"));
  EXPECT_FALSE(parseUtcTime("2027-01-01T24:00:00Z"));
  EXPECT_FALSE(parseUtcTime("2027-01-01T00:00:00+00:00"));
  EXPECT_FALSE(parseUtcTime("2027-01-01 00:00:00Z"));
}

TEST_F(LicenceFiles, IssuedLicenceVerifiesAndReadsBack) {
  const Licence l = test::sampleLicence(serial, kNow);
  const std::string file = issueLicence(l, key);
  EXPECT_EQ(file.rfind(std::string(kArmourBegin) + "\n", 0), 0u);
  auto r = readLicence(file, keyring);
  ASSERT_TRUE(std::holds_alternative<Licence>(r)) << std::get<Refusal>(r).message;
  EXPECT_EQ(std::get<Licence>(r), l);
  EXPECT_EQ(checkApplicable(l, std::nullopt, serial, Role::Primary, kNow, 0), std::nullopt);
}

TEST_F(LicenceFiles, MailedAndQuotedFilesStillVerify) {
  const Licence l = test::sampleLicence(serial, kNow);
  const auto cases = test::mangledButValid(issueLicence(l, key));
  ASSERT_GE(cases.size(), 10u);
  for (const auto& c : cases) {
    auto r = readLicence(c.file, keyring);
    ASSERT_TRUE(std::holds_alternative<Licence>(r))
        << c.name << ": " << std::get<Refusal>(r).message;
    EXPECT_EQ(std::get<Licence>(r), l) << c.name;
  }
}

TEST_F(LicenceFiles, EveryBadLicenceIsRefusedWithItsReason) {
  const std::int64_t activeSequence = 10;
  const Licence active = test::sampleLicence(serial, kNow, activeSequence);
  const auto cases = test::badLicences(serial, kNow, activeSequence, revoked);
  EXPECT_GE(cases.size(), 30u);
  for (const auto& c : cases) {
    const auto refusal = refusalOf(c.file, active);
    ASSERT_TRUE(refusal.has_value()) << c.name << " was accepted";
    EXPECT_EQ(reasonCode(refusal->reason), reasonCode(c.reason))
        << c.name << ": " << refusal->message;
    EXPECT_FALSE(refusal->message.empty()) << c.name;
  }
}

TEST_F(LicenceFiles, RefusalsSayWhatToDo) {
  const Licence active = test::sampleLicence(serial, kNow, 10);
  Licence other = test::sampleLicence("0000-0000-0000-0000-0", kNow, 11);
  auto r = checkApplicable(other, active, serial, Role::Primary, kNow, 0);
  ASSERT_TRUE(r);
  EXPECT_NE(r->message.find(serial), std::string::npos) << r->message;
  EXPECT_NE(r->message.find("0000-0000-0000-0000-0"), std::string::npos) << r->message;
  Licence older = test::sampleLicence(serial, kNow, 9);
  r = checkApplicable(older, active, serial, Role::Primary, kNow, 0);
  ASSERT_TRUE(r);
  EXPECT_NE(r->message.find("sequence number 9"), std::string::npos) << r->message;
  EXPECT_NE(r->message.find("10"), std::string::npos) << r->message;
}

TEST_F(LicenceFiles, ClockSetBackDoesNotRevalidateAnExpiredLicence) {
  Licence l = test::sampleLicence(serial, kNow);
  l.validUntil = kNow + 86400;
  // The clock reads kNow, but the appliance has already seen a time past the end.
  const std::int64_t seen = kNow + 3 * 86400;
  auto r = checkApplicable(l, std::nullopt, serial, Role::Primary, kNow, seen);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->reason, Reason::Expired);
  EXPECT_EQ(checkApplicable(l, std::nullopt, serial, Role::Primary, kNow, kNow - 86400),
            std::nullopt);
  l.graceDays = 1;
  EXPECT_EQ(evaluate(l, kNow, seen).state, State::Expired);
  EXPECT_EQ(evaluate(l, kNow, 0).state, State::Valid);
}

TEST_F(LicenceFiles, StatesOverALicencesLife) {
  Licence l = test::sampleLicence(serial, kNow);
  l.validUntil = kNow + 10 * 86400;
  l.graceDays = 5;
  auto s = evaluate(std::nullopt, kNow, 0);
  EXPECT_EQ(s.state, State::Evaluation);
  EXPECT_EQ(s.limits, kEvaluationLimits);
  s = evaluate(l, kNow, 0);
  EXPECT_EQ(s.state, State::Valid);
  EXPECT_EQ(s.limits.concurrentPorts, 40);
  EXPECT_EQ(s.daysLeft, 10);
  s = evaluate(l, kNow + 10 * 86400 - 1, 0);
  EXPECT_EQ(s.state, State::Valid);
  EXPECT_EQ(s.daysLeft, 1);
  s = evaluate(l, kNow + 10 * 86400, 0);
  EXPECT_EQ(s.state, State::Grace);
  EXPECT_EQ(s.limits.concurrentPorts, 40);  // grace keeps the licensed capacity
  EXPECT_EQ(s.daysLeft, 5);
  EXPECT_NE(s.message.find("grace"), std::string::npos);
  s = evaluate(l, kNow + 15 * 86400, 0);
  EXPECT_EQ(s.state, State::Expired);
  EXPECT_EQ(s.limits, kEvaluationLimits);
  l.validUntil = std::nullopt;
  s = evaluate(l, kNow + 5000 * 86400, 0);
  EXPECT_EQ(s.state, State::Valid);
  EXPECT_EQ(s.daysLeft, std::nullopt);
}

TEST_F(LicenceFiles, DiffListsWhatChanges) {
  const Licence a = test::sampleLicence(serial, kNow, 10);
  Licence b = a;
  b.sequence = 11;
  b.licenceId = "L-TEST-11";
  b.features.concurrentPorts = 80;
  b.features.more["web_client"] = true;
  b.validUntil = std::nullopt;
  std::map<std::string, std::pair<std::string, std::string>> got;
  for (const auto& c : diff(a, b)) {
    got[c.field] = {c.before.isEmpty() ? "null" : c.before.toString(),
                    c.after.isEmpty() ? "null" : c.after.toString()};
  }
  EXPECT_EQ(got.size(), 5u);
  EXPECT_EQ(got["features.concurrent_ports"], std::make_pair(std::string("40"), std::string("80")));
  EXPECT_EQ(got["features.web_client"], std::make_pair(std::string("null"), std::string("true")));
  EXPECT_EQ(got["valid_until"].second, "null");
  EXPECT_EQ(got["sequence"], std::make_pair(std::string("10"), std::string("11")));
  EXPECT_TRUE(got.count("licence_id"));
  EXPECT_TRUE(diff(a, a).empty());
  // Against evaluation mode the features are compared with the evaluation limits.
  bool ports = false;
  for (const auto& c : diff(std::nullopt, a)) {
    if (c.field == "features.concurrent_ports") {
      ports = true;
      EXPECT_EQ(c.before.toString(), std::to_string(kEvaluationLimits.concurrentPorts));
    }
  }
  EXPECT_TRUE(ports);
}

TEST_F(LicenceFiles, FuzzSeedsAreJudgedAsNamed) {
  // The fuzz corpus's hand-made seeds: valid-* verify with the build's keyring, bad-* do not.
  int valid = 0, bad = 0;
  for (const auto& entry : std::filesystem::directory_iterator(test::sourceDir() / "tests/fuzz/corpus/licence")) {
    const std::string name = entry.path().filename().string();
    const auto r = readLicence(files::readFile(entry.path()), Keyring::builtIn());
    if (name.rfind("valid-", 0) == 0) {
      ++valid;
      EXPECT_TRUE(std::holds_alternative<Licence>(r)) << name << ": " << std::get<Refusal>(r).message;
    } else if (name.rfind("bad-", 0) == 0) {
      ++bad;
      EXPECT_TRUE(std::holds_alternative<Refusal>(r)) << name << " was accepted";
    }
  }
  EXPECT_GE(valid, 5);
  EXPECT_GE(bad, 6);
}

TEST(Keyring, ParsesRotationAndRevocationAndRefusesJunk) {
  const auto a = SigningKey::generate("vendor-2026");
  const auto b = SigningKey::generate("vendor-2027");
  const auto k = Keyring::parse("# vendor keys\n" + a.keyringLine() + "\n" + b.keyringLine() +
                                    "  # new\nrevoked vendor-2026\n",
                                "test");
  EXPECT_EQ(k.trust("vendor-2026"), Keyring::Trust::Revoked);
  EXPECT_EQ(k.trust("vendor-2027"), Keyring::Trust::Trusted);
  EXPECT_EQ(k.trust("vendor-2028"), Keyring::Trust::Unknown);
  EXPECT_FALSE(k.publicKey("vendor-2026"));
  EXPECT_THROW(Keyring::parse("key Bad_Id AAAA\n", "t"), InvalidInput);
  EXPECT_THROW(Keyring::parse("key good AAAAAAAAAAAAAAAAAAAAAA==\n", "t"),
               InvalidInput);  // 16 bytes
  EXPECT_THROW(Keyring::parse(a.keyringLine() + "\n" + a.keyringLine() + "\n", "t"), InvalidInput);
  EXPECT_THROW(Keyring::parse("trust everything\n", "t"), InvalidInput);
  EXPECT_EQ(Keyring::builtIn().trust("vcrm-test-1"), Keyring::Trust::Trusted);
  // A signing key's file reads back as the same key.
  const auto again = SigningKey::parse(a.text(), "t");
  EXPECT_EQ(again.keyId, a.keyId);
  EXPECT_EQ(again.key.publicKey(), a.key.publicKey());
}

TEST(Tool, KeygenIssueShowVerify) {
  test::TempDir dir;
  const std::string prefix = (dir.path() / "vendor").string();
  auto run = [](std::vector<std::string> args, std::string* out = nullptr,
                std::string* err = nullptr) {
    std::ostringstream o, e;
    const int rc = runTool(args, o, e);
    if (out) *out = o.str();
    if (err) *err = e.str();
    return rc;
  };
  std::string out, err;
  ASSERT_EQ(run({"keygen", "--key-id", "vendor-1", "--out", prefix}, &out, &err), 0) << err;
  EXPECT_EQ(
      std::filesystem::status(prefix + ".key").permissions() & std::filesystem::perms::others_read,
      std::filesystem::perms::none);
  EXPECT_NE(run({"keygen", "--key-id", "vendor-1", "--out", prefix}), 0);  // never overwrites a key

  const std::string serial = newSerial();
  std::string typed = serial;
  for (char& c : typed) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const std::string lic = (dir.path() / "a.lic").string();
  ASSERT_EQ(run({"issue",
                 "--key",
                 prefix + ".key",
                 "--serial",
                 typed,
                 "--licence-id",
                 "L-1",
                 "--sequence",
                 "3",
                 "--customer",
                 "Example",
                 "--upgrades-until",
                 "2030-01-01",
                 "--ports",
                 "50",
                 "--bridges",
                 "3",
                 "--valid-from",
                 "2026-01-01T00:00:00Z",
                 "--valid-until",
                 "2030-01-01T00:00:00Z",
                 "--feature",
                 "web_client=true",
                 "--out",
                 lic},
                &out, &err),
            0)
      << err;
  // Not trusted by the built-in keyring; trusted with the vendor's.
  EXPECT_EQ(run({"show", lic}, &out, &err), 1);
  EXPECT_NE(err.find("licence_key_unknown"), std::string::npos) << err;
  ASSERT_EQ(run({"show", lic, "--keyring", prefix + ".pub"}, &out, &err), 0) << err;
  auto shown = json::parseObject(out);
  EXPECT_EQ(shown->getValue<std::string>("serial"), serial);  // the canonical form
  EXPECT_EQ(shown->getObject("features")->getValue<int>("concurrent_ports"), 50);
  EXPECT_TRUE(shown->getObject("features")->getValue<bool>("web_client"));
  EXPECT_EQ(run({"verify", lic, "--keyring", prefix + ".pub", "--serial", serial, "--at",
                 "2027-01-01T00:00:00Z"},
                &out, &err),
            0)
      << err;
  EXPECT_NE(out.find("ok"), std::string::npos);
  EXPECT_EQ(run({"verify", lic, "--keyring", prefix + ".pub", "--serial", serial, "--at",
                 "2031-01-01T00:00:00Z"},
                &out, &err),
            1);
  EXPECT_NE(err.find("licence_expired"), std::string::npos) << err;
  EXPECT_EQ(run({"verify", lic, "--keyring", prefix + ".pub", "--serial", newSerial()}, &out, &err),
            1);
  EXPECT_NE(err.find("licence_serial_mismatch"), std::string::npos) << err;
  EXPECT_EQ(run({"issue", "--key", prefix + ".key", "--serial", "not-a-serial"}, &out, &err), 2);
  EXPECT_NE(err.find("not a serial number"), std::string::npos) << err;
  EXPECT_EQ(run({"frobnicate"}), 2);
}

}  // namespace
}  // namespace vcrm::licensing
