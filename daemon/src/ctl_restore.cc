#include "ctl_restore.h"

#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <thread>

#include "ctl_upload.h"
#include "vcrm/common/error.h"
#include "vcrm/common/files.h"
#include "vcrm/common/json.h"
#include "vcrm/daemon/api_client.h"

namespace vcrm::ctl {

namespace {

void show(const json::ObjectPtr& r) {
  std::cout << "archive: vcrm " << r->optValue<std::string>("product_version", "?") << ", schema "
            << r->optValue<std::string>("schema_version", "?") << ", made "
            << r->optValue<std::string>("created_at", "?") << " on server "
            << r->optValue<std::string>("source_serial", "?")
            << (r->optValue<bool>("same_server", false) ? " (this server)" : " (another server)")
            << ", " << r->optValue<std::string>("size", "?") << " bytes\n";
  if (auto counts = r->getObject("counts")) {
    for (const auto& [k, v] : *counts) std::cout << "  " << k << ": " << v.toString() << "\n";
  }
  if (auto warnings = r->getArray("warnings")) {
    for (std::size_t i = 0; i < warnings->size(); ++i) {
      std::cout << "warning: " << warnings->getElement<std::string>(static_cast<unsigned>(i))
                << "\n";
    }
  }
}

}  // namespace

const char* restoreUsage() {
  return "usage: vcrmctl [options] restore FILE --passphrase-file F [--yes]\n"
         "  uploads a backup archive to vcrmd, shows what it holds, asks before restoring it\n"
         "  (--yes: does not ask), and follows the restore until the appliance is back. The\n"
         "  database it replaces is kept: GET /api/v1/restores/previous, go back with\n"
         "  POST /api/v1/restores/previous/revert. The passphrase is the first line of F or\n"
         "  VCRM_BACKUP_PASSPHRASE.\n"
         "exit status: 0 when the restore is done, 1 when it is refused or fails\n";
}

int restoreCommand(const std::vector<std::string>& args,
                   const std::function<ApiClient()>& connect) {
  std::string file, passphraseFile;
  bool yes = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--yes") {
      yes = true;
    } else if (args[i] == "--passphrase-file" && i + 1 < args.size()) {
      passphraseFile = args[++i];
    } else if (file.empty() && args[i].rfind("--", 0) != 0) {
      file = args[i];
    } else {
      std::cerr << restoreUsage();
      return 2;
    }
  }
  if (file.empty()) {
    std::cerr << restoreUsage();
    return 2;
  }
  try {
    const std::string passphrase = backupPassphrase(passphraseFile);
    if (passphrase.empty()) {
      std::cerr << "vcrmctl: give --passphrase-file or set VCRM_BACKUP_PASSPHRASE\n";
      return 2;
    }
    ApiClient client = connect();
    const std::string uploadId = uploadFile(client, connect, "/api/v1/restores/uploads", file).id;
    json::ObjectPtr body = new json::Object;
    body->set("upload_id", uploadId);
    body->set("passphrase", passphrase);
    std::cerr << "verifying the whole archive...\n";
    auto verified = client.request("POST", "/api/v1/restores", json::stringify(body));
    if (verified.status != 201) refused("the archive was refused", verified);
    const auto restore = json::parseObject(verified.body)->getObject("restore");
    const std::string id = restore->getValue<std::string>("id");
    show(restore);
    if (!yes) {
      std::cout << "Restore it? This replaces the data of this appliance (the current database is "
                   "kept). [y/N] "
                << std::flush;
      std::string answer;
      std::getline(std::cin, answer);
      if (answer != "y" && answer != "Y" && answer != "yes") {
        std::cout << "not restored\n";
        return 1;
      }
    }
    auto confirmed = client.request("POST", "/api/v1/restores/" + id + "/confirm");
    if (confirmed.status != 202) refused("the restore was refused", confirmed);
    // vcrmd restarts in place to swap the database in: unreachable for a moment, then a new
    // session against the restored accounts.
    std::string lastStep;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::hours(6);
    while (std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      try {
        auto r = client.request("GET", "/api/v1/restores/current");
        if (r.status == 401) {
          client = connect();
          continue;
        }
        if (r.status != 200) continue;
        const auto cur = json::parseObject(r.body)->getObject("restore");
        if (!cur || cur->getValue<std::string>("id") != id) continue;
        const std::string step = cur->getValue<std::string>("step");
        if (step != lastStep) std::cerr << "step: " << (lastStep = step) << "\n";
        const std::string state = cur->getValue<std::string>("state");
        if (state == "done") {
          std::cout << "restored: the appliance is back with the archive's data (restore " << id
                    << ")\n";
          return 0;
        }
        if (state == "failed") {
          std::cerr << "vcrmctl: the restore failed: " << cur->optValue<std::string>("message", "")
                    << "; nothing was changed\n";
          return 1;
        }
      } catch (const Unauthenticated& e) {
        std::cerr << "vcrmctl: restored, but signing in to the restored appliance failed: "
                  << e.what() << " (use the restored system's password)\n";
        return 1;
      } catch (const std::exception&) {
        // Restarting: a new listener (perhaps on another port) and the restored accounts.
        try {
          client = connect();
        } catch (const Unauthenticated&) {
          throw;
        } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): not back yet
        }
      }
    }
    std::cerr << "vcrmctl: the appliance did not come back in time\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "vcrmctl: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace vcrm::ctl
