// Guarded<T>: shared state reachable only under its lock.
#include "vcrm/common/guarded.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace vcrm {
namespace {

using namespace std::chrono_literals;

TEST(Guarded, ContendedIncrementsAreNeverLost) {
  constexpr int kThreads = 8;
  constexpr int kIncrements = 20000;
  Guarded<long> counter(0L);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIncrements; ++i) {
        auto c = counter.lock();
        // Read, yield the CPU now and then, write: without the lock updates would be lost.
        const long v = *c;
        if (i % 1000 == 0) std::this_thread::yield();
        *c = v + 1;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(*counter.lock(), static_cast<long>(kThreads) * kIncrements);
}

TEST(Guarded, CompoundStateStaysConsistent) {
  // Two fields updated together are never seen half-updated by a reader.
  struct Account {
    long a = 1000;
    long b = 0;
  };
  Guarded<Account> acct;
  std::atomic<bool> torn{false};
  std::thread writer([&] {
    for (int i = 0; i < 50000; ++i) {
      auto h = acct.lock();
      h->a -= 1;
      h->b += 1;
      if (h->a < 0) {
        h->a += 1000;
        h->b -= 1000;
      }
    }
  });
  std::thread reader([&] {
    for (int i = 0; i < 50000; ++i) {
      auto h = acct.lock();
      if (h->a + h->b != 1000) torn = true;
    }
  });
  writer.join();
  reader.join();
  EXPECT_FALSE(torn);
}

TEST(Guarded, ConstAccessAndConstruction) {
  const Guarded<std::map<std::string, int>> m(std::map<std::string, int>{{"a", 1}});
  auto h = m.lock();
  EXPECT_EQ(h->at("a"), 1);
  static_assert(std::is_const_v<std::remove_reference_t<decltype(*h)>>,
                "a const Guarded gives read-only access");
  Guarded<std::string> s(3, 'x');
  EXPECT_EQ(*s.lock(), "xxx");
}

TEST(Guarded, WaitForTimesOutWhenTheConditionNeverHolds) {
  Guarded<bool> ready(false);
  std::condition_variable cv;
  const auto start = std::chrono::steady_clock::now();
  auto h = ready.lock();
  EXPECT_FALSE(h.waitFor(cv, 100ms, [&] { return *h; }));
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, 100ms);
  EXPECT_LT(waited, 2s);
}

TEST(Guarded, WaitForReleasesTheLockAndWakesOnNotify) {
  Guarded<int> value(0);
  std::condition_variable cv;
  std::thread producer([&] {
    std::this_thread::sleep_for(50ms);
    *value.lock() = 42;  // would deadlock if waitFor kept the lock while waiting
    cv.notify_all();
  });
  const auto start = std::chrono::steady_clock::now();
  bool got = false;
  {
    auto h = value.lock();
    got = h.waitFor(cv, 10s, [&] { return *h == 42; });
    EXPECT_EQ(*h, 42);  // still holding the lock after the wait
  }
  producer.join();
  EXPECT_TRUE(got);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(Guarded, WaitForReturnsAtOnceWhenTheConditionAlreadyHolds) {
  Guarded<int> value(7);
  std::condition_variable cv;
  const auto start = std::chrono::steady_clock::now();
  auto h = value.lock();
  EXPECT_TRUE(h.waitFor(cv, 10s, [&] { return *h == 7; }));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}

}  // namespace
}  // namespace vcrm
