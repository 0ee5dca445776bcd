#include "vcrm/daemon/server.h"

#include <algorithm>
#include <optional>
#include <regex>

#include "vcrm/common/error.h"

namespace vcrm {

namespace {

constexpr const char* kComponent = "http";

httpd::Headers securityHeaders() {
  return {{"Strict-Transport-Security", "max-age=31536000"},
          {"Content-Security-Policy",
           "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
           "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"},
          {"X-Content-Type-Options", "nosniff"},
          {"X-Frame-Options", "DENY"},
          {"Referrer-Policy", "no-referrer"}};
}

httpd::Headers responseHeaders(const http::Response& r) {
  httpd::Headers h = securityHeaders();
  if (r.contentType.rfind("application/json", 0) == 0) h.emplace_back("Cache-Control", "no-store");
  for (const auto& [k, v] : r.headers) {
    if (k == "Cache-Control") {
      // The route's own word replaces the default above.
      std::erase_if(h, [](const auto& kv) { return kv.first == "Cache-Control"; });
    }
    h.emplace_back(k, v);
  }
  if (!r.contentType.empty() && r.status != 204 && r.status != 304)
    h.emplace_back("Content-Type", r.contentType);
  return h;
}

void send(httpd::Exchange& ex, const http::Response& r, bool headOnly) {
  const auto headers = responseHeaders(r);
  if (r.stream && r.status != 204 && r.status != 304) {
    if (headOnly) {
      ex.send(r.status, headers, {}, true, r.streamLength);
      return;
    }
    std::ostream& os = r.streamLength ? ex.sendStreamed(r.status, headers, *r.streamLength)
                                      : ex.sendChunked(r.status, headers);
    r.stream(os);
    return;
  }
  ex.send(r.status, headers, r.body, headOnly);
}

// Turns what the listener read into the API's request; nullopt (answered) when the path is bad.
std::optional<http::Request> toRequest(httpd::Exchange& ex) {
  const auto& head = ex.head();
  http::Request req;
  req.method = head.method;
  req.remoteAddr = head.peer;
  for (const auto& [k, v] : head.headers) {
    req.headers[k] = v;  // a repeated field: the last one wins
  }
  const std::string& uri = head.target;
  const auto q = uri.find('?');
  auto path = http::percentDecode(uri.substr(0, q));
  if (!path || path->empty() || path->front() != '/') {
    ex.closeAfterResponse();
    send(ex, http::Response::error(400, "bad_path", "the request path is malformed"), false);
    return std::nullopt;
  }
  req.path = *path;
  if (q != std::string::npos) {
    try {
      req.query = http::parseQuery(uri.substr(q + 1));
    } catch (const InvalidInput& e) {
      send(ex, http::Response::error(400, e.code(), e.what()), false);
      return std::nullopt;
    }
  }
  return req;
}

// The HTTPS API, and the plain-HTTP listener for bridges that serves nothing but event posts.
void serveApi(Api& api, Logger& log, bool eventsOnly, httpd::Exchange& ex) {
  if (const auto* error = ex.framingError()) {
    send(ex, http::Response::error(error->status, error->code, error->message), false);
    return;
  }
  auto parsed = toRequest(ex);
  if (!parsed) return;
  http::Request& req = *parsed;
  if (eventsOnly) {
    static const std::regex eventsPath("^/api/v1/bridges/[0-9]{1,18}/events$");
    if (req.method != "POST" || !std::regex_match(req.path, eventsPath)) {
      api.auditRefused(req, 404);
      send(ex,
           http::Response::error(
               404, "not_found",
               "this listener only takes bridge event posts; use HTTPS for everything else"),
           false);
      return;
    }
  }
  switch (ex.bodyKind()) {
    case httpd::Exchange::Body::TooLarge:
      api.auditRefused(req, 413);
      send(ex,
           http::Response::error(
               413, "too_large",
               "the request body is larger than " + std::to_string(api.maxBodyBytes()) + " bytes"),
           false);
      return;
    case httpd::Exchange::Body::Streamed:
      req.bodyStream = &ex.bodyStream();
      break;
    case httpd::Exchange::Body::Buffered:
      req.body = std::move(ex.body());
      break;
    case httpd::Exchange::Body::None:
      break;
  }
  const auto started = std::chrono::steady_clock::now();
  http::Response r = api.handle(req);
  send(ex, r, req.method == "HEAD");
  if (log.enabled(LogLevel::Debug)) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - started)
                        .count();
    log.debug(kComponent, "REQUEST",
              req.method + " " + req.path + " -> " + std::to_string(r.status) + " in " +
                  std::to_string(ms) + " ms from " + req.remoteAddr);
  }
}

