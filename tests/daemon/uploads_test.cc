// Streamed, resumable uploads (tus 1.0) on an in-process vcrmd with an upload route of the
// test's own, on 127.0.0.1 over TLS, into real files: memory stays flat over 2 GiB, a cut
// upload resumes to the same hash, lying lengths and chunks past the end keep nothing they
// should not, two clients cannot interleave, abandoned uploads expire, and space runs out
// with a 507.
#include <gtest/gtest.h>

#include <sys/mount.h>
#include <sys/stat.h>

#include <Poco/JSON/Array.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <random>
#include <thread>

#include "eventually.h"
#include "https_client.h"
#include "temp_dir.h"
#include "tus_client.h"
#include "vcrm/common/crypto.h"
#include "vcrm/common/files.h"
#include "modules/uploads/uploads_module.h"
#include "vcrm/daemon/app.h"

namespace fs = std::filesystem;
using vcrm::test::HttpResult;
using vcrm::test::HttpsClient;
using vcrm::test::PatternBytes;
using vcrm::test::RawTls;

namespace {

constexpr const char* kCollection = "/api/v1/test/uploads";
constexpr std::uint64_t kCap = 3ull << 30;  // the test route's per-upload cap
std::atomic<int> completions{0};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

long vmHwmKib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

std::string patternSha(const PatternBytes& bytes, std::uint64_t length) {
  vcrm::crypto::Sha256 h;
  std::vector<char> buf(1 << 20);
  for (std::uint64_t at = 0; at < length;) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), length - at));
    bytes.fill(at, buf.data(), n);
    h.update(buf.data(), n);
    at += n;
  }
  return h.finishHex();
}

// The module a later one (upgrade bundles, backup archives) would be: one upload route whose
// completion handler answers with what it was given.
class TestUploadModule : public vcrm::NamedModule {
 public:
  explicit TestUploadModule(const vcrm::ModuleContext& ctx)
      : NamedModule("test-uploads"), uploads_(ctx.require<vcrm::UploadsModule>()) {}
  std::vector<vcrm::Route> routes() override {
    vcrm::UploadSpec spec;
    spec.purpose = "test-file";
    spec.maxBytes = kCap;
    spec.onComplete = [](vcrm::RequestContext&, const vcrm::FinishedUpload& f) {
      ++completions;
      vcrm::json::ObjectPtr o = new vcrm::json::Object;
      o->set("sha256", f.sha256Hex);
      o->set("size", static_cast<Poco::UInt64>(f.size));
      o->set("purpose", f.purpose);
      o->set("owner", f.owner);
      o->set("filename", f.metadata.count("filename") ? f.metadata.at("filename") : "");
      o->set("file_sha256", f.size < (64u << 20) ? vcrm::crypto::sha256Hex(vcrm::files::readFile(f.path)) : "");
      return vcrm::http::Response::json(200, o);
    };
    return uploads_.serve(vcrm::uploadRoute(kCollection, vcrm::roles::kAdmin, "test.upload", spec));
  }

 private:
  vcrm::UploadsModule& uploads_;
};

// vcrmd's App in this process, on a root of its own, with the test's upload module.
class Appliance {
 public:
  explicit Appliance(std::vector<std::string> settings = {},
                     const std::function<void(const fs::path&)>& beforeStart = {})
      : log_(vcrm::LogLevel::Warn) {
    settings.insert(settings.begin(), {"https.port=0", "http.port=-1", "bridge_events.port=-1",
                                       "http.listen=127.0.0.1", "http.threads=8"});
    if (beforeStart) beforeStart(root_.path());
    app_ = std::make_unique<vcrm::App>(vcrm::Config::load(root_.path(), settings), log_,
                                       std::vector<vcrm::App::ModuleFactory>{[](const vcrm::ModuleContext& ctx) {
                                         return std::make_unique<TestUploadModule>(ctx);
                                       }});
    app_->start();
    auto c = client();
    std::string initial = slurp(stateDir() / "initial-admin-password");
    while (!initial.empty() && initial.back() == '\n') initial.pop_back();
    auto r = c.loginBearer("admin", initial);
    if (r.status != 200) throw std::runtime_error("login failed: " + r.body);
    bearer_ = r.json()->getValue<std::string>("token");
    // The one-time password allows nothing but choosing one's own, as an operator would first.
    auto changed = c.postJson("/api/v1/auth/password",
                              R"({"current_password":")" + initial + R"(","new_password":")" + password_ + R"("})");
    if (changed.status != 204) throw std::runtime_error("password change failed: " + changed.body);
  }
  ~Appliance() { app_->stop(); }

