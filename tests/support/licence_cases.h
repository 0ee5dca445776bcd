// Licence files for tests, made with the repository's test key (licensing/keys): a good one
// for a server, and the catalogue of bad ones, each with the refusal it must get. Shared by
// the library's tests and the API tests against a real vcrmd.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vcrm/licensing/keyring.h"
#include "vcrm/licensing/licence.h"
#include "vcrm/licensing/refusal.h"

namespace vcrm::test {

// The repository's test signing key (what the built-in keyring of a test build trusts).
licensing::SigningKey testLicenceKey();

// A valid primary licence for `serial`, valid from a day before `now` for a year.
licensing::Licence sampleLicence(const std::string& serial, std::int64_t now,
                                 std::int64_t sequence = 10);

// A licence that lifts every limit (what VcrmdProcess applies for tests of other things).
licensing::Licence unlimitedTestLicence(const std::string& serial, std::int64_t now);

// Signs `payload` as it is (no canonical form enforced) in a licence file.
std::string signRaw(const std::string& payload, const licensing::SigningKey& key);

struct BadLicence {
  std::string name;
  std::string file;
  licensing::Reason reason;
};

// At least 30 bad files for the server with `serial` (role primary) at `now`, given that the
// active licence is sampleLicence(serial, now, activeSequence). `revokedKey` must be revoked
// in the keyring under test; the keyring must not know "vcrm-stranger".
std::vector<BadLicence> badLicences(const std::string& serial, std::int64_t now,
                                    std::int64_t activeSequence,
                                    const licensing::SigningKey& revokedKey);

// A file in the ways mail and people change it; each must still verify.
struct MangledLicence {
  std::string name;
  std::string file;
};
std::vector<MangledLicence> mangledButValid(const std::string& file);

}  // namespace vcrm::test
