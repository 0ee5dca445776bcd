#include "db_snapshot.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <sstream>

namespace vcrm::test {

std::string databaseSnapshot(db::Connection& c, const SnapshotExclusions& leaveOut) {
  // Statement text is only ever a literal here (db::Sql), so the per-table queries are built by
  // PostgreSQL itself, in a function of this session only.
  c.exec(
      "CREATE OR REPLACE FUNCTION pg_temp.vcrm_snapshot(skip text[], minus jsonb) RETURNS SETOF "
      "text "
      "LANGUAGE plpgsql AS $$ "
      "DECLARE t text; n bigint; r text; "
      "BEGIN "
      "  FOR t IN SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
      "           AND table_type = 'BASE TABLE' AND NOT table_name = ANY(skip) ORDER BY table_name "
      "LOOP "
      "    EXECUTE format('SELECT count(*) FROM %I', t) INTO n; "
      "    RETURN NEXT '== ' || t || ' (' || n || ' rows)'; "
      // jsonb text is canonical (keys sorted), so equal rows print alike in any column order.
      "    FOR r IN EXECUTE format('SELECT (to_jsonb(x) - %L::text[])::text AS r FROM %I x ORDER "
      "BY r', "
      "        coalesce(ARRAY(SELECT jsonb_array_elements_text(minus -> t)), '{}'), t) LOOP "
      "      RETURN NEXT r; "
      "    END LOOP; "
      "  END LOOP; "
      "END $$");
  Poco::JSON::Array skip;
  for (const auto& t : leaveOut.tables) skip.add(t);
  Poco::JSON::Object minus;
  for (const auto& [table, columns] : leaveOut.columns) {
    Poco::JSON::Array a;
    for (const auto& column : columns) a.add(column);
    minus.set(table, a);
  }
  std::ostringstream skipJson;
  std::ostringstream minusJson;
  skip.stringify(skipJson);
  minus.stringify(minusJson);
  auto rows = c.exec(
      "SELECT s FROM pg_temp.vcrm_snapshot(ARRAY(SELECT jsonb_array_elements_text($1::jsonb)), "
      "$2::jsonb) s",
      {skipJson.str(), minusJson.str()});
  std::string out;
  for (int i = 0; i < rows.rows(); ++i) out += rows.text(i, 0) + "\n";
  return out;
}

}  // namespace vcrm::test
