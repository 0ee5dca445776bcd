// Times that look like RFC 3339 but name no instant are the caller's mistake: a 400 that says
// which value was refused, never a 503 "database is not answering", and nothing is booked.
#include <gtest/gtest.h>

#include <Poco/JSON/Array.h>

#include "vcrmd_process.h"

using vcrm::test::VcrmdProcess;

namespace {

TEST(BadTimes, ImpossibleTimesAre400sNamingTheValueAndBookNothing) {
  VcrmdProcess app;
  app.start();
  auto admin = app.client();
  ASSERT_EQ(admin.loginBearer("admin", app.adminPassword()).status, 200);
  for (const char* when : {"2026-13-45T99:99Z", "2026-02-30T10:00:00Z", "2026-06-01T24:30:00+01:00",
                           "2026-06-01T10:00:00+25:00"}) {
    auto r = admin.postJson("/api/v1/conferences", std::string(R"({"name":"Bad","start":")") + when +
                                                       R"(","duration_minutes":30,"ports":2})");
    EXPECT_EQ(r.status, 400) << when << ": " << r.body;
    EXPECT_NE(r.body.find(when), std::string::npos) << "the refused value is named: " << r.body;
    auto cdrs = admin.get(std::string("/api/v1/cdrs/conferences?from=") + when);
    EXPECT_EQ(cdrs.status, 400) << when << ": " << cdrs.body;
  }
  auto list = admin.get("/api/v1/conferences");
  ASSERT_EQ(list.status, 200) << list.body;
  EXPECT_EQ(list.json()->getArray("conferences")->size(), 0u) << list.body;
  EXPECT_EQ(app.client().get("/healthz").status, 200);
}

}  // namespace
