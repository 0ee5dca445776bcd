// Slow and idle clients against a real vcrmd: hundreds of connections that never finish a
// request (idle before the TLS handshake, or trickling header bytes) must not stall sign-in,
// bookings, /healthz, the redirect listener or the bridge-events listener, and a busy console
// with 64 requests in flight from one address is still served.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <future>
#include <latch>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "api_times.h"
#include "bridge_setup.h"
#include "eventually.h"
#include "vcrmd_process.h"

using vcrm::test::HttpsClient;
using vcrm::test::VcrmdProcess;
using Clock = std::chrono::steady_clock;

namespace {

int connectTo(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// True when the server has closed (or reset) the connection.
bool closedByServer(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  char c;
  return ::recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK) <= 0;
}

// Connections that never finish a request, kept open (and re-opened when the server cuts them)
// until stopped or `maxRun` has passed: `idle` connect and send nothing (not even a TLS hello),
// `trickling` finish the TLS handshake when `tls` and then send one header byte per round.
class SlowClients {
 public:
  SlowClients(int port, bool tls, int idle, int trickling, std::chrono::seconds maxRun)
      : port_(port), tls_(tls), idleCount_(idle), trickleCount_(trickling), maxRun_(maxRun) {
    ctx_.reset(SSL_CTX_new(TLS_client_method()));
    SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_NONE, nullptr);
    for (int i = 0; i < idleCount_; ++i) idle_.push_back(connectTo(port_));
    for (int i = 0; i < trickleCount_; ++i) trickle_.push_back(openTrickler());
    thread_ = std::thread([this] { run(); });
  }
  ~SlowClients() {
    stop();
    for (int fd : idle_) ::close(fd);
    for (auto& t : trickle_) closeTrickler(t);
  }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int cuts() const { return cuts_; }
  int open() const { return static_cast<int>(idle_.size() + trickle_.size()); }

 private:
  struct Trickler {
    int fd = -1;
    SSL* ssl = nullptr;
    std::size_t sent = 0;
  };

  Trickler openTrickler() {
    Trickler t;
    t.fd = connectTo(port_);
    if (t.fd < 0 || !tls_) return t;
    t.ssl = SSL_new(ctx_.get());
    SSL_set_fd(t.ssl, t.fd);
    if (SSL_connect(t.ssl) != 1) {
      ERR_clear_error();
      closeTrickler(t);
    }
    return t;
  }
  static void closeTrickler(Trickler& t) {
    if (t.ssl) SSL_free(t.ssl);
    if (t.fd >= 0) ::close(t.fd);
    t = Trickler{};
  }
  bool sendByte(Trickler& t) {
    static const std::string head = "GET /api/v1/session HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";
    const char c = t.sent < head.size() ? head[t.sent] : 'a';
    bool ok = false;
    if (t.ssl) {
      ok = SSL_write(t.ssl, &c, 1) == 1;
      if (!ok) ERR_clear_error();
    } else if (t.fd >= 0) {
      ok = ::send(t.fd, &c, 1, MSG_NOSIGNAL) == 1;
    }
    ++t.sent;
    return ok && !closedByServer(t.fd);
  }

