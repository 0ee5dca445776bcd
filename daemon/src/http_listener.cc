#include "vcrm/daemon/http_listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <deque>
#include <limits>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>

#include "vcrm/common/error.h"
#include "vcrm/common/guarded.h"

namespace vcrm::httpd {

namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* kComponent = "http";

std::string opensslError() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown TLS error" : out;
}

// Groups addresses the way one client holds them: an IPv4 address, or an IPv6 /64.
std::string addressGroup(const std::string& peer) {
  in6_addr a6{};
  if (peer.find(':') == std::string::npos || ::inet_pton(AF_INET6, peer.c_str(), &a6) != 1) return peer;
  std::fill(a6.s6_addr + 8, a6.s6_addr + 16, 0);
  char buf[INET6_ADDRSTRLEN];
  ::inet_ntop(AF_INET6, &a6, buf, sizeof buf);
  return std::string(buf) + "/64";
}

std::string peerText(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(ss).sin_addr, buf, sizeof buf);
    return buf;
  }
  const auto& a6 = reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr;
  if (IN6_IS_ADDR_V4MAPPED(&a6)) {
    ::inet_ntop(AF_INET, a6.s6_addr + 12, buf, sizeof buf);
    return buf;
  }
  ::inet_ntop(AF_INET6, &a6, buf, sizeof buf);
  return buf;
}

const char* reasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 423: return "Locked";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 507: return "Insufficient Storage";
    default: return "Status";
  }
}

std::string httpDate() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool isTokenChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

std::uint64_t hexValue(char c) {
  if (c >= '0' && c <= '9') return static_cast<std::uint64_t>(c - '0');
  return static_cast<std::uint64_t>(std::tolower(static_cast<unsigned char>(c)) - 'a' + 10);
}

// A request body in the chunked transfer coding, decoded as its bytes arrive.
class ChunkedDecoder {
 public:
  // Consumes bytes of [p, p+n) and appends the payload to `out`; returns how many it consumed
  // (fewer than n only once done or bad).
  std::size_t feed(const char* p, std::size_t n, std::string& out) {
    std::size_t i = 0;
    while (i < n && state_ != State::Done && state_ != State::Bad) {
      const char c = p[i];
      switch (state_) {
        case State::Size:
          if (std::isxdigit(static_cast<unsigned char>(c))) {
            if (++digits_ > 12) return bad(i);
            size_ = size_ * 16 + hexValue(c);
          } else if (digits_ > 0 && c == ';') {
            state_ = State::Extension;
          } else if (digits_ > 0 && c == '\r') {
            state_ = State::SizeLf;
          } else {
            return bad(i);
          }
          ++i;
          break;
        case State::Extension:
          if (c == '\r') state_ = State::SizeLf;
          if (++lineBytes_ > 4096) return bad(i);
          ++i;
          break;
        case State::SizeLf:
          if (c != '\n') return bad(i);
          ++i;
          state_ = size_ == 0 ? State::Trailer : State::Data;
          lineBytes_ = 0;
          break;
        case State::Data: {
          const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(size_, n - i));
          out.append(p + i, take);
          i += take;
          size_ -= take;
          if (size_ == 0) state_ = State::DataCr;
          break;
        }
        case State::DataCr:
          if (c != '\r') return bad(i);
          ++i;
          state_ = State::DataLf;
          break;
        case State::DataLf:
          if (c != '\n') return bad(i);
          ++i;
          state_ = State::Size;
          digits_ = 0;
          size_ = 0;
          lineBytes_ = 0;
          break;
        case State::Trailer:
          if (c == '\r') {
            state_ = State::TrailerLf;
          } else if (++lineBytes_ > 8192) {
            return bad(i);
          }
          ++i;
          break;
        case State::TrailerLf:
          if (c != '\n') return bad(i);
          ++i;
          if (lineBytes_ == 0) {
            state_ = State::Done;
          } else {
            lineBytes_ = 0;
            state_ = State::Trailer;
          }
          break;
        case State::Done:
        case State::Bad:
          break;
      }
    }
    return i;
  }
  bool done() const { return state_ == State::Done; }
  bool isBad() const { return state_ == State::Bad; }

 private:
  enum class State { Size, Extension, SizeLf, Data, DataCr, DataLf, Trailer, TrailerLf, Done, Bad };
  std::size_t bad(std::size_t at) {
    state_ = State::Bad;
    return at;
  }
  State state_ = State::Size;
  int digits_ = 0;
  std::uint64_t size_ = 0;
  std::size_t lineBytes_ = 0;
};

// How a request's body is framed.
struct Framing {
  bool chunked = false;
  std::uint64_t length = 0;  // when not chunked
  bool expectContinue = false;
};

using FramingError = RequestError;

