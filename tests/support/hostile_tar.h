// Builds tars with libarchive directly — including ones vcrm's writer never makes (links,
// devices, "..", sparse files, edited manifests) — and seals them with the real container
// writer, so a bad archive in the tests carries exactly the defect it is named after.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <sys/sysmacros.h>

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "vcrm/common/crypto.h"
#include "vcrm/common/json.h"
#include "vcrm/upgrade/backup_archive.h"
#include "vcrm/upgrade/sealed_stream.h"

namespace vcrm::upgrade::test {

inline constexpr std::string_view kPassphrase = "tr0ub4dor & 3";

// Cheap key derivation: the bad-archive suite seals many archives.
inline SealOptions fastSeal(std::size_t chunkSize = 4096) {
  return SealOptions{.scrypt = {.n = 1u << 6, .r = 8, .p = 1}, .chunkSize = chunkSize};
}

struct TarEntry {
  std::string name{};
  std::string data{};
  unsigned type = AE_IFREG;
  int perm = 0600;
  std::string symlink{};           // for AE_IFLNK
  std::string hardlink{};          // makes a hard-link entry
  bool sparse = false;             // a GNU sparse map declaring far more than is stored
  std::int64_t declaredSize = -1;  // the header's size when not data.size()
};

inline la_ssize_t appendToString(archive*, void* out, const void* data, size_t size) {
  static_cast<std::string*>(out)->append(static_cast<const char*>(data), size);
  return static_cast<la_ssize_t>(size);
}

// A plain (unencrypted) tar of `entries`, pax format as vcrm writes it.
inline std::string tarOf(const std::vector<TarEntry>& entries, bool gzip = false) {
  std::string out;
  std::unique_ptr<archive, int (*)(archive*)> a(archive_write_new(), archive_write_free);
  archive_write_set_format_pax(a.get());
  if (gzip) archive_write_add_filter_gzip(a.get());
  if (archive_write_open(a.get(), &out, nullptr, appendToString, nullptr) != ARCHIVE_OK) {
    throw std::runtime_error("cannot start a test tar");
  }
  for (const TarEntry& e : entries) {
    std::unique_ptr<archive_entry, void (*)(archive_entry*)> entry(archive_entry_new(),
                                                                   archive_entry_free);
    archive_entry_set_pathname(entry.get(), e.name.c_str());
    archive_entry_set_filetype(entry.get(), e.type);
    archive_entry_set_perm(entry.get(), e.perm);
    archive_entry_set_mtime(entry.get(), 1700000000, 0);
    if (!e.symlink.empty()) archive_entry_set_symlink(entry.get(), e.symlink.c_str());
    if (!e.hardlink.empty()) archive_entry_set_hardlink(entry.get(), e.hardlink.c_str());
    if (e.type == AE_IFCHR || e.type == AE_IFBLK)
      archive_entry_set_rdev(entry.get(), makedev(1, 3));
    const bool hasData = e.type == AE_IFREG && e.hardlink.empty();
    archive_entry_set_size(entry.get(), e.declaredSize >= 0
                                            ? e.declaredSize
                                            : static_cast<la_int64_t>(hasData ? e.data.size() : 0));
    if (e.sparse) {
      archive_entry_set_size(entry.get(), la_int64_t{1} << 40);  // 1 TiB once expanded
      archive_entry_sparse_add_entry(entry.get(), 0, static_cast<la_int64_t>(e.data.size()));
      archive_entry_sparse_add_entry(entry.get(), (la_int64_t{1} << 40) - 1, 1);
    }
    if (archive_write_header(a.get(), entry.get()) < ARCHIVE_OK) {
      throw std::runtime_error(std::string("cannot write test tar entry: ") +
                               archive_error_string(a.get()));
    }
    if (hasData && !e.data.empty()) {
      archive_write_data(a.get(), e.data.data(), e.data.size());
    }
  }
  archive_write_close(a.get());
  return out;
}

// The manifest vcrm would write for `members`; `edit` changes it before it is serialised.
inline std::string manifestFor(const std::vector<TarEntry>& members,
                               const std::function<void(json::Object&)>& edit = {}) {
  json::ObjectPtr o = new json::Object;
  o->set("format", 1);
  o->set("product", "vcrm");
  o->set("product_version", "0.1.0");
  o->set("schema_version", 7);
  o->set("source_serial", "VCRM-0001-2345-6");
  o->set("source_role", "standalone");
  o->set("created_at", "2025-01-02T03:04:05Z");
  o->set("postgresql_version", "15.8");
  o->set("pg_dump_version", "15.8");
  json::ArrayPtr list = new json::Array;
  for (const TarEntry& m : members) {
    json::ObjectPtr e = new json::Object;
    e->set("path", m.name);
    e->set("size", static_cast<std::uint64_t>(m.data.size()));
    e->set("sha256", crypto::sha256Hex(m.data));
    list->add(e);
  }
  o->set("members", list);
  if (edit) edit(*o);
  return json::stringify(o);
}

// Seals plaintext with the real container writer.
inline std::string sealBytes(std::string_view plain, const SealOptions& options = fastSeal(),
                             std::string_view passphrase = kPassphrase) {
  StringSink out;
  SealedWriter writer(out, passphrase, options);
  writer.write(plain);
  writer.finish();
  return out.take();
}

// The members of a typical appliance backup.
inline std::vector<TarEntry> typicalMembers() {
  std::string dump(300000, '\0');
  std::uint32_t x = 12345;
  for (char& c : dump) {
    x = x * 1103515245 + 12345;
    c = static_cast<char>(x >> 24);
  }
  return {
      {.name = "database.dump", .data = dump},
      {.name = "config/vcrmd.conf", .data = "[http]\nport = 8443\n"},
      {.name = "licence/licence.vcrmlic", .data = "-----BEGIN VCRM LICENCE-----\nabc\n"},
      {.name = "tls/server.key", .data = "-----BEGIN PRIVATE KEY-----\nxyz\n"},
      {.name = "tls/server.crt", .data = "-----BEGIN CERTIFICATE-----\nxyz\n"},
      {.name = "redundancy/heartbeat.key", .data = std::string(32, 'k')},
  };
}

// A tar laid out as vcrm writes one: the manifest for `listed`, then `present`.
inline std::string archiveTar(const std::vector<TarEntry>& listed,
                              const std::vector<TarEntry>& present,
                              const std::function<void(json::Object&)>& edit = {}) {
  std::vector<TarEntry> entries{
      {.name = std::string(kManifestName), .data = manifestFor(listed, edit)}};
  entries.insert(entries.end(), present.begin(), present.end());
  return tarOf(entries);
}

inline ReadOptions fastRead() {
  ReadOptions options;
  options.compatibleWith = Compatibility{.productVersion = "0.1.0", .schemaVersion = 7};
  return options;
}

}  // namespace vcrm::upgrade::test
