#include "bad_archives.h"

#include <cctype>
#include <stdexcept>

#include "vcrm/common/json.h"

namespace vcrm::upgrade::test {

std::ostream& operator<<(std::ostream& os, const BadArchive& c) {
  return os << c.name;
}

namespace {

std::vector<TarEntry> without(std::vector<TarEntry> v, const std::string& name) {
  std::erase_if(v, [&](const TarEntry& e) { return e.name == name; });
  return v;
}

std::vector<TarEntry> with(std::vector<TarEntry> v, TarEntry extra) {
  v.push_back(std::move(extra));
  return v;
}

constexpr std::size_t kChunk = kBadArchiveChunk;
constexpr std::size_t kSealedChunk = kChunk + kSealedTagSize;

// The chunk holding plaintext offset `at` of the tar.
std::size_t chunkOfPlain(std::size_t at) {
  return at / (kChunk - 4);
}

// Where member `name`'s header starts in the plain tar.
std::size_t headerOffset(const std::string& tar, const std::string& name) {
  for (std::size_t at = 0; at + 512 <= tar.size(); at += 512) {
    if (tar.compare(at, name.size() + 1, name + '\0') == 0) return at;
  }
  throw std::runtime_error("no header for " + name);
}

}  // namespace

std::size_t chunkOffset(std::size_t i) {
  return kSealedHeaderSize + i * kSealedChunk;
}
std::size_t chunkCount(const std::string& archive) {
  return (archive.size() - kSealedHeaderSize) / kSealedChunk;
}
std::string flipped(std::string s, std::size_t at) {
  s[at] = static_cast<char>(s[at] ^ 0x20);
  return s;
}
std::string withTagFlipped(const std::string& archive, std::size_t i) {
  return flipped(archive, chunkOffset(i) + kChunk + (i % kSealedTagSize));
}

std::vector<BadArchive> badArchives(const BadArchiveBase& base) {
  const auto m = typicalMembers();
  // Every manifest names the running software's versions, so only the cases about versions
  // are about versions.
  const auto onBase = [base](std::function<void(json::Object&)> edit = {}) {
    return [base, edit](json::Object& o) {
      o.set("product_version", base.productVersion);
      o.set("schema_version", base.schemaVersion);
      if (edit) edit(o);
    };
  };
  const auto sealedTar = [onBase](const std::vector<TarEntry>& listed,
                                  const std::vector<TarEntry>& present,
                                  const std::function<void(json::Object&)>& edit = {}) {
    return sealBytes(archiveTar(listed, present, onBase(edit)));
  };
  const auto manifestOf = [onBase](const std::vector<TarEntry>& listed) {
    return manifestFor(listed, onBase());
  };
  const std::string tar = archiveTar(m, m, onBase());
  const std::string good = sealBytes(tar);
  std::vector<BadArchive> cases;
  auto add = [&](std::string name, std::function<std::string()> build, ArchiveReason reason,
                 std::string says) {
    cases.push_back({std::move(name), std::move(build), reason, std::move(says)});
  };

  // --- truncation
  add(
      "TruncatedInTheContainerHeader", [=] { return good.substr(0, 40); }, ArchiveReason::Truncated,
      "inside its header");
  add(
      "TruncatedAtAChunkBoundaryNearAMemberHeader",
      [=] {
        return good.substr(0, chunkOffset(chunkOfPlain(headerOffset(tar, "tls/server.key"))));
      },
      ArchiveReason::Truncated, "without its end marker");
  // A chunk size that puts a member's header exactly at the start of the second chunk.
  add(
      "TruncatedExactlyAtAMemberHeader",
      [=] {
        const std::size_t header = headerOffset(tar, "tls/server.key");
        const std::string sealed = sealBytes(tar, fastSeal(header + 4));
        return sealed.substr(0, kSealedHeaderSize + header + 4 + kSealedTagSize);
      },
      ArchiveReason::Truncated, "archive truncated after member \"licence/licence.vcrmlic\"");
  add(
      "TruncatedMidMember",
      [=] {
        return good.substr(
            0, chunkOffset(chunkOfPlain(headerOffset(tar, "database.dump")) + 30) + 100);
      },
      ArchiveReason::Truncated, "truncated inside member \"database.dump\"");
  add(
      "TruncatedBeforeTheEnd", [=] { return good.substr(0, good.size() - kSealedChunk); },
      ArchiveReason::Truncated, "without its end marker");
  add(
      "TruncatedByOneByte", [=] { return good.substr(0, good.size() - 1); },
      ArchiveReason::Truncated, "truncated");
  add(
      "TarWithoutItsMembers",
      [=] { return sealBytes(tar.substr(0, headerOffset(tar, "config/vcrmd.conf"))); },
      ArchiveReason::MissingMember,
      "member \"config/vcrmd.conf\" listed in the archive's manifest is missing");

  // --- flipped bytes: in each member's plaintext (with the passphrase) and in its ciphertext
  for (const TarEntry& e : m) {
    const std::string label = e.name.substr(e.name.find_last_of('/') + 1);
    std::string clean;
    for (char c : label) clean += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    add(
        "FlippedPlaintextByteIn_" + clean,
        [=] {
          return sealBytes(flipped(tar, headerOffset(tar, e.name) + 512 + e.data.size() / 2));
        },
        ArchiveReason::HashMismatch, "member \"" + e.name + "\" does not match its SHA-256");
    add(
        "FlippedCiphertextByteIn_" + clean,
        [=] {
          const std::size_t at = headerOffset(tar, e.name) + 512 + e.data.size() / 2;
          return flipped(good, chunkOffset(chunkOfPlain(at)) + at % (kChunk - 4) + 4);
        },
        ArchiveReason::ChunkAltered, "fails authentication");
  }
  add(
      "FlippedByteInEveryTag", [=] { return good; }, ArchiveReason::ChunkAltered,
      "fails authentication");  // expanded over every chunk in the test below
  add(
      "FlippedHeaderCheck", [=] { return flipped(good, 50); }, ArchiveReason::WrongPassphrase,
      "wrong passphrase or not a vcrm archive");

  // --- chunks moved
  add(
      "ChunkDropped", [=] { return good.substr(0, chunkOffset(2)) + good.substr(chunkOffset(3)); },
      ArchiveReason::ChunksOutOfOrder, "chunks were dropped, repeated or reordered");
  add(
      "ChunksSwapped",
      [=] {
        return good.substr(0, chunkOffset(3)) + good.substr(chunkOffset(4), kSealedChunk) +
               good.substr(chunkOffset(3), kSealedChunk) + good.substr(chunkOffset(5));
      },
      ArchiveReason::ChunksOutOfOrder, "is chunk 4 of the archive");
  add(
      "ChunkRepeated", [=] { return good.substr(0, chunkOffset(2)) + good.substr(chunkOffset(1)); },
      ArchiveReason::ChunksOutOfOrder, "is chunk 1 of the archive");
  add(
      "DataAppended", [=] { return good + "more"; }, ArchiveReason::TrailingData,
      "more bytes follow");

  // --- the manifest edited (by someone with the passphrase)
  add(
      "ManifestSizeEdited",
      [=] {
        return sealedTar(
            m, m, [](json::Object& o) { o.getArray("members")->getObject(1)->set("size", 5); });
      },
      ArchiveReason::SizeMismatch,
      "member \"config/vcrmd.conf\" is 19 bytes in the tar but its manifest says 5");
  add(
      "ManifestHashEdited",
      [=] {
        return sealedTar(m, m, [](json::Object& o) {
          o.getArray("members")->getObject(3)->set("sha256", std::string(64, 'a'));
        });
      },
      ArchiveReason::HashMismatch, "member \"tls/server.key\" does not match its SHA-256");
  add(
      "ManifestNotJson",
      [=] {
        return sealBytes(tarOf(with({{.name = "manifest.json", .data = "{\"format\": 1,"}}, m[0])));
      },
      ArchiveReason::ManifestInvalid, "manifest is invalid");
  add(
      "ManifestUnknownField",
      [=] { return sealedTar(m, m, [](json::Object& o) { o.set("restore_hook", "rm -rf /"); }); },
      ArchiveReason::ManifestInvalid, "restore_hook");
  add(
      "ManifestCountsNotAnObject",
      [=] { return sealedTar(m, m, [](json::Object& o) { o.set("counts", 12); }); },
      ArchiveReason::ManifestInvalid, "\"counts\" must be an object");
  add(
      "ManifestCountNegative",
      [=] {
        return sealedTar(m, m, [](json::Object& o) {
          json::ObjectPtr counts = new json::Object;
          counts->set("conferences", -1);
          o.set("counts", counts);
        });
      },
      ArchiveReason::ManifestInvalid, "counts.conferences must be a whole number of rows");
  add(
      "ManifestNotFirst",
      [=] {
        std::vector<TarEntry> entries{m[1], {.name = "manifest.json", .data = manifestOf(m)}};
        return sealBytes(tarOf(entries));
      },
      ArchiveReason::ManifestInvalid, "does not start with its manifest");
  add(
      "EmptyTar", [=] { return sealBytes(tarOf({})); }, ArchiveReason::ManifestInvalid,
      "no manifest");
  add(
      "NotATar", [=] { return sealBytes(std::string(5000, 'x')); }, ArchiveReason::NotATar,
      "not a tar");
  add(
      "GzippedTarInside",
      [=] { return sealBytes(tarOf({{.name = "manifest.json", .data = manifestOf(m)}}, true)); },
      ArchiveReason::NotATar, "not a tar");
  add(
      "NonZeroDataAfterTheTar", [=] { return sealBytes(tar + std::string(600, 'q')); },
      ArchiveReason::TrailingData, "data after the end of its tar");

  // --- passphrase, product, versions
  cases.push_back({"WrongPassphrase", [=] { return good; }, ArchiveReason::WrongPassphrase,
                   "wrong passphrase or not a vcrm archive", "tr0ub4dor & 4"});
  add(
      "NotAnArchiveAtAll", [] { return std::string("%PDF-1.7 a document"); },
      ArchiveReason::NotAnArchive, "not a vcrm backup archive");
  add(
      "NewerContainerFormat",
      [=] {
        std::string s = good;
        s[9] = 2;
        return s;
      },
      ArchiveReason::UnsupportedFormat, "container format version 2");
  add(
      "NewerManifestFormat",
      [=] { return sealedTar(m, m, [](json::Object& o) { o.set("format", 2); }); },
      ArchiveReason::UnsupportedFormat, "manifest is format version 2");
  add(
      "AnotherProduct",
      [=] { return sealedTar(m, m, [](json::Object& o) { o.set("product", "rprm"); }); },
      ArchiveReason::OtherProduct, "made by \"rprm\", not by vcrm");
  add(
      "NewerProductVersion",
      [=] { return sealedTar(m, m, [](json::Object& o) { o.set("product_version", "99.0.0"); }); },
      ArchiveReason::TooNew, "made by vcrm 99.0.0, newer than this vcrm");
  add(
      "NewerSchemaVersion",
      [=] { return sealedTar(m, m, [](json::Object& o) { o.set("schema_version", 9999); }); },
      ArchiveReason::TooNew, "schema is version 9999");

  // --- members that are not what the manifest lists
  add(
      "ExtraMember",
      [=] { return sealedTar(m, with(m, {.name = "extra.sh", .data = "#!/bin/sh\n"})); },
      ArchiveReason::UnlistedMember, "member \"extra.sh\" that its manifest does not list");
  add(
      "MissingMember", [=] { return sealedTar(m, without(m, "tls/server.crt")); },
      ArchiveReason::MissingMember,
      "member \"tls/server.crt\" listed in the archive's manifest is missing");
  add(
      "DuplicateMember", [=] { return sealedTar(m, with(m, m[2])); },
      ArchiveReason::DuplicateMember, "member \"licence/licence.vcrmlic\" twice");
  add(
      "FileAndDirectoryOfTheSameName",
      [=] {
        const auto both = with(m, {.name = "tls", .data = "x"});
        return sealedTar(both, both);
      },
      ArchiveReason::ManifestInvalid, "\"tls\" both as a file and as a directory");
  add(
      "SecondManifest",
      [=] { return sealedTar(m, with(m, {.name = "manifest.json", .data = manifestOf(m)})); },
      ArchiveReason::DuplicateMember, "\"manifest.json\" twice");

  // --- unsafe members
  add(
      "DotDotMember",
      [=] { return sealedTar(m, with(m, {.name = "../etc/cron.d/x", .data = "x"})); },
      ArchiveReason::UnsafeMember, "climbs out of the archive");
  add(
      "NestedDotDotMember",
      [=] { return sealedTar(m, with(m, {.name = "tls/../../x", .data = "x"})); },
      ArchiveReason::UnsafeMember, "climbs out of the archive");
  add(
      "AbsoluteMember", [=] { return sealedTar(m, with(m, {.name = "/etc/passwd", .data = "x"})); },
      ArchiveReason::UnsafeMember, "absolute path");
  add(
      "AbsoluteMemberInManifest",
      [=] { return sealedTar(with(m, {.name = "/etc/passwd", .data = "x"}), m); },
      ArchiveReason::UnsafeMember, "absolute path");
  add(
      "SymlinkMember",
      [=] {
        return sealedTar(
            m, with(m, {.name = "tls/ca.crt", .type = AE_IFLNK, .symlink = "/etc/shadow"}));
      },
      ArchiveReason::UnsafeMember, "is a symbolic link");
  add(
      "HardlinkMember",
      [=] { return sealedTar(m, with(m, {.name = "tls/ca.crt", .hardlink = "tls/server.key"})); },
      ArchiveReason::UnsafeMember, "is a hard link");
  add(
      "CharacterDeviceMember",
      [=] { return sealedTar(m, with(m, {.name = "null", .type = AE_IFCHR})); },
      ArchiveReason::UnsafeMember, "is a device");
  add(
      "FifoMember", [=] { return sealedTar(m, with(m, {.name = "pipe", .type = AE_IFIFO})); },
      ArchiveReason::UnsafeMember, "special file");
  add(
      "DirectoryMember",
      [=] { return sealedTar(m, with(m, {.name = "tls", .type = AE_IFDIR, .perm = 0755})); },
      ArchiveReason::UnsafeMember, "is a directory");
  add(
      "SetuidMember",
      [=] {
        auto entries = m;
        entries[1].perm = 04755;
        return sealedTar(m, entries);
      },
      ArchiveReason::UnsafeMember, "setuid");

  // --- archive bombs
  add(
      "BombDeclaredHugeInManifest",
      [=] {
        return sealedTar(m, m, [](json::Object& o) {
          o.getArray("members")->getObject(0)->set("size", std::uint64_t{1} << 50);
        });
      },
      ArchiveReason::LimitExceeded, "beyond the limits");
  add(
      "BombTooManyMembers",
      [=] {
        std::vector<TarEntry> many;
        for (int i = 0; i < 100; ++i)
          many.push_back({.name = "f" + std::to_string(i), .data = "x"});
        return sealedTar(many, many);
      },
      ArchiveReason::LimitExceeded, "lists 100 members");
  add(
      "BombHugeManifest",
      [=] {
        return sealedTar(
            m, m, [](json::Object& o) { o.set("source_serial", std::string(2u << 20, 's')); });
      },
      ArchiveReason::LimitExceeded, "manifest is");
  add(
      "BombSparseMember",
      [=] {
        auto entries = m;
        entries[0].sparse = true;
        return sealedTar(m, entries);
      },
      ArchiveReason::LimitExceeded, "sparse file");
  add(
      "BombMemberLargerThanListed",
      [=] {
        auto entries = m;
        entries[1].data = std::string(1u << 20, 'x');
        return sealedTar(m, entries);
      },
      ArchiveReason::SizeMismatch, "bytes in the tar but its manifest says 19");
  add(
      "BombEndlessPaddingAfterTheTar", [=] { return sealBytes(tar + std::string(3u << 20, '\0')); },
      ArchiveReason::TrailingData, "data after the end of its tar");
  return cases;
}

}  // namespace vcrm::upgrade::test
