// A client of vcrmd's HTTPS API for command-line tools: signs in, sends one request, and
// verifies the server against the appliance's own certificate.
#pragma once

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
  };

  explicit ApiClient(Options options);
  // Signs in and keeps the bearer token. Throws Unauthenticated with the server's message.
  void login(const std::string& user, const std::string& password);
  Reply request(const std::string& method, const std::string& path, const std::string& jsonBody = {});

 private:
  Options options_;
  std::string token_;
};

}  // namespace vcrm
