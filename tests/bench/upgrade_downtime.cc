// upgrade_downtime [runs]: a real upgrade of this build installed as N (tests/support/
// installed_appliance.h, run by vcrm-supervisor) to N+1 (build-nplus1, made by packaging/dev
// test) through the API, while another thread asks GET /healthz every 50 ms (a new TLS
// connection each time, as a load balancer's probe would). Per run: the longest stretch without
// a 200 (from the last 200 before it to the first after, so it overstates by up to one poll
// interval), the time from the confirmation to the first 200 of the new version, and to the
// upgrade's record saying done. Between runs the appliance goes back to N (go-back). Prints
// "upgrade_downtime: <median seconds without service>" and the medians of the rest.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

#include "bench_support.h"
#include "installed_appliance.h"
#include "restore_support.h"
#include "vcrm/common/version.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double secondsBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

struct Poll {
  Clock::time_point at;
  bool ok;
  std::string version;  // of /api/v1/version when /healthz said 200
};

// Asks /healthz every 50 ms on the appliance's fixed port until stopped.
class Poller {
 public:
  Poller(int port, std::string ca) : port_(port), ca_(std::move(ca)) {
    thread_ = std::thread([this] { run(); });
  }
  ~Poller() {
    stop_ = true;
    thread_.join();
  }
  std::vector<Poll> polls() {
    std::lock_guard lock(mutex_);
    return polls_;
  }

 private:
  void run() {
    auto next = Clock::now();
    while (!stop_) {
      Poll p{Clock::now(), false, ""};
      try {
        vcrm::test::HttpsClient c("127.0.0.1", port_, ca_);
        p.ok = c.get("/healthz").status == 200;
      } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): refused: down
      }
      {
        std::lock_guard lock(mutex_);
        polls_.push_back(p);
      }
      next += 50ms;
      std::this_thread::sleep_until(next);
    }
  }
  int port_;
  std::string ca_;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::vector<Poll> polls_;
  std::thread thread_;
};

constexpr const char* kPassword = "the operator's password of the bench";

}  // namespace

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::stoi(argv[1]) : 5;
  const auto next = vcrm::test::nextBuildDir(vcrm::test::NextBuild::NPlus1);
  if (!next) {
    std::cerr << vcrm::test::nextBuildMissing(vcrm::test::NextBuild::NPlus1) << "\n";
    return 1;
  }
  const std::string nextVersion = vcrm::test::versionOfBuild(*next);
  vcrm::test::InstalledAppliance appliance;
  auto& app = appliance.app();
  auto admin = appliance.adminClient();
  if (app.createReadyUser(admin, "bench", {"operator"}, kPassword).status != 201) return 1;
  const fs::path bundle = appliance.scratch() / "next.bin";
  vcrm::test::makeBundleOfBuild(*next, bundle, appliance.scratch() / "build-bundle.log");
  const std::string ca = (app.stateDir() / "tls/server.crt").string();

  std::vector<double> down, served, done;
  std::printf("%s -> %s, %d runs\n", vcrm::productVersion(), nextVersion.c_str(), runs);
  for (int run = 0; run < runs; ++run) {
    auto op = appliance.client();
    if (op.loginBearer("bench", kPassword).status != 200) return 1;
    const auto verified = vcrm::test::uploadAndVerifyBundle(op, bundle);
    if (verified.status != 201) {
      std::cerr << "verify: " << verified.body << "\n";
      return 1;
    }
    const pid_t before = app.daemonPid();
    Clock::time_point confirmedAt;
    Clock::time_point doneAt;
    std::vector<Poll> polls;
    {
      Poller poller(appliance.httpsPort(), ca);
      std::this_thread::sleep_for(300ms);
      confirmedAt = Clock::now();
      const auto confirmed = vcrm::test::confirmUpgrade(op, vcrm::test::kBackupPassphrase);
      if (confirmed.status != 202) {
        std::cerr << "confirm: " << confirmed.body << "\n";
        return 1;
      }
      const std::string id = confirmed.json()->getObject("upgrade")->getValue<std::string>("id");
      const auto status = vcrm::test::awaitUpgradeEnd(appliance, id, 240s);
      doneAt = Clock::now();
      if (status->getObject("upgrade")->getValue<std::string>("outcome") != "complete") {
        std::cerr << "the upgrade did not complete\n";
        return 1;
      }
      std::this_thread::sleep_for(300ms);
      polls = poller.polls();
    }
    app.awaitRestart(before);
    // The longest stretch without a 200, and the first 200 after it.
    double longest = 0;
    Clock::time_point backAt = confirmedAt;
    std::optional<Clock::time_point> lastOk;
    bool inGap = false;
    for (const auto& p : polls) {
      if (p.ok) {
        if (inGap && lastOk) {
          const double gap = secondsBetween(*lastOk, p.at);
          if (gap > longest) {
            longest = gap;
            backAt = p.at;
          }
        }
        inGap = false;
        lastOk = p.at;
      } else {
        inGap = true;
      }
    }
    down.push_back(longest);
    served.push_back(secondsBetween(confirmedAt, backAt));
    done.push_back(secondsBetween(confirmedAt, doneAt));
    std::printf(
        "run %d: %.2f s without a 200 (%zu polls), new version serving %.2f s after the "
        "confirmation, record done after %.2f s\n",
        run + 1, longest, polls.size(), served.back(), done.back());
    std::fflush(stdout);

    // Back to N for the next run.
    const pid_t onNext = app.daemonPid();
    auto a = appliance.adminClient();
    const auto back = a.postJson("/api/v1/upgrade/go-back", "{}");
    if (back.status != 202) {
      std::cerr << "go-back: " << back.body << "\n";
      return 1;
    }
    vcrm::test::awaitUpgradeEnd(
        appliance, back.json()->getObject("upgrade")->getValue<std::string>("id"), 120s);
    app.awaitRestart(onNext);
    // The supervisor started again (as after a reboot): it counts every exit 75 within 60 s
    // of its start as a quick restart request and handles the fifth in a row as a crash loop
    // (30 s backoff), which back-to-back upgrades and go-backs would otherwise reach.
    app.stop();
    app.start();
  }
  std::printf("upgrade_downtime: %.2f\n", vcrm::test::percentile(down, 0.5));
  std::printf(
      "median: %.2f s without a 200 (max %.2f), first 200 of N+1 %.2f s after the "
      "confirmation, whole apply (record done, polled every 200 ms) %.2f s\n",
      vcrm::test::percentile(down, 0.5), vcrm::test::percentile(down, 1.0),
      vcrm::test::percentile(served, 0.5), vcrm::test::percentile(done, 0.5));
  return 0;
}
