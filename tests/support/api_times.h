// Times as the API writes and reads them (RFC 3339 UTC), for tests that book and compare.
#pragma once

#include <chrono>
#include <ctime>
#include <string>

namespace vcrm::test {

// Now plus `fromNow`, to the second, e.g. "2026-11-22T09:00:05Z".
inline std::string isoIn(std::chrono::seconds fromNow) {
  const auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() + fromNow);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Seconds since the epoch of an RFC 3339 UTC time as the API writes it (milliseconds kept).
inline double epochOf(const std::string& rfc3339) {
  std::tm tm{};
  strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  double frac = 0;
  if (auto dot = rfc3339.find('.'); dot != std::string::npos) frac = std::stod("0" + rfc3339.substr(dot, 4));
  return static_cast<double>(timegm(&tm)) + frac;
}

inline double nowEpoch() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace vcrm::test
