// The armoured text form of a licence: a begin line, a wrapped base64 body, an end line. It
// survives e-mail: re-wrapped lines, "> " quoting, CRLF line ends and text around the block.
#pragma once

#include <string>
#include <string_view>
#include <variant>

#include "vcrm/licensing/refusal.h"

namespace vcrm::licensing {

inline constexpr std::string_view kArmourBegin = "-----BEGIN VCRM LICENCE-----";
inline constexpr std::string_view kArmourEnd = "-----END VCRM LICENCE-----";
inline constexpr std::size_t kMaxLicenceFileBytes = 64 * 1024;
inline constexpr std::size_t kArmourWidth = 64;

// The block with its body wrapped at kArmourWidth columns, LF line ends, a final newline.
std::string armour(std::string_view bytes);

// The bytes inside the one licence block of `text`, or why there are none.
std::variant<std::string, Refusal> dearmour(std::string_view text);

}  // namespace vcrm::licensing
