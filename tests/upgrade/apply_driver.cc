// vcrm-apply-driver: runs the upgrade apply engine (apply.h) on a root prefix as a vcrmd would,
// so tests can kill it with VCRM_TEST_CRASH_AT at any step and start it again as the old or the
// new version. The daemon-specific callbacks are FakeDatabases: a pointer file and one
// directory per database under <root>/fake-databases. This is the engine tested at the library
// level only; vcrmd does not use the engine yet, and the same steps over a real PostgreSQL
// (CREATE DATABASE ... TEMPLATE, the daemon's <state>/database) come with that integration.
//
//   vcrm-apply-driver apply --root R --as a|b --version V --bundle FILE [--tamper after-verify]
//       verifies FILE with the repository's test keyring and applies it; exit 75 once committed
//       (restart from current), 1 when it failed and was rolled back
//   vcrm-apply-driver go-back --root R --as a|b --version V
//       goes back to the version before the upgrade marked good; exit 75 once committed
//   vcrm-apply-driver start --root R --as a|b --version V [--fail migrate|health|serving]
//                           [--hang-health] [--serve]
//       what a vcrmd does at its start: recover(), and on trial markGood() (where vcrmd would
//       serve in between); exit 75 for "restart from current"; with
//       --serve it then runs until SIGTERM (exit 0), as a daemon kept by the supervisor would
// Exit 3 (with the message on stderr) for an error the engine refused with.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "vcrm/common/error.h"
#include "vcrm/common/files.h"
#include "vcrm/common/log.h"
#include "vcrm/upgrade/apply.h"
#include "vcrm/upgrade/bundle.h"
#include "vcrm/upgrade/bundle_keyring.h"
#include "vcrm/upgrade/supervisor.h"

namespace fs = std::filesystem;
using namespace vcrm;
using namespace vcrm::upgrade;

namespace {

// Databases as directories: <root>/fake-databases/<name>/schema holds its schema version, and
// <root>/fake-databases/pointer names the active one.
struct FakeDatabases {
  fs::path dir;
  [[nodiscard]] fs::path pointer() const { return dir / "pointer"; }
  [[nodiscard]] std::string active() const {
    std::string name = files::readFile(pointer());
    while (!name.empty() && name.back() == '\n') name.pop_back();
    return name;
  }
  void copy(const std::string& from, const std::string& to) const {
    const fs::path tmp = dir / (to + ".tmp");
    fs::remove_all(tmp);
    fs::remove_all(dir / to);  // left by a crash before it was journalled
    fs::copy(dir / from, tmp, fs::copy_options::recursive);
    files::fsyncDir(tmp);
    fs::rename(tmp, dir / to);
    files::fsyncDir(dir);
  }
  void pointAt(const std::string& name) const {
    if (!fs::is_directory(dir / name)) throw IoError("no fake database " + name);
    files::atomicWrite(pointer(), name + "\n");
  }
  void drop(const std::string& name) const {
    fs::remove_all(dir / name);
    files::fsyncDir(dir);
  }
};

std::map<std::string, std::string> parseOptions(int argc, char** argv, int from) {
  std::map<std::string, std::string> o;
  for (int i = from; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) throw InvalidInput("unexpected argument " + a);
    a = a.substr(2);
    if (a == "serve" || a == "hang-health") {
      o[a] = "true";
    } else if (i + 1 < argc) {
      o[a] = argv[++i];
    } else {
      throw InvalidInput("--" + a + " needs a value");
    }
  }
  return o;
}

