// upload_throughput: one tus PATCH of N MiB (default 1024) over loopback TLS into an in-process
// vcrmd (streamed to disk, hashed as it streams, fsynced) against a plain write + fsync of the
// same bytes to the same file system, and `openssl dgst -sha256` of that file, in the same run.
// Prints "upload_throughput: <ratio>" where ratio = upload MB/s / plain write MB/s.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "https_client.h"
#include "modules/uploads/uploads_module.h"
#include "temp_dir.h"
#include "tus_client.h"
#include "vcrm/common/crypto.h"
#include "vcrm/common/files.h"
#include "vcrm/common/process.h"
#include "vcrm/daemon/app.h"

namespace {

double seconds(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }

class BenchUploadModule : public vcrm::NamedModule {
 public:
  explicit BenchUploadModule(const vcrm::ModuleContext& ctx)
      : NamedModule("bench-uploads"), uploads_(ctx.require<vcrm::UploadsModule>()) {}
  std::vector<vcrm::Route> routes() override {
    vcrm::UploadSpec spec{"bench", 64ull << 30, [](vcrm::RequestContext&, const vcrm::FinishedUpload& f) {
                            vcrm::json::ObjectPtr o = new vcrm::json::Object;
                            o->set("sha256", f.sha256Hex);
                            return vcrm::http::Response::json(200, o);
                          }};
    return uploads_.serve(vcrm::uploadRoute("/api/v1/bench/uploads", vcrm::roles::kAdmin, "bench.upload", spec));
  }

 private:
  vcrm::UploadsModule& uploads_;
};

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t mib = argc > 1 ? std::stoull(argv[1]) : 1024;
  const std::uint64_t length = mib << 20;
  vcrm::test::TempDir root("vcrm-bench-upload");
  vcrm::Logger log(vcrm::LogLevel::Warn);
  vcrm::App app(vcrm::Config::load(root.path(), {"https.port=0", "http.port=-1", "bridge_events.port=-1",
                                                 "http.listen=127.0.0.1", "uploads.max_total_mb=65536"}),
                log, {[](const vcrm::ModuleContext& ctx) { return std::make_unique<BenchUploadModule>(ctx); }});
  app.start();
  const auto state = root.path() / "var/lib/vcrm";
  const std::string ca = (state / "tls/server.crt").string();
  std::string pw = vcrm::files::readFile(state / "initial-admin-password");
  pw.erase(pw.find_last_not_of('\n') + 1);
  vcrm::test::HttpsClient client("127.0.0.1", app.httpsPort(), ca);
  const std::string bearer = client.loginBearer("admin", pw).json()->getValue<std::string>("token");
  auto created = client.request("POST", "/api/v1/bench/uploads", "",
                                {{"Tus-Resumable", "1.0.0"}, {"Upload-Length", std::to_string(length)}});
  const std::string path = created.header("location");

  // The same bytes for both contenders: a 1 MiB random block, each copy stamped with its index.
  std::string block = vcrm::crypto::randomBytes(1 << 20);
  vcrm::crypto::Sha256 expected;

  auto t0 = std::chrono::steady_clock::now();
  vcrm::test::RawTls conn("127.0.0.1", app.httpsPort(), ca);
  conn.send(vcrm::test::tusPatchHead(path, bearer, 0, length));
  for (std::uint64_t i = 0; i < mib; ++i) {
    std::memcpy(block.data(), &i, sizeof i);
    expected.update(block);
    conn.send(block);
  }
  auto r = conn.readResponse();
  const double uploadSecs = seconds(std::chrono::steady_clock::now() - t0);
  const std::string want = expected.finishHex();
  if (r.status != 200 || r.json()->getValue<std::string>("sha256") != want) {
    std::fprintf(stderr, "upload failed: %d %s\n", r.status, r.body.c_str());
    return 1;
  }
  client.setBearer(bearer);
  client.request("DELETE", path, "", {{"Tus-Resumable", "1.0.0"}});

  const auto plainPath = state / "uploads" / "plain.bin";
  t0 = std::chrono::steady_clock::now();
  {
    vcrm::files::Fd fd(::open(plainPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    for (std::uint64_t i = 0; i < mib; ++i) {
      std::memcpy(block.data(), &i, sizeof i);
      if (::write(fd.get(), block.data(), block.size()) != static_cast<ssize_t>(block.size())) return 1;
    }
    ::fsync(fd.get());
  }
  const double writeSecs = seconds(std::chrono::steady_clock::now() - t0);
  t0 = std::chrono::steady_clock::now();
  auto out = vcrm::process::run({"/usr/bin/openssl", "dgst", "-sha256", "-r", plainPath.string()});
  const double opensslSecs = seconds(std::chrono::steady_clock::now() - t0);
  if (out.output.substr(0, 64) != want) {
    std::fprintf(stderr, "openssl disagrees: %s vs %s\n", out.output.substr(0, 64).c_str(), want.c_str());
    return 1;
  }
  app.stop();

  const double mb = static_cast<double>(length) / 1e6;
  std::printf("upload_throughput: %.2f\n", (mb / uploadSecs) / (mb / writeSecs));
  std::printf("  %llu MiB: tus upload over loopback TLS %.0f MB/s (%.1f s), plain write+fsync %.0f MB/s, "
              "openssl dgst -sha256 %.0f MB/s\n",
              static_cast<unsigned long long>(mib), mb / uploadSecs, uploadSecs, mb / writeSecs, mb / opensslSecs);
  return 0;
}
