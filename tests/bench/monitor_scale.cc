// monitor_scale: 1,000 live conferences with 5,000 participants over two real Janus bridges
// posting events to vcrmd. Measures how stale vcrmd's view is (time from a join or leave being
// complete on Janus to GET /api/v1/conferences/{id} showing it), vcrmd's CPU and memory while
// it watches them, and how long its listparticipants reconcile takes to go round.
// Prints "monitor_scale: <ratio>" where ratio = median join staleness in steady state / the
// configured reconcile period (2 s): the fraction of a poll period by which the view lags when
// events do their job (well below 1 is good; near or above 1 means the events are no faster
// than polling). Details follow, including the staleness of the reconcile path alone, measured
// on a third bridge that posts no events.
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/NetException.h>
#include <Poco/StreamCopier.h>
#include <Poco/URI.h>
#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.h"
#include "bridge_setup.h"
#include "janus_process.h"
#include "vcrm/common/db.h"
#include "vcrmd_process.h"

using Poco::JSON::Object;
using vcrm::test::HttpsClient;
using vcrm::test::JanusProcess;
using vcrm::test::KeepAliveHttps;
using vcrm::test::msSince;
using vcrm::test::percentile;
using vcrm::test::VcrmdProcess;
using Clock = std::chrono::steady_clock;
namespace db = vcrm::db;

namespace {

int kConferences = 1000;  // the first argument overrides it, for a quick trial
int kReconcileWorkers = 4;  // the second argument overrides it (1 = the sequential pass)
constexpr int kPerRoom = 5;
int kParticipants = kConferences * kPerRoom;
constexpr int kBookThreads = 4;
constexpr int kJoinThreads = 16;
constexpr int kSamples = 200;  // leave + rejoin cycles measured in steady state
constexpr int kSamplers = 4;
constexpr int kProbeRooms = 4;  // on the third bridge, which posts no events
constexpr int kMinProbeCycles = 4;
constexpr auto kSteadyWindow = std::chrono::seconds(20);
constexpr auto kKeepaliveEvery = std::chrono::seconds(20);  // Janus drops sessions after 60 s
constexpr double kReconcileMs = 2000;                       // conference.reconcile_seconds default

std::int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
      .count();
}

std::string stringify(const Object::Ptr& o) {
  std::ostringstream s;
  o->stringify(s);
  return s.str();
}

Object::Ptr parseObject(const std::string& text) {
  Poco::JSON::Parser p;
  return p.parse(text).extract<Object::Ptr>();
}

std::string transactionId() {
  static std::atomic<std::uint64_t> next{1};
  return "t" + std::to_string(next++);
}

// One keep-alive HTTP connection to a Janus HTTP API. Not thread-safe: one per thread.
class JanusHttp {
 public:
  explicit JanusHttp(const std::string& url) : uri_(url), session_(uri_.getHost(), uri_.getPort()) {
    session_.setKeepAlive(true);
    session_.setTimeout(Poco::Timespan(40, 0));  // long polls answer within 30 s
  }

  Object::Ptr post(const std::string& suffix, Object::Ptr body) {
    body->set("transaction", body->optValue<std::string>("transaction", transactionId()));
    return exchange("POST", suffix, stringify(body));
  }
  Object::Ptr get(const std::string& suffix) { return exchange("GET", suffix, {}); }

 private:
  Object::Ptr exchange(const std::string& method, const std::string& suffix,
                       const std::string& body) {
    for (int attempt = 0;; ++attempt) {
      try {
        Poco::Net::HTTPRequest req(method, uri_.getPath() + suffix,
                                   Poco::Net::HTTPMessage::HTTP_1_1);
        req.setKeepAlive(true);
        if (!body.empty()) {
          req.setContentType("application/json");
          req.setContentLength(static_cast<std::streamsize>(body.size()));
        }
        session_.sendRequest(req) << body;
        Poco::Net::HTTPResponse resp;
        auto& in = session_.receiveResponse(resp);
        std::string text;
        Poco::StreamCopier::copyToString(in, text);
        if (resp.getStatus() != Poco::Net::HTTPResponse::HTTP_OK) {
          throw std::runtime_error("Janus answered HTTP " + std::to_string(resp.getStatus()) +
                                   ": " + text);
        }
        return parseObject(text);
      } catch (const Poco::IOException&) {
        // Janus closed the kept-alive connection: once more on a new one.
        session_.reset();
        if (attempt > 0) throw;
      }
    }
  }

  Poco::URI uri_;
  Poco::Net::HTTPClientSession session_;
};

