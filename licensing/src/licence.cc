#include "vcrm/licensing/licence.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <memory>
#include <utility>
#include <vector>

namespace vcrm::licensing {

namespace {

// ---- a strict JSON reader for signed payloads ----------------------------------------------

struct Member;

struct Value {
  enum class Kind { Null, Bool, Int, String, Object, Array } kind = Kind::Null;
  bool b = false;
  std::int64_t i = 0;
  std::string s;
  std::vector<Member> members;  // in document order
  std::vector<Value> items;
};

struct Member {
  std::string first;
  Value second;
};

std::string_view kindName(Value::Kind k) {
  switch (k) {
    case Value::Kind::Null:
      return "null";
    case Value::Kind::Bool:
      return "a boolean";
    case Value::Kind::Int:
      return "an integer";
    case Value::Kind::String:
      return "a string";
    case Value::Kind::Object:
      return "an object";
    case Value::Kind::Array:
      return "an array";
  }
  return "?";
}

struct PayloadError {
  Reason reason;
  std::string message;
};

[[noreturn]] void fail(Reason r, std::string message) {
  throw PayloadError{r, std::move(message)};
}
[[noreturn]] void syntax(std::size_t at, const std::string& what) {
  fail(Reason::PayloadMalformed,
       "the licence payload is not valid JSON at byte " + std::to_string(at) + ": " + what);
}

class Reader {
 public:
  explicit Reader(std::string_view text) : t_(text) {}

  Value document() {
    if (t_.substr(0, 3) == "\xEF\xBB\xBF") {
      fail(Reason::PayloadMalformed, "the licence payload starts with a byte-order mark");
    }
    Value v = value(1);
    blanks();
    if (p_ != t_.size()) syntax(p_, "text after the end of the document");
    return v;
  }

 private:
  void blanks() {
    while (p_ < t_.size() && (t_[p_] == ' ' || t_[p_] == '\t' || t_[p_] == '\n' || t_[p_] == '\r'))
      ++p_;
  }
  bool eat(char c) {
    blanks();
    if (p_ < t_.size() && t_[p_] == c) {
      ++p_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!eat(c)) syntax(p_, std::string("expected '") + c + "'");
  }
  bool word(std::string_view w) {
    if (t_.substr(p_, w.size()) == w) {
      p_ += w.size();
      return true;
    }
    return false;
  }

  Value value(int depth) {
    blanks();
    if (p_ >= t_.size()) syntax(p_, "the document ends early");
    const char c = t_[p_];
    Value v;
    if (c == '{' || c == '[') {
      if (depth > kMaxPayloadDepth) {
        fail(Reason::PayloadTooDeep, "the licence payload nests deeper than " +
                                         std::to_string(kMaxPayloadDepth) + " levels");
      }
      ++p_;
      if (c == '{') {
        v.kind = Value::Kind::Object;
        if (eat('}')) return v;
        do {
          blanks();
          const std::size_t at = p_;
          if (p_ >= t_.size() || t_[p_] != '"') syntax(p_, "expected a key");
          std::string key = string();
          for (const auto& m : v.members) {
            if (m.first == key) {
              fail(Reason::PayloadDuplicateKey, "the licence payload has the key \"" + key +
                                                    "\" twice (byte " + std::to_string(at) + ")");
            }
          }
          expect(':');
          Value member = value(depth + 1);
          v.members.push_back(Member{std::move(key), std::move(member)});
        } while (eat(','));
        expect('}');
      } else {
        v.kind = Value::Kind::Array;
        if (eat(']')) return v;
        do {
          v.items.push_back(value(depth + 1));
          if (v.items.size() > 64) syntax(p_, "an array with more than 64 items");
        } while (eat(','));
        expect(']');
      }
      return v;
    }
    if (c == '"') {
      v.kind = Value::Kind::String;
      v.s = string();
      return v;
    }
    if (word("true")) {
      v.kind = Value::Kind::Bool;
      v.b = true;
      return v;
    }
    if (word("false")) {
      v.kind = Value::Kind::Bool;
      return v;
    }
    if (word("null")) return v;
    if (c == '-' || (c >= '0' && c <= '9')) return number();
    syntax(p_, "unexpected character");
  }

