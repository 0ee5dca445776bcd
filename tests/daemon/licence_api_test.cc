// Licences through a real vcrmd: the serial made at first start and kept across restarts, the
// active licence, preview with its diff, apply (the previous file kept, an audit entry), and the
// bad-licence catalogue, each refused with its reason while the active licence stays
// byte-for-byte the same. vcrmctl sends a licence file too.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <csignal>
#include <fstream>

#include "child.h"
#include "licence_cases.h"
#include "vcrm/common/db.h"
#include "vcrm/common/files.h"
#include "vcrm/common/json.h"
#include "vcrm/licensing/licence_file.h"
#include "vcrm/licensing/policy.h"
#include "vcrm/licensing/serial.h"
#include "vcrmd_process.h"

namespace vcrm {
namespace {

using test::HttpResult;
using test::HttpsClient;
using test::VcrmdProcess;
using namespace licensing;

std::int64_t nowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Runs a command line tool to its end (at most 60 s) and returns its exit status and output.
test::Ran runCapture(const std::vector<std::string>& args, const std::filesystem::path& log) {
  return test::runToEnd(args, log);
}

std::string fileBody(const std::string& file) {
  json::ObjectPtr o = new json::Object;
  o->set("file", file);
  return json::stringify(o);
}

class LicenceApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir("vcrm-licence");
    revoked_ = new SigningKey(SigningKey::generate("vcrm-old-0"));
    // The build's keyring plus a vendor key that has been revoked.
    keyring_ = (dir_->path() / "keyring").string();
    files::atomicWrite(keyring_, std::string(Keyring::builtInText()) + "\n" +
                                     revoked_->keyringLine() + "\nrevoked " + revoked_->keyId +
                                     "\n");
    VcrmdProcess::Options o;
    o.settings = {"licence.keyring=" + keyring_};
    o.applyTestLicence = false;
    app_ = new VcrmdProcess(o);
    app_->start();
  }
  static void TearDownTestSuite() {
    delete app_;
    delete revoked_;
    delete dir_;
  }

  HttpsClient admin() {
    auto c = app_->client();
    EXPECT_EQ(c.loginBearer("admin", app_->adminPassword()).status, 200);
    return c;
  }
  HttpResult post(HttpsClient& c, const std::string& path, const std::string& file) {
    return c.postJson(path, fileBody(file));
  }
  // The active licence's row as stored, compared byte for byte.
  std::string storedActive() {
    db::Connection c("host=" + db::dsnQuote((app_->stateDir() / "pgsocket").string()) +
                     " port=5432 user=vcrm dbname=vcrm connect_timeout=10");
    auto r = c.exec("SELECT id::text || ':' || file FROM licences WHERE replaced_at IS NULL");
    return r.empty() ? std::string() : r.text(0, 0);
  }
  std::string serial() {
    auto c = admin();
    return c.get("/api/v1/license").json()->getValue<std::string>("serial");
  }

  static test::TempDir* dir_;
  static SigningKey* revoked_;
  static std::string keyring_;
  static VcrmdProcess* app_;
};

test::TempDir* LicenceApiTest::dir_ = nullptr;
SigningKey* LicenceApiTest::revoked_ = nullptr;
std::string LicenceApiTest::keyring_;
VcrmdProcess* LicenceApiTest::app_ = nullptr;

