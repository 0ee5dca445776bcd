// The login throttle's arithmetic, with a controlled clock: per (user, address) backoff, the
// looser per-address and per-user caps, attempts in flight, and how addresses are grouped.
#include <gtest/gtest.h>

#include <thread>

#include "vcrm/daemon/auth.h"

using vcrm::LoginThrottle;
using std::chrono::minutes;
using std::chrono::seconds;

namespace {

LoginThrottle::Limits limits(int perPair, int perAddress, int userBurst = 1000) {
  LoginThrottle::Limits l;
  l.freePerUserAddress = perPair;
  l.freePerAddress = perAddress;
  l.userBurst = userBurst;
  return l;
}

// One wrong password: reserved, hashed, found wrong. Returns what reserve() answered.
int wrong(LoginThrottle& t, const std::string& user, const std::string& address, LoginThrottle::Clock::time_point now) {
  const int wait = t.reserve(user, address, now, std::chrono::milliseconds(0));
  if (wait == 0) t.failed(user, address, now);
  return wait;
}

}  // namespace

TEST(LoginThrottle, FreeFailuresThenGrowingDelaysPerUserAndAddress) {
  LoginThrottle t(limits(3, 100));
  const auto t0 = LoginThrottle::Clock::now();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(wrong(t, "alice", "10.0.0.1", t0), 0) << i;
  EXPECT_EQ(wrong(t, "alice", "10.0.0.1", t0), 1);
  EXPECT_EQ(t.waitSeconds("bob", "10.0.0.1", t0), 0) << "another user is not slowed";
  EXPECT_EQ(wrong(t, "alice", "10.0.0.1", t0 + seconds(1)), 0);
  EXPECT_EQ(wrong(t, "alice", "10.0.0.1", t0 + seconds(1)), 2) << "the wait doubles";
  EXPECT_EQ(wrong(t, "alice", "10.0.0.1", t0 + seconds(3)), 0);
}

TEST(LoginThrottle, FailuresFromOneAddressDoNotSlowTheUserElsewhere) {
  LoginThrottle t;  // the appliance's limits
  const auto t0 = LoginThrottle::Clock::now();
  // An attacker guesses as fast as allowed from one address for a whole day.
  int tried = 0;
  for (auto now = t0; now < t0 + std::chrono::hours(24); now += seconds(1)) {
    tried += wrong(t, "admin", "203.0.113.9", now) == 0;
  }
  EXPECT_LT(tried, 24 * 12 + 20) << "about one guess per 5 minutes once slowed";
  EXPECT_EQ(wrong(t, "admin", "198.51.100.4", t0 + std::chrono::hours(24)), 0)
      << "the real admin, elsewhere, signs in at once";
}

TEST(LoginThrottle, ManyAddressesTogetherHitTheLooserPerUserCap) {
  LoginThrottle::Limits l = limits(3, 100, 10);
  l.userDrain = seconds(60);
  LoginThrottle t(l);
  const auto t0 = LoginThrottle::Clock::now();
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(wrong(t, "alice", "10.0.0." + std::to_string(i), t0), 0) << i;
  }
  const int wait = wrong(t, "alice", "10.0.1.1", t0);
  EXPECT_GE(wait, 59) << "a fresh address waits for the user's bucket to drain";
  EXPECT_LE(wait, 60);
  EXPECT_EQ(wrong(t, "bob", "10.0.1.1", t0), 0) << "other users are not slowed";
  EXPECT_EQ(wrong(t, "alice", "10.0.1.1", t0 + seconds(60)), 0) << "one place drained a minute later";
  EXPECT_GT(wrong(t, "alice", "10.0.1.2", t0 + seconds(60)), 0);
}

TEST(LoginThrottle, AnAttemptInFlightCountsAsAFailure) {
  LoginThrottle t(limits(5, 100));
  const auto t0 = LoginThrottle::Clock::now();
  int through = 0;
  // 50 parallel guesses: none has finished, so none is known to have failed yet.
  for (int i = 0; i < 50; ++i) through += t.reserve("admin", "192.0.2.1", t0, std::chrono::milliseconds(0)) == 0;
  EXPECT_EQ(through, 5);
}

