// The HTTP listener on its own, over plain sockets: request framing (chunked bodies, pipelining,
// 100-continue), refusals of what a proxy could read differently, the body cap, the cap on
// waiting connections per address, and stopping while a response still streams.
#include "vcrm/daemon/http_listener.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <string>
#include <thread>

#include "eventually.h"

using vcrm::httpd::Exchange;
using vcrm::httpd::HttpListener;
using Clock = std::chrono::steady_clock;

namespace {

class Socket {
 public:
  explicit Socket(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      throw std::runtime_error("connect failed");
  }
  ~Socket() { ::close(fd_); }
  void send(const std::string& s) {
    ASSERT_EQ(::send(fd_, s.data(), s.size(), MSG_NOSIGNAL), static_cast<ssize_t>(s.size()));
  }
  // Reads until `marker` has been seen `count` times, the server closes, or 5 s pass.
  std::string readUntil(const std::string& marker, int count = 1) {
    std::string in;
    char buf[4096];
    auto seen = [&] {
      int n = 0;
      for (auto p = in.find(marker); p != std::string::npos; p = in.find(marker, p + marker.size()))
        ++n;
      return n;
    };
    while (seen() < count) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      in.append(buf, static_cast<std::size_t>(n));
    }
    return in;
  }
  std::string readAll() { return readUntil("\x01never\x02"); }
  bool closedByServer() {
    char c;
    return ::recv(fd_, &c, 1, 0) == 0;
  }

 private:
  int fd_ = -1;
};

class HttpListenerTest : public ::testing::Test {
 protected:
  void start(vcrm::httpd::Limits limits = {}, std::size_t maxBody = 64) {
    std::signal(SIGPIPE, SIG_IGN);
    HttpListener::Options o;
    o.name = "test";
    o.address = "127.0.0.1";
    o.workers = 2;
    o.maxBodyBytes = maxBody;
    o.limits = limits;
    o.streamsBody = [](const vcrm::httpd::RequestHead& h) { return h.target == "/stream-in"; };
    listener_ = std::make_unique<HttpListener>(
        o, [this](Exchange& ex) { handle(ex); }, log_);
    listener_->start();
  }
  void TearDown() override {
    if (listener_) listener_->stop();
  }

