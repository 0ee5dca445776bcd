// Upgrade bundles through the API against a real vcrmd, up to "verified, waiting for
// confirmation": a good bundle shows everything an operator sees before confirming and survives
// a restart; the bad-bundle suite (bad_bundles.h) and the policy cases (another kind of system,
// version floor, downgrade, the licence's "upgrades until" date, no trusted keys) are each
// refused with their reason while the kept uploads, GET /api/v1/upgrade, the slots tree and
// the database stay as they were.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <utime.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <set>

#include "bad_bundles.h"
#include "event_stream.h"
#include "eventually.h"
#include "restore_support.h"
#include "tus_client.h"
#include "vcrm/common/crypto.h"
#include "vcrm/common/files.h"
#include "vcrm/common/json.h"
#include "vcrm/common/process.h"
#include "vcrm/common/version.h"
#include "vcrm/licensing/licence.h"
#include "vcrmd_process.h"

namespace fs = std::filesystem;
using vcrm::test::HttpResult;
using vcrm::test::HttpsClient;
using vcrm::test::VcrmdProcess;
using vcrm::upgrade::BundleReason;
using vcrm::upgrade::BundleRelease;
namespace bt = vcrm::upgrade::test;

namespace {

const std::string kOperatorPassword = "operator password of the upgrade test";

fs::path keyringFile(const VcrmdProcess& v) {
  return v.root() / "etc/vcrm/bundle-keyring";
}

void installKeyring(const VcrmdProcess& v, const std::string& text) {
  vcrm::files::ensureDir(keyringFile(v).parent_path());
  vcrm::files::atomicWrite(keyringFile(v), text, 0644);
}

fs::path uploadsDir(const VcrmdProcess& v) {
  return v.stateDir() / "upgrade/uploads";
}

// What the kept-uploads directory holds, by name.
std::set<std::string> keptFiles(const VcrmdProcess& v) {
  std::set<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(uploadsDir(v), ec)) {
    out.insert(e.path().filename().string());
  }
  return out;
}

std::set<std::string> filesOfUploads(const std::set<std::string>& ids) {
  std::set<std::string> out;
  for (const auto& id : ids) {
    out.insert(id + ".bin");
    out.insert(id + ".sha256");
  }
  return out;
}

// Every file and directory under <root>/opt with its mode and bytes ("<absent>" when none).
std::string slotsTree(const VcrmdProcess& v) {
  const fs::path opt = v.root() / "opt";
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(opt, ec))) return "<absent>";
  std::vector<std::string> lines;
  for (const auto& e : fs::recursive_directory_iterator(opt, ec)) {
    struct stat st {};
    ::lstat(e.path().c_str(), &st);
    std::string line = e.path().string() + " " + std::to_string(st.st_mode);
    if (S_ISLNK(st.st_mode)) line += " -> " + fs::read_symlink(e.path(), ec).string();
    if (S_ISREG(st.st_mode)) line += " " + vcrm::crypto::sha256Hex(vcrm::files::readFile(e.path()));
    lines.push_back(line);
  }
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

std::string dbSnapshot(const VcrmdProcess& v) {
  auto c = v.database();
  return vcrm::test::restorableSnapshot(c);
}

HttpResult verify(HttpsClient& c, const std::string& uploadId, bool allowDowngrade = false) {
  vcrm::json::ObjectPtr o = new vcrm::json::Object;
  o->set("upload_id", uploadId);
  if (allowDowngrade) o->set("allow_downgrade", true);
  return c.postJson("/api/v1/upgrade", vcrm::json::stringify(o));
}

std::string upload(HttpsClient& c, const std::string& bytes) {
  auto u = vcrm::test::uploadWhole(c, "/api/v1/upgrade/uploads", bytes);
  EXPECT_EQ(u.finished.status, 201) << u.finished.body;
  return u.id;
}

std::string today(int plusDays = 0) {
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  return vcrm::licensing::formatUtcDate(now + std::int64_t{plusDays} * 86400);
}