  Value number() {
    const std::size_t start = p_;
    if (t_[p_] == '-') ++p_;
    const std::size_t digits = p_;
    while (p_ < t_.size() && t_[p_] >= '0' && t_[p_] <= '9') ++p_;
    if (p_ == digits) syntax(start, "a number without digits");
    if (p_ < t_.size() && (t_[p_] == '.' || t_[p_] == 'e' || t_[p_] == 'E')) {
      fail(Reason::PayloadWrongType,
           "the licence payload holds a number that is not an integer (byte " +
               std::to_string(start) + ")");
    }
    if (t_[digits] == '0' && p_ - digits > 1) syntax(start, "a number with a leading zero");
    Value v;
    v.kind = Value::Kind::Int;
    const auto r = std::from_chars(t_.data() + start, t_.data() + p_, v.i);
    if (r.ec != std::errc() || p_ - digits > 15)
      syntax(start, "an integer too large for a licence");
    return v;
  }

  void appendUtf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  // A UTF-8 sequence starting at p_ (a lead byte >= 0x80): its length, or 0 if invalid.
  std::size_t utf8Length() const {
    const auto b = [&](std::size_t k) { return static_cast<unsigned char>(t_[p_ + k]); };
    const unsigned char c = b(0);
    std::size_t n = 0;
    unsigned cp = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      n = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 4;
      cp = c & 0x07;
    } else {
      return 0;
    }
    if (p_ + n > t_.size()) return 0;
    for (std::size_t k = 1; k < n; ++k) {
      if ((b(k) & 0xC0) != 0x80) return 0;
      cp = (cp << 6) | (b(k) & 0x3F);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
      return 0;
    }
    return n;
  }

  std::string string() {
    const std::size_t start = p_;
    ++p_;  // the opening quote
    std::string out;
    while (true) {
      if (p_ >= t_.size()) syntax(start, "a string without its closing quote");
      const unsigned char c = static_cast<unsigned char>(t_[p_]);
      if (c == '"') {
        ++p_;
        break;
      }
      if (out.size() > 1024) syntax(start, "a string longer than 1024 bytes");
      if (c < 0x20) {
        fail(Reason::PayloadMalformed,
             std::string("the licence payload holds a control character") +
                 (c == 0 ? " (NUL)" : "") + " in a string (byte " + std::to_string(p_) + ")");
      }
      if (c == '\\') {
        if (p_ + 1 >= t_.size()) syntax(p_, "an escape at the end");
        const char e = t_[p_ + 1];
        p_ += 2;
        switch (e) {
          case '"':
            out += '"';
            break;
          case '\\':
            out += '\\';
            break;
          case '/':
            out += '/';
            break;
          case 'u': {
            if (p_ + 4 > t_.size()) syntax(p_, "a short \\u escape");
            unsigned cp = 0;
            const auto r = std::from_chars(t_.data() + p_, t_.data() + p_ + 4, cp, 16);
            if (r.ptr != t_.data() + p_ + 4) syntax(p_, "a bad \\u escape");
            p_ += 4;
            if (cp < 0x20) {
              fail(Reason::PayloadMalformed,
                   std::string("the licence payload holds an escaped control character") +
                       (cp == 0 ? " (NUL)" : "") + " in a string");
            }
            if (cp >= 0xD800 && cp <= 0xDFFF) syntax(p_, "a surrogate \\u escape");
            appendUtf8(out, cp);
            break;
          }
          default:
            fail(Reason::PayloadMalformed, std::string("the licence payload holds the escape \\") +
                                               e + " (a control character) in a string");
        }
        continue;
      }
      if (c >= 0x80) {
        const std::size_t n = utf8Length();
        if (n == 0) syntax(p_, "a string that is not UTF-8");
        out.append(t_.substr(p_, n));
        p_ += n;
        continue;
      }
      out += static_cast<char>(c);
      ++p_;
    }
    return out;
  }

