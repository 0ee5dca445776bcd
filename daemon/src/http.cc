#include "vcrm/daemon/http.h"

#include <sstream>

#include "vcrm/common/error.h"
#include "vcrm/common/utf8.h"

namespace vcrm::http {

std::string Request::header(const std::string& lowerName) const {
  auto it = headers.find(lowerName);
  return it == headers.end() ? std::string() : it->second;
}

std::optional<std::string> Request::cookie(const std::string& name) const {
  const std::string all = header("cookie");
  std::size_t pos = 0;
  while (pos < all.size()) {
    const auto end = all.find(';', pos);
    std::string part = all.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    const auto b = part.find_first_not_of(' ');
    if (b != std::string::npos) part = part.substr(b);
    const auto eq = part.find('=');
    if (eq != std::string::npos && part.substr(0, eq) == name) return part.substr(eq + 1);
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  return std::nullopt;
}

std::optional<std::string> Request::queryParam(const std::string& name) const {
  auto it = query.find(name);
  if (it == query.end()) return std::nullopt;
  return it->second;
}

Response Response::json(int status, const Poco::Dynamic::Var& value) {
  Response r;
  r.status = status;
  r.body = vcrm::json::stringify(value);
  return r;
}

Response Response::noContent() {
  Response r;
  r.status = 204;
  r.contentType.clear();
  return r;
}

Response Response::error(int status, const std::string& code, const std::string& message) {
  Poco::JSON::Object::Ptr inner = new Poco::JSON::Object;
  inner->set("code", code);
  // Messages quote what was sent (cut to a length, perhaps inside a character): always valid text.
  inner->set("message", vcrm::utf8::sanitized(message));
  Poco::JSON::Object::Ptr outer = new Poco::JSON::Object;
  outer->set("error", inner);
  return json(status, outer);
}

std::optional<std::string> percentDecode(const std::string& text, bool plusIsSpace) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      auto hex = [](char h) -> int {
        if (h >= '0' && h <= '9') return h - '0';
        if (h >= 'a' && h <= 'f') return h - 'a' + 10;
        if (h >= 'A' && h <= 'F') return h - 'A' + 10;
        return -1;
      };
      const int hi = hex(text[i + 1]);
      const int lo = hex(text[i + 2]);
      if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plusIsSpace) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::map<std::string, std::string> parseQuery(const std::string& query) {
  std::map<std::string, std::string> out;
  std::istringstream in(query);
  std::string part;
  while (std::getline(in, part, '&')) {
    if (part.empty()) continue;
    const auto eq = part.find('=');
    const std::string rawKey = part.substr(0, eq);
    auto key = percentDecode(rawKey, true);
    auto value = eq == std::string::npos ? std::optional<std::string>("")
                                         : percentDecode(part.substr(eq + 1), true);
    if (!key || !value) {
      // Dropping it would answer as if it had not been sent: a filter silently ignored.
      throw InvalidInput("query parameter \"" + (key ? *key : rawKey) +
                             "\" is malformed: a '%' must be followed by two hex digits, and %00 "
                             "is not allowed",
                         "bad_query");
    }
    out[*key] = *value;
  }
  return out;
}

}  // namespace vcrm::http