// Parses the head (request line and fields, without the blank line). Refuses what a proxy and
// this server could read differently (folded lines, both Content-Length and chunked).
std::optional<FramingError> parseHead(std::string_view text, RequestHead& head, Framing& framing) {
  auto badRequest = [](std::string message) {
    return FramingError{400, "bad_request", std::move(message)};
  };
  const auto lineEnd = text.find("\r\n");
  const std::string_view line = text.substr(0, lineEnd);
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return badRequest("the request line is malformed");
  head.method = std::string(line.substr(0, sp1));
  head.target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
  const std::string_view version = line.substr(sp2 + 1);
  if (head.method.empty() || !std::all_of(head.method.begin(), head.method.end(), isTokenChar)) {
    return badRequest("the request method is malformed");
  }
  if (head.target.empty() || std::any_of(head.target.begin(), head.target.end(), [](char c) {
        return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f;
      })) {
    return badRequest("the request target is malformed");
  }
  if (version == "HTTP/1.1") {
    head.minorVersion = 1;
  } else if (version == "HTTP/1.0") {
    head.minorVersion = 0;
  } else {
    return FramingError{505, "http_version", "only HTTP/1.0 and HTTP/1.1 are served"};
  }
  std::optional<std::uint64_t> length;
  bool chunked = false;
  std::size_t pos = lineEnd == std::string_view::npos ? text.size() : lineEnd + 2;
  while (pos < text.size()) {
    auto end = text.find("\r\n", pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view field = text.substr(pos, end - pos);
    pos = end + 2;
    if (field.empty()) continue;
    if (field.front() == ' ' || field.front() == '\t') return badRequest("folded header lines are not accepted");
    const auto colon = field.find(':');
    if (colon == 0 || colon == std::string_view::npos ||
        !std::all_of(field.begin(), field.begin() + static_cast<std::ptrdiff_t>(colon), isTokenChar)) {
      return badRequest("a header field is malformed");
    }
    std::string_view value = field.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    if (std::any_of(value.begin(), value.end(), [](char c) { return c == '\0' || c == '\r' || c == '\n'; })) {
      return badRequest("a header value holds a control character");
    }
    std::string name = lower(field.substr(0, colon));
    if (name == "content-length") {
      std::uint64_t n = 0;
      const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (value.empty() || ec != std::errc() || ptr != value.data() + value.size() || (length && *length != n)) {
        return badRequest("Content-Length is malformed");
      }
      length = n;
    } else if (name == "transfer-encoding") {
      if (lower(value) != "chunked" || chunked) {
        return FramingError{501, "transfer_encoding", "only the chunked transfer coding is accepted"};
      }
      chunked = true;
    } else if (name == "expect") {
      if (lower(value) != "100-continue") return FramingError{417, "expectation_failed", "only Expect: 100-continue is understood"};
      framing.expectContinue = true;
    }
    head.headers.emplace_back(std::move(name), std::string(value));
  }
  if (chunked && length) return badRequest("a request may not carry both Content-Length and Transfer-Encoding");
  framing.chunked = chunked;
  framing.length = length.value_or(0);
  return std::nullopt;
}

}  // namespace

const std::string* RequestHead::header(std::string_view lowerName) const {
  for (const auto& [k, v] : headers) {
    if (k == lowerName) return &v;
  }
  return nullptr;
}

TlsContext::TlsContext(const std::string& certFile, const std::string& keyFile) {
  ctx_.reset(SSL_CTX_new(TLS_server_method()));
  if (!ctx_) throw StartupError("cannot create a TLS context: " + opensslError());
  SSL_CTX* c = ctx_.get();
  // Mozilla's "intermediate" profile narrowed to ECDHE: TLS 1.2 with forward-secret AEAD suites
  // only, and TLS 1.3 (whose suites are all of that kind); the server's order wins.
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  SSL_CTX_set_options(c, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_set_cipher_list(c,
                              "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                              "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                              "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305") != 1) {
    throw StartupError("cannot set the TLS cipher suites: " + opensslError());
  }
  if (SSL_CTX_use_certificate_chain_file(c, certFile.c_str()) != 1) {
    throw StartupError("cannot load the TLS certificate " + certFile + ": " + opensslError());
  }
  if (SSL_CTX_use_PrivateKey_file(c, keyFile.c_str(), SSL_FILETYPE_PEM) != 1) {
    throw StartupError("cannot load the TLS key " + keyFile + ": " + opensslError());
  }
  if (SSL_CTX_check_private_key(c) != 1) {
    throw StartupError("the TLS key " + keyFile + " does not match the certificate " + certFile);
  }
}

// A client connection: its socket, its TLS state and what was read but not yet consumed. The
// reactor owns it while it waits for a whole request; a worker owns it while serving one.
class Connection {
 public:
  enum class Phase { Handshake, Head, Body, Idle, Busy, Lingering };
  enum class Io { Done, WantRead, WantWrite, Closed };

