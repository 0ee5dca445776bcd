// vcrm-supervisor: runs the current slot's vcrmd on a root prefix and keeps it running (the
// contract is in vcrm/upgrade/supervisor.h and the README). Thin: arguments, then Supervisor.
#include <charconv>
#include <chrono>
#include <iostream>
#include <string>
#include <string_view>

#include "vcrm/common/error.h"
#include "vcrm/common/log.h"
#include "vcrm/upgrade/slots.h"
#include "vcrm/upgrade/supervisor.h"

namespace {

void usage(std::ostream& out) {
  out << "usage: vcrm-supervisor --root DIR [--trial-timeout-ms N] [--trial-crashes N] "
         "[-- vcrmd args]\n"
         "       vcrm-supervisor --root DIR --install TREE [--into inactive|current]\n"
         "  starts DIR/opt/vcrm/current/bin/vcrmd --root DIR [vcrmd args], restarts it when it\n"
         "  crashes or exits with status 75 (restart from current), stops it on SIGTERM/SIGINT;\n"
         "  SIGUSR1 restarts it from the current slot. State: "
         "DIR/var/lib/vcrm/run/supervisor.json\n"
         "  An upgrade's new version must mark itself good within --trial-timeout-ms (120000)\n"
         "  and --trial-crashes crashes (3), or it is rolled back to the previous slot.\n";
}

}  // namespace

int main(int argc, char** argv) {
  vcrm::upgrade::SupervisorOptions options;
  std::filesystem::path installTree;
  std::string into = "inactive";
  int i = 1;
  for (; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--") {
      ++i;
      break;
    } else if (a == "--root" && i + 1 < argc) {
      options.root = argv[++i];
    } else if ((a == "--trial-timeout-ms" || a == "--trial-crashes") && i + 1 < argc) {
      const std::string_view v = argv[++i];
      long n = 0;
      const auto [end, err] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (err != std::errc() || end != v.data() + v.size() || n < 1) {
        std::cerr << "vcrm-supervisor: " << a << " needs a positive number, not \"" << v << "\"\n";
        return 2;
      }
      if (a == "--trial-crashes") {
        options.trialCrashes = static_cast<int>(n);
      } else {
        options.trialTimeout = std::chrono::milliseconds(n);
      }
    } else if (a == "--install" && i + 1 < argc) {
      installTree = argv[++i];
    } else if (a == "--into" && i + 1 < argc &&
               (argv[i + 1] == std::string("inactive") || argv[i + 1] == std::string("current"))) {
      into = argv[++i];
    } else if (a == "--help" || a == "-h") {
      usage(std::cout);
      return 0;
    } else {
      std::cerr << "vcrm-supervisor: unknown argument \"" << a << "\"\n";
      usage(std::cerr);
      return 2;
    }
  }
  for (; i < argc; ++i) options.daemonArgs.emplace_back(argv[i]);
  if (options.root.empty()) {
    std::cerr << "vcrm-supervisor: --root DIR is required\n";
    usage(std::cerr);
    return 2;
  }
  options.root = std::filesystem::absolute(options.root).lexically_normal();

  vcrm::Logger log;
  try {
    if (!installTree.empty()) {
      vcrm::upgrade::SlotLayout layout(options.root);
      const auto current = layout.current();
      const auto slot = into == "current" && current ? *current : layout.inactive();
      layout.install(installTree, slot, /*allowCurrent=*/true);
      layout.switchTo(slot);
      std::cout << vcrm::upgrade::slotName(slot) << "\n";
      return 0;
    }
    return vcrm::upgrade::Supervisor(std::move(options), log).run();
  } catch (const vcrm::Error& e) {
    log.error("supervisor", "START_FAILED", e.what());
    std::cerr << "vcrm-supervisor: " << e.what() << "\n";
    return 1;
  }
}
