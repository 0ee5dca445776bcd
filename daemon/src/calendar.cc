#include "vcrm/daemon/calendar.h"

#include <algorithm>
#include <charconv>
#include <cstdio>

#include "vcrm/common/error.h"

namespace vcrm::calendar {

namespace {

// Digits at [pos, pos + n) as a number, or -1.
int digits(std::string_view s, std::size_t pos, std::size_t n) {
  if (pos + n > s.size()) return -1;
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

}  // namespace

bool isLeapYear(std::int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

unsigned daysInMonth(std::int64_t year, unsigned month) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12) return 0;
  return month == 2 && isLeapYear(year) ? 29 : kDays[month - 1];
}

std::optional<Date> parseDate(std::string_view s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return std::nullopt;
  const int y = digits(s, 0, 4);
  const int m = digits(s, 5, 2);
  const int d = digits(s, 8, 2);
  if (y < 0 || m < 1 || m > 12 || d < 1 ||
      static_cast<unsigned>(d) > daysInMonth(y, static_cast<unsigned>(m))) {
    return std::nullopt;
  }
  return Date{y, static_cast<unsigned>(m), static_cast<unsigned>(d)};
}

bool isRfc3339(std::string_view s) {
  // YYYY-MM-DDTHH:MM[:SS[.f{1,6}]](Z|±HH:MM)
  if (s.size() < 17 || !parseDate(s.substr(0, 10)) || s[10] != 'T') return false;
  const int hh = digits(s, 11, 2);
  const int mm = digits(s, 14, 2);
  if (s[13] != ':' || hh < 0 || hh > 23 || mm < 0 || mm > 59) return false;
  std::size_t pos = 16;
  if (pos < s.size() && s[pos] == ':') {
    const int ss = digits(s, pos + 1, 2);
    if (ss < 0 || ss > 59) return false;
    pos += 3;
    if (pos < s.size() && s[pos] == '.') {
      std::size_t n = 0;
      while (pos + 1 + n < s.size() && s[pos + 1 + n] >= '0' && s[pos + 1 + n] <= '9') ++n;
      if (n < 1 || n > 6) return false;
      pos += 1 + n;
    }
  }
  const auto zone = s.substr(pos);
  if (zone == "Z") return true;
  if (zone.size() != 6 || (zone[0] != '+' && zone[0] != '-') || zone[3] != ':') return false;
  const int oh = digits(zone, 1, 2);
  const int om = digits(zone, 4, 2);
  return oh >= 0 && oh <= 23 && om >= 0 && om <= 59;
}

std::string requireTime(const std::string& field, const std::string& value) {
  if (!isRfc3339(value)) {
    throw InvalidInput("field \"" + field +
                           "\" must be an RFC 3339 time such as 2026-11-22T09:00:00Z or "
                           "2026-11-22T10:00:00+01:00; got \"" + value.substr(0, 64) + "\"",
                       "invalid_time");
  }
  return value;
}

// H. Hinnant's days_from_civil / civil_from_days.
std::int64_t daysFromCivil(const Date& date) {
  std::int64_t y = date.year - (date.month <= 2);
  const unsigned m = date.month;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + date.day - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

Date civilFromDays(std::int64_t z) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return Date{y + (m <= 2), m, d};
}

int isoWeekday(std::int64_t days) {
  return static_cast<int>(((days + 3) % 7 + 7) % 7) + 1;
}

std::string formatDate(const Date& d) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u", static_cast<long long>(d.year), d.month,
                d.day);
  return buf;
}

const std::vector<std::string>& weekdayNames() {
  static const std::vector<std::string> n = {"MO", "TU", "WE", "TH", "FR", "SA", "SU"};
  return n;
}

std::set<int> parseWeekdays(const std::vector<std::string>& names) {
  std::set<int> days;
  for (const auto& w : names) {
    auto it = std::find(weekdayNames().begin(), weekdayNames().end(), w);
    if (it == weekdayNames().end()) {
      throw InvalidInput(
          "recurrence.weekdays takes MO, TU, WE, TH, FR, SA, SU; got \"" + w.substr(0, 8) + "\"",
          "invalid_field");
    }
    days.insert(static_cast<int>(it - weekdayNames().begin()) + 1);
  }
  return days;
}

std::vector<std::string> expandLocal(const Recurrence& rule, const Date& firstDate,
                                     const std::string& localTime, std::size_t limit) {
  const std::int64_t startDays = daysFromCivil(firstDate);
  const std::int64_t interval = std::max(rule.interval, 1);
  std::vector<std::string> locals;
  if (rule.frequency == Recurrence::Frequency::Daily) {
    for (std::int64_t k = 0; locals.size() < limit; ++k) {
      locals.push_back(formatDate(civilFromDays(startDays + k * interval)) + " " + localTime);
    }
    return locals;
  }
  std::set<int> days = rule.weekdays;
  if (days.empty()) days.insert(isoWeekday(startDays));
  const std::int64_t week0 = startDays - (isoWeekday(startDays) - 1);
  for (std::int64_t w = 0; locals.size() < limit; ++w) {
    for (int d : days) {
      const std::int64_t day = week0 + w * 7 * interval + (d - 1);
      if (day < startDays || locals.size() >= limit) continue;
      locals.push_back(formatDate(civilFromDays(day)) + " " + localTime);
    }
  }
  return locals;
}

}  // namespace vcrm::calendar
