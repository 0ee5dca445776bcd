// UTF-8 text checks: what comes from the network (bodies, paths, query strings) is bytes, and
// only valid UTF-8 may reach PostgreSQL, a JSON answer or a log line.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace vcrm::utf8 {

// How many leading bytes of `text` are valid UTF-8 (no overlong forms, no surrogates, nothing
// past U+10FFFF): text.size() when all of it is.
std::size_t validPrefix(std::string_view text);
inline bool isValid(std::string_view text) {
  return validPrefix(text) == text.size();
}

// `text` with each byte that is not part of a valid sequence replaced by U+FFFD, so text that
// echoes input (an error message quoting a value cut short) is always valid.
std::string sanitized(std::string_view text);

// At most `maxBytes` of `text`, cut at a character boundary.
std::string clip(std::string text, std::size_t maxBytes);

}  // namespace vcrm::utf8
