// A file moved out of the way while a test needs it gone (a key that went missing), and put
// back when the test ends, also when it fails half-way.
#pragma once

#include <filesystem>
#include <system_error>

namespace vcrm::test {

class MovedAside {
 public:
  explicit MovedAside(std::filesystem::path file)
      : file_(std::move(file)), aside_(file_.string() + ".aside") {
    std::filesystem::rename(file_, aside_);
  }
  ~MovedAside() {
    std::error_code ec;
    std::filesystem::rename(aside_, file_, ec);
  }
  MovedAside(const MovedAside&) = delete;
  MovedAside& operator=(const MovedAside&) = delete;

 private:
  std::filesystem::path file_;
  std::filesystem::path aside_;
};

}  // namespace vcrm::test
