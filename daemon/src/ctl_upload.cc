#include "ctl_upload.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <thread>

#include "vcrm/common/error.h"
#include "vcrm/common/files.h"
#include "vcrm/common/json.h"

namespace vcrm::ctl {

namespace {

constexpr std::uint64_t kPatchBytes = 16u << 20;  // one tus PATCH: progress, and a resume point
constexpr int kMaxFailuresInARow = 5;

}  // namespace

std::string messageOf(const ApiClient::Reply& reply) {
  try {
    auto error = json::parseObject(reply.body)->getObject("error");
    return error->getValue<std::string>("message") + " (" + error->getValue<std::string>("code") +
           ")";
  } catch (...) {  // NOLINT(bugprone-empty-catch): the raw body instead
  }
  return reply.body;
}

void refused(const std::string& what, const ApiClient::Reply& reply) {
  throw Error("refused", what + " (" + std::to_string(reply.status) + "): " + messageOf(reply));
}

UploadedFile uploadFile(ApiClient& client, const std::function<ApiClient()>& reconnect,
                        const std::string& collection, const std::string& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0)
    throw IoError("cannot read " + file + ": " + errnoText(errno));
  const auto size = static_cast<std::uint64_t>(st.st_size);
  auto created = client.send("POST", collection,
                             {{"Tus-Resumable", "1.0.0"}, {"Upload-Length", std::to_string(size)}});
  if (created.status != 201) refused("the upload was refused", created);
  const std::string location = created.headers["location"];
  UploadedFile out{location.substr(location.rfind('/') + 1), {}};
  std::ifstream in(file, std::ios::binary);
  if (!in) throw IoError("cannot read " + file);
  std::uint64_t offset = 0;
  int failures = 0;
  // After a cut connection (or a PATCH the server refused because the cut one still held the
  // upload, or had kept fewer bytes than sent): back off, ask where the upload is, go on there.
  const auto resume = [&](const std::string& why, bool newConnection) {
    if (++failures > kMaxFailuresInARow) {
      throw Error("refused", "the upload failed " + std::to_string(failures) +
                                 " times in a row, last: " + why);
    }
    std::cerr << "vcrmctl: the upload was interrupted (" << why << "); resuming\n";
    std::this_thread::sleep_for(std::chrono::seconds(failures));
    if (newConnection) client = reconnect();
    auto head = client.send("HEAD", location, {{"Tus-Resumable", "1.0.0"}});
    if (head.status != 200) refused("the upload cannot be resumed", head);
    offset = std::stoull(head.headers["upload-offset"]);
  };
  while (offset < size) {
    const std::uint64_t n = std::min(kPatchBytes, size - offset);
    in.clear();
    in.seekg(static_cast<std::streamoff>(offset));
    ApiClient::Reply r;
    try {
      r = client.send("PATCH", location,
                      {{"Tus-Resumable", "1.0.0"},
                       {"Upload-Offset", std::to_string(offset)},
                       {"Content-Type", "application/offset+octet-stream"}},
                      &in, n);
    } catch (const Error& e) {
      resume(e.what(), true);
      continue;
    }
    if (r.status == 409 || r.status == 423) {
      resume(messageOf(r), false);
      continue;
    }
    if (r.status != 204 && r.status != 201) refused("the upload failed", r);
    offset += n;
    failures = 0;
    if (offset == size) out.finished = std::move(r);
    std::cerr << "uploaded " << offset * 100 / std::max<std::uint64_t>(size, 1) << "% (" << offset
              << " of " << size << " bytes)\n";
  }
  if (out.finished.status == 0) {
    // The last PATCH arrived but its answer was lost with the connection: the server keeps it.
    out.finished = client.send("GET", location, {{"Tus-Resumable", "1.0.0"}});
  }
  return out;
}

std::string backupPassphrase(const std::string& file) {
  if (!file.empty()) {
    std::string s = files::readFile(file, 4096);
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    return s;
  }
  const char* env = std::getenv("VCRM_BACKUP_PASSPHRASE");
  return env ? env : "";
}

}  // namespace vcrm::ctl
