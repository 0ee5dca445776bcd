// The one exception a backup archive is refused with. `reason()` says which check failed (tests
// and the daemon branch on it), `code()` is its stable identifier ("archive_truncated") and
// `what()` a sentence an operator can act on. It is an Unprocessable, so the API answers 422.
#pragma once

#include <string>
#include <string_view>

#include "vcrm/common/error.h"

namespace vcrm::upgrade {

enum class ArchiveReason {
  NotAnArchive,       // no vcrm archive header
  UnsupportedFormat,  // a container or manifest format newer than this software reads
  BadHeader,          // header fields out of range
  WrongPassphrase,    // the key check in the header does not match
  Truncated,          // the stream ends before its authenticated end
  ChunkAltered,       // a chunk fails authentication
  ChunksOutOfOrder,   // a chunk authenticates at another position: dropped, swapped, repeated
  TrailingData,       // bytes after the authenticated end
  NotATar,            // the decrypted stream is not a tar
  ManifestInvalid,    // missing, not first, too large, not JSON, or fields wrong
  OtherProduct,       // made by another product
  TooNew,             // a newer product or schema version than this software
  UnsafeMember,       // absolute path, "..", link, device, special bits, bad name
  DuplicateMember,    // the same name twice
  UnlistedMember,     // a member the manifest does not list
  MissingMember,      // a member the manifest lists is absent
  SizeMismatch,       // a member's size differs from the manifest
  HashMismatch,       // a member's SHA-256 differs from the manifest
  LimitExceeded,      // caps on sizes, counts, manifest size; sparse members (archive bombs)
};

// "archive_truncated", ...: the stable code for a reason.
std::string_view archiveReasonCode(ArchiveReason reason);

class ArchiveError : public Unprocessable {
 public:
  ArchiveError(ArchiveReason reason, const std::string& message)
      : Unprocessable(message, std::string(archiveReasonCode(reason))), reason_(reason) {}
  [[nodiscard]] ArchiveReason reason() const noexcept { return reason_; }

 private:
  ArchiveReason reason_;
};

}  // namespace vcrm::upgrade
