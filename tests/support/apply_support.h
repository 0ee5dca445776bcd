// What the upgrade apply engine's tests share: small installation trees, FakeDatabases (a
// pointer file and one directory per database, standing for PostgreSQL at the library level)
// and a bundle signed with the repository's test key.
#pragma once

#include <filesystem>
#include <set>
#include <string>

namespace vcrm::test {

// An installation tree of `version`: bin/vcrmd is `vcrmdScript`, share/vcrm/version the version.
std::filesystem::path makeSlotTree(const std::filesystem::path& dir, const std::string& version,
                                   const std::string& vcrmdScript = "#!/bin/sh\nexit 3\n");

// <root>/fake-databases with the original database "vcrm" (schema 0.1.0, its rows) pointed at.
inline constexpr const char* kFakeOriginal = "vcrm";
std::filesystem::path makeFakeDatabases(const std::filesystem::path& root);
std::set<std::string> fakeDatabaseNames(const std::filesystem::path& root);

// A bundle of `tree` as release `version` (upgrading from 0.1.0), signed with the test key.
void makeTestBundle(const std::filesystem::path& tree, const std::string& version,
                    const std::filesystem::path& out);

// build/bin/vcrm-apply-driver.
std::filesystem::path applyDriver();

// A file's text without its trailing newlines.
std::string fileText(const std::filesystem::path& file);

}  // namespace vcrm::test