  // Echoes what it was given: kind of body and the body; /stream-out streams until stopped.
  void handle(Exchange& ex) {
    if (const auto* e = ex.framingError()) {
      ex.send(e->status, {{"Content-Type", "text/plain"}}, e->code);
      return;
    }
    if (ex.head().target == "/stream-out") {
      std::ostream& os = ex.sendChunked(200, {{"Content-Type", "text/plain"}});
      while (os.good()) {
        os << "tick\n";
        os.flush();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      streamEnded_ = true;
      return;
    }
    // /sized-N-M: declares N bytes and writes M of them.
    if (ex.head().target.rfind("/sized-", 0) == 0) {
      const auto dash = ex.head().target.find('-', 7);
      const auto declared = std::stoull(ex.head().target.substr(7, dash - 7));
      const auto written = std::stoull(ex.head().target.substr(dash + 1));
      std::ostream& os = ex.sendStreamed(200, {{"Content-Type", "text/plain"}}, declared);
      for (std::uint64_t i = 0; i < written && os.good(); ++i) os.put('x');
      os.flush();
      sizedStreamGood_ = os.good();
      return;
    }
    std::string body;
    switch (ex.bodyKind()) {
      case Exchange::Body::None:
        body = "none:";
        break;
      case Exchange::Body::Buffered:
        body = "buffered:" + ex.body();
        break;
      case Exchange::Body::TooLarge:
        ex.send(413, {}, "too large");
        return;
      case Exchange::Body::Streamed: {
        std::string in((std::istreambuf_iterator<char>(ex.bodyStream())),
                       std::istreambuf_iterator<char>());
        body = "streamed:" + in;
        break;
      }
    }
    ex.send(200, {{"Content-Type", "text/plain"}},
            ex.head().method + " " + ex.head().target + " " + body);
  }

  int port() const { return listener_->port(); }

  vcrm::Logger log_{vcrm::LogLevel::Error};
  std::unique_ptr<HttpListener> listener_;
  std::atomic<bool> streamEnded_{false};
  std::atomic<bool> sizedStreamGood_{false};
};

TEST_F(HttpListenerTest, AChunkedBodyIsDecodedAndPipelinedRequestsAreAnsweredInOrder) {
  start();
  Socket s(port());
  s.send(
      "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n "
      "world\r\n0\r\nTrailer: t\r\n\r\n"
      "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
      "GET /c HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string in = s.readUntil("GET /c none:");
  const auto a = in.find("POST /a buffered:hello world");
  const auto b = in.find("POST /b buffered:abc");
  const auto c = in.find("GET /c none:");
  ASSERT_NE(a, std::string::npos) << in;
  ASSERT_NE(b, std::string::npos) << in;
  ASSERT_NE(c, std::string::npos) << in;
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
}

TEST_F(HttpListenerTest, ExpectContinueGetsItsInterimAnswerBeforeTheBodyIsSent) {
  start();
  Socket s(port());
  s.send("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(s.readUntil("\r\n\r\n").rfind("HTTP/1.1 100 Continue\r\n\r\n", 0), 0u);
  s.send("body");
  EXPECT_NE(s.readUntil("buffered:body").find("POST /a buffered:body"), std::string::npos);
}

TEST_F(HttpListenerTest, AmbiguousOrUnsupportedFramingIsRefusedAndTheConnectionClosed) {
  start();
  const std::pair<std::string, std::string> cases[] = {
      {"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc",
       "HTTP/1.1 400"},
      {"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc", "HTTP/1.1 400"},
      {"POST / HTTP/1.1\r\nContent-Length: -3\r\n\r\nabc", "HTTP/1.1 400"},
      {"POST / HTTP/1.1\r\nContent-Length: 3x\r\n\r\nabc", "HTTP/1.1 400"},
      {"GET / HTTP/1.1\r\nX-A: 1\r\n folded\r\n\r\n", "HTTP/1.1 400"},
      {"GET / HTTP/1.1\r\nBad Name: 1\r\n\r\n", "HTTP/1.1 400"},
      {"GET  HTTP/1.1\r\n\r\n", "HTTP/1.1 400"},
      {"GET / HTTP/2.0\r\n\r\n", "HTTP/1.1 505"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", "HTTP/1.1 501"},
      {"POST / HTTP/1.1\r\nExpect: something\r\nContent-Length: 1\r\n\r\na", "HTTP/1.1 417"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "HTTP/1.1 400"},
      {"GET / HTTP/1.1\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n", "HTTP/1.1 431"},
  };
  for (const auto& [request, expected] : cases) {
    Socket s(port());
    s.send(request);
    const std::string in = s.readAll();  // ends only because the server closes
    EXPECT_EQ(in.rfind(expected, 0), 0u) << request.substr(0, 80) << " -> " << in;
    EXPECT_NE(in.find("Connection: close"), std::string::npos) << in;
  }
}

TEST_F(HttpListenerTest, ABodyPastTheCapIs413AndAStreamedBodyReachesTheHandlerWhole) {
  start({}, 16);
  {
    Socket s(port());
    s.send("POST /a HTTP/1.1\r\nContent-Length: 17\r\n\r\n" + std::string(17, 'x'));
    EXPECT_EQ(s.readAll().rfind("HTTP/1.1 413", 0), 0u);
  }
  {
    Socket s(port());
    s.send("POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n11\r\n" + std::string(17, 'x') +
           "\r\n0\r\n\r\n");
    EXPECT_EQ(s.readAll().rfind("HTTP/1.1 413", 0), 0u);
  }
  {
    // Streamed routes are not capped here: their handler reads as much as it accepts.
    Socket s(port());
    const std::string big(100000, 'y');
    s.send("POST /stream-in HTTP/1.1\r\nContent-Length: " + std::to_string(big.size()) +
           "\r\n\r\n" + big);
    EXPECT_NE(s.readUntil("streamed:" + big).find("streamed:" + big), std::string::npos);
  }
}

TEST_F(HttpListenerTest, PastThePerAddressCapTheOldestWaitingConnectionIsClosed) {
  vcrm::httpd::Limits limits;
  limits.maxPendingPerAddress = 4;
  start(limits);
  std::vector<std::unique_ptr<Socket>> waiting;
  for (int i = 0; i < 4; ++i) {
    waiting.push_back(std::make_unique<Socket>(port()));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a clear order of age
  }
  Socket fresh(port());
  EXPECT_TRUE(waiting.front()->closedByServer());
  fresh.send("GET /x HTTP/1.1\r\n\r\n");
  EXPECT_NE(fresh.readUntil("none:").find("GET /x none:"), std::string::npos);
  waiting[1]->send("GET /y HTTP/1.1\r\n\r\n");
  EXPECT_NE(waiting[1]->readUntil("none:").find("GET /y none:"), std::string::npos);
}

// A streamed body of known length (a download) carries Content-Length, so a browser shows its
// size and progress; one that ends short closes the connection (the client sees it cut), and
// bytes past the length are never sent (they would read as the next answer).
TEST_F(HttpListenerTest, AStreamOfDeclaredLengthIsSentAsIsAndNeverShortOrLong) {
  start();
  Socket s(port());
  s.send("GET /sized-40000-40000 HTTP/1.1\r\n\r\nGET /after HTTP/1.1\r\n\r\n");
  const std::string in = s.readUntil("GET /after none:");
  EXPECT_NE(in.find("Content-Length: 40000\r\n"), std::string::npos) << in.substr(0, 300);
  EXPECT_EQ(in.find("Transfer-Encoding"), std::string::npos);
  const auto body = in.find("\r\n\r\n") + 4;
  EXPECT_EQ(in.substr(body, 40000), std::string(40000, 'x'));
  EXPECT_EQ(in.compare(body + 40000, 9, "HTTP/1.1 "), 0) << "the next answer follows at once";
  EXPECT_TRUE(sizedStreamGood_);

  Socket shortBody(port());
  shortBody.send("GET /sized-100-10 HTTP/1.1\r\n\r\n");
  const std::string cut = shortBody.readAll();  // until the server closes
  EXPECT_NE(cut.find("Content-Length: 100\r\n"), std::string::npos) << cut;
  EXPECT_EQ(cut.substr(cut.find("\r\n\r\n") + 4), std::string(10, 'x'));

  Socket longBody(port());
  longBody.send("GET /sized-10-100000 HTTP/1.1\r\n\r\n");
  const std::string capped = longBody.readAll();
  EXPECT_LE(capped.size() - (capped.find("\r\n\r\n") + 4), 10u) << "no byte past the length";
  EXPECT_FALSE(sizedStreamGood_) << "the handler's stream went bad past the length";
}

TEST_F(HttpListenerTest, StoppingEndsAStreamingResponseAtOnce) {
  start();
  Socket s(port());
  s.send("GET /stream-out HTTP/1.1\r\n\r\n");
  EXPECT_NE(s.readUntil("tick").find("tick"), std::string::npos);
  const auto started = Clock::now();
  listener_->stop();
  EXPECT_TRUE(streamEnded_);
  EXPECT_LT(Clock::now() - started, std::chrono::seconds(2));
}

}  // namespace
