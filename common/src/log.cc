#include "vcrm/common/log.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

namespace vcrm {

std::string_view logLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::Debug:
      return "debug";
    case LogLevel::Info:
      return "info";
    case LogLevel::Warn:
      return "warn";
    case LogLevel::Error:
      return "error";
  }
  return "info";
}

std::optional<LogLevel> parseLogLevel(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "debug") return LogLevel::Debug;
  if (lower == "info") return LogLevel::Info;
  if (lower == "warn" || lower == "warning") return LogLevel::Warn;
  if (lower == "error") return LogLevel::Error;
  return std::nullopt;
}

namespace {

std::string utcNow() {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const std::time_t t = system_clock::to_time_t(now);
  const auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

// Keeps one event on one line: control characters in free text would let input forge lines.
void appendSanitized(std::string& out, std::string_view text) {
  for (char c : text) {
    if (c == '\n' || c == '\r' || c == '\t') {
      out += ' ';
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      out += '?';
    } else {
      out += c;
    }
  }
}

}  // namespace

Logger::Logger(LogLevel level, LogSink sink) : level_(level) {
  if (!sink) {
    sink = [](std::string_view line) {
      std::fwrite(line.data(), 1, line.size(), stderr);
      std::fputc('\n', stderr);
      std::fflush(stderr);
    };
  }
  *sink_.lock() = std::move(sink);
}

void Logger::log(LogLevel level, std::string_view component, std::string_view msgId,
                 std::string_view text, std::string_view object) {
  if (!enabled(level)) return;
  std::string line = utcNow();
  line += ' ';
  std::string levelName(logLevelName(level));
  std::transform(levelName.begin(), levelName.end(), levelName.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  line += levelName;
  line += ' ';
  appendSanitized(line, component);
  line += ' ';
  appendSanitized(line, msgId);
  if (!object.empty()) {
    line += " [";
    appendSanitized(line, object);
    line += ']';
  }
  line += ' ';
  appendSanitized(line, text);
  auto sink = sink_.lock();
  (*sink)(line);
}

}  // namespace vcrm
