// Serial numbers of vcrm installations: 80 random bits in Crockford base32, four groups of four
// symbols and a check symbol ("7K3M-Q9RT-2XWB-HN4D-Q"), made to be read aloud and typed back.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace vcrm::licensing {

// A new serial from the OS CSPRNG, in canonical form.
std::string newSerial();

// The canonical form of a serial a person typed: case, spaces, dashes and the look-alikes
// I/L (for 1) and O (for 0) are forgiven. nullopt when it is not a serial or its check symbol
// does not match (a mistyped symbol); `why` then says which.
std::optional<std::string> parseSerial(std::string_view typed, std::string* why = nullptr);

// True only for the exact canonical form (what a licence must carry).
bool isCanonicalSerial(std::string_view text);

}  // namespace vcrm::licensing
