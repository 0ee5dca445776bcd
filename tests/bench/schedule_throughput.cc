// schedule_throughput: conference bookings per second through vcrmd's API (HTTPS with
// keep-alive, bearer auth, JSON, admission under bridge row locks, audit row) against the same
// SQL sent straight through libpq to the appliance's own PostgreSQL, in the same run.
// Prints "schedule_throughput: <ratio>" where ratio = API rate / libpq rate (1.0 = the API
// costs nothing beyond its booking transaction), then the rates, latencies and where the time
// of an API booking goes.
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.h"
#include "janus_process.h"
#include "vcrm/common/crypto.h"
#include "vcrm/common/db.h"
#include "vcrmd_process.h"

using vcrm::test::HttpsClient;
using vcrm::test::JanusProcess;
using vcrm::test::KeepAliveHttps;
using vcrm::test::msSince;
using vcrm::test::percentile;
using vcrm::test::VcrmdProcess;
using Clock = std::chrono::steady_clock;
namespace db = vcrm::db;

namespace {

constexpr int kThreads = 4;
constexpr int kPerThread = 100;  // bookings per thread per round
constexpr int kRounds = 3;
constexpr int kSerial = 100;

// The statements of a booking as daemon/src/conference_booking.cc create(), place() and
// checkLicence() send them (kept in step by hand), and the audit row daemon/src/audit.cc writes
// into the same transaction.
constexpr db::Sql kLockAdmission = "SELECT pg_advisory_xact_lock(1986356001)";
constexpr db::Sql kLockBridges =
    "SELECT id, name, capacity_ports, state, health FROM bridges "
    "WHERE ($1::bigint IS NULL OR id = $1) AND ($2::text IS NULL OR pool = $2) "
    "  AND ($3::bigint IS NULL OR id <> $3) ORDER BY id FOR UPDATE";
constexpr db::Sql kPeak =
    "WITH o AS (SELECT starts_at, ends_at, ports FROM conferences "
    "  WHERE ($1::bigint IS NULL OR bridge_id = $1) AND state IN ('scheduled', 'starting', "
    "'active') "
    "    AND starts_at < $3::timestamptz AND ends_at > $2::timestamptz "
    "    AND ($4::bigint IS NULL OR id <> $4)), "
    " pts AS (SELECT $2::timestamptz AS t UNION SELECT starts_at FROM o WHERE starts_at > "
    "$2::timestamptz) "
    "SELECT rfc3339(p.t), coalesce(sum(o.ports), 0) AS used FROM pts p "
    "  LEFT JOIN o ON o.starts_at <= p.t AND o.ends_at > p.t "
    "GROUP BY p.t ORDER BY used DESC, p.t LIMIT 1";
constexpr db::Sql kInsert =
    "INSERT INTO conferences (series_id, name, owner, starts_at, ends_at, time_zone, ports, pin, pool, "
    "  requested_bridge_id, bridge_id, room, room_secret, auto_end_when_empty, rule_start, rule_end) "
    "VALUES ($1, $2, $3, $4::timestamptz, $5::timestamptz, $6, $7, $8, $9, $10, $11, $12, $13, $14, "
    "  CASE WHEN $1::bigint IS NOT NULL THEN $4::timestamptz END, "
    "  CASE WHEN $1::bigint IS NOT NULL THEN $5::timestamptz END) "
    "RETURNING id";
constexpr db::Sql kAudit =
    "INSERT INTO audit_log (username, remote_addr, method, path, action, target, status, "
    "outcome) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

// The other statements an API booking runs (daemon/src/auth.cc authenticate(), the checks at
// the top of create(), and conferenceJson() for the answer and for the event bus).
constexpr db::Sql kAuthenticate =
    "WITH s AS ("
    "  SELECT token_sha256, user_id, csrf_token, expires_at, last_seen_at FROM sessions"
    "  WHERE token_sha256 = $1 AND expires_at > now()"
    "    AND last_seen_at > now() - $2::interval),"
    " touched AS ("
    "  UPDATE sessions SET last_seen_at = now() FROM s"
    "  WHERE sessions.token_sha256 = s.token_sha256"
    "    AND s.last_seen_at < now() - interval '1 minute')"
    " SELECT u.id, u.username, u.roles, u.disabled, u.must_change_password,"
    "        rfc3339(u.created_at), rfc3339(u.last_login_at), s.csrf_token, rfc3339(s.expires_at)"
    " FROM s JOIN users u ON u.id = s.user_id WHERE NOT u.disabled";
constexpr db::Sql kTimeZone = "SELECT 1 FROM pg_timezone_names WHERE name = $1";
constexpr db::Sql kTimes =
    "SELECT rfc3339(s), rfc3339(coalesce($2::timestamptz, s + make_interval(mins => $3::int))), "
    "  extract(epoch FROM coalesce($2::timestamptz, s + make_interval(mins => $3::int)) - "
    "s)::bigint, "
    "  s < now() - interval '5 minutes', "
    "  to_char(s AT TIME ZONE $4, 'YYYY-MM-DD'), to_char(s AT TIME ZONE $4, 'HH24:MI:SS.US') "
    "FROM (SELECT CASE WHEN $1::text IS NULL THEN date_trunc('second', now()) "
    "             ELSE $1::timestamptz END AS s) x";
constexpr db::Sql kConferenceJson =
    "SELECT c.id, c.series_id, c.name, c.owner, rfc3339(c.starts_at), rfc3339(c.ends_at), "
    "c.time_zone, "
    "  to_char(c.starts_at AT TIME ZONE c.time_zone, 'YYYY-MM-DD\"T\"HH24:MI:SS'), "
    "  to_char(c.ends_at AT TIME ZONE c.time_zone, 'YYYY-MM-DD\"T\"HH24:MI:SS'), "
    "  c.ports, c.pin, c.pool, c.bridge_id, b.name, c.room, c.state, c.end_cause, "
    "rfc3339(c.actual_start), "
    "  rfc3339(c.actual_end), c.peak_participants, c.auto_end_when_empty, c.requested_bridge_id, "
    "  (SELECT count(*) FROM participant_legs l WHERE l.conference_id = c.id AND l.left_at IS "
    "NULL), "
    "  s.frequency, s.interval_n, s.weekdays, s.count_n, rfc3339(s.until_at) "
    "FROM conferences c LEFT JOIN bridges b ON b.id = c.bridge_id "
    "LEFT JOIN conference_series s ON s.id = c.series_id WHERE c.id = $1";

// What each lifecycle tick asks (daemon/src/conferences.cc tick()); every booking wakes it.
constexpr db::Sql kTickMissed =
    "SELECT id FROM conferences WHERE state = 'scheduled' AND ends_at <= now() ORDER BY starts_at "
    "LIMIT 100";
constexpr db::Sql kTickDue =
    "SELECT id FROM conferences WHERE state = 'scheduled' AND starts_at - make_interval(secs => "
    "$1::int) <= now() "
    "ORDER BY starts_at LIMIT 50";
constexpr db::Sql kTickEnding =
    "SELECT id, CASE WHEN ends_at <= now() - interval '5 seconds' "
    "  THEN 'scheduled end (carried out late: vcrmd was not running at the end time)' "
    "  WHEN ends_at <= now() THEN 'scheduled end' ELSE 'ended when empty' END "
    "FROM conferences WHERE state IN ('starting', 'active') AND (ends_at <= now() "
    "  OR (state = 'active' AND auto_end_when_empty AND empty_since <= now() - make_interval(secs "
    "=> $1::int)))";

std::string iso(std::time_t t, bool millis) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::array<char, 40> buf{};
  std::strftime(buf.data(), buf.size(), millis ? "%Y-%m-%dT%H:%M:%S.000Z" : "%Y-%m-%dT%H:%M:%SZ",
                &tm);
  return buf.data();
}

