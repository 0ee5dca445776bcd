// The Janus driver against a real Janus 1.1 (VideoRoom over the Admin API): health probes and
// the causes they name, rooms, participants joined through Janus's own HTTP API, kick, mute,
// publisher caps; and the event-handler parser fed with bodies Janus's sampleevh really posts,
// then with hostile ones.
#include <Poco/Base64Decoder.h>
#include <Poco/JSON/Array.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include "eventually.h"
#include "janus_process.h"
#include "vcrm/daemon/janus.h"

using namespace std::chrono_literals;
using Poco::JSON::Object;
using vcrm::janus::BridgeError;
using vcrm::janus::Driver;
using vcrm::janus::Endpoint;
using vcrm::janus::Event;
using vcrm::janus::RoomSpec;
using vcrm::test::JanusParticipant;
using vcrm::test::JanusProcess;
using vcrm::test::eventually;

namespace {

// Room numbers unique across tests and concurrent runs of this binary.
std::int64_t nextRoom() {
  static std::atomic<std::int64_t> n{(static_cast<std::int64_t>(getpid()) % 100000) * 1000 + 1};
  return n++;
}

RoomSpec roomSpec(std::int64_t room, std::optional<std::string> pin = std::nullopt,
                  int publishers = 3) {
  RoomSpec s;
  s.room = room;
  s.description = "test room " + std::to_string(room);
  s.secret = "room-secret-" + std::to_string(room);
  s.pin = std::move(pin);
  s.publishers = publishers;
  return s;
}

bool hasParticipant(Driver& d, std::int64_t room, std::int64_t id) {
  for (const auto& p : d.listParticipants(room)) {
    if (p.id == id) return true;
  }
  return false;
}

// ----------------------------------------------------------------------------------------
// One Janus for the suite.

class JanusDriverTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      janus_ = std::make_unique<JanusProcess>();
    } catch (const std::exception& e) {
      startError_ = e.what();
    }
  }
  static void TearDownTestSuite() { janus_.reset(); }
  void SetUp() override { ASSERT_TRUE(janus_) << "Janus did not start: " << startError_; }

  static Endpoint endpoint(const std::string& secret = {}) {
    Endpoint e;
    e.url = janus_->httpUrl();
    e.adminUrl = janus_->adminUrl();
    e.adminSecret = secret.empty() ? janus_->adminSecret() : secret;
    return e;
  }

  static inline std::unique_ptr<JanusProcess> janus_;
  static inline std::string startError_;
};

TEST_F(JanusDriverTest, ProbeOfARunningBridgeIsUpWithVersionAndLatency) {
  Driver d(endpoint());
  const auto r = d.probe();
  EXPECT_TRUE(r.up) << r.cause << ": " << r.message;
  EXPECT_EQ(r.version.substr(0, 2), "1.") << r.version;
  EXPECT_GE(r.latencyMs, 0);
  EXPECT_LT(r.latencyMs, 3000);
  EXPECT_TRUE(r.cause.empty());
}

TEST_F(JanusDriverTest, ProbeWithAWrongAdminSecretSaysCredentials) {
  Driver d(endpoint("not-the-secret"));
  const auto r = d.probe();
  EXPECT_FALSE(r.up);
  EXPECT_EQ(r.cause, "credentials") << r.message;
  EXPECT_NE(r.message.find("admin secret"), std::string::npos) << r.message;
  EXPECT_EQ(r.message.find("not-the-secret"), std::string::npos)
      << "a secret leaked: " << r.message;
}

TEST_F(JanusDriverTest, RoomOperationsWithAWrongAdminSecretSayCredentials) {
  Driver d(endpoint("not-the-secret"));
  try {
    d.roomExists(nextRoom());
    FAIL() << "expected BridgeError";
  } catch (const BridgeError& e) {
    EXPECT_EQ(e.cause(), "credentials") << e.what();
  }
}

TEST_F(JanusDriverTest, CreateIsIdempotentAndDestroyTellsWhetherTheRoomWasThere) {
  Driver d(endpoint());
  const auto spec = roomSpec(nextRoom(), "1234");
  EXPECT_FALSE(d.roomExists(spec.room));
  EXPECT_TRUE(d.createRoom(spec));
  EXPECT_FALSE(d.createRoom(spec)) << "an existing room is not an error";
  EXPECT_TRUE(d.roomExists(spec.room));
  EXPECT_TRUE(d.listParticipants(spec.room).empty());

  EXPECT_TRUE(d.destroyRoom(spec.room, spec.secret));
  EXPECT_FALSE(d.destroyRoom(spec.room, spec.secret)) << "a missing room is not an error";
  EXPECT_FALSE(d.roomExists(spec.room));
  try {
    d.listParticipants(spec.room);
    FAIL() << "expected BridgeError";
  } catch (const BridgeError& e) {
    EXPECT_EQ(e.cause(), "plugin");
    EXPECT_EQ(e.code(), "no_such_room");
    EXPECT_EQ(e.janusCode(), 426);
    EXPECT_NE(std::string(e.what()).find("No such room"), std::string::npos) << e.what();
  }
}