TEST(LoginThrottle, AnAttemptWaitingOnlyForOthersInFlightGoesAheadWhenTheySucceed) {
  LoginThrottle t(limits(1, 100));
  ASSERT_EQ(t.reserve("script", "192.0.2.1"), 0);
  std::thread second([&] {
    // Refused only because the first is undecided: it waits for the outcome.
    EXPECT_EQ(t.reserve("script", "192.0.2.1"), 0);
    t.succeeded("script", "192.0.2.1");
  });
  t.succeeded("script", "192.0.2.1");
  second.join();
  EXPECT_EQ(t.waitSeconds("script", "192.0.2.1"), 0);
  // If the one in flight turns out wrong, the waiting one is refused.
  ASSERT_EQ(t.reserve("script", "192.0.2.2"), 0);
  std::thread third([&] { EXPECT_GT(t.reserve("script", "192.0.2.2"), 0); });
  t.failed("script", "192.0.2.2");
  third.join();
}

TEST(LoginThrottle, SuccessTakesBackItsAttemptAndClearsThePairOnly) {
  LoginThrottle t(limits(3, 3));
  const auto t0 = LoginThrottle::Clock::now();
  EXPECT_EQ(wrong(t, "u", "192.0.2.1", t0), 0);
  EXPECT_EQ(wrong(t, "u", "192.0.2.1", t0), 0);
  ASSERT_EQ(t.reserve("u", "192.0.2.1", t0, std::chrono::milliseconds(0)), 0);
  EXPECT_GT(t.waitSeconds("u", "192.0.2.1", t0), 0) << "three attempts counted while the third is in flight";
  t.succeeded("u", "192.0.2.1");
  EXPECT_EQ(t.waitSeconds("u", "192.0.2.1", t0), 0) << "the right password clears the pair";
  // The address keeps the two real failures: one more and other users from it wait.
  EXPECT_EQ(wrong(t, "v", "192.0.2.1", t0), 0);
  EXPECT_EQ(t.waitSeconds("x", "192.0.2.1", t0), 1);
}

TEST(LoginThrottle, DelayIsCappedAndForgivenAfterAQuietPeriod) {
  LoginThrottle t(limits(1, 1000));
  auto now = LoginThrottle::Clock::now();
  for (int i = 0; i < 40; ++i) {
    now += seconds(t.waitSeconds("u", "a", now));
    EXPECT_EQ(wrong(t, "u", "a", now), 0);
  }
  EXPECT_EQ(t.waitSeconds("u", "a", now), 300);
  now += minutes(16);
  EXPECT_EQ(wrong(t, "u", "a", now), 0);
  EXPECT_EQ(t.waitSeconds("u", "a", now), 1);
}

TEST(LoginThrottle, RefusedAttemptsDoNotLengthenTheWait) {
  LoginThrottle t(limits(1, 1000));
  const auto t0 = LoginThrottle::Clock::now();
  EXPECT_EQ(wrong(t, "u", "a", t0), 0);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(wrong(t, "u", "a", t0), 1);
  EXPECT_EQ(wrong(t, "u", "a", t0 + seconds(1)), 0);
}

TEST(LoginThrottle, IPv6IsCountedPerSlash64AndMappedIPv4AsIPv4) {
  EXPECT_EQ(LoginThrottle::addressGroup("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
  EXPECT_EQ(LoginThrottle::addressGroup("2001:db8:1:2:bbbb:cccc:dddd:eeee"), "2001:db8:1:2::/64");
  EXPECT_EQ(LoginThrottle::addressGroup("::ffff:192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(LoginThrottle::addressGroup("192.0.2.7"), "192.0.2.7");

  LoginThrottle t(limits(2, 100));
  const auto t0 = LoginThrottle::Clock::now();
  EXPECT_EQ(wrong(t, "u", "2001:db8:1:2::1", t0), 0);
  EXPECT_EQ(wrong(t, "u", "2001:db8:1:2::2", t0), 0);
  EXPECT_GT(wrong(t, "u", "2001:db8:1:2:ffff::3", t0), 0) << "a new host in the same /64";
  EXPECT_EQ(wrong(t, "u", "2001:db8:1:3::1", t0), 0) << "the next /64 is another place";
  EXPECT_EQ(wrong(t, "u", "::ffff:192.0.2.7", t0), 0);
  EXPECT_EQ(wrong(t, "u", "192.0.2.7", t0), 0);
  EXPECT_GT(wrong(t, "u", "::ffff:192.0.2.7", t0), 0) << "mapped and plain IPv4 are one address";
}
