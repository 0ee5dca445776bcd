// What a route declares to be an upload (purpose, size cap, what to do with the finished file)
// and what its completion handler is given. The Api turns such a route into the tus 1.0
// routes of its collection; the UploadStore streams the bytes to disk.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>

#include "vcrm/daemon/http.h"

namespace vcrm {

struct RequestContext;

// A finished upload: every declared byte is on disk, fsynced, and hashed while it streamed.
// The file belongs to the handler: move it out of the uploads directory to keep it (on the
// same file system a rename is enough); whatever stays there is removed when it expires.
struct FinishedUpload {
  std::string id;
  std::string purpose;
  std::string owner;  // the user who created it
  std::filesystem::path path;
  std::uint64_t size = 0;
  std::string sha256Hex;
  std::map<std::string, std::string> metadata;  // decoded Upload-Metadata
};

using UploadCompletion = std::function<http::Response(RequestContext&, const FinishedUpload&)>;

struct UploadSpec {
  std::string purpose;         // "upgrade-bundle": names the upload in its state and in logs
  std::uint64_t maxBytes = 0;  // the largest Upload-Length this route takes (413 above it)
  // Called once, on the PATCH that brings the last byte; its response is that PATCH's answer
  // and stays readable with GET on the upload.
  UploadCompletion onComplete;
};

}  // namespace vcrm
