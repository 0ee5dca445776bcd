// The installed layout: two self-contained installations (slots) under the root prefix and an
// atomic pointer to the one that runs.
//
//   <root>/opt/vcrm/slots/a/{bin,share}     slot A
//   <root>/opt/vcrm/slots/b/{bin,share}     slot B
//   <root>/opt/vcrm/current -> slots/a      the pointer (a relative symlink)
//
// The pointer is switched by creating `current.new` and renaming it over `current`, then
// fsyncing the directory: after a crash it names the old slot or the new one, never neither. A
// `current.new` left by a crash before the rename is removed on the next use. Nothing here follows
// a link it did not create: opt/, opt/vcrm/ and slots/ must be real directories, a slot must be a
// real directory, and `current` must be a link whose text is exactly "slots/a" or "slots/b".
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace vcrm::upgrade {

enum class Slot { A, B };

std::string slotName(Slot slot);  // "a" or "b"
Slot otherSlot(Slot slot);

class SlotLayout {
 public:
  // `root` is the appliance's root prefix (the one vcrmd gets with --root).
  explicit SlotLayout(std::filesystem::path root);

  std::filesystem::path base() const { return base_; }  // <root>/opt/vcrm
  std::filesystem::path slotDir(Slot slot) const;       // <root>/opt/vcrm/slots/<a|b>
  std::filesystem::path currentLink() const { return base_ / "current"; }

  // The slot `current` names; nullopt when there is no pointer yet (nothing installed). Throws
  // IoError when `current` is anything but a link this code writes.
  std::optional<Slot> current() const;
  // The slot an upgrade writes: the one `current` does not name (A when nothing is installed).
  Slot inactive() const;
  // The directory the current slot's programs are in, resolved now (so a switched pointer is
  // seen by the next caller); nullopt when nothing is installed.
  std::optional<std::filesystem::path> currentBinDir() const;

  // Copies the installation tree `from` (bin/, share/, ... with regular files and directories
  // only) into `slot`, replacing what it held, and fsyncs it. Refuses the current slot (an
  // upgrade never writes the running installation) unless `allowCurrent` (the demo reinstalling
  // the same version). Does not switch the pointer.
  void install(const std::filesystem::path& from, Slot slot, bool allowCurrent = false);
  // Points `current` at `slot` atomically; the slot must hold bin/vcrmd.
  void switchTo(Slot slot);

 private:
  std::filesystem::path base_;
  // Creates opt/vcrm/slots as real directories (refusing links) and removes a stale current.new.
  void prepare() const;
};

}  // namespace vcrm::upgrade