// Plain HTTP only ever redirects to the same path over HTTPS.
void serveRedirect(int httpsPort, httpd::Exchange& ex) {
  if (const auto* error = ex.framingError()) {
    send(ex, http::Response::error(error->status, error->code, error->message), false);
    return;
  }
  const std::string* hostHeader = ex.head().header("host");
  std::string host = hostHeader ? *hostHeader : "";
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
  std::string uri = ex.head().target;
  if (uri.empty() || uri.front() != '/') uri = "/";
  ex.send(301, {{"Location", "https://" + host + ":" + std::to_string(httpsPort) + uri}}, {});
}

}  // namespace

WebServer::WebServer(Options options, Api& api, Logger& log)
    : options_(std::move(options)), api_(api), log_(log) {}

WebServer::~WebServer() {
  stop();
}

void WebServer::start() {
  std::shared_ptr<httpd::TlsContext> tls;
  try {
    tls = std::make_shared<httpd::TlsContext>(options_.certFile, options_.keyFile);
    httpd::HttpListener::Options https;
    https.name = "https";
    https.address = options_.listen;
    https.port = options_.httpsPort;
    https.tls = tls;
    https.workers = options_.threads;
    https.maxBodyBytes = api_.maxBodyBytes();
    https.streamsBody = [this](const httpd::RequestHead& head) {
      http::Request req;
      req.method = head.method;
      auto path = http::percentDecode(head.target.substr(0, head.target.find('?')));
      if (!path) return false;
      req.path = *path;
      return api_.streamsBody(req);
    };
    https.limits = options_.limits;
    https_ = std::make_unique<httpd::HttpListener>(
        std::move(https), [this](httpd::Exchange& ex) { serveApi(api_, log_, false, ex); }, log_);
    https_->start();
    httpsPort_ = https_->port();
    if (options_.httpPort >= 0) {
      httpd::HttpListener::Options plain;
      plain.name = "redirect";
      plain.address = options_.listen;
      plain.port = options_.httpPort;
      plain.workers = 2;
      plain.maxBodyBytes = 0;
      plain.limits = options_.limits;
      const int target = httpsPort_;
      http_ = std::make_unique<httpd::HttpListener>(
          std::move(plain), [target](httpd::Exchange& ex) { serveRedirect(target, ex); }, log_);
      http_->start();
      httpPort_ = http_->port();
    }
    if (options_.eventsPort >= 0) {
      httpd::HttpListener::Options events;
      events.name = "bridge-events";
      events.address = options_.eventsListen;
      events.port = options_.eventsPort;
      events.workers = 4;
      events.maxBodyBytes = api_.maxBodyBytes();
      events.limits = options_.limits;
      events_ = std::make_unique<httpd::HttpListener>(
          std::move(events), [this](httpd::Exchange& ex) { serveApi(api_, log_, true, ex); }, log_);
      events_->start();
      eventsPort_ = events_->port();
    }
  } catch (...) {
    stop();
    throw;
  }
  log_.info(kComponent, "LISTENING",
            "HTTPS on " + options_.listen + ":" + std::to_string(httpsPort_) +
                (httpPort_ >= 0 ? ", HTTP redirect on port " + std::to_string(httpPort_) : "") +
                (eventsPort_ >= 0 ? ", bridge events on " + options_.eventsListen + ":" +
                                        std::to_string(eventsPort_)
                                  : ""));
}

void WebServer::stop() {
  for (auto* listener : {&events_, &http_, &https_}) {
    if (*listener) {
      (*listener)->stop();
      listener->reset();
    }
  }
}

}  // namespace vcrm