  Connection(int fd, SSL_CTX* tls, std::string peerAddress) : peer(std::move(peerAddress)), fd_(fd) {
    group = addressGroup(peer);
    if (tls != nullptr) {
      ssl_.reset(SSL_new(tls));
      if (!ssl_ || SSL_set_fd(ssl_.get(), fd_) != 1) throw std::runtime_error("cannot set up TLS on a connection");
      SSL_set_accept_state(ssl_.get());
    }
  }
  ~Connection() {
    if (ssl_ && SSL_is_init_finished(ssl_.get())) SSL_shutdown(ssl_.get());  // best effort close_notify
    ::close(fd_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  int fd() const { return fd_; }
  bool tls() const { return ssl_ != nullptr; }

  // Non-blocking steps (the socket is always non-blocking).
  Io handshake() {
    if (!ssl_) return Io::Done;
    const int r = SSL_do_handshake(ssl_.get());
    if (r == 1) return Io::Done;
    return classify(r);
  }
  // Reads what is available into `in`, up to `cap` bytes held; Done when it read something or
  // hit the cap, WantRead/WantWrite when nothing more is there now, Closed on end or error.
  Io readAvailable(std::size_t cap) {
    bool any = false;
    char buf[16384];
    while (in.size() < cap) {
      const std::size_t want = std::min(sizeof buf, cap - in.size());
      std::size_t got = 0;
      const Io io = readOnce(buf, want, got);
      if (io != Io::Done) return any ? Io::Done : io;  // a close after data is seen on the next read
      in.append(buf, got);
      any = true;
    }
    return Io::Done;
  }
  // One read of up to `n` bytes.
  Io readOnce(char* buf, std::size_t n, std::size_t& got) {
    got = 0;
    if (ssl_) {
      ERR_clear_error();
      const int r = SSL_read_ex(ssl_.get(), buf, n, &got);
      if (r == 1) return Io::Done;
      return classify(r);
    }
    for (;;) {
      const ssize_t r = ::recv(fd_, buf, n, 0);
      if (r > 0) {
        got = static_cast<std::size_t>(r);
        return Io::Done;
      }
      if (r == 0) return Io::Closed;
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK ? Io::WantRead : Io::Closed;
    }
  }
  Io writeOnce(const char* buf, std::size_t n, std::size_t& sent) {
    sent = 0;
    if (ssl_) {
      ERR_clear_error();
      const int r = SSL_write_ex(ssl_.get(), buf, n, &sent);
      if (r == 1) return Io::Done;
      return classify(r);
    }
    for (;;) {
      const ssize_t r = ::send(fd_, buf, n, MSG_NOSIGNAL);
      if (r >= 0) {
        sent = static_cast<std::size_t>(r);
        return Io::Done;
      }
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK ? Io::WantWrite : Io::Closed;
    }
  }

  // Blocking steps for workers: each wait for the socket lasts at most `timeout`.
  bool waitFor(Io io, std::chrono::milliseconds timeout) {
    pollfd p{fd_, static_cast<short>(io == Io::WantWrite ? POLLOUT : POLLIN), 0};
    for (;;) {
      const int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
      if (r > 0) return (p.revents & (POLLIN | POLLOUT | POLLHUP)) != 0 && (p.revents & POLLNVAL) == 0;
      if (r == 0) return false;
      if (errno != EINTR) return false;
    }
  }
  bool writeAll(std::string_view data, std::chrono::milliseconds timeout) {
    while (!data.empty()) {
      std::size_t sent = 0;
      const Io io = writeOnce(data.data(), data.size(), sent);
      if (io == Io::Done) {
        data.remove_prefix(sent);
        continue;
      }
      if (io == Io::Closed || !waitFor(io, timeout)) return false;
    }
    return true;
  }
  // Reads at least one byte (consuming `in` first); 0 on end, timeout or error.
  std::size_t readBlocking(char* buf, std::size_t n, std::chrono::milliseconds timeout) {
    if (!in.empty()) {
      const std::size_t take = std::min(n, in.size());
      std::memcpy(buf, in.data(), take);
      in.erase(0, take);
      return take;
    }
    for (;;) {
      std::size_t got = 0;
      const Io io = readOnce(buf, n, got);
      if (io == Io::Done) return got;
      if (io == Io::Closed || !waitFor(io, timeout)) return 0;
    }
  }

  const std::string peer;
  std::string group;
  std::string in;  // bytes read and not yet consumed
  Phase phase = Phase::Handshake;
  Clock::time_point since = Clock::now();  // when the current phase began
  Clock::time_point deadline;
  std::uint32_t events = 0;  // what the reactor waits for

  // The request being read (phases Head and Body).
  RequestHead head;
  Framing framing;
  ChunkedDecoder chunks;
  std::string body;
  std::string pendingOut;  // a 100 Continue the reactor still has to write
  bool linger = false;     // set by the worker: drop what the client still sends, then close
  std::size_t dropped = 0;

 private:
  Io classify(int r) {
    switch (SSL_get_error(ssl_.get(), r)) {
      case SSL_ERROR_WANT_READ: return Io::WantRead;
      case SSL_ERROR_WANT_WRITE: return Io::WantWrite;
      default: return Io::Closed;
    }
  }
  int fd_;
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl_{nullptr, &SSL_free};
};

// The request body as a stream for routes that take it as it arrives: reads the fixed length or
// the chunks, each wait at most ioTimeout; end of stream on end, timeout or a broken framing.
class Exchange::BodyBuf : public std::streambuf {
 public:
  BodyBuf(Connection& conn, const Framing& framing, std::chrono::milliseconds timeout)
      : conn_(conn), chunked_(framing.chunked), remaining_(framing.length), timeout_(timeout) {}
  bool complete() const { return chunked_ ? chunks_.done() : remaining_ == 0; }

 protected:
  int_type underflow() override {
    if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
    out_.clear();
    while (out_.empty()) {
      if (complete() || failed_ || chunks_.isBad()) return traits_type::eof();
      char raw[16384];
      std::size_t want = sizeof raw;
      if (!chunked_) want = static_cast<std::size_t>(std::min<std::uint64_t>(want, remaining_));
      const std::size_t got = conn_.readBlocking(raw, want, timeout_);
      if (got == 0) {
        failed_ = true;
        return traits_type::eof();
      }
      if (chunked_) {
        const std::size_t used = chunks_.feed(raw, got, out_);
        if (used < got) conn_.in.insert(0, raw + used, got - used);  // the next request's bytes
      } else {
        out_.append(raw, got);
        remaining_ -= got;
      }
    }
    setg(out_.data(), out_.data(), out_.data() + out_.size());
    return traits_type::to_int_type(*gptr());
  }

 private:
  Connection& conn_;
  bool chunked_;
  std::uint64_t remaining_;
  std::chrono::milliseconds timeout_;
  ChunkedDecoder chunks_;
  std::string out_;
  bool failed_ = false;
};

// A chunked response body: buffers, writes a chunk per flush, goes bad when a write fails.
// The body of a streamed response: chunked, or when its length is declared up front (a file's
// download) the bytes as they are, no more than declared; a body that ends short is broken.
class Exchange::ChunkBuf : public std::streambuf {
 public:
  ChunkBuf(Connection& conn, std::chrono::milliseconds timeout,
           std::optional<std::uint64_t> length = std::nullopt)
      : conn_(conn), timeout_(timeout), length_(length) {
    buf_.resize(16384);
    setp(buf_.data(), buf_.data() + buf_.size());
  }
  bool end() {
    if (sync() != 0) return false;
    if (length_) return sent_ == *length_;
    return conn_.writeAll("0\r\n\r\n", timeout_);
  }
  bool broken() const { return broken_; }

 protected:
  int_type overflow(int_type c) override {
    if (sync() != 0) return traits_type::eof();
    if (!traits_type::eq_int_type(c, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(c);
      pbump(1);
    }
    return traits_type::not_eof(c);
  }
  int sync() override {
    if (broken_) return -1;
    const auto n = static_cast<std::size_t>(pptr() - pbase());
    if (n == 0) return 0;
    if (length_) {
      setp(buf_.data(), buf_.data() + buf_.size());
      if (n > *length_ - sent_ || !conn_.writeAll(std::string_view(buf_.data(), n), timeout_)) {
        broken_ = true;  // more than declared: the client could not tell it from the next answer
        return -1;
      }
      sent_ += n;
      return 0;
    }
    char size[32];
    const int len = std::snprintf(size, sizeof size, "%zx\r\n", n);
    std::string chunk(size, static_cast<std::size_t>(len));
    chunk.append(pbase(), n);
    chunk += "\r\n";
    setp(buf_.data(), buf_.data() + buf_.size());
    if (!conn_.writeAll(chunk, timeout_)) {
      broken_ = true;
      return -1;
    }
    return 0;
  }

 private:
  Connection& conn_;
  std::chrono::milliseconds timeout_;
  std::optional<std::uint64_t> length_;
  std::uint64_t sent_ = 0;
  std::vector<char> buf_;
  bool broken_ = false;
};

Exchange::Exchange(Connection& conn, RequestHead head, Body kind, std::string body,
                   std::optional<RequestError> error, const Limits& limits)
    : conn_(conn),
      head_(std::move(head)),
      kind_(kind),
      body_(std::move(body)),
      error_(std::move(error)),
      limits_(limits) {
  const std::string* connection = head_.header("connection");
  const std::string c = connection ? lower(*connection) : "";
  keepAlive_ = head_.minorVersion == 1 ? c.find("close") == std::string::npos
                                       : c.find("keep-alive") != std::string::npos;
  if (kind_ == Body::TooLarge || error_) keepAlive_ = false;
}

Exchange::~Exchange() = default;

std::istream& Exchange::bodyStream() {
  if (!bodyStream_) {
    Framing framing;
    if (kind_ == Body::Streamed) {
      framing.chunked = head_.header("transfer-encoding") != nullptr;
      if (const auto* cl = head_.header("content-length")) framing.length = std::stoull(*cl);
    }
    bodyBuf_ = std::make_unique<BodyBuf>(conn_, framing, limits_.ioTimeout);
    bodyStream_ = std::make_unique<std::istream>(bodyBuf_.get());
  }
  return *bodyStream_;
}

bool Exchange::bodyUnread() const {
  return kind_ == Body::TooLarge || (kind_ == Body::Streamed && (!bodyBuf_ || !bodyBuf_->complete()));
}

void Exchange::writeHead(int status, const Headers& headers, const std::string& framing) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reasonPhrase(status) + "\r\n";
  out += "Date: " + httpDate() + "\r\n";
  for (const auto& [k, v] : headers) {
    // A header value never carries a line break into the response.
    if (v.find_first_of("\r\n") != std::string::npos || k.find_first_of("\r\n:") != std::string::npos) continue;
    out += k + ": " + v + "\r\n";
  }
  out += framing;
  if (bodyUnread()) keepAlive_ = false;
  if (!keepAlive_) {
    out += "Connection: close\r\n";
  } else {
    // Clients that honour the hint (Node's agents, curl) drop an idle connection a second before
    // the listener cuts it, so none sends a request on a connection being closed (ECONNRESET).
    const auto idle = std::chrono::duration_cast<std::chrono::seconds>(limits_.idleTimeout).count();
    out += "Keep-Alive: timeout=" + std::to_string(idle > 1 ? idle - 1 : 1) + "\r\n";
  }
  out += "\r\n";
  responded_ = true;
  if (!conn_.writeAll(out, limits_.ioTimeout)) broken_ = true;
}

void Exchange::send(int status, const Headers& headers, std::string_view body, bool headOnly,
                    std::optional<std::uint64_t> headLength) {
  const bool noBody = status == 204 || status == 304 || (status >= 100 && status < 200);
  const std::uint64_t length = headOnly && headLength ? *headLength : body.size();
  writeHead(status, headers, noBody ? std::string() : "Content-Length: " + std::to_string(length) + "\r\n");
  if (!broken_ && !noBody && !headOnly && !body.empty() && !conn_.writeAll(body, limits_.ioTimeout)) broken_ = true;
}

std::ostream& Exchange::sendChunked(int status, const Headers& headers) {
  writeHead(status, headers, "Transfer-Encoding: chunked\r\n");
  chunkBuf_ = std::make_unique<ChunkBuf>(conn_, limits_.ioTimeout);
  chunkStream_ = std::make_unique<std::ostream>(chunkBuf_.get());
  if (broken_) chunkStream_->setstate(std::ios::badbit);
  return *chunkStream_;
}

std::ostream& Exchange::sendStreamed(int status, const Headers& headers, std::uint64_t length) {
  writeHead(status, headers, "Content-Length: " + std::to_string(length) + "\r\n");
  chunkBuf_ = std::make_unique<ChunkBuf>(conn_, limits_.ioTimeout, length);
  chunkStream_ = std::make_unique<std::ostream>(chunkBuf_.get());
  if (broken_) chunkStream_->setstate(std::ios::badbit);
  return *chunkStream_;
}

Exchange::After Exchange::finish() {
  if (chunkBuf_ && !broken_ && !chunkBuf_->end()) broken_ = true;
  if (!responded_ || broken_) return After::Close;
  // An unread or partly read body: what follows on the connection is not a request.
  if (bodyUnread()) return After::Linger;
  return keepAlive_ ? After::KeepAlive : After::Close;
}

// The reactor and the workers of one listener.
class HttpListener::Impl {
 public:
  Impl(Options options, Handler handler, Logger& log)
      : options_(std::move(options)), handler_(std::move(handler)), log_(log) {}

  ~Impl() { stop(); }

  void start() {
    // OpenSSL writes to the socket with write(2): a client that vanished mid-response must end
    // that response, not the process.
    struct sigaction current {};
    if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) ::signal(SIGPIPE, SIG_IGN);
    bind();
    epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
    wake_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epoll_ < 0 || wake_ < 0) throw StartupError("cannot create the " + options_.name + " listener's event loop");
    watch(listen_, EPOLLIN);
    watch(wake_, EPOLLIN);
    running_ = true;
    reactor_ = std::thread([this] { reactorLoop(); });
    for (int i = 0; i < std::max(1, options_.workers); ++i) workers_.emplace_back([this] { workerLoop(); });
  }

