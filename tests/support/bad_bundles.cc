#include "bad_bundles.h"

#include <memory>

#include "vcrm/common/crypto.h"
#include "vcrm/common/files.h"

namespace vcrm::upgrade::test {

namespace {

const std::filesystem::path kKeys = std::filesystem::path(VCRM_SOURCE_DIR) / "upgrade/keys";

std::string flipped(std::string s, std::size_t at, unsigned char mask) {
  s[at] = static_cast<char>(s[at] ^ mask);
  return s;
}

std::string withField(std::string s, std::size_t at, std::uint64_t value) {
  for (int i = 0; i < 8; ++i) s[at + i] = static_cast<char>((value >> (8 * i)) & 0xff);
  return s;
}

}  // namespace

BundleSigningKey testBundleKey() {
  return BundleSigningKey::parse(files::readFile(kKeys / "vcrm-test-bundle.key"), "test key");
}

std::string testBundleKeyringText() {
  return files::readFile(kKeys / "vcrm-test-bundle.pub");
}

BundleKeyring testBundleKeyring() {
  return BundleKeyring::parse(testBundleKeyringText(), "test keyring");
}

BundleRelease sampleRelease() {
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

TarEntry dirEntry(std::string name, int perm) {
  return TarEntry{.name = std::move(name), .type = AE_IFDIR, .perm = perm};
}

TarEntry fileEntry(std::string name, std::string data, int perm) {
  return TarEntry{.name = std::move(name), .data = std::move(data), .perm = perm};
}

std::vector<TarEntry> goodEntries() {
  return {dirEntry("bin"),
          fileEntry("bin/vcrmd", pseudoRandom(20000, 1), 0755),
          dirEntry("share"),
          dirEntry("share/vcrm"),
          dirEntry("share/vcrm/webui"),
          fileEntry("share/vcrm/webui/index.html", "<!doctype html>\n")};
}

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

BundleManifest manifestFor(std::vector<BundleEntry> entries, std::uint64_t chunkSize,
                           const BundleRelease& release) {
  BundleManifest m;
  m.release = release;
  m.chunkSize = chunkSize;
  m.entries = std::move(entries);
  return m;
}

std::string goodBundle(std::uint64_t chunkSize, const BundleRelease& release) {
  return assembleBundle(testBundleKey(), manifestFor(entriesOf(goodEntries()), chunkSize, release),
                        tarOf(goodEntries()));
}

std::string bundleOf(const std::vector<TarEntry>& entries, const BundleRelease& release) {
  return assembleBundle(testBundleKey(), manifestFor(entriesOf(entries), 4096, release),
                        tarOf(entries));
}

std::ostream& operator<<(std::ostream& os, const BadBundle& c) {
  return os << c.name;
}

std::vector<BadBundle> badBundles(const BundleRelease& release) {
  const auto good = std::make_shared<const std::string>(goodBundle(4096, release));
  const BundleHeader h = parseBundleHeader(good->substr(0, kBundleHeaderSize), good->size());
  const std::size_t manifest = h.manifestOffset;
  const std::size_t sig = h.signatureOffset;
  const std::size_t payload = h.payloadOffset;
  const std::size_t size = good->size();
  std::vector<BadBundle> out;
  const auto add = [&](std::string name, std::function<std::string()> build, BundleReason reason,
                       std::string keyring = {}) {
    out.push_back(BadBundle{std::move(name), std::move(build), reason, std::move(keyring)});
  };

  // ------------------------------------------------------------- a flipped byte anywhere
  struct Flip {
    const char* where;
    std::size_t at;
    unsigned char mask;
    BundleReason reason;
  };
  const std::vector<Flip> flips = {
      {"magic", 0, 0x01, BundleReason::NotABundle},
      {"magic end", 7, 0x20, BundleReason::NotABundle},
      {"format version", 8, 0x01, BundleReason::BadHeader},
      {"format version high (a newer format)", 11, 0x80, BundleReason::UnsupportedFormat},
      {"header size", 12, 0x01, BundleReason::BadHeader},
      {"manifest offset", 16, 0x01, BundleReason::BadHeader},
      {"manifest length", 24, 0x01, BundleReason::BadHeader},
      {"signature offset", 32, 0x01, BundleReason::BadHeader},
      {"signature length", 40, 0x01, BundleReason::BadHeader},
      {"payload offset", 48, 0x01, BundleReason::BadHeader},
      // One more or one less byte than the file has, as the low bit was clear or set.
      {"payload length low bit", 56, 0x01,
       ((*good)[56] & 1) != 0 ? BundleReason::TrailingData : BundleReason::Truncated},
      {"payload length 2^63", 63, 0x80, BundleReason::LimitExceeded},
      {"manifest first byte", manifest, 0x01, BundleReason::SignatureInvalid},
      {"manifest middle", (manifest + sig) / 2, 0x04, BundleReason::SignatureInvalid},
      {"manifest last byte", sig - 1, 0x01, BundleReason::SignatureInvalid},
      {"key id length", sig, 0x40, BundleReason::SignatureMalformed},
      {"key id", sig + 2, 0x01, BundleReason::KeyUnknown},
      {"key id to a non key id", sig + 2, 0x20, BundleReason::SignatureMalformed},
      {"signature first byte", payload - 64, 0x01, BundleReason::SignatureInvalid},
      {"signature last byte", payload - 1, 0x80, BundleReason::SignatureInvalid},
      {"payload first byte", payload, 0x01, BundleReason::ChunkMismatch},
      {"payload in file data", payload + 5000, 0x01, BundleReason::ChunkMismatch},
      {"payload last byte", size - 1, 0x01, BundleReason::ChunkMismatch},
  };
  for (const Flip& f : flips) {
    add(
        std::string("flipped byte: ") + f.where, [good, f] { return flipped(*good, f.at, f.mask); },
        f.reason);
  }

  // ---------------------------------------------------------------------- truncated anywhere
  add(
      "empty file", [] { return std::string(); }, BundleReason::NotABundle);
  for (std::size_t at :
       {std::size_t{3}, std::size_t{8}, std::size_t{40}, std::size_t{63}, std::size_t{64},
        std::size_t{65}, sig - 1, sig, sig + 1, payload - 1, payload, payload + 511, payload + 512,
        payload + 4096, size - 1024, size - 1}) {
    add(
        "truncated at " + std::to_string(at), [good, at] { return good->substr(0, at); },
        BundleReason::Truncated);
  }
  add(
      "trailing data", [good] { return *good + "x"; }, BundleReason::TrailingData);

  // ------------------------------------------------------------- header lengths that lie
  add(
      "payload length beyond the file",
      [good, h] { return withField(*good, 56, h.payloadLength + 4096); }, BundleReason::Truncated);
  add(
      "payload length 2^63 (64-bit sizes)",
      [good] { return withField(*good, 56, std::uint64_t{1} << 63); }, BundleReason::LimitExceeded);
  add(
      "manifest length 2^63", [good] { return withField(*good, 24, std::uint64_t{1} << 63); },
      BundleReason::LimitExceeded);
  add(
      "manifest length 2^64-1", [good] { return withField(*good, 24, ~std::uint64_t{0}); },
      BundleReason::LimitExceeded);
  add(
      "signature length 2^63", [good] { return withField(*good, 40, std::uint64_t{1} << 63); },
      BundleReason::BadHeader);
  add(
      "payload offset wrapping", [good] { return withField(*good, 48, ~std::uint64_t{0} - 10); },
      BundleReason::BadHeader);
  add(
      "manifest offset zero", [good] { return withField(*good, 16, 0); }, BundleReason::BadHeader);

  // ------------------------------------------------------------------------------ signatures
  add(
      "signed with an unknown key",
      [release] {
        return assembleBundle(BundleSigningKey::generate("someone-else"),
                              manifestFor(entriesOf(goodEntries()), 4096, release),
                              tarOf(goodEntries()));
      },
      BundleReason::KeyUnknown);
  add(
      "signed with a revoked key", [good] { return *good; }, BundleReason::KeyRevoked,
      testBundleKeyringText() + "revoked vcrm-test-bundle-1\n");
  // The key id of a trusted key over another key's signature.
  {
    BundleKeyring impostor;
    impostor.add("vcrm-test-bundle-1", BundleSigningKey::generate("impostor").key.publicKey());
    add(
        "a trusted key id over another key's signature", [good] { return *good; },
        BundleReason::SignatureInvalid, impostor.text());
  }

  // ------------------------------------------------------------ manifests signed but wrong
  const std::string tar = tarOf(goodEntries());
  const std::string text = [&] {
    BundleManifest m = manifestFor(entriesOf(goodEntries()), 4096, release);
    m.payloadSize = tar.size();
    for (std::size_t at = 0; at < tar.size(); at += m.chunkSize) {
      m.chunks.push_back(crypto::sha256Hex(std::string_view(tar).substr(at, m.chunkSize)));
    }
    return bundleManifestJson(m);
  }();
  const auto signedWith = [tar](const std::string& manifestText) {
    return
        [tar, manifestText] { return bundleHead(testBundleKey(), manifestText, tar.size()) + tar; };
  };
  const auto replaced = [text](const std::string& from, const std::string& to) {
    std::string t = text;
    const auto at = t.find(from);
    if (at == std::string::npos) throw std::logic_error("no " + from + " in the manifest");
    return t.replace(at, from.size(), to);
  };
  add("manifest not canonical", signedWith(text + " "), BundleReason::ManifestInvalid);
  add("manifest missing fields", signedWith("{\"format\":1, \"product\":\"vcrm\"}"),
      BundleReason::ManifestInvalid);
  add("manifest not json", signedWith("not json"), BundleReason::ManifestInvalid);
  add("another product", signedWith(replaced("\"product\":\"vcrm\"", "\"product\":\"acme-mcu\"")),
      BundleReason::OtherProduct);
  add("newer manifest format", signedWith(replaced("\"format\":1", "\"format\":2")),
      BundleReason::UnsupportedFormat);
  add("impossible release date",
      signedWith(replaced("\"release_date\":\"" + release.releaseDate + "\"",
                          "\"release_date\":\"2026-02-30\"")),
      BundleReason::ManifestInvalid);
  add("version that is not dotted numbers",
      signedWith(replaced("\"version\":\"" + release.version + "\"",
                          "\"version\":\"" + release.version + "-rc1\"")),
      BundleReason::ManifestInvalid);
  add("payload size that lies",
      signedWith(replaced("\"payload_size\":" + std::to_string(tar.size()),
                          "\"payload_size\":" + std::to_string(tar.size() - 1))),
      BundleReason::ManifestInvalid);
  add("payload size 2^63-1",
      signedWith(replaced("\"payload_size\":" + std::to_string(tar.size()),
                          "\"payload_size\":9223372036854775807")),
      BundleReason::LimitExceeded);
  add("unknown manifest field",
      signedWith(replaced("\"format\":1", "\"format\":1,\"run_first\":\"rm -rf /\"")),
      BundleReason::ManifestInvalid);

  // -------------------------------------------------------------------- hostile payloads
  const std::string elf = pseudoRandom(20000, 1);
  struct PayloadCase {
    const char* name;
    std::vector<TarEntry> tar;
    std::optional<std::vector<TarEntry>> listed;  // the tar itself when absent
    BundleReason reason;
  };
  const std::vector<PayloadCase> payloads = {
      {"path traversal", {fileEntry("../evil", "x")}, std::nullopt, BundleReason::UnsafeEntry},
      {"path traversal inside",
       {dirEntry("bin"), fileEntry("bin/../../etc/cron.d/x", "x")},
       std::nullopt,
       BundleReason::UnsafeEntry},
      {"path traversal in the tar only",
       {fileEntry("../evil", "x")},
       std::vector{fileEntry("evil", "x")},
       BundleReason::UnsafeEntry},
      {"absolute path", {fileEntry("/etc/passwd", "x")}, std::nullopt, BundleReason::UnsafeEntry},
      {"absolute path in the tar only",
       {fileEntry("/etc/passwd", "x")},
       std::vector{fileEntry("etc", "x")},
       BundleReason::UnsafeEntry},
      {"symlink",
       {dirEntry("bin"),
        TarEntry{.name = "bin/vcrmd", .type = AE_IFLNK, .perm = 0777, .symlink = "/bin/sh"}},
       std::vector{dirEntry("bin"), fileEntry("bin/vcrmd", "", 0777)},
       BundleReason::UnsafeEntry},
      {"hardlink",
       {fileEntry("a", "x"), TarEntry{.name = "b", .hardlink = "/etc/shadow"}},
       std::vector{fileEntry("a", "x"), fileEntry("b", "")},
       BundleReason::UnsafeEntry},
      {"character device",
       {TarEntry{.name = "null", .type = AE_IFCHR}},
       std::vector{fileEntry("null", "", 0600)},
       BundleReason::UnsafeEntry},
      {"block device",
       {TarEntry{.name = "sda", .type = AE_IFBLK}},
       std::vector{fileEntry("sda", "", 0600)},
       BundleReason::UnsafeEntry},
      {"fifo",
       {TarEntry{.name = "pipe", .type = AE_IFIFO}},
       std::vector{fileEntry("pipe", "", 0600)},
       BundleReason::UnsafeEntry},
      {"setuid in the tar",
       {fileEntry("su", elf, 04755)},
       std::vector{fileEntry("su", elf, 0755)},
       BundleReason::UnsafeEntry},
      {"setgid in the manifest",
       {fileEntry("sg", elf, 02755)},
       std::nullopt,
       BundleReason::UnsafeEntry},
      {"duplicate in the tar",
       {fileEntry("a", "x"), fileEntry("a", "x")},
       std::vector{fileEntry("a", "x")},
       BundleReason::DuplicateEntry},
      {"duplicate in the manifest",
       {fileEntry("a", "x"), fileEntry("a", "x")},
       std::nullopt,
       BundleReason::DuplicateEntry},
      {"unlisted entry",
       {fileEntry("a", "x"), fileEntry("b", "y")},
       std::vector{fileEntry("a", "x")},
       BundleReason::UnlistedEntry},
      {"missing entry",
       {fileEntry("a", "x")},
       std::vector{fileEntry("a", "x"), fileEntry("b", "y")},
       BundleReason::MissingEntry},
      {"out of order",
       {fileEntry("b", "y"), fileEntry("a", "x")},
       std::vector{fileEntry("a", "x"), fileEntry("b", "y")},
       BundleReason::MissingEntry},
      {"entry size that lies",
       {fileEntry("a", elf)},
       std::vector{fileEntry("a", elf.substr(0, 100))},
       BundleReason::EntryMismatch},
      {"file that is a directory in the tar",
       {dirEntry("a")},
       std::vector{fileEntry("a", "")},
       BundleReason::EntryMismatch},
      {"mode differs",
       {fileEntry("a", "x", 0777)},
       std::vector{fileEntry("a", "x", 0755)},
       BundleReason::EntryMismatch},
      {"sparse file (bomb)",
       {TarEntry{.name = "big", .data = "x", .sparse = true}},
       std::vector{fileEntry("big", "x")},
       BundleReason::LimitExceeded},
      {"entry before its directory",
       {fileEntry("bin/vcrmd", "x")},
       std::nullopt,
       BundleReason::ManifestInvalid},
      {"file under a file",
       {fileEntry("bin", "x"), fileEntry("bin/vcrmd", "y")},
       std::nullopt,
       BundleReason::ManifestInvalid},
      {"name with a newline", {fileEntry("a\nb", "x")}, std::nullopt, BundleReason::UnsafeEntry},
  };
  for (const PayloadCase& c : payloads) {
    add(
        c.name,
        [c, release] {
          return assembleBundle(testBundleKey(),
                                manifestFor(entriesOf(c.listed.value_or(c.tar)), 4096, release),
                                tarOf(c.tar));
        },
        c.reason);
  }
  add(
      "file hash differs from the manifest",
      [release] {
        std::vector<BundleEntry> entries = entriesOf(goodEntries());
        entries[1].sha256 = crypto::sha256Hex("something else");
        return assembleBundle(testBundleKey(), manifestFor(entries, 4096, release),
                              tarOf(goodEntries()));
      },
      BundleReason::HashMismatch);

  // ------------------------------------------------------------------------ archive bombs
  // 64 MiB of zeros, gzip-compressed to a few KiB, declared honestly in a signed manifest.
  add(
      "gzip bomb declared honestly",
      [release] {
        const std::vector<TarEntry> huge = {fileEntry("zeros", std::string(64u << 20, '\0'))};
        return assembleBundle(testBundleKey(), manifestFor(entriesOf(huge), 4096, release),
                              tarOf(huge, /*gzip=*/true));
      },
      BundleReason::LimitExceeded);
  add(
      "compressed payload (not a plain tar)",
      [release] {
        return assembleBundle(testBundleKey(), manifestFor({}, 4096, release),
                              tarOf({fileEntry("a", std::string(100000, 'a'))}, /*gzip=*/true));
      },
      BundleReason::NotATar);
  add(
      "files adding up to 2^62 bytes",
      [release] {
        BundleManifest big = manifestFor(entriesOf({fileEntry("a", "x")}), 4096, release);
        big.entries[0].size = std::uint64_t{1} << 62;
        return assembleBundle(testBundleKey(), big, tarOf({fileEntry("a", "x")}));
      },
      BundleReason::LimitExceeded);
  add(
      "more entries than allowed",
      [release] {
        std::vector<TarEntry> many;
        for (int i = 0; i < 20001; ++i) many.push_back(fileEntry("f" + std::to_string(i), ""));
        return assembleBundle(testBundleKey(), manifestFor(entriesOf(many), 4096, release),
                              std::string(10240, '\0'));
      },
      BundleReason::LimitExceeded);
  add(
      "random payload (not a tar)",
      [release] {
        return assembleBundle(testBundleKey(), manifestFor({}, 4096, release),
                              pseudoRandom(9000, 3));
      },
      BundleReason::NotATar);
  return out;
}

}  // namespace vcrm::upgrade::test
