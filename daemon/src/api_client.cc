#include "vcrm/daemon/api_client.h"

#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SSLException.h>
#include <Poco/StreamCopier.h>

#include <cctype>
#include <sstream>

#include "vcrm/common/error.h"
#include "vcrm/common/json.h"

namespace vcrm {

ApiClient::ApiClient(Options options) : options_(std::move(options)) {}

ApiClient::Reply ApiClient::request(const std::string& method, const std::string& path,
                                    const std::string& jsonBody, std::ostream* into) {
  std::map<std::string, std::string> headers;
  if (!jsonBody.empty()) headers["Content-Type"] = "application/json";
  std::istringstream body(jsonBody);
  return send(method, path, headers, jsonBody.empty() ? nullptr : &body, jsonBody.size(), into);
}

ApiClient::Reply ApiClient::send(const std::string& method, const std::string& path,
                                 const std::map<std::string, std::string>& headers,
                                 std::istream* body, std::uint64_t length, std::ostream* into) {
  Poco::Net::Context::Ptr ctx = new Poco::Net::Context(
      Poco::Net::Context::TLS_CLIENT_USE, "", "", options_.caFile,
      options_.insecure ? Poco::Net::Context::VERIFY_NONE : Poco::Net::Context::VERIFY_STRICT, 9,
      options_.caFile.empty());
  try {
    Poco::Net::HTTPSClientSession session(options_.host, static_cast<Poco::UInt16>(options_.port), ctx);
    // Verifying a whole archive before answering (POST /api/v1/restores) takes a while.
    session.setTimeout(Poco::Timespan(300, 0));
    Poco::Net::HTTPRequest req(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
    if (!token_.empty()) req.set("Authorization", "Bearer " + token_);
    for (const auto& [k, v] : headers) req.set(k, v);
    if (body != nullptr) {
      req.setContentLength64(static_cast<Poco::Int64>(length));
    } else if (method != "GET" && method != "HEAD") {
      req.setContentLength(0);
    }
    auto& sent = session.sendRequest(req);
    if (body != nullptr) Poco::StreamCopier::copyStream64(*body, sent);
    Poco::Net::HTTPResponse resp;
    auto& is = session.receiveResponse(resp);
    Reply out;
    out.status = static_cast<int>(resp.getStatus());
    out.contentType = resp.getContentType();
    for (const auto& [k, v] : resp) {
      std::string name = k;
      for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      out.headers[name] = v;
    }
    if (into && out.status >= 200 && out.status < 300) {
      Poco::StreamCopier::copyStream(is, *into);
      if (!*into) throw IoError("cannot write the answer of " + path + " to its file");
    } else {
      Poco::StreamCopier::copyToString(is, out.body);
    }
    return out;
  } catch (const Poco::Net::ConnectionRefusedException&) {
    throw IoError("nothing listens on " + options_.host + ":" + std::to_string(options_.port) +
                  ": is vcrmd running, and is that its HTTPS port?");
  } catch (const Poco::Net::SSLException& e) {
    throw IoError("TLS with " + options_.host + " failed (" + e.displayText() +
                  "): pass the appliance's certificate with --ca, or --root to find it");
  } catch (const Poco::Exception& e) {
    throw IoError("cannot reach " + options_.host + ":" + std::to_string(options_.port) + ": " + e.displayText());
  }
}

void ApiClient::login(const std::string& user, const std::string& password) {
  json::ObjectPtr o = new json::Object;
  o->set("username", user);
  o->set("password", password);
  token_.clear();
  auto r = request("POST", "/api/v1/auth/login", json::stringify(o));
  if (r.status != 200) {
    std::string message = "sign-in failed with status " + std::to_string(r.status);
    try {
      message = json::parseObject(r.body)->getObject("error")->getValue<std::string>("message");
    } catch (...) {  // NOLINT(bugprone-empty-catch): keep the status-based message
    }
    throw Unauthenticated(message);
  }
  token_ = json::parseObject(r.body)->getValue<std::string>("token");
}

}  // namespace vcrm
