// Client side of the upload tests and benchmark: bytes that depend only on (seed, position),
// so any suffix of a multi-gigabyte upload can be regenerated without a file, and a raw TLS
// connection that writes requests exactly as given (lying lengths, cuts mid-body).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "https_client.h"

namespace Poco::Net {
class SecureStreamSocket;
}

namespace vcrm::test {

class PatternBytes {
 public:
  explicit PatternBytes(std::uint64_t seed) : seed_(seed) {}
  void fill(std::uint64_t position, char* out, std::size_t n) const;
  std::string at(std::uint64_t position, std::size_t n) const;

 private:
  std::uint64_t seed_;
};

class RawTls {
 public:
  RawTls(const std::string& host, int port, const std::string& caFile);
  ~RawTls();
  RawTls(const RawTls&) = delete;
  RawTls& operator=(const RawTls&) = delete;
  void send(const char* data, std::size_t n);
  void send(const std::string& s) { send(s.data(), s.size()); }
  // Reads one response (headers and a Content-Length body); status 0 if the server closed the
  // connection without answering.
  HttpResult readResponse();
  // Ends the connection at once, as a dropped network would mid-request (bytes still in flight
  // may be lost: the kernel resets a socket closed with unread data, e.g. TLS session tickets).
  void cut();
  // Stops sending (TCP FIN after everything sent so far) but keeps reading: a client whose
  // body ends before its Content-Length says.
  void endSending();

 private:
  std::unique_ptr<Poco::Net::SecureStreamSocket> socket_;
  std::string buffered_;
};

// The request line and headers of a tus PATCH; `contentLength` nullopt means chunked.
std::string tusPatchHead(const std::string& path, const std::string& bearer, std::uint64_t offset,
                         std::optional<std::uint64_t> contentLength);

// POST + one PATCH of the whole of `bytes` to the tus upload collection `collection` (e.g.
// "/api/v1/restores/uploads"): the upload's id and the PATCH's answer, whose body is the
// collection's completion answer. Throws when the upload cannot be created.
struct TusUpload {
  std::string id;
  HttpResult finished;
};
TusUpload uploadWhole(HttpsClient& client, const std::string& collection, const std::string& bytes);

// Sends `count` pattern bytes from `position` (chunked framing when `chunked`), hashing nothing.
void sendPattern(RawTls& conn, const PatternBytes& bytes, std::uint64_t position,
                 std::uint64_t count, bool chunked = false);

}  // namespace vcrm::test