  std::string password() const { return password_; }
  fs::path stateDir() const { return root_.path() / "var/lib/vcrm"; }
  const std::string password_ = "uploads admin pass phrase";
  fs::path uploadsDir() const { return stateDir() / "uploads"; }
  std::string caFile() const { return (stateDir() / "tls/server.crt").string(); }
  int port() const { return app_->httpsPort(); }
  HttpsClient client() const { return HttpsClient("127.0.0.1", port(), caFile()); }
  HttpsClient admin() const {
    auto c = client();
    c.setBearer(bearer_);
    return c;
  }
  const std::string& bearer() const { return bearer_; }
  std::unique_ptr<RawTls> raw() const { return std::make_unique<RawTls>("127.0.0.1", port(), caFile()); }
  vcrm::UploadStore& store() {
    for (const auto& m : app_->modules()->all()) {
      if (auto* u = dynamic_cast<vcrm::UploadsModule*>(m.get())) return u->store();
    }
    throw std::runtime_error("no uploads module");
  }

  // POST: returns the upload's path ("<collection>/<id>").
  std::string create(std::uint64_t length, const std::string& metadata = {}) {
    std::map<std::string, std::string> h{{"Tus-Resumable", "1.0.0"}, {"Upload-Length", std::to_string(length)}};
    if (!metadata.empty()) h["Upload-Metadata"] = metadata;
    auto r = admin().request("POST", kCollection, "", h);
    if (r.status != 201) throw std::runtime_error("create failed: " + std::to_string(r.status) + " " + r.body);
    return r.header("location");
  }
  HttpResult head(const std::string& path) {
    return admin().request("HEAD", path, "", {{"Tus-Resumable", "1.0.0"}});
  }
  std::uint64_t offset(const std::string& path) { return std::stoull(head(path).header("upload-offset")); }
  // One whole PATCH of pattern bytes [from, from+count) with an honest Content-Length.
  HttpResult patch(const std::string& path, const PatternBytes& bytes, std::uint64_t from, std::uint64_t count) {
    auto conn = raw();
    conn->send(vcrm::test::tusPatchHead(path, bearer_, from, count));
    vcrm::test::sendPattern(*conn, bytes, from, count);
    return conn->readResponse();
  }
  // Waits until no request holds the upload (a zero-byte PATCH at its offset is taken).
  std::uint64_t settledOffset(const std::string& path) {
    std::uint64_t at = 0;
    const bool settled = vcrm::test::eventually([&] {
      at = offset(path);
      auto conn = raw();
      conn->send(vcrm::test::tusPatchHead(path, bearer_, at, 0));
      return conn->readResponse().status == 204;
    }, std::chrono::seconds(30));
    if (!settled) throw std::runtime_error("the upload stayed busy");
    return at;
  }
  fs::path dataFile(const std::string& path) const {
    return uploadsDir() / (path.substr(path.rfind('/') + 1) + ".data");
  }
  fs::path stateFile(const std::string& path) const {
    return uploadsDir() / (path.substr(path.rfind('/') + 1) + ".json");
  }

 private:
  vcrm::test::TempDir root_{"vcrm-uploads"};
  vcrm::Logger log_;
  std::unique_ptr<vcrm::App> app_;
  std::string bearer_;
};

class UploadsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { app_ = new Appliance({"uploads.max_total_mb=4096"}); }
  static void TearDownTestSuite() {
    delete app_;
    app_ = nullptr;
  }
  static Appliance* app_;
};
Appliance* UploadsTest::app_ = nullptr;