  std::string_view t_;
  std::size_t p_ = 0;
};

// ---- canonical writing ----------------------------------------------------------------------

std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

// Keys in byte order, no blanks.
class CanonicalObject {
 public:
  void add(std::string key, std::string json) { m_.emplace(std::move(key), std::move(json)); }
  void add(std::string key, std::int64_t v) { add(std::move(key), std::to_string(v)); }
  void addBool(std::string key, bool v) { add(std::move(key), std::string(v ? "true" : "false")); }
  void addString(std::string key, std::string_view v) { add(std::move(key), quoted(v)); }
  void addOptString(std::string key, const std::optional<std::string>& v) {
    add(std::move(key), v ? quoted(*v) : std::string("null"));
  }
  std::string str() const {
    std::string out = "{";
    for (const auto& [k, v] : m_) {
      if (out.size() > 1) out += ',';
      out += quoted(k);
      out += ':';
      out += v;
    }
    return out + "}";
  }

 private:
  std::map<std::string, std::string> m_;
};

// ---- fields ---------------------------------------------------------------------------------

const std::vector<std::string_view> kTopKeys = {
    "customer", "features",       "format",      "grace_days", "issued_at",
    "key_id",   "licence_id",     "peer_serial", "role",       "sequence",
    "serial",   "upgrades_until", "valid_from",  "valid_until"};
const std::vector<std::string_view> kFeatureKeys = {"bridges", "concurrent_ports", "redundancy"};

class Fields {
 public:
  Fields(const Value& object, std::string where) : o_(object), where_(std::move(where)) {}

  const Value* find(std::string_view key) const {
    for (const auto& m : o_.members) {
      if (m.first == key) return &m.second;
    }
    return nullptr;
  }
  const Value& get(std::string_view key) const {
    const Value* v = find(key);
    if (!v) fail(Reason::PayloadMalformed, where_ + " has no \"" + std::string(key) + "\"");
    return *v;
  }
  const Value& typed(std::string_view key, Value::Kind kind, bool nullable = false) const {
    const Value& v = get(key);
    if (v.kind != kind && !(nullable && v.kind == Value::Kind::Null)) {
      fail(Reason::PayloadWrongType,
           where_ + ": \"" + std::string(key) + "\" must be " + std::string(kindName(kind)) +
               (nullable ? " or null" : "") + ", not " + std::string(kindName(v.kind)));
    }
    return v;
  }
  std::int64_t integer(std::string_view key, std::int64_t lo, std::int64_t hi) const {
    const std::int64_t i = typed(key, Value::Kind::Int).i;
    if (i < lo || i > hi) {
      fail(Reason::PayloadMalformed, where_ + ": \"" + std::string(key) + "\" must be from " +
                                         std::to_string(lo) + " to " + std::to_string(hi));
    }
    return i;
  }
  std::string text(std::string_view key, std::size_t maxLen, std::string_view allowed = {}) const {
    const std::string& s = typed(key, Value::Kind::String).s;
    checkText(key, s, maxLen, allowed);
    return s;
  }
  std::optional<std::string> optText(std::string_view key, std::size_t maxLen,
                                     std::string_view allowed) const {
    const Value& v = typed(key, Value::Kind::String, true);
    if (v.kind == Value::Kind::Null) return std::nullopt;
    checkText(key, v.s, maxLen, allowed);
    return v.s;
  }
  std::int64_t time(std::string_view key) const {
    const auto t = parseUtcTime(text(key, 32));
    if (!t) bad(key, "must be a UTC time like 2026-03-01T00:00:00Z");
    return *t;
  }
  void onlyKeys(const std::vector<std::string_view>& allowed) const {
    for (const auto& m : o_.members) {
      if (std::find(allowed.begin(), allowed.end(), m.first) == allowed.end()) {
        fail(Reason::PayloadUnknownKey, where_ + " has the unknown key \"" + m.first + "\"");
      }
    }
  }
  [[noreturn]] void bad(std::string_view key, const std::string& what) const {
    fail(Reason::PayloadMalformed, where_ + ": \"" + std::string(key) + "\" " + what);
  }

