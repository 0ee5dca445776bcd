// Logger: the lines an operator reads, one per event, filtered by a level changeable at run time.
#include "vcrm/common/log.h"

#include <gtest/gtest.h>

#include <ctime>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "vcrm/common/guarded.h"

namespace vcrm {
namespace {

// Collects every line a Logger writes.
class CapturedLines {
 public:
  LogSink sink() {
    return [this](std::string_view line) { lines_.lock()->emplace_back(line); };
  }
  std::vector<std::string> lines() const { return *lines_.lock(); }

 private:
  Guarded<std::vector<std::string>> lines_;
};

const std::regex kLine(
    R"(^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{3})Z (DEBUG|INFO|WARN|ERROR) (\S+) (\S+)( \[[^\]]*\])? (.*)$)");

TEST(Logger, LevelFiltering) {
  CapturedLines out;
  Logger log(LogLevel::Warn, out.sink());
  log.debug("http", "D1", "debug");
  log.info("http", "I1", "info");
  log.warn("http", "W1", "warn");
  log.error("http", "E1", "error");
  const auto lines = out.lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find(" WARN http W1 warn"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find(" ERROR http E1 error"), std::string::npos) << lines[1];
  EXPECT_FALSE(log.enabled(LogLevel::Info));
  EXPECT_TRUE(log.enabled(LogLevel::Error));
}

TEST(Logger, DefaultLevelIsInfo) {
  CapturedLines out;
  Logger log(LogLevel::Info, out.sink());
  log.debug("c", "D", "hidden");
  log.info("c", "I", "shown");
  ASSERT_EQ(out.lines().size(), 1u);
  EXPECT_EQ(Logger().level(), LogLevel::Info);
}

TEST(Logger, SetLevelAtRunTimeTakesEffect) {
  CapturedLines out;
  Logger log(LogLevel::Error, out.sink());
  log.info("db", "BEFORE", "dropped");
  log.setLevel(LogLevel::Debug);
  EXPECT_EQ(log.level(), LogLevel::Debug);
  log.debug("db", "AFTER", "kept");
  log.setLevel(LogLevel::Error);
  log.warn("db", "LATER", "dropped again");
  const auto lines = out.lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("DEBUG db AFTER kept"), std::string::npos) << lines[0];
}

TEST(Logger, LineFormat) {
  CapturedLines out;
  Logger log(LogLevel::Debug, out.sink());
  const std::time_t before = std::time(nullptr);
  log.warn("pgcluster", "PG_STALE_LOCK", "removing postmaster.pid", "/var/lib/vcrm/pgdata");
  log.info("auth", "LOGIN_OK", "user signed in");
  const std::time_t after = std::time(nullptr);
  const auto lines = out.lines();
  ASSERT_EQ(lines.size(), 2u);

  std::smatch m;
  ASSERT_TRUE(std::regex_match(lines[0], m, kLine)) << lines[0];
  EXPECT_EQ(m[8], "WARN");
  EXPECT_EQ(m[9], "pgcluster");
  EXPECT_EQ(m[10], "PG_STALE_LOCK");
  EXPECT_EQ(m[11], " [/var/lib/vcrm/pgdata]");
  EXPECT_EQ(m[12], "removing postmaster.pid");
  // The timestamp is UTC and now.
  std::tm tm{};
  tm.tm_year = std::stoi(m[1]) - 1900;
  tm.tm_mon = std::stoi(m[2]) - 1;
  tm.tm_mday = std::stoi(m[3]);
  tm.tm_hour = std::stoi(m[4]);
  tm.tm_min = std::stoi(m[5]);
  tm.tm_sec = std::stoi(m[6]);
  const std::time_t stamped = timegm(&tm);
  EXPECT_GE(stamped, before);
  EXPECT_LE(stamped, after);

  ASSERT_TRUE(std::regex_match(lines[1], m, kLine)) << lines[1];
  EXPECT_EQ(m[8], "INFO");
  EXPECT_FALSE(m[11].matched) << "no [object] part without an object: " << lines[1];
  EXPECT_EQ(m[12], "user signed in");
}

TEST(Logger, EveryLevelHasItsUpperCaseName) {
  CapturedLines out;
  Logger log(LogLevel::Debug, out.sink());
  log.log(LogLevel::Debug, "c", "M", "t");
  log.log(LogLevel::Info, "c", "M", "t");
  log.log(LogLevel::Warn, "c", "M", "t");
  log.log(LogLevel::Error, "c", "M", "t");
  const auto lines = out.lines();
  ASSERT_EQ(lines.size(), 4u);
  const char* names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
  for (int i = 0; i < 4; ++i) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(lines[i], m, kLine)) << lines[i];
    EXPECT_EQ(m[8], names[i]);
  }
}

