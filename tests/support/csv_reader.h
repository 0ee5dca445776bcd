// A strict RFC 4180 reader for checking what the CSV exports write: CRLF records, quoted fields
// with doubled quotes, nothing lenient. Throws std::runtime_error at the first deviation.
#pragma once

#include <string>
#include <vector>

namespace vcrm::test {

std::vector<std::vector<std::string>> parseCsv(const std::string& text);

}  // namespace vcrm::test