// Far-future windows 20 minutes apart and 30 minutes long, so that each booking overlaps only
// its neighbours, as on a real calendar; shared by both contenders, so the table grows alike.
class Slots {
 public:
  Slots() : base_(((std::time(nullptr) / 86400) + 60) * 86400) {}
  std::pair<std::time_t, std::time_t> take() {
    const std::time_t s = base_ + static_cast<std::time_t>(next_++) * 1200;
    return {s, s + 1800};
  }
  [[nodiscard]] int taken() const { return next_; }

 private:
  std::time_t base_;
  std::atomic<int> next_{0};
};

std::int64_t randomRoom() {
  const auto b = vcrm::crypto::randomBytes(8);
  std::uint64_t v = 0;
  for (unsigned char c : b) v = (v << 8) | c;
  return static_cast<std::int64_t>(100000000 + v % 900000000);
}

// One booking as vcrmd makes it: the admission transaction, with the audit row.
std::int64_t bookViaLibpq(db::Connection& c, const std::string& name, const std::string& start,
                          const std::string& end) {
  std::int64_t id = 0;
  {
    db::Transaction tx(c);
    tx.exec(kLockAdmission);
    auto candidates = tx.exec(kLockBridges, {nullptr, nullptr, nullptr});
    std::optional<std::int64_t> best;
    double bestLoad = 2.0;
    for (int i = 0; i < candidates.rows(); ++i) {
      if (candidates.text(i, 3) != "enabled" || candidates.text(i, 4) == "down") continue;
      const std::int64_t bridge = candidates.int64(i, 0);
      const auto capacity = static_cast<double>(candidates.int64(i, 2));
      auto peak = tx.exec(kPeak, {bridge, start, end, nullptr});
      const auto used = static_cast<double>(peak.int64(0, 1));
      if (capacity - used >= 1 && used / capacity < bestLoad) {
        bestLoad = used / capacity;
        best = bridge;
      }
    }
    if (!best) throw std::runtime_error("libpq booking found no bridge with room");
    tx.exec(kPeak, {nullptr, start, end, nullptr});  // the licence's limit, on all bridges
    tx.exec("SAVEPOINT room");
    auto r =
        tx.exec(kInsert, {nullptr, name, "admin", start, end, "UTC", 1, nullptr, nullptr, nullptr,
                          *best, randomRoom(),
                          vcrm::crypto::base64UrlEncode(vcrm::crypto::randomBytes(18)), false});
    id = r.int64(0, 0);
    tx.exec(kAudit, {"admin", "127.0.0.1", "POST", "/api/v1/conferences", "conference.create", name,
                     201, "ok"});
    tx.commit();
  }
  return id;
}

