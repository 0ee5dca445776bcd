// JSON on Poco::JSON (the one JSON type in the code) with the checks every request needs:
// size and nesting limits, typed field access with errors that name the field.
#pragma once

#include <Poco/Dynamic/Var.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vcrm::json {

using Object = Poco::JSON::Object;
using ObjectPtr = Poco::JSON::Object::Ptr;
using Array = Poco::JSON::Array;
using ArrayPtr = Poco::JSON::Array::Ptr;

// Parses a JSON document whose top is an object or an array. Throws InvalidInput naming the
// problem for empty or malformed text, text that is not UTF-8 or holds a NUL byte, nesting
// deeper than `maxDepth`, a key given twice in one object, or a whole number outside 64 bits.
// `what` names the document in messages ("request body", "event post").
Poco::Dynamic::Var parse(std::string_view text, int maxDepth = 32, const std::string& what = "request body");

// Parses a document whose top level must be an object. Throws InvalidInput naming the problem
// for malformed text, nesting deeper than `maxDepth`, or a non-object top level.
ObjectPtr parseObject(std::string_view text, int maxDepth = 32);

// Required / optional typed fields. Throw InvalidInput("field \"x\" must be a string").
std::string requireString(const ObjectPtr& o, const std::string& key, std::size_t maxLen = 4096);
std::optional<std::string> optString(const ObjectPtr& o, const std::string& key,
                                     std::size_t maxLen = 4096);
std::optional<bool> optBool(const ObjectPtr& o, const std::string& key);
std::optional<std::int64_t> optInt(const ObjectPtr& o, const std::string& key);
// Each item as optString checks it: no NUL, at most `maxItemLen` bytes.
std::optional<std::vector<std::string>> optStringArray(const ObjectPtr& o, const std::string& key,
                                                       std::size_t maxItems = 64,
                                                       std::size_t maxItemLen = 256);
// Refuses keys outside `allowed` so a typo is an error rather than silently ignored.
void onlyKeys(const ObjectPtr& o, const std::vector<std::string>& allowed);
// Refuses a change that gives none of `fields` (or only nulls): "nothing to change".
void requireAny(const ObjectPtr& o, const std::vector<std::string>& fields);

std::string stringify(const Poco::Dynamic::Var& value);
std::string stringify(const ObjectPtr& o);

}  // namespace vcrm::json
