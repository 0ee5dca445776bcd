// A client of vcrmd's HTTPS API for command-line tools: signs in, sends one request, and
// verifies the server against the appliance's own certificate.
#pragma once

#include <cstdint>
#include <istream>
#include <map>
#include <ostream>
#include <string>

namespace vcrm {

class ApiClient {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    int port = 8443;
    std::string caFile;     // certificate to trust; empty with insecure=false uses the system store
    bool insecure = false;  // skip verification (never the default)
  };
  struct Reply {
    int status = 0;
    std::string contentType;
    std::string body;
    std::map<std::string, std::string> headers;  // lower-case names
  };

  explicit ApiClient(Options options);
  // Signs in and keeps the bearer token. Throws Unauthenticated with the server's message.
  void login(const std::string& user, const std::string& password);
  // With `into`, a 2xx answer's body is copied there as it arrives (a download of any size)
  // and Reply::body stays empty; other answers are read into Reply::body as usual.
  Reply request(const std::string& method, const std::string& path,
                const std::string& jsonBody = {}, std::ostream* into = nullptr);
  // A request with headers of the caller's and `length` bytes of `body` streamed (any content
  // type; a tus PATCH); `into` as for request().
  Reply send(const std::string& method, const std::string& path,
             const std::map<std::string, std::string>& headers, std::istream* body = nullptr,
             std::uint64_t length = 0, std::ostream* into = nullptr);

 private:
  Options options_;
  std::string token_;
};

}  // namespace vcrm
