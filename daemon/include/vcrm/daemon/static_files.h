// Serves the web UI's files from one directory, refusing anything outside it.
#pragma once

#include <filesystem>

#include "vcrm/daemon/http.h"

namespace vcrm {

class StaticFiles {
 public:
  explicit StaticFiles(std::filesystem::path root) : root_(std::move(root)) {}
  // GET/HEAD of a file; "/" and extension-less paths get index.html (the app routes itself).
  http::Response serve(const http::Request& request) const;

 private:
  std::filesystem::path root_;
};

}  // namespace vcrm