TEST_F(UploadsTest, TheUploadsDirectoryIsPrivateToTheDaemon) {
  struct stat st {};
  ASSERT_EQ(::stat(app_->uploadsDir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(st.st_uid, ::geteuid());
}

TEST_F(UploadsTest, OptionsAnnouncesTusAndTheRouteCap) {
  auto r = app_->admin().request("OPTIONS", kCollection);
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_EQ(r.header("tus-version"), "1.0.0");
  EXPECT_EQ(r.header("tus-max-size"), std::to_string(kCap));
  EXPECT_EQ(r.header("tus-extension"), "creation,termination,expiration");
}

TEST_F(UploadsTest, SmallUploadCompletesWithTheModulesAnswerReadableAfterwards) {
  PatternBytes bytes(7);
  const std::string path = app_->create(100000, "filename " + vcrm::crypto::base64Encode("bundle.bin"));
  ASSERT_EQ(path.rfind(std::string(kCollection) + "/", 0), 0u) << path;
  auto h = app_->head(path);
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.header("upload-offset"), "0");
  EXPECT_EQ(h.header("upload-length"), "100000");
  EXPECT_EQ(h.header("tus-resumable"), "1.0.0");
  EXPECT_EQ(h.header("cache-control"), "no-store");
  EXPECT_FALSE(h.header("upload-expires").empty());

  auto first = app_->patch(path, bytes, 0, 40000);
  EXPECT_EQ(first.status, 204) << first.body;
  EXPECT_EQ(first.header("upload-offset"), "40000");
  const int before = completions.load();
  auto last = app_->patch(path, bytes, 40000, 60000);
  ASSERT_EQ(last.status, 200) << last.body;
  EXPECT_EQ(last.header("upload-offset"), "100000");
  EXPECT_EQ(completions.load(), before + 1);
  const std::string want = patternSha(bytes, 100000);
  EXPECT_EQ(last.json()->getValue<std::string>("sha256"), want);
  EXPECT_EQ(last.json()->getValue<std::string>("file_sha256"), want);
  EXPECT_EQ(last.json()->getValue<std::string>("filename"), "bundle.bin");
  EXPECT_EQ(last.json()->getValue<std::string>("owner"), "admin");

  auto again = app_->admin().get(path);
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.json()->getValue<std::string>("sha256"), want);

  auto del = app_->admin().request("DELETE", path, "", {{"Tus-Resumable", "1.0.0"}});
  EXPECT_EQ(del.status, 204);
  EXPECT_EQ(app_->head(path).status, 404);
  EXPECT_FALSE(fs::exists(app_->dataFile(path)));
}

TEST_F(UploadsTest, TwoGibStreamInConstantMemoryAndTheHashesAgree) {
  const std::uint64_t length = 2ull << 30;
  PatternBytes bytes(20240601);
  const std::string path = app_->create(length);
  const long before = vmHwmKib();
  const auto t0 = std::chrono::steady_clock::now();
  // The client hashes what it sends as it sends it: no 2 GiB file on this side either.
  vcrm::crypto::Sha256 sent;
  auto conn = app_->raw();
  conn->send(vcrm::test::tusPatchHead(path, app_->bearer(), 0, length));
  std::vector<char> buf(1 << 20);
  for (std::uint64_t at = 0; at < length; at += buf.size()) {
    bytes.fill(at, buf.data(), buf.size());
    sent.update(buf.data(), buf.size());
    conn->send(buf.data(), buf.size());
  }
  auto r = conn->readResponse();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const long after = vmHwmKib();
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()->getValue<std::string>("sha256"), sent.finishHex());
  EXPECT_EQ(fs::file_size(app_->dataFile(path)), length);
  std::printf("2 GiB upload: %.1f s (%.0f MB/s), peak RSS %ld -> %ld KiB\n", secs,
              static_cast<double>(length) / 1e6 / secs, before, after);
  EXPECT_LT(after - before, 64 * 1024) << "peak RSS grew by " << (after - before) << " KiB";
  EXPECT_EQ(app_->admin().request("DELETE", path, "", {{"Tus-Resumable", "1.0.0"}}).status, 204);
}

TEST_F(UploadsTest, ResumeAfterACutAtARandomOffsetGivesTheSameHash) {
  const std::uint64_t length = 48ull << 20;
  const auto seed = static_cast<std::uint64_t>(std::random_device{}());
  std::mt19937_64 rng(seed);
  const std::uint64_t cutAt = 1 + rng() % (length - 2);
  SCOPED_TRACE("seed " + std::to_string(seed) + ", cut after " + std::to_string(cutAt) + " bytes");
  PatternBytes bytes(seed);
  const std::string path = app_->create(length);
  {
    auto conn = app_->raw();
    conn->send(vcrm::test::tusPatchHead(path, app_->bearer(), 0, length));
    vcrm::test::sendPattern(*conn, bytes, 0, cutAt);
    conn->cut();
  }
  const std::uint64_t at = app_->settledOffset(path);
  EXPECT_LE(at, cutAt);
  EXPECT_EQ(fs::file_size(app_->dataFile(path)), at) << "every byte counted is on disk";
  EXPECT_EQ(vcrm::crypto::sha256Hex(slurp(app_->dataFile(path))), patternSha(bytes, at));
  auto r = app_->patch(path, bytes, at, length - at);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()->getValue<std::string>("sha256"), patternSha(bytes, length));
  EXPECT_EQ(r.json()->getValue<std::string>("file_sha256"), patternSha(bytes, length));
}

