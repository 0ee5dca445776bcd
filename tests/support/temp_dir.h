// A directory under /tmp removed with everything in it when the object goes away. It is made
// world-searchable (0755) so the embedded PostgreSQL, run as an unprivileged user, can reach
// a state directory inside it.
#pragma once

#include <filesystem>
#include <string>

namespace vcrm::test {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "vcrm-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace vcrm::test
