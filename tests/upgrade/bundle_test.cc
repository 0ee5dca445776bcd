// Upgrade bundles: a round trip through create, inspect, verify and extract; bad bundles, each
// refused with its reason before anything is written (the target directory stays absent); the
// keyring; the upgrade policy; the vcrm-bundle tool.
#include "vcrm/upgrade/bundle.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>

#include "hostile_tar.h"
#include "temp_dir.h"
#include "vcrm/common/crypto.h"
#include "vcrm/common/files.h"
#include "vcrm/common/process.h"
#include "vcrm/upgrade/bundle_policy.h"

namespace vcrm::upgrade {
namespace {

namespace fs = std::filesystem;
using test::TarEntry;
using test::tarOf;

const fs::path kKeys = fs::path(VCRM_SOURCE_DIR) / "upgrade/keys";

BundleSigningKey testKey() {
  return BundleSigningKey::parse(files::readFile(kKeys / "vcrm-test-bundle.key"), "test key");
}

BundleKeyring testKeyring() {
  return BundleKeyring::parse(files::readFile(kKeys / "vcrm-test-bundle.pub"), "test keyring");
}

BundleRelease release() {
  return BundleRelease{.version = "0.2.0",
                       .releaseDate = "2026-11-30",
                       .compatible = "vcrm-appliance",
                       .minVersion = "0.1.0",
                       .notes = "Faster upgrades.\n"};
}

std::string pseudoRandom(std::size_t n, std::uint32_t seed) {
  std::string out(n, '\0');
  for (char& c : out) {
    seed = seed * 1103515245 + 12345;
    c = static_cast<char>(seed >> 24);
  }
  return out;
}

TarEntry dir(std::string name, int perm = 0755) {
  return TarEntry{.name = std::move(name), .type = AE_IFDIR, .perm = perm};
}
TarEntry file(std::string name, std::string data, int perm = 0644) {
  return TarEntry{.name = std::move(name), .data = std::move(data), .perm = perm};
}

// An installation tree as a payload would hold it.
std::vector<TarEntry> goodEntries() {
  return {dir("bin"),
          file("bin/vcrmd", pseudoRandom(20000, 1), 0755),
          dir("share"),
          dir("share/vcrm"),
          dir("share/vcrm/webui"),
          file("share/vcrm/webui/index.html", "<!doctype html>\n")};
}

// The manifest entries vcrm-bundle would write for `entries`.
std::vector<BundleEntry> entriesOf(const std::vector<TarEntry>& entries) {
  std::vector<BundleEntry> out;
  for (const TarEntry& t : entries) {
    BundleEntry e{t.name, BundleEntry::Type::File, static_cast<std::uint32_t>(t.perm), 0, {}};
    if (t.type == AE_IFDIR) {
      e.type = BundleEntry::Type::Directory;
    } else {
      e.size = t.data.size();
      e.sha256 = crypto::sha256Hex(t.data);
    }
    out.push_back(e);
  }
  return out;
}

BundleManifest manifestFor(std::vector<BundleEntry> entries, std::uint64_t chunkSize = 4096) {
  BundleManifest m;
  m.release = release();
  m.chunkSize = chunkSize;
  m.entries = std::move(entries);
  return m;
}

std::string goodBundle(std::uint64_t chunkSize = 4096) {
  return assembleBundle(testKey(), manifestFor(entriesOf(goodEntries()), chunkSize),
                        tarOf(goodEntries()));
}

void writeBytes(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

files::Fd openRead(const fs::path& path) {
  files::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw std::runtime_error("cannot open " + path.string());
  return fd;
}

std::uint32_t modeOf(const fs::path& p) {
  struct stat st {};
  ::lstat(p.c_str(), &st);
  return st.st_mode & 07777;
}

// Verification and extraction both refuse `bytes` with `reason`, and the slot directory is
// never created.
void expectRefused(const std::string& bytes, BundleReason reason,
                   const BundleKeyring& ring = testKeyring()) {
  vcrm::test::TempDir tmp("vcrm-bundle");
  const fs::path bundle = tmp.path() / "upload.bin";
  const fs::path slot = tmp.path() / "slot-b";
  writeBytes(bundle, bytes);
  const files::Fd fd = openRead(bundle);
  for (int extract = 0; extract < 2; ++extract) {
    try {
      if (extract) {
        extractBundle(fd.get(), ring, slot);
      } else {
        verifyBundle(fd.get(), ring);
      }
      ADD_FAILURE() << (extract ? "extract" : "verify") << " accepted a bundle that should be "
                    << bundleReasonCode(reason);
    } catch (const BundleRefused& e) {
      EXPECT_EQ(bundleReasonCode(e.reason()), bundleReasonCode(reason)) << e.what();
      EXPECT_EQ(e.code(), bundleReasonCode(e.reason()));
      EXPECT_GT(std::string(e.what()).size(), 30u) << "a refusal says what to do";
    }
    EXPECT_FALSE(fs::exists(slot)) << "the slot directory was created for a refused bundle";
  }
}

// ------------------------------------------------------------------------------- round trip

TEST(BundleTest, ATreeRoundTripsThroughCreateVerifyAndExtractWithItsModes) {
  vcrm::test::TempDir tmp("vcrm-bundle");
  const fs::path tree = tmp.path() / "install";
  fs::create_directories(tree / "bin");
  fs::create_directories(tree / "share/vcrm/webui/pages");
  writeBytes(tree / "bin/vcrmd", pseudoRandom(300000, 7));
  writeBytes(tree / "share/vcrm/webui/index.html", "<!doctype html>");
  writeBytes(tree / "share/vcrm/webui/pages/empty.js", "");
  fs::permissions(tree / "bin/vcrmd", fs::perms(0755));
  fs::permissions(tree / "share/vcrm/webui/index.html", fs::perms(0644));
  fs::permissions(tree / "share/vcrm/webui/pages", fs::perms(0750));

  const fs::path out = tmp.path() / "vcrm-0.2.0.bin";
  const BundleManifest made = createBundle(testKey(), release(), tree, out, 64 << 10);
  EXPECT_EQ(made.entries.size(), 8u);
  EXPECT_FALSE(fs::exists(out.string() + ".tmp"));

  const files::Fd fd = openRead(out);
  const BundleInfo inspected = inspectBundle(fd.get());
  EXPECT_EQ(bundleManifestJson(inspected.manifest), bundleManifestJson(made));
  const BundleInfo verified = verifyBundle(fd.get(), testKeyring(), BundleLimits{.threads = 2});
  EXPECT_EQ(verified.keyId, "vcrm-test-bundle-1");
  EXPECT_EQ(verified.manifest.release.version, "0.2.0");
  EXPECT_EQ(verified.manifest.release.notes, "Faster upgrades.\n");
  EXPECT_GT(verified.manifest.chunks.size(), 4u);
  EXPECT_EQ(::lseek(fd.get(), 0, SEEK_CUR), 0) << "verification reads with pread only";

  const fs::path slot = tmp.path() / "slot-b";
  extractBundle(fd.get(), testKeyring(), slot);
  EXPECT_EQ(files::readFile(slot / "bin/vcrmd"), files::readFile(tree / "bin/vcrmd"));
  EXPECT_EQ(files::readFile(slot / "share/vcrm/webui/index.html"), "<!doctype html>");
  EXPECT_EQ(fs::file_size(slot / "share/vcrm/webui/pages/empty.js"), 0u);
  EXPECT_EQ(modeOf(slot / "bin/vcrmd"), 0755u);
  EXPECT_EQ(modeOf(slot / "share/vcrm/webui/index.html"), 0644u);
  EXPECT_EQ(modeOf(slot / "share/vcrm/webui/pages"), 0750u);
  EXPECT_EQ(modeOf(slot), 0755u);

  // The same tree gives the same bundle: a release can be rebuilt and compared.
  const fs::path again = tmp.path() / "again.bin";
  createBundle(testKey(), release(), tree, again, 64 << 10);
  EXPECT_EQ(files::readFile(again, 64 << 20), files::readFile(out, 64 << 20));
}

TEST(BundleTest, AnAssembledBundleWithManyChunksVerifiesOnOneAndOnTwoThreads) {
  vcrm::test::TempDir tmp("vcrm-bundle");
  writeBytes(tmp.path() / "b.bin", goodBundle());
  const files::Fd fd = openRead(tmp.path() / "b.bin");
  for (unsigned threads : {1u, 2u, 8u}) {
    EXPECT_EQ(verifyBundle(fd.get(), testKeyring(), BundleLimits{.threads = threads})
                  .manifest.chunks.size(),
              8u);
  }
}

TEST(BundleTest, ExtractionRefusesADirectoryThatExistsAndLeavesItAlone) {
  vcrm::test::TempDir tmp("vcrm-bundle");
  writeBytes(tmp.path() / "b.bin", goodBundle());
  fs::create_directory(tmp.path() / "slot-b");
  writeBytes(tmp.path() / "slot-b/keep", "mine");
  const files::Fd fd = openRead(tmp.path() / "b.bin");
  try {
    extractBundle(fd.get(), testKeyring(), tmp.path() / "slot-b");
    FAIL() << "extracted over an existing directory";
  } catch (const BundleRefused& e) {
    EXPECT_EQ(e.reason(), BundleReason::TargetExists);
  }
  EXPECT_EQ(files::readFile(tmp.path() / "slot-b/keep"), "mine");
  EXPECT_EQ(std::distance(fs::directory_iterator(tmp.path() / "slot-b"), fs::directory_iterator()),
            1);
}

TEST(BundleTest, ABundleLargerThanTheFreeSpaceIsRefusedBeforeAnythingIsWritten) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting a small filesystem needs root";
  vcrm::test::TempDir tmp("vcrm-bundle");
  const fs::path slots = tmp.path() / "slots";
  fs::create_directory(slots);
  ASSERT_EQ(
      process::run({"/usr/bin/mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", slots.string()})
          .exitCode,
      0);
  struct Unmount {
    fs::path dir;
    ~Unmount() { process::run({"/usr/bin/umount", dir.string()}); }
  } unmount{slots};
  const std::vector<TarEntry> big = {file("blob", pseudoRandom(512u << 10, 5))};
  writeBytes(tmp.path() / "b.bin",
             assembleBundle(testKey(), manifestFor(entriesOf(big)), tarOf(big)));
  const files::Fd fd = openRead(tmp.path() / "b.bin");
  try {
    extractBundle(fd.get(), testKeyring(), slots / "b");
    FAIL() << "extracted 512 KiB into 256 KiB";
  } catch (const InsufficientStorage& e) {
    EXPECT_NE(std::string(e.what()).find("are free"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(slots / "b"));
}

// ------------------------------------------------------------------- damaged and lying files

struct Flip {
  const char* where;
  std::function<std::size_t(const BundleInfo&)> offset;
  unsigned char mask;
  BundleReason reason;
};

TEST(BundleTest, AFlippedByteAnywhereIsRefusedWithItsReason) {
  const std::string good = goodBundle();
  vcrm::test::TempDir tmp("vcrm-bundle");
  writeBytes(tmp.path() / "good.bin", good);
  const BundleInfo info = inspectBundle(openRead(tmp.path() / "good.bin").get());
  const std::size_t manifest = info.header.manifestOffset;
  const std::size_t sig = info.header.signatureOffset;
  const std::size_t payload = info.header.payloadOffset;
  const std::vector<Flip> flips = {
      {"magic", [](auto&) { return 0; }, 0x01, BundleReason::NotABundle},
      {"magic end", [](auto&) { return 7; }, 0x20, BundleReason::NotABundle},
      {"format version", [](auto&) { return 8; }, 0x01, BundleReason::BadHeader},
      {"format version high", [](auto&) { return 11; }, 0x80, BundleReason::UnsupportedFormat},
      {"header size", [](auto&) { return 12; }, 0x01, BundleReason::BadHeader},
      {"manifest offset", [](auto&) { return 16; }, 0x01, BundleReason::BadHeader},
      {"manifest length", [](auto&) { return 24; }, 0x01, BundleReason::BadHeader},
      {"signature offset", [](auto&) { return 32; }, 0x01, BundleReason::BadHeader},
      {"signature length", [](auto&) { return 40; }, 0x01, BundleReason::BadHeader},
      {"payload offset", [](auto&) { return 48; }, 0x01, BundleReason::BadHeader},
      // One more or one less byte than the file has, as the low bit was clear or set.
      {"payload length low bit", [](auto&) { return 56; }, 0x01,
       (good[56] & 1) != 0 ? BundleReason::TrailingData : BundleReason::Truncated},
      {"payload length 2^63", [](auto&) { return 63; }, 0x80, BundleReason::LimitExceeded},
      {"manifest first byte", [=](auto&) { return manifest; }, 0x01,
       BundleReason::SignatureInvalid},
      {"manifest middle", [=](auto&) { return (manifest + sig) / 2; }, 0x04,
       BundleReason::SignatureInvalid},
      {"manifest last byte", [=](auto&) { return sig - 1; }, 0x01, BundleReason::SignatureInvalid},
      {"key id length", [=](auto&) { return sig; }, 0x40, BundleReason::SignatureMalformed},
      {"key id", [=](auto&) { return sig + 2; }, 0x01, BundleReason::KeyUnknown},
      {"key id to a non key id", [=](auto&) { return sig + 2; }, 0x20,
       BundleReason::SignatureMalformed},
      {"signature first byte", [=](auto&) { return payload - 64; }, 0x01,
       BundleReason::SignatureInvalid},
      {"signature last byte", [=](auto&) { return payload - 1; }, 0x80,
       BundleReason::SignatureInvalid},
      {"payload first byte", [=](auto&) { return payload; }, 0x01, BundleReason::ChunkMismatch},
      {"payload in file data", [=](auto&) { return payload + 5000; }, 0x01,
       BundleReason::ChunkMismatch},
      {"payload last byte", [=](auto&) { return good.size() - 1; }, 0x01,
       BundleReason::ChunkMismatch},
  };
  for (const Flip& f : flips) {
    SCOPED_TRACE(f.where);
    std::string bad = good;
    bad[f.offset(info)] = static_cast<char>(bad[f.offset(info)] ^ f.mask);
    expectRefused(bad, f.reason);
  }
}

TEST(BundleTest, ATruncatedBundleIsRefusedAtEveryOffset) {
  const std::string good = goodBundle();
  vcrm::test::TempDir tmp("vcrm-bundle");
  writeBytes(tmp.path() / "good.bin", good);
  const BundleInfo info = inspectBundle(openRead(tmp.path() / "good.bin").get());
  const std::size_t sig = info.header.signatureOffset;
  const std::size_t payload = info.header.payloadOffset;
  expectRefused("", BundleReason::NotABundle);
  for (std::size_t at :
       {std::size_t{3}, std::size_t{8}, std::size_t{40}, std::size_t{63}, std::size_t{64},
        std::size_t{65}, sig - 1, sig, sig + 1, payload - 1, payload, payload + 511, payload + 512,
        payload + 4096, good.size() - 1024, good.size() - 1}) {
    SCOPED_TRACE("truncated at " + std::to_string(at));
    expectRefused(good.substr(0, at), BundleReason::Truncated);
  }
  expectRefused(good + "x", BundleReason::TrailingData);
}

TEST(BundleTest, HeaderLengthsThatLieAreRefusedBeforeAnythingIsRead) {
  const std::string good = goodBundle();
  auto withField = [&](std::size_t at, std::uint64_t value) {
    std::string bad = good;
    for (int i = 0; i < 8; ++i) bad[at + i] = static_cast<char>((value >> (8 * i)) & 0xff);
    return bad;
  };
  BundleHeader h = parseBundleHeader(good.substr(0, 64), good.size());
  expectRefused(withField(56, h.payloadLength + 4096), BundleReason::Truncated);
  expectRefused(withField(56, std::uint64_t{1} << 63), BundleReason::LimitExceeded);
  expectRefused(withField(24, std::uint64_t{1} << 63), BundleReason::LimitExceeded);
  expectRefused(withField(24, ~std::uint64_t{0}), BundleReason::LimitExceeded);
  expectRefused(withField(40, std::uint64_t{1} << 63), BundleReason::BadHeader);
  expectRefused(withField(48, ~std::uint64_t{0} - 10), BundleReason::BadHeader);
  expectRefused(withField(16, 0), BundleReason::BadHeader);
}

// ------------------------------------------------------------------------------ signatures

TEST(BundleTest, ABundleSignedWithAnUnknownOrRevokedKeyIsRefused) {
  const BundleSigningKey other = BundleSigningKey::generate("someone-else");
  expectRefused(assembleBundle(other, manifestFor(entriesOf(goodEntries())), tarOf(goodEntries())),
                BundleReason::KeyUnknown);

  BundleKeyring revoked = BundleKeyring::parse(
      files::readFile(kKeys / "vcrm-test-bundle.pub") + "revoked vcrm-test-bundle-1\n", "ring");
  expectRefused(goodBundle(), BundleReason::KeyRevoked, revoked);

  // The key id of a trusted key over another key's signature.
  BundleKeyring impostor;
  impostor.add("vcrm-test-bundle-1", other.key.publicKey());
  expectRefused(goodBundle(), BundleReason::SignatureInvalid, impostor);
}

TEST(BundleTest, AManifestSignedButWrongIsRefused) {
  const BundleSigningKey key = testKey();
  const std::string tar = tarOf(goodEntries());
  const std::string text = [&] {
    BundleManifest m = manifestFor(entriesOf(goodEntries()));
    m.payloadSize = tar.size();
    for (std::size_t at = 0; at < tar.size(); at += m.chunkSize) {
      m.chunks.push_back(crypto::sha256Hex(std::string_view(tar).substr(at, m.chunkSize)));
    }
    return bundleManifestJson(m);
  }();
  auto signedWith = [&](const std::string& manifest) {
    return bundleHead(key, manifest, tar.size()) + tar;
  };
  auto replaced = [&](const std::string& from, const std::string& to) {
    std::string t = text;
    const auto at = t.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return t.replace(at, from.size(), to);
  };
  expectRefused(signedWith(text + " "), BundleReason::ManifestInvalid);  // not canonical
  expectRefused(signedWith("{\"format\":1, \"product\":\"vcrm\"}"), BundleReason::ManifestInvalid);
  expectRefused(signedWith("not json"), BundleReason::ManifestInvalid);
  expectRefused(signedWith(replaced("\"product\":\"vcrm\"", "\"product\":\"acme-mcu\"")),
                BundleReason::OtherProduct);
  expectRefused(signedWith(replaced("\"format\":1", "\"format\":2")),
                BundleReason::UnsupportedFormat);
  expectRefused(
      signedWith(replaced("\"release_date\":\"2026-11-30\"", "\"release_date\":\"2026-02-30\"")),
      BundleReason::ManifestInvalid);
  expectRefused(signedWith(replaced("\"version\":\"0.2.0\"", "\"version\":\"0.2.0-rc1\"")),
                BundleReason::ManifestInvalid);
  expectRefused(signedWith(replaced("\"payload_size\":" + std::to_string(tar.size()),
                                    "\"payload_size\":" + std::to_string(tar.size() - 1))),
                BundleReason::ManifestInvalid);
  expectRefused(signedWith(replaced("\"payload_size\":" + std::to_string(tar.size()),
                                    "\"payload_size\":9223372036854775807")),
                BundleReason::LimitExceeded);
  expectRefused(signedWith(replaced("\"format\":1", "\"format\":1,\"run_first\":\"rm -rf /\"")),
                BundleReason::ManifestInvalid);
}

// ------------------------------------------------------------------------- hostile payloads

struct PayloadCase {
  const char* name;
  std::vector<TarEntry> tar;
  std::optional<std::vector<BundleEntry>> manifest;  // entriesOf(tar) when absent
  BundleReason reason;
};

TEST(BundleTest, AHostilePayloadIsRefusedBeforeAnythingIsWritten) {
  const std::string elf = pseudoRandom(20000, 1);
  auto listed = [](std::vector<TarEntry> t) { return entriesOf(t); };
  const std::vector<PayloadCase> cases = {
      {"path traversal", {file("../evil", "x")}, std::nullopt, BundleReason::UnsafeEntry},
      {"path traversal inside",
       {dir("bin"), file("bin/../../etc/cron.d/x", "x")},
       std::nullopt,
       BundleReason::UnsafeEntry},
      {"path traversal in the tar only",
       {file("../evil", "x")},
       listed({file("evil", "x")}),
       BundleReason::UnsafeEntry},
      {"absolute path", {file("/etc/passwd", "x")}, std::nullopt, BundleReason::UnsafeEntry},
      {"absolute path in the tar only",
       {file("/etc/passwd", "x")},
       listed({file("etc", "x")}),
       BundleReason::UnsafeEntry},
      {"symlink",
       {dir("bin"),
        TarEntry{.name = "bin/vcrmd", .type = AE_IFLNK, .perm = 0777, .symlink = "/bin/sh"}},
       listed({dir("bin"), file("bin/vcrmd", "", 0777)}),
       BundleReason::UnsafeEntry},
      {"hardlink",
       {file("a", "x"), TarEntry{.name = "b", .hardlink = "/etc/shadow"}},
       listed({file("a", "x"), file("b", "")}),
       BundleReason::UnsafeEntry},
      {"character device",
       {TarEntry{.name = "null", .type = AE_IFCHR}},
       listed({file("null", "", 0600)}),
       BundleReason::UnsafeEntry},
      {"block device",
       {TarEntry{.name = "sda", .type = AE_IFBLK}},
       listed({file("sda", "", 0600)}),
       BundleReason::UnsafeEntry},
      {"fifo",
       {TarEntry{.name = "pipe", .type = AE_IFIFO}},
       listed({file("pipe", "", 0600)}),
       BundleReason::UnsafeEntry},
      {"setuid in the tar",
       {file("su", elf, 04755)},
       listed({file("su", elf, 0755)}),
       BundleReason::UnsafeEntry},
      {"setgid in the manifest", {file("sg", elf, 02755)}, std::nullopt, BundleReason::UnsafeEntry},
      {"duplicate in the tar",
       {file("a", "x"), file("a", "x")},
       listed({file("a", "x")}),
       BundleReason::DuplicateEntry},
      {"duplicate in the manifest",
       {file("a", "x"), file("a", "x")},
       std::nullopt,
       BundleReason::DuplicateEntry},
      {"unlisted entry",
       {file("a", "x"), file("b", "y")},
       listed({file("a", "x")}),
       BundleReason::UnlistedEntry},
      {"missing entry",
       {file("a", "x")},
       listed({file("a", "x"), file("b", "y")}),
       BundleReason::MissingEntry},
      {"out of order",
       {file("b", "y"), file("a", "x")},
       listed({file("a", "x"), file("b", "y")}),
       BundleReason::MissingEntry},
      {"entry size that lies",
       {file("a", elf)},
       listed({file("a", elf.substr(0, 100))}),
       BundleReason::EntryMismatch},
      {"file that is a directory in the tar",
       {dir("a")},
       listed({file("a", "")}),
       BundleReason::EntryMismatch},
      {"mode differs",
       {file("a", "x", 0777)},
       listed({file("a", "x", 0755)}),
       BundleReason::EntryMismatch},
      {"sparse file (bomb)",
       {TarEntry{.name = "big", .data = "x", .sparse = true}},
       listed({file("big", "x")}),
       BundleReason::LimitExceeded},
      {"entry before its directory",
       {file("bin/vcrmd", "x")},
       std::nullopt,
       BundleReason::ManifestInvalid},
      {"file under a file",
       {file("bin", "x"), file("bin/vcrmd", "y")},
       std::nullopt,
       BundleReason::ManifestInvalid},
      {"name with a newline", {file("a\nb", "x")}, std::nullopt, BundleReason::UnsafeEntry},
  };
  for (const PayloadCase& c : cases) {
    SCOPED_TRACE(c.name);
    expectRefused(
        assembleBundle(testKey(), manifestFor(c.manifest.value_or(entriesOf(c.tar))), tarOf(c.tar)),
        c.reason);
  }
}

TEST(BundleTest, AnArchiveBombIsRefusedByItsDeclaredExpansion) {
  // 64 MiB of zeros, gzip-compressed to a few KiB, declared honestly in a signed manifest.
  const std::vector<TarEntry> huge = {file("zeros", std::string(64u << 20, '\0'))};
  const std::string gz = tarOf(huge, /*gzip=*/true);
  ASSERT_LT(gz.size(), 1u << 20);
  expectRefused(assembleBundle(testKey(), manifestFor(entriesOf(huge)), gz),
                BundleReason::LimitExceeded);
  // The same compressed payload with a manifest that fits it is not a plain tar.
  expectRefused(assembleBundle(testKey(), manifestFor({}), gz), BundleReason::NotATar);
  // Files adding up to more than an installation may take.
  BundleManifest big = manifestFor(entriesOf({file("a", "x")}));
  big.entries[0].size = std::uint64_t{1} << 62;
  expectRefused(assembleBundle(testKey(), big, tarOf({file("a", "x")})),
                BundleReason::LimitExceeded);
  // More entries than allowed.
  std::vector<TarEntry> many;
  for (int i = 0; i < 20001; ++i) many.push_back(file("f" + std::to_string(i), ""));
  expectRefused(assembleBundle(testKey(), manifestFor(entriesOf(many)), std::string(10240, '\0')),
                BundleReason::LimitExceeded);
}

TEST(BundleTest, ARandomPayloadIsNotATar) {
  expectRefused(assembleBundle(testKey(), manifestFor({}), pseudoRandom(9000, 3)),
                BundleReason::NotATar);
}

TEST(BundleTest, AFileThatDiffersFromItsSignedHashIsRemovedWithTheWholeSlot) {
  // Signed chunk hashes vouch for the payload's bytes; the file hashes are checked as the files
  // are written, and the first mismatch takes the whole directory away.
  std::vector<BundleEntry> entries = entriesOf(goodEntries());
  entries[1].sha256 = crypto::sha256Hex("something else");
  vcrm::test::TempDir tmp("vcrm-bundle");
  writeBytes(tmp.path() / "b.bin",
             assembleBundle(testKey(), manifestFor(entries), tarOf(goodEntries())));
  const files::Fd fd = openRead(tmp.path() / "b.bin");
  try {
    extractBundle(fd.get(), testKeyring(), tmp.path() / "slot-b");
    FAIL() << "extracted a file whose hash differs";
  } catch (const BundleRefused& e) {
    EXPECT_EQ(e.reason(), BundleReason::HashMismatch) << e.what();
  }
  EXPECT_FALSE(fs::exists(tmp.path() / "slot-b"));
}

TEST(BundleTest, AChunkChangedAfterVerificationStopsExtractionAndRemovesTheSlot) {
  // Verified at upload, confirmed later: the payload is changed in between, inside bin/vcrmd,
  // so extraction has already written part of it when it reaches the changed chunk.
  vcrm::test::TempDir tmp("vcrm-bundle");
  const fs::path path = tmp.path() / "b.bin";
  writeBytes(path, goodBundle());
  const files::Fd fd = openRead(path);
  const BundleInfo verified = verifyBundle(fd.get(), testKeyring());
  {
    const files::Fd writer(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    const char x = 'x';
    ASSERT_EQ(::pwrite(writer.get(), &x, 1,
                       static_cast<off_t>(verified.header.payloadOffset + 3 * 4096 + 10)),
              1);
  }
  try {
    extractVerifiedBundle(fd.get(), verified, tmp.path() / "slot-b");
    FAIL() << "extracted a payload changed after verification";
  } catch (const BundleRefused& e) {
    EXPECT_EQ(e.reason(), BundleReason::ChunkMismatch) << e.what();
    EXPECT_NE(std::string(e.what()).find("chunk 3 "), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(tmp.path() / "slot-b"));
  // And a file that grew since.
  writeBytes(path, goodBundle() + "more");
  EXPECT_THROW(extractVerifiedBundle(fd.get(), verified, tmp.path() / "slot-b"), BundleRefused);
  EXPECT_FALSE(fs::exists(tmp.path() / "slot-b"));
}

TEST(BundleTest, TheFirstBadChunkIsNamedWhateverThreadFindsABadOne) {
  std::string bad = goodBundle();
  vcrm::test::TempDir tmp("vcrm-bundle");
  writeBytes(tmp.path() / "good.bin", bad);
  const BundleInfo info = inspectBundle(openRead(tmp.path() / "good.bin").get());
  for (int chunk : {2, 6}) bad[info.header.payloadOffset + chunk * 4096 + 10] ^= 1;
  writeBytes(tmp.path() / "bad.bin", bad);
  for (int round = 0; round < 20; ++round) {
    try {
      verifyBundle(openRead(tmp.path() / "bad.bin").get(), testKeyring(),
                   BundleLimits{.threads = 2});
      FAIL() << "accepted";
    } catch (const BundleRefused& e) {
      ASSERT_EQ(e.reason(), BundleReason::ChunkMismatch);
      ASSERT_NE(std::string(e.what()).find("chunk 2 "), std::string::npos) << e.what();
    }
  }
}

// --------------------------------------------------------------------------------- keyring

TEST(BundleKeyringTest, ParsesKeysAndRevocationsAndRefusesWhatItCannotUse) {
  const std::string pub = crypto::base64Encode(crypto::Ed25519PrivateKey::generate().publicKey());
  const BundleKeyring ring = BundleKeyring::parse(
      "# vendor keys\n\nkey vendor-2026 ed25519 " + pub + "  # current\nkey old-1 ed25519 " + pub +
          "\nrevoked old-1\nrevoked never-listed\n",
      "ring");
  EXPECT_EQ(ring.trust("vendor-2026"), BundleKeyring::Trust::Trusted);
  EXPECT_EQ(ring.trust("old-1"), BundleKeyring::Trust::Revoked);
  EXPECT_EQ(ring.trust("never-listed"), BundleKeyring::Trust::Revoked);
  EXPECT_EQ(ring.trust("other"), BundleKeyring::Trust::Unknown);
  EXPECT_FALSE(ring.publicKey("old-1").has_value());
  EXPECT_EQ(BundleKeyring::parse(ring.text(), "again").text(), ring.text());

  for (const std::string& bad : std::vector<std::string>{
           "key a ed25519", "key UPPER ed25519 " + pub, "key a rsa " + pub, "key a ed25519 AAAA",
           "key a ed25519 " + pub + "\nkey a ed25519 " + pub, "revoke a", "trust a"}) {
    SCOPED_TRACE(bad);
    try {
      BundleKeyring::parse(bad, "ring.pub");
      ADD_FAILURE() << "accepted";
    } catch (const InvalidInput& e) {
      EXPECT_NE(std::string(e.what()).find("ring.pub line "), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(BundleSigningKey::parse("key a ed25519 " + pub, "k"), InvalidInput);
  EXPECT_EQ(testKey().keyringLine(), BundleKeyring::parse(testKey().keyringLine(), "t")
                                         .text()
                                         .substr(0, testKey().keyringLine().size()));
}

// ---------------------------------------------------------------------------------- policy

struct PolicyCase {
  const char* name;
  BundleRelease bundle;
  InstalledFacts installed;
  std::optional<BundleReason> refused;
};

TEST(BundlePolicyTest, CompatibilityVersionFloorDowngradeAndLicenceDate) {
  auto bundle = [](std::string version, std::string minVersion, std::string date) {
    return BundleRelease{version, date, "vcrm-appliance", minVersion, ""};
  };
  auto on = [](std::string version, std::optional<std::string> until = std::nullopt,
               bool allow = false) {
    return InstalledFacts{"vcrm-appliance", version, until, allow};
  };
  const std::vector<PolicyCase> cases = {
      {"an upgrade", bundle("0.2.0", "0.1.0", "2026-11-30"), on("0.1.0"), std::nullopt},
      {"from above the floor", bundle("1.4.0", "1.0.0", "2026-11-30"), on("1.3.9"), std::nullopt},
      {"numeric, not textual, order", bundle("0.10.0", "0.9.0", "2026-11-30"), on("0.9.1"),
       std::nullopt},
      {"another kind of system", BundleRelease{"0.2.0", "2026-11-30", "acme-mcu", "0.1.0", ""},
       on("0.1.0"), BundleReason::Incompatible},
      {"below the version floor", bundle("2.0.0", "1.5.0", "2026-11-30"), on("1.4.9"),
       BundleReason::BelowVersionFloor},
      {"a downgrade", bundle("0.1.0", "0.1.0", "2026-11-30"), on("0.2.0"), BundleReason::Downgrade},
      {"the same version", bundle("0.2.0", "0.1.0", "2026-11-30"), on("0.2.0"),
       BundleReason::Downgrade},
      {"a downgrade an admin allowed", bundle("0.1.0", "0.1.0", "2026-11-30"),
       on("0.2.0", std::nullopt, true), std::nullopt},
      {"released after upgrades-until", bundle("0.2.0", "0.1.0", "2026-12-01"),
       on("0.1.0", "2026-11-30"), BundleReason::NotEntitled},
      {"released on upgrades-until", bundle("0.2.0", "0.1.0", "2026-11-30"),
       on("0.1.0", "2026-11-30"), std::nullopt},
      {"released before upgrades-until", bundle("0.2.0", "0.1.0", "2025-01-01"),
       on("0.1.0", "2026-11-30"), std::nullopt},
      {"allowed downgrade still needs entitlement", bundle("0.1.0", "0.1.0", "2027-01-01"),
       on("0.2.0", "2026-11-30", true), BundleReason::NotEntitled},
  };
  for (const PolicyCase& c : cases) {
    SCOPED_TRACE(c.name);
    try {
      checkUpgradePolicy(c.bundle, c.installed);
      EXPECT_FALSE(c.refused.has_value()) << "allowed, should be " << bundleReasonCode(*c.refused);
    } catch (const BundleRefused& e) {
      ASSERT_TRUE(c.refused.has_value()) << "refused: " << e.what();
      EXPECT_EQ(bundleReasonCode(e.reason()), bundleReasonCode(*c.refused)) << e.what();
    }
  }
}

// ------------------------------------------------------------------------------------ tool

struct ToolRun {
  int status;
  std::string output;
};

ToolRun tool(const std::vector<std::string>& args) {
  std::vector<std::string> argv{std::string(VCRM_BIN_DIR) + "/vcrm-bundle"};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto r = process::run(argv);
  return {r.exitCode, r.output};
}

TEST(BundleToolTest, CreateInspectVerifyFromTheCommandLine) {
  vcrm::test::TempDir tmp("vcrm-bundle");
  fs::create_directories(tmp.path() / "install/bin");
  writeBytes(tmp.path() / "install/bin/vcrmd", pseudoRandom(5000, 9));
  writeBytes(tmp.path() / "notes.txt", "Release 0.2.0: bundles.\n");
  const std::string out = (tmp.path() / "vcrm.bin").string();
  const std::string key = (kKeys / "vcrm-test-bundle.key").string();
  const std::string ring = (kKeys / "vcrm-test-bundle.pub").string();
  ToolRun r = tool({"create", "--key", key, "--version", "0.2.0", "--release-date", "2026-11-30",
                    "--compatible", "vcrm-appliance", "--min-version", "0.1.0", "--notes",
                    (tmp.path() / "notes.txt").string(), "--from",
                    (tmp.path() / "install").string(), "--out", out});
  ASSERT_EQ(r.status, 0) << r.output;

  r = tool({"inspect", out});
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output.rfind("UNVERIFIED", 0), 0u) << r.output;
  EXPECT_NE(r.output.find("Release 0.2.0: bundles."), std::string::npos);

  r = tool({"verify", out, "--keyring", ring});
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("verified:"), std::string::npos);
  r = tool({"verify", out, "--keyring", ring, "--compatible", "vcrm-appliance",
            "--installed-version", "0.1.0"});
  EXPECT_EQ(r.status, 0) << r.output;
  r = tool({"verify", out, "--keyring", ring, "--compatible", "vcrm-appliance",
            "--installed-version", "0.1.0", "--upgrades-until", "2026-06-30"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("bundle_not_entitled"), std::string::npos) << r.output;

  writeBytes(tmp.path() / "other.pub", BundleSigningKey::generate("other").keyringLine());
  r = tool({"verify", out, "--keyring", (tmp.path() / "other.pub").string()});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("bundle_key_unknown"), std::string::npos) << r.output;
  EXPECT_EQ(tool({"verify", out}).status, 2);
  EXPECT_EQ(tool({"frobnicate"}).status, 2);
}

}  // namespace
}  // namespace vcrm::upgrade