  void run() {
    const auto until = Clock::now() + maxRun_;
    while (!stop_ && Clock::now() < until) {
      for (int& fd : idle_) {
        if (fd < 0 || closedByServer(fd)) {
          if (fd >= 0) ::close(fd);
          ++cuts_;
          fd = connectTo(port_);
        }
      }
      for (auto& t : trickle_) {
        if (stop_) break;
        if (t.fd < 0 || !sendByte(t)) {
          closeTrickler(t);
          ++cuts_;
          t = openTrickler();
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the trickle's pace
    }
  }

  int port_;
  bool tls_;
  int idleCount_;
  int trickleCount_;
  std::chrono::seconds maxRun_;
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx_{nullptr, &SSL_CTX_free};
  std::vector<int> idle_;
  std::vector<Trickler> trickle_;
  std::atomic<bool> stop_{false};
  std::atomic<int> cuts_{0};
  std::thread thread_;
};

// One plain-HTTP request on a fresh connection; returns the status (0 when none came) and how
// long it took.
std::pair<int, std::chrono::milliseconds> plainRequest(int port, const std::string& request) {
  const auto started = Clock::now();
  const int fd = connectTo(port);
  int status = 0;
  if (fd >= 0) {
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
      std::string in;
      char buf[4096];
      ssize_t n;
      while (in.find("\r\n") == std::string::npos && (n = ::recv(fd, buf, sizeof buf, 0)) > 0) in.append(buf, n);
      if (in.rfind("HTTP/1.1 ", 0) == 0 && in.size() >= 12) status = std::stoi(in.substr(9, 3));
    }
    ::close(fd);
  }
  return {status, std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started)};
}

class SlowClientsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::signal(SIGPIPE, SIG_IGN);
    VcrmdProcess::Options o;
    o.settings = {"bridge.probe_seconds=1"};
    app_ = std::make_unique<VcrmdProcess>(o);
    app_->start();
  }
  std::unique_ptr<VcrmdProcess> app_;
};

// Times one call and keeps the worst.
template <typename F>
auto timed(std::chrono::milliseconds& worst, F&& f) {
  const auto started = Clock::now();
  auto r = f();
  worst = std::max(worst, std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started));
  return r;
}

TEST_F(SlowClientsTest, HundredsOfStalledConnectionsDoNotSlowSignInBookingsOrHealth) {
  HttpsClient setup = app_->client();
  ASSERT_EQ(setup.loginBearer("admin", app_->adminPassword()).status, 200);
  auto bridge = vcrm::test::registerJanusBridge(setup, "east-1", 1000);
  ASSERT_TRUE(vcrm::test::eventually(
      [&] { return setup.get("/api/v1/bridges/" + std::to_string(bridge.id)).body.find("\"up\"") != std::string::npos; },
      std::chrono::seconds(10)));

  // 100 idle before the handshake and 100 trickling header bytes after it, for 14 s: past the
  // header deadline, so the server's cuts and the clients' re-connects happen meanwhile.
  SlowClients attack(app_->httpsPort(), true, 100, 100, std::chrono::seconds(14));

  std::chrono::milliseconds worst{0};
  int bookings = 0;
  const auto until = Clock::now() + std::chrono::seconds(9);
  for (int round = 0; Clock::now() < until; ++round) {
    HttpsClient client = app_->client();  // every request on a fresh connection
    auto login = timed(worst, [&] { return client.loginBearer("admin", app_->adminPassword()); });
    ASSERT_EQ(login.status, 200) << login.body;
    const std::string body = R"({"name":"Under attack )" + std::to_string(round) + R"(","start":")" +
                             vcrm::test::isoIn(std::chrono::hours(2 + round)) +
                             R"(","duration_minutes":30,"ports":2,"bridge_id":)" + std::to_string(bridge.id) + "}";
    auto booked = timed(worst, [&] { return client.postJson("/api/v1/conferences", body); });
    ASSERT_EQ(booked.status, 201) << booked.body;
    ++bookings;
    auto health = timed(worst, [&] { return client.get("/healthz"); });
    ASSERT_EQ(health.status, 200) << health.body;
  }

  // A busy console: 64 requests in flight at once from the same address, during the attack.
  std::vector<int> statuses(64);
  std::latch go(64);
  std::vector<std::thread> console;
  const auto burstStarted = Clock::now();
  for (int i = 0; i < 64; ++i) {
    console.emplace_back([&, i, client = setup]() mutable {
      go.arrive_and_wait();
      statuses[static_cast<std::size_t>(i)] = client.get("/api/v1/conferences?limit=5").status;
    });
  }
  for (auto& t : console) t.join();
  const auto burst = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - burstStarted);
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 200), 64);

  attack.stop();
  std::cout << "normal client: " << bookings << " rounds, worst request " << worst.count()
            << " ms; 64 in flight served in " << burst.count() << " ms; " << attack.cuts()
            << " stalled connections cut by the server" << std::endl;
  EXPECT_GE(bookings, 3);
  EXPECT_LT(worst, std::chrono::milliseconds(1000));
  EXPECT_GT(attack.cuts(), 100) << "the server should cut connections that do not finish a request";
  EXPECT_EQ(setup.get("/healthz").status, 200);
}