std::string dayAfter(const std::string& date) {
  return vcrm::licensing::formatUtcDate(*vcrm::licensing::parseUtcDate(date) + 86400);
}

// A release newer than the running version, from it, released yesterday.
BundleRelease newerRelease() {
  return BundleRelease{.version = "99.1.0",
                       .releaseDate = today(-1),
                       .compatible = "vcrm-appliance",
                       .minVersion = vcrm::productVersion(),
                       .notes = "Release 99.1.0 of the upgrade API test.\nSecond line.\n"};
}

class UpgradeApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    vcrmd_ = new VcrmdProcess();
    vcrmd_->start();
    auto admin = vcrmd_->adminClient();
    ASSERT_EQ(vcrmd_->createReadyUser(admin, "op", {"operator"}, kOperatorPassword).status, 201);
  }
  static void TearDownTestSuite() {
    delete vcrmd_;
    vcrmd_ = nullptr;
  }
  void SetUp() override {
    installKeyring(*vcrmd_, bt::testBundleKeyringText());
    auto admin = vcrmd_->adminClient();
    admin.request("DELETE", "/api/v1/upgrade/pending");
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(uploadsDir(*vcrmd_), ec)) fs::remove(e.path(), ec);
  }
  static HttpsClient operatorClient() {
    auto c = vcrmd_->client();
    EXPECT_EQ(c.loginBearer("op", kOperatorPassword).status, 200);
    return c;
  }
  static std::string licenceUpgradesUntil(HttpsClient& admin) {
    return admin.get("/api/v1/license")
        .json()
        ->getObject("active")
        ->getValue<std::string>("upgrades_until");
  }
  static VcrmdProcess* vcrmd_;
};
VcrmdProcess* UpgradeApi::vcrmd_ = nullptr;

