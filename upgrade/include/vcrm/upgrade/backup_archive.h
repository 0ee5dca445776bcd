// Backup archives: a tar (libarchive, pax/ustar) inside the encrypted container of
// sealed_stream.h, with a manifest first (versions, source, every member's path, size and
// SHA-256) and then the members the caller names (database dump, configuration, licence, keys).
// Reading verifies everything — every chunk's tag, the manifest, every member's size and hash,
// no extra, missing, duplicate or unsafe members, caps on sizes and counts — and refuses with
// one ArchiveError whose reason says what is wrong. The byte layout is in the README
// ("Backup archive file format").
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vcrm/upgrade/byte_stream.h"
#include "vcrm/upgrade/sealed_stream.h"

namespace vcrm::upgrade {

inline constexpr int kArchiveFormatVersion = 1;
inline constexpr std::string_view kArchiveProduct = "vcrm";
inline constexpr std::string_view kManifestName = "manifest.json";

// What the manifest says about where and when the archive was made.
struct ArchiveInfo {
  int formatVersion = kArchiveFormatVersion;
  std::string product{kArchiveProduct};
  std::string productVersion{};  // "0.1.0"
  int schemaVersion = 0;         // the highest migration applied to the dumped database
  std::string sourceSerial{};
  std::string sourceRole{};       // "standalone", "primary", "redundant"
  std::string createdAt{};        // ISO 8601 UTC; filled with the current time when empty
  std::string postgresVersion{};  // of the server dumped
  std::string pgDumpVersion{};    // of the pg_dump that made the dump
  // Rows in the dump an operator recognises ("conferences", "cdrs", "participant_cdrs",
  // "users"), counted in the dump's own snapshot; empty in archives that do not say.
  std::map<std::string, std::int64_t> counts{};
};

struct ArchiveMember {
  std::string path;  // relative, '/'-separated, [A-Za-z0-9._-] in each part
  std::uint64_t size = 0;
  std::string sha256;  // lowercase hex
};

struct Manifest {
  ArchiveInfo info;
  std::vector<ArchiveMember> members;  // in archive order, the manifest itself excluded
  [[nodiscard]] std::uint64_t totalBytes() const;
};

// The manifest as JSON text, exactly as it is stored in an archive (README, "Backup archive
// file format"); what the API and vcrmctl show of an archive.
std::string manifestJson(const Manifest& manifest);

// One member to write: its name in the archive and a way to read its bytes from the start.
// It is opened twice — once to hash it for the manifest, once to copy it — and refused if the
// two reads differ.
struct MemberSource {
  std::string path;
  std::function<std::unique_ptr<ByteSource>()> open;
};
MemberSource memberFromFile(std::string path, std::filesystem::path file);
MemberSource memberFromBytes(std::string path, std::string bytes);

// Called as members stream: bytes of member data done so far and in all.
using ArchiveProgress = std::function<void(std::uint64_t done, std::uint64_t total)>;

struct WriteOptions {
  SealOptions seal;
  ArchiveProgress progress;
};

// Writes the whole archive to `out` and returns its manifest. Throws InvalidInput for a bad or
// duplicate member name, IoError when a member cannot be read or changed while it was written.
Manifest writeArchive(ByteSink& out, std::string_view passphrase, const ArchiveInfo& info,
                      const std::vector<MemberSource>& members, const WriteOptions& options = {});

// Caps that keep a hostile archive from exhausting memory, disk or time.
struct ArchiveLimits {
  std::size_t maxManifestBytes = 1u << 20;
  std::size_t maxMembers = 64;
  std::uint64_t maxMemberBytes = std::uint64_t{256} << 30;  // 256 GiB
  std::uint64_t maxTotalBytes = std::uint64_t{256} << 30;
};

// The running software; an archive from a newer product or schema version is refused.
struct Compatibility {
  std::string productVersion;
  int schemaVersion = 0;
};

struct ReadOptions {
  UnsealLimits unseal;
  ArchiveLimits limits;
  std::optional<Compatibility> compatibleWith;
  ArchiveProgress progress;
};

// Reads only as far as the manifest and checks it (and the chunks it was in): what the
// archive says it holds, for an operator to confirm. Not a verification of the rest.
Manifest readManifest(ByteSource& in, std::string_view passphrase, const ReadOptions& options = {});

// Reads the whole archive, writing nothing, and throws ArchiveError at the first defect.
Manifest verifyArchive(ByteSource& in, std::string_view passphrase,
                       const ReadOptions& options = {});

// Verifies as verifyArchive does while writing the members under `freshDir`, which must not
// exist (its parent must): created 0700, files 0600 with O_EXCL and O_NOFOLLOW, no link
// followed. On any failure the directory is removed again and the error rethrown.
Manifest extractArchive(ByteSource& in, std::string_view passphrase,
                        const std::filesystem::path& freshDir, const ReadOptions& options = {});

// -1, 0 or 1 as dotted numeric version `a` is older, equal or newer than `b` ("0.10.0" > "0.9.1").
// Throws InvalidInput when either is not digits and dots.
int compareVersions(std::string_view a, std::string_view b);

}  // namespace vcrm::upgrade