TEST_F(JanusDriverTest, RoomsAreHiddenFromThePublicList) {
  Driver d(endpoint());
  const auto spec = roomSpec(nextRoom());
  ASSERT_TRUE(d.createRoom(spec));
  Object::Ptr list = new Object;
  list->set("request", "list");
  const auto rooms = janus_->videoRoom(list)->getArray("list");
  ASSERT_TRUE(rooms);
  for (std::size_t i = 0; i < rooms->size(); ++i) {
    EXPECT_NE(rooms->getObject(static_cast<unsigned>(i))->getValue<std::int64_t>("room"),
              spec.room);
  }
  d.destroyRoom(spec.room, spec.secret);
}

TEST_F(JanusDriverTest, InvalidRoomSpecsAreRefusedBeforeReachingJanus) {
  Driver d(endpoint());
  auto spec = roomSpec(nextRoom());
  spec.publishers = 0;
  EXPECT_THROW(d.createRoom(spec), vcrm::InvalidInput);
  spec = roomSpec(0);
  EXPECT_THROW(d.createRoom(spec), vcrm::InvalidInput);
}

TEST_F(JanusDriverTest, DestroyWithAWrongRoomSecretIsRefused) {
  Driver d(endpoint());
  const auto spec = roomSpec(nextRoom());
  ASSERT_TRUE(d.createRoom(spec));
  try {
    d.destroyRoom(spec.room, "wrong");
    FAIL() << "expected BridgeError";
  } catch (const BridgeError& e) {
    EXPECT_EQ(e.cause(), "plugin");
    EXPECT_EQ(e.code(), "room_unauthorized");
    EXPECT_EQ(e.janusCode(), 433);
  }
  EXPECT_TRUE(d.roomExists(spec.room));
  EXPECT_TRUE(d.destroyRoom(spec.room, spec.secret));
}

TEST_F(JanusDriverTest, AParticipantWithThePinShowsUpWithItsDisplayName) {
  Driver d(endpoint());
  const auto spec = roomSpec(nextRoom(), "4321");
  ASSERT_TRUE(d.createRoom(spec));
  {
    JanusParticipant alice(janus_->httpUrl(), spec.room, "Alice Ünicode", "4321");
    ASSERT_GT(alice.id(), 0);
    vcrm::janus::Participant seen;
    ASSERT_TRUE(eventually(
        [&] {
          for (const auto& p : d.listParticipants(spec.room)) {
            if (p.id == alice.id()) seen = p;
          }
          return seen.id == alice.id();
        },
        2s));
    EXPECT_EQ(seen.display, "Alice Ünicode");
    EXPECT_FALSE(seen.publisher) << "no media is flowing, so Janus does not count it as publishing";

    alice.leave();
    EXPECT_TRUE(eventually([&] { return !hasParticipant(d, spec.room, alice.id()); }, 2s));
  }
  EXPECT_TRUE(d.destroyRoom(spec.room, spec.secret));
}

TEST_F(JanusDriverTest, AWrongOrMissingPinIsRefusedWithJanusText) {
  Driver d(endpoint());
  const auto spec = roomSpec(nextRoom(), "4321");
  ASSERT_TRUE(d.createRoom(spec));
  try {
    JanusParticipant mallory(janus_->httpUrl(), spec.room, "Mallory", "0000");
    FAIL() << "joined with a wrong pin";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("wrong pin"), std::string::npos) << e.what();
  }
  EXPECT_THROW(JanusParticipant(janus_->httpUrl(), spec.room, "Mallory"), std::runtime_error);
  EXPECT_TRUE(d.listParticipants(spec.room).empty());
  EXPECT_TRUE(d.destroyRoom(spec.room, spec.secret));
}

TEST_F(JanusDriverTest, JoiningARoomThatDoesNotExistIsRefused) {
  try {
    JanusParticipant p(janus_->httpUrl(), nextRoom(), "Nobody");
    FAIL() << "joined a room that does not exist";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("No such room"), std::string::npos) << e.what();
  }
}

