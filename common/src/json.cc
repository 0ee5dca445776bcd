#include "vcrm/common/json.h"

#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>

#include <algorithm>
#include <sstream>

#include "vcrm/common/error.h"

namespace vcrm::json {

namespace {

// Poco's parser recurses per level; refusing deep nesting first keeps hostile input cheap.
void checkDepth(std::string_view text, int maxDepth, const std::string& what) {
  int depth = 0;
  bool inString = false;
  bool escaped = false;
  for (char c : text) {
    if (inString) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        inString = false;
      }
      continue;
    }
    if (c == '"') {
      inString = true;
    } else if (c == '{' || c == '[') {
      if (++depth > maxDepth) {
        throw InvalidInput(what + " is JSON nested deeper than " + std::to_string(maxDepth) + " levels");
      }
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
}

[[noreturn]] void wrongType(const std::string& key, const char* type) {
  throw InvalidInput("field \"" + key + "\" must be " + type, "invalid_field");
}

}  // namespace

Poco::Dynamic::Var parse(std::string_view text, int maxDepth, const std::string& what) {
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    throw InvalidInput(what + " is empty; expected JSON");
  }
  checkDepth(text, maxDepth, what);
  try {
    Poco::JSON::Parser parser;
    return parser.parse(std::string(text));
  } catch (const Poco::Exception& e) {
    throw InvalidInput(what + " is not valid JSON: " + e.displayText());
  } catch (const std::exception& e) {
    throw InvalidInput(what + " is not valid JSON: " + e.what());
  }
}

ObjectPtr parseObject(std::string_view text, int maxDepth) {
  const Poco::Dynamic::Var v = parse(text, maxDepth, "request body");
  if (v.type() != typeid(ObjectPtr)) throw InvalidInput("request body must be a JSON object");
  return v.extract<ObjectPtr>();
}

std::optional<std::string> optString(const ObjectPtr& o, const std::string& key,
                                     std::size_t maxLen) {
  if (!o->has(key) || o->isNull(key)) return std::nullopt;
  const auto v = o->get(key);
  if (!v.isString()) wrongType(key, "a string");
  auto s = v.extract<std::string>();
  // "\u0000" is valid JSON but no text column can hold it; refuse it here, as input.
  if (s.find('\0') != std::string::npos) {
    throw InvalidInput("field \"" + key + "\" contains a NUL character", "invalid_field");
  }
  if (s.size() > maxLen) {
    throw InvalidInput("field \"" + key + "\" is longer than " + std::to_string(maxLen) +
                           " bytes",
                       "invalid_field");
  }
  return s;
}

std::string requireString(const ObjectPtr& o, const std::string& key, std::size_t maxLen) {
  auto s = optString(o, key, maxLen);
  if (!s) throw InvalidInput("field \"" + key + "\" is required", "missing_field");
  return *s;
}

std::optional<bool> optBool(const ObjectPtr& o, const std::string& key) {
  if (!o->has(key) || o->isNull(key)) return std::nullopt;
  const auto v = o->get(key);
  if (v.type() != typeid(bool)) wrongType(key, "true or false");
  return v.extract<bool>();
}

std::optional<std::int64_t> optInt(const ObjectPtr& o, const std::string& key) {
  if (!o->has(key) || o->isNull(key)) return std::nullopt;
  const auto v = o->get(key);
  // Poco counts true/false as integers; a client sending true for a number made a mistake.
  if (!v.isInteger() || v.type() == typeid(bool)) wrongType(key, "a whole number");
  try {
    return v.convert<std::int64_t>();
  } catch (const Poco::Exception&) {
    wrongType(key, "a whole number in range");
  }
}

std::optional<std::vector<std::string>> optStringArray(const ObjectPtr& o, const std::string& key,
                                                       std::size_t maxItems) {
  if (!o->has(key) || o->isNull(key)) return std::nullopt;
  const auto arr = o->getArray(key);
  if (!arr) wrongType(key, "an array of strings");
  if (arr->size() > maxItems) wrongType(key, "a shorter array");
  std::vector<std::string> out;
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const auto v = arr->get(static_cast<unsigned>(i));
    if (!v.isString()) wrongType(key, "an array of strings");
    out.push_back(v.extract<std::string>());
  }
  return out;
}

void onlyKeys(const ObjectPtr& o, const std::vector<std::string>& allowed) {
  for (const auto& [k, _] : *o) {
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      throw InvalidInput("unknown field \"" + k + "\" (accepted: " + list + ")", "unknown_field");
    }
  }
}

std::string stringify(const Poco::Dynamic::Var& value) {
  std::ostringstream out;
  // JSON_WRAP_STRINGS: without it a top-level string comes out bare, which is not JSON.
  Poco::JSON::Stringifier::stringify(value, out, 0, -1,
                                     Poco::JSON_PRESERVE_KEY_ORDER | Poco::JSON_WRAP_STRINGS);
  return out.str();
}

std::string stringify(const ObjectPtr& o) {
  std::ostringstream out;
  o->stringify(out);
  return out.str();
}

}  // namespace vcrm::json
