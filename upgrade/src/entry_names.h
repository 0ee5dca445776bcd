// Rules for the names of members of the archives upgrade/ reads (backup archives, bundle
// payloads), and how a hostile name is quoted in a message. Internal to vcrm_upgrade.
#pragma once

#include <archive_entry.h>

#include <algorithm>
#include <string>
#include <string_view>

namespace vcrm::upgrade::detail {

inline constexpr std::size_t kMaxEntryPathLength = 200;

// The name in quotes, cut short and with non-printable bytes replaced, for a message.
inline std::string printable(std::string_view name) {
  std::string out = "\"";
  for (char c : name.substr(0, kMaxEntryPathLength)) {
    out += (c >= 0x20 && c < 0x7f) ? c : '?';  // a hostile name must not garble the message
  }
  return out + (name.size() > kMaxEntryPathLength ? "...\"" : "\"");
}

// Why `path` is not an acceptable member name ("has an absolute path"), or empty when it is.
inline std::string pathProblem(std::string_view path) {
  if (path.empty()) return "has an empty name";
  if (path.size() > kMaxEntryPathLength) return "has a name longer than 200 characters";
  if (path.front() == '/') return "has an absolute path";
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t slash = std::min(path.find('/', start), path.size());
    const std::string_view part = path.substr(start, slash - start);
    if (part == "..") return "climbs out of the archive with \"..\"";
    if (part.empty() || part == ".") return "has an empty or \".\" path component";
    for (char c : part) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-';
      if (!ok) return "has a character outside A-Z, a-z, 0-9, '.', '_', '-' and '/' in its name";
    }
    start = slash + 1;
  }
  return {};
}

inline bool isSha256Hex(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// What a tar entry is when it is neither a regular file nor, with `allowDirectories`, a
// directory ("a hard link", "a symbolic link", "a device", "a directory", "a special file");
// nullptr when it is one the reader may extract.
inline const char* unsafeEntryKind(archive_entry* entry, bool allowDirectories) {
  const auto type = archive_entry_filetype(entry);
  if (archive_entry_hardlink(entry) != nullptr) return "a hard link";
  if (type == AE_IFLNK || archive_entry_symlink(entry) != nullptr) return "a symbolic link";
  if (type == AE_IFCHR || type == AE_IFBLK) return "a device";
  if (type == AE_IFDIR) return allowDirectories ? nullptr : "a directory";
  if (type != AE_IFREG) return "a special file";
  return nullptr;
}

}  // namespace vcrm::upgrade::detail