TEST_F(JanusDriverTest, KickRemovesTheParticipantAndTellsIt) {
  Driver d(endpoint());
  const auto spec = roomSpec(nextRoom());
  ASSERT_TRUE(d.createRoom(spec));
  JanusParticipant bob(janus_->httpUrl(), spec.room, "Bob");
  JanusParticipant carol(janus_->httpUrl(), spec.room, "Carol");
  ASSERT_TRUE(eventually([&] { return hasParticipant(d, spec.room, bob.id()); }, 2s));

  try {
    d.kick(spec.room, "wrong", bob.id());
    FAIL() << "kicked with a wrong room secret";
  } catch (const BridgeError& e) {
    EXPECT_EQ(e.code(), "room_unauthorized") << e.what();
  }
  d.kick(spec.room, spec.secret, bob.id());
  EXPECT_TRUE(eventually([&] { return !hasParticipant(d, spec.room, bob.id()); }, 2s));
  EXPECT_TRUE(hasParticipant(d, spec.room, carol.id())) << "only Bob was kicked";
  const auto told = bob.waitForEvent(
      [](const Object::Ptr& data) { return data->optValue<std::string>("reason", "") == "kicked"; },
      2s);
  EXPECT_TRUE(told) << "Bob's handle got no kicked event";

  try {
    d.kick(spec.room, spec.secret, bob.id());
    FAIL() << "kicked someone who is not there";
  } catch (const BridgeError& e) {
    EXPECT_EQ(e.cause(), "plugin");
    EXPECT_EQ(e.code(), "no_such_participant");
    EXPECT_EQ(e.janusCode(), 428);
  }
  EXPECT_TRUE(d.destroyRoom(spec.room, spec.secret));
}

// Janus 1.1's `moderate` works per stream ("mid" + "mute"); a publisher that has joined but
// sends nothing has no stream, so Janus answers 428 "No such stream <mid>". The driver looks
// the streams up first and, with none, has nothing to mute.
TEST_F(JanusDriverTest, MutingAPublisherWithoutMediaIsANoOpAndJanusHasNoStreamToModerate) {
  Driver d(endpoint());
  const auto spec = roomSpec(nextRoom());
  ASSERT_TRUE(d.createRoom(spec));
  JanusParticipant dave(janus_->httpUrl(), spec.room, "Dave");

  Object::Ptr moderate = new Object;
  moderate->set("request", "moderate");
  moderate->set("room", spec.room);
  moderate->set("secret", spec.secret);
  moderate->set("id", dave.id());
  moderate->set("mid", "0");
  moderate->set("mute", true);
  const auto janusAnswer = janus_->videoRoom(moderate);
  EXPECT_EQ(janusAnswer->optValue<int>("error_code", 0), 428);
  EXPECT_EQ(janusAnswer->optValue<std::string>("error", ""), "No such stream 0");

  EXPECT_NO_THROW(d.mute(spec.room, spec.secret, dave.id(), true));
  EXPECT_NO_THROW(d.mute(spec.room, spec.secret, dave.id(), false));
  EXPECT_TRUE(hasParticipant(d, spec.room, dave.id())) << "muting must not drop anyone";
  EXPECT_FALSE(
      dave.waitForEvent([](const Object::Ptr& data) { return data->has("moderation"); }, 300ms))
      << "no stream was moderated";

  try {
    d.mute(spec.room, spec.secret, dave.id() + 1, true);
    FAIL() << "muted someone who is not there";
  } catch (const BridgeError& e) {
    EXPECT_EQ(e.code(), "no_such_participant") << e.what();
  }
  EXPECT_TRUE(d.destroyRoom(spec.room, spec.secret));
}

// A publisher that negotiated audio and video: mute moderates its audio stream (and only that),
// Janus tells the participant, and unmute undoes it.
TEST_F(JanusDriverTest, MutingAPublisherWithStreamsModeratesItsAudioAndUnmuteUndoesIt) {
  Driver d(endpoint());
  const auto spec = roomSpec(nextRoom());
  ASSERT_TRUE(d.createRoom(spec));
  JanusParticipant erin(janus_->httpUrl(), spec.room, "Erin");
  const auto answer = erin.publishWithoutMedia(true);
  EXPECT_NE(answer.find("m=audio"), std::string::npos) << answer;
  EXPECT_NE(answer.find("m=video"), std::string::npos) << answer;

  const auto moderation = [&](const std::string& what) {
    return erin.waitForEvent(
        [&](const Object::Ptr& data) { return data->optValue<std::string>("moderation", "") == what; }, 3s);
  };
  ASSERT_NO_THROW(d.mute(spec.room, spec.secret, erin.id(), true));
  auto muted = moderation("muted");
  ASSERT_TRUE(muted) << "Janus never told the participant it was muted";
  EXPECT_EQ(muted->optValue<std::string>("mid", ""), "0") << "the audio stream, not the video";
  EXPECT_EQ(muted->optValue<std::int64_t>("id", 0), erin.id());

  ASSERT_NO_THROW(d.mute(spec.room, spec.secret, erin.id(), false));
  // Janus sends its events in order: had the video been muted too, its "muted" would come
  // before the "unmuted". (A long poll abandoned on a timeout would swallow the next event, so
  // the test never waits for an event that should not come.)
  std::vector<std::string> seen;
  auto unmuted = erin.waitForEvent(
      [&](const Object::Ptr& data) {
        if (!data->has("moderation")) return false;
        seen.push_back(data->getValue<std::string>("moderation") + " " + data->optValue<std::string>("mid", ""));
        return data->getValue<std::string>("moderation") == "unmuted";
      },
      3s);
  ASSERT_TRUE(unmuted) << "Janus never told the participant it was unmuted";
  EXPECT_EQ(unmuted->optValue<std::string>("mid", ""), "0");
  EXPECT_EQ(seen, std::vector<std::string>{"unmuted 0"}) << "only the audio stream is moderated";
  EXPECT_TRUE(hasParticipant(d, spec.room, erin.id()));

  // A second driver (a restarted vcrmd: no cached handles) finds the streams by scanning.
  Driver fresh(endpoint());
  ASSERT_NO_THROW(fresh.mute(spec.room, spec.secret, erin.id(), true));
  EXPECT_TRUE(moderation("muted"));
  EXPECT_TRUE(d.destroyRoom(spec.room, spec.secret));
}