TEST_F(UploadsTest, ABodyShorterThanItsContentLengthKeepsWhatArrived) {
  PatternBytes bytes(11);
  const std::string path = app_->create(1 << 20);
  {
    auto conn = app_->raw();
    conn->send(vcrm::test::tusPatchHead(path, app_->bearer(), 0, 1 << 20));
    vcrm::test::sendPattern(*conn, bytes, 0, 300000);
    conn->endSending();
    // The server's TLS session ends with the TCP stream, so an answer may not get through.
    auto r = conn->readResponse();
    EXPECT_TRUE(r.status == 0 || r.status == 204) << r.status << " " << r.body;
  }
  EXPECT_EQ(app_->settledOffset(path), 300000u);
  EXPECT_TRUE(slurp(app_->dataFile(path)) == bytes.at(0, 300000));
}

TEST_F(UploadsTest, ABodyLongerThanItsContentLengthAppendsOnlyTheDeclaredBytes) {
  PatternBytes bytes(12);
  const std::string path = app_->create(10000);
  auto conn = app_->raw();
  conn->send(vcrm::test::tusPatchHead(path, app_->bearer(), 0, 1000));
  vcrm::test::sendPattern(*conn, bytes, 0, 3000);  // 2000 bytes more than declared
  conn->send("\r\n\r\n");
  auto r = conn->readResponse();
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_EQ(r.header("upload-offset"), "1000");
  // What follows is not a request: refused, and never appended.
  auto junk = conn->readResponse();
  EXPECT_TRUE(junk.status == 0 || junk.status == 400) << junk.status;
  EXPECT_EQ(app_->settledOffset(path), 1000u);
  EXPECT_TRUE(slurp(app_->dataFile(path)) == bytes.at(0, 1000));
}

TEST_F(UploadsTest, AChunkPastTheDeclaredSizeIsRefusedAndChangesNothing) {
  PatternBytes bytes(13);
  const std::string path = app_->create(1000);
  ASSERT_EQ(app_->patch(path, bytes, 0, 600).status, 204);
  const std::string stateBefore = slurp(app_->stateFile(path));

  auto declared = app_->patch(path, bytes, 600, 401);  // Content-Length says it all up front
  EXPECT_EQ(declared.status, 413) << declared.body;
  EXPECT_EQ(declared.errorCode(), "past_upload_length");

  auto conn = app_->raw();  // chunked: the excess shows only once 400 bytes have arrived
  conn->send(vcrm::test::tusPatchHead(path, app_->bearer(), 600, std::nullopt));
  vcrm::test::sendPattern(*conn, bytes, 600, 401, true);
  conn->send("0\r\n\r\n");
  auto chunked = conn->readResponse();
  EXPECT_EQ(chunked.status, 413) << chunked.body;

  EXPECT_EQ(slurp(app_->stateFile(path)), stateBefore) << "the state file is unchanged byte for byte";
  EXPECT_TRUE(slurp(app_->dataFile(path)) == bytes.at(0, 600));
  EXPECT_EQ(app_->settledOffset(path), 600u);
  auto rest = app_->patch(path, bytes, 600, 400);  // and the upload still completes correctly
  ASSERT_EQ(rest.status, 200) << rest.body;
  EXPECT_EQ(rest.json()->getValue<std::string>("sha256"), patternSha(bytes, 1000));
}

