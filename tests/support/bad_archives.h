// The bad-archive suite of issue 10: archives each carrying one defect (truncated at a
// header, mid-member and before the end; a flipped byte in every member and tag; chunks
// dropped or swapped; the manifest edited; a wrong passphrase; extra, missing, duplicate,
// "..", absolute, link and device members; newer versions; another product; bombs), built with
// hostile_tar.h. The archive library's tests and the daemon's restore tests both run it.
#pragma once

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "hostile_tar.h"
#include "vcrm/upgrade/archive_error.h"

namespace vcrm::upgrade::test {

struct BadArchive {
  std::string name;
  std::function<std::string()> build;  // the archive file's bytes
  ArchiveReason reason;
  std::string says;  // a phrase the operator's message must contain
  std::string passphrase = std::string(kPassphrase);
};
std::ostream& operator<<(std::ostream& os, const BadArchive& c);

// The versions every case's manifest claims, so that only the version cases are too new.
struct BadArchiveBase {
  std::string productVersion = "0.1.0";
  int schemaVersion = 7;
};
std::vector<BadArchive> badArchives(const BadArchiveBase& base = {});

// The layout of the sealed typical archive (chunks of kBadArchiveChunk plaintext bytes).
inline constexpr std::size_t kBadArchiveChunk = 4096;
std::size_t chunkOffset(std::size_t i);
std::size_t chunkCount(const std::string& archive);
std::string flipped(std::string s, std::size_t at);
// FlippedByteInEveryTag is one case that stands for a copy of the archive per chunk, its tag
// flipped: `archive` with chunk i's tag changed.
std::string withTagFlipped(const std::string& archive, std::size_t i);

}  // namespace vcrm::upgrade::test
