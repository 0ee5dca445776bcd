#include "https_client.h"

#include <Poco/JSON/Parser.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/SSLManager.h>
#include <Poco/Net/SecureStreamSocket.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/StreamCopier.h>

#include <algorithm>
#include <stdexcept>

namespace vcrm::test {

std::string HttpResult::header(const std::string& lowerName) const {
  auto it = headers.find(lowerName);
  return it == headers.end() ? std::string() : it->second;
}

Poco::JSON::Object::Ptr HttpResult::json() const {
  Poco::JSON::Parser p;
  auto v = p.parse(body);
  return v.extract<Poco::JSON::Object::Ptr>();
}

std::string HttpResult::errorCode() const {
  try {
    auto o = json();
    auto e = o->getObject("error");
    return e ? e->getValue<std::string>("code") : std::string();
  } catch (...) {
    return {};
  }
}

namespace {

// A session over a socket connected from a chosen source address. Poco 1.11 refuses to make a
// session from a connected socket (it sets the port afterwards), so the socket is attached to
// one made for host and port; keep-alive stops sendRequest() from reconnecting without it.
class BoundSession : public Poco::Net::HTTPSClientSession {
 public:
  BoundSession(const std::string& host, Poco::UInt16 port, Poco::Net::Context::Ptr ctx,
               const Poco::Net::SecureStreamSocket& socket)
      : HTTPSClientSession(host, port, ctx) {
    setKeepAlive(true);
    attachSocket(socket);
  }
};

}  // namespace

HttpsClient::HttpsClient(std::string host, int port, std::string caFile)
    : host_(std::move(host)), port_(port), caFile_(std::move(caFile)) {
  static const bool sslReady = [] {
    Poco::Net::initializeSSL();
    return true;
  }();
  (void)sslReady;
}

void HttpsClient::clearAuth() {
  bearer_.clear();
  cookie_.clear();
  csrf_.clear();
}

HttpResult HttpsClient::request(const std::string& method, const std::string& path,
                                const std::string& body,
                                const std::map<std::string, std::string>& headers) {
  Poco::Net::Context::Ptr ctx =
      caFile_.empty() ? new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "", "", "",
                                               Poco::Net::Context::VERIFY_NONE)
                      : new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "", "", caFile_,
                                               Poco::Net::Context::VERIFY_STRICT, 9, false);
  std::unique_ptr<Poco::Net::HTTPSClientSession> sessionPtr;
  if (source_.empty()) {
    sessionPtr = std::make_unique<Poco::Net::HTTPSClientSession>(
        host_, static_cast<Poco::UInt16>(port_), ctx);
  } else {
    Poco::Net::StreamSocket plain(Poco::Net::SocketAddress::IPv4);
    plain.impl()->bind(Poco::Net::SocketAddress(source_, 0));
    plain.connect(Poco::Net::SocketAddress(host_, static_cast<Poco::UInt16>(port_)),
                  Poco::Timespan(30, 0));
    sessionPtr =
        std::make_unique<BoundSession>(host_, static_cast<Poco::UInt16>(port_), ctx,
                                       Poco::Net::SecureStreamSocket::attach(plain, host_, ctx));
  }
  auto& session = *sessionPtr;
  session.setTimeout(Poco::Timespan(30, 0));
  Poco::Net::HTTPRequest req(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
  req.setHost(host_, static_cast<Poco::UInt16>(port_));
  if (!bearer_.empty()) req.set("Authorization", "Bearer " + bearer_);
  if (!cookie_.empty()) req.set("Cookie", cookie_);
  if (!cookie_.empty() && sendCsrf_ && !csrf_.empty()) req.set("X-CSRF-Token", csrf_);
  bool typeGiven = false;
  for (const auto& [k, v] : headers) {
    req.set(k, v);
    std::string lower = k;
    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
    typeGiven = typeGiven || lower == "content-type";
  }
  if (!body.empty() && !typeGiven) req.setContentType("application/json");
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
    req.setContentLength(static_cast<std::streamsize>(body.size()));
  }
  auto& os = session.sendRequest(req);
  os << body;
  Poco::Net::HTTPResponse resp;
  auto& is = session.receiveResponse(resp);
  HttpResult out;
  out.status = static_cast<int>(resp.getStatus());
  Poco::StreamCopier::copyToString(is, out.body);
  // Poco ends a fixed-length body quietly at EOF: a server killed half-way through its answer
  // would otherwise hand the caller a truncated body with the status already read.
  if (method != "HEAD" && resp.hasContentLength() &&
      static_cast<std::streamsize>(out.body.size()) != resp.getContentLength64()) {
    throw std::runtime_error(method + " " + path + ": the answer (" + std::to_string(out.status) +
                             ") ended after " + std::to_string(out.body.size()) + " of " +
                             std::to_string(resp.getContentLength64()) + " bytes");
  }
  for (const auto& [k, v] : resp) {
    std::string lower = k;
    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
    out.headers[lower] = v;
  }
  return out;
}

HttpResult HttpsClient::postJson(const std::string& path, const std::string& json) {
  return request("POST", path, json, {{"Content-Type", "application/json"}});
}

namespace {
std::string credentials(const std::string& user, const std::string& password) {
  Poco::JSON::Object o;
  o.set("username", user);
  o.set("password", password);
  std::ostringstream s;
  o.stringify(s);
  return s.str();
}
}  // namespace

HttpResult HttpsClient::loginBearer(const std::string& user, const std::string& password) {
  clearAuth();
  auto r = postJson("/api/v1/auth/login", credentials(user, password));
  if (r.status == 200) bearer_ = r.json()->getValue<std::string>("token");
  return r;
}

HttpResult HttpsClient::changePassword(const std::string& current, const std::string& next) {
  Poco::JSON::Object o;
  o.set("current_password", current);
  o.set("new_password", next);
  std::ostringstream s;
  o.stringify(s);
  return postJson("/api/v1/auth/password", s.str());
}

HttpResult HttpsClient::loginCookie(const std::string& user, const std::string& password) {
  clearAuth();
  auto r = postJson("/api/v1/auth/login", credentials(user, password));
  if (r.status == 200) {
    const std::string setCookie = r.header("set-cookie");
    cookie_ = setCookie.substr(0, setCookie.find(';'));
    csrf_ = r.json()->getValue<std::string>("csrf_token");
  }
  return r;
}

}  // namespace vcrm::test
