// bundle_verify: `vcrm-bundle verify` of a bundle (header, signature, every chunk hash on a
// pool of threads, the payload's tar entries) against `openssl dgst -sha256` of the same file,
// both as child processes in the same run, best of 5, the file in the page cache. openssl dgst
// is one core's hashing limit; the chunk hashes let verification use every core.
// Prints "bundle_verify: <ratio>" where ratio = our time / openssl's (goal <= 0.6 on 2 cores),
// then for each size the times and the verifier's peak resident memory, which must not grow
// with the bundle. Sizes in MiB as arguments (default 256 1024).
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "vcrm/common/crypto.h"
#include "vcrm/common/files.h"
#include "vcrm/upgrade/bundle.h"

namespace {

namespace fs = std::filesystem;
constexpr int kRounds = 5;

struct Run {
  double seconds = 0;
  double cpuSeconds = 0;  // user + system of the child: the work, whatever the machine's load
  long peakKiB = 0;
};

// Runs argv with stdout and stderr to /dev/null; its wall time and peak RSS (wait4).
Run measure(const std::vector<std::string>& argv) {
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    ::dup2(null, 2);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  struct rusage usage {};
  ::wait4(pid, &status, 0, &usage);
  auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  Run r{std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
        secs(usage.ru_utime) + secs(usage.ru_stime), usage.ru_maxrss};
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "bundle_verify: %s failed (status %d)\n", argv[0].c_str(), status);
    std::exit(1);
  }
  return r;
}

void makeTree(const fs::path& dir, std::size_t mib) {
  fs::create_directories(dir / "bin");
  fs::create_directories(dir / "share/vcrm/webui");
  std::string piece = vcrm::crypto::randomBytes(1 << 20);
  const vcrm::files::Fd fd(::open((dir / "bin/vcrmd").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0755));
  for (std::size_t i = 0; i < mib; ++i) {
    piece[0] = static_cast<char>(i);
    piece[1] = static_cast<char>(i >> 8);
    if (::write(fd.get(), piece.data(), piece.size()) != static_cast<ssize_t>(piece.size()))
      std::exit(1);
  }
  vcrm::files::atomicWrite(dir / "share/vcrm/webui/index.html", "<!doctype html>\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::size_t> sizes;
  for (int i = 1; i < argc; ++i) sizes.push_back(std::stoul(argv[i]));
  if (sizes.empty()) sizes = {256, 1024};
  const char* binDir = std::getenv("VCRM_BIN_DIR");
  const std::string tool = std::string(binDir ? binDir : VCRM_BIN_DIR) + "/vcrm-bundle";
  const fs::path keys = fs::path(VCRM_SOURCE_DIR) / "upgrade/keys";
  const auto key = vcrm::upgrade::BundleSigningKey::parse(
      vcrm::files::readFile(keys / "vcrm-test-bundle.key"), "test key");
  const fs::path work =
      fs::temp_directory_path() / ("vcrm-bench-bundle-" + std::to_string(::getpid()));

  double worstRatio = 0;
  std::vector<std::string> lines;
  for (const std::size_t mib : sizes) {
    fs::remove_all(work);
    fs::create_directories(work);
    makeTree(work / "tree", mib);
    const fs::path bundle = work / "bundle.bin";
    vcrm::upgrade::createBundle(key, {"0.2.0", "2026-11-30", "vcrm-appliance", "0.1.0", "bench"},
                                work / "tree", bundle);
    fs::remove_all(work / "tree");  // only the bundle in the page cache
    const std::vector<std::string> ours = {tool, "verify", bundle.string(), "--keyring",
                                           (keys / "vcrm-test-bundle.pub").string()};
    const std::vector<std::string> openssl = {"/usr/bin/openssl", "dgst", "-sha256",
                                              bundle.string()};
    measure(openssl);  // warm the page cache for both
    Run best{1e9, 0, 0};
    Run bestOpenssl{1e9, 0, 0};
    long peakKiB = 0;
    for (int round = 0; round < kRounds; ++round) {
      const Run o = measure(ours);
      if (o.seconds < best.seconds) best = o;
      peakKiB = std::max(peakKiB, o.peakKiB);
      const Run s = measure(openssl);
      if (s.seconds < bestOpenssl.seconds) bestOpenssl = s;
    }
    const double ratio = best.seconds / bestOpenssl.seconds;
    worstRatio = std::max(worstRatio, ratio);
    const double mb = static_cast<double>(fs::file_size(bundle)) / 1e6;
    char line[256];
    std::snprintf(
        line, sizeof line,
        "  %5zu MiB bundle, best of 5: vcrm-bundle verify %.2f s (%.0f MB/s, CPU %.2f s, "
        "peak RSS %ld KiB), openssl dgst -sha256 %.2f s (%.0f MB/s, CPU %.2f s); ratio %.2f",
        mib, best.seconds, mb / best.seconds, best.cpuSeconds, peakKiB, bestOpenssl.seconds,
        mb / bestOpenssl.seconds, bestOpenssl.cpuSeconds, ratio);
    lines.emplace_back(line);
  }
  fs::remove_all(work);
  std::printf("bundle_verify: %.2f\n", worstRatio);
  double load[3] = {0, 0, 0};
  ::getloadavg(load, 3);
  std::printf(
      "  ratio = verify time / openssl time (goal <= 0.6 on 2 cores), worst size; %u cores, "
      "load average %.1f (other work on the machine takes cores from both)\n",
      std::thread::hardware_concurrency(), load[0]);
  for (const std::string& l : lines) std::printf("%s\n", l.c_str());
  return 0;
}
