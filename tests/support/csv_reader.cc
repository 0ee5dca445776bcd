#include "csv_reader.h"

#include <stdexcept>

namespace vcrm::test {

std::vector<std::vector<std::string>> parseCsv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  std::size_t i = 0;
  bool fieldStarted = false;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '"' && !fieldStarted && field.empty()) {
      ++i;
      for (;;) {
        if (i >= text.size()) throw std::runtime_error("unterminated quoted field");
        if (text[i] == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        field += text[i++];
      }
      fieldStarted = true;
      if (i < text.size() && text[i] != ',' && text[i] != '\r') {
        throw std::runtime_error("text after a closing quote at " + std::to_string(i));
      }
    } else if (c == ',') {
      row.push_back(field);
      field.clear();
      fieldStarted = false;
      ++i;
    } else if (c == '\r') {
      if (i + 1 >= text.size() || text[i + 1] != '\n') throw std::runtime_error("bare CR");
      row.push_back(field);
      rows.push_back(row);
      row.clear();
      field.clear();
      fieldStarted = false;
      i += 2;
    } else if (c == '\n' || c == '"') {
      throw std::runtime_error("bare LF or quote in an unquoted field at " + std::to_string(i));
    } else {
      field += c;
      fieldStarted = true;
      ++i;
    }
  }
  if (!row.empty() || !field.empty()) throw std::runtime_error("last record lacks CRLF");
  return rows;
}

}  // namespace vcrm::test
