// vcrm::utf8: which bytes are text, and text made safe to echo.
#include "vcrm/common/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace vcrm::utf8 {
namespace {

TEST(Utf8, ValidTextOfEveryLength) {
  for (const char* text :
       {"", "plain", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xef\xbb\xbf{}",
        "\xf4\x8f\xbf\xbf" /* U+10FFFF */, "\xed\x9f\xbf" /* U+D7FF */}) {
    EXPECT_TRUE(isValid(text)) << text;
  }
}

TEST(Utf8, ValidPrefixStopsAtTheFirstBadByte) {
  struct Case {
    std::string text;
    std::size_t prefix;
  };
  for (const auto& c : std::vector<Case>{
           {"ab\xff", 2},                // never a UTF-8 byte
           {"a\x80", 1},                 // lone continuation byte
           {"a\xc0\xaf", 1},             // overlong '/'
           {"a\xc1\xbf", 1},             // overlong
           {"a\xe0\x80\xaf", 1},         // overlong, three bytes
           {"a\xf0\x80\x80\xaf", 1},     // overlong, four bytes
           {"a\xed\xa0\x80", 1},         // a UTF-16 surrogate
           {"a\xf4\x90\x80\x80", 1},     // past U+10FFFF
           {"a\xe2\x82", 1},             // cut short
           {"\xe2\x82\xac\xe2\x82", 3},  // cut short after a whole one
           {"a\xc3(", 1},                // a lead byte without its continuation
       }) {
    EXPECT_EQ(validPrefix(c.text), c.prefix) << c.text;
    EXPECT_FALSE(isValid(c.text)) << c.text;
  }
}

TEST(Utf8, SanitizedReplacesEachBadByteAndKeepsTheRest) {
  EXPECT_EQ(sanitized("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(sanitized("a\xffz"), "a\xef\xbf\xbdz");
  EXPECT_EQ(sanitized("\xe2\x82\xac\xe2\x82"), "\xe2\x82\xac\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_TRUE(isValid(sanitized("\xc0\x80\xed\xa0\x80\xf8")));
}

TEST(Utf8, ClipCutsAtACharacterBoundary) {
  const std::string euros = "\xe2\x82\xac\xe2\x82\xac";  // two characters, six bytes
  EXPECT_EQ(clip(euros, 6), euros);
  EXPECT_EQ(clip(euros, 5), "\xe2\x82\xac");
  EXPECT_EQ(clip(euros, 3), "\xe2\x82\xac");
  EXPECT_EQ(clip(euros, 2), "");
  EXPECT_EQ(clip("abc", 2), "ab");
}

}  // namespace
}  // namespace vcrm::utf8
