// sha256_stream: vcrm's streaming SHA-256 over a file (as bundle verification reads it)
// against `openssl dgst -sha256` of the same file, measured in the same run.
// Prints "sha256_stream: <ratio>" where ratio = our throughput / openssl's (1.0 = parity).
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "vcrm/common/crypto.h"
#include "vcrm/common/files.h"
#include "vcrm/common/process.h"

namespace {

double seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

std::string ourDigest(const std::string& path) {
  vcrm::files::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  std::vector<char> buf(1 << 20);
  vcrm::crypto::Sha256 h;
  ssize_t n;
  while ((n = ::read(fd.get(), buf.data(), buf.size())) > 0) h.update(buf.data(), static_cast<std::size_t>(n));
  return h.finishHex();
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t mib = argc > 1 ? std::stoul(argv[1]) : 256;
  const std::string path = "/tmp/vcrm-bench-sha256.bin";
  {
    std::string chunk = vcrm::crypto::randomBytes(1 << 20);
    vcrm::files::Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    for (std::size_t i = 0; i < mib; ++i) {
      chunk[0] = static_cast<char>(i);
      if (::write(fd.get(), chunk.data(), chunk.size()) != static_cast<ssize_t>(chunk.size())) return 1;
    }
  }
  ourDigest(path);  // warm the page cache for both contenders

  double bestOurs = 1e9;
  double bestOpenssl = 1e9;
  std::string ours;
  std::string theirs;
  for (int round = 0; round < 3; ++round) {
    auto t0 = std::chrono::steady_clock::now();
    ours = ourDigest(path);
    bestOurs = std::min(bestOurs, seconds(std::chrono::steady_clock::now() - t0));
    t0 = std::chrono::steady_clock::now();
    auto out = vcrm::process::run({"/usr/bin/openssl", "dgst", "-sha256", "-r", path});
    bestOpenssl = std::min(bestOpenssl, seconds(std::chrono::steady_clock::now() - t0));
    theirs = out.output.substr(0, 64);
  }
  ::unlink(path.c_str());
  if (ours != theirs) {
    std::fprintf(stderr, "sha256_stream: digests differ (ours %s, openssl %s)\n", ours.c_str(),
                 theirs.c_str());
    return 1;
  }
  const double mb = static_cast<double>(mib) * 1.048576;
  std::printf("sha256_stream: %.2f\n", bestOpenssl / bestOurs);
  std::printf("  %zu MiB file, best of 3: vcrm %.0f MB/s, openssl dgst %.0f MB/s (ratio >1 = faster)\n",
              mib, mb / bestOurs, mb / bestOpenssl);
  return 0;
}
