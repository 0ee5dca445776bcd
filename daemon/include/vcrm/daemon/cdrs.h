// Call detail records for billing and reporting: conference CDRs and participant legs as
// keyset-paged JSON and as streamed RFC 4180 CSV, plus a booking as an RFC 5545 calendar.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <string>

#include "vcrm/common/db.h"
#include "vcrm/common/json.h"

namespace vcrm {

class CdrService {
 public:
  // A selection of CDRs. The time window is [from, to): on actual_end for conference CDRs and
  // on left_at for participant legs. Durations are whole seconds, rounded to the nearest.
  struct Query {
    std::optional<std::string> from, to;  // RFC 3339, e.g. 2026-11-22T09:00:00Z
    std::optional<std::int64_t> conferenceId;
    int limit = 100;                    // rows per page, 1..1000 (JSON only)
    std::optional<std::string> cursor;  // opaque: next_cursor of the previous page
  };

  explicit CdrService(db::Pool& pool);

  // Builds a Query from URL query parameters from, to, conference_id, limit and cursor (other
  // parameters are ignored). Throws InvalidInput naming the parameter and the expected form.
  static Query fromParams(const std::map<std::string, std::string>& query);

  // {"cdrs":[...], "next_cursor": "..."|null}, ordered by actual_end, conference_id.
  json::ObjectPtr conferences(const Query& q);
  // Closed legs only: {"legs":[...], "next_cursor": "..."|null}, ordered by left_at, id.
  json::ObjectPtr participants(const Query& q);

  // The whole selection (the limit is ignored; a cursor, if any, is where it starts) as CSV
  // with a header row, fetched and written 1,000 rows at a time so memory stays flat. Returns
  // early, without error, once `out` goes bad (the client went away).
  void conferencesCsv(const Query& q, std::ostream& out);
  void participantsCsv(const Query& q, std::ostream& out);

  // The conference as an RFC 5545 calendar; for an occurrence of a series, the whole series as
  // one recurring event. Throws NotFound for an unknown id.
  static std::string icsForConference(db::Connection& c, std::int64_t conferenceId,
                                      const std::string& productVersion);

 private:
  db::Pool& pool_;
};

}  // namespace vcrm