TEST_F(UpgradeApi, AGoodBundleIsVerifiedShownKeptAcrossARestartAndDiscarded) {
  auto op = operatorClient();
  auto admin = vcrmd_->adminClient();
  auto idle = op.get("/api/v1/upgrade");
  ASSERT_EQ(idle.status, 200) << idle.body;
  EXPECT_EQ(idle.json()->getValue<std::string>("state"), "idle");
  EXPECT_TRUE(idle.json()->isNull("pending"));
  EXPECT_EQ(idle.json()->getArray("history")->size(), 0u) << "nothing is recorded yet";
  EXPECT_TRUE(idle.json()->isNull("upgrade"));
  EXPECT_TRUE(idle.json()->isNull("previous"));
  const auto running = idle.json()->getObject("running");
  EXPECT_EQ(running->getValue<std::string>("version"), vcrm::productVersion());
  EXPECT_GT(running->getValue<int>("schema"), 0);
  EXPECT_TRUE(running->isNull("slot")) << "this vcrmd runs from the build tree";
  EXPECT_NE(running->getValue<std::string>("slot_note").find("nothing is installed in a slot"),
            std::string::npos);

  const BundleRelease release = newerRelease();
  const std::string bytes = bt::goodBundle(4096, release);
  auto u = vcrm::test::uploadWhole(op, "/api/v1/upgrade/uploads", bytes);
  ASSERT_EQ(u.finished.status, 201) << u.finished.body;
  EXPECT_EQ(u.finished.json()->getValue<std::string>("upload_id"), u.id);
  EXPECT_EQ(u.finished.json()->getValue<std::uint64_t>("size"), bytes.size());
  EXPECT_EQ(u.finished.json()->getValue<std::string>("sha256"), vcrm::crypto::sha256Hex(bytes));
  EXPECT_EQ(keptFiles(*vcrmd_), filesOfUploads({u.id}));
  struct stat st {};
  ASSERT_EQ(::stat(uploadsDir(*vcrmd_).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(st.st_uid, ::geteuid());

  vcrm::test::EventStream events(*vcrmd_, op.bearer());
  ASSERT_EQ(events.status(), 200);
  auto r = verify(op, u.id);
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_TRUE(events.waitFor(
      [&](const vcrm::test::StreamEvent& e) {
        return e.type == "upgrade" && e.data.find("\"verified\"") != std::string::npos &&
               e.data.find(u.id) != std::string::npos;
      },
      std::chrono::seconds(10)))
      << "an operator's stream hears of the verified bundle";
  events.close();
  const auto b = r.json()->getObject("bundle");
  EXPECT_EQ(b->getValue<std::string>("id"), u.id);
  EXPECT_EQ(b->getValue<std::string>("state"), "verified");
  EXPECT_EQ(b->getValue<std::string>("version"), "99.1.0");
  EXPECT_EQ(b->getValue<std::string>("release_date"), release.releaseDate);
  EXPECT_EQ(b->getValue<std::string>("compatible"), "vcrm-appliance");
  EXPECT_EQ(b->getValue<std::string>("min_version"), vcrm::productVersion());
  EXPECT_EQ(b->getValue<std::string>("notes"), release.notes);
  EXPECT_EQ(b->getValue<std::string>("key_id"), "vcrm-test-bundle-1");
  EXPECT_EQ(b->getValue<std::uint64_t>("size"), bytes.size());
  EXPECT_EQ(b->getValue<std::string>("sha256"), vcrm::crypto::sha256Hex(bytes));
  EXPECT_EQ(b->getValue<int>("files"), 6);
  EXPECT_EQ(b->getValue<std::uint64_t>("install_bytes"), 20016u);
  EXPECT_EQ(b->getValue<std::string>("running_version"), vcrm::productVersion());
  EXPECT_FALSE(b->getValue<bool>("downgrade"));
  EXPECT_FALSE(b->getValue<bool>("allow_downgrade"));
  EXPECT_TRUE(b->getValue<bool>("entitled"));
  EXPECT_EQ(b->getValue<std::string>("licence_upgrades_until"), licenceUpgradesUntil(admin));
  EXPECT_EQ(b->getValue<std::string>("verified_by"), "op");
  EXPECT_FALSE(b->getValue<std::string>("verified_at").empty());

  auto status = op.get("/api/v1/upgrade");
  ASSERT_EQ(status.status, 200);
  EXPECT_EQ(status.json()->getValue<std::string>("state"), "verified");
  EXPECT_EQ(vcrm::json::stringify(status.json()->getObject("pending")), vcrm::json::stringify(b));
  EXPECT_EQ(keptFiles(*vcrmd_), filesOfUploads({u.id}));

  // The audit log names each step.
  auto audit = admin.get("/api/v1/audit?username=op");
  ASSERT_EQ(audit.status, 200);
  EXPECT_NE(audit.body.find("upgrade.upload.create"), std::string::npos) << audit.body;
  EXPECT_NE(audit.body.find("upgrade.verify"), std::string::npos) << audit.body;

  // A restart keeps it.
  vcrmd_->stop();
  vcrmd_->start();
  op = operatorClient();
  admin = vcrmd_->adminClient();
  status = op.get("/api/v1/upgrade");
  ASSERT_EQ(status.status, 200);
  EXPECT_EQ(status.json()->getValue<std::string>("state"), "verified");
  EXPECT_EQ(status.json()->getObject("pending")->getValue<std::string>("sha256"),
            vcrm::crypto::sha256Hex(bytes));

  // Another good bundle replaces it, and the file of the first is gone.
  BundleRelease other = release;
  other.version = "99.2.0";
  const std::string second = upload(op, bt::goodBundle(4096, other));
  r = verify(op, second);
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(keptFiles(*vcrmd_), filesOfUploads({second}));
  EXPECT_EQ(op.get("/api/v1/upgrade").json()->getObject("pending")->getValue<std::string>("id"),
            second);

  vcrm::test::EventStream afterRestart(*vcrmd_, op.bearer());
  ASSERT_EQ(op.request("DELETE", "/api/v1/upgrade/pending").status, 204);
  EXPECT_TRUE(afterRestart.waitFor(
      [&](const vcrm::test::StreamEvent& e) {
        return e.type == "upgrade" && e.data.find("\"discarded\"") != std::string::npos &&
               e.data.find(second) != std::string::npos;
      },
      std::chrono::seconds(10)));
  afterRestart.close();
  EXPECT_EQ(op.get("/api/v1/upgrade").json()->getValue<std::string>("state"), "idle");
  EXPECT_EQ(keptFiles(*vcrmd_), std::set<std::string>{});
  auto again = op.request("DELETE", "/api/v1/upgrade/pending");
  EXPECT_EQ(again.status, 404);
  EXPECT_EQ(again.errorCode(), "no_pending_bundle");
  audit = admin.get("/api/v1/audit?username=op&action=upgrade.discard");
  EXPECT_NE(audit.body.find("upgrade.discard"), std::string::npos) << audit.body;
}

TEST_F(UpgradeApi, ConfirmingOutsideAnInstalledSlotIsRefusedAndTheBundleStaysPending) {
  auto op = operatorClient();
  const std::string passphrase = R"({"backup_passphrase":"correct horse battery"})";
  auto none = op.postJson("/api/v1/upgrade/confirm", passphrase);
  EXPECT_EQ(none.status, 404) << none.body;
  EXPECT_EQ(none.errorCode(), "no_pending_bundle");

  const std::string id = upload(op, bt::goodBundle(4096, newerRelease()));
  ASSERT_EQ(verify(op, id).status, 201);
  const std::string before = vcrm::json::stringify(op.get("/api/v1/upgrade").json());
  const auto files = keptFiles(*vcrmd_);

  auto missing = op.postJson("/api/v1/upgrade/confirm", "{}");
  EXPECT_EQ(missing.status, 400) << missing.body;
  EXPECT_EQ(missing.errorCode(), "passphrase_required");
  auto weak = op.postJson("/api/v1/upgrade/confirm", R"({"backup_passphrase":"short"})");
  EXPECT_EQ(weak.status, 400) << weak.body;
  EXPECT_EQ(weak.errorCode(), "passphrase_too_short");
  auto outside = op.postJson("/api/v1/upgrade/confirm", passphrase);
  EXPECT_EQ(outside.status, 409) << outside.body;
  EXPECT_EQ(outside.errorCode(), "not_installed");
  EXPECT_NE(outside.body.find("packaging/dev run"), std::string::npos) << outside.body;
  auto back = op.postJson("/api/v1/upgrade/go-back", "{}");
  EXPECT_EQ(back.status, 409) << back.body;
  EXPECT_EQ(back.errorCode(), "not_installed");

  EXPECT_EQ(vcrm::json::stringify(op.get("/api/v1/upgrade").json()), before);
  EXPECT_EQ(keptFiles(*vcrmd_), files);
  EXPECT_FALSE(fs::exists(vcrmd_->root() / "var/lib/vcrm/upgrade/journal.json"));
  auto audit = vcrmd_->adminClient().get("/api/v1/audit?username=op&action=upgrade.confirm");
  EXPECT_NE(audit.body.find("\"upgrade.confirm\""), std::string::npos) << audit.body;
  EXPECT_NE(audit.body.find("409"), std::string::npos) << "the refusal is recorded: " << audit.body;
}

TEST_F(UpgradeApi, EveryBadBundleIsRefusedWithItsReasonAndNothingChanges) {
  auto op = operatorClient();
  auto admin = vcrmd_->adminClient();
  const BundleRelease release = newerRelease();
  // A verified bundle waits: a refusal must not replace or touch it.
  const std::string pendingId = upload(op, bt::goodBundle(4096, release));
  ASSERT_EQ(verify(op, pendingId).status, 201);
  std::set<std::string> kept{pendingId};
  const std::string statusBefore = op.get("/api/v1/upgrade").body;
  const std::string slotsBefore = slotsTree(*vcrmd_);
  const std::string dbBefore = dbSnapshot(*vcrmd_);

  struct Case {
    std::string name;
    std::string bytes;
    std::string code;
    bool keepsUpload;
    std::string keyring;
    HttpsClient* as;
    bool allowDowngrade = false;
    std::string says{};
  };
  std::vector<Case> cases;
  const auto finalRefusal = [](BundleReason r) {
    return r != BundleReason::KeyUnknown && r != BundleReason::BelowVersionFloor &&
           r != BundleReason::Downgrade && r != BundleReason::NotEntitled;
  };
  for (const bt::BadBundle& c : bt::badBundles(release)) {
    std::string bytes = c.build();
    // An empty upload never completes (tus finishes on the PATCH that brings the last byte), so
    // an empty file never reaches verification: a file too short for a header stands in for it.
    if (bytes.empty()) {
      cases.push_back({"a single byte", "V", "bundle_truncated", false, "", &op});
      cases.push_back(
          {"a text file", std::string(200, 'a'), "bundle_not_a_bundle", false, "", &op});
      continue;
    }
    cases.push_back({c.name, std::move(bytes),
                     std::string(vcrm::upgrade::bundleReasonCode(c.reason)),
                     !finalRefusal(c.reason), c.keyring, &op});
  }
  const auto policy = [&](std::string name, BundleRelease r, BundleReason reason,
                          HttpsClient* as = nullptr, bool allowDowngrade = false,
                          std::string says = {}) {
    cases.push_back({std::move(name), bt::goodBundle(4096, r),
                     std::string(vcrm::upgrade::bundleReasonCode(reason)), !finalRefusal(reason),
                     "", as ? as : &op, allowDowngrade, std::move(says)});
  };
  BundleRelease r = release;
  r.compatible = "acme-mcu";
  policy("another kind of system", r, BundleReason::Incompatible, nullptr, false, "acme-mcu");
  r = release;
  r.version = "0.0.1";
  r.minVersion = "0.0.1";
  policy("a downgrade", r, BundleReason::Downgrade, nullptr, false, "older than the version");
  policy("a downgrade an operator asks to allow", r, BundleReason::Downgrade, &op, true,
         "only an admin may allow a downgrade");
  r.version = vcrm::productVersion();
  policy("the same version", r, BundleReason::Downgrade, &admin, false, "the version");
  r = release;
  r.minVersion = "99.0.0";
  policy("a version too old to upgrade from", r, BundleReason::BelowVersionFloor, nullptr, false,
         "upgrade to 99.0.0 first");
  r = release;
  r.releaseDate = dayAfter(licenceUpgradesUntil(admin));
  policy("released after the licence's upgrades-until", r, BundleReason::NotEntitled, nullptr,
         false, "licence upgrade file");
  r.version = "0.0.1";
  r.minVersion = "0.0.1";
  policy("an allowed downgrade released after the licence's date", r, BundleReason::NotEntitled,
         &admin, true);
  ASSERT_GE(cases.size(), 90u);

  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    installKeyring(*vcrmd_, c.keyring.empty() ? bt::testBundleKeyringText() : c.keyring);
    const auto u = vcrm::test::uploadWhole(op, "/api/v1/upgrade/uploads", c.bytes);
    ASSERT_EQ(u.finished.status, 201) << u.finished.body;
    const auto answer = verify(*c.as, u.id, c.allowDowngrade);
    ASSERT_EQ(answer.status, 422) << answer.body;
    EXPECT_EQ(answer.errorCode(), c.code) << answer.body;
    const std::string message = answer.json()->getObject("error")->getValue<std::string>("message");
    EXPECT_GT(message.size(), 40u) << "a refusal says what is wrong and what to do: " << message;
    if (!c.says.empty()) {
      EXPECT_NE(message.find(c.says), std::string::npos) << message;
    }
    if (c.keepsUpload) kept.insert(u.id);
    EXPECT_EQ(keptFiles(*vcrmd_), filesOfUploads(kept))
        << (c.keepsUpload ? "a refusal an operator can clear keeps the upload"
                          : "a refused file is removed at once");
    EXPECT_EQ(op.get("/api/v1/upgrade").body, statusBefore);
    EXPECT_EQ(slotsTree(*vcrmd_), slotsBefore);
    EXPECT_TRUE(dbSnapshot(*vcrmd_) == dbBefore) << "a refused bundle changed the database";
  }
  // The pending bundle itself verified again once its key is revoked: refused, and its file is
  // not removed from under the record that names it.
  installKeyring(*vcrmd_, bt::testBundleKeyringText() + "revoked vcrm-test-bundle-1\n");
  const auto again = verify(op, pendingId);
  EXPECT_EQ(again.status, 422) << again.body;
  EXPECT_EQ(again.errorCode(), "bundle_key_revoked") << again.body;
  EXPECT_EQ(keptFiles(*vcrmd_), filesOfUploads(kept));
  EXPECT_EQ(op.get("/api/v1/upgrade").body, statusBefore);
  installKeyring(*vcrmd_, bt::testBundleKeyringText());

  // An admin may allow the downgrade the operator could not: it replaces the pending bundle.
  r = release;
  r.version = "0.0.1";
  r.minVersion = "0.0.1";
  const std::string older = upload(op, bt::goodBundle(4096, r));
  auto allowed = verify(admin, older, true);
  ASSERT_EQ(allowed.status, 201) << allowed.body;
  EXPECT_TRUE(allowed.json()->getObject("bundle")->getValue<bool>("downgrade"));
  EXPECT_TRUE(allowed.json()->getObject("bundle")->getValue<bool>("allow_downgrade"));
  kept.erase(pendingId);
  kept.insert(older);
  EXPECT_EQ(keptFiles(*vcrmd_), filesOfUploads(kept));
  EXPECT_TRUE(dbSnapshot(*vcrmd_) == dbBefore);
}

TEST_F(UpgradeApi, WithoutTrustedKeysNothingVerifiesAndTheUploadIsKept) {
  auto op = operatorClient();
  const std::string id = upload(op, bt::goodBundle(4096, newerRelease()));
  fs::remove(keyringFile(*vcrmd_));
  auto r = verify(op, id);
  ASSERT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(r.errorCode(), "bundle_keyring_missing");
  const std::string message = r.json()->getObject("error")->getValue<std::string>("message");
  EXPECT_NE(message.find("no trusted bundle signing keys are installed"), std::string::npos);
  EXPECT_NE(message.find(keyringFile(*vcrmd_).string()), std::string::npos) << message;

  installKeyring(*vcrmd_, "# no keys yet\nrevoked vcrm-test-bundle-1\n");
  r = verify(op, id);
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(r.errorCode(), "bundle_keyring_missing");

  installKeyring(*vcrmd_, "key vcrm-test-bundle-1 ed25519 not-base64\n");
  r = verify(op, id);
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(r.errorCode(), "bundle_keyring_invalid");
  EXPECT_NE(r.body.find("line 1"), std::string::npos) << r.body;

  installKeyring(*vcrmd_, bt::testBundleKeyringText());
  ::chmod(keyringFile(*vcrmd_).c_str(), 0666);
  r = verify(op, id);
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(r.errorCode(), "bundle_keyring_untrusted");

  EXPECT_EQ(keptFiles(*vcrmd_), filesOfUploads({id}));
  installKeyring(*vcrmd_, bt::testBundleKeyringText());
  r = verify(op, id);
  EXPECT_EQ(r.status, 201) << "installing the key is enough, no new upload: " << r.body;
}

TEST_F(UpgradeApi, ABundleTheSlotsHaveNoRoomForIsRefusedAndKept) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting a small filesystem needs root";
  const fs::path opt = vcrmd_->root() / "opt";
  fs::create_directories(opt);
  ASSERT_EQ(
      vcrm::process::run({"/usr/bin/mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", opt.string()})
          .exitCode,
      0);
  struct Unmount {
    fs::path dir;
    ~Unmount() {
      vcrm::process::run({"/usr/bin/umount", dir.string()});
      std::error_code ec;
      fs::remove(dir, ec);
    }
  } unmount{opt};
  auto op = operatorClient();
  const std::string id = upload(op, bt::goodBundle(4096, newerRelease()));
  auto r = verify(op, id);
  ASSERT_EQ(r.status, 507) << r.body;
  EXPECT_EQ(r.errorCode(), "insufficient_storage");
  EXPECT_NE(r.body.find("MiB free in " + opt.string()), std::string::npos) << r.body;
  EXPECT_EQ(op.get("/api/v1/upgrade").json()->getValue<std::string>("state"), "idle");
  EXPECT_EQ(keptFiles(*vcrmd_), filesOfUploads({id})) << "kept, to verify again once there is room";
}

