// Fuzz target for the upgrade bundle's manifest parser (canonical JSON, every field, the entry
// rules: paths, types, modes, duplicates, directories first, caps). A manifest it accepts must
// serialise back to exactly the input, since that is what the signature covered.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "vcrm/common/error.h"
#include "vcrm/upgrade/bundle.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  vcrm::upgrade::BundleLimits limits;
  limits.maxEntries = 256;
  try {
    const vcrm::upgrade::BundleManifest m = vcrm::upgrade::parseBundleManifest(text, limits);
    if (vcrm::upgrade::bundleManifestJson(m) != text) std::abort();  // accepted but not canonical
  } catch (const vcrm::Error&) {
    // A refusal: the expected outcome for almost every input.
  }
  return 0;
}
