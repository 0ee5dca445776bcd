#include "vcrm/upgrade/byte_stream.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "vcrm/common/error.h"

namespace vcrm::upgrade {

void FdSink::write(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw IoError("cannot write " + what_ + ": " + errnoText(errno));
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

std::size_t FdSource::read(std::span<char> buffer) {
  for (;;) {
    const ssize_t n = ::read(fd_, buffer.data(), buffer.size());
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno != EINTR) throw IoError("cannot read " + what_ + ": " + errnoText(errno));
  }
}

std::size_t StringSource::read(std::span<char> buffer) {
  const std::size_t n = std::min(buffer.size(), data_.size());
  std::copy_n(data_.data(), n, buffer.data());
  data_.remove_prefix(n);
  return n;
}

std::size_t readFull(ByteSource& source, std::span<char> buffer) {
  std::size_t got = 0;
  while (got < buffer.size()) {
    const std::size_t n = source.read(buffer.subspan(got));
    if (n == 0) break;
    got += n;
  }
  return got;
}

}  // namespace vcrm::upgrade
