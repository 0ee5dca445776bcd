// backup_container: the backup archive's encrypted container (chunked AES-256-GCM, scrypt key)
// sealing and unsealing a file, against `openssl enc -aes-256-ctr` of the same file, measured
// in the same run. `openssl enc` has no GCM (AEAD is refused), and CTR is GCM's cipher half:
// the baseline does strictly less work (no GHASH, no key derivation, no authentication).
// Prints "backup_container: <ratio>" where ratio = openssl's time / ours for seal + unseal
// (1.0 = parity, >1 = we are faster).
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "vcrm/common/crypto.h"
#include "vcrm/common/files.h"
#include "vcrm/common/process.h"
#include "vcrm/upgrade/sealed_stream.h"

namespace {

double seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

vcrm::files::Fd openOrDie(const std::string& path, int flags) {
  vcrm::files::Fd fd(::open(path.c_str(), flags | O_CLOEXEC, 0600));
  if (!fd) {
    std::perror(path.c_str());
    std::exit(1);
  }
  return fd;
}

void copy(vcrm::upgrade::ByteSource& from, vcrm::upgrade::ByteSink& to) {
  std::string buf(1 << 20, '\0');
  while (const std::size_t n = from.read(buf)) to.write(std::string_view(buf.data(), n));
}

double seal(const std::string& in, const std::string& out) {
  const auto t0 = std::chrono::steady_clock::now();
  auto src = openOrDie(in, O_RDONLY);
  auto dst = openOrDie(out, O_WRONLY | O_CREAT | O_TRUNC);
  vcrm::upgrade::FdSource source(src.get(), in);
  vcrm::upgrade::FdSink sink(dst.get(), out);
  vcrm::upgrade::SealedWriter writer(sink, "bench passphrase");
  copy(source, writer);
  writer.finish();
  return seconds(std::chrono::steady_clock::now() - t0);
}

double unseal(const std::string& in, const std::string& out) {
  const auto t0 = std::chrono::steady_clock::now();
  auto src = openOrDie(in, O_RDONLY);
  auto dst = openOrDie(out, O_WRONLY | O_CREAT | O_TRUNC);
  vcrm::upgrade::FdSource source(src.get(), in);
  vcrm::upgrade::FdSink sink(dst.get(), out);
  vcrm::upgrade::SealedReader reader(source, "bench passphrase");
  copy(reader, sink);
  return seconds(std::chrono::steady_clock::now() - t0);
}

double opensslCtr(bool decrypt, const std::string& in, const std::string& out) {
  const std::string key(64, 'a');
  const std::string iv(32, 'b');
  std::vector<std::string> args = {
      "/usr/bin/openssl", "enc", "-aes-256-ctr", "-K", key, "-iv", iv, "-in", in, "-out", out};
  if (decrypt) args.insert(args.begin() + 2, "-d");
  const auto t0 = std::chrono::steady_clock::now();
  const auto result = vcrm::process::run(args);
  const double s = seconds(std::chrono::steady_clock::now() - t0);
  if (result.exitCode != 0) {
    std::fprintf(stderr, "openssl enc failed: %s\n", result.output.c_str());
    std::exit(1);
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t mib = argc > 1 ? std::stoul(argv[1]) : 1024;
  const std::string plain = "/tmp/vcrm-bench-container.bin";
  const std::string sealed = plain + ".sealed";
  const std::string back = plain + ".back";
  {
    std::string chunk = vcrm::crypto::randomBytes(1 << 20);
    auto fd = openOrDie(plain, O_WRONLY | O_CREAT | O_TRUNC);
    for (std::size_t i = 0; i < mib; ++i) {
      chunk[0] = static_cast<char>(i);
      if (::write(fd.get(), chunk.data(), chunk.size()) != static_cast<ssize_t>(chunk.size())) {
        return 1;
      }
    }
  }
  const auto k0 = std::chrono::steady_clock::now();
  (void)vcrm::crypto::scrypt("bench passphrase", "0123456789abcdef", 64,
                             vcrm::upgrade::SealOptions{}.scrypt);
  const double kdf = seconds(std::chrono::steady_clock::now() - k0);

  double bestSeal = 1e9, bestUnseal = 1e9, bestEnc = 1e9, bestDec = 1e9;
  for (int round = 0; round < 3; ++round) {
    bestSeal = std::min(bestSeal, seal(plain, sealed));
    bestUnseal = std::min(bestUnseal, unseal(sealed, back));
    bestEnc = std::min(bestEnc, opensslCtr(false, plain, back + ".ctr"));
    bestDec = std::min(bestDec, opensslCtr(true, back + ".ctr", back + ".ctr2"));
  }
  const bool same = vcrm::crypto::sha256Hex(vcrm::files::readFile(plain, mib << 21)) ==
                    vcrm::crypto::sha256Hex(vcrm::files::readFile(back, mib << 21));
  for (const auto& f : {plain, sealed, back, back + ".ctr", back + ".ctr2"}) ::unlink(f.c_str());
  if (!same) {
    std::fprintf(stderr, "backup_container: the unsealed file differs from the original\n");
    return 1;
  }
  const double mb = static_cast<double>(mib) * 1.048576;
  std::printf("backup_container: %.2f\n", (bestEnc + bestDec) / (bestSeal + bestUnseal));
  std::printf(
      "  %zu MiB file to file, best of 3: seal %.0f MB/s, unseal %.0f MB/s (each including one "
      "scrypt N=2^17 r=8 of %.2f s); openssl enc -aes-256-ctr %.0f MB/s, -d %.0f MB/s\n",
      mib, mb / bestSeal, mb / bestUnseal, kdf, mb / bestEnc, mb / bestDec);
  std::printf("  without the two key derivations: ratio %.2f\n",
              (bestEnc + bestDec) / (bestSeal + bestUnseal - 2 * kdf));
  return 0;
}
