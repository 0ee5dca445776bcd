#include "vcrm/daemon/module.h"

namespace vcrm {

PeriodicWorker::PeriodicWorker(Spec spec, Logger& log) : spec_(std::move(spec)), log_(log) {}

PeriodicWorker::~PeriodicWorker() { stop(); }

void PeriodicWorker::start() {
  if (running_.exchange(true)) return;
  if (spec_.onStart) {
    try {
      spec_.onStart();
    } catch (const std::exception& e) {
      log_.error(spec_.name, "START_FAILED", e.what());
    }
  }
  thread_ = std::thread([this] { loop(); });
}

void PeriodicWorker::stop() {
  if (!running_.exchange(false)) return;
  {
    auto w = wake_.lock();
    *w = true;
  }
  wakeCv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void PeriodicWorker::wake() {
  if (!running_) return;
  {
    auto w = wake_.lock();
    *w = true;
  }
  wakeCv_.notify_all();
}

void PeriodicWorker::loop() {
  while (running_) {
    try {
      spec_.pass();
    } catch (const std::exception& e) {
      log_.error(spec_.name, "PASS_FAILED", e.what());
    }
    auto w = wake_.lock();
    w.waitFor(wakeCv_, spec_.period, [&] { return *w || !running_; });
    *w = false;
  }
}

std::vector<Route> ModuleList::routes() const {
  std::vector<Route> all;
  for (const auto& m : modules_) {
    for (auto& r : m->routes()) all.push_back(std::move(r));
  }
  return all;
}

std::vector<Worker*> ModuleList::workers() const {
  std::vector<Worker*> all;
  for (const auto& m : modules_) {
    for (auto* w : m->workers()) all.push_back(w);
  }
  return all;
}

void ModuleList::clear() {
  while (!modules_.empty()) modules_.pop_back();
}

}  // namespace vcrm