struct RoundResult {
  double seconds = 0;
  std::vector<double> latenciesMs;
  int failures = 0;
  std::string firstFailure;
};

// Runs `book(thread, i)` kThreads x perThread times, all threads released together.
RoundResult runRound(int perThread, const std::function<void(int, int)>& book) {
  RoundResult out;
  std::vector<std::vector<double>> lat(kThreads);
  std::vector<std::string> errors(kThreads);
  std::vector<int> failures(kThreads, 0);
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ++ready;
      while (!go) std::this_thread::yield();
      for (int i = 0; i < perThread; ++i) {
        const auto t0 = Clock::now();
        try {
          book(t, i);
          lat[t].push_back(msSince(t0));
        } catch (const std::exception& e) {
          if (failures[t]++ == 0) errors[t] = e.what();
        }
      }
    });
  }
  while (ready < kThreads) std::this_thread::yield();
  const auto start = Clock::now();
  go = true;
  for (auto& th : threads) th.join();
  out.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (int t = 0; t < kThreads; ++t) {
    out.latenciesMs.insert(out.latenciesMs.end(), lat[t].begin(), lat[t].end());
    out.failures += failures[t];
    if (out.firstFailure.empty()) out.firstFailure = errors[t];
  }
  return out;
}

// Mean milliseconds of `f` over n calls.
double meanMs(int n, const std::function<void(int)>& f) {
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) f(i);
  return msSince(t0) / n;
}

struct CpuMeter {
  pid_t vcrmd;
  pid_t postmaster;
  double vcrmdCpu = 0;
  double pgCpu = 0;
  double selfCpu = 0;
  double wall = 0;
  double v0 = 0, p0 = 0, s0 = 0;
  Clock::time_point t0{};
  void begin() {
    v0 = vcrm::test::processCpuSeconds(vcrmd);
    p0 = vcrm::test::treeCpuSeconds(postmaster);
    s0 = vcrm::test::processCpuSeconds(getpid());
    t0 = Clock::now();
  }
  void end() {
    wall += std::chrono::duration<double>(Clock::now() - t0).count();
    vcrmdCpu += vcrm::test::processCpuSeconds(vcrmd) - v0;
    pgCpu += vcrm::test::treeCpuSeconds(postmaster) - p0;
    selfCpu += vcrm::test::processCpuSeconds(getpid()) - s0;
  }
  [[nodiscard]] std::string text() const {
    std::array<char, 200> buf{};
    std::snprintf(buf.data(), buf.size(),
                  "vcrmd %.0f%%, PostgreSQL %.0f%%, this client %.0f%% of one core",
                  100 * vcrmdCpu / wall, 100 * pgCpu / wall, 100 * selfCpu / wall);
    return buf.data();
  }
};