TEST_F(UpgradeApi, ADamagedPendingRecordIsShownAndCanBeDiscarded) {
  auto op = operatorClient();
  const std::string id = upload(op, bt::goodBundle(4096, newerRelease()));
  ASSERT_EQ(verify(op, id).status, 201);
  vcrm::files::atomicWrite(vcrmd_->stateDir() / "upgrade/pending.json", "{\"id\":", 0600);
  auto r = op.get("/api/v1/upgrade");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()->getValue<std::string>("state"), "idle");
  EXPECT_NE(r.json()->getValue<std::string>("pending_error").find("DELETE /api/v1/upgrade/pending"),
            std::string::npos)
      << r.body;
  EXPECT_EQ(op.request("DELETE", "/api/v1/upgrade/pending").status, 204);
  r = op.get("/api/v1/upgrade");
  EXPECT_FALSE(r.json()->has("pending_error")) << r.body;
  EXPECT_EQ(verify(op, id).status, 201) << "the kept file verifies again";
}

TEST_F(UpgradeApi, UnknownAndMalformedUploadIdsAreNotFound) {
  auto op = operatorClient();
  for (const std::string& id :
       {std::string("0123456789abcdef0123456789abcdef"), std::string("../../etc/passwd")}) {
    auto r = verify(op, id);
    EXPECT_EQ(r.status, 404) << id << ": " << r.body;
    EXPECT_EQ(r.errorCode(), "upload_not_found") << r.body;
  }
  EXPECT_EQ(op.postJson("/api/v1/upgrade", R"({"upload_id":7})").status, 400);
  EXPECT_EQ(op.postJson("/api/v1/upgrade", R"({"upload_id":"x","allow_downgrade":"yes"})").status,
            400);
  EXPECT_EQ(op.postJson("/api/v1/upgrade", R"({"upload_id":"x","apply":true})").status, 400);
}