  void stop() {
    if (!running_.exchange(false)) {
      closeFds();
      return;
    }
    wakeReactor();
    if (reactor_.joinable()) reactor_.join();
    {
      auto q = queue_.lock();
      q->stopping = true;
      for (int fd : q->busy) ::shutdown(fd, SHUT_RDWR);
    }
    queueCv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
    queue_.lock()->jobs.clear();
    conns_.clear();
    closeFds();
  }

  int port() const { return port_; }

 private:
  struct Job {
    std::unique_ptr<Connection> conn;
    Exchange::Body kind = Exchange::Body::None;
    std::optional<FramingError> error;
  };
  struct Queue {
    std::deque<Job> jobs;
    std::set<int> busy;  // descriptors being served, to shut down on stop
    std::vector<std::unique_ptr<Connection>> returned;  // served, waiting for their next request
    bool stopping = false;
  };

  void closeFds() {
    for (int* fd : {&listen_, &epoll_, &wake_}) {
      if (*fd >= 0) ::close(*fd);
      *fd = -1;
    }
  }

  void bind() {
    addrinfo hints{};
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    const std::string port = std::to_string(options_.port);
    const std::string where = options_.address + ":" + port;
    if (::getaddrinfo(options_.address.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) {
      throw StartupError("cannot listen on " + where + " for " + options_.name + ": not a numeric address");
    }
    std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(res, &freeaddrinfo);
    listen_ = ::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_ < 0) throw StartupError("cannot create a socket for " + where + ": " + std::strerror(errno));
    const int one = 1;
    const int zero = 0;
    ::setsockopt(listen_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (res->ai_family == AF_INET6) ::setsockopt(listen_, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (::bind(listen_, res->ai_addr, res->ai_addrlen) != 0 || ::listen(listen_, 1024) != 0) {
      const std::string why = std::strerror(errno);
      throw StartupError("cannot listen on " + where + " for " + options_.name + ": " + why +
                         " (is another vcrmd or service using the port?)");
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    ::getsockname(listen_, reinterpret_cast<sockaddr*>(&ss), &len);
    port_ = ntohs(ss.ss_family == AF_INET ? reinterpret_cast<sockaddr_in&>(ss).sin_port
                                          : reinterpret_cast<sockaddr_in6&>(ss).sin6_port);
  }

  void watch(int fd, std::uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    ::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
  }

  void wakeReactor() {
    const std::uint64_t one = 1;
    if (wake_ >= 0) (void)!::write(wake_, &one, sizeof one);
  }

  // ---- reactor ----

  static bool pending(Connection::Phase p) {
    return p == Connection::Phase::Handshake || p == Connection::Phase::Head || p == Connection::Phase::Body;
  }

  // Keeps the count of connections still waiting for a whole request, per address group; `since`
  // is when the connection last started waiting (eviction closes the oldest first).
  void setPhase(Connection& c, Connection::Phase p) {
    if (pending(c.phase) != pending(p)) {
      auto& n = pendingByGroup_[c.group];
      n = pending(p) ? n + 1 : n - 1;
      if (n == 0) pendingByGroup_.erase(c.group);
      c.since = Clock::now();
    }
    c.phase = p;
  }

  void reactorLoop() {
    epoll_event events[256];
    auto lastSweep = Clock::now();
    while (running_) {
      const int n = ::epoll_wait(epoll_, events, 256, 100);
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == listen_) {
          acceptAll();
        } else if (fd == wake_) {
          std::uint64_t v;
          (void)!::read(wake_, &v, sizeof v);
          takeReturned();
        } else if (auto it = conns_.find(fd); it != conns_.end()) {
          progress(*it->second);
        }
      }
      if (Clock::now() - lastSweep >= std::chrono::milliseconds(100)) {
        sweep();
        lastSweep = Clock::now();
      }
    }
    // Stopping: connections waiting for a request are simply closed.
    for (auto& [fd, c] : conns_) forgetPending(*c);
    conns_.clear();
  }

  void forgetPending(Connection& c) {
    if (pending(c.phase)) setPhase(c, Connection::Phase::Idle);
  }

  void acceptAll() {
    for (;;) {
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      const int fd = ::accept4(listen_, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE) {
          // Out of descriptors: make room by closing the oldest waiting connection.
          if (!evictOldest(nullptr)) break;
          continue;
        }
        break;
      }
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      std::unique_ptr<Connection> c;
      try {
        c = std::make_unique<Connection>(fd, options_.tls ? options_.tls->get() : nullptr, peerText(ss));
      } catch (const std::exception&) {
        ::close(fd);
        continue;
      }
      if (busyCount_ + conns_.size() >= options_.limits.maxConnections && !evictOldest(nullptr)) {
        continue;  // every connection is being served: refuse this one
      }
      const auto g = pendingByGroup_.find(c->group);
      if (g != pendingByGroup_.end() && g->second >= options_.limits.maxPendingPerAddress) {
        evictOldest(&c->group);
      }
      c->phase = Connection::Phase::Idle;  // so that setPhase counts it as pending
      setPhase(*c, Connection::Phase::Handshake);
      c->deadline = Clock::now() + options_.limits.headerTimeout;
      Connection& ref = *c;
      conns_.emplace(fd, std::move(c));
      ref.events = EPOLLIN;
      watch(fd, EPOLLIN);
      progress(ref);
    }
  }

