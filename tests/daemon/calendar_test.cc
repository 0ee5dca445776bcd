// The calendar arithmetic of bookings, with no database and no Janus: RFC 3339 checks, day
// numbers across month and leap-year edges, and series expansion in local wall-clock time —
// which is what keeps a 09:00 meeting at 09:00 across daylight-saving changes (the zone's
// offset is applied afterwards, per occurrence, by PostgreSQL's zone rules).
#include "vcrm/daemon/calendar.h"

#include <gtest/gtest.h>

#include "vcrm/common/error.h"

namespace cal = vcrm::calendar;

namespace {

cal::Date d(std::int64_t y, unsigned m, unsigned day) {
  return cal::Date{y, m, day};
}

cal::Recurrence weekly(std::set<int> days, int interval = 1) {
  cal::Recurrence r;
  r.frequency = cal::Recurrence::Frequency::Weekly;
  r.interval = interval;
  r.weekdays = std::move(days);
  return r;
}

TEST(CalendarTest, AcceptsTheRfc3339TimesTheApiDocuments) {
  for (const char* t :
       {"2026-11-22T09:00:00Z", "2026-11-22T09:00Z", "2026-11-22T10:00:00+01:00",
        "2026-03-29T01:59:59.123456-05:00", "2024-02-29T00:00:00Z", "2000-02-29T23:59:59Z"}) {
    EXPECT_TRUE(cal::isRfc3339(t)) << t;
    EXPECT_EQ(cal::requireTime("start", t), t);
  }
}

TEST(CalendarTest, RefusesMalformedTimesWithTheFieldNamed) {
  for (const char* t :
       {"", "2026-11-22", "2026-11-22 09:00:00Z", "2026-11-22T09:00:00", "2026-13-01T09:00:00Z",
        "2026-02-29T09:00:00Z", "1900-02-29T09:00:00Z", "2026-04-31T09:00:00Z",
        "2026-11-22T24:00:00Z", "2026-11-22T09:60:00Z", "2026-11-22T09:00:00.Z",
        "2026-11-22T09:00:00.1234567Z", "2026-11-22T09:00:00+1:00", "2026-11-22T09:00:00+01:60",
        "26-11-22T09:00:00Z", "2026-11-22T09:00:00Zjunk", "2026-1a-22T09:00:00Z"}) {
    EXPECT_FALSE(cal::isRfc3339(t)) << t;
    try {
      cal::requireTime("recurrence.until", t);
      ADD_FAILURE() << "accepted " << t;
    } catch (const vcrm::InvalidInput& e) {
      EXPECT_NE(std::string(e.what()).find("recurrence.until"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("got \"" + std::string(t) + "\""), std::string::npos) << e.what();
      EXPECT_EQ(e.code(), "invalid_time");
    }
  }
}

TEST(CalendarTest, DayNumbersRoundTripAcrossMonthYearAndLeapYearEdges) {
  EXPECT_EQ(cal::daysFromCivil(d(1970, 1, 1)), 0);
  EXPECT_EQ(cal::daysFromCivil(d(2000, 3, 1)) - cal::daysFromCivil(d(2000, 2, 28)),
            2);  // 2000 is leap
  EXPECT_EQ(cal::daysFromCivil(d(2100, 3, 1)) - cal::daysFromCivil(d(2100, 2, 28)),
            1);  // 2100 is not
  EXPECT_EQ(cal::daysFromCivil(d(2025, 1, 1)) - cal::daysFromCivil(d(2024, 12, 31)), 1);
  for (std::int64_t day = -800000; day < 800000; day += 997) {
    EXPECT_EQ(cal::daysFromCivil(cal::civilFromDays(day)), day);
  }
  EXPECT_EQ(cal::civilFromDays(cal::daysFromCivil(d(2024, 2, 29))), d(2024, 2, 29));
  EXPECT_EQ(cal::daysInMonth(2024, 2), 29u);
  EXPECT_EQ(cal::daysInMonth(2026, 2), 28u);
  EXPECT_EQ(cal::daysInMonth(2026, 4), 30u);
  EXPECT_FALSE(cal::parseDate("2026-02-29"));
  EXPECT_EQ(cal::parseDate("2028-02-29"), d(2028, 2, 29));
  EXPECT_EQ(cal::formatDate(d(987, 6, 5)), "0987-06-05");
}

TEST(CalendarTest, IsoWeekdaysAreMondayOneToSundaySeven) {
  EXPECT_EQ(cal::isoWeekday(cal::daysFromCivil(d(1970, 1, 1))), 4);    // a Thursday
  EXPECT_EQ(cal::isoWeekday(cal::daysFromCivil(d(2026, 3, 29))), 7);   // a Sunday
  EXPECT_EQ(cal::isoWeekday(cal::daysFromCivil(d(1969, 12, 29))), 1);  // a Monday, before the epoch
  EXPECT_EQ(cal::parseWeekdays({"MO", "FR", "SU"}), (std::set<int>{1, 5, 7}));
  EXPECT_THROW(cal::parseWeekdays({"MO", "Mo"}), vcrm::InvalidInput);
}

// Europe/Berlin springs forward on 2026-03-29 and falls back on 2026-10-25: a daily 09:00 series
// keeps 09:00 local on each side (its UTC time moves from 08:00 to 07:00 and back, which the
// zone conversion does per occurrence).
TEST(CalendarTest, ADailySeriesKeepsItsWallClockTimeAcrossBerlinsDaylightSavingChanges) {
  cal::Recurrence daily;
  EXPECT_EQ(cal::expandLocal(daily, d(2026, 3, 27), "09:00:00.000000", 4),
            (std::vector<std::string>{"2026-03-27 09:00:00.000000", "2026-03-28 09:00:00.000000",
                                      "2026-03-29 09:00:00.000000", "2026-03-30 09:00:00.000000"}));
  EXPECT_EQ(cal::expandLocal(daily, d(2026, 10, 24), "09:00:00.000000", 3),
            (std::vector<std::string>{"2026-10-24 09:00:00.000000", "2026-10-25 09:00:00.000000",
                                      "2026-10-26 09:00:00.000000"}));
}

// America/New_York springs forward on 2026-03-08 (02:00 does not exist) and falls back on
// 2026-11-01 (01:30 happens twice): the series still names the wall-clock time each day; the
// zone rules decide the instant (PostgreSQL takes the later offset for a gap, the earlier for
// a repeat).
TEST(CalendarTest, AWeeklySeriesInNewYorkNamesTheSameWallClockTimeOverBothChanges) {
  auto sundays = cal::expandLocal(weekly({7}), d(2026, 3, 1), "02:30:00.000000", 3);
  EXPECT_EQ(sundays,
            (std::vector<std::string>{"2026-03-01 02:30:00.000000", "2026-03-08 02:30:00.000000",
                                      "2026-03-15 02:30:00.000000"}));
  auto fallBack = cal::expandLocal(weekly({7}), d(2026, 10, 25), "01:30:00.000000", 2);
  EXPECT_EQ(fallBack,
            (std::vector<std::string>{"2026-10-25 01:30:00.000000", "2026-11-01 01:30:00.000000"}));
}

TEST(CalendarTest, AWeeklySeriesTakesItsWeekdaysInOrderAndNeverADayBeforeTheFirst) {
  // From Wednesday 2026-01-07, Mondays and Wednesdays and Fridays: Monday the 5th is skipped.
  EXPECT_EQ(cal::expandLocal(weekly({1, 3, 5}), d(2026, 1, 7), "10:00:00.000000", 5),
            (std::vector<std::string>{"2026-01-07 10:00:00.000000", "2026-01-09 10:00:00.000000",
                                      "2026-01-12 10:00:00.000000", "2026-01-14 10:00:00.000000",
                                      "2026-01-16 10:00:00.000000"}));
  // No weekdays given: the first occurrence's own weekday, every second week.
  EXPECT_EQ(cal::expandLocal(weekly({}, 2), d(2026, 1, 7), "10:00:00.000000", 3),
            (std::vector<std::string>{"2026-01-07 10:00:00.000000", "2026-01-21 10:00:00.000000",
                                      "2026-02-04 10:00:00.000000"}));
}

TEST(CalendarTest, SeriesCrossMonthYearAndLeapDayEdges) {
  cal::Recurrence daily;
  EXPECT_EQ(cal::expandLocal(daily, d(2028, 2, 28), "08:00:00.000000", 3),
            (std::vector<std::string>{"2028-02-28 08:00:00.000000", "2028-02-29 08:00:00.000000",
                                      "2028-03-01 08:00:00.000000"}));
  daily.interval = 3;
  EXPECT_EQ(cal::expandLocal(daily, d(2026, 12, 30), "08:00:00.000000", 2),
            (std::vector<std::string>{"2026-12-30 08:00:00.000000", "2027-01-02 08:00:00.000000"}));
  // A weekly series over the turn of the year: Thursday 2026-12-31, then 2027-01-07.
  EXPECT_EQ(cal::expandLocal(weekly({4}), d(2026, 12, 31), "08:00:00.000000", 2),
            (std::vector<std::string>{"2026-12-31 08:00:00.000000", "2027-01-07 08:00:00.000000"}));
  EXPECT_EQ(cal::expandLocal(daily, d(2026, 1, 1), "08:00:00.000000", 366).size(), 366u);
}

}  // namespace