// Janus 1.1 checks the publisher cap only when a PeerConnection comes up, so media-less joins
// are never refused with "Maximum number of publishers (N) already reached": the test checks
// the cap Janus now holds, and that joins without media still pass.
TEST_F(JanusDriverTest, EditRoomChangesThePublisherCap) {
  Driver d(endpoint());
  const auto spec = roomSpec(nextRoom(), std::nullopt, 2);
  ASSERT_TRUE(d.createRoom(spec));

  const auto capOnBridge = [&] {
    // Private rooms are not listed; make it public just to read the cap Janus holds.
    Object::Ptr pub = new Object;
    pub->set("request", "edit");
    pub->set("room", spec.room);
    pub->set("secret", spec.secret);
    pub->set("new_is_private", false);
    EXPECT_EQ(janus_->videoRoom(pub)->optValue<std::string>("videoroom", ""), "edited");
    Object::Ptr list = new Object;
    list->set("request", "list");
    const auto rooms = janus_->videoRoom(list)->getArray("list");
    for (std::size_t i = 0; rooms && i < rooms->size(); ++i) {
      const auto r = rooms->getObject(static_cast<unsigned>(i));
      if (r->getValue<std::int64_t>("room") == spec.room) return r->getValue<int>("max_publishers");
    }
    return -1;
  };
  EXPECT_EQ(capOnBridge(), 2);
  d.editRoom(spec.room, spec.secret, 5);
  EXPECT_EQ(capOnBridge(), 5);
  d.editRoom(spec.room, spec.secret, 1);
  EXPECT_EQ(capOnBridge(), 1);

  JanusParticipant one(janus_->httpUrl(), spec.room, "One");
  JanusParticipant two(janus_->httpUrl(), spec.room, "Two");
  EXPECT_EQ(d.listParticipants(spec.room).size(), 2u);

  EXPECT_THROW(d.editRoom(spec.room, spec.secret, 0), vcrm::InvalidInput);
  try {
    d.editRoom(spec.room, "wrong", 4);
    FAIL() << "edited with a wrong room secret";
  } catch (const BridgeError& e) {
    EXPECT_EQ(e.code(), "room_unauthorized") << e.what();
  }
  try {
    d.editRoom(nextRoom(), "x", 4);
    FAIL() << "edited a room that does not exist";
  } catch (const BridgeError& e) {
    EXPECT_EQ(e.code(), "no_such_room") << e.what();
  }
  EXPECT_TRUE(d.destroyRoom(spec.room, spec.secret));
}

TEST_F(JanusDriverTest, DestroyingARoomWithParticipantsEmptiesIt) {
  Driver d(endpoint());
  const auto spec = roomSpec(nextRoom());
  ASSERT_TRUE(d.createRoom(spec));
  JanusParticipant erin(janus_->httpUrl(), spec.room, "Erin");
  ASSERT_TRUE(eventually([&] { return hasParticipant(d, spec.room, erin.id()); }, 2s));
  EXPECT_TRUE(d.destroyRoom(spec.room, spec.secret));
  EXPECT_TRUE(erin.waitForEvent(
      [](const Object::Ptr& data) {
        return data->optValue<std::string>("videoroom", "") == "destroyed";
      },
      2s));
  EXPECT_FALSE(d.roomExists(spec.room));
}

// ----------------------------------------------------------------------------------------
// Probes that need no Janus: each failure names its likely cause.

TEST(JanusProbeTest, AClosedPortSaysPort) {
  Endpoint e;
  e.adminUrl = "http://127.0.0.1:" + std::to_string(vcrm::test::freeLoopbackPort()) + "/admin";
  e.adminSecret = "x";
  const auto r = Driver(e).probe();
  EXPECT_FALSE(r.up);
  EXPECT_EQ(r.cause, "port") << r.message;
}

// A name with an empty label fails inside the resolver itself (no DNS query leaves the
// machine), which is all this test needs: an address that cannot be resolved.
TEST(JanusProbeTest, AnUnresolvableHostSaysAddress) {
  Endpoint e;
  e.adminUrl = "http://nonexistent..invalid:7088/admin";
  e.adminSecret = "x";
  const auto r = Driver(e).probe();
  EXPECT_FALSE(r.up);
  EXPECT_EQ(r.cause, "address") << r.message;
}