TEST(Logger, ControlCharactersCannotForgeLines) {
  CapturedLines out;
  Logger log(LogLevel::Info, out.sink());
  log.warn("auth", "LOGIN_FAILED",
           "bad password for x\n2030-01-01T00:00:00.000Z INFO auth LOGIN_OK admin\r\x1b[2J\x7f\t.",
           "evil\nuser");
  log.info("comp\nonent", "ID\r", "text");
  const auto lines = out.lines();
  ASSERT_EQ(lines.size(), 2u);
  for (const auto& line : lines) {
    for (unsigned char c : line) {
      EXPECT_FALSE(c < 0x20 || c == 0x7f) << "control character " << int(c) << " in " << line;
    }
    EXPECT_TRUE(std::regex_match(line, kLine)) << line;
  }
  EXPECT_NE(lines[0].find("[evil user]"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("bad password for x 2030-01-01"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("comp onent ID "), std::string::npos) << lines[1];
}

TEST(Logger, ConcurrentLoggingKeepsLinesWhole) {
  // The sink appends byte by byte with no lock of its own: the Logger must serialise calls,
  // or lines from different threads would interleave and corrupt each other.
  std::string all;
  Logger log(LogLevel::Info, [&](std::string_view line) {
    for (char c : line) all.push_back(c);
    all.push_back('\n');
  });
  constexpr int kThreads = 8;
  constexpr int kLines = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string text =
          "thread " + std::to_string(t) + " " + std::string(200, static_cast<char>('a' + t));
      for (int i = 0; i < kLines; ++i) {
        log.info("worker", "TICK", text, std::to_string(i));
      }
    });
  }
  for (auto& th : threads) th.join();

  std::istringstream in(all);
  std::string line;
  int count = 0;
  while (std::getline(in, line)) {
    ++count;
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, kLine)) << line;
    const std::string text = m[12];
    ASSERT_EQ(text.size(), std::string("thread 0 ").size() + 200) << line;
    const char fill = text.back();
    EXPECT_EQ(text, "thread " + std::to_string(fill - 'a') + " " + std::string(200, fill));
  }
  EXPECT_EQ(count, kThreads * kLines);
}

TEST(LogLevelNames, ParseIsCaseInsensitiveAndKnowsWarning) {
  EXPECT_EQ(parseLogLevel("debug"), LogLevel::Debug);
  EXPECT_EQ(parseLogLevel("DEBUG"), LogLevel::Debug);
  EXPECT_EQ(parseLogLevel("Info"), LogLevel::Info);
  EXPECT_EQ(parseLogLevel("warn"), LogLevel::Warn);
  EXPECT_EQ(parseLogLevel("Warning"), LogLevel::Warn);
  EXPECT_EQ(parseLogLevel("WARNING"), LogLevel::Warn);
  EXPECT_EQ(parseLogLevel("eRRoR"), LogLevel::Error);
}

TEST(LogLevelNames, ParseRejectsEverythingElse) {
  for (const char* bad :
       {"", "verbose", "trace", "fatal", "err", " info", "info ", "warnings", "1", "debug\n"}) {
    EXPECT_EQ(parseLogLevel(bad), std::nullopt) << '"' << bad << '"';
  }
}

TEST(LogLevelNames, NamesRoundTrip) {
  for (LogLevel l : {LogLevel::Debug, LogLevel::Info, LogLevel::Warn, LogLevel::Error}) {
    EXPECT_EQ(parseLogLevel(logLevelName(l)), l);
  }
  EXPECT_EQ(logLevelName(LogLevel::Warn), "warn");
}

}  // namespace
}  // namespace vcrm
