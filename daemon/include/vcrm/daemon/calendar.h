// Calendar arithmetic for bookings, as pure functions: RFC 3339 checks, proleptic Gregorian
// day numbers, and the expansion of a daily or weekly series into local wall-clock times.
// Converting a wall-clock time in a time zone to an instant stays in PostgreSQL (its zone
// rules): GCC 12's libstdc++ has no std::chrono::zoned_time, and TZ + localtime_r is not
// thread-safe. Keeping the series in wall-clock time is what keeps 09:00 at 09:00 across a
// daylight-saving change.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace vcrm::calendar {

// True for the RFC 3339 times the API accepts: 2026-11-22T09:00Z, 2026-11-22T09:00:00Z,
// 2026-11-22T10:00:00.250+01:00. Checks field ranges and the day of the month (leap years).
bool isRfc3339(std::string_view text);
// The value when isRfc3339, else InvalidInput naming `field` with an example.
std::string requireTime(const std::string& field, const std::string& value);

struct Date {
  std::int64_t year = 1970;
  unsigned month = 1;  // 1..12
  unsigned day = 1;    // 1..31
  bool operator==(const Date&) const = default;
};
bool isLeapYear(std::int64_t year);
unsigned daysInMonth(std::int64_t year, unsigned month);
// Days since 1970-01-01, and back.
std::int64_t daysFromCivil(const Date& d);
Date civilFromDays(std::int64_t days);
// ISO weekday: 1 Monday .. 7 Sunday.
int isoWeekday(std::int64_t days);
// YYYY-MM-DD, and its parse (nullopt when malformed or not a real date).
std::string formatDate(const Date& d);
std::optional<Date> parseDate(std::string_view text);

// The two-letter weekday names of a weekly series, MO..SU, and their ISO numbers.
const std::vector<std::string>& weekdayNames();
// ISO numbers of `names`; InvalidInput naming the first unknown one.
std::set<int> parseWeekdays(const std::vector<std::string>& names);

// A daily or weekly series as the user gave it.
struct Recurrence {
  enum class Frequency { Daily, Weekly } frequency = Frequency::Daily;
  int interval = 1;        // every n days or weeks
  std::set<int> weekdays;  // weekly only; empty: the first occurrence's weekday
};

// The first `limit` occurrences of `rule` from `firstDate` (the first occurrence's local date),
// each "YYYY-MM-DD <localTime>" in the series' own wall-clock time. A weekly series takes each
// chosen weekday of every interval-th week (weeks start on Monday), never a day before the first.
std::vector<std::string> expandLocal(const Recurrence& rule, const Date& firstDate,
                                     const std::string& localTime, std::size_t limit);

}  // namespace vcrm::calendar