 private:
  void checkText(std::string_view key, const std::string& s, std::size_t maxLen,
                 std::string_view allowed) const {
    if (s.empty() || s.size() > maxLen) {
      bad(key, "must have 1 to " + std::to_string(maxLen) + " bytes");
    }
    if (!allowed.empty()) {
      for (char c : s) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                        allowed.find(c) != std::string_view::npos;
        if (!ok) bad(key, "holds the character '" + std::string(1, c) + "'");
      }
    }
  }
  const Value& o_;
  std::string where_;
};

constexpr std::string_view kIdChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ._-";
constexpr std::string_view kKeyIdChars = "-";
constexpr std::string_view kSerialChars =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz -*~$=";

bool featureName(std::string_view n) {
  if (n.empty() || n.size() > 32 || n[0] < 'a' || n[0] > 'z') return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

Licence read(const Value& top) {
  if (top.kind != Value::Kind::Object) {
    fail(Reason::PayloadWrongType,
         "the licence payload must be an object, not " + std::string(kindName(top.kind)));
  }
  const Fields f(top, "the licence payload");
  Licence l;
  // The format first: a newer one may have keys this release does not know.
  l.format = static_cast<int>(f.typed("format", Value::Kind::Int).i);
  if (l.format != kLicenceFormat) {
    fail(Reason::FormatUnsupported,
         "the licence is in format " + std::to_string(f.get("format").i) +
             ", and this release reads format " + std::to_string(kLicenceFormat) +
             ": upgrade vcrm first, or ask the vendor for a format " +
             std::to_string(kLicenceFormat) + " licence");
  }
  f.onlyKeys(kTopKeys);
  l.licenceId = f.text("licence_id", 64, kIdChars);
  l.keyId = f.text("key_id", 32, kKeyIdChars);
  l.sequence = f.integer("sequence", 1, 999999999999999);
  l.serial = f.text("serial", 64, kSerialChars);
  const std::string role = f.text("role", 16);
  const auto r = parseRole(role);
  if (!r) f.bad("role", "must be \"primary\" or \"redundant\"");
  l.role = *r;
  l.peerSerial = f.optText("peer_serial", 64, kSerialChars);
  l.customer = f.text("customer", 200);
  l.issuedAt = f.time("issued_at");
  l.validFrom = f.time("valid_from");
  if (const auto until = f.optText("valid_until", 32, {})) {
    l.validUntil = parseUtcTime(*until);
    if (!l.validUntil)
      f.bad("valid_until", "must be a UTC time like 2027-03-01T00:00:00Z, or null");
    if (*l.validUntil <= l.validFrom) f.bad("valid_until", "must be after valid_from");
  }
  l.graceDays = static_cast<int>(f.integer("grace_days", 0, 365));
  const auto upgrades = parseUtcDate(f.text("upgrades_until", 16));
  if (!upgrades) f.bad("upgrades_until", "must be a date like 2027-03-01");
  l.upgradesUntil = *upgrades;

  const Value& features = f.typed("features", Value::Kind::Object);
  const Fields ff(features, "the licence's features");
  l.features.concurrentPorts = ff.integer("concurrent_ports", 0, 1000000);
  l.features.bridges = ff.integer("bridges", 0, 10000);
  l.features.redundancy = ff.typed("redundancy", Value::Kind::Bool).b;
  for (const auto& [name, v] : features.members) {
    if (std::find(kFeatureKeys.begin(), kFeatureKeys.end(), name) != kFeatureKeys.end()) continue;
    if (!featureName(name)) {
      fail(Reason::PayloadUnknownKey, "the licence's features have the key \"" + name +
                                          "\", which is not a feature name (a-z, 0-9, _)");
    }
    if (v.kind == Value::Kind::Int) {
      l.features.more[name] = v.i;
    } else if (v.kind == Value::Kind::Bool) {
      l.features.more[name] = v.b;
    } else {
      fail(Reason::PayloadWrongType, "the licence's feature \"" + name +
                                         "\" must be an integer or a boolean, not " +
                                         std::string(kindName(v.kind)));
    }
  }
  if (l.features.more.size() > 32)
    fail(Reason::PayloadMalformed, "the licence has more than 35 features");
  if (l.role == Role::Redundant && !l.peerSerial) {
    f.bad("peer_serial", "is required for a redundant server's licence (it names the primary)");
  }
  if (l.peerSerial && !l.features.redundancy) {
    f.bad("peer_serial", "names a peer, but the licence does not allow redundancy");
  }
  return l;
}

// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
std::int64_t daysFromCivil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

void civilFromDays(std::int64_t z, int& y, unsigned& m, unsigned& d) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y = static_cast<int>(static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2));
}

