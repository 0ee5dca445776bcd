// The login throttle's arithmetic, with a controlled clock.
#include <gtest/gtest.h>

#include "vcrm/daemon/auth.h"

using vcrm::LoginThrottle;

TEST(LoginThrottle, FreeFailuresThenGrowingDelaysPerUser) {
  LoginThrottle t(3, 100);
  const auto t0 = LoginThrottle::Clock::now();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(t.waitSeconds("alice", "a1", t0), 0);
    t.recordFailure("alice", "a1", t0);
  }
  EXPECT_EQ(t.waitSeconds("alice", "a1", t0), 1);
  EXPECT_EQ(t.waitSeconds("bob", "a1", t0), 0) << "another user is not slowed";
  t.recordFailure("alice", "a1", t0 + std::chrono::seconds(1));
  EXPECT_EQ(t.waitSeconds("alice", "a2", t0 + std::chrono::seconds(1)), 2) << "follows the user";
  EXPECT_EQ(t.waitSeconds("alice", "a2", t0 + std::chrono::seconds(3)), 0);
}

TEST(LoginThrottle, DelayIsCappedAndForgivenAfterAQuietPeriod) {
  LoginThrottle t(1, 1000);
  auto now = LoginThrottle::Clock::now();
  for (int i = 0; i < 40; ++i) t.recordFailure("u", "a", now);
  EXPECT_LE(t.waitSeconds("u", "a", now), 300);
  EXPECT_GT(t.waitSeconds("u", "a", now), 200);
  now += std::chrono::minutes(16);
  t.recordFailure("u", "a", now);
  EXPECT_EQ(t.waitSeconds("u", "a", now), 1);
}

TEST(LoginThrottle, SuccessClearsTheUserButNotTheAddress) {
  LoginThrottle t(2, 2);
  const auto now = LoginThrottle::Clock::now();
  t.recordFailure("u", "addr", now);
  t.recordFailure("u", "addr", now);
  t.recordSuccess("u");
  EXPECT_EQ(t.waitSeconds("u", "other", now), 0);
  EXPECT_EQ(t.waitSeconds("v", "addr", now), 1);
}