  // Closes the oldest connection waiting for a request: of `group` when given (only those still
  // in the handshake or header phase), else any. False when there is none.
  bool evictOldest(const std::string* group) {
    Connection* oldest = nullptr;
    for (auto& [fd, c] : conns_) {
      if (group && (c->group != *group || !pending(c->phase))) continue;
      if (!oldest || c->since < oldest->since) oldest = c.get();
    }
    if (!oldest) return false;
    ++evicted_;
    if (Clock::now() - lastEvictionLog_ >= std::chrono::minutes(1)) {
      log_.warn(kComponent, "CONNECTIONS_EVICTED",
                options_.name + ": closed " + std::to_string(evicted_) +
                    " waiting connections to make room, the last from " + oldest->peer +
                    " (too many connections without a whole request)");
      evicted_ = 0;
      lastEvictionLog_ = Clock::now();
    }
    close(*oldest);
    return true;
  }

  void close(Connection& c) {
    forgetPending(c);
    const int fd = c.fd();
    ::epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
    conns_.erase(fd);
  }

  void sweep() {
    const auto now = Clock::now();
    std::vector<Connection*> expired;
    for (auto& [fd, c] : conns_) {
      if (c->deadline <= now) expired.push_back(c.get());
    }
    for (Connection* c : expired) close(*c);
  }

