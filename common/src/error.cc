#include "vcrm/common/error.h"

#include <array>
#include <cstring>
#include <string>

namespace vcrm {

namespace {

// strerror_r has two incompatible signatures: XSI returns int and fills the buffer, GNU
// (what glibc gives C++ code, since g++ defines _GNU_SOURCE) returns a pointer that may or may
// not be the buffer. Overloading on the return type picks the right reading on either.
[[maybe_unused]] std::string strerrorResult(int rc, const char* buffer, int err) {
  if (rc != 0) return "unknown error " + std::to_string(err);
  return buffer;
}

[[maybe_unused]] std::string strerrorResult(const char* text, const char* /*buffer*/, int err) {
  if (text == nullptr) return "unknown error " + std::to_string(err);
  return text;
}

}  // namespace

std::string errnoText(int err) {
  // strerror() may return a static buffer shared between threads; strerror_r does not.
  std::array<char, 256> buffer{};
  return strerrorResult(strerror_r(err, buffer.data(), buffer.size()), buffer.data(), err);
}

}  // namespace vcrm
