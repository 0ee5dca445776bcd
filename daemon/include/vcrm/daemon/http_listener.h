// One HTTP/1.1 listener (TLS or plain): a reactor thread that accepts connections, completes the
// TLS handshake and reads whole requests without holding a worker, and a pool of workers that
// only ever see whole requests (or, for routes that stream their body, whole request heads).
// Slow or idle clients therefore cost a file descriptor and a few kilobytes, never a worker.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <istream>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vcrm/common/log.h"

namespace vcrm::httpd {

using Headers = std::vector<std::pair<std::string, std::string>>;

// What the reactor parsed of a request: the request line and the header fields.
struct RequestHead {
  std::string method;
  std::string target;  // as sent: path and query, not decoded
  int minorVersion = 1;
  Headers headers;   // names lower-cased, in the order received
  std::string peer;  // the client's address, IPv4-mapped IPv6 shown as IPv4

  // The value of a header, or nullptr; names are lower case.
  const std::string* header(std::string_view lowerName) const;
};

// Limits that keep slow and idle clients from costing more than a descriptor.
struct Limits {
  // From connect (TLS handshake included), or from the first byte of a keep-alive request, to
  // the end of the headers.
  std::chrono::milliseconds headerTimeout{5000};
  // How long a keep-alive connection may wait for its next request.
  std::chrono::milliseconds idleTimeout{5000};
  // After answering a request whose body was not read (too large, or refused): how long, and
  // how many bytes, the reactor keeps reading and dropping it before it closes.
  std::chrono::milliseconds lingerTimeout{5000};
  std::size_t lingerBytes = 64u << 20;
  // A buffered body must arrive within headerTimeout plus its length at this rate.
  std::size_t minBodyBytesPerSecond = 64 * 1024;
  // A worker's wait for one read (a streamed upload body) or one write (any response).
  std::chrono::milliseconds ioTimeout{30000};
  std::size_t maxHeaderBytes = 16 * 1024;
  // Connections still in the handshake or header phase, per client address (IPv6 by /64); past
  // it the oldest such connection of that address is closed.
  std::size_t maxPendingPerAddress = 256;
  // All connections; past it the oldest connection that is not being served is closed.
  std::size_t maxConnections = 4096;
};

// TLS for a listener: built once from the certificate chain and key files.
class TlsContext {
 public:
  TlsContext(const std::string& certFile, const std::string& keyFile);
  SSL_CTX* get() const { return ctx_.get(); }

 private:
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx_{nullptr, &SSL_CTX_free};
};

// A request the listener refused before any route saw it (malformed head, header fields too
// large, an unsupported transfer coding); the handler answers it and the connection closes.
struct RequestError {
  int status;
  std::string code;
  std::string message;
};

class Connection;

// One request being served by a worker: its head, its body (read whole by the reactor, or as a
// stream for routes that stream it) and the way to answer.
class Exchange {
 public:
  enum class Body { None, Buffered, Streamed, TooLarge };

  Exchange(Connection& conn, RequestHead head, Body kind, std::string body,
           std::optional<RequestError> error, const Limits& limits);
  ~Exchange();
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  const RequestHead& head() const { return head_; }
  // Set when the request could not be read; nothing but the error may be answered.
  const RequestError* framingError() const { return error_ ? &*error_ : nullptr; }
  Body bodyKind() const { return kind_; }
  std::string& body() { return body_; }
  // For Body::Streamed: the body as it arrives (each read waits at most ioTimeout).
  std::istream& bodyStream();

  // Sends a whole response. `headOnly` leaves out the body but keeps its Content-Length (or
  // gives `headLength`, the length a GET would stream).
  void send(int status, const Headers& headers, std::string_view body, bool headOnly = false,
            std::optional<std::uint64_t> headLength = std::nullopt);
  // Sends the head of a chunked response and returns the stream its body is written to; the
  // body ends when the handler returns. The stream goes bad once the client has gone.
  std::ostream& sendChunked(int status, const Headers& headers);
  // The same with a Content-Length of `length`, so a download shows its size and progress: the
  // stream goes bad past `length`, and a body that ends short closes the connection.
  std::ostream& sendStreamed(int status, const Headers& headers, std::uint64_t length);
  // No keep-alive after this response.
  void closeAfterResponse() { keepAlive_ = false; }

  // What becomes of the connection once the handler has returned: another request, a close,
  // or a close once the client has stopped sending a body nobody read (so that it sees the
  // answer rather than a reset).
  enum class After { KeepAlive, Close, Linger };
  After finish();  // also ends a chunked body

 private:
  class BodyBuf;
  class ChunkBuf;
  void writeHead(int status, const Headers& headers, const std::string& framing);
  bool bodyUnread() const;

  Connection& conn_;
  RequestHead head_;
  Body kind_;
  std::string body_;
  std::optional<RequestError> error_;
  const Limits& limits_;
  bool keepAlive_;
  bool responded_ = false;
  bool broken_ = false;
  std::unique_ptr<BodyBuf> bodyBuf_;
  std::unique_ptr<std::istream> bodyStream_;
  std::unique_ptr<ChunkBuf> chunkBuf_;
  std::unique_ptr<std::ostream> chunkStream_;
};

class HttpListener {
 public:
  using Handler = std::function<void(Exchange&)>;
  struct Options {
    std::string name;  // for logs: "https", "redirect", "bridge-events"
    std::string address;
    int port = 0;                     // 0: any free port
    std::shared_ptr<TlsContext> tls;  // null: plain HTTP
    int workers = 16;
    std::size_t maxBodyBytes = 1 << 20;  // a buffered body past this is Body::TooLarge
    // Whether a request's body goes to the handler as a stream (uploads) rather than whole.
    std::function<bool(const RequestHead&)> streamsBody;
    Limits limits;
  };

  HttpListener(Options options, Handler handler, Logger& log);
  ~HttpListener();
  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;

  // Binds and starts the reactor and the workers; throws StartupError when it cannot bind.
  void start();
  // Closes the listening socket and every connection (those being served are shut down so their
  // worker returns), and joins the threads.
  void stop();
  int port() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vcrm::httpd
