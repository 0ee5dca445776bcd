// Polls a condition until it holds or the time runs out: for outcomes that arrive
// asynchronously (bridge events, probes, lifecycle ticks). Returns the final verdict.
#pragma once

#include <chrono>
#include <thread>

namespace vcrm::test {

template <typename F>
bool eventually(F&& condition, std::chrono::milliseconds timeout,
                std::chrono::milliseconds step = std::chrono::milliseconds(50)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(step);
  }
  return condition();
}

}  // namespace vcrm::test
