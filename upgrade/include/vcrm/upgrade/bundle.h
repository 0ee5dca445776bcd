// Signed upgrade bundles (`.bin`): a fixed header, a signed manifest (what the release is and
// every payload entry and chunk hash), a signature block, then the payload tar. This header
// declares the format (README, "Upgrade bundle file format"), the one refusal type, and the
// operations: create (the vendor), inspect (unverified), verify and extract (the appliance, from
// one open file descriptor, trusting nothing outside what the signature covers).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "vcrm/common/error.h"
#include "vcrm/upgrade/bundle_keyring.h"

namespace vcrm::upgrade {

inline constexpr std::string_view kBundleMagic = "VCRMBNDL";
inline constexpr std::uint32_t kBundleFormatVersion = 1;
inline constexpr std::size_t kBundleHeaderSize = 64;
inline constexpr std::string_view kBundleProduct = "vcrm";
inline constexpr std::uint64_t kDefaultBundleChunkSize = std::uint64_t{4} << 20;
inline constexpr std::uint64_t kMinBundleChunkSize = 4096;  // and a multiple of it
inline constexpr std::uint64_t kMaxBundleChunkSize = std::uint64_t{64} << 20;
// Prefix of the signed message, so a bundle signature can never pass for another format's.
inline constexpr std::string_view kBundleSignatureDomain = "vcrm-bundle-v1 signature";

enum class BundleReason {
  NotABundle,          // no bundle magic
  UnsupportedFormat,   // a header or manifest format newer than this software reads
  BadHeader,           // header fields out of range, overlapping or leaving gaps
  Truncated,           // the file ends before what its header declares
  TrailingData,        // bytes after the payload the header declares
  SignatureMalformed,  // the signature block is not a key id and an Ed25519 signature
  KeyUnknown,          // signed with a key the keyring does not hold
  KeyRevoked,          // signed with a key the keyring revokes
  SignatureInvalid,    // header or manifest differ from what was signed
  ManifestInvalid,     // not canonical JSON, fields missing or wrong
  OtherProduct,        // a bundle of another product
  ChunkMismatch,       // a payload chunk differs from its hash in the manifest
  NotATar,             // the payload is not a plain tar
  UnsafeEntry,         // absolute path, "..", link, device, fifo, special bits, bad name
  DuplicateEntry,      // the same name twice
  UnlistedEntry,       // a tar entry the manifest does not list
  MissingEntry,        // a manifest entry absent from the tar
  EntryMismatch,       // type, mode, size or order differ between tar and manifest
  HashMismatch,        // a file's SHA-256 differs from the manifest
  LimitExceeded,       // caps on sizes, counts, expansion (archive bombs)
  TargetExists,        // extraction needs a directory that does not exist yet
  Incompatible,        // made for another kind of system (compatible string)
  Downgrade,           // not newer than the running version (refused unless allowed)
  BelowVersionFloor,   // the running version is older than the bundle upgrades from
  NotEntitled,         // released after the licence's "upgrades until" date
};

// "bundle_truncated", ...: the stable code for a reason.
std::string_view bundleReasonCode(BundleReason reason);

// The one exception a bundle is refused with: `reason()` for programs and tests, `code()` the
// stable identifier, `what()` what is wrong and what to do. An Unprocessable (HTTP 422).
class BundleRefused : public Unprocessable {
 public:
  BundleRefused(BundleReason reason, const std::string& message)
      : Unprocessable(message, std::string(bundleReasonCode(reason))), reason_(reason) {}
  [[nodiscard]] BundleReason reason() const noexcept { return reason_; }