  void takeReturned() {
    std::vector<std::unique_ptr<Connection>> back;
    {
      auto q = queue_.lock();
      back.swap(q->returned);
    }
    for (auto& c : back) {
      --busyCount_;
      c->phase = c->linger ? Connection::Phase::Lingering : Connection::Phase::Idle;
      c->since = Clock::now();
      c->deadline = Clock::now() + (c->linger ? options_.limits.lingerTimeout : options_.limits.idleTimeout);
      if (c->linger) {
        c->dropped = c->in.size();
        c->in.clear();
        if (!c->tls()) ::shutdown(c->fd(), SHUT_WR);  // the answer is complete; TLS keeps its channel
      }
      c->head = RequestHead{};
      c->framing = Framing{};
      c->chunks = ChunkedDecoder{};
      c->body.clear();
      Connection& ref = *c;
      const int fd = c->fd();
      conns_.emplace(fd, std::move(c));
      ref.events = EPOLLIN;
      watch(fd, EPOLLIN);
      progress(ref);  // a pipelined request may already be buffered
    }
  }

  void rearm(Connection& c, Connection::Io io) {
    const std::uint32_t want = io == Connection::Io::WantWrite ? EPOLLOUT : EPOLLIN;
    if (want == c.events) return;
    c.events = want;
    epoll_event ev{};
    ev.events = want;
    ev.data.fd = c.fd();
    ::epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd(), &ev);
  }

  // Moves a connection on as far as the bytes it has allow; dispatches it to a worker once a
  // whole request is in.
  void progress(Connection& c) {
    using Phase = Connection::Phase;
    using Io = Connection::Io;
    if (c.phase == Phase::Handshake) {
      const Io io = c.handshake();
      if (io == Io::Closed) return close(c);
      if (io != Io::Done) return rearm(c, io);
      setPhase(c, Phase::Head);  // the header deadline still counts from connect
    }
    if (c.phase == Phase::Lingering) {
      for (;;) {
        char buf[16384];
        std::size_t got = 0;
        const Io io = c.readOnce(buf, sizeof buf, got);
        if (io == Io::Closed || (c.dropped += got) > options_.limits.lingerBytes) return close(c);
        if (io != Io::Done) return rearm(c, io);
      }
    }
    if (!c.pendingOut.empty()) {
      std::size_t sent = 0;
      const Io io = c.writeOnce(c.pendingOut.data(), c.pendingOut.size(), sent);
      if (io == Io::Closed) return close(c);
      c.pendingOut.erase(0, sent);
      if (!c.pendingOut.empty()) return rearm(c, io == Io::Done ? Io::WantWrite : io);
    }
    const std::size_t cap = c.phase == Phase::Body ? options_.maxBodyBytes + options_.limits.maxHeaderBytes
                                                   : options_.limits.maxHeaderBytes + 4;
    const Io io = c.readAvailable(cap);
    if (c.phase == Phase::Idle) {
      if (c.in.empty()) {
        if (io == Io::Closed) return close(c);
        return rearm(c, io);
      }
      setPhase(c, Phase::Head);
      c.deadline = Clock::now() + options_.limits.headerTimeout;
    }
    if (c.phase == Phase::Head) {
      const auto end = c.in.find("\r\n\r\n");
      if (end == std::string::npos) {
        if (c.in.size() > options_.limits.maxHeaderBytes) {
          return dispatch(c, Exchange::Body::None,
                          FramingError{431, "headers_too_large",
                                       "the request head is larger than " +
                                           std::to_string(options_.limits.maxHeaderBytes) + " bytes"});
        }
        if (io == Io::Closed) return close(c);
        return rearm(c, io == Io::Done ? Io::WantRead : io);
      }
      c.head.peer = c.peer;
      auto error = parseHead(std::string_view(c.in).substr(0, end), c.head, c.framing);
      c.in.erase(0, end + 4);
      if (error) return dispatch(c, Exchange::Body::None, std::move(error));
      const bool hasBody = c.framing.chunked || c.framing.length > 0;
      if (!hasBody) return dispatch(c, Exchange::Body::None);
      if (options_.streamsBody && options_.streamsBody(c.head)) return dispatch(c, Exchange::Body::Streamed);
      if (!c.framing.chunked && c.framing.length > options_.maxBodyBytes) {
        return dispatch(c, Exchange::Body::TooLarge);
      }
      setPhase(c, Phase::Body);
      const auto allowed = c.framing.chunked ? options_.maxBodyBytes : c.framing.length;
      c.deadline = Clock::now() + options_.limits.headerTimeout +
                   std::chrono::milliseconds(allowed * 1000 / std::max<std::size_t>(1, options_.limits.minBodyBytesPerSecond));
      if (c.framing.expectContinue) {
        c.pendingOut = "HTTP/1.1 100 Continue\r\n\r\n";
        return progress(c);
      }
    }
    if (c.phase == Phase::Body) {
      if (c.framing.chunked) {
        const std::size_t used = c.chunks.feed(c.in.data(), c.in.size(), c.body);
        c.in.erase(0, used);
        if (c.chunks.isBad()) {
          return dispatch(c, Exchange::Body::None, FramingError{400, "bad_request", "the chunked body is malformed"});
        }
        if (c.body.size() > options_.maxBodyBytes) return dispatch(c, Exchange::Body::TooLarge);
        if (c.chunks.done()) return dispatch(c, Exchange::Body::Buffered);
      } else {
        const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(c.framing.length - c.body.size(), c.in.size()));
        c.body.append(c.in, 0, take);
        c.in.erase(0, take);
        if (c.body.size() == c.framing.length) return dispatch(c, Exchange::Body::Buffered);
      }
      if (io == Io::Closed) return close(c);
      return rearm(c, io == Io::Done ? Io::WantRead : io);
    }
  }

  void dispatch(Connection& c, Exchange::Body kind, std::optional<FramingError> error = std::nullopt) {
    forgetPending(c);
    c.phase = Connection::Phase::Busy;
    const int fd = c.fd();
    ::epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
    auto node = conns_.extract(fd);
    ++busyCount_;
    {
      auto q = queue_.lock();
      q->busy.insert(fd);
      q->jobs.push_back(Job{std::move(node.mapped()), kind, std::move(error)});
    }
    queueCv_.notify_one();
  }

  // ---- workers ----

  void workerLoop() {
    for (;;) {
      Job job;
      {
        auto q = queue_.lock();
        q.waitFor(queueCv_, std::chrono::hours(24 * 365), [&] { return q->stopping || !q->jobs.empty(); });
        if (q->stopping) return;
        job = std::move(q->jobs.front());
        q->jobs.pop_front();
      }
      const int fd = job.conn->fd();
      Exchange::After after = Exchange::After::Close;
      try {
        after = serve(job);
      } catch (const std::exception& e) {
        log_.error(kComponent, "REQUEST_FAILED", options_.name + ": " + e.what());
      }
      job.conn->linger = after == Exchange::After::Linger;
      auto q = queue_.lock();
      q->busy.erase(fd);
      if (after != Exchange::After::Close && !q->stopping) {
        q->returned.push_back(std::move(job.conn));
        wakeReactor();
      } else {
        job.conn.reset();
        --busyCount_;
      }
    }
  }

  Exchange::After serve(Job& job) {
    Connection& conn = *job.conn;
    Exchange ex(conn, std::move(conn.head), job.kind, std::move(conn.body), std::move(job.error), options_.limits);
    conn.head = RequestHead{};
    conn.body.clear();
    if (!ex.framingError() && job.kind == Exchange::Body::Streamed && ex.head().header("expect") != nullptr) {
      if (!conn.writeAll("HTTP/1.1 100 Continue\r\n\r\n", options_.limits.ioTimeout)) return Exchange::After::Close;
    }
    handler_(ex);
    return ex.finish();
  }

  Options options_;
  Handler handler_;
  Logger& log_;
  int listen_ = -1;
  int epoll_ = -1;
  int wake_ = -1;
  int port_ = 0;
  std::atomic<bool> running_{false};
  std::thread reactor_;
  std::vector<std::thread> workers_;
  // Reactor-only state.
  std::unordered_map<int, std::unique_ptr<Connection>> conns_;
  std::unordered_map<std::string, std::size_t> pendingByGroup_;
  std::atomic<std::size_t> busyCount_{0};
  std::size_t evicted_ = 0;
  Clock::time_point lastEvictionLog_{};
  // Shared between the reactor and the workers.
  Guarded<Queue> queue_;
  std::condition_variable queueCv_;
};

HttpListener::HttpListener(Options options, Handler handler, Logger& log)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler), log)) {}
HttpListener::~HttpListener() = default;
void HttpListener::start() { impl_->start(); }
void HttpListener::stop() { impl_->stop(); }
int HttpListener::port() const { return impl_->port(); }

}  // namespace vcrm::httpd