TEST_F(UploadsTest, TwoClientsResumingTheSameUploadCannotInterleave) {
  const std::uint64_t length = 16ull << 20;
  PatternBytes bytes(14);
  const std::string path = app_->create(length);
  auto first = app_->raw();
  first->send(vcrm::test::tusPatchHead(path, app_->bearer(), 0, length));
  vcrm::test::sendPattern(*first, bytes, 0, 1 << 20);
  // Once bytes reach the file the first client's request holds the upload.
  ASSERT_TRUE(vcrm::test::eventually([&] { return fs::file_size(app_->dataFile(path)) > 0; },
                                     std::chrono::seconds(10)));
  auto second = app_->patch(path, bytes, 0, 4096);
  EXPECT_EQ(second.status, 423) << second.body;
  EXPECT_EQ(second.errorCode(), "upload_locked");
  vcrm::test::sendPattern(*first, bytes, 1 << 20, length - (1 << 20));
  auto won = first->readResponse();
  ASSERT_EQ(won.status, 200) << won.body;
  auto late = app_->patch(path, bytes, 0, 4096);
  EXPECT_EQ(late.status, 409) << late.body;
  EXPECT_EQ(late.errorCode(), "offset_mismatch");
  EXPECT_EQ(vcrm::crypto::sha256Hex(slurp(app_->dataFile(path))), patternSha(bytes, length));
}

TEST_F(UploadsTest, AWrongOffsetIsAConflictThatNamesTheRightOne) {
  PatternBytes bytes(15);
  const std::string path = app_->create(5000);
  ASSERT_EQ(app_->patch(path, bytes, 0, 1000).status, 204);
  auto r = app_->patch(path, bytes, 500, 100);
  EXPECT_EQ(r.status, 409);
  EXPECT_NE(r.body.find("has 1000 bytes"), std::string::npos) << r.body;
  EXPECT_EQ(app_->offset(path), 1000u);
}

TEST_F(UploadsTest, AbandonedUploadsAreSweptAfterTheExpiryAndActiveOnesStay) {
  PatternBytes bytes(16);
  const std::string path = app_->create(5000);
  ASSERT_EQ(app_->patch(path, bytes, 0, 100).status, 204);
  const auto now = std::chrono::system_clock::now();
  EXPECT_EQ(app_->store().sweep(now + std::chrono::hours(23)), 0u);
  EXPECT_EQ(app_->head(path).status, 200);
  EXPECT_GE(app_->store().sweep(now + std::chrono::hours(24) + std::chrono::minutes(1)), 1u);
  EXPECT_EQ(app_->head(path).status, 404);
  EXPECT_FALSE(fs::exists(app_->dataFile(path)));
  EXPECT_FALSE(fs::exists(app_->stateFile(path)));
}

TEST_F(UploadsTest, TheRouteCapIs413AndNothingIsCreated) {
  auto r = app_->admin().request("POST", kCollection, "",
                                 {{"Tus-Resumable", "1.0.0"}, {"Upload-Length", std::to_string(kCap + 1)}});
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_NE(r.body.find(std::to_string(kCap)), std::string::npos) << r.body;
}

TEST_F(UploadsTest, TheQuotaRefusesACreationThatWouldExceedItBeforeAnyByte) {
  const std::uint64_t quota = 4096ull << 20;
  const std::uint64_t left = quota - app_->store().reservedBytes();
  const std::string fits = app_->create(std::min<std::uint64_t>(left, kCap) - 1);
  const std::uint64_t leftNow = quota - app_->store().reservedBytes();
  const auto entries = std::distance(fs::directory_iterator(app_->uploadsDir()), {});
  auto r = app_->admin().request("POST", kCollection, "",
                                 {{"Tus-Resumable", "1.0.0"}, {"Upload-Length", std::to_string(leftNow + 1)}});
  EXPECT_EQ(r.status, 507) << r.body;
  EXPECT_EQ(r.errorCode(), "upload_quota_exceeded");
  EXPECT_NE(r.body.find(std::to_string(leftNow) + " remain"), std::string::npos) << r.body;
  EXPECT_EQ(std::distance(fs::directory_iterator(app_->uploadsDir()), {}), entries);
  EXPECT_EQ(app_->admin().request("DELETE", fits, "", {{"Tus-Resumable", "1.0.0"}}).status, 204);
}

TEST_F(UploadsTest, UploadIdsCannotReachOutsideTheUploadsDirectory) {
  for (const std::string id : {"..", "..%2F..%2Fetc%2Fpasswd", "%2E%2E", "0123456789abcdef0123456789abcde/",
                               "0123456789ABCDEF0123456789ABCDEF", "initial-admin-password"}) {
    EXPECT_EQ(app_->head(std::string(kCollection) + "/" + id).status, 404) << id;
    EXPECT_EQ(app_->admin().get(std::string(kCollection) + "/" + id).status, 404) << id;
  }
}