TEST_F(LicenceApiTest, ApplyPreviewRefuseAndRestart) {
  auto c = admin();
  // First start: a serial, evaluation mode.
  auto r = c.get("/api/v1/license");
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string serial = r.json()->getValue<std::string>("serial");
  EXPECT_TRUE(isCanonicalSerial(serial)) << serial;
  EXPECT_EQ(files::readFile(app_->stateDir() / "serial"), serial + "\n");
  EXPECT_EQ(r.json()->getValue<std::string>("state"), "evaluation");
  EXPECT_TRUE(r.json()->isNull("active"));
  EXPECT_EQ(r.json()->getObject("status")->getObject("limits")->getValue<int>("concurrent_ports"),
            kEvaluationLimits.concurrentPorts);

  // Apply the first licence.
  const std::int64_t now = nowSeconds();
  const SigningKey key = test::testLicenceKey();
  const std::string first = issueLicence(test::sampleLicence(serial, now, 10), key);
  r = post(c, "/api/v1/license/preview", first);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(r.json()->isNull("active"));
  EXPECT_EQ(storedActive(), "");  // a preview changes nothing
  r = post(c, "/api/v1/license", first);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()->getValue<std::string>("state"), "valid");
  EXPECT_EQ(r.json()->getObject("active")->getValue<std::string>("licence_id"), "L-TEST-10");
  EXPECT_EQ(r.json()->getValue<std::string>("file"), first);
  EXPECT_EQ(r.json()->getValue<std::string>("applied_by"), "admin");

  // Preview an update: the diff against the active licence.
  Licence next = test::sampleLicence(serial, now, 11);
  next.features.concurrentPorts = 80;
  next.validUntil = std::nullopt;
  const std::string second = issueLicence(next, key);
  const std::string before = storedActive();
  r = post(c, "/api/v1/license/preview", second);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()->getObject("active")->getValue<std::string>("licence_id"), "L-TEST-10");
  std::map<std::string, std::pair<std::string, std::string>> changes;
  auto arr = r.json()->getArray("changes");
  for (std::size_t i = 0; i < arr->size(); ++i) {
    auto ch = arr->getObject(static_cast<unsigned>(i));
    auto text = [](const Poco::Dynamic::Var& v) {
      return v.isEmpty() ? std::string("null") : v.toString();
    };
    changes[ch->getValue<std::string>("field")] = {text(ch->get("before")), text(ch->get("after"))};
  }
  EXPECT_EQ(changes["features.concurrent_ports"],
            std::make_pair(std::string("40"), std::string("80")));
  EXPECT_EQ(changes["sequence"], std::make_pair(std::string("10"), std::string("11")));
  EXPECT_TRUE(changes.count("valid_until"));
  EXPECT_FALSE(changes.count("customer"));
  EXPECT_EQ(storedActive(), before);

  // Every bad licence: refused with its reason, on preview and on apply; nothing changes.
  const auto cases = test::badLicences(serial, now, 10, *revoked_);
  ASSERT_GE(cases.size(), 30u);
  for (const auto& bad : cases) {
    for (const std::string path : {"/api/v1/license/preview", "/api/v1/license"}) {
      r = post(c, path, bad.file);
      EXPECT_GE(r.status, 400) << bad.name << " " << path << ": " << r.body;
      EXPECT_LT(r.status, 500) << bad.name << " " << path << ": " << r.body;
      // The JSON layer refuses a NUL in any string field before the licence is looked at.
      const std::string expected = bad.name == "embedded NUL in the file"
                                       ? "invalid_field"
                                       : std::string(reasonCode(bad.reason));
      EXPECT_EQ(r.errorCode(), expected) << bad.name << " " << path << ": " << r.body;
      EXPECT_EQ(storedActive(), before) << bad.name << " changed the active licence";
    }
  }
  r = c.get("/api/v1/license");
  EXPECT_EQ(r.json()->getValue<std::string>("file"), first);

  // Statuses an admin's tools can tell apart.
  EXPECT_EQ(post(c, "/api/v1/license", "").status, 400);
  r = post(c, "/api/v1/license", std::string(70000, 'A'));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.errorCode(), "licence_too_large");
  EXPECT_EQ(post(c, "/api/v1/license",
                 issueLicence(test::sampleLicence("0000-0000-0000-0000-0", now, 12), key))
                .status,
            422);
  EXPECT_EQ(post(c, "/api/v1/license", first).status, 409);

  // Apply the update: the previous file is kept, the audit log says who applied what.
  r = post(c, "/api/v1/license", second);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()->getObject("active")->getValue<std::string>("licence_id"), "L-TEST-11");
  EXPECT_EQ(r.json()->getObject("previous")->getValue<std::string>("licence_id"), "L-TEST-10");
  EXPECT_EQ(r.json()->getObject("status")->getObject("limits")->getValue<int>("concurrent_ports"),
            80);
  auto audit = c.get("/api/v1/audit?action=licence.apply&limit=50");
  ASSERT_EQ(audit.status, 200);
  auto entries = audit.json()->getArray("entries");
  ASSERT_GE(entries->size(), 2u);
  EXPECT_EQ(entries->getObject(0)->getValue<std::string>("target"), "L-TEST-11");
  EXPECT_EQ(entries->getObject(0)->getValue<std::string>("outcome"), "ok");
  EXPECT_EQ(entries->getObject(0)->getValue<std::string>("username"), "admin");
  {
    db::Connection db("host=" + db::dsnQuote((app_->stateDir() / "pgsocket").string()) +
                      " port=5432 user=vcrm dbname=vcrm connect_timeout=10");
    auto kept = db.exec(
        "SELECT file FROM licences WHERE licence_id = 'L-TEST-10' AND replaced_at IS NOT NULL");
    ASSERT_EQ(kept.rows(), 1);
    EXPECT_EQ(kept.text(0, 0), first);
  }

  // A restart keeps the serial and the active licence.
  app_->stop();
  app_->start();
  auto again = admin();
  r = again.get("/api/v1/license");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()->getValue<std::string>("serial"), serial);
  EXPECT_EQ(r.json()->getObject("active")->getValue<std::string>("licence_id"), "L-TEST-11");
}