TEST(JanusProbeTest, AnUnusableUrlSaysAddress) {
  for (const std::string url : {"not a url", "ftp://127.0.0.1/admin", ""}) {
    Endpoint e;
    e.adminUrl = url;
    const auto r = Driver(e).probe();
    EXPECT_FALSE(r.up) << url;
    EXPECT_EQ(r.cause, "address") << url << ": " << r.message;
  }
}

// A loopback listener, closed when the test ends.
struct Listener {
  explicit Listener(int backlog) {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, backlog) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      throw std::runtime_error("cannot listen on 127.0.0.1");
    }
    port = ntohs(a.sin_port);
  }
  ~Listener() { close(fd); }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  int fd = -1;
  int port = 0;
};

TEST(JanusProbeTest, AServerThatAcceptsButNeverAnswersSaysFirewall) {
  Listener l(8);
  std::atomic<bool> done{false};
  std::vector<int> held;
  std::thread acceptor([&] {
    while (!done) {
      pollfd p{l.fd, POLLIN, 0};
      if (poll(&p, 1, 50) == 1) {
        const int c = accept(l.fd, nullptr, nullptr);
        if (c >= 0) held.push_back(c);  // held open, never answered
      }
    }
  });
  Endpoint e;
  e.adminUrl = "http://127.0.0.1:" + std::to_string(l.port) + "/admin";
  e.adminSecret = "x";
  e.timeout = 300ms;
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = Driver(e).probe();
  const auto took = std::chrono::steady_clock::now() - t0;
  done = true;
  acceptor.join();
  for (int c : held) close(c);
  EXPECT_FALSE(r.up);
  EXPECT_EQ(r.cause, "firewall") << r.message;
  EXPECT_NE(r.message.find("no answer within 300 ms"), std::string::npos) << r.message;
  EXPECT_LT(took, 3s);
}

// A full accept queue makes Linux drop further SYNs, as a firewall that drops packets does:
// the connection attempt itself never completes.
TEST(JanusProbeTest, DroppedConnectionAttemptsSayFirewall) {
  Listener l(0);
  std::vector<int> fillers;
  for (int i = 0; i < 4; ++i) {
    const int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(l.port));
    // Non-blocking: the first ones fill the queue, the rest are left hanging like ours.
    (void)connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a);
    fillers.push_back(c);
  }
  // Wait until the kernel has completed handshakes into the whole accept queue: on a listening
  // socket TCP_INFO reports the queue's length (unacked) and its limit (sacked).
  ASSERT_TRUE(eventually([&] {
    tcp_info info{};
    socklen_t len = sizeof info;
    return getsockopt(l.fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0 && info.tcpi_unacked > info.tcpi_sacked;
  }, 5s, 5ms)) << "the accept queue never filled";
  Endpoint e;
  e.adminUrl = "http://127.0.0.1:" + std::to_string(l.port) + "/admin";
  e.adminSecret = "x";
  e.timeout = 300ms;
  const auto r = Driver(e).probe();
  for (int c : fillers) close(c);
  EXPECT_FALSE(r.up);
  EXPECT_EQ(r.cause, "firewall") << r.message;
}

TEST(JanusProbeTest, AServerThatIsNotJanusSaysProtocol) {
  Listener l(8);
  std::thread server([&] {
    const int c = accept(l.fd, nullptr, nullptr);
    std::array<char, 4096> buf{};
    (void)!read(c, buf.data(), buf.size());
    const std::string resp =
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 13\r\n"
        "Connection: close\r\n\r\n<html></html>";
    (void)!write(c, resp.data(), resp.size());
    close(c);
  });
  Endpoint e;
  e.adminUrl = "http://127.0.0.1:" + std::to_string(l.port) + "/admin";
  e.adminSecret = "x";
  const auto r = Driver(e).probe();
  server.join();
  EXPECT_FALSE(r.up);
  EXPECT_EQ(r.cause, "protocol") << r.message;
}

// ----------------------------------------------------------------------------------------
// Event-handler posts: what sampleevh really sends, recorded by a tiny backend.

class EventRecorder {
 public:
  EventRecorder()
      : socket_(Poco::Net::SocketAddress("127.0.0.1", 0)),
        server_(new Factory(this), socket_, new Poco::Net::HTTPServerParams) {
    server_.start();
  }
  ~EventRecorder() { server_.stopAll(true); }
  EventRecorder(const EventRecorder&) = delete;
  EventRecorder& operator=(const EventRecorder&) = delete;

  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(socket_.address().port()) + "/janus-events";
  }
  struct Post {
    std::string authorization;
    std::string contentType;
    std::string body;
  };
  std::vector<Post> posts() {
    std::lock_guard<std::mutex> lock(mutex_);
    return posts_;
  }

 private:
  struct Handler : Poco::Net::HTTPRequestHandler {
    explicit Handler(EventRecorder* r) : rec(r) {}
    void handleRequest(Poco::Net::HTTPServerRequest& req,
                       Poco::Net::HTTPServerResponse& resp) override {
      Post p;
      p.authorization = req.get("Authorization", "");
      p.contentType = req.getContentType();
      Poco::StreamCopier::copyToString(req.stream(), p.body);
      {
        std::lock_guard<std::mutex> lock(rec->mutex_);
        rec->posts_.push_back(std::move(p));
      }
      resp.setStatus(Poco::Net::HTTPResponse::HTTP_OK);
      resp.setContentLength(0);
      resp.send();
    }
    EventRecorder* rec;
  };
  struct Factory : Poco::Net::HTTPRequestHandlerFactory {
    explicit Factory(EventRecorder* r) : rec(r) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(
        const Poco::Net::HTTPServerRequest&) override {
      return new Handler(rec);
    }
    EventRecorder* rec;
  };

  std::mutex mutex_;
  std::vector<Post> posts_;
  Poco::Net::ServerSocket socket_;
  Poco::Net::HTTPServer server_;
};

class JanusEventsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      recorder_ = std::make_unique<EventRecorder>();
      JanusProcess::Options o;
      o.eventsUrl = recorder_->url();
      o.eventsUser = "bridge-7";
      o.eventsPassword = "events-secret";
      janus_ = std::make_unique<JanusProcess>(o);
    } catch (const std::exception& e) {
      startError_ = e.what();
    }
  }
  static void TearDownTestSuite() {
    janus_.reset();  // before the backend it posts to
    recorder_.reset();
  }
  void SetUp() override { ASSERT_TRUE(janus_) << "Janus did not start: " << startError_; }

  static Endpoint endpoint() {
    Endpoint e;
    e.url = janus_->httpUrl();
    e.adminUrl = janus_->adminUrl();
    e.adminSecret = janus_->adminSecret();
    return e;
  }

  // Every VideoRoom event of `room` parsed from all posts so far, in order.
  static std::vector<Event> eventsOf(std::int64_t room) {
    std::vector<Event> out;
    for (const auto& p : recorder_->posts()) {
      for (auto& e : vcrm::janus::parseEvents(p.body)) {
        if (e.room == room) out.push_back(std::move(e));
      }
    }
    return out;
  }

  static inline std::unique_ptr<EventRecorder> recorder_;
  static inline std::unique_ptr<JanusProcess> janus_;
  static inline std::string startError_;
};

std::string kindName(Event::Kind k) {
  switch (k) {
    case Event::Kind::Joined:
      return "joined";
    case Event::Kind::Leaving:
      return "leaving";
    case Event::Kind::Kicked:
      return "kicked";
    case Event::Kind::Published:
      return "published";
    case Event::Kind::Unpublished:
      return "unpublished";
    case Event::Kind::Destroyed:
      return "destroyed";
    case Event::Kind::Created:
      return "created";
    case Event::Kind::Other:
      return "other";
  }
  return "?";
}

std::string describe(const std::vector<Event>& events) {
  std::string s;
  for (const auto& e : events) s += kindName(e.kind) + "(" + std::to_string(e.participant) + ") ";
  return s;
}

TEST_F(JanusEventsTest, RealPostsYieldJoinedThenLeavingForTheRoomAndParticipant) {
  Driver d(endpoint());
  const auto spec = roomSpec(nextRoom());
  ASSERT_TRUE(d.createRoom(spec));
  const auto before = std::chrono::system_clock::now();
  std::int64_t id = 0;
  {
    JanusParticipant frank(janus_->httpUrl(), spec.room, "Frank \"F\" Ö");
    id = frank.id();
    frank.leave();
  }
  const auto isLeaving = [&](const Event& e) {
    return e.kind == Event::Kind::Leaving && e.participant == id;
  };
  ASSERT_TRUE(eventually(
      [&] {
        const auto ev = eventsOf(spec.room);
        return std::any_of(ev.begin(), ev.end(), isLeaving);
      },
      5s))
      << "events seen: " << describe(eventsOf(spec.room));

  const auto events = eventsOf(spec.room);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.front().kind, Event::Kind::Created) << describe(events);
  const auto joined = std::find_if(events.begin(), events.end(), [&](const Event& e) {
    return e.kind == Event::Kind::Joined && e.participant == id;
  });
  const auto leaving = std::find_if(events.begin(), events.end(), isLeaving);
  ASSERT_NE(joined, events.end()) << describe(events);
  ASSERT_NE(leaving, events.end());
  EXPECT_LT(joined - events.begin(), leaving - events.begin()) << "joined must come first";
  EXPECT_EQ(joined->display, "Frank \"F\" Ö");
  EXPECT_TRUE(leaving->display.empty()) << "Janus sends no display name with leaving";
  EXPECT_LE(joined->timestampUs, leaving->timestampUs);
  // Janus stamps events with the wall clock in microseconds.
  const auto beforeUs =
      std::chrono::duration_cast<std::chrono::microseconds>(before.time_since_epoch()).count();
  EXPECT_GE(joined->timestampUs, beforeUs - 1'000'000);
  EXPECT_LE(joined->timestampUs, beforeUs + 10'000'000);

  // What the posts look like on the wire: grouped arrays, JSON, HTTP basic auth.
  const auto posts = recorder_->posts();
  ASSERT_FALSE(posts.empty());
  for (const auto& p : posts) {
    EXPECT_EQ(p.body.front(), '[') << "grouping = true posts arrays: " << p.body;
    EXPECT_EQ(p.contentType, "application/json");
    ASSERT_EQ(p.authorization.rfind("Basic ", 0), 0u) << p.authorization;
    std::istringstream in(p.authorization.substr(6));
    Poco::Base64Decoder dec(in);
    std::string creds;
    Poco::StreamCopier::copyToString(dec, creds);
    EXPECT_EQ(creds, "bridge-7:events-secret");
  }
  EXPECT_TRUE(d.destroyRoom(spec.room, spec.secret));
}

