#include "vcrm/licensing/serial.h"

#include <array>
#include <cstdint>

#include "vcrm/common/crypto.h"

namespace vcrm::licensing {

namespace {

constexpr std::string_view kSymbols = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
// Crockford's check symbols: the 32 above, then values 32..36.
constexpr std::string_view kCheckSymbols = "0123456789ABCDEFGHJKMNPQRSTVWXYZ*~$=U";
constexpr std::size_t kDataSymbols = 16;  // 80 bits
constexpr std::size_t kGroup = 4;

// The value in `alphabet` of a symbol someone typed, with Crockford's decoding rules (any case,
// O for 0, I and L for 1); -1 if none.
int valueIn(std::string_view alphabet, char c) {
  if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  if (c == 'O') c = '0';
  if (c == 'I' || c == 'L') c = '1';
  const auto at = alphabet.find(c);
  return at == std::string_view::npos ? -1 : static_cast<int>(at);
}

// The 80-bit number modulo 37, computed symbol by symbol.
int checkOf(const std::array<int, kDataSymbols>& values) {
  int r = 0;
  for (int v : values) r = (r * 32 + v) % 37;
  return r;
}

std::string format(const std::array<int, kDataSymbols>& values) {
  std::string out;
  for (std::size_t i = 0; i < kDataSymbols; ++i) {
    if (i > 0 && i % kGroup == 0) out += '-';
    out += kSymbols[static_cast<std::size_t>(values[i])];
  }
  out += '-';
  out += kCheckSymbols[static_cast<std::size_t>(checkOf(values))];
  return out;
}

}  // namespace

std::string newSerial() {
  const auto bytes = crypto::randomBytes(10);
  std::array<int, kDataSymbols> values{};
  std::uint32_t acc = 0;
  int bits = 0;
  std::size_t n = 0;
  for (unsigned char b : bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      values[n++] = static_cast<int>((acc >> bits) & 31u);
    }
  }
  return format(values);
}

std::optional<std::string> parseSerial(std::string_view typed, std::string* why) {
  auto fail = [&](std::string reason) -> std::optional<std::string> {
    if (why) *why = std::move(reason);
    return std::nullopt;
  };
  std::string symbols;
  for (char c : typed) {
    if (c == ' ' || c == '-' || c == '\t') continue;
    symbols += c;
    if (symbols.size() > kDataSymbols + 1) break;
  }
  if (symbols.size() != kDataSymbols + 1) {
    return fail("a serial number has 16 symbols and a check symbol (like 7K3M-Q9RT-2XWB-HN4D-Q)");
  }
  std::array<int, kDataSymbols> values{};
  for (std::size_t i = 0; i < kDataSymbols; ++i) {
    values[i] = valueIn(kSymbols, symbols[i]);
    if (values[i] < 0) {
      return fail(std::string("\"") + symbols[i] + "\" is not a serial number symbol (symbol " +
                  std::to_string(i + 1) + ")");
    }
  }
  const int check = valueIn(kCheckSymbols, symbols.back());
  if (check < 0) return fail(std::string("\"") + symbols.back() + "\" is not a check symbol");
  if (check != checkOf(values)) {
    return fail("the check symbol does not match: a symbol of the serial number is mistyped");
  }
  return format(values);
}

bool isCanonicalSerial(std::string_view text) {
  const auto canonical = parseSerial(text);
  return canonical && *canonical == text;
}

}  // namespace vcrm::licensing