// A participant: a Janus session with a VideoRoom handle, joined as a publisher without media.
// One thread sends keepalives for all of them (JanusParticipant keeps a thread each).
struct Participant {
  int bridge = 0;  // index into the Janus instances
  std::int64_t conference = 0;
  std::int64_t room = 0;
  std::string display;
  std::int64_t session = 0;
  std::int64_t handle = 0;
  std::int64_t id = 0;  // participant id in the room
  Clock::time_point joinedAt{};
  double joinedEpoch = 0;         // the same instant on the wall clock, to compare with joined_at
  std::atomic<bool> open{false};  // session exists: keep it alive
  std::atomic<std::int64_t> touchedMs{0};
};

void check(const Object::Ptr& answer, const std::string& what) {
  if (answer->optValue<std::string>("janus", "") == "error") {
    throw std::runtime_error(what + " refused by Janus: " + stringify(answer));
  }
}

void openSession(JanusHttp& h, Participant& p) {
  Object::Ptr create = new Object;
  create->set("janus", "create");
  auto s = h.post("", create);
  check(s, "create");
  p.session = s->getObject("data")->getValue<std::int64_t>("id");
  p.touchedMs = nowMs();
  p.open = true;
}

void attach(JanusHttp& h, Participant& p) {
  Object::Ptr a = new Object;
  a->set("janus", "attach");
  a->set("plugin", "janus.plugin.videoroom");
  auto r = h.post("/" + std::to_string(p.session), a);
  check(r, "attach");
  p.handle = r->getObject("data")->getValue<std::int64_t>("id");
}

// Sends a VideoRoom request on the handle and waits for the event carrying its transaction;
// returns plugindata.data.
Object::Ptr videoRoomAsync(JanusHttp& h, Participant& p, const Object::Ptr& body) {
  Object::Ptr m = new Object;
  const std::string tx = transactionId();
  m->set("janus", "message");
  m->set("transaction", tx);
  m->set("body", body);
  auto ack = h.post("/" + std::to_string(p.session) + "/" + std::to_string(p.handle), m);
  check(ack, "message");
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < deadline) {
    auto ev = h.get("/" + std::to_string(p.session) + "?maxev=1");
    p.touchedMs = nowMs();
    if (ev->optValue<std::string>("transaction", "") != tx) continue;
    auto pd = ev->getObject("plugindata");
    auto data = pd ? pd->getObject("data") : nullptr;
    if (!data) throw std::runtime_error("no plugin data in " + stringify(ev));
    if (data->has("error_code")) throw std::runtime_error("VideoRoom refused: " + stringify(data));
    return data;
  }
  throw std::runtime_error("no answer from Janus within 20 s");
}

void join(JanusHttp& h, Participant& p) {
  Object::Ptr body = new Object;
  body->set("request", "join");
  body->set("ptype", "publisher");
  body->set("room", p.room);
  body->set("display", p.display);
  auto data = videoRoomAsync(h, p, body);
  if (data->optValue<std::string>("videoroom", "") != "joined") {
    throw std::runtime_error("unexpected answer to join: " + stringify(data));
  }
  p.id = data->getValue<std::int64_t>("id");
  p.joinedAt = Clock::now();
  p.joinedEpoch =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void leave(JanusHttp& h, Participant& p) {
  Object::Ptr body = new Object;
  body->set("request", "leave");
  videoRoomAsync(h, p, body);
}

// Reads /api/v1/events and notes when each participant was announced as joined.
class EventStream {
 public:
  EventStream(const std::string& ca, int port, const std::string& token) {
    Poco::Net::Context::Ptr ctx =
        new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "", "", ca,
                               Poco::Net::Context::VERIFY_STRICT, 9, false);
    session_ = std::make_unique<Poco::Net::HTTPSClientSession>(
        "127.0.0.1", static_cast<Poco::UInt16>(port), ctx);
    session_->setTimeout(Poco::Timespan(60, 0));
    Poco::Net::HTTPRequest req("GET", "/api/v1/events", Poco::Net::HTTPMessage::HTTP_1_1);
    req.set("Authorization", "Bearer " + token);
    session_->sendRequest(req);
    in_ = &session_->receiveResponse(response_);
    if (response_.getStatus() != Poco::Net::HTTPResponse::HTTP_OK)
      throw std::runtime_error("event stream refused");
    thread_ = std::thread([this] { read(); });
  }
  ~EventStream() { stop(); }
  EventStream(const EventStream&) = delete;
  EventStream& operator=(const EventStream&) = delete;

  void stop() {
    if (!thread_.joinable()) return;
    stopping_ = true;
    try {
      session_->abort();
    } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): the reader ends either way
    }
    thread_.join();
  }
  std::map<std::int64_t, Clock::time_point> joined() {
    std::lock_guard<std::mutex> l(mutex_);
    return joined_;
  }

 private:
  void read() {
    static const std::regex pid("\"participant_id\":([0-9]+)");
    static const std::regex action("\"action\":\"([a-z]+)\"");
    try {
      std::string line;
      std::string event;
      while (!stopping_ && std::getline(*in_, line)) {
        if (line.rfind("event: ", 0) == 0) {
          event = line.substr(7);
        } else if (line.rfind("data: ", 0) == 0 && event == "participant") {
          const auto now = Clock::now();
          std::smatch m;
          std::smatch a;
          if (std::regex_search(line, m, pid) && std::regex_search(line, a, action) &&
              a[1] == "joined") {
            std::lock_guard<std::mutex> l(mutex_);
            joined_.emplace(std::stoll(m[1]), now);
          }
        } else if (line.empty()) {
          event.clear();
        }
      }
    } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): the stream ended
    }
  }

  std::unique_ptr<Poco::Net::HTTPSClientSession> session_;
  Poco::Net::HTTPResponse response_;
  std::istream* in_ = nullptr;
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::map<std::int64_t, Clock::time_point> joined_;
  std::thread thread_;
};

