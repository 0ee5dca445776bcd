// Operator-facing logging: one line per event with level, component, a stable message id and
// the object's id. The level can be changed at run time. Never pass a secret to a log call.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "vcrm/common/guarded.h"

namespace vcrm {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3 };

std::string_view logLevelName(LogLevel level);
// Parses "debug", "info", "warn"/"warning", "error" (case-insensitive).
std::optional<LogLevel> parseLogLevel(std::string_view text);

// A sink receives finished lines (without trailing newline). The default writes to stderr.
using LogSink = std::function<void(std::string_view line)>;

class Logger {
 public:
  explicit Logger(LogLevel level = LogLevel::Info, LogSink sink = {});

  void setLevel(LogLevel level) { level_.store(level); }
  LogLevel level() const { return level_.load(); }
  bool enabled(LogLevel level) const { return level >= level_.load(); }

  // Writes `<UTC time> <LEVEL> <component> <msgId> [<object>] <text>`.
  void log(LogLevel level, std::string_view component, std::string_view msgId,
           std::string_view text, std::string_view object = {});

  void debug(std::string_view c, std::string_view id, std::string_view t, std::string_view o = {}) {
    log(LogLevel::Debug, c, id, t, o);
  }
  void info(std::string_view c, std::string_view id, std::string_view t, std::string_view o = {}) {
    log(LogLevel::Info, c, id, t, o);
  }
  void warn(std::string_view c, std::string_view id, std::string_view t, std::string_view o = {}) {
    log(LogLevel::Warn, c, id, t, o);
  }
  void error(std::string_view c, std::string_view id, std::string_view t, std::string_view o = {}) {
    log(LogLevel::Error, c, id, t, o);
  }

 private:
  std::atomic<LogLevel> level_;
  Guarded<LogSink> sink_;  // locked per line so lines stay whole when threads log at once
};

}  // namespace vcrm