TEST_F(JanusEventsTest, KickAndDestroyArriveAsKickedAndDestroyedWithoutLeaving) {
  Driver d(endpoint());
  const auto spec = roomSpec(nextRoom());
  ASSERT_TRUE(d.createRoom(spec));
  JanusParticipant gina(janus_->httpUrl(), spec.room, "Gina");
  JanusParticipant hank(janus_->httpUrl(), spec.room, "Hank");
  d.kick(spec.room, spec.secret, gina.id());
  ASSERT_TRUE(d.destroyRoom(spec.room, spec.secret));
  const auto has = [&](Event::Kind k, std::int64_t participant) {
    const auto ev = eventsOf(spec.room);
    return std::any_of(ev.begin(), ev.end(),
                       [&](const Event& e) { return e.kind == k && e.participant == participant; });
  };
  EXPECT_TRUE(eventually([&] { return has(Event::Kind::Destroyed, 0); }, 5s))
      << describe(eventsOf(spec.room));
  EXPECT_TRUE(has(Event::Kind::Kicked, gina.id())) << describe(eventsOf(spec.room));
  // Janus's quirk the scheduler must handle: destroy closes Hank's leg without a `leaving`.
  EXPECT_FALSE(has(Event::Kind::Leaving, hank.id())) << describe(eventsOf(spec.room));
}

// ----------------------------------------------------------------------------------------
// Hostile posts: never crash; malformed JSON is InvalidInput, bad events are skipped.

constexpr const char* kJoined =
    R"({"emitter":"j","type":64,"timestamp":1700000000000000,"session_id":1,"handle_id":2,)"
    R"("event":{"plugin":"janus.plugin.videoroom","data":{"event":"joined","room":77,"id":5,)"
    R"("private_id":9,"display":"Ann"}}})";

TEST(JanusEventsParseTest, AcceptsASingleObjectAsPostedWithoutGrouping) {
  const auto ev = vcrm::janus::parseEvents(kJoined);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, Event::Kind::Joined);
  EXPECT_EQ(ev[0].room, 77);
  EXPECT_EQ(ev[0].participant, 5);
  EXPECT_EQ(ev[0].display, "Ann");
  EXPECT_EQ(ev[0].timestampUs, 1700000000000000);
}

TEST(JanusEventsParseTest, MalformedJsonIsInvalidInput) {
  const std::string joined = kJoined;
  for (const auto& body : std::vector<std::string>{
           joined.substr(0, joined.size() / 2), std::string("[") + joined, std::string(""),
           std::string("   "), std::string("42"), std::string("\"text\""), std::string("null"),
           std::string("[1,2,,]"), std::string("{\"type\":64,}"), std::string("\xff\xfe{}")}) {
    EXPECT_THROW(vcrm::janus::parseEvents(body), vcrm::InvalidInput) << body;
  }
  EXPECT_THROW(vcrm::janus::parseEvents(std::string(100000, '[') + std::string(100000, ']')),
               vcrm::InvalidInput);
  EXPECT_THROW(vcrm::janus::parseEvents(std::string(20u << 20, ' ') + "[]"), vcrm::Error);
  // Poco refuses integers beyond 64 bits as JSON it cannot represent: the post is refused.
  EXPECT_THROW(
      vcrm::janus::parseEvents(R"([{"type":64,"event":{"plugin":"janus.plugin.videoroom","data":)"
                               R"({"event":"joined","room":77,"id":99999999999999999999999}}}])"),
      vcrm::InvalidInput);
}