// Keeps every open Janus session alive from one thread.
class Keepalive {
 public:
  Keepalive(std::vector<std::string> urls, std::vector<std::unique_ptr<Participant>>& parts)
      : urls_(std::move(urls)), parts_(parts), thread_([this] { loop(); }) {}
  ~Keepalive() { stop(); }
  Keepalive(const Keepalive&) = delete;
  Keepalive& operator=(const Keepalive&) = delete;
  void stop() {
    stopping_ = true;
    if (thread_.joinable()) thread_.join();
  }
  [[nodiscard]] int failures() const { return failures_; }
  [[nodiscard]] int sent() const { return sent_; }

 private:
  void loop() {
    std::vector<std::unique_ptr<JanusHttp>> h;
    h.reserve(urls_.size());
    for (const auto& u : urls_) h.push_back(std::make_unique<JanusHttp>(u));
    const auto every =
        std::chrono::duration_cast<std::chrono::milliseconds>(kKeepaliveEvery).count();
    while (!stopping_) {
      for (auto& p : parts_) {
        if (stopping_) break;
        if (!p->open || nowMs() - p->touchedMs < every) continue;
        try {
          Object::Ptr k = new Object;
          k->set("janus", "keepalive");
          check(h[static_cast<std::size_t>(p->bridge)]->post("/" + std::to_string(p->session), k),
                "keepalive");
          p->touchedMs = nowMs();
          ++sent_;
        } catch (const std::exception&) {
          ++failures_;
        }
      }
      for (int i = 0; i < 10 && !stopping_; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  std::vector<std::string> urls_;
  std::vector<std::unique_ptr<Participant>>& parts_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> failures_{0};
  std::atomic<int> sent_{0};
  std::thread thread_;
};

// Polls GET /api/v1/conferences/{id} until `want` says yes; returns ms from `since` to the
// request that first showed it, or -1 after `limit`.
double pollUntil(KeepAliveHttps& api, std::int64_t conference, Clock::time_point since,
                 const std::function<bool(const Poco::JSON::Array::Ptr&)>& want,
                 std::chrono::milliseconds every, std::chrono::seconds limit) {
  const auto deadline = since + limit;
  while (Clock::now() < deadline) {
    const auto sent = Clock::now();
    auto r = api.get("/api/v1/conferences/" + std::to_string(conference));
    if (r.status == 200 && want(r.json()->getArray("participants"))) {
      return std::chrono::duration<double, std::milli>(sent - since).count();
    }
    std::this_thread::sleep_for(every);
  }
  return -1;
}

bool hasParticipant(const Poco::JSON::Array::Ptr& arr, std::int64_t id) {
  if (!arr) return false;
  for (std::size_t i = 0; i < arr->size(); ++i) {
    if (arr->getObject(static_cast<unsigned>(i))->getValue<std::int64_t>("id") == id) return true;
  }
  return false;
}

struct Stats {
  std::vector<double> ms;
  int timeouts = 0;
  std::mutex mutex;
  void add(double v) {
    std::lock_guard<std::mutex> l(mutex);
    if (v < 0) {
      ++timeouts;
    } else {
      ms.push_back(v);
    }
  }
  std::string text() {
    std::lock_guard<std::mutex> l(mutex);
    std::array<char, 200> buf{};
    std::snprintf(buf.data(), buf.size(), "p50 %.0f ms, p99 %.0f ms, max %.0f ms (n=%zu%s)",
                  percentile(ms, 0.5), percentile(ms, 0.99), percentile(ms, 1.0), ms.size(),
                  timeouts ? (", " + std::to_string(timeouts) + " never seen").c_str() : "");
    return buf.data();
  }
};

int countLines(const std::string& text, const std::string& needle) {
  int n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
    ++n;
  return n;
}

int countFds(pid_t pid) {
  int n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

long threadsOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::stol(line.substr(8));
  }
  return -1;
}

class Bench {
 public:
  ~Bench() { teardown(); }

  int run() {
    const auto benchStart = Clock::now();
    rlimit fds{};
    getrlimit(RLIMIT_NOFILE, &fds);
    // vcrmd with default timings except a short pre-launch; start-now bookings launch at once.
    VcrmdProcess::Options o;
    o.settings = {"conference.prelaunch_seconds=5",
                  "conference.reconcile_workers=" + std::to_string(kReconcileWorkers)};
    app_ = std::make_unique<VcrmdProcess>(o);
    app_->start();
    HttpsClient admin = app_->client();
    auto login = admin.loginBearer("admin", app_->adminPassword());
    if (login.status != 200) throw std::runtime_error("sign-in failed: " + login.body);
    token_ = login.json()->getValue<std::string>("token");
    ca_ = (app_->stateDir() / "tls/server.crt").string();

    std::map<std::int64_t, int> bridgeIndex;
    for (int i = 0; i < 3; ++i) {
      const bool probe = i == 2;
      bridgeIndex[addBridge(admin, "j" + std::to_string(i + 1),
                            probe ? kProbeRooms * kPerRoom : 2600, probe ? "probe" : "default",
                            !probe)] = i;
    }
    db::Connection pg("host=" + (app_->stateDir() / "pgsocket").string() +
                      " user=vcrm dbname=vcrm");

    // --- booking ------------------------------------------------------------------------------
    struct Booked {
      std::int64_t id = 0;
      std::int64_t room = 0;
      int bridge = 0;
    };
    std::vector<Booked> probeRooms(kProbeRooms);
    {
      KeepAliveHttps api("127.0.0.1", app_->httpsPort(), ca_, token_);
      for (int i = 0; i < kProbeRooms; ++i) {
        auto r =
            api.post("/api/v1/conferences",
                     R"({"name":"probe-)" + std::to_string(i) +
                         R"(","start_now":true,"duration_minutes":60,"ports":5,"pool":"probe"})");
        if (r.status != 201) throw std::runtime_error("probe booking failed: " + r.body);
        probeRooms[static_cast<std::size_t>(i)] = {r.json()->getValue<std::int64_t>("id"),
                                                   r.json()->getValue<std::int64_t>("room"), 2};
      }
    }
    std::vector<Booked> booked(kConferences);
    const auto bookStart = Clock::now();
    {
      std::atomic<int> next{0};
      std::vector<std::thread> threads;
      threads.reserve(16);
      for (int t = 0; t < kBookThreads; ++t) {
        threads.emplace_back([&] {
          KeepAliveHttps api("127.0.0.1", app_->httpsPort(), ca_, token_);
          for (int i = next++; i < kConferences; i = next++) {
            try {
              auto r = api.post(
                  "/api/v1/conferences",
                  R"({"name":"conf-)" + std::to_string(i) +
                      R"(","start_now":true,"duration_minutes":60,"ports":5,"pool":"default"})");
              if (r.status != 201)
                throw std::runtime_error("HTTP " + std::to_string(r.status) + ": " + r.body);
              auto j = r.json();
              booked[static_cast<std::size_t>(i)] = {
                  j->getValue<std::int64_t>("id"), j->getValue<std::int64_t>("room"),
                  bridgeIndex.at(j->getValue<std::int64_t>("bridge_id"))};
            } catch (const std::exception& e) {
              fail("booking " + std::to_string(i) + ": " + e.what());
            }
          }
        });
      }
      for (auto& t : threads) t.join();
    }
    throwIfFailed();
    const double bookSeconds = std::chrono::duration<double>(Clock::now() - bookStart).count();
    std::array<int, 2> perBridge{};
    for (const auto& b : booked) ++perBridge[static_cast<std::size_t>(b.bridge)];

    // --- all active ---------------------------------------------------------------------------
    double activeSeconds = -1;
    for (const auto deadline = Clock::now() + std::chrono::seconds(150); Clock::now() < deadline;) {
      auto r = pg.exec(
          "SELECT count(*) FILTER (WHERE state = 'active'), count(*) FILTER (WHERE state IN "
          "('failed', 'ended')) "
          "FROM conferences");
      if (r.int64(0, 1) > 0)
        throw std::runtime_error(std::to_string(r.int64(0, 1)) + " conferences failed or ended");
      if (r.int64(0, 0) == kConferences + kProbeRooms) {
        activeSeconds = std::chrono::duration<double>(Clock::now() - bookStart).count();
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    if (activeSeconds < 0)
      throw std::runtime_error("not every conference became active within 150 s");

    // --- joins --------------------------------------------------------------------------------
    for (int i = 0; i < kParticipants; ++i) {
      auto p = std::make_unique<Participant>();
      const auto& b = booked[static_cast<std::size_t>(i % kConferences)];
      p->bridge = b.bridge;
      p->conference = b.id;
      p->room = b.room;
      p->display = "p" + std::to_string(i);
      parts_.push_back(std::move(p));
    }
    for (int i = 0; i < kProbeRooms; ++i) {
      auto p = std::make_unique<Participant>();
      p->bridge = 2;
      p->conference = probeRooms[static_cast<std::size_t>(i)].id;
      p->room = probeRooms[static_cast<std::size_t>(i)].room;
      p->display = "probe" + std::to_string(i);
      parts_.push_back(std::move(p));
    }
    std::vector<std::string> urls;
    for (auto& j : janus_) urls.push_back(j->httpUrl());
    events_ = std::make_unique<EventStream>(ca_, app_->httpsPort(), token_);
    keepalive_ = std::make_unique<Keepalive>(urls, parts_);
    // At debug level vcrmd logs every request with its duration, the bridges' event posts too.
    KeepAliveHttps ctl("127.0.0.1", app_->httpsPort(), ca_, token_);
    if (ctl.request("PUT", "/api/v1/system/log-level", R"({"level":"debug"})").status != 200) {
      throw std::runtime_error("cannot set the log level");
    }
    const auto joinStart = Clock::now();
    {
      std::atomic<int> next{0};
      std::vector<std::thread> threads;
      threads.reserve(16);
      for (int t = 0; t < kJoinThreads; ++t) {
        threads.emplace_back([&] {
          std::vector<std::unique_ptr<JanusHttp>> h;
          h.reserve(urls.size());
          for (const auto& u : urls) h.push_back(std::make_unique<JanusHttp>(u));
          for (int i = next++; i < kParticipants && !failed(); i = next++) {
            auto& p = *parts_[static_cast<std::size_t>(i)];
            try {
              auto& conn = *h[static_cast<std::size_t>(p.bridge)];
              openSession(conn, p);
              attach(conn, p);
              join(conn, p);
            } catch (const std::exception& e) {
              fail("join " + p.display + ": " + e.what());
            }
          }
        });
      }
      for (auto& t : threads) t.join();
    }
    throwIfFailed();
    const double joinSeconds = std::chrono::duration<double>(Clock::now() - joinStart).count();
    // Every join in the database (the event path, with reconcile behind it).
    double allSeenSeconds = -1;
    for (const auto deadline = Clock::now() + std::chrono::seconds(60); Clock::now() < deadline;) {
      auto r = pg.exec("SELECT count(*) FROM participant_legs WHERE left_at IS NULL");
      if (r.int64(0, 0) >= kParticipants) {
        allSeenSeconds = std::chrono::duration<double>(Clock::now() - joinStart).count();
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ctl.request("PUT", "/api/v1/system/log-level", R"({"level":"info"})");
    // How vcrmd spent the bulk join on the bridges' event posts (Janus posts them one at a time).
    int posts = 0;
    double postMs = 0;
    {
      static const std::regex post(
          R"(POST /api/v1/bridges/[0-9]+/events -> [0-9]+ in ([0-9]+) ms)");
      const std::string log = app_->output();
      for (std::sregex_iterator it(log.begin(), log.end(), post), end; it != end; ++it) {
        ++posts;
        postMs += std::stod((*it)[1].str());
      }
    }
    // Legs whose joined_at is well after the join: recorded by reconcile (now()), not by the
    // join event (which carries Janus's own time of the join).
    int byReconcile = 0;
    {
      std::map<std::int64_t, double> joinedAt;
      auto legs = pg.exec(
          "SELECT participant_id, extract(epoch FROM joined_at) FROM participant_legs WHERE "
          "left_at IS NULL");
      for (int i = 0; i < legs.rows(); ++i) joinedAt[legs.int64(i, 0)] = std::stod(legs.text(i, 1));
      for (int i = 0; i < kParticipants; ++i) {
        const auto& p = *parts_[static_cast<std::size_t>(i)];
        auto it = joinedAt.find(p.id);
        if (it != joinedAt.end() && it->second - p.joinedEpoch > 0.25) ++byReconcile;
      }
    }
    Stats bulk;
    {
      const auto seen = events_->joined();
      for (int i = 0; i < kParticipants; ++i) {
        const auto& p = *parts_[static_cast<std::size_t>(i)];
        auto it = seen.find(p.id);
        // Announced before Janus's answer to the join reached us counts as 0.
        bulk.add(
            it == seen.end()
                ? -1
                : std::max(
                      0.0,
                      std::chrono::duration<double, std::milli>(it->second - p.joinedAt).count()));
      }
    }

    // --- steady state: CPU, memory, reconcile -------------------------------------------------
    std::this_thread::sleep_for(std::chrono::seconds(3));  // let the tail of the joins settle
    const pid_t vcrmd = app_->pid();
    const pid_t postmaster = *app_->postmasterPid();
    auto updates = [&] {
      return pg.exec("SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'conferences'")
          .int64(0, 0);
    };
    const auto u0 = updates();
    const double v0 = vcrm::test::processCpuSeconds(vcrmd);
    const double p0 = vcrm::test::treeCpuSeconds(postmaster);
    const double j0 = vcrm::test::processCpuSeconds(janus_[0]->pid()) +
                      vcrm::test::processCpuSeconds(janus_[1]->pid());
    const double s0 = vcrm::test::processCpuSeconds(getpid());
    const auto w0 = Clock::now();
    long rssMax = 0;
    while (Clock::now() - w0 < kSteadyWindow) {
      rssMax = std::max(rssMax, vcrm::test::processRssKib(vcrmd));
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    const double window = std::chrono::duration<double>(Clock::now() - w0).count();
    const double vcrmdCpu = (vcrm::test::processCpuSeconds(vcrmd) - v0) / window;
    const double pgCpu = (vcrm::test::treeCpuSeconds(postmaster) - p0) / window;
    const double janusCpu = (vcrm::test::processCpuSeconds(janus_[0]->pid()) +
                             vcrm::test::processCpuSeconds(janus_[1]->pid()) - j0) /
                            window;
    const double selfCpu = (vcrm::test::processCpuSeconds(getpid()) - s0) / window;
    const auto u1 = updates();
    const double passesPerSecond =
        static_cast<double>(u1 - u0) / window / static_cast<double>(kConferences + kProbeRooms);
    const long rssNow = vcrm::test::processRssKib(vcrmd);
    const int vcrmdFds = countFds(vcrmd);
    const int janusFds = countFds(janus_[0]->pid()) + countFds(janus_[1]->pid());
    const long janusThreads = threadsOf(janus_[0]->pid()) + threadsOf(janus_[1]->pid());
    const long vcrmdThreads = threadsOf(vcrmd);

    // --- staleness samples: leave and rejoin (event path), probe bridge (reconcile only) -------
    Stats joins;
    Stats leaves;
    Stats probeJoins;
    Stats probeLeaves;
    std::atomic<int> samplersLeft{kSamplers};
    std::vector<std::thread> threads;
    threads.reserve(kSamplers + kProbeRooms);
    for (int s = 0; s < kSamplers; ++s) {
      threads.emplace_back([&, s] {
        try {
          KeepAliveHttps api("127.0.0.1", app_->httpsPort(), ca_, token_);
          std::vector<std::unique_ptr<JanusHttp>> h;
          h.reserve(urls.size());
          for (const auto& u : urls) h.push_back(std::make_unique<JanusHttp>(u));
          for (int c = 0; c < kSamples / kSamplers && !failed(); ++c) {
            // Participants spread over rooms and both bridges, none sampled twice.
            auto& p =
                *parts_[static_cast<std::size_t>(((c * kSamplers + s) * 7 + 3) % kParticipants)];
            auto& conn = *h[static_cast<std::size_t>(p.bridge)];
            const std::int64_t old = p.id;
            leave(conn, p);
            const auto left = Clock::now();
            leaves.add(pollUntil(
                api, p.conference, left, [&](const auto& a) { return !hasParticipant(a, old); },
                std::chrono::milliseconds(5), std::chrono::seconds(15)));
            attach(conn, p);  // a fresh handle for the new leg
            join(conn, p);
            joins.add(pollUntil(
                api, p.conference, p.joinedAt,
                [&](const auto& a) { return hasParticipant(a, p.id); },
                std::chrono::milliseconds(5), std::chrono::seconds(15)));
          }
        } catch (const std::exception& e) {
          fail(std::string("sampler: ") + e.what());
        }
        --samplersLeft;
      });
    }
    for (int r = 0; r < kProbeRooms; ++r) {
      threads.emplace_back([&, r] {
        try {
          KeepAliveHttps api("127.0.0.1", app_->httpsPort(), ca_, token_);
          JanusHttp conn(urls[2]);
          auto& p = *parts_[static_cast<std::size_t>(kParticipants) + static_cast<std::size_t>(r)];
          openSession(conn, p);
          const auto deadline = Clock::now() + std::chrono::seconds(90);
          std::mt19937 rng(static_cast<unsigned>(r + 1));
          // A random pause before each change, so that changes fall anywhere in a reconcile period.
          auto pause = [&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 2000));
          };
          for (int c = 0;
               (c < kMinProbeCycles || samplersLeft > 0) && Clock::now() < deadline && !failed();
               ++c) {
            pause();
            attach(conn, p);
            join(conn, p);
            probeJoins.add(pollUntil(
                api, p.conference, p.joinedAt,
                [&](const auto& a) { return hasParticipant(a, p.id); },
                std::chrono::milliseconds(50), std::chrono::seconds(30)));
            pause();
            leave(conn, p);
            const auto left = Clock::now();
            probeLeaves.add(pollUntil(
                api, p.conference, left, [&](const auto& a) { return !hasParticipant(a, p.id); },
                std::chrono::milliseconds(50), std::chrono::seconds(30)));
          }
        } catch (const std::exception& e) {
          fail(std::string("probe sampler: ") + e.what());
        }
      });
    }
    for (auto& t : threads) t.join();
    throwIfFailed();

    // Legs closed and opened again for a participant who never left: reconcile racing events.
    const auto reopened = pg.exec(
                                "SELECT count(*) FROM (SELECT 1 FROM participant_legs l JOIN "
                                "conferences c ON c.id = l.conference_id "
                                "WHERE c.pool = 'default' OR c.pool IS NULL GROUP BY l.room, "
                                "l.participant_id HAVING count(*) > 1) x")
                              .int64(0, 0);
    const int keepaliveFailures = keepalive_->failures();
    int lost = 0;
    int relayFailures = 0;
    for (auto& j : janus_) {
      const std::string out = j->output();
      lost += countLines(out, "event lost");
      relayFailures += countLines(out, "Couldn't relay event");
    }
    teardown();

    double p50 = 0;
    {
      std::lock_guard<std::mutex> l(joins.mutex);
      p50 = percentile(joins.ms, 0.5);
    }
    std::printf("monitor_scale: %.3f\n", p50 / kReconcileMs);
    std::printf(
        "  ratio = median join staleness in steady state (%.0f ms) / reconcile period (%.0f ms); "
        "lower is better\n",
        p50, kReconcileMs);
    std::printf(
        "  %d conferences x %d participants on two Janus (%d and %d rooms), events to vcrmd, "
        "default timings "
        "but prelaunch 5 s; nofile limit %llu\n",
        kConferences, kPerRoom, perBridge[0], perBridge[1],
        static_cast<unsigned long long>(fds.rlim_cur));
    std::printf(
        "  booking: %d start-now conferences through the API in %.1f s (%.0f/s, %d threads); all "
        "active %.1f s "
        "after the first booking\n",
        kConferences, bookSeconds, kConferences / bookSeconds, kBookThreads, activeSeconds);
    std::printf(
        "  joins: %d in %.1f s (%.0f/s, %d threads over HTTP keep-alive); all %d legs in vcrmd's "
        "database %.1f s "
        "after the first join\n",
        kParticipants, joinSeconds, kParticipants / joinSeconds, kJoinThreads, kParticipants,
        allSeenSeconds);
    std::printf(
        "  during the bulk join: %d event posts took vcrmd %.1f s in all (%.1f ms each); %d of %d "
        "legs "
        "were first recorded by reconcile, not by their join event\n",
        posts, postMs / 1000, posts ? postMs / posts : 0.0, byReconcile, kParticipants);
    std::printf(
        "  staleness during the bulk join (join done on Janus -> \"joined\" on /api/v1/events): "
        "%s\n",
        bulk.text().c_str());
    std::printf(
        "  steady state, %d participants, %.0f s window: vcrmd CPU %.0f%% of one core, RSS %.0f "
        "MiB (max %.0f), "
        "%d fds, %ld threads; PostgreSQL %.0f%%, both Janus %.0f%% (%d fds, %ld threads), this "
        "bench %.0f%%\n",
        kParticipants, window, 100 * vcrmdCpu, static_cast<double>(rssNow) / 1024,
        static_cast<double>(rssMax) / 1024, vcrmdFds, vcrmdThreads, 100 * pgCpu, 100 * janusCpu,
        janusFds, janusThreads, 100 * selfCpu);
    std::printf(
        "  reconcile load: %.0f conference UPDATEs/s = %.2f passes/s over %d live conferences (one "
        "pass every "
        "%.1f s; configured every %.0f s)\n",
        static_cast<double>(u1 - u0) / window, passesPerSecond, kConferences + kProbeRooms,
        passesPerSecond > 0 ? 1 / passesPerSecond : 0.0, kReconcileMs / 1000);
    std::printf(
        "  steady-state staleness, GET /api/v1/conferences/{id} polled at once then every 5 ms, %d "
        "leave+rejoin cycles:\n",
        kSamples);
    std::printf("    join  %s\n", joins.text().c_str());
    std::printf("    leave %s\n", leaves.text().c_str());
    std::printf(
        "  reconcile path alone (third bridge posting no events, %d rooms, polled every 50 ms):\n",
        kProbeRooms);
    std::printf("    join  %s\n", probeJoins.text().c_str());
    std::printf("    leave %s\n", probeLeaves.text().c_str());
    std::printf(
        "  legs closed and re-opened for a participant still present: %lld; Janus events lost: %d "
        "(relay "
        "failures %d); keepalive failures %d\n",
        static_cast<long long>(reopened), lost, relayFailures, keepaliveFailures);
    std::printf("  whole benchmark %.0f s\n",
                std::chrono::duration<double>(Clock::now() - benchStart).count());
    return 0;
  }

 private:
  // A bridge whose Janus posts events to vcrmd as an operator would configure it, or (for
  // the reconcile probe) one whose Janus posts nothing.
  std::int64_t addBridge(HttpsClient& admin, const std::string& name, int capacity,
                         const std::string& pool, bool events) {
    std::int64_t id = 0;
    if (events) {
      auto b = vcrm::test::registerJanusBridge(admin, name, capacity, pool);
      id = b.id;
      janus_.push_back(std::move(b.janus));
    } else {
      janus_.push_back(std::make_unique<JanusProcess>());
      auto& j = *janus_.back();
      auto r = admin.postJson("/api/v1/bridges",
                              R"({"name":")" + name + R"(","url":")" + j.httpUrl() +
                                  R"(","admin_url":")" + j.adminUrl() + R"(","admin_secret":")" +
                                  j.adminSecret() + R"(","capacity_ports":)" +
                                  std::to_string(capacity) + R"(,"pool":")" + pool + R"("})");
      if (r.status != 201) throw std::runtime_error("bridge registration failed: " + r.body);
      id = r.json()->getValue<std::int64_t>("id");
    }
    for (int i = 0; i < 100; ++i) {
      if (admin.get("/api/v1/bridges/" + std::to_string(id))
              .json()
              ->getValue<std::string>("health") == "up")
        return id;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    throw std::runtime_error("bridge " + name + " never came up");
  }

  void fail(const std::string& what) {
    std::lock_guard<std::mutex> l(failMutex_);
    if (failure_.empty()) failure_ = what;
    failed_ = true;
  }
  [[nodiscard]] bool failed() const { return failed_; }
  void throwIfFailed() {
    std::lock_guard<std::mutex> l(failMutex_);
    if (!failure_.empty()) throw std::runtime_error(failure_);
  }

  // Stops everything, whatever state the run is in: our threads, then vcrmd (which ends the
  // event stream), then the bridges.
  void teardown() {
    if (keepalive_) keepalive_->stop();
    if (app_ && app_->running()) app_->stop();
    if (events_) events_->stop();
    for (auto& j : janus_) j->kill9();  // nothing left to measure; SIGTERM would post 5,000 leaves
  }

  std::unique_ptr<VcrmdProcess> app_;
  std::vector<std::unique_ptr<JanusProcess>> janus_;
  std::vector<std::unique_ptr<Participant>> parts_;
  std::unique_ptr<EventStream> events_;
  std::unique_ptr<Keepalive> keepalive_;
  std::string token_;
  std::string ca_;
  std::mutex failMutex_;
  std::string failure_;
  std::atomic<bool> failed_{false};
};

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) {
    kConferences = std::max(kSamplers * 2, std::stoi(argv[1]));
    kParticipants = kConferences * kPerRoom;
  }
  if (argc > 2) kReconcileWorkers = std::clamp(std::stoi(argv[2]), 1, 16);
  try {
    Bench bench;
    return bench.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "monitor_scale: %s\n", e.what());
    return 1;
  }
}
