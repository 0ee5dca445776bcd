#include "vcrm/upgrade/archive_error.h"

namespace vcrm::upgrade {

std::string_view archiveReasonCode(ArchiveReason reason) {
  switch (reason) {
    case ArchiveReason::NotAnArchive:
      return "archive_not_vcrm";
    case ArchiveReason::UnsupportedFormat:
      return "archive_format_unsupported";
    case ArchiveReason::BadHeader:
      return "archive_bad_header";
    case ArchiveReason::WrongPassphrase:
      return "archive_wrong_passphrase";
    case ArchiveReason::Truncated:
      return "archive_truncated";
    case ArchiveReason::ChunkAltered:
      return "archive_altered";
    case ArchiveReason::ChunksOutOfOrder:
      return "archive_chunks_out_of_order";
    case ArchiveReason::TrailingData:
      return "archive_trailing_data";
    case ArchiveReason::NotATar:
      return "archive_not_tar";
    case ArchiveReason::ManifestInvalid:
      return "archive_manifest_invalid";
    case ArchiveReason::OtherProduct:
      return "archive_other_product";
    case ArchiveReason::TooNew:
      return "archive_too_new";
    case ArchiveReason::UnsafeMember:
      return "archive_unsafe_member";
    case ArchiveReason::DuplicateMember:
      return "archive_duplicate_member";
    case ArchiveReason::UnlistedMember:
      return "archive_unlisted_member";
    case ArchiveReason::MissingMember:
      return "archive_missing_member";
    case ArchiveReason::SizeMismatch:
      return "archive_size_mismatch";
    case ArchiveReason::HashMismatch:
      return "archive_hash_mismatch";
    case ArchiveReason::LimitExceeded:
      return "archive_limit_exceeded";
  }
  return "archive_invalid";
}

}  // namespace vcrm::upgrade
