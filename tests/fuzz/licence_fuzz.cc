// Fuzz target for the licence parsers a remote admin can reach: the armour, the envelope and
// signature check, the strict payload reader and serial parsing. Besides not crashing, what
// each accepts must hold these properties (a violation aborts, so the fuzzer reports it):
//  - armour(dearmour(x)) reads back as the same bytes;
//  - a payload the reader accepts is canonical and re-reads to the same licence;
//  - a serial the parser accepts is canonical and re-parses to itself.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <variant>

#include "vcrm/licensing/armour.h"
#include "vcrm/licensing/licence_file.h"
#include "vcrm/licensing/serial.h"

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace vcrm::licensing;
  const std::string input(reinterpret_cast<const char*>(data), size);
  static const Keyring keyring = Keyring::builtIn();

  const auto bytes = dearmour(input);
  if (const auto* b = std::get_if<std::string>(&bytes)) {
    const auto again = dearmour(armour(*b));
    require(std::holds_alternative<std::string>(again) && std::get<std::string>(again) == *b);
  }

  const auto payload = parsePayload(input);
  if (const auto* l = std::get_if<Licence>(&payload)) {
    require(canonicalPayload(*l) == input);
    const auto again = parsePayload(canonicalPayload(*l));
    require(std::holds_alternative<Licence>(again) && std::get<Licence>(again) == *l);
    (void)toJson(*l);
  }

  (void)readLicence(input, keyring);

  if (size < 64) {
    if (const auto s = parseSerial(input)) {
      require(isCanonicalSerial(*s));
      require(parseSerial(*s) == s);
    }
  }
  return 0;
}