bool digitsAt(std::string_view s, std::size_t at, std::size_t n, unsigned& out) {
  out = 0;
  for (std::size_t k = 0; k < n; ++k) {
    const char c = s[at + k];
    if (c < '0' || c > '9') return false;
    out = out * 10 + static_cast<unsigned>(c - '0');
  }
  return true;
}

std::optional<std::int64_t> dateAt(std::string_view s) {
  unsigned y = 0, m = 0, d = 0;
  if (s.size() < 10 || s[4] != '-' || s[7] != '-' || !digitsAt(s, 0, 4, y) ||
      !digitsAt(s, 5, 2, m) || !digitsAt(s, 8, 2, d)) {
    return std::nullopt;
  }
  if (y < 1970 || m < 1 || m > 12 || d < 1) return std::nullopt;
  static constexpr std::array<unsigned, 12> kDays = {31, 29, 31, 30, 31, 30,
                                                     31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (d > kDays[m - 1] || (m == 2 && d == 29 && !leap)) return std::nullopt;
  return daysFromCivil(y, m, d) * 86400;
}

}  // namespace

std::string_view roleName(Role r) {
  return r == Role::Primary ? "primary" : "redundant";
}

std::optional<Role> parseRole(std::string_view text) {
  if (text == "primary") return Role::Primary;
  if (text == "redundant") return Role::Redundant;
  return std::nullopt;
}

std::optional<std::int64_t> parseUtcDate(std::string_view text) {
  if (text.size() != 10) return std::nullopt;
  return dateAt(text);
}

std::optional<std::int64_t> parseUtcTime(std::string_view text) {
  if (text.size() != 20 || text[10] != 'T' || text[13] != ':' || text[16] != ':' ||
      text[19] != 'Z') {
    return std::nullopt;
  }
  const auto day = dateAt(text.substr(0, 10));
  unsigned h = 0, mi = 0, s = 0;
  if (!day || !digitsAt(text, 11, 2, h) || !digitsAt(text, 14, 2, mi) ||
      !digitsAt(text, 17, 2, s) || h > 23 || mi > 59 || s > 59) {
    return std::nullopt;
  }
  return *day + h * 3600 + mi * 60 + s;
}

std::string formatUtcDate(std::int64_t t) {
  std::int64_t days = t / 86400;
  if (t % 86400 < 0) --days;
  int y = 0;
  unsigned m = 0, d = 0;
  civilFromDays(days, y, m, d);
  std::array<char, 40> buf{};
  std::snprintf(buf.data(), buf.size(), "%04d-%02u-%02u", y, m, d);
  return buf.data();
}

