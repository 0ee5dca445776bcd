// Fuzz target for what an upgrade bundle's first bytes reach before any signature is checked:
// the fixed header (every length and offset against the file size), the signature block and
// the manifest parser, through inspectBundle on a memory file holding the input. A second pass
// gives the header parser a file size taken from the input, so lengths near 2^64 are tried
// against files far larger than the input. Refusals are BundleRefused (or another vcrm::Error);
// anything else escaping is a finding.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string_view>

#include "vcrm/common/error.h"
#include "vcrm/common/files.h"
#include "vcrm/upgrade/bundle.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  vcrm::upgrade::BundleLimits limits;
  limits.maxManifestBytes = 1u << 20;
  try {
    std::uint64_t fileSize = 0;
    if (input.size() >= 8) std::memcpy(&fileSize, input.data() + input.size() - 8, 8);
    vcrm::upgrade::parseBundleHeader(input.substr(0, vcrm::upgrade::kBundleHeaderSize), fileSize,
                                     limits);
  } catch (const vcrm::Error&) {
  }
  const vcrm::files::Fd fd(::memfd_create("bundle", MFD_CLOEXEC));
  if (!fd || ::write(fd.get(), input.data(), input.size()) != static_cast<ssize_t>(input.size())) {
    return 0;
  }
  try {
    vcrm::upgrade::inspectBundle(fd.get(), limits);
  } catch (const vcrm::Error&) {
    // A refusal: the expected outcome for almost every input.
  }
  return 0;
}
