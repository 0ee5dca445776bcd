// Bursts of bookings against a real vcrmd and a real Janus: many admins booking the same hour at
// once get exactly the bookings that fit and a 409 for the rest, never a 503 from an exhausted
// connection pool — with the default pool, with a pool of two, and while another bridge hangs.
#include <Poco/JSON/Array.h>
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <latch>
#include <map>
#include <thread>

#include "bridge_setup.h"
#include "eventually.h"
#include "vcrmd_process.h"

using vcrm::test::eventually;
using vcrm::test::HttpsClient;
using vcrm::test::VcrmdProcess;

namespace {

std::string isoIn(std::chrono::seconds fromNow) {
  const auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() + fromNow);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:00Z", &tm);
  return buf;
}

// A bridge address that takes connections and never answers: a listening socket nobody
// accepts on (the kernel completes the handshake from the backlog), as a hung Janus or a
// firewall that swallows packets looks to a client.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 1024) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      ::close(fd_);
      throw std::runtime_error("cannot listen on 127.0.0.1");
    }
    port_ = ntohs(a.sin_port);
  }
  ~SilentListener() { ::close(fd_); }
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

class BookingBurstTest : public ::testing::Test {
 protected:
  void startApp(std::vector<std::string> extra = {}) {
    VcrmdProcess::Options o;
    o.settings = {"conference.prelaunch_seconds=3", "bridge.probe_seconds=1"};
    o.settings.insert(o.settings.end(), extra.begin(), extra.end());
    app_ = std::make_unique<VcrmdProcess>(o);
    app_->start();
    admin_ = std::make_unique<HttpsClient>(app_->client());
    ASSERT_EQ(admin_->loginBearer("admin", app_->adminPassword()).status, 200);
  }

  std::int64_t addJanusBridge(const std::string& name, int capacity) {
    auto registered = vcrm::test::registerJanusBridge(*admin_, name, capacity);
    janus_.push_back(std::move(registered.janus));
    const auto id = registered.id;
    EXPECT_TRUE(eventually([&] { return health(id) == "up"; }, std::chrono::seconds(10)))
        << admin_->get("/api/v1/bridges").body;
    return id;
  }

  // A bridge whose addresses accept connections and never answer.
  std::int64_t addSilentBridge(const std::string& name, int capacity) {
    silent_.push_back(std::make_unique<SilentListener>());
    const std::string base = "http://127.0.0.1:" + std::to_string(silent_.back()->port());
    auto r = admin_->postJson(
        "/api/v1/bridges",
        R"({"name":")" + name + R"(","url":")" + base + R"(/janus","admin_url":")" + base +
            R"(/admin","admin_secret":"x","capacity_ports":)" + std::to_string(capacity) + "}");
    EXPECT_EQ(r.status, 201) << r.body;
    return r.json()->getValue<std::int64_t>("id");
  }

  std::string health(std::int64_t bridge) {
    return admin_->get("/api/v1/bridges/" + std::to_string(bridge))
        .json()
        ->getValue<std::string>("health");
  }

  // `clients` admins at once each book `ports` ports for the same hour, two hours from now;
  // `where` picks the bridge or pool. Returns how many answers had each status.
  std::map<int, int> burst(int clients, int ports, const std::string& where) {
    const std::string body = R"({"name":"Burst","start":")" + isoIn(std::chrono::hours(2)) +
                             R"(","duration_minutes":60,"ports":)" + std::to_string(ports) + "," +
                             where + "}";
    std::vector<int> statuses(static_cast<std::size_t>(clients));
    std::vector<std::string> bodies(static_cast<std::size_t>(clients));
    std::latch go(clients);
    std::vector<std::thread> threads;
    for (int i = 0; i < clients; ++i) {
      threads.emplace_back([&, i, client = *admin_]() mutable {
        go.arrive_and_wait();
        auto r = client.postJson("/api/v1/conferences", body);
        statuses[static_cast<std::size_t>(i)] = r.status;
        bodies[static_cast<std::size_t>(i)] = r.body;
      });
    }
    for (auto& t : threads) t.join();
    std::map<int, int> counts;
    for (std::size_t i = 0; i < statuses.size(); ++i) {
      ++counts[statuses[i]];
      if (statuses[i] != 201 && statuses[i] != 409)
        ADD_FAILURE() << statuses[i] << ": " << bodies[i];
    }
    return counts;
  }

  // Ports booked on `bridge` in the burst's hour, as the list shows them.
  int bookedPorts(std::int64_t bridge) {
    auto arr = admin_->get("/api/v1/conferences?state=scheduled&limit=1000")
                   .json()
                   ->getArray("conferences");
    int sum = 0;
    for (std::size_t i = 0; i < arr->size(); ++i) {
      auto c = arr->getObject(static_cast<unsigned>(i));
      if (c->getValue<std::int64_t>("bridge_id") == bridge) sum += c->getValue<int>("ports");
    }
    return sum;
  }

  std::unique_ptr<VcrmdProcess> app_;
  std::unique_ptr<HttpsClient> admin_;
  std::vector<std::unique_ptr<vcrm::test::JanusProcess>> janus_;
  std::vector<std::unique_ptr<SilentListener>> silent_;
};