int run(int argc, char** argv) {
  if (argc < 2) throw InvalidInput("usage: vcrm-apply-driver apply|start --root R --as a|b ...");
  const std::string command = argv[1];
  auto o = parseOptions(argc, argv, 2);
  const fs::path root = o["root"];
  if (root.empty() || (o["as"] != "a" && o["as"] != "b")) {
    throw InvalidInput("--root R and --as a|b are required");
  }
  const RunningVersion me{o["version"], o["as"] == "a" ? Slot::A : Slot::B};
  Logger log;
  const FakeDatabases dbs{root / "fake-databases"};
  UpgradeCallbacks cb;
  cb.backup = [&] {
    const fs::path archive = root / "var/lib/vcrm/backups/pre-upgrade.vcrmbak";
    files::ensureDir(archive.parent_path());
    files::atomicWrite(archive, "a fake backup of " + dbs.active() + "\n");
    return archive.string();
  };
  cb.snapshotDatabase = [&](const std::string& from, const std::string& to) { dbs.copy(from, to); };
  cb.pointDatabaseAt = [&](const std::string& name) { dbs.pointAt(name); };
  cb.dropDatabase = [&](const std::string& name) { dbs.drop(name); };
  const std::string fail = o["fail"];
  cb.migrate = [&] {
    // The new version's schema goes into the database pointed at, which must be the copy.
    files::atomicWrite(dbs.dir / dbs.active() / "schema", me.version + "\n");
    if (fail == "migrate") throw DbError("migration 0042 failed (a fault the test asked for)");
  };
  cb.healthCheck = [&] {
    if (o.count("hang-health") != 0) {
      for (;;) pause();  // never healthy, never failing: the supervisor's deadline decides
    }
    if (fail == "health") throw IoError("health check failed (a fault the test asked for)");
  };
  UpgradeApply engine(UpgradeLayout(root), cb, log);

  if (command == "apply") {
    files::Fd fd(::open(o["bundle"].c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw IoError("cannot open the bundle " + o["bundle"]);
    const auto keyring = BundleKeyring::parse(
        files::readFile(fs::path(VCRM_SOURCE_DIR) / "upgrade/keys/vcrm-test-bundle.pub"),
        "test keyring");
    UpgradeRequest request;
    request.bundleFd = fd.get();
    request.verified = verifyBundle(fd.get(), keyring);
    if (o["tamper"] == "after-verify") {
      // Someone with write access changes the payload between the check and the extraction.
      files::Fd rw(::open(o["bundle"].c_str(), O_RDWR | O_CLOEXEC));
      const auto at = static_cast<off_t>(request.verified.header.payloadOffset + 1000);
      char byte = 0;
      if (!rw || ::pread(rw.get(), &byte, 1, at) != 1) throw IoError("cannot tamper");
      byte = static_cast<char>(byte ^ 0x5a);
      if (::pwrite(rw.get(), &byte, 1, at) != 1) throw IoError("cannot tamper");
    }
    request.originalDatabase = dbs.active();
    request.requestedBy = "admin";
    const auto r = engine.apply(request, me);
    std::cout << phaseName(r.phase) << " " << r.message << "\n";
    return r.phase == JournalPhase::Committed ? kRestartFromCurrent : 1;
  }
  if (command == "go-back") {
    const auto r = engine.goBack(me, "admin");
    std::cout << phaseName(r.phase) << " " << r.message << "\n";
    return r.phase == JournalPhase::Committed ? kRestartFromCurrent : 1;
  }
  if (command == "start") {
    auto outcome = engine.recover(me);
    std::cout << startOutcomeName(outcome) << "\n" << std::flush;
    // A vcrmd would start serving here, then mark itself good.
    if (outcome == StartOutcome::OnTrial) {
      if (o["fail"] == "serving") ::kill(::getpid(), SIGKILL);  // dies before it serves
      outcome = engine.markGood();
      std::cout << startOutcomeName(outcome) << "\n" << std::flush;
    }
    if (outcome == StartOutcome::RestartFromCurrent) return kRestartFromCurrent;
    if (o.count("serve") != 0) {
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, SIGTERM);
      sigprocmask(SIG_BLOCK, &set, nullptr);
      int sig = 0;
      sigwait(&set, &sig);
    }
    return 0;
  }
  throw InvalidInput("unknown command " + command);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "vcrm-apply-driver: " << e.what() << "\n";
    return 3;
  }
}
