#include "apply_support.h"

#include <fstream>

#include "vcrm/common/files.h"
#include "vcrm/upgrade/bundle.h"
#include "vcrm/upgrade/bundle_keyring.h"
#include "vcrmd_process.h"

namespace fs = std::filesystem;

namespace vcrm::test {

fs::path makeSlotTree(const fs::path& dir, const std::string& version,
                      const std::string& vcrmdScript) {
  fs::create_directories(dir / "bin");
  fs::create_directories(dir / "share/vcrm/webui");
  std::ofstream(dir / "bin/vcrmd") << vcrmdScript;
  fs::permissions(dir / "bin/vcrmd", fs::perms(0755));
  std::ofstream(dir / "share/vcrm/version") << version << "\n";
  std::ofstream(dir / "share/vcrm/webui/index.html") << "<html>" << version;
  return dir;
}

fs::path makeFakeDatabases(const fs::path& root) {
  const fs::path dbs = root / "fake-databases";
  fs::create_directories(dbs / kFakeOriginal);
  std::ofstream(dbs / kFakeOriginal / "schema") << "0.1.0\n";
  std::ofstream(dbs / kFakeOriginal / "rows") << "every conference and CDR\n";
  std::ofstream(dbs / "pointer") << kFakeOriginal << "\n";
  return dbs;
}

std::set<std::string> fakeDatabaseNames(const fs::path& root) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(root / "fake-databases")) {
    if (e.is_directory()) out.insert(e.path().filename().string());
  }
  return out;
}

void makeTestBundle(const fs::path& tree, const std::string& version, const fs::path& out) {
  const auto key = upgrade::BundleSigningKey::parse(
      files::readFile(sourceDir() / "upgrade/keys/vcrm-test-bundle.key"), "test key");
  upgrade::createBundle(key,
                        upgrade::BundleRelease{.version = version,
                                               .releaseDate = "2026-11-30",
                                               .compatible = "vcrm-appliance",
                                               .minVersion = "0.1.0",
                                               .notes = "Faster upgrades.\n"},
                        tree, out, 64 << 10);
}

fs::path applyDriver() {
  return binDir() / "vcrm-apply-driver";
}

std::string fileText(const fs::path& file) {
  std::string s = files::readFile(file);
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

}  // namespace vcrm::test
