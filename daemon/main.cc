// vcrmd: parses the command line and hands over to vcrm::App.
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <iostream>

#include "vcrm/common/config.h"
#include "vcrm/common/error.h"
#include "vcrm/common/guarded.h"
#include "vcrm/common/version.h"
#include "vcrm/daemon/app.h"
#include "vcrm/daemon/restore_swap.h"
#include "vcrm/daemon/service_notify.h"
#include "vcrm/upgrade/supervisor.h"

namespace {

void usage(std::ostream& out) {
  out << "usage: vcrmd [--root DIR] [--set key=value]... [--version]\n"
         "  --root DIR      root prefix for every path (default /); the config file is\n"
         "                  DIR/etc/vcrm/vcrmd.conf, state DIR/var/lib/vcrm\n"
         "  --set key=value override one setting (repeatable)\n\nsettings:\n";
  for (const auto& [k, d] : vcrm::Config::keys()) out << "  " << k << "\n      " << d << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::string root = "/";
  std::vector<std::string> overrides;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--version") {
      std::cout << "vcrmd " << vcrm::productVersion() << "\n";
      return 0;
    } else if (a == "--help" || a == "-h") {
      usage(std::cout);
      return 0;
    } else if ((a == "--root" || a == "--set") && i + 1 < argc) {
      (a == "--root" ? root : overrides.emplace_back()) = argv[++i];
    } else {
      std::cerr << "vcrmd: unknown argument \"" << a << "\"\n";
      usage(std::cerr);
      return 2;
    }
  }

  // Signals are taken synchronously by this thread; worker threads inherit the mask. SIGUSR1
  // asks for a restart from the current slot: vcrmd stops and exits with kRestartFromCurrent,
  // and its supervisor (vcrm-supervisor or systemd) starts <root>/opt/vcrm/current again.
  // SIGUSR2 is how a restore asks for the in-place restart that swaps its database in.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  sigaddset(&signals, SIGUSR1);
  sigaddset(&signals, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  vcrm::Logger log;
  vcrm::Guarded<std::string> restartReason;
  const auto restarter = [&restartReason](std::string reason) {
    *restartReason.lock() = std::move(reason);
    kill(getpid(), SIGUSR2);
  };
  const auto restartFromCurrent = [&restartReason](std::string reason) {
    *restartReason.lock() = std::move(reason);
    kill(getpid(), SIGUSR1);
  };
  bool first = true;
  try {
    for (;;) {
      // A restore that passed its commit point is finished (or one that did not, undone)
      // before the configuration it may have replaced is read.
      vcrm::restore::recover(vcrm::Paths{root}, log);
      vcrm::App app(vcrm::Config::load(root, overrides), log, {}, restarter, restartFromCurrent);
      app.start();
      if (app.mustRestartFromCurrent()) {
        log.info("vcrmd", "RESTART_FROM_CURRENT",
                 "an upgrade needs the version in the current slot; exiting with status " +
                     std::to_string(vcrm::upgrade::kRestartFromCurrent));
        app.stop();
        return vcrm::upgrade::kRestartFromCurrent;
      }
      // systemd (Type=notify) counts a start that never gets here as failed (TimeoutStartSec).
      vcrm::notifyServiceManager("READY=1\nSTATUS=vcrm " + std::string(vcrm::productVersion()) +
                                 " serving at " + app.url());
      if (first) {
        std::cout << "vcrm " << vcrm::productVersion() << " is running at " << app.url() << "\n";
        if (const auto& pw = app.initialAdminPassword()) {
          std::cout << "First start: sign in as \"admin\" with password " << *pw
                    << "\n(it is also in "
                    << (std::filesystem::path(root) / "var/lib/vcrm/initial-admin-password")
                           .lexically_normal()
                           .string()
                    << ", readable by root only; you will be asked to change it)\n";
        }
        std::cout.flush();
        first = false;
      }
      int sig = 0;
      while (sigwait(&signals, &sig) == 0 && sig == SIGHUP) {
        log.info("vcrmd", "SIGHUP", "SIGHUP ignored; use the API to change settings at run time");
      }
      if (sig == SIGUSR2) {
        const std::string reason = *restartReason.lock();
        log.info("vcrmd", "RESTARTING",
                 "restarting in place: " + (reason.empty() ? std::string("SIGUSR2") : reason));
        vcrm::notifyServiceManager("RELOADING=1");
        app.stop();
        continue;
      }
      if (sig == SIGUSR1) {
        const std::string reason = *restartReason.lock();
        log.info("vcrmd", "RESTART_FROM_CURRENT",
                 "stopping to be restarted from the current slot (exit status " +
                     std::to_string(vcrm::upgrade::kRestartFromCurrent) +
                     (reason.empty() ? std::string(")") : "): " + reason));
        vcrm::notifyServiceManager("STOPPING=1");
        app.stop();
        return vcrm::upgrade::kRestartFromCurrent;
      }
      log.info("vcrmd", "STOPPING", std::string("stopping on ") + strsignal(sig));
      vcrm::notifyServiceManager("STOPPING=1");
      app.stop();
      return 0;
    }
  } catch (const vcrm::Error& e) {
    log.error("vcrmd", "START_FAILED", e.what());
    std::cerr << "vcrmd: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    log.error("vcrmd", "FATAL", e.what());
    std::cerr << "vcrmd: " << e.what() << "\n";
    return 1;
  }
}
