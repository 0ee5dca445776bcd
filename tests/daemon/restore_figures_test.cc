// A restore of a database with 1,000,000 participant CDRs through the API, timed: the
// verification (POST /api/v1/restores, the whole archive read and extracted) and the restore
// itself (confirm until vcrmd is back with the restored database), with the data compared
// table by table by digest. Prints its figures.
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>

#include "api_times.h"
#include "bridge_setup.h"
#include "eventually.h"
#include "restore_support.h"
#include "vcrmd_process.h"

using vcrm::test::VcrmdProcess;

namespace {

std::string digest(VcrmdProcess& v) {
  auto db = v.database();
  return db
      .exec(
          "SELECT (SELECT count(*) FROM participant_legs)::text || ' ' || "
          "(SELECT md5(string_agg(l::text, ',' ORDER BY id)) FROM participant_legs l)")
      .text(0, 0);
}

double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

TEST(RestoreFigures, AMillionParticipantCdrsRoundTrip) {
  VcrmdProcess vcrmd;
  vcrmd.start();
  auto admin = vcrmd.adminClient();
  auto bridge = vcrm::test::registerJanusBridge(admin, "figures", 1000);
  ASSERT_TRUE(vcrm::test::eventually(
      [&] {
        return admin.get("/api/v1/bridges/" + std::to_string(bridge.id))
                   .json()
                   ->getValue<std::string>("health") == "up";
      },
      std::chrono::seconds(30)));
  const auto seed =
      admin.postJson("/api/v1/conferences", R"({"name":"seed","start":")" +
                                                vcrm::test::isoIn(std::chrono::hours(24 * 30)) +
                                                R"(","duration_minutes":30,"ports":1})");
  ASSERT_EQ(seed.status, 201) << seed.body;
  {
    auto db = vcrmd.database();
    db.exec(
        "INSERT INTO participant_legs (conference_id, room, participant_id, display_name, "
        "joined_at, left_at, end_reason) SELECT $1::bigint, 1, g, 'participant ' || g, "
        "now() - interval '2 hours', now() - interval '1 hour', 'left' "
        "FROM generate_series(1, 1000000) g",
        {seed.json()->getValue<std::string>("id")});
  }
  const std::string before = digest(vcrmd);
  const std::string backup = vcrm::test::backupThroughApi(admin);
  {
    auto db = vcrmd.database();
    db.exec("DELETE FROM participant_legs WHERE participant_id % 2 = 0");
  }
  ASSERT_NE(digest(vcrmd), before);

  const auto verifyStart = std::chrono::steady_clock::now();
  auto verified = vcrm::test::verifyBackup(admin, backup);
  const double verifySeconds = since(verifyStart);
  ASSERT_EQ(verified.status, 201) << verified.body;
  const auto held = verified.json()->getObject("restore");
  const auto restoreStart = std::chrono::steady_clock::now();
  vcrm::test::confirmAndAwait(vcrmd, admin, held->getValue<std::string>("id"));
  const double restoreSeconds = since(restoreStart);
  EXPECT_EQ(digest(vcrmd), before);
  std::cout
      << "[ figures  ] archive of " << held->getValue<std::string>("size")
      << " bytes with 1,000,000 participant CDRs: verified and extracted in " << verifySeconds
      << " s, restored (database created, pg_restore -j2, migrated, swapped in, vcrmd back) in "
      << restoreSeconds << " s\n";
  EXPECT_LT(restoreSeconds, 300);
}

}  // namespace
