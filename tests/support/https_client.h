// A small HTTPS client for tests: verifies the appliance's certificate against the file it
// generated, keeps the session cookie and CSRF token when asked, and returns status + body.
#pragma once

#include <map>
#include <optional>
#include <string>

#include <Poco/JSON/Object.h>

namespace vcrm::test {

struct HttpResult {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names; last value wins
  std::string header(const std::string& lowerName) const;
  Poco::JSON::Object::Ptr json() const;  // throws if the body is not a JSON object
  std::string errorCode() const;         // error.code of an error body, or ""
};

class HttpsClient {
 public:
  // `caFile`: the certificate to trust (the appliance's self-signed one); empty trusts nothing
  // and disables verification (only for tests of failure paths).
  HttpsClient(std::string host, int port, std::string caFile);

  HttpResult request(const std::string& method, const std::string& path,
                     const std::string& body = {},
                     const std::map<std::string, std::string>& headers = {});
  HttpResult get(const std::string& path) { return request("GET", path); }
  HttpResult postJson(const std::string& path, const std::string& json);

  // Logs in with the bearer token (no cookie); returns the result.
  HttpResult loginBearer(const std::string& user, const std::string& password);
  // Logs in keeping the cookie and the CSRF token, as a browser would.
  HttpResult loginCookie(const std::string& user, const std::string& password);

  // Changes the signed-in user's own password.
  HttpResult changePassword(const std::string& current, const std::string& next);

  void setBearer(std::string token) { bearer_ = std::move(token); }
  const std::string& bearer() const { return bearer_; }
  // Connects from this local address (any of 127.0.0.0/8 on loopback), so one test can be
  // several clients as the server sees them.
  void setSourceAddress(std::string address) { source_ = std::move(address); }
  void clearAuth();
  const std::string& csrf() const { return csrf_; }
  void setSendCsrf(bool send) { sendCsrf_ = send; }

 private:
  std::string host_;
  int port_;
  std::string caFile_;
  std::string bearer_;
  std::string cookie_;
  std::string csrf_;
  bool sendCsrf_ = true;
  std::string source_;
};

}  // namespace vcrm::test
