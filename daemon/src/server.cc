#include "vcrm/daemon/server.h"

#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/SecureServerSocket.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/URI.h>

#include <algorithm>
#include <regex>
#include <sstream>

#include "vcrm/common/error.h"

namespace vcrm {

namespace {

constexpr const char* kComponent = "http";

void securityHeaders(Poco::Net::HTTPServerResponse& out) {
  out.set("Strict-Transport-Security", "max-age=31536000");
  out.set("Content-Security-Policy",
          "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
          "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
  out.set("X-Content-Type-Options", "nosniff");
  out.set("X-Frame-Options", "DENY");
  out.set("Referrer-Policy", "no-referrer");
}

void send(Poco::Net::HTTPServerResponse& out, const http::Response& r, bool headOnly) {
  out.setStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(r.status));
  securityHeaders(out);
  if (r.contentType.rfind("application/json", 0) == 0) out.set("Cache-Control", "no-store");
  for (const auto& [k, v] : r.headers) {
    if (k == "Cache-Control") {
      out.set(k, v);  // the route's own word replaces the default above
    } else {
      out.add(k, v);
    }
  }
  if (r.status == 204 || r.status == 304) {
    out.setContentLength(0);
    out.send();
    return;
  }
  if (!r.contentType.empty()) out.setContentType(r.contentType);
  if (r.stream) {
    out.setChunkedTransferEncoding(true);
    auto& os = out.send();
    if (!headOnly) r.stream(os);
    return;
  }
  out.setContentLength(static_cast<std::streamsize>(r.body.size()));
  auto& os = out.send();
  if (!headOnly) os.write(r.body.data(), static_cast<std::streamsize>(r.body.size()));
}

class ApiHandler : public Poco::Net::HTTPRequestHandler {
 public:
  // `eventsOnly`: the plain-HTTP listener for bridges, which serves nothing but event posts.
  ApiHandler(Api& api, Logger& log, bool eventsOnly = false) : api_(api), log_(log), eventsOnly_(eventsOnly) {}

  void handleRequest(Poco::Net::HTTPServerRequest& in, Poco::Net::HTTPServerResponse& out) override {
    http::Request req;
    req.method = in.getMethod();
    req.remoteAddr = in.clientAddress().host().toString();
    for (const auto& [k, v] : in) {
      std::string lower = k;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      req.headers[lower] = v;
    }
    const std::string& uri = in.getURI();
    const auto q = uri.find('?');
    auto path = http::percentDecode(uri.substr(0, q));
    if (!path || path->empty() || path->front() != '/') {
      send(out, http::Response::error(400, "bad_path", "the request path is malformed"), false);
      return;
    }
    req.path = *path;
    if (q != std::string::npos) req.query = http::parseQuery(uri.substr(q + 1));
    if (eventsOnly_) {
      static const std::regex eventsPath("^/api/v1/bridges/[0-9]{1,18}/events$");
      if (req.method != "POST" || !std::regex_match(req.path, eventsPath)) {
        api_.auditRefused(req, 404);
        send(out, http::Response::error(404, "not_found",
                                        "this listener only takes bridge event posts; use HTTPS for everything else"),
             false);
        return;
      }
    }

    if (api_.streamsBody(req)) {
      handleStreamed(req, in, out);
      return;
    }

    const std::size_t cap = api_.maxBodyBytes();
    auto& is = in.stream();
    std::string body;
    char buf[16384];
    bool tooLarge = in.hasContentLength() && in.getContentLength64() > static_cast<Poco::Int64>(cap);
    // Without Content-Length or chunked framing an HTTP/1.1 request has no body (Poco would
    // otherwise read until the client closes, e.g. for a bare OPTIONS).
    const bool hasBody = in.hasContentLength() || in.getChunkedTransferEncoding();
    // Read up to the cap; past it keep reading (and discarding) a bounded amount so the client
    // finishes sending and sees the 413 instead of a reset connection.
    std::size_t discarded = 0;
    while (hasBody && is.good() && discarded < 64u << 20) {
      is.read(buf, sizeof buf);
      const auto n = static_cast<std::size_t>(is.gcount());
      if (tooLarge || body.size() + n > cap) {
        tooLarge = true;
        discarded += n;
      } else {
        body.append(buf, n);
      }
    }
    if (tooLarge) {
      api_.auditRefused(req, 413);
      out.setKeepAlive(false);
      send(out, http::Response::error(413, "too_large",
                                      "the request body is larger than " + std::to_string(cap) +
                                          " bytes"),
           false);
      return;
    }
    req.body = std::move(body);

    const auto started = std::chrono::steady_clock::now();
    http::Response r = api_.handle(req);
    send(out, r, req.method == "HEAD");
    if (log_.enabled(LogLevel::Debug)) {
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - started)
                          .count();
      log_.debug(kComponent, "REQUEST", req.method + " " + req.path + " -> " +
                                            std::to_string(r.status) + " in " +
                                            std::to_string(ms) + " ms from " + req.remoteAddr);
    }
  }