TEST_F(UploadsTest, UploadsGoThroughSignInRolesCsrfAndTheAuditLog) {
  PatternBytes bytes(17);
  auto anon = app_->client();
  auto r = anon.request("POST", kCollection, "", {{"Tus-Resumable", "1.0.0"}, {"Upload-Length", "10"}});
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.header("tus-resumable"), "1.0.0");

  auto admin = app_->admin();
  ASSERT_EQ(admin.postJson("/api/v1/users", R"({"username":"nocwatch","password":"correct horse battery","roles":["noc"]})").status, 201);
  ASSERT_EQ(admin.postJson("/api/v1/users", R"({"username":"admin2","password":"correct horse battery","roles":["admin"]})").status, 201);
  auto noc = app_->client();
  // Accounts an admin creates must choose their own password before anything else.
  auto ownPassword = [](vcrm::test::HttpsClient& c) {
    return c.postJson("/api/v1/auth/password",
                      R"({"current_password":"correct horse battery","new_password":"my own pass phrase"})").status;
  };
  ASSERT_EQ(noc.loginBearer("nocwatch", "correct horse battery").status, 200);
  ASSERT_EQ(ownPassword(noc), 204);
  EXPECT_EQ(noc.request("POST", kCollection, "", {{"Tus-Resumable", "1.0.0"}, {"Upload-Length", "10"}}).status, 403);

  const std::string path = app_->create(10);
  auto other = app_->client();  // another admin does not see this admin's upload
  ASSERT_EQ(other.loginBearer("admin2", "correct horse battery").status, 200);
  ASSERT_EQ(ownPassword(other), 204);
  EXPECT_EQ(other.request("HEAD", path, "", {{"Tus-Resumable", "1.0.0"}}).status, 404);

  auto cookie = app_->client();
  ASSERT_EQ(cookie.loginCookie("admin", app_->password()).status, 200);
  cookie.setSendCsrf(false);
  auto noCsrf = cookie.request("DELETE", path, "", {{"Tus-Resumable", "1.0.0"}});
  EXPECT_EQ(noCsrf.status, 403);
  EXPECT_EQ(noCsrf.errorCode(), "csrf_failed");

  auto noVersion = admin.request("HEAD", path);
  EXPECT_EQ(noVersion.status, 412);
  EXPECT_EQ(noVersion.header("tus-version"), "1.0.0");

  ASSERT_EQ(app_->patch(path, bytes, 0, 10).status, 200);
  const std::string id = path.substr(path.rfind('/') + 1);
  auto audit = admin.get("/api/v1/audit?action=test.upload.append");
  ASSERT_EQ(audit.status, 200) << audit.body;
  bool found = false;
  auto entries = audit.json()->getArray("entries");
  for (std::size_t i = 0; entries && i < entries->size(); ++i) {
    auto e = entries->getObject(static_cast<unsigned>(i));
    found = found || (e->optValue<std::string>("target", "") == id && e->getValue<int>("status") == 200);

  }
  EXPECT_TRUE(found) << audit.body;
  EXPECT_EQ(audit.body.find(bytes.at(0, 10)), std::string::npos) << "the body is never recorded";
}

