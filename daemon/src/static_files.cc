#include "vcrm/daemon/static_files.h"

#include <map>

#include "vcrm/common/error.h"
#include "vcrm/common/files.h"

namespace vcrm {

namespace {

std::string contentType(const std::string& ext) {
  static const std::map<std::string, std::string> types = {
      {".html", "text/html; charset=utf-8"},  {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
      {".svg", "image/svg+xml"},              {".png", "image/png"},
      {".ico", "image/x-icon"},               {".json", "application/json"},
      {".txt", "text/plain; charset=utf-8"},
  };
  auto it = types.find(ext);
  return it == types.end() ? "application/octet-stream" : it->second;
}

bool safeRelative(const std::string& path) {
  if (path.empty() || path.size() > 256) return false;
  for (char c : path) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == '_' || c == '/';
    if (!ok) return false;
  }
  return path.find("..") == std::string::npos && path.find("//") == std::string::npos &&
         path.front() != '/';
}

}  // namespace

http::Response StaticFiles::serve(const http::Request& request) const {
  if (request.method != "GET" && request.method != "HEAD") {
    auto r = http::Response::error(405, "method_not_allowed", "only GET is allowed here");
    r.headers.emplace_back("Allow", "GET, HEAD");
    return r;
  }
  std::string rel = request.path.size() > 1 ? request.path.substr(1) : "index.html";
  if (!safeRelative(rel)) return http::Response::error(404, "not_found", "no such page");
  std::filesystem::path file = root_ / rel;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) {
    if (std::filesystem::path(rel).has_extension()) {
      return http::Response::error(404, "not_found", "no such file: /" + rel);
    }
    file = root_ / "index.html";
  }
  http::Response r;
  try {
    r.body = files::readFile(file, 16u << 20);
  } catch (const IoError&) {
    return http::Response::error(404, "not_found", "the web UI is not installed at " + root_.string());
  }
  r.contentType = contentType(file.extension().string());
  r.headers.emplace_back("Cache-Control", "no-cache");
  return r;
}

}  // namespace vcrm