int run() {
  VcrmdProcess app;
  app.start();
  // A real Janus, idle: a bridge on a closed port would be probed "down" within 2 s and then
  // take no bookings. Bookings are months ahead, so no room is ever created on it.
  JanusProcess janus;
  HttpsClient admin = app.client();
  auto login = admin.loginBearer("admin", app.adminPassword());
  if (login.status != 200) throw std::runtime_error("sign-in failed: " + login.body);
  const auto token = login.json()->getValue<std::string>("token");
  auto b = admin.postJson("/api/v1/bridges", R"({"name":"bench","url":")" + janus.httpUrl() +
                                                 R"(","admin_url":")" + janus.adminUrl() +
                                                 R"(","admin_secret":")" + janus.adminSecret() +
                                                 R"(","capacity_ports":100000})");
  if (b.status != 201) throw std::runtime_error("bridge registration failed: " + b.body);
  const auto bridgeId = b.json()->getValue<std::int64_t>("id");
  for (int i = 0; i < 100; ++i) {
    if (admin.get("/api/v1/bridges/" + std::to_string(bridgeId))
            .json()
            ->getValue<std::string>("health") == "up")
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  const std::string dsn =
      "host=" + (app.stateDir() / "pgsocket").string() + " user=vcrm dbname=vcrm";
  const std::string ca = (app.stateDir() / "tls/server.crt").string();
  std::vector<std::unique_ptr<KeepAliveHttps>> api;
  std::vector<std::unique_ptr<db::Connection>> pg;
  for (int t = 0; t < kThreads; ++t) {
    api.push_back(std::make_unique<KeepAliveHttps>("127.0.0.1", app.httpsPort(), ca, token));
    pg.push_back(std::make_unique<db::Connection>(dsn));
  }
  Slots slots;
  std::atomic<int> serial{0};
  auto apiBook = [&](int t, int) {
    const auto [s, e] = slots.take();
    const std::string body = R"({"name":"api-)" + std::to_string(serial++) + R"(","start":")" +
                             iso(s, false) + R"(","duration_minutes":30,"ports":1})";
    auto r = api[t]->post("/api/v1/conferences", body);
    if (r.status != 201)
      throw std::runtime_error("HTTP " + std::to_string(r.status) + ": " + r.body.substr(0, 300));
  };
  auto pgBook = [&](int t, int) {
    const auto [s, e] = slots.take();
    bookViaLibpq(*pg[t], "sql-" + std::to_string(serial++), iso(s, true), iso(e, true));
  };

  db::Connection probe(dsn);
  auto peakMs = [&] {
    const auto [s, e] = slots.take();
    const std::string start = iso(s, true);
    const std::string end = iso(e, true);
    return meanMs(50, [&](int) { probe.exec(kPeak, {bridgeId, start, end, nullptr}); });
  };

  // Warm-up: connections, TLS sessions, PostgreSQL's caches and plans of both paths.
  runRound(25, pgBook);
  runRound(25, apiBook);
  const int scheduledBefore = slots.taken();
  const double peakBefore = peakMs();

  CpuMeter apiCpu{app.pid(), *app.postmasterPid()};
  CpuMeter pgCpu{app.pid(), *app.postmasterPid()};
  std::vector<double> apiRates;
  std::vector<double> pgRates;
  std::vector<double> apiLat;
  std::vector<double> pgLat;
  int failures = 0;
  std::string firstFailure;
  auto measure = [&](bool viaApi) {
    auto& cpu = viaApi ? apiCpu : pgCpu;
    cpu.begin();
    auto r = runRound(kPerThread, viaApi ? std::function<void(int, int)>(apiBook) : pgBook);
    cpu.end();
    (viaApi ? apiRates : pgRates).push_back((kThreads * kPerThread - r.failures) / r.seconds);
    auto& lat = viaApi ? apiLat : pgLat;
    lat.insert(lat.end(), r.latenciesMs.begin(), r.latenciesMs.end());
    failures += r.failures;
    if (firstFailure.empty()) firstFailure = r.firstFailure;
  };
  // Alternating order, so neither contender always meets the bigger table.
  for (int round = 0; round < kRounds; ++round) {
    measure(round % 2 == 1);
    measure(round % 2 == 0);
  }

  // Serial, one client, and the statements an API booking runs besides the transaction.
  const double serialApi = meanMs(kSerial, [&](int i) { apiBook(0, i); });
  HttpsClient fresh = app.client();
  fresh.setBearer(token);
  const double serialFresh = meanMs(kSerial / 2, [&](int) {
    const auto [s, e] = slots.take();
    auto r = fresh.postJson("/api/v1/conferences", R"({"name":"fresh-)" + std::to_string(serial++) +
                                                       R"(","start":")" + iso(s, false) +
                                                       R"(","duration_minutes":30,"ports":1})");
    if (r.status != 201)
      throw std::runtime_error("HTTP " + std::to_string(r.status) + ": " + r.body);
  });
  // The cost of a request that touches neither the database nor the session table.
  const double versionKept = meanMs(200, [&](int) { api[0]->get("/api/v1/version"); });
  const double versionFresh = meanMs(100, [&](int) { fresh.get("/api/v1/version"); });
  std::int64_t lastId = 0;
  const double serialPg = meanMs(kSerial, [&](int) {
    const auto [s, e] = slots.take();
    lastId = bookViaLibpq(probe, "serial-" + std::to_string(serial++), iso(s, true), iso(e, true));
  });
  const std::string tokenHash = vcrm::crypto::sha256Hex(token);
  const double authMs = meanMs(200, [&](int) {
    probe.exec(kAuthenticate, {tokenHash, "60 minutes"});
  });
  const double tzMs = meanMs(200, [&](int) { probe.exec(kTimeZone, {"UTC"}); });
  const std::string someStart = iso(slots.take().first, false);
  const double timesMs = meanMs(200, [&](int) {
    probe.exec(kTimes, {someStart, nullptr, 30, "UTC"});
  });
  const double jsonMs = meanMs(200, [&](int) { probe.exec(kConferenceJson, {lastId}); });
  const double tickMs = meanMs(50, [&](int) {
    probe.exec(kTickMissed);
    probe.exec(kTickDue, {60});
    probe.exec(kTickEnding, {120});
  });
  const double peakAfter = peakMs();
  const int scheduledAfter = slots.taken();

  if (failures > 0) {
    std::fprintf(stderr, "schedule_throughput: %d bookings failed; first: %s\n", failures,
                 firstFailure.c_str());
    return 1;
  }
  auto median = [](std::vector<double> v) { return percentile(std::move(v), 0.5); };
  const double apiRate = median(apiRates);
  const double pgRate = median(pgRates);
  std::printf("schedule_throughput: %.3f\n", apiRate / pgRate);
  std::printf(
      "  %d client threads x %d bookings x %d rounds each, alternating; one bridge, 1-port "
      "bookings 60+ days ahead\n",
      kThreads, kPerThread, kRounds);
  std::printf("  API (HTTPS keep-alive, bearer): %.0f bookings/s (median round; rounds", apiRate);
  for (double r : apiRates) std::printf(" %.0f", r);
  std::printf("), latency p50 %.2f ms, p99 %.2f ms\n", percentile(apiLat, 0.5),
              percentile(apiLat, 0.99));
  std::printf("  libpq (same transaction + audit row, Unix socket): %.0f bookings/s (rounds",
              pgRate);
  for (double r : pgRates) std::printf(" %.0f", r);
  std::printf("), latency p50 %.2f ms, p99 %.2f ms\n", percentile(pgLat, 0.5),
              percentile(pgLat, 0.99));
  std::printf("  CPU during API rounds: %s\n", apiCpu.text().c_str());
  std::printf("  CPU during libpq rounds: %s\n", pgCpu.text().c_str());
  std::printf(
      "  serial, one client: API %.2f ms/booking on a kept-alive connection, %.2f ms with a new "
      "TLS "
      "connection per request (HttpsClient); libpq %.2f ms\n",
      serialApi, serialFresh, serialPg);
  std::printf(
      "  GET /api/v1/version (no database): %.2f ms kept-alive, %.2f ms with a new TLS "
      "connection\n",
      versionKept, versionFresh);
  std::printf(
      "  statements an API booking adds (each alone via libpq, mean of 200): session lookup %.2f "
      "ms, "
      "time-zone check %.2f ms, time arithmetic %.2f ms, conference read-back %.2f ms (run "
      "twice)\n",
      authMs, tzMs, timesMs, jsonMs);
  std::printf(
      "  the time-zone check alone keeps PostgreSQL busy %.1f ms per booking: at most %.0f "
      "bookings/s on "
      "this machine's %ld cores\n",
      tzMs, 1000.0 * static_cast<double>(sysconf(_SC_NPROCESSORS_ONLN)) / tzMs,
      sysconf(_SC_NPROCESSORS_ONLN));
  std::printf(
      "  each booking wakes the lifecycle loop; its tick queries take %.2f ms at %d scheduled "
      "bookings\n",
      tickMs, scheduledAfter);
  std::printf("  peak-usage query alone: %.2f ms with %d bookings on the bridge, %.2f ms with %d\n",
              peakBefore, scheduledBefore, peakAfter, scheduledAfter);
  std::printf(
      "  API connections opened: %d for %d keep-alive clients\n",
      [&] {
        int n = 0;
        for (auto& c : api) n += c->connects();
        return n;
      }(),
      kThreads);
  return 0;
}

}  // namespace

int main() {
  try {
    return run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "schedule_throughput: %s\n", e.what());
    return 1;
  }
}