TEST_F(LicenceApiTest, VcrmctlShowsTheSerialAndPreviewsAndAppliesAFile) {
  const std::string serial = this->serial();
  auto c = admin();
  const std::int64_t seq = c.get("/api/v1/license").json()->isNull("active")
                               ? 1
                               : c.get("/api/v1/license")
                                     .json()
                                     ->getObject("active")
                                     ->getValue<std::int64_t>("sequence");
  const std::string path = (dir_->path() / "site.lic").string();
  files::atomicWrite(path, issueLicence(test::sampleLicence(serial, nowSeconds(), seq + 5),
                                        test::testLicenceKey()));
  const std::string ctl = (test::binDir() / "vcrmctl").string();
  const auto log = dir_->path() / "vcrmctl.log";
  const std::string root = app_->root().string();
  setenv("VCRM_PASSWORD", app_->adminPassword().c_str(), 1);
  auto out = runCapture({ctl, "--root", root, "GET", "/api/v1/license", "--field", "serial"}, log);
  EXPECT_EQ(out.status, 0) << out.output;
  EXPECT_EQ(out.output, serial + "\n");
  out = runCapture(
      {ctl, "--root", root, "POST", "/api/v1/license/preview", "--file-field", "file=" + path},
      log);
  EXPECT_EQ(out.status, 0) << out.output;
  EXPECT_NE(out.output.find("\"changes\""), std::string::npos) << out.output;
  out = runCapture({ctl, "--root", root, "POST", "/api/v1/license", "--file-field", "file=" + path,
                    "--field", "state"},
                   log);
  EXPECT_EQ(out.status, 0) << out.output;
  EXPECT_EQ(out.output, "valid\n");
  // A refusal: exit status 1 and the reason.
  out = runCapture({ctl, "--root", root, "POST", "/api/v1/license", "--file-field", "file=" + path},
                   log);
  EXPECT_EQ(out.status, 1) << out.output;
  EXPECT_NE(out.output.find("not newer than the active licence"), std::string::npos) << out.output;
  unsetenv("VCRM_PASSWORD");
}

}  // namespace
}  // namespace vcrm
