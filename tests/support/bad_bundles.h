// Upgrade bundles for tests, signed with the repository's TEST bundle key
// (upgrade/keys/vcrm-test-bundle.{key,pub}): a good one made of a small installation tree, and
// the bad-bundle suite of issue 11 — each bundle carrying one defect (a flipped byte in header,
// manifest, signature and payload; truncated anywhere; trailing data; lengths that lie; unknown
// and revoked keys; manifests signed but wrong; hostile payloads: traversal, absolute paths,
// links, devices, fifos, setuid, duplicates, unlisted and missing entries, sizes that lie,
// archive bombs; a file hash that differs) with the reason it must be refused with. The bundle
// library's tests and the daemon's upgrade API tests both run it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "hostile_tar.h"
#include "vcrm/upgrade/bundle.h"

namespace vcrm::upgrade::test {

BundleSigningKey testBundleKey();
std::string testBundleKeyringText();  // the keyring file that trusts testBundleKey()
BundleKeyring testBundleKeyring();

// The release every bundle of the suite claims unless a case is about it.
BundleRelease sampleRelease();

std::string pseudoRandom(std::size_t n, std::uint32_t seed);
TarEntry dirEntry(std::string name, int perm = 0755);
TarEntry fileEntry(std::string name, std::string data, int perm = 0644);
// An installation tree as a payload would hold it.
std::vector<TarEntry> goodEntries();
// The manifest entries vcrm-bundle would write for `entries`.
std::vector<BundleEntry> entriesOf(const std::vector<TarEntry>& entries);
BundleManifest manifestFor(std::vector<BundleEntry> entries, std::uint64_t chunkSize = 4096,
                           const BundleRelease& release = sampleRelease());
// goodEntries() as a bundle of `release`, in chunks of `chunkSize` (8 chunks at 4096).
std::string goodBundle(std::uint64_t chunkSize = 4096,
                       const BundleRelease& release = sampleRelease());
// A bundle of `release` holding `entries`, each listed as it is.
std::string bundleOf(const std::vector<TarEntry>& entries,
                     const BundleRelease& release = sampleRelease());

struct BadBundle {
  std::string name;
  std::function<std::string()> build;  // the file's bytes
  BundleReason reason;
  // The keyring the appliance trusts for this case; empty: testBundleKeyringText().
  std::string keyring{};
};
std::ostream& operator<<(std::ostream& os, const BadBundle& c);

// Every case is refused by verifyBundle + verifyBundleFileHashes (and by extractBundle) with
// `reason`; all claim `release` so that only their defect differs from a good bundle.
std::vector<BadBundle> badBundles(const BundleRelease& release = sampleRelease());

}  // namespace vcrm::upgrade::test