TEST_F(BookingBurstTest, SixtyFourBookingsAtTheCapacityEdgeGetExactlyTheOnesThatFit) {
  startApp();
  const auto bridge = addJanusBridge("j1", 100);
  // 3 ports each: 33 fit (99 ports), the 34th would need 102.
  auto counts = burst(64, 3, R"("bridge_id":)" + std::to_string(bridge));
  EXPECT_EQ(counts[201], 33);
  EXPECT_EQ(counts[409], 31);
  EXPECT_EQ(counts[503], 0);
  EXPECT_EQ(bookedPorts(bridge), 99);
}

TEST_F(BookingBurstTest, TheIssuesThirtyClientsBookingTenPortsEachGetTenBookingsAndTwentyRefusals) {
  startApp();
  const auto bridge = addJanusBridge("j1", 100);
  auto counts = burst(30, 10, R"("bridge_id":)" + std::to_string(bridge));
  EXPECT_EQ(counts[201], 10);
  EXPECT_EQ(counts[409], 20);
  EXPECT_EQ(bookedPorts(bridge), 100);
}

TEST_F(BookingBurstTest, APoolOfTwoConnectionsStillServesTheWholeBurst) {
  startApp({"db.pool_size=2"});
  const auto bridge = addJanusBridge("j1", 100);
  auto counts = burst(64, 3, R"("bridge_id":)" + std::to_string(bridge));
  EXPECT_EQ(counts[201], 33);
  EXPECT_EQ(counts[409], 31);
  EXPECT_EQ(counts[503], 0);
  EXPECT_EQ(bookedPorts(bridge), 99);
}

TEST_F(BookingBurstTest, TheBurstIsServedWhileAnotherBridgeOfThePoolDoesNotAnswer) {
  startApp();
  const auto silent = addSilentBridge("hung", 100);
  const auto bridge = addJanusBridge("j1", 100);
  // The hung bridge is found down (its probe times out) and takes no bookings; the pool's
  // bookings all land on the bridge that answers while the prober keeps waiting on the other.
  ASSERT_TRUE(eventually([&] { return health(silent) == "down"; }, std::chrono::seconds(15)));
  auto counts = burst(64, 3, R"("pool":"default")");
  EXPECT_EQ(counts[201], 33);
  EXPECT_EQ(counts[409], 31);
  EXPECT_EQ(counts[503], 0);
  EXPECT_EQ(bookedPorts(bridge), 99);
  EXPECT_EQ(bookedPorts(silent), 0);
  EXPECT_EQ(health(bridge), "up");
}

TEST_F(BookingBurstTest, HungBridgesDoNotDelayTheProbeOfOneThatAnswers) {
  startApp();
  // Each hung bridge costs a probe its full 3 s timeout. Probed one after another, three of
  // them keep a new bridge "unknown" for 9 s or more; probed at once, it is up within a pass.
  std::vector<std::int64_t> hung;
  for (const char* name : {"a-hung", "b-hung", "c-hung"}) hung.push_back(addSilentBridge(name, 10));
  ASSERT_TRUE(eventually([&] { return health(hung.back()) == "down"; }, std::chrono::seconds(30)));
  auto registered = vcrm::test::registerJanusBridge(*admin_, "z-live", 10);
  janus_.push_back(std::move(registered.janus));
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually([&] { return health(registered.id) == "up"; }, std::chrono::seconds(20)));
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, std::chrono::milliseconds(6000))
      << "the live bridge took "
      << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms to show up";
}

}  // namespace