TEST(JanusEventsParseTest, EventsWithWrongTypesOrMissingFieldsAreSkipped) {
  const std::string prefix = R"({"type":64,"event":{"plugin":"janus.plugin.videoroom","data":)";
  const std::vector<std::string> bad{
      prefix + R"({"event":"joined","room":"77","id":5}}})",                   // room as a string
      prefix + R"({"event":"joined","room":77,"id":"5"}}})",                   // id as a string
      prefix + R"({"event":"joined","room":77}}})",                            // no id
      prefix + R"({"event":"leaving","id":5}}})",                              // no room
      prefix + R"({"event":"joined","room":77,"id":-5}}})",                    // negative id
      prefix + R"({"event":"joined","room":0,"id":5}}})",                      // room zero
      prefix + R"({"event":"joined","room":77.5,"id":5}}})",                   // fraction
      prefix + R"({"event":"joined","room":true,"id":5}}})",                   // bool
      prefix + R"({"event":"joined","room":77,"id":1e300}}})",                 // huge float
      prefix + R"({"event":"joined","room":77,"id":18446744073709551615}}})",  // uint64 max
      prefix + R"({"event":"joined","room":77,"id":9223372036854775808}}})",   // int64 max + 1
      prefix + R"({"event":["joined"],"room":77,"id":5}}})",                   // event as an array
      prefix + R"("joined"}})",                                                // data not an object
      R"({"type":64,"event":"janus.plugin.videoroom"})",   // event not an object
      R"({"type":"64","event":{}})",                       // type as a string
      R"({"event":{"plugin":"janus.plugin.videoroom"}})",  // no type
      R"([1,"two",null,true,[],{}])",                      // not objects
  };
  for (const auto& body : bad) {
    std::vector<Event> ev;
    ASSERT_NO_THROW(ev = vcrm::janus::parseEvents(body)) << body;
    for (const auto& e : ev) {
      EXPECT_EQ(e.kind, Event::Kind::Other) << body;
      EXPECT_EQ(e.participant, 0) << body;
    }
  }
}

TEST(JanusEventsParseTest, OddButHarmlessFieldsKeepTheEvent) {
  const std::string prefix = R"({"type":64,"event":{"plugin":"janus.plugin.videoroom","data":)";
  auto ev = vcrm::janus::parseEvents(
      prefix + R"({"event":"joined","room":77,"id":5,"display":{"x":1}},"extra":[1,2]},)"
               R"("timestamp":"yesterday"})");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, Event::Kind::Joined);
  EXPECT_EQ(ev[0].display, "") << "a display that is not a string is dropped, not the join";
  EXPECT_EQ(ev[0].timestampUs, 0);

  std::string longName;
  for (int i = 0; i < 1000; ++i) longName += "\xc3\xa9";  // é, two bytes each
  ev = vcrm::janus::parseEvents(prefix + R"({"event":"joined","room":77,"id":5,"display":")" +
                                longName + "\"}}}");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_LE(ev[0].display.size(), 256u);
  EXPECT_EQ(ev[0].display.size() % 2, 0u) << "cut between the bytes of a character";

  ev = vcrm::janus::parseEvents(
      R"([{"type":64,"event":{"plugin":"janus.plugin.echotest","data":{"event":"joined","room":1,"id":2}}},)"
      R"({"type":1,"session_id":3,"event":{"name":"created"}},)" +
      prefix + R"({"event":"configured","room":77,"id":5}}}])");
  ASSERT_EQ(ev.size(), 3u);
  for (const auto& e : ev) EXPECT_EQ(e.kind, Event::Kind::Other);
}

TEST(JanusEventsParseTest, TenThousandEventsAreParsedQuickly) {
  std::string body = "[";
  for (int i = 1; i <= 10000; ++i) {
    if (i > 1) body += ",";
    body += R"({"type":64,"timestamp":)" + std::to_string(i) +
            R"(,"event":{"plugin":"janus.plugin.videoroom","data":{"event":")" +
            (i % 2 ? "joined" : "leaving") + R"(","room":9,"id":)" + std::to_string(i) +
            R"(,"display":"p)" + std::to_string(i) + "\"}}}";
  }
  body += "]";
  const auto t0 = std::chrono::steady_clock::now();
  const auto ev = vcrm::janus::parseEvents(body);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  ASSERT_EQ(ev.size(), 10000u);
  EXPECT_EQ(ev[0].kind, Event::Kind::Joined);
  EXPECT_EQ(ev[1].kind, Event::Kind::Leaving);
  EXPECT_EQ(ev[9999].participant, 10000);
}

TEST(JanusEventsParseTest, NestedGarbageIsBoundedAndNeverCrashes) {
  std::string deep =
      R"({"type":64,"event":{"plugin":"janus.plugin.videoroom","data":{"event":"joined","room":1,"id":2,"x":)";
  deep += std::string(25, '[') + std::string(25, ']') + "}}}";
  EXPECT_NO_THROW(vcrm::janus::parseEvents(deep));
  std::string tooDeep = R"({"a":)" + std::string(40, '[') + std::string(40, ']') + "}";
  EXPECT_THROW(vcrm::janus::parseEvents(tooDeep), vcrm::InvalidInput);
  // Brackets inside strings do not count as nesting.
  const auto ev = vcrm::janus::parseEvents(
      R"({"type":64,"event":{"plugin":"janus.plugin.videoroom","data":{"event":"joined","room":1,"id":2,"display":")" +
      std::string(100, '[') + "\"}}}");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].display, std::string(100, '['));
}

}  // namespace
