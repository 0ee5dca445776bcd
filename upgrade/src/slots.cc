// The A/B slots and the `current` pointer (see slots.h).
#include "vcrm/upgrade/slots.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <vector>

#include "vcrm/common/error.h"
#include "vcrm/common/files.h"

namespace fs = std::filesystem;

namespace vcrm::upgrade {

namespace {

constexpr const char* kCurrent = "current";
constexpr const char* kCurrentNew = "current.new";

[[noreturn]] void fail(const std::string& what, int err) {
  throw IoError(what + ": " + errnoText(err));
}

// Opens (creating if asked) the directory `name` inside `dir` without following a link there.
files::Fd openDirAt(int dir, const fs::path& shown, const char* name, bool create) {
  if (create && ::mkdirat(dir, name, 0755) != 0 && errno != EEXIST) {
    fail("cannot create " + shown.string(), errno);
  }
  files::Fd fd(::openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) {
    if (errno == ELOOP || errno == ENOTDIR) {
      throw IoError(shown.string() +
                    " is not a real directory (a link or a file); the installed layout only uses "
                    "directories it created: move it away and try again");
    }
    fail("cannot open " + shown.string(), errno);
  }
  return fd;
}

// <root>/opt/vcrm, walked from the root prefix one real directory at a time.
files::Fd openBase(const fs::path& root, bool create) {
  files::Fd fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) fail("cannot open the root prefix " + root.string(), errno);
  fd = openDirAt(fd.get(), root / "opt", "opt", create);
  return openDirAt(fd.get(), root / "opt/vcrm", "vcrm", create);
}

std::optional<Slot> parsePointer(const std::string& text) {
  if (text == "slots/a") return Slot::A;
  if (text == "slots/b") return Slot::B;
  return std::nullopt;
}

// What a link in `dir` says, or nullopt when there is nothing there.
std::optional<std::string> readLinkAt(int dir, const char* name, const fs::path& shown) {
  struct stat st {};
  if (::fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return std::nullopt;
    fail("cannot look at " + shown.string(), errno);
  }
  if (!S_ISLNK(st.st_mode)) {
    throw IoError(shown.string() +
                  " is not the link the installed layout writes; move it away and "
                  "point it again (it must be a symlink to slots/a or slots/b)");
  }
  char buf[64];
  const ssize_t n = ::readlinkat(dir, name, buf, sizeof buf);
  if (n < 0) fail("cannot read the link " + shown.string(), errno);
  return std::string(buf, static_cast<std::size_t>(n));
}

void fsyncFd(int fd, const fs::path& shown) {
  if (::fsync(fd) != 0) fail("cannot fsync " + shown.string(), errno);
}

// Copies one regular file and fsyncs the copy.
void copyFile(const fs::path& from, const fs::path& to, mode_t mode) {
  files::Fd in(::open(from.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!in) fail("cannot read " + from.string(), errno);
  files::Fd out(::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
  if (!out) fail("cannot create " + to.string(), errno);
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(in.get(), buf, sizeof buf);
    if (n < 0) fail("cannot read " + from.string(), errno);
    if (n == 0) break;
    for (ssize_t done = 0; done < n;) {
      const ssize_t w = ::write(out.get(), buf + done, static_cast<std::size_t>(n - done));
      if (w < 0) fail("cannot write " + to.string(), errno);
      done += w;
    }
  }
  if (::fchmod(out.get(), mode) != 0) fail("cannot set the mode of " + to.string(), errno);
  fsyncFd(out.get(), to);
}

// Copies the tree `from` into the new directory `to`: directories and regular files only.
void copyTree(const fs::path& from, const fs::path& to) {
  if (::mkdir(to.c_str(), 0755) != 0) fail("cannot create " + to.string(), errno);
  std::vector<fs::path> dirs{to};
  for (auto it = fs::recursive_directory_iterator(from); it != fs::recursive_directory_iterator();
       ++it) {
    const auto st = it->symlink_status();
    const fs::path target = to / fs::relative(it->path(), from);
    const auto mode = static_cast<mode_t>(st.permissions() & fs::perms::mask) & 07777 & ~06000;
    if (fs::is_directory(st)) {
      if (::mkdir(target.c_str(), mode | 0700) != 0)
        fail("cannot create " + target.string(), errno);
      dirs.push_back(target);
    } else if (fs::is_regular_file(st)) {
      copyFile(it->path(), target, mode);
    } else {
      throw IoError(it->path().string() +
                    " is neither a file nor a directory; an installation "
                    "tree holds only those (rebuild it with cmake --install)");
    }
  }
  for (const auto& d : dirs) files::fsyncDir(d);
}

}  // namespace

std::string slotName(Slot slot) {
  return slot == Slot::A ? "a" : "b";
}
Slot otherSlot(Slot slot) {
  return slot == Slot::A ? Slot::B : Slot::A;
}

SlotLayout::SlotLayout(fs::path root) : base_(std::move(root) / "opt/vcrm") {}

fs::path SlotLayout::slotDir(Slot slot) const {
  return base_ / "slots" / slotName(slot);
}

void SlotLayout::prepare() const {
  const auto root = base_.parent_path().parent_path();
  auto base = openBase(root, true);
  openDirAt(base.get(), base_ / "slots", "slots", true);
  // A crash between writing current.new and the rename leaves it; `current` is still good.
  if (readLinkAt(base.get(), kCurrentNew, base_ / kCurrentNew)) {
    if (::unlinkat(base.get(), kCurrentNew, 0) != 0)
      fail("cannot remove " + (base_ / kCurrentNew).string(), errno);
    fsyncFd(base.get(), base_);
  }
}

std::optional<Slot> SlotLayout::current() const {
  const auto root = base_.parent_path().parent_path();
  files::Fd base;
  try {
    base = openBase(root, false);
  } catch (const IoError&) {
    std::error_code ec;
    if (!fs::exists(fs::symlink_status(root / "opt", ec)) ||
        !fs::exists(fs::symlink_status(base_, ec))) {
      return std::nullopt;
    }
    throw;
  }
  const auto text = readLinkAt(base.get(), kCurrent, currentLink());
  if (!text) return std::nullopt;
  const auto slot = parsePointer(*text);
  if (!slot) {
    throw IoError(currentLink().string() + " points at \"" + *text +
                  "\", not at slots/a or slots/b; the installed layout does not follow it: point "
                  "it again (packaging/dev run, or an upgrade)");
  }
  // The slot itself must be a real directory, not a link planted in slots/.
  auto slots = openDirAt(base.get(), base_ / "slots", "slots", false);
  openDirAt(slots.get(), slotDir(*slot), slotName(*slot).c_str(), false);
  return slot;
}

Slot SlotLayout::inactive() const {
  const auto c = current();
  return c ? otherSlot(*c) : Slot::A;
}

std::optional<fs::path> SlotLayout::currentBinDir() const {
  const auto c = current();
  if (!c) return std::nullopt;
  return slotDir(*c) / "bin";
}

void SlotLayout::install(const fs::path& from, Slot slot, bool allowCurrent) {
  if (!fs::is_regular_file(from / "bin/vcrmd")) {
    throw InvalidInput(from.string() +
                       " is not an installation tree (it has no bin/vcrmd); make one "
                       "with cmake --install BUILD --prefix DIR");
  }
  prepare();
  if (!allowCurrent && current() == slot) {
    throw Conflict("slot " + slotName(slot) +
                       " is the running installation; an upgrade writes the "
                       "other slot (" +
                       slotName(otherSlot(slot)) + ")",
                   "slot_in_use");
  }
  const fs::path dir = slotDir(slot);
  const fs::path fresh = dir.string() + ".new";
  const fs::path old = dir.string() + ".old";
  // fs::remove_all never follows links; both names are ours (a crash may have left them).
  fs::remove_all(fresh);
  fs::remove_all(old);
  copyTree(from, fresh);
  std::error_code ec;
  if (fs::exists(fs::symlink_status(dir, ec))) {
    if (!fs::is_directory(fs::symlink_status(dir))) {
      throw IoError(dir.string() + " is not a real directory; move it away and install again");
    }
    fs::rename(dir, old);
  }
  fs::rename(fresh, dir);
  files::fsyncDir(dir.parent_path());
  fs::remove_all(old);
}

void SlotLayout::switchTo(Slot slot) {
  prepare();
  if (!fs::is_regular_file(fs::symlink_status(slotDir(slot) / "bin/vcrmd"))) {
    throw Conflict("slot " + slotName(slot) +
                       " holds no installation (no bin/vcrmd); install "
                       "into it before pointing current at it",
                   "slot_empty");
  }
  auto base = openBase(base_.parent_path().parent_path(), false);
  const std::string text = "slots/" + slotName(slot);
  if (::symlinkat(text.c_str(), base.get(), kCurrentNew) != 0) {
    fail("cannot create " + (base_ / kCurrentNew).string(), errno);
  }
  // rename(2) replaces a link without following it; a directory planted at `current` makes it
  // fail (EISDIR) rather than be replaced.
  if (::renameat(base.get(), kCurrentNew, base.get(), kCurrent) != 0) {
    const int err = errno;
    ::unlinkat(base.get(), kCurrentNew, 0);
    fail("cannot point " + currentLink().string() + " at " + text, err);
  }
  fsyncFd(base.get(), base_);
}

}  // namespace vcrm::upgrade
