// Fuzz target for the backup archive reader. The first byte picks what the rest is:
//   0: an archive file as an operator would upload it (the container parser: header, key
//      check, chunk framing; without the passphrase the fuzzer cannot get past the tags);
//   1: the plaintext tar inside, which the target seals with the known passphrase first, so
//      the tar reader, the manifest parser and every member check see hostile input.
// Refusals are ArchiveError (or another vcrm::Error); anything else escaping is a finding.
#include <cstdint>
#include <string_view>

#include "vcrm/common/error.h"
#include "vcrm/upgrade/backup_archive.h"
#include "vcrm/upgrade/sealed_stream.h"

namespace {

constexpr std::string_view kPassphrase = "fuzz";

vcrm::upgrade::ReadOptions options() {
  vcrm::upgrade::ReadOptions o;
  // Headers asking for costly key derivation are refused before it runs.
  o.unseal.maxScryptLogN = 8;
  o.unseal.maxScryptMemoryBytes = 1u << 20;
  o.limits.maxMemberBytes = 16u << 20;
  o.limits.maxTotalBytes = 16u << 20;
  o.compatibleWith = vcrm::upgrade::Compatibility{.productVersion = "0.1.0", .schemaVersion = 7};
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    if (data[0] == 0) {
      vcrm::upgrade::StringSource in(input);
      vcrm::upgrade::verifyArchive(in, kPassphrase, options());
    } else {
      vcrm::upgrade::StringSink sealed;
      {
        vcrm::upgrade::SealedWriter writer(
            sealed, kPassphrase,
            vcrm::upgrade::SealOptions{.scrypt = {.n = 1u << 4, .r = 8, .p = 1},
                                       .chunkSize = 4096});
        writer.write(input);
        writer.finish();
      }
      vcrm::upgrade::StringSource in(sealed.data());
      vcrm::upgrade::verifyArchive(in, kPassphrase, options());
    }
  } catch (const vcrm::Error&) {
    // A refusal: the expected outcome for almost every input.
  }
  return 0;
}
