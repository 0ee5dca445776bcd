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

#include "bad_bundles.h"
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
  return test::testBundleKey();
}
BundleKeyring testKeyring() {
  return test::testBundleKeyring();
}
BundleRelease release() {
  return test::sampleRelease();
}
using test::entriesOf;
using test::goodBundle;
using test::goodEntries;
using test::manifestFor;
using test::pseudoRandom;
TarEntry file(std::string name, std::string data, int perm = 0644) {
  return test::fileEntry(std::move(name), std::move(data), perm);
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
        verifyBundleFileHashes(fd.get(), verifyBundle(fd.get(), ring));
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

// ------------------------------------------------------- the bad-bundle suite (bad_bundles.h)

TEST(BundleTest, EveryBadBundleIsRefusedWithItsReasonBeforeAnythingIsWritten) {
  const auto cases = test::badBundles();
  ASSERT_GE(cases.size(), 80u);
  for (const test::BadBundle& c : cases) {
    SCOPED_TRACE(c.name);
    expectRefused(c.build(), c.reason,
                  c.keyring.empty() ? testKeyring() : BundleKeyring::parse(c.keyring, c.name));
  }
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