 private:
  // An upload's PATCH: the handler reads the body from the connection in bounded chunks, for as
  // long as it keeps arriving (the socket timeout ends a stalled one).
  void handleStreamed(http::Request& req, Poco::Net::HTTPServerRequest& in,
                      Poco::Net::HTTPServerResponse& out) {
    auto& is = in.stream();
    const bool hasBody = in.hasContentLength() || in.getChunkedTransferEncoding();
    std::istringstream empty;
    req.bodyStream = hasBody ? &is : &empty;
    http::Response r = api_.handle(req);
    if (r.status >= 400) {
      // A refused body may be unread: discard a little so the client sees the answer rather
      // than a reset, then close, since what follows on the connection is not a request.
      char buf[16384];
      std::size_t discarded = 0;
      while (hasBody && is.good() && discarded < (1u << 20)) {
        is.read(buf, sizeof buf);
        discarded += static_cast<std::size_t>(is.gcount());
      }
      out.setKeepAlive(false);
    }
    send(out, r, false);
  }

  Api& api_;
  Logger& log_;
  bool eventsOnly_;
};

class ApiFactory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  ApiFactory(Api& api, Logger& log, bool eventsOnly = false) : api_(api), log_(log), eventsOnly_(eventsOnly) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest&) override {
    return new ApiHandler(api_, log_, eventsOnly_);
  }

 private:
  Api& api_;
  Logger& log_;
  bool eventsOnly_;
};

// Plain HTTP only ever redirects to the same path over HTTPS.
class RedirectHandler : public Poco::Net::HTTPRequestHandler {
 public:
  explicit RedirectHandler(int httpsPort) : httpsPort_(httpsPort) {}
  void handleRequest(Poco::Net::HTTPServerRequest& in, Poco::Net::HTTPServerResponse& out) override {
    std::string host = in.getHost();
    // Strip any port; accept only host-name or address characters to keep the header clean.
    if (!host.empty() && host.front() == '[') {
      host = host.substr(0, host.find(']') + 1);
    } else if (auto colon = host.rfind(':'); colon != std::string::npos) {
      host = host.substr(0, colon);
    }
    const bool clean = !host.empty() && std::all_of(host.begin(), host.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' ||
             c == '[' || c == ']';
    });
    if (!clean) host = "localhost";
    std::string uri = in.getURI();
    if (uri.empty() || uri.front() != '/') uri = "/";
    out.setStatus(Poco::Net::HTTPResponse::HTTP_MOVED_PERMANENTLY);
    out.set("Location", "https://" + host + ":" + std::to_string(httpsPort_) + uri);
    out.setContentLength(0);
    out.send();
  }

 private:
  int httpsPort_;
};

class RedirectFactory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit RedirectFactory(int httpsPort) : httpsPort_(httpsPort) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest&) override {
    return new RedirectHandler(httpsPort_);
  }

 private:
  int httpsPort_;
};

}  // namespace

WebServer::WebServer(Options options, Api& api, Logger& log)
    : options_(std::move(options)), api_(api), log_(log) {}

WebServer::~WebServer() { stop(); }

