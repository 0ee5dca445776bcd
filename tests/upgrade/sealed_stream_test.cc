// The encrypted container of backup archives: round trips at every size around the chunk
// boundaries, a multi-GiB stream in constant memory, and every way of damaging the stream
// (each flipped byte, truncation at every point, dropped, swapped, repeated and appended
// chunks, a wrong passphrase, a newer format) refused with its own reason.
#include "vcrm/upgrade/sealed_stream.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>

#include "stream_probe.h"
#include "vcrm/common/error.h"
#include "vcrm/common/files.h"
#include "vcrm/upgrade/archive_error.h"

namespace vcrm::upgrade {
namespace {

// Cheap key derivation so the many archives below take milliseconds; one test uses the default.
SealOptions fastOptions(std::size_t chunkSize = kDefaultChunkSize) {
  return SealOptions{.scrypt = {.n = 1u << 6, .r = 8, .p = 1}, .chunkSize = chunkSize};
}

std::string randomData(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

// Pushes `data` in pieces of varying sizes, so chunk boundaries fall inside and between writes.
std::string seal(std::string_view data, const SealOptions& options,
                 std::string_view passphrase = "correct horse") {
  StringSink out;
  SealedWriter writer(out, passphrase, options);
  std::mt19937 rng(7);
  while (!data.empty()) {
    const std::size_t n = std::min<std::size_t>(data.size(), 1 + rng() % 3000);
    writer.write(data.substr(0, n));
    data.remove_prefix(n);
  }
  writer.finish();
  return out.take();
}

// Pulls everything in pieces of varying sizes; `released` receives what was handed out before
// any failure.
std::string unseal(std::string_view sealed, std::string_view passphrase = "correct horse",
                   std::string* released = nullptr) {
  StringSource in(sealed);
  SealedReader reader(in, passphrase);
  std::string out;
  std::mt19937 rng(11);
  std::string buf(5000, '\0');
  for (;;) {
    const std::size_t n = reader.read(std::span<char>(buf).first(1 + rng() % buf.size()));
    if (released) *released = out;
    if (n == 0) break;
    out.append(buf.data(), n);
    if (released) *released = out;
  }
  return out;
}

ArchiveReason refusal(std::string_view sealed, std::string_view passphrase = "correct horse",
                      std::string* message = nullptr, std::string* released = nullptr) {
  try {
    unseal(sealed, passphrase, released);
  } catch (const ArchiveError& e) {
    if (message) *message = e.what();
    return e.reason();
  }
  ADD_FAILURE() << "the damaged stream was accepted";
  return ArchiveReason::NotAnArchive;
}

constexpr std::size_t kSmallChunk = 256;  // 252 data bytes per chunk
constexpr std::size_t kCapacity = kSmallChunk - 4;
constexpr std::size_t kSealedChunk = kSmallChunk + kSealedTagSize;

std::size_t chunkAt(std::size_t i) {
  return kSealedHeaderSize + i * kSealedChunk;
}

TEST(SealedStreamTest, RoundTripAtEverySizeAroundChunkBoundaries) {
  for (std::size_t size :
       {std::size_t{0}, std::size_t{1}, kCapacity - 1, kCapacity, kCapacity + 1, 2 * kCapacity,
        2 * kCapacity + 1, 10 * kCapacity + 17, std::size_t{100000}}) {
    const std::string data = randomData(size, static_cast<std::uint32_t>(size));
    const std::string sealed = seal(data, fastOptions(kSmallChunk));
    // Every chunk has the same size on disk, the last one included.
    const std::size_t chunks = size == 0 ? 1 : (size + kCapacity - 1) / kCapacity;
    EXPECT_EQ(sealed.size(), kSealedHeaderSize + chunks * kSealedChunk) << "size " << size;
    EXPECT_EQ(unseal(sealed), data) << "size " << size;
    if (size >= 32) {
      EXPECT_EQ(sealed.find(data.substr(0, 32)), std::string::npos) << "plaintext visible";
    }
  }
  const std::string big = randomData(5u << 20, 3);  // several default 1 MiB chunks
  EXPECT_EQ(unseal(seal(big, fastOptions())), big);
}

TEST(SealedStreamTest, DefaultKeyDerivationOpens) {
  const std::string data = randomData(3000, 5);
  const std::string sealed = seal(data, SealOptions{});
  EXPECT_EQ(sealed[10], 17) << "default scrypt N is 2^17";
  EXPECT_EQ(unseal(sealed), data);
}

TEST(SealedStreamTest, FreshSaltAndNoncePrefixPerArchive) {
  const std::string data = randomData(1000, 9);
  const std::string a = seal(data, fastOptions(kSmallChunk));
  const std::string b = seal(data, fastOptions(kSmallChunk));
  EXPECT_NE(a.substr(17, 16), b.substr(17, 16)) << "salt";
  EXPECT_NE(a.substr(33, 7), b.substr(33, 7)) << "nonce prefix";
  EXPECT_NE(a.substr(kSealedHeaderSize), b.substr(kSealedHeaderSize));
}

TEST(SealedStreamTest, WrongPassphraseIsRefusedBeforeAnyData) {
  const std::string sealed = seal(randomData(1000, 1), fastOptions(kSmallChunk));
  std::string message;
  EXPECT_EQ(refusal(sealed, "correct horse ", &message), ArchiveReason::WrongPassphrase);
  EXPECT_NE(message.find("wrong passphrase or not a vcrm archive"), std::string::npos) << message;
  EXPECT_EQ(refusal(sealed, "Correct horse"), ArchiveReason::WrongPassphrase);
}

TEST(SealedStreamTest, NotAnArchiveAndTruncatedHeader) {
  std::string message;
  EXPECT_EQ(refusal("", "x", &message), ArchiveReason::NotAnArchive);
  EXPECT_EQ(refusal("PK\x03\x04 a zip file, not ours", "x"), ArchiveReason::NotAnArchive);
  const std::string sealed = seal("abc", fastOptions(kSmallChunk));
  for (std::size_t cut : {8u, 20u, 71u}) {
    EXPECT_EQ(refusal(sealed.substr(0, cut), "correct horse", &message), ArchiveReason::Truncated)
        << "cut at " << cut;
    EXPECT_NE(message.find("inside its header"), std::string::npos) << message;
  }
}

TEST(SealedStreamTest, NewerFormatVersionIsRefusedSayingSo) {
  std::string sealed = seal("abc", fastOptions(kSmallChunk));
  sealed[9] = 2;  // format version 2, before the passphrase is even tried
  std::string message;
  EXPECT_EQ(refusal(sealed, "correct horse", &message), ArchiveReason::UnsupportedFormat);
  EXPECT_NE(message.find("container format version 2"), std::string::npos) << message;
}

TEST(SealedStreamTest, HostileKeyDerivationParametersAreRefusedWithoutRunningThem) {
  // N = 2^40; N = 2^20 with r = 8 (1 GiB); p = 100; a chunk size of 16 MiB + 1; version 0.
  std::string sealed = seal("abc", fastOptions(kSmallChunk));
  for (auto [offset, value] :
       std::vector<std::pair<std::size_t, char>>{{10, 40}, {10, 20}, {12, 100}, {13, 1}, {8, 0}}) {
    std::string hostile = sealed;
    hostile[offset] = value;
    if (offset == 8) hostile[9] = 0;  // version 0
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(refusal(hostile), ArchiveReason::BadHeader) << "offset " << offset;
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  }
}

TEST(SealedStreamTest, EveryFlippedByteIsRefusedAndNoUnverifiedDataIsReleased) {
  const std::string data = randomData(4 * kCapacity + 100, 21);  // 5 chunks
  const std::string sealed = seal(data, fastOptions(kSmallChunk));
  for (std::size_t i = 0; i < sealed.size(); ++i) {
    std::string tampered = sealed;
    tampered[i] = static_cast<char>(tampered[i] ^ 0x04);
    std::string released;
    const ArchiveReason reason = refusal(tampered, "correct horse", nullptr, &released);
    if (i < 8) {
      EXPECT_EQ(reason, ArchiveReason::NotAnArchive) << "byte " << i;
    } else if (i < kSealedHeaderSize) {
      // Version, parameters, salt, prefix and check: refused before any chunk is opened.
      EXPECT_TRUE(reason == ArchiveReason::WrongPassphrase || reason == ArchiveReason::BadHeader ||
                  reason == ArchiveReason::UnsupportedFormat)
          << "byte " << i;
      EXPECT_TRUE(released.empty());
    } else {
      const std::size_t chunk = (i - kSealedHeaderSize) / kSealedChunk;
      EXPECT_EQ(reason, ArchiveReason::ChunkAltered) << "byte " << i;
      // Only the chunks before the damaged one were handed out, and they are the real data.
      EXPECT_EQ(released, data.substr(0, chunk * kCapacity)) << "byte " << i;
    }
  }
}

TEST(SealedStreamTest, TruncationAnywhereIsRefusedAsTruncated) {
  const std::string data = randomData(3 * kCapacity + 10, 22);  // 4 chunks
  const std::string sealed = seal(data, fastOptions(kSmallChunk));
  for (std::size_t cut = kSealedHeaderSize; cut < sealed.size(); ++cut) {
    std::string message;
    EXPECT_EQ(refusal(sealed.substr(0, cut), "correct horse", &message), ArchiveReason::Truncated)
        << "cut at " << cut;
    EXPECT_NE(message.find("truncated"), std::string::npos) << message;
  }
}

TEST(SealedStreamTest, DroppedSwappedAndRepeatedChunksAreRefusedAsOutOfOrder) {
  const std::string data = randomData(5 * kCapacity + 10, 23);  // 6 chunks
  const std::string s = seal(data, fastOptions(kSmallChunk));
  auto chunk = [&](std::size_t i) { return s.substr(chunkAt(i), kSealedChunk); };
  const std::string header = s.substr(0, kSealedHeaderSize);
  std::string message;

  const std::string dropped = header + chunk(0) + chunk(2) + chunk(3) + chunk(4) + chunk(5);
  EXPECT_EQ(refusal(dropped, "correct horse", &message), ArchiveReason::ChunksOutOfOrder);
  EXPECT_NE(message.find("chunk 1 (bytes"), std::string::npos) << message;
  EXPECT_NE(message.find("is chunk 2"), std::string::npos) << message;

  const std::string swapped =
      header + chunk(0) + chunk(2) + chunk(1) + chunk(3) + chunk(4) + chunk(5);
  EXPECT_EQ(refusal(swapped), ArchiveReason::ChunksOutOfOrder);
  const std::string repeated =
      header + chunk(0) + chunk(1) + chunk(1) + chunk(2) + chunk(3) + chunk(4) + chunk(5);
  EXPECT_EQ(refusal(repeated), ArchiveReason::ChunksOutOfOrder);
  // The last chunk moved forward: the end marker is where it should not be.
  const std::string endEarly = header + chunk(0) + chunk(5);
  EXPECT_EQ(refusal(endEarly), ArchiveReason::ChunksOutOfOrder);

  // Dropping the last chunk leaves a stream without its end.
  const std::string noEnd = header + chunk(0) + chunk(1) + chunk(2) + chunk(3) + chunk(4);
  EXPECT_EQ(refusal(noEnd, "correct horse", &message), ArchiveReason::Truncated);
  EXPECT_NE(message.find("without its end marker"), std::string::npos) << message;

  // A chunk of another archive with the same passphrase does not authenticate here.
  const std::string other = seal(data, fastOptions(kSmallChunk));
  const std::string foreign = header + chunk(0) + other.substr(chunkAt(1), kSealedChunk) +
                              chunk(2) + chunk(3) + chunk(4) + chunk(5);
  EXPECT_EQ(refusal(foreign), ArchiveReason::ChunkAltered);
}

TEST(SealedStreamTest, BytesAfterTheEndAreRefused) {
  const std::string s = seal(randomData(2 * kCapacity, 24), fastOptions(kSmallChunk));
  std::string message;
  EXPECT_EQ(refusal(s + "x", "correct horse", &message), ArchiveReason::TrailingData);
  EXPECT_NE(message.find("more bytes follow"), std::string::npos) << message;
  EXPECT_EQ(refusal(s + s.substr(chunkAt(0), kSealedChunk)), ArchiveReason::TrailingData);
}

TEST(SealedStreamTest, WriterWithoutFinishLeavesATruncatedStream) {
  StringSink out;
  {
    SealedWriter writer(out, "correct horse", fastOptions(kSmallChunk));
    writer.write(randomData(3 * kCapacity, 25));
  }
  EXPECT_EQ(refusal(out.data()), ArchiveReason::Truncated);
}

TEST(SealedStreamTest, MultiGibStreamThroughAPipeInConstantMemory) {
  constexpr std::uint64_t kTotal = 3ull << 30;  // 3 GiB
  constexpr std::size_t kPiece = 64u << 10;
  test::resetPeakRss();
  const std::size_t rssBefore = test::peakRss();
  const auto start = std::chrono::steady_clock::now();
  std::uint64_t received = 0;
  bool same = true;
  test::throughPipe(
      [&](ByteSink& sink) {
        SealedWriter writer(sink, "a long passphrase", fastOptions());
        test::FastBytes gen(42);
        std::string piece(kPiece, '\0');
        for (std::uint64_t done = 0; done < kTotal; done += kPiece) {
          gen.fill(piece);
          writer.write(piece);
        }
        writer.finish();
      },
      [&](ByteSource& source) {
        SealedReader reader(source, "a long passphrase");
        test::FastBytes expected(42);
        std::string want(kPiece, '\0');
        std::string got(kPiece, '\0');
        while (const std::size_t n = readFull(reader, got)) {
          expected.fill(std::span<char>(want).first(n));
          same = same && std::memcmp(want.data(), got.data(), n) == 0;
          received += n;
        }
      });
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(received, kTotal);
  EXPECT_TRUE(same) << "the plaintext read back differs from what was written";
  const std::size_t peak = test::peakRss();
  const std::size_t growth = peak > rssBefore ? peak - rssBefore : 0;
  EXPECT_LT(growth, 32u << 20) << "peak memory grew by " << (growth >> 20) << " MiB";
  std::printf(
      "3 GiB sealed and unsealed through a pipe in %.1f s (%.0f MiB/s), peak RSS +%zu KiB\n",
      seconds, 3072.0 / seconds, growth >> 10);
}

}  // namespace
}  // namespace vcrm::upgrade