std::string formatUtcTime(std::int64_t t) {
  std::int64_t secs = t % 86400;
  if (secs < 0) secs += 86400;
  std::array<char, 40> buf{};
  std::snprintf(buf.data(), buf.size(), "T%02d:%02d:%02dZ", static_cast<int>(secs / 3600),
                static_cast<int>(secs / 60 % 60), static_cast<int>(secs % 60));
  return formatUtcDate(t) + buf.data();
}

std::string canonicalPayload(const Licence& l) {
  CanonicalObject features;
  features.add("bridges", l.features.bridges);
  features.add("concurrent_ports", l.features.concurrentPorts);
  features.addBool("redundancy", l.features.redundancy);
  for (const auto& [name, v] : l.features.more) {
    if (std::holds_alternative<bool>(v)) {
      features.addBool(name, std::get<bool>(v));
    } else {
      features.add(name, std::get<std::int64_t>(v));
    }
  }
  CanonicalObject o;
  o.addString("customer", l.customer);
  o.add("features", features.str());
  o.add("format", static_cast<std::int64_t>(l.format));
  o.add("grace_days", static_cast<std::int64_t>(l.graceDays));
  o.addString("issued_at", formatUtcTime(l.issuedAt));
  o.addString("key_id", l.keyId);
  o.addString("licence_id", l.licenceId);
  o.addOptString("peer_serial", l.peerSerial);
  o.addString("role", roleName(l.role));
  o.add("sequence", l.sequence);
  o.addString("serial", l.serial);
  o.addString("upgrades_until", formatUtcDate(l.upgradesUntil));
  o.addString("valid_from", formatUtcTime(l.validFrom));
  o.addOptString("valid_until",
                 l.validUntil ? std::optional(formatUtcTime(*l.validUntil)) : std::nullopt);
  return o.str();
}

std::variant<Licence, Refusal> parsePayload(std::string_view bytes) {
  if (bytes.size() > kMaxPayloadBytes) {
    return Refusal{Reason::TooLarge, "the licence payload has " + std::to_string(bytes.size()) +
                                         " bytes; at most " + std::to_string(kMaxPayloadBytes) +
                                         " are read"};
  }
  try {
    Licence l = read(Reader(bytes).document());
    if (canonicalPayload(l) != bytes) {
      return Refusal{
          Reason::PayloadNotCanonical,
          "the licence payload is not in canonical form (sorted keys, no blanks), so it was not "
          "made by the vendor's tool"};
    }
    return l;
  } catch (const PayloadError& e) {
    return Refusal{e.reason, e.message};
  }
}

json::ObjectPtr toJson(const Licence& l) {
  json::ObjectPtr features = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  features->set("concurrent_ports", l.features.concurrentPorts);
  features->set("bridges", l.features.bridges);
  features->set("redundancy", l.features.redundancy);
  for (const auto& [name, v] : l.features.more) {
    if (std::holds_alternative<bool>(v)) {
      features->set(name, std::get<bool>(v));
    } else {
      features->set(name, std::get<std::int64_t>(v));
    }
  }
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("format", l.format);
  o->set("licence_id", l.licenceId);
  o->set("key_id", l.keyId);
  o->set("sequence", l.sequence);
  o->set("serial", l.serial);
  o->set("role", std::string(roleName(l.role)));
  o->set("peer_serial", l.peerSerial ? Poco::Dynamic::Var(*l.peerSerial) : Poco::Dynamic::Var());
  o->set("customer", l.customer);
  o->set("issued_at", formatUtcTime(l.issuedAt));
  o->set("valid_from", formatUtcTime(l.validFrom));
  o->set("valid_until",
         l.validUntil ? Poco::Dynamic::Var(formatUtcTime(*l.validUntil)) : Poco::Dynamic::Var());
  o->set("grace_days", l.graceDays);
  o->set("upgrades_until", formatUtcDate(l.upgradesUntil));
  o->set("features", features);
  return o;
}

}  // namespace vcrm::licensing
