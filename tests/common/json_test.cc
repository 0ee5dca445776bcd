// vcrm::json: what a client sending a request body gets back, for good and hostile input.
#include "vcrm/common/json.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "vcrm/common/error.h"

namespace vcrm::json {
namespace {

// The InvalidInput thrown by `f`, or a test failure.
template <typename F>
InvalidInput invalid(F&& f) {
  try {
    f();
  } catch (const InvalidInput& e) {
    return e;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw something other than InvalidInput: " << e.what();
    return InvalidInput("wrong exception");
  }
  ADD_FAILURE() << "did not throw";
  return InvalidInput("no exception");
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(JsonParse, ValidObject) {
  const auto o =
      parseObject(R"({"name":"room 1","size":12,"open":true,"tags":["a","b"],"nested":{"x":null},)"
                  R"("text":"caf\u00e9 \"quoted\" \\ end"})");
  EXPECT_EQ(requireString(o, "name"), "room 1");
  EXPECT_EQ(optInt(o, "size"), 12);
  EXPECT_EQ(optBool(o, "open"), true);
  EXPECT_EQ(optStringArray(o, "tags"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(requireString(o, "text"), "caf\xc3\xa9 \"quoted\" \\ end");
  ASSERT_TRUE(o->getObject("nested"));
  EXPECT_TRUE(o->getObject("nested")->isNull("x"));
}

TEST(JsonParse, SurroundingWhitespaceIsFine) {
  const auto o = parseObject(" \n\t{\"a\": \"b\"}\r\n ");
  EXPECT_EQ(requireString(o, "a"), "b");
}

TEST(JsonParse, DepthAtTheLimitIsAccepted) {
  // 32 levels (the default limit), counting the top-level object.
  std::string text = "{\"a\":";
  for (int i = 0; i < 31; ++i) text += "[";
  text += "1";
  for (int i = 0; i < 31; ++i) text += "]";
  text += "}";
  EXPECT_NO_THROW(parseObject(text));
}

TEST(JsonParse, BracketsInsideStringsDoNotCountAsNesting) {
  const std::string brackets(1000, '[');
  const auto o = parseObject("{\"a\":\"" + brackets + "\",\"b\":\"\\\"[[[\"}");
  EXPECT_EQ(requireString(o, "a"), brackets);
  EXPECT_EQ(requireString(o, "b"), "\"[[[");
}

TEST(JsonParse, MalformedInputIsInvalidInput) {
  const std::vector<std::string> cases = {
      R"({"a":)",             // truncated
      R"({"a":1)",            // unterminated object
      R"({"a":"b)",           // unterminated string
      R"({"a":1} trailing)",  // trailing garbage
      R"({"a":1}{"b":2})",    // two documents
      R"({a:1})",             // unquoted key
      R"({"a":1,})",          // trailing comma
      "{'a':1}",              // single quotes
  };
  for (const auto& text : cases) {
    const auto e = invalid([&] { parseObject(text); });
    EXPECT_EQ(e.code(), "invalid_input") << text;
    EXPECT_TRUE(contains(e.what(), "JSON")) << text << " -> " << e.what();
  }
}

TEST(JsonParse, NonObjectTopLevelIsRefused) {
  for (const char* text : {"[]", "[{\"a\":1}]", "\"text\"", "42", "true", "null"}) {
    const auto e = invalid([&] { parseObject(text); });
    EXPECT_TRUE(contains(e.what(), "must be a JSON object") || contains(e.what(), "not valid JSON"))
        << text << " -> " << e.what();
  }
  EXPECT_TRUE(contains(invalid([] { parseObject("[]"); }).what(), "must be a JSON object"));
}

TEST(JsonParse, EmptyAndWhitespaceOnlyBodiesAreRefused) {
  for (const char* text : {"", " ", "\n\t\r "}) {
    const auto e = invalid([&] { parseObject(text); });
    EXPECT_TRUE(contains(e.what(), "empty")) << e.what();
  }
}

TEST(JsonParse, InvalidUtf8IsRefused) {
  // Lone continuation byte, overlong encoding of '/', truncated sequence, a UTF-16 surrogate.
  for (const char* bad : {"\x80", "\xc0\xaf", "\xe2\x82", "\xed\xa0\x80", "\xff"}) {
    const std::string text = std::string("{\"a\":\"x") + bad + "y\"}";
    const auto e = invalid([&] { parseObject(text); });
    EXPECT_EQ(e.code(), "invalid_input");
  }
}

TEST(JsonParse, InvalidUtf8OutsideStringsIsRefused) {
  invalid([] { parseObject("{\"a\":1\xff}"); });
  invalid([] { parseObject("\xef\xbb\xbf\xff{}"); });
}

TEST(JsonParse, BytesAfterTheDocumentThatPocoTakesForItsEndAreRefused) {
  // Poco reads 0xFF as the end of the text and would take the object before it.
  for (const std::string& text :
       {std::string("{\"a\":1}\xff"), std::string("{\"a\":1}\xff{\"a\":2}"),
        std::string("{\"a\":1}\0", 8), std::string("{\"a\":1}\0junk", 12)}) {
    const auto e = invalid([&] { parseObject(text); });
    EXPECT_EQ(e.code(), "invalid_input");
    EXPECT_TRUE(contains(e.what(), "byte 8")) << e.what();
  }
}

TEST(JsonParse, AKeyGivenTwiceIsRefusedNamingIt) {
  for (const char* text : {R"({"level":"info","level":"debug"})", R"({"a":{"x":1,"x":1}})",
                           R"([{"type":1,"type":2}])"}) {
    const auto e = invalid([&] { parse(text); });
    EXPECT_EQ(e.code(), "duplicate_field") << text;
    EXPECT_TRUE(contains(e.what(), "twice")) << e.what();
  }
  EXPECT_TRUE(contains(invalid([] { parseObject(R"({"level":"info","level":"debug"})"); }).what(),
                       "field \"level\" twice"));
  // The same key in two objects is two fields.
  EXPECT_NO_THROW(parseObject(R"({"a":{"x":1},"b":{"x":2},"c":[{"x":3},{"x":4}]})"));
}

TEST(JsonParse, NegativeWholeNumbersBelow64BitsAreRefusedNotClamped) {
  const auto e = invalid([] { parseObject(R"({"bridge_id":-9223372036854775809})"); });
  EXPECT_EQ(e.code(), "invalid_field");
  EXPECT_TRUE(contains(e.what(), "field \"bridge_id\"")) << e.what();
  invalid([] { parseObject(R"({"a":[-99999999999999999999999]})"); });
  // The smallest 64-bit number itself, fractions and digits inside strings are fine.
  EXPECT_EQ(optInt(parseObject(R"({"a":-9223372036854775808,"s":"-99999999999999999999"})"), "a"),
            INT64_MIN);
  EXPECT_NO_THROW(parseObject(R"({"a":-99999999999999999999.5})"));
}

TEST(JsonParse, HugeNestingIsRefusedQuicklyWithoutCrashing) {
  const auto start = std::chrono::steady_clock::now();
  const auto e = invalid([] { parseObject(std::string(100000, '[')); });
  EXPECT_TRUE(contains(e.what(), "nested deeper than 32")) << e.what();
  const auto objects = invalid([] {
    std::string text;
    for (int i = 0; i < 100000; ++i) text += "{\"a\":";
    parseObject(text);
  });
  EXPECT_TRUE(contains(objects.what(), "nested deeper")) << objects.what();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

TEST(JsonParse, CustomDepthLimit) {
  EXPECT_NO_THROW(parseObject(R"({"a":{"b":1}})", 2));
  const auto e = invalid([] { parseObject(R"({"a":{"b":[1]}})", 2); });
  EXPECT_TRUE(contains(e.what(), "deeper than 2")) << e.what();
}

TEST(JsonFields, RequireStringNamesTheMissingOrWrongField) {
  const auto o = parseObject(R"({"name":5,"empty":null})");
  auto e = invalid([&] { requireString(o, "name"); });
  EXPECT_EQ(e.code(), "invalid_field");
  EXPECT_TRUE(contains(e.what(), "\"name\" must be a string")) << e.what();
  e = invalid([&] { requireString(o, "user"); });
  EXPECT_EQ(e.code(), "missing_field");
  EXPECT_TRUE(contains(e.what(), "\"user\" is required")) << e.what();
  e = invalid([&] { requireString(o, "empty"); });  // null counts as absent
  EXPECT_TRUE(contains(e.what(), "\"empty\" is required")) << e.what();
}

TEST(JsonFields, OptionalFieldsAbsentOrNullAreEmpty) {
  const auto o = parseObject(R"({"n":null})");
  for (const char* key : {"n", "missing"}) {
    EXPECT_EQ(optString(o, key), std::nullopt);
    EXPECT_EQ(optBool(o, key), std::nullopt);
    EXPECT_EQ(optInt(o, key), std::nullopt);
    EXPECT_EQ(optStringArray(o, key), std::nullopt);
  }
}

TEST(JsonFields, TypeErrorsNameTheField) {
  const auto o = parseObject(
      R"({"s":[1],"b":"true","b2":1,"i":"7","f":1.5,"big":9223372036854775808,"t":true,)"
      R"("arr":"x","mixed":["a",2],"obj":{"k":"v"},"e":1e3})");
  struct Case {
    std::function<void()> call;
    std::string field;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {[&] { optString(o, "s"); }, "s", "a string"},
      {[&] { optString(o, "obj"); }, "obj", "a string"},
      {[&] { optBool(o, "b"); }, "b", "true or false"},
      {[&] { optBool(o, "b2"); }, "b2", "true or false"},
      {[&] { optInt(o, "i"); }, "i", "a whole number"},
      {[&] { optInt(o, "f"); }, "f", "a whole number"},
      {[&] { optInt(o, "big"); }, "big", "a whole number in range"},
      {[&] { optInt(o, "t"); }, "t", "a whole number"},
      {[&] { optInt(o, "e"); }, "e", "a whole number"},
      {[&] { optStringArray(o, "arr"); }, "arr", "an array of strings"},
      {[&] { optStringArray(o, "mixed"); }, "mixed", "an array of strings"},
  };
  for (const auto& c : cases) {
    const auto e = invalid(c.call);
    EXPECT_EQ(e.code(), "invalid_field") << c.field;
    EXPECT_TRUE(contains(e.what(), "field \"" + c.field + "\" must be " + c.expected))
        << c.field << " -> " << e.what();
  }
}

TEST(JsonFields, IntegersKeepTheirFullRange) {
  const auto o =
      parseObject(R"({"max":9223372036854775807,"min":-9223372036854775808,"zero":0,"neg":-5})");
  EXPECT_EQ(optInt(o, "max"), INT64_MAX);
  EXPECT_EQ(optInt(o, "min"), INT64_MIN);
  EXPECT_EQ(optInt(o, "zero"), 0);
  EXPECT_EQ(optInt(o, "neg"), -5);
  EXPECT_EQ(optBool(parseObject(R"({"f":false})"), "f"), false);
}

TEST(JsonFields, MaxLengthIsEnforcedInBytes) {
  const auto o = parseObject(R"({"s":"abcde","u":"\u00e9\u00e9"})");
  EXPECT_EQ(requireString(o, "s", 5), "abcde");
  auto e = invalid([&] { requireString(o, "s", 4); });
  EXPECT_TRUE(contains(e.what(), "\"s\" is longer than 4 bytes")) << e.what();
  e = invalid([&] { optString(o, "u", 3); });  // two characters, four bytes
  EXPECT_TRUE(contains(e.what(), "\"u\"")) << e.what();
  EXPECT_EQ(optString(o, "u", 4), "\xc3\xa9\xc3\xa9");
  // The default cap applies when none is given.
  const auto big = parseObject("{\"s\":\"" + std::string(5000, 'x') + "\"}");
  EXPECT_TRUE(contains(invalid([&] { requireString(big, "s"); }).what(), "longer than 4096"));
}

TEST(JsonFields, StringArrayItemLimit) {
  const auto o = parseObject(R"({"roles":["admin","noc","support"]})");
  EXPECT_EQ(optStringArray(o, "roles", 3)->size(), 3u);
  const auto e = invalid([&] { optStringArray(o, "roles", 2); });
  EXPECT_TRUE(contains(e.what(), "\"roles\"")) << e.what();
}

TEST(JsonFields, StringArrayItemsAreCheckedLikeStrings) {
  const auto o = parseObject("{\"nul\":[\"a\\u0000b\"],\"long\":[\"" + std::string(257, 'x') +
                             "\"],\"ok\":[\"" + std::string(256, 'x') + "\"]}");
  auto e = invalid([&] { optStringArray(o, "nul"); });
  EXPECT_TRUE(contains(e.what(), "field \"nul\" contains a NUL")) << e.what();
  e = invalid([&] { optStringArray(o, "long"); });
  EXPECT_TRUE(contains(e.what(), "field \"long\" has an item longer than 256 bytes")) << e.what();
  EXPECT_EQ(optStringArray(o, "ok")->front().size(), 256u);
  EXPECT_EQ(optStringArray(o, "long", 64, 300)->front().size(), 257u);
}

TEST(JsonFields, RequireAnyRefusesAChangeOfNothing) {
  const std::vector<std::string> fields{"name", "ports"};
  for (const char* text : {"{}", R"({"name":null})", R"({"name":null,"ports":null})"}) {
    const auto e = invalid([&] { requireAny(parseObject(text), fields); });
    EXPECT_EQ(e.code(), "nothing_to_change") << text;
    EXPECT_TRUE(contains(e.what(), "give any of name, ports")) << e.what();
  }
  EXPECT_NO_THROW(requireAny(parseObject(R"({"name":null,"ports":3})"), fields));
}

TEST(JsonFields, OnlyKeysRejectsUnknownAndListsAccepted) {
  const auto o = parseObject(R"({"username":"a","pasword":"b"})");
  const auto e = invalid([&] { onlyKeys(o, {"username", "password"}); });
  EXPECT_EQ(e.code(), "unknown_field");
  EXPECT_TRUE(contains(e.what(), "\"pasword\"")) << e.what();
  EXPECT_TRUE(contains(e.what(), "accepted: username, password")) << e.what();
  EXPECT_NO_THROW(onlyKeys(parseObject(R"({"username":"a"})"), {"username", "password"}));
  EXPECT_NO_THROW(onlyKeys(parseObject("{}"), {}));
}

TEST(JsonStringify, RoundTripsThroughParse) {
  const auto o = parseObject(R"({"name":"line\nbreak \"q\" \u00e9","n":3,"ok":true})");
  const auto again = parseObject(stringify(o));
  EXPECT_EQ(requireString(again, "name"), "line\nbreak \"q\" \xc3\xa9");
  EXPECT_EQ(optInt(again, "n"), 3);
  EXPECT_EQ(optBool(again, "ok"), true);
  EXPECT_EQ(stringify(Poco::Dynamic::Var(std::string("a\"b"))), "\"a\\\"b\"");
}

}  // namespace
}  // namespace vcrm::json