TEST_F(SlowClientsTest, TheRedirectAndBridgeEventListenersKeepAnsweringUnderStalledConnections) {
  ASSERT_GE(app_->httpPort(), 0);
  ASSERT_GE(app_->eventsPort(), 0);
  SlowClients redirectAttack(app_->httpPort(), false, 100, 100, std::chrono::seconds(10));
  SlowClients eventsAttack(app_->eventsPort(), false, 100, 100, std::chrono::seconds(10));
  std::chrono::milliseconds worstRedirect{0};
  std::chrono::milliseconds worstEvents{0};
  const auto until = Clock::now() + std::chrono::seconds(7);
  while (Clock::now() < until) {
    auto [redirect, redirectTime] = plainRequest(app_->httpPort(), "GET /conferences HTTP/1.1\r\nHost: localhost\r\n\r\n");
    EXPECT_EQ(redirect, 301);
    worstRedirect = std::max(worstRedirect, redirectTime);
    // A post for a bridge that does not exist: answered (refused), not left hanging.
    auto [events, eventsTime] = plainRequest(
        app_->eventsPort(), "POST /api/v1/bridges/999/events HTTP/1.1\r\nHost: localhost\r\n"
                            "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n[]");
    EXPECT_GE(events, 400);
    EXPECT_LT(events, 500);
    worstEvents = std::max(worstEvents, eventsTime);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // a steady client's pace
  }
  redirectAttack.stop();
  eventsAttack.stop();
  std::cout << "worst redirect " << worstRedirect.count() << " ms, worst bridge event post "
            << worstEvents.count() << " ms" << std::endl;
  EXPECT_LT(worstRedirect, std::chrono::milliseconds(1000));
  EXPECT_LT(worstEvents, std::chrono::milliseconds(1000));
  EXPECT_GT(redirectAttack.cuts() + eventsAttack.cuts(), 100);
}

// A whole request then silence, and a head that never ends (one byte every 500 ms, each read
// well inside any per-read timeout): both connections are closed within a few seconds.
TEST_F(SlowClientsTest, IdleKeepAliveAndEndlessHeadersAreCutWithinSeconds) {
  auto idleConnection = std::async(std::launch::async, [&] {
    const int fd = connectTo(app_->httpPort());
    if (fd < 0) return std::make_pair(std::string("no connection"), std::chrono::seconds(99));
    const std::string request = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    (void)!::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    const auto started = Clock::now();
    timeval tv{15, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string in;
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) in.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    if (n < 0) in += " [not closed by the server]";
    return std::make_pair(in, std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started));
  });
  auto endlessHead = std::async(std::launch::async, [&] {
    const int fd = connectTo(app_->httpPort());
    const auto started = Clock::now();
    const std::string head = "GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";
    bool cut = fd < 0 || ::send(fd, head.data(), head.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(head.size());
    while (!cut && Clock::now() - started < std::chrono::seconds(15)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      cut = ::send(fd, "a", 1, MSG_NOSIGNAL) != 1 || closedByServer(fd);
    }
    if (fd >= 0) ::close(fd);
    return std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started);
  });
  const auto [answer, idleClosedAfter] = idleConnection.get();
  EXPECT_EQ(answer.rfind("HTTP/1.1 301", 0), 0u) << answer;
  EXPECT_EQ(answer.find("[not closed"), std::string::npos) << answer;
  EXPECT_LT(idleClosedAfter, std::chrono::seconds(8));
  EXPECT_LT(endlessHead.get(), std::chrono::seconds(8));
}

}  // namespace