TEST_F(UpgradeApi, UploadsNobodyVerifiedExpireButThePendingBundleStays) {
  auto op = operatorClient();
  const std::string pendingId = upload(op, bt::goodBundle(4096, newerRelease()));
  ASSERT_EQ(verify(op, pendingId).status, 201);
  const std::string unverified = upload(op, bt::goodBundle(4096, newerRelease()));
  // Both look two days old (the default expiry is a day); the sweeper's first pass is at start.
  const auto old = std::chrono::system_clock::now() - std::chrono::hours(48);
  const time_t t = std::chrono::system_clock::to_time_t(old);
  for (const auto& name : filesOfUploads({pendingId, unverified})) {
    const utimbuf times{t, t};
    ASSERT_EQ(::utime((uploadsDir(*vcrmd_) / name).c_str(), &times), 0) << name;
  }
  vcrmd_->stop();
  vcrmd_->start();
  EXPECT_TRUE(vcrm::test::eventually(
      [&] { return keptFiles(*vcrmd_) == filesOfUploads({pendingId}); }, std::chrono::seconds(30)))
      << "kept: " << keptFiles(*vcrmd_).size() << " files";
  op = operatorClient();
  EXPECT_EQ(op.get("/api/v1/upgrade").json()->getObject("pending")->getValue<std::string>("id"),
            pendingId);
}

}  // namespace
