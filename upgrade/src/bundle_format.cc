// The bundle's byte layout: reason codes, the header, the manifest's canonical JSON and its
// checks, the signature block. What the fuzz targets reach; no I/O here.
#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "bundle_internal.h"
#include "entry_names.h"
#include "vcrm/common/json.h"
#include "vcrm/upgrade/backup_archive.h"
#include "vcrm/upgrade/bundle.h"

namespace vcrm::upgrade {

using detail::isSha256Hex;
using detail::pathProblem;
using detail::printable;

namespace {

constexpr std::size_t kMaxNotesBytes = 64u << 10;
constexpr std::size_t kMaxKeyIdLength = 32;

[[noreturn]] void refuse(BundleReason reason, const std::string& message) {
  throw BundleRefused(reason, message);
}

void putLe(std::string& out, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out += static_cast<char>((value >> (8 * i)) & 0xff);
}

std::uint64_t getLe(std::string_view in, std::size_t at, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) {
    v = (v << 8) | static_cast<unsigned char>(in[at + static_cast<std::size_t>(i)]);
  }
  return v;
}

std::int64_t requireInt(const json::ObjectPtr& o, const std::string& key) {
  const auto v = json::optInt(o, key);
  if (!v) throw InvalidInput("field \"" + key + "\" is missing or not a whole number");
  return *v;
}

std::string requireVersion(const json::ObjectPtr& o, const std::string& key) {
  const std::string v = json::requireString(o, key, 64);
  compareVersions(v, "0");  // throws InvalidInput when not dotted numbers
  return v;
}

std::string parentOf(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

}  // namespace

std::string_view bundleReasonCode(BundleReason reason) {
  switch (reason) {
    case BundleReason::NotABundle:
      return "bundle_not_a_bundle";
    case BundleReason::UnsupportedFormat:
      return "bundle_unsupported_format";
    case BundleReason::BadHeader:
      return "bundle_bad_header";
    case BundleReason::Truncated:
      return "bundle_truncated";
    case BundleReason::TrailingData:
      return "bundle_trailing_data";
    case BundleReason::SignatureMalformed:
      return "bundle_signature_malformed";
    case BundleReason::KeyUnknown:
      return "bundle_key_unknown";
    case BundleReason::KeyRevoked:
      return "bundle_key_revoked";
    case BundleReason::SignatureInvalid:
      return "bundle_signature_invalid";
    case BundleReason::ManifestInvalid:
      return "bundle_manifest_invalid";
    case BundleReason::OtherProduct:
      return "bundle_other_product";
    case BundleReason::ChunkMismatch:
      return "bundle_chunk_mismatch";
    case BundleReason::NotATar:
      return "bundle_not_a_tar";
    case BundleReason::UnsafeEntry:
      return "bundle_unsafe_entry";
    case BundleReason::DuplicateEntry:
      return "bundle_duplicate_entry";
    case BundleReason::UnlistedEntry:
      return "bundle_unlisted_entry";
    case BundleReason::MissingEntry:
      return "bundle_missing_entry";
    case BundleReason::EntryMismatch:
      return "bundle_entry_mismatch";
    case BundleReason::HashMismatch:
      return "bundle_hash_mismatch";
    case BundleReason::LimitExceeded:
      return "bundle_limit_exceeded";
    case BundleReason::TargetExists:
      return "bundle_target_exists";
    case BundleReason::Incompatible:
      return "bundle_incompatible";
    case BundleReason::Downgrade:
      return "bundle_downgrade";
    case BundleReason::BelowVersionFloor:
      return "bundle_below_version_floor";
    case BundleReason::NotEntitled:
      return "bundle_not_entitled";
  }
  return "bundle_refused";
}

bool validIsoDate(std::string_view s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
  for (std::size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (s[i] < '0' || s[i] > '9') return false;
  }
  const int year = std::stoi(std::string(s.substr(0, 4)));
  const int month = std::stoi(std::string(s.substr(5, 2)));
  const int day = std::stoi(std::string(s.substr(8, 2)));
  if (year < 1970 || month < 1 || month > 12 || day < 1) return false;
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return day <= kDays[month - 1] + (month == 2 && leap ? 1 : 0);
}

std::uint64_t BundleManifest::totalFileBytes() const {
  std::uint64_t total = 0;
  for (const BundleEntry& e : entries) total += e.size;
  return total;
}

// ------------------------------------------------------------------------------------- header

std::string encodeBundleHeader(const BundleHeader& h) {
  std::string out(kBundleMagic);
  putLe(out, h.formatVersion, 4);
  putLe(out, kBundleHeaderSize, 4);
  for (std::uint64_t v : {h.manifestOffset, h.manifestLength, h.signatureOffset, h.signatureLength,
                          h.payloadOffset, h.payloadLength}) {
    putLe(out, v, 8);
  }
  return out;
}

BundleHeader parseBundleHeader(std::string_view bytes, std::uint64_t fileSize,
                               const BundleLimits& limits) {
  const std::size_t magicSeen = std::min(bytes.size(), kBundleMagic.size());
  if (bytes.substr(0, magicSeen) != kBundleMagic.substr(0, magicSeen) || bytes.empty()) {
    refuse(BundleReason::NotABundle,
           "this file is not a vcrm upgrade bundle (it does not start with \"VCRMBNDL\"); "
           "upload the .bin file of a vcrm release");
  }
  if (bytes.size() < kBundleHeaderSize || fileSize < kBundleHeaderSize) {
    refuse(BundleReason::Truncated,
           "the bundle is truncated inside its " + std::to_string(kBundleHeaderSize) +
               "-byte header (" + std::to_string(std::min<std::uint64_t>(bytes.size(), fileSize)) +
               " bytes); upload the whole file again");
  }
  BundleHeader h;
  h.formatVersion = static_cast<std::uint32_t>(getLe(bytes, 8, 4));
  const std::uint64_t headerSize = getLe(bytes, 12, 4);
  h.manifestOffset = getLe(bytes, 16, 8);
  h.manifestLength = getLe(bytes, 24, 8);
  h.signatureOffset = getLe(bytes, 32, 8);
  h.signatureLength = getLe(bytes, 40, 8);
  h.payloadOffset = getLe(bytes, 48, 8);
  h.payloadLength = getLe(bytes, 56, 8);
  if (h.formatVersion > kBundleFormatVersion) {
    refuse(BundleReason::UnsupportedFormat,
           "the bundle is format version " + std::to_string(h.formatVersion) +
               ", newer than this vcrm reads (" + std::to_string(kBundleFormatVersion) +
               "); upgrade in steps through the release notes' intermediate version");
  }
  auto bad = [](const std::string& what) {
    refuse(BundleReason::BadHeader, "the bundle's header is invalid (" + what +
                                        "); the file was not made by vcrm-bundle "
                                        "or was damaged: download it again");
  };
  if (h.formatVersion < 1) bad("format version 0");
  if (headerSize != kBundleHeaderSize) bad("header size " + std::to_string(headerSize));
  // Each length is capped before any sum, so no sum below can overflow 64 bits.
  if (h.manifestLength < 2) bad("an empty manifest");
  if (h.manifestLength > limits.maxManifestBytes) {
    refuse(BundleReason::LimitExceeded,
           "the bundle's manifest is " + std::to_string(h.manifestLength) +
               " bytes, more than the " + std::to_string(limits.maxManifestBytes) +
               " allowed; it was not made by vcrm-bundle");
  }
  if (h.signatureLength < 2 + 1 + 64 || h.signatureLength > 2 + kMaxKeyIdLength + 64) {
    bad("a signature block of " + std::to_string(h.signatureLength) + " bytes");
  }
  if (h.payloadLength > limits.maxPayloadBytes) {
    refuse(BundleReason::LimitExceeded,
           "the bundle's payload is declared as " + std::to_string(h.payloadLength) +
               " bytes, more than the " + std::to_string(limits.maxPayloadBytes) + " allowed");
  }
  if (h.manifestOffset != kBundleHeaderSize ||
      h.signatureOffset != h.manifestOffset + h.manifestLength ||
      h.payloadOffset != h.signatureOffset + h.signatureLength) {
    bad("the manifest, signature and payload do not follow each other without gaps");
  }
  const std::uint64_t end = h.payloadOffset + h.payloadLength;
  if (end > fileSize) {
    refuse(BundleReason::Truncated, "the bundle is truncated: its header declares " +
                                        std::to_string(end) + " bytes but the file has " +
                                        std::to_string(fileSize) + "; upload the whole file again");
  }
  if (end < fileSize) {
    refuse(BundleReason::TrailingData,
           "the bundle has " + std::to_string(fileSize - end) +
               " bytes after the end its header declares; it was altered after it was made");
  }
  return h;
}

// ---------------------------------------------------------------------------------- signature

std::string signatureBlock(std::string_view keyId, std::string_view signature) {
  std::string out;
  putLe(out, keyId.size(), 2);
  out += keyId;
  out += signature;
  return out;
}

SignatureBlock parseSignatureBlock(std::string_view bytes) {
  auto bad = [](const std::string& what) {
    refuse(BundleReason::SignatureMalformed,
           "the bundle's signature block is malformed (" + what +
               "); the file was not made by vcrm-bundle or was damaged: download it again");
  };
  if (bytes.size() < 2) bad("too short");
  const std::size_t idLength = getLe(bytes, 0, 2);
  if (idLength < 1 || idLength > kMaxKeyIdLength)
    bad("a key id of " + std::to_string(idLength) + " bytes");
  if (bytes.size() != 2 + idLength + 64) bad("its length does not match its key id");
  SignatureBlock out{std::string(bytes.substr(2, idLength)),
                     std::string(bytes.substr(2 + idLength))};
  if (!validBundleKeyId(out.keyId))
    bad("the key id " + printable(out.keyId) + " is not a-z, 0-9, -");
  return out;
}

std::string signedMessage(std::string_view headerBytes, std::string_view keyId,
                          std::string_view manifestText) {
  std::string m(kBundleSignatureDomain);
  m += '\0';
  m += headerBytes;
  putLe(m, keyId.size(), 2);
  m += keyId;
  m += manifestText;
  return m;
}

std::string bundleHead(const BundleSigningKey& key, std::string_view manifestText,
                       std::uint64_t payloadLength) {
  BundleHeader h;
  h.manifestOffset = kBundleHeaderSize;
  h.manifestLength = manifestText.size();
  h.signatureOffset = h.manifestOffset + h.manifestLength;
  h.signatureLength = 2 + key.keyId.size() + 64;
  h.payloadOffset = h.signatureOffset + h.signatureLength;
  h.payloadLength = payloadLength;
  const std::string header = encodeBundleHeader(h);
  const std::string signature = key.key.sign(signedMessage(header, key.keyId, manifestText));
  return header + std::string(manifestText) + signatureBlock(key.keyId, signature);
}

// ----------------------------------------------------------------------------------- manifest

std::string bundleManifestJson(const BundleManifest& m) {
  json::ObjectPtr o = new json::Object;  // keys sorted: the canonical order
  o->set("format", m.formatVersion);
  o->set("product", m.product);
  o->set("version", m.release.version);
  o->set("release_date", m.release.releaseDate);
  o->set("compatible", m.release.compatible);
  o->set("min_version", m.release.minVersion);
  o->set("notes", m.release.notes);
  o->set("chunk_size", m.chunkSize);
  o->set("payload_size", m.payloadSize);
  json::ArrayPtr chunks = new json::Array;
  for (const std::string& c : m.chunks) chunks->add(c);
  o->set("chunks", chunks);
  json::ArrayPtr entries = new json::Array;
  for (const BundleEntry& e : m.entries) {
    json::ObjectPtr j = new json::Object;
    j->set("path", e.path);
    j->set("mode", e.mode);
    if (e.type == BundleEntry::Type::Directory) {
      j->set("type", "dir");
    } else {
      j->set("type", "file");
      j->set("size", e.size);
      j->set("sha256", e.sha256);
    }
    entries->add(j);
  }
  o->set("entries", entries);
  return json::stringify(o);
}

BundleManifest parseBundleManifest(std::string_view text, const BundleLimits& limits) {
  BundleManifest m;
  try {
    const json::ObjectPtr o = json::parseObject(text, 6);
    // The format first: a newer manifest may have fields this version does not know.
    const std::int64_t format = requireInt(o, "format");
    if (format > kBundleFormatVersion) {
      refuse(BundleReason::UnsupportedFormat,
             "the bundle's manifest is format " + std::to_string(format) +
                 ", newer than this vcrm reads; upgrade in steps through an intermediate release");
    }
    if (format < 1) throw InvalidInput("field \"format\" must be at least 1");
    m.formatVersion = static_cast<int>(format);
    m.product = json::requireString(o, "product", 64);
    if (m.product != kBundleProduct) {
      refuse(BundleReason::OtherProduct, "this bundle is for " + printable(m.product) +
                                             ", not vcrm; upload a vcrm upgrade bundle");
    }
    json::onlyKeys(o, {"format", "product", "version", "release_date", "compatible", "min_version",
                       "notes", "chunk_size", "payload_size", "chunks", "entries"});
    m.release.version = requireVersion(o, "version");
    m.release.minVersion = requireVersion(o, "min_version");
    m.release.releaseDate = json::requireString(o, "release_date", 10);
    if (!validIsoDate(m.release.releaseDate)) {
      throw InvalidInput("field \"release_date\" is not a YYYY-MM-DD date");
    }
    m.release.compatible = json::requireString(o, "compatible", 128);
    if (m.release.compatible.empty()) throw InvalidInput("field \"compatible\" is empty");
    m.release.notes = json::requireString(o, "notes", kMaxNotesBytes);

    const std::int64_t chunkSize = requireInt(o, "chunk_size");
    if (chunkSize < static_cast<std::int64_t>(kMinBundleChunkSize) ||
        chunkSize > static_cast<std::int64_t>(kMaxBundleChunkSize) || chunkSize % 4096 != 0) {
      throw InvalidInput("field \"chunk_size\" must be a multiple of 4096 from 4 KiB to 64 MiB");
    }
    m.chunkSize = static_cast<std::uint64_t>(chunkSize);
    const std::int64_t payloadSize = requireInt(o, "payload_size");
    if (payloadSize < 0) throw InvalidInput("field \"payload_size\" is negative");
    m.payloadSize = static_cast<std::uint64_t>(payloadSize);
    if (m.payloadSize > limits.maxPayloadBytes) {
      refuse(BundleReason::LimitExceeded,
             "the bundle's payload is declared as " + std::to_string(m.payloadSize) +
                 " bytes, more than the " + std::to_string(limits.maxPayloadBytes) + " allowed");
    }
    const json::ArrayPtr chunks = o->getArray("chunks");
    if (!chunks) throw InvalidInput("field \"chunks\" must be an array");
    const std::uint64_t wantChunks = (m.payloadSize + m.chunkSize - 1) / m.chunkSize;
    if (chunks->size() != wantChunks) {
      throw InvalidInput("it lists " + std::to_string(chunks->size()) + " chunk hashes for " +
                         std::to_string(wantChunks) + " chunks");
    }
    for (std::size_t i = 0; i < chunks->size(); ++i) {
      const Poco::Dynamic::Var v = chunks->get(static_cast<unsigned>(i));
      if (!v.isString() || !isSha256Hex(v.extract<std::string>())) {
        throw InvalidInput("chunks[" + std::to_string(i) + "] is not 64 lowercase hex digits");
      }
      m.chunks.push_back(v.extract<std::string>());
    }

    const json::ArrayPtr entries = o->getArray("entries");
    if (!entries) throw InvalidInput("field \"entries\" must be an array");
    if (entries->size() > limits.maxEntries) {
      refuse(BundleReason::LimitExceeded,
             "the bundle's manifest lists " + std::to_string(entries->size()) +
                 " entries, more than the " + std::to_string(limits.maxEntries) + " allowed");
    }
    std::map<std::string, BundleEntry::Type> seen;
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < entries->size(); ++i) {
      const json::ObjectPtr j = entries->getObject(static_cast<unsigned>(i));
      if (!j) throw InvalidInput("entries[" + std::to_string(i) + "] must be an object");
      BundleEntry e;
      e.path = json::requireString(j, "path", 1024);
      if (const std::string problem = pathProblem(e.path); !problem.empty()) {
        refuse(BundleReason::UnsafeEntry, "the bundle's manifest lists an entry " +
                                              printable(e.path) + " that " + problem +
                                              "; it cannot be installed safely");
      }
      const std::string type = json::requireString(j, "type", 8);
      const std::int64_t mode = requireInt(j, "mode");
      if (mode < 0 || mode > 07777)
        throw InvalidInput("the mode of " + printable(e.path) + " is out of range");
      if ((mode & 07000) != 0) {
        refuse(BundleReason::UnsafeEntry, "the bundle's manifest gives " + printable(e.path) +
                                              " setuid, setgid or sticky bits; refused");
      }
      e.mode = static_cast<std::uint32_t>(mode);
      if (type == "dir") {
        e.type = BundleEntry::Type::Directory;
        json::onlyKeys(j, {"path", "type", "mode"});
      } else if (type == "file") {
        json::onlyKeys(j, {"path", "type", "mode", "size", "sha256"});
        const std::int64_t size = requireInt(j, "size");
        if (size < 0) throw InvalidInput("the size of " + printable(e.path) + " is negative");
        e.size = static_cast<std::uint64_t>(size);
        e.sha256 = json::requireString(j, "sha256", 64);
        if (!isSha256Hex(e.sha256)) {
          throw InvalidInput("the sha256 of " + printable(e.path) +
                             " is not 64 lowercase hex digits");
        }
      } else {
        refuse(BundleReason::UnsafeEntry, "the bundle's manifest lists " + printable(e.path) +
                                              " as a " + printable(type) +
                                              "; a bundle holds only files and directories");
      }
      if (seen.count(e.path) != 0) {
        refuse(BundleReason::DuplicateEntry,
               "the bundle's manifest lists " + printable(e.path) +
                   " twice; it was not made by vcrm-bundle: ask the vendor for a new one");
      }
      if (const std::string parent = parentOf(e.path); !parent.empty()) {
        const auto it = seen.find(parent);
        if (it == seen.end() || it->second != BundleEntry::Type::Directory) {
          throw InvalidInput("it lists " + printable(e.path) + " before its directory " +
                             printable(parent));
        }
      }
      seen.emplace(e.path, e.type);
      if (e.size > limits.maxTotalBytes || total + e.size > limits.maxTotalBytes) {
        refuse(BundleReason::LimitExceeded, "the bundle's files add up to more than the " +
                                                std::to_string(limits.maxTotalBytes) +
                                                " bytes an installation may take");
      }
      total += e.size;
      m.entries.push_back(std::move(e));
    }
    // A plain tar stores every byte of its files: files adding up to more than the payload
    // would have to expand from nothing (sparse entries, a compressed stream): a bomb.
    if (total > m.payloadSize) {
      refuse(BundleReason::LimitExceeded,
             "the bundle's manifest declares " + std::to_string(total) + " bytes of files in a " +
                 std::to_string(m.payloadSize) +
                 "-byte payload, more than a plain tar can hold: it would expand like an archive "
                 "bomb; refused");
    }
  } catch (const InvalidInput& e) {
    refuse(BundleReason::ManifestInvalid, std::string("the bundle's manifest is invalid (") +
                                              e.what() + "); it was not made by vcrm-bundle");
  }
  if (bundleManifestJson(m) != text) {
    refuse(BundleReason::ManifestInvalid,
           "the bundle's manifest is not in canonical form (sorted keys, no blanks); it was not "
           "made by vcrm-bundle");
  }
  return m;
}

}  // namespace vcrm::upgrade