// A restarted daemon has lost the digest state: the store re-reads the bytes on disk, checks
// them against the digest it stored, and refuses a file changed behind its back.
TEST(UploadStoreTest, ResumeAfterRestartReHashesAndRefusesAChangedFile) {
  vcrm::test::TempDir dir("vcrm-upload-store");
  vcrm::Logger log(vcrm::LogLevel::Warn);
  vcrm::UploadStore::Options o;
  o.dir = dir.path() / "uploads";
  PatternBytes bytes(21);
  std::string good, bad;
  {
    vcrm::UploadStore store(o, log);
    good = store.create("t", "alice", 3000, 1 << 20, {}).id;
    bad = store.create("t", "alice", 3000, 1 << 20, {}).id;
    for (const auto& id : {good, bad}) {
      std::istringstream first(bytes.at(0, 1000));
      EXPECT_EQ(store.append(id, "alice", 0, first, 1000).state.offset, 1000u);
    }
  }
  {
    std::fstream f(o.dir / (bad + ".data"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(10);
    f.put('x');
  }
  vcrm::UploadStore restarted(o, log);
  std::istringstream rest(bytes.at(1000, 2000));
  auto done = restarted.append(good, "alice", 1000, rest, 2000);
  ASSERT_TRUE(done.finished);
  EXPECT_EQ(done.finished->sha256Hex, vcrm::crypto::sha256Hex(bytes.at(0, 3000)));
  std::istringstream more(bytes.at(1000, 2000));
  EXPECT_THROW(restarted.append(bad, "alice", 1000, more, 2000), vcrm::Unprocessable);
  EXPECT_THROW(restarted.status(good, "bob"), vcrm::NotFound);
}

// A small tmpfs holds the uploads directory: more than it has free, and anything once it is
// read-only, is a 507 that says how much was needed and is free.
class TmpfsMount {
 public:
  explicit TmpfsMount(fs::path at) : at_(std::move(at)) {
    fs::create_directories(at_);
    if (::mount("tmpfs", at_.c_str(), "tmpfs", 0, "size=8m,mode=0700") != 0) {
      throw std::runtime_error("mount tmpfs on " + at_.string() + " failed (the tests run as root)");
    }
  }
  ~TmpfsMount() { ::umount2(at_.c_str(), MNT_DETACH); }
  void remountReadOnly() {
    if (::mount("tmpfs", at_.c_str(), "tmpfs", MS_REMOUNT | MS_RDONLY, "size=8m") != 0) {
      throw std::runtime_error("remount read-only failed");
    }
  }

 private:
  fs::path at_;
};

TEST(UploadsFullDiskTest, AFullOrReadOnlyFileSystemIs507) {
  std::unique_ptr<TmpfsMount> tmpfs;
  auto app = std::make_unique<Appliance>(std::vector<std::string>{}, [&](const fs::path& root) {
    tmpfs = std::make_unique<TmpfsMount>(root / "var/lib/vcrm/uploads");
  });
  auto tooBig = app->admin().request("POST", kCollection, "",
                                     {{"Tus-Resumable", "1.0.0"}, {"Upload-Length", std::to_string(16 << 20)}});
  EXPECT_EQ(tooBig.status, 507) << tooBig.body;
  EXPECT_EQ(tooBig.errorCode(), "insufficient_storage");
  EXPECT_NE(tooBig.body.find("bytes free"), std::string::npos) << tooBig.body;
  EXPECT_NE(tooBig.body.find(std::to_string(16 << 20)), std::string::npos) << tooBig.body;

  // A disk someone else fills up is a 507 in the middle of a PATCH too, and once there is room
  // again the upload resumes from the offset the daemon acknowledged.
  PatternBytes bytes(31);
  const std::string path = app->create(5 << 20);
  {
    std::ofstream filler(app->uploadsDir() / "filler", std::ios::binary);
    std::string kib(4096, 'f');
    while (filler.write(kib.data(), kib.size()) && filler.flush()) {
    }
  }
  auto full = app->patch(path, bytes, 0, 5 << 20);
  EXPECT_EQ(full.status, 507) << full.body;
  EXPECT_EQ(full.errorCode(), "insufficient_storage");
  EXPECT_NE(full.body.find("are free"), std::string::npos) << full.body;
  fs::remove(app->uploadsDir() / "filler");
  const std::uint64_t at = app->settledOffset(path);
  auto done = app->patch(path, bytes, at, (5 << 20) - at);
  ASSERT_EQ(done.status, 200) << done.body;
  EXPECT_EQ(done.json()->getValue<std::string>("sha256"), patternSha(bytes, 5 << 20));
  EXPECT_EQ(app->admin().request("DELETE", path, "", {{"Tus-Resumable", "1.0.0"}}).status, 204);

  const std::string pending = app->create(1 << 20);
  tmpfs->remountReadOnly();
  auto ro = app->admin().request("POST", kCollection, "", {{"Tus-Resumable", "1.0.0"}, {"Upload-Length", "1000"}});
  EXPECT_EQ(ro.status, 507) << ro.body;
  EXPECT_NE(ro.body.find("read-only"), std::string::npos) << ro.body;
  auto roPatch = app->patch(pending, bytes, 0, 1000);
  EXPECT_EQ(roPatch.status, 507) << roPatch.body;
  app.reset();  // the daemon lets go of the files before the unmount
}

}  // namespace