 private:
  BundleReason reason_;
};

// Caps that keep a hostile bundle from exhausting memory, disk or time.
struct BundleLimits {
  std::uint64_t maxManifestBytes = 8u << 20;
  std::uint64_t maxPayloadBytes = std::uint64_t{64} << 30;
  std::uint64_t maxTotalBytes = std::uint64_t{16} << 30;  // sum of file sizes once extracted
  std::size_t maxEntries = 20000;
  // Hashing threads for verification; 0: one per core.
  unsigned threads = 0;
};

// The fixed 64-byte header, every integer little-endian (README has the layout).
struct BundleHeader {
  std::uint32_t formatVersion = kBundleFormatVersion;
  std::uint64_t manifestOffset = 0;
  std::uint64_t manifestLength = 0;
  std::uint64_t signatureOffset = 0;
  std::uint64_t signatureLength = 0;
  std::uint64_t payloadOffset = 0;
  std::uint64_t payloadLength = 0;
};

std::string encodeBundleHeader(const BundleHeader& header);  // exactly kBundleHeaderSize bytes
// Checks the header of a file of `fileSize` bytes: magic, version, every length capped and the
// regions contiguous, inside the file and ending at its end. Throws BundleRefused.
BundleHeader parseBundleHeader(std::string_view bytes, std::uint64_t fileSize,
                               const BundleLimits& limits = {});

struct BundleEntry {
  enum class Type { File, Directory };
  std::string path;  // relative, '/'-separated, [A-Za-z0-9._-] in each part
  Type type = Type::File;
  std::uint32_t mode = 0644;  // permission bits only (no setuid, setgid, sticky)
  std::uint64_t size = 0;     // files only
  std::string sha256;         // files only, lowercase hex
};

// What the release is; the manifest carries these plus the entries and the chunk hashes.
struct BundleRelease {
  std::string version;      // dotted numbers, "0.2.0"
  std::string releaseDate;  // "YYYY-MM-DD"
  std::string compatible;   // the kind of system it is for, e.g. "vcrm-appliance"
  std::string minVersion;   // the lowest installed version it upgrades from
  std::string notes;        // release notes, shown to the operator before confirming
};

struct BundleManifest {
  int formatVersion = kBundleFormatVersion;
  std::string product{kBundleProduct};
  BundleRelease release;
  std::uint64_t chunkSize = kDefaultBundleChunkSize;
  std::uint64_t payloadSize = 0;
  std::vector<std::string> chunks;   // SHA-256 hex of each chunkSize piece of the payload
  std::vector<BundleEntry> entries;  // in payload order; a directory before what it holds
  [[nodiscard]] std::uint64_t totalFileBytes() const;
};

// The canonical JSON text of a manifest (sorted keys, no blanks): what is signed.
std::string bundleManifestJson(const BundleManifest& manifest);
// Parses and checks a manifest; refuses text that is not exactly bundleManifestJson of what it
// parses to. Throws BundleRefused (ManifestInvalid, OtherProduct, UnsafeEntry, ...).
BundleManifest parseBundleManifest(std::string_view text, const BundleLimits& limits = {});

// What a bundle says about itself (and, after verifyBundle, what the signature vouches for).
struct BundleInfo {
  BundleHeader header;
  BundleManifest manifest;
  std::string keyId;
  std::uint64_t fileSize = 0;
};

// Header, manifest and signer of the bundle open on `fd`, with no signature or hash checked:
// for a person to look at, never to act on.
BundleInfo inspectBundle(int fd, const BundleLimits& limits = {});

// Verifies the bundle open on `fd` (pread only, the descriptor's offset is untouched): header,
// signature against `keyring`, manifest, every payload chunk hash (one thread per core, constant
// memory), then the payload's tar entries against the manifest. Throws BundleRefused.
BundleInfo verifyBundle(int fd, const BundleKeyring& keyring, const BundleLimits& limits = {});

// The SHA-256 of every file in the payload of a bundle verifyBundle verified on `fd` (`verified`
// is what it returned) against its manifest, reading the payload once more on one thread. The
// signed chunk hashes already vouch for every byte; this refuses a bundle made wrongly
// (HashMismatch) before an operator is asked to confirm it rather than half-way through its
// extraction. Throws BundleRefused.
void verifyBundleFileHashes(int fd, const BundleInfo& verified);

// verifyBundle, then extracts into `freshDir`, which must not exist (its parent must): the free
// space checked first (InsufficientStorage), every chunk checked again as it is read, files
// created O_EXCL|O_NOFOLLOW with the manifest's modes.
// On any failure the directory is removed and the error rethrown; a refusal of verifyBundle
// comes before anything is created.
BundleInfo extractBundle(int fd, const BundleKeyring& keyring,
                         const std::filesystem::path& freshDir, const BundleLimits& limits = {});

// The extraction half of extractBundle, for a bundle verifyBundle already verified on the same
// descriptor (an operator confirms in between): `verified` is what it returned. Every chunk is
// checked again as it is read, so a file changed since is refused at its first changed chunk
// (ChunkMismatch) and the directory removed.
void extractVerifiedBundle(int fd, const BundleInfo& verified,
                           const std::filesystem::path& freshDir);

// The bytes before the payload (header, manifest, signature block) of a bundle whose manifest
// text is `manifestText` and payload `payloadLength` bytes, signed with `key`. The manifest text
// is signed as given, so tests can sign manifests createBundle would never write.
std::string bundleHead(const BundleSigningKey& key, std::string_view manifestText,
                       std::uint64_t payloadLength);

// A whole bundle in memory: `manifest` with its payload size and chunk hashes filled in from
// `payload` (a tar), signed with `key`.
std::string assembleBundle(const BundleSigningKey& key, BundleManifest manifest,
                           std::string_view payload);

// Makes a bundle of the tree `fromDir` (regular files and directories only; links, devices and
// setuid bits are refused) at `out`, written to a temporary file and renamed into place.
// Returns its manifest. Throws InvalidInput for a bad release field or tree, IoError.
BundleManifest createBundle(const BundleSigningKey& key, const BundleRelease& release,
                            const std::filesystem::path& fromDir, const std::filesystem::path& out,
                            std::uint64_t chunkSize = kDefaultBundleChunkSize);

// Whether `s` is a "YYYY-MM-DD" date of the Gregorian calendar.
bool validIsoDate(std::string_view s);

}  // namespace vcrm::upgrade
