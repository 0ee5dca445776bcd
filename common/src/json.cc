#include "vcrm/common/json.h"

#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>

#include <algorithm>
#include <limits>
#include <set>
#include <sstream>
#include <vector>

#include "vcrm/common/error.h"
#include "vcrm/common/utf8.h"

namespace vcrm::json {

namespace {

// Reads the text once before Poco does, outside strings: refuses nesting deeper than
// `maxDepth` (Poco's parser recurses per level; refusing first keeps hostile input cheap) and
// says whether a negative whole number lies below -2^63 (Poco clamps it to -2^63).
bool scanStructure(std::string_view text, int maxDepth, const std::string& what) {
  static constexpr std::string_view kLimit = "9223372036854775808";
  int depth = 0;
  bool inString = false;
  bool escaped = false;
  bool clampedNegative = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
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
    } else if (c == '-') {
      std::size_t end = i + 1;
      while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
      const std::string_view digits = text.substr(i + 1, end - i - 1);
      const bool whole =
          end == text.size() || (text[end] != '.' && text[end] != 'e' && text[end] != 'E');
      clampedNegative =
          clampedNegative || (whole && (digits.size() > kLimit.size() ||
                                        (digits.size() == kLimit.size() && digits > kLimit)));
      i = end - 1;
    }
  }
  return clampedNegative;
}

// Poco's parser reads a 0xFF byte as the end of the text and takes what came before, and Poco's
// messages quote the offending byte as it is: only UTF-8 text without NUL bytes reaches it.
void checkText(std::string_view text, const std::string& what) {
  const std::size_t valid = utf8::validPrefix(text);
  if (valid < text.size()) {
    throw InvalidInput(what + " is not UTF-8 text (byte " + std::to_string(valid + 1) +
                       "); send JSON in UTF-8");
  }
  if (const auto nul = text.find('\0'); nul != std::string_view::npos) {
    throw InvalidInput(what + " holds a NUL byte (byte " + std::to_string(nul + 1) +
                       "); send JSON text");
  }
}

// Poco's handler, refusing what Poco lets through: a key given twice in one object (Poco keeps
// the last one, so a check and the code after it could read different values), a negative
// whole number below -2^63 (Poco reads it as -2^63), and a bare value at the top (which Poco
// refuses with a message about its own stack).
class StrictHandler : public Poco::JSON::ParseHandler {
 public:
  StrictHandler(std::string what, bool clampedNegative)
      : ParseHandler(true), what_(std::move(what)), clampedNegative_(clampedNegative) {}

  void startObject() override {
    ParseHandler::startObject();
    keys_.emplace_back();
    ++depth_;
  }
  void endObject() override {
    keys_.pop_back();
    --depth_;
    ParseHandler::endObject();
  }
  void startArray() override {
    ParseHandler::startArray();
    ++depth_;
  }
  void endArray() override {
    --depth_;
    ParseHandler::endArray();
  }
  void key(const std::string& k) override {
    if (!keys_.back().insert(k).second) {
      throw InvalidInput(what_ + " gives field \"" + k + "\" twice; give each field once",
                         "duplicate_field");
    }
    key_ = k;
    ParseHandler::key(k);
  }
  void value(int v) override {
    scalar();
    ParseHandler::value(v);
  }
  void value(unsigned v) override {
    scalar();
    ParseHandler::value(v);
  }
  void value(Poco::Int64 v) override {
    scalar();
    if (clampedNegative_ && v == std::numeric_limits<Poco::Int64>::min()) {
      throw InvalidInput(
          (key_.empty() ? what_ + " holds a number" : "field \"" + key_ + "\" is a number") +
              " below -9223372036854775808, the smallest whole number accepted",
          "invalid_field");
    }
    ParseHandler::value(v);
  }
  void value(Poco::UInt64 v) override {
    scalar();
    ParseHandler::value(v);
  }
  void value(const std::string& v) override {
    scalar();
    ParseHandler::value(v);
  }
  void value(double v) override {
    scalar();
    ParseHandler::value(v);
  }
  void value(bool v) override {
    scalar();
    ParseHandler::value(v);
  }
  void null() override {
    scalar();
    ParseHandler::null();
  }

 private:
  void scalar() const {
    if (depth_ == 0)
      throw InvalidInput(what_ + " must be a JSON object or array, not a bare value");
  }

  std::string what_;
  bool clampedNegative_;                     // the text holds a number Poco will clamp
  std::vector<std::set<std::string>> keys_;  // the keys seen in each open object
  std::string key_;                          // the last key read
  int depth_ = 0;
};

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

[[noreturn]] void wrongType(const std::string& key, const char* type) {
  throw InvalidInput("field \"" + key + "\" must be " + type, "invalid_field");
}

// What every text field must be: no NUL (no text column can hold one) and not over `maxLen`.
void checkField(const std::string& key, const std::string& s, std::size_t maxLen,
                const char* what) {
  if (s.find('\0') != std::string::npos) {
    throw InvalidInput("field \"" + key + "\" contains a NUL character", "invalid_field");
  }
  if (s.size() > maxLen) {
    throw InvalidInput(
        "field \"" + key + "\" " + what + " longer than " + std::to_string(maxLen) + " bytes",
        "invalid_field");
  }
}

}  // namespace

Poco::Dynamic::Var parse(std::string_view text, int maxDepth, const std::string& what) {
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    throw InvalidInput(what + " is empty; expected JSON");
  }
  checkText(text, what);
  const bool clampedNegative = scanStructure(text, maxDepth, what);
  try {
    Poco::JSON::Parser parser(new StrictHandler(what, clampedNegative));
    return parser.parse(std::string(text));
  } catch (const InvalidInput&) {
    throw;
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
  checkField(key, s, maxLen, "is");
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
                                                       std::size_t maxItems,
                                                       std::size_t maxItemLen) {
  if (!o->has(key) || o->isNull(key)) return std::nullopt;
  const auto arr = o->getArray(key);
  if (!arr) wrongType(key, "an array of strings");
  if (arr->size() > maxItems) wrongType(key, "a shorter array");
  std::vector<std::string> out;
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const auto v = arr->get(static_cast<unsigned>(i));
    if (!v.isString()) wrongType(key, "an array of strings");
    out.push_back(v.extract<std::string>());
    checkField(key, out.back(), maxItemLen, "has an item");
  }
  return out;
}

void onlyKeys(const ObjectPtr& o, const std::vector<std::string>& allowed) {
  for (const auto& [k, _] : *o) {
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
      throw InvalidInput("unknown field \"" + k + "\" (accepted: " + joined(allowed) + ")",
                         "unknown_field");
    }
  }
}

void requireAny(const ObjectPtr& o, const std::vector<std::string>& fields) {
  if (std::any_of(fields.begin(), fields.end(),
                  [&](const std::string& f) { return o->has(f) && !o->isNull(f); })) {
    return;
  }
  throw InvalidInput("nothing to change: give any of " + joined(fields), "nothing_to_change");
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