void WebServer::start() {
  Poco::Net::Context::Ptr ctx;
  try {
    // Mozilla's "intermediate" profile narrowed to ECDHE: TLS 1.2 with forward-secret AEAD
    // suites only, and TLS 1.3 (whose suites are all of that kind); the server's order wins.
    ctx = new Poco::Net::Context(Poco::Net::Context::TLS_SERVER_USE, options_.keyFile,
                                 options_.certFile, "", Poco::Net::Context::VERIFY_NONE, 9, false,
                                 "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                 "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                 "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305");
    ctx->disableProtocols(Poco::Net::Context::PROTO_SSLV2 | Poco::Net::Context::PROTO_SSLV3 |
                          Poco::Net::Context::PROTO_TLSV1 | Poco::Net::Context::PROTO_TLSV1_1);
    ctx->preferServerCiphers();
    ctx->enableExtendedCertificateVerification(false);
  } catch (const Poco::Exception& e) {
    throw StartupError("cannot load the TLS certificate " + options_.certFile + " / key " +
                       options_.keyFile + ": " + e.displayText());
  }
  try {
    Poco::Net::SocketAddress addr(options_.listen, static_cast<Poco::UInt16>(options_.httpsPort));
    Poco::Net::SecureServerSocket socket(addr, 64, ctx);
    httpsPort_ = socket.address().port();
    auto params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(options_.threads);
    params->setMaxQueued(256);
    params->setKeepAlive(true);
    params->setTimeout(Poco::Timespan(30, 0));
    threads_ = std::make_unique<Poco::ThreadPool>(2, options_.threads + 4, 60);
    https_ = std::make_unique<Poco::Net::HTTPServer>(new ApiFactory(api_, log_), *threads_, socket, params);
    https_->start();
    if (options_.httpPort >= 0) {
      Poco::Net::SocketAddress plainAddr(options_.listen, static_cast<Poco::UInt16>(options_.httpPort));
      Poco::Net::ServerSocket plain(plainAddr, 64);
      httpPort_ = plain.address().port();
      auto plainParams = new Poco::Net::HTTPServerParams;
      plainParams->setMaxThreads(2);
      http_ = std::make_unique<Poco::Net::HTTPServer>(new RedirectFactory(httpsPort_), plain, plainParams);
      http_->start();
    }
    if (options_.eventsPort >= 0) {
      Poco::Net::SocketAddress eventsAddr(options_.eventsListen, static_cast<Poco::UInt16>(options_.eventsPort));
      Poco::Net::ServerSocket eventsSocket(eventsAddr, 64);
      eventsPort_ = eventsSocket.address().port();
      auto eventsParams = new Poco::Net::HTTPServerParams;
      eventsParams->setMaxThreads(4);
      eventsParams->setKeepAlive(true);
      events_ = std::make_unique<Poco::Net::HTTPServer>(new ApiFactory(api_, log_, true), eventsSocket, eventsParams);
      events_->start();
    }
  } catch (const Poco::Exception& e) {
    stop();
    throw StartupError("cannot listen on " + options_.listen + " port " +
                       std::to_string(options_.httpsPort) + "/" + std::to_string(options_.httpPort) +
                       ": " + e.displayText() + " (is another vcrmd or service using the port?)");
  }
  log_.info(kComponent, "LISTENING",
            "HTTPS on " + options_.listen + ":" + std::to_string(httpsPort_) +
                (httpPort_ >= 0 ? ", HTTP redirect on port " + std::to_string(httpPort_) : "") +
                (eventsPort_ >= 0 ? ", bridge events on " + options_.eventsListen + ":" + std::to_string(eventsPort_)
                                  : ""));
}

void WebServer::stop() {
  if (events_) {
    events_->stopAll(true);
    events_.reset();
  }
  if (http_) {
    http_->stopAll(true);
    http_.reset();
  }
  if (https_) {
    https_->stopAll(true);
    https_.reset();
  }
  if (threads_) {
    threads_->joinAll();
    threads_.reset();
  }
}

}  // namespace vcrm
