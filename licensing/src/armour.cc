#include "vcrm/licensing/armour.h"

#include <optional>

#include "vcrm/common/crypto.h"
#include "vcrm/common/error.h"

namespace vcrm::licensing {

namespace {

bool isBase64Char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/' || c == '=';
}

bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\r';
}

// A line as a mail reader may have left it: quoting ("> ", ">>", "> > ") and surrounding blanks
// taken off.
std::string_view unquote(std::string_view line) {
  std::size_t i = 0;
  while (i < line.size() && (isSpace(line[i]) || line[i] == '>')) ++i;
  line.remove_prefix(i);
  while (!line.empty() && isSpace(line.back())) line.remove_suffix(1);
  return line;
}

Refusal malformed(std::string message) {
  return {Reason::ArmourMalformed, std::move(message)};
}

}  // namespace

std::string armour(std::string_view bytes) {
  const std::string body = crypto::base64Encode(bytes);
  std::string out(kArmourBegin);
  out += '\n';
  for (std::size_t i = 0; i < body.size(); i += kArmourWidth) {
    out += body.substr(i, kArmourWidth);
    out += '\n';
  }
  out += kArmourEnd;
  out += '\n';
  return out;
}

std::variant<std::string, Refusal> dearmour(std::string_view text) {
  if (text.size() > kMaxLicenceFileBytes) {
    return Refusal{Reason::TooLarge, "the file has " + std::to_string(text.size()) +
                                         " bytes; a licence file has at most " +
                                         std::to_string(kMaxLicenceFileBytes) +
                                         ": choose the licence file the vendor sent"};
  }
  if (text.find('\0') != std::string_view::npos) {
    return malformed(
        "the file contains a NUL byte, so it is not a licence text file: upload the "
        "file exactly as the vendor sent it");
  }
  // Editors on some systems put a byte-order mark in front of a text file.
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  enum class Where { Before, Inside, After } where = Where::Before;
  std::string body;
  int lineNo = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    const std::string_view line = unquote(text.substr(pos, eol - pos));
    pos = eol + 1;
    ++lineNo;
    if (line == kArmourBegin) {
      if (where != Where::Before) {
        return malformed("the file holds more than one licence block (second begin line at line " +
                         std::to_string(lineNo) + "): upload one licence at a time");
      }
      where = Where::Inside;
      continue;
    }
    if (where == Where::Inside) {
      if (line == kArmourEnd) {
        where = Where::After;
        continue;
      }
      for (char c : line) {
        if (isSpace(c)) continue;  // a mailer that joined wrapped lines with a blank
        if (!isBase64Char(c)) {
          return malformed("line " + std::to_string(lineNo) +
                           " of the licence block holds a character that is not base64: the "
                           "block was altered; ask the vendor to send the file again");
        }
        body += c;
      }
    }
  }
  if (where == Where::Before) {
    return malformed("no \"" + std::string(kArmourBegin) +
                     "\" line was found: this is not a vcrm licence file");
  }
  if (where == Where::Inside) {
    return malformed("the licence block has no \"" + std::string(kArmourEnd) +
                     "\" line: the file is truncated; ask the vendor to send it again");
  }
  if (body.empty()) return malformed("the licence block is empty");
  try {
    return crypto::base64Decode(body);
  } catch (const InvalidInput& e) {
    return malformed(std::string("the licence block is not valid base64 (") + e.what() +
                     "): the block was altered; ask the vendor to send the file again");
  }
}

}  // namespace vcrm::licensing
