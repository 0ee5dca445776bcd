// Owning handles for libarchive's readers, writers and entries. Internal to vcrm_upgrade.
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include <memory>

namespace vcrm::upgrade::detail {

struct ReadFree {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct WriteFree {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryFree {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};
using ReadArchivePtr = std::unique_ptr<archive, ReadFree>;
using WriteArchivePtr = std::unique_ptr<archive, WriteFree>;
using EntryPtr = std::unique_ptr<archive_entry, EntryFree>;

}  // namespace vcrm::upgrade::detail
