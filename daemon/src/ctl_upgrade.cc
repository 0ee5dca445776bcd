#include "ctl_upgrade.h"

#include <chrono>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

#include "ctl_upload.h"
#include "vcrm/common/error.h"
#include "vcrm/common/json.h"

namespace vcrm::ctl {

namespace {

void showBundle(const json::ObjectPtr& b) {
  const auto text = [&](const char* key) { return b->optValue<std::string>(key, "?"); };
  std::cout << "bundle " << text("id") << ": " << text("state") << "\n"
            << "  version:      " << text("version") << " (running " << text("running_version")
            << (b->optValue<bool>("downgrade", false) ? "; a DOWNGRADE" : "") << ")\n"
            << "  released:     " << text("release_date") << "\n"
            << "  for:          " << text("compatible") << ", upgrading from "
            << text("min_version") << " or later\n"
            << "  signed by:    " << text("key_id") << "\n"
            << "  size:         " << b->get("size").toString() << " bytes, sha256 "
            << text("sha256") << "\n"
            << "  installs:     " << b->get("files").toString() << " entries, "
            << b->get("install_bytes").toString() << " bytes\n";
  const bool entitled = b->optValue<bool>("entitled", false);
  std::cout << "  licence:      "
            << (entitled ? "entitles this release" : "does NOT entitle this release")
            << (b->isNull("licence_upgrades_until")
                    ? std::string(" (no upgrade date set)")
                    : " (upgrades until " + text("licence_upgrades_until") + ")")
            << "\n"
            << "  verified:     " << text("verified_at") << " by " << text("verified_by") << "\n"
            << "release notes:\n";
  std::istringstream notes(text("notes"));
  for (std::string line; std::getline(notes, line);) std::cout << "  | " << line << "\n";
}

json::ObjectPtr uploadAndVerify(const std::string& file, bool allowDowngrade,
                                const std::function<ApiClient()>& connect) {
  ApiClient client = connect();
  const auto uploaded = uploadFile(client, connect, "/api/v1/upgrade/uploads", file);
  json::ObjectPtr body = new json::Object;
  body->set("upload_id", uploaded.id);
  if (allowDowngrade) body->set("allow_downgrade", true);
  std::cerr << "verifying the whole bundle...\n";
  auto verified = client.request("POST", "/api/v1/upgrade", json::stringify(body));
  if (verified.status != 201) refused("the bundle was refused", verified);
  const auto bundle = json::parseObject(verified.body)->getObject("bundle");
  showBundle(bundle);
  return bundle;
}

// Follows the upgrade (or going back) `id` across the restart: its steps on stderr, until it
// is done and the version it went to serves (0), or it ended rolled back (1).
int follow(const std::function<ApiClient()>& connect, const std::string& operation,
           std::string id) {
  std::optional<ApiClient> client;
  std::size_t shown = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::hours(6);
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      if (!client) client.emplace(connect());
      auto r = client->request("GET", "/api/v1/upgrade");
      if (r.status == 401) {
        client.reset();
        continue;
      }
      if (r.status == 200) {
        const auto o = json::parseObject(r.body);
        const auto up = o->getObject("upgrade");
        if (up && up->getValue<std::string>("operation") == operation &&
            (id.empty() || up->getValue<std::string>("id") == id)) {
          if (id.empty()) id = up->getValue<std::string>("id");
          const auto steps = up->getArray("steps");
          for (; steps && shown < steps->size(); ++shown) {
            const auto s = steps->getObject(static_cast<unsigned>(shown));
            std::cerr << "  " << s->getValue<std::string>("at") << "  "
                      << s->getValue<std::string>("label") << "\n";
          }
          const std::string phase = up->getValue<std::string>("phase");
          const std::string running = o->getObject("running")->getValue<std::string>("version");
          const std::string to = up->getValue<std::string>("to_version");
          if (phase == "done" && running == to) {
            std::cout << (operation == "go-back" ? "gone back" : "upgraded") << ": vcrm " << running
                      << " is running (" << operation << " " << id << ")\n";
            return 0;
          }
          if (phase == "failed") {
            std::cerr << "vcrmctl: the " << operation << " " << id << " was rolled back: "
                      << (up->isNull("rollback_reason")
                              ? up->optValue<std::string>("message", "")
                              : up->getValue<std::string>("rollback_reason"))
                      << "; vcrm " << running << " is running\n";
            return 1;
          }
        }
      }
    } catch (const Unauthenticated&) {
      throw;
    } catch (const std::exception&) {
      client.reset();  // restarting: not back yet
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  std::cerr << "vcrmctl: the appliance did not come back in time\n";
  return 1;
}

int confirm(const std::string& passphrase, const std::function<ApiClient()>& connect) {
  json::ObjectPtr body = new json::Object;
  body->set("backup_passphrase", passphrase);
  ApiClient client = connect();
  auto r = client.request("POST", "/api/v1/upgrade/confirm", json::stringify(body));
  if (r.status != 202) refused("the upgrade was refused", r);
  const auto up = json::parseObject(r.body)->getObject("upgrade");
  std::cerr << "upgrading from " << up->getValue<std::string>("from_version") << " to "
            << up->getValue<std::string>("to_version")
            << " (a pre-upgrade backup first; then about two seconds offline)\n";
  return follow(connect, "upgrade", up->getValue<std::string>("id"));
}

int goBack(const std::function<ApiClient()>& connect) {
  ApiClient client = connect();
  auto r = client.request("POST", "/api/v1/upgrade/go-back", "{}");
  if (r.status != 202) refused("going back was refused", r);
  const auto up = json::parseObject(r.body)->getObject("upgrade");
  std::cerr << "going back from " << up->getValue<std::string>("from_version") << " to "
            << up->getValue<std::string>("to_version") << "\n";
  return follow(connect, "go-back", "");
}

bool askYes(const std::string& question) {
  std::cout << question << " [y/N] " << std::flush;
  std::string answer;
  std::getline(std::cin, answer);
  return answer == "y" || answer == "Y" || answer == "yes";
}

int status(const std::function<ApiClient()>& connect) {
  ApiClient client = connect();
  auto r = client.request("GET", "/api/v1/upgrade");
  if (r.status != 200) refused("the status was refused", r);
  const auto o = json::parseObject(r.body);
  const auto running = o->getObject("running");
  std::cout << "running: vcrm " << running->getValue<std::string>("version") << ", schema "
            << running->get("schema").toString() << ", "
            << (running->isNull("slot") ? running->optValue<std::string>("slot_note", "no slot")
                                        : "slot " + running->getValue<std::string>("slot"))
            << "\n"
            << "state: " << o->getValue<std::string>("state") << "\n";
  if (!o->isNull("pending")) showBundle(o->getObject("pending"));
  if (const auto up = o->getObject("upgrade")) {
    std::cout << "last " << up->getValue<std::string>("operation") << ": "
              << up->getValue<std::string>("id") << ", "
              << up->getValue<std::string>("from_version") << " -> "
              << up->getValue<std::string>("to_version") << ", "
              << up->getValue<std::string>("phase") << " at step "
              << up->getValue<std::string>("step") << " (" << up->getValue<std::string>("label")
              << ")\n";
    if (!up->isNull("rollback_reason"))
      std::cout << "  rolled back: " << up->getValue<std::string>("rollback_reason") << "\n";
  }
  if (const auto prev = o->getObject("previous")) {
    std::cout << "previous version: " << prev->getValue<std::string>("version") << " in slot "
              << prev->getValue<std::string>("slot") << " (vcrmctl upgrade go-back)\n";
  }
  if (const auto history = o->getArray("history"); history && history->size() > 0) {
    std::cout << "history:\n";
    for (std::size_t i = 0; i < history->size(); ++i) {
      const auto h = history->getObject(static_cast<unsigned>(i));
      std::cout << "  " << h->optValue<std::string>("ended_at", "?") << "  "
                << h->getValue<std::string>("operation") << " "
                << h->getValue<std::string>("from_version") << " -> "
                << h->getValue<std::string>("to_version") << ": "
                << h->optValue<std::string>("outcome", "?");
      if (!h->isNull("reason")) std::cout << " (" << h->getValue<std::string>("reason") << ")";
      std::cout << "\n";
    }
  }
  return 0;
}

int discard(const std::function<ApiClient()>& connect) {
  ApiClient client = connect();
  auto r = client.request("DELETE", "/api/v1/upgrade/pending");
  if (r.status != 204) refused("discarding was refused", r);
  std::cout << "the verified bundle and its file were discarded\n";
  return 0;
}

}  // namespace

const char* upgradeUsage() {
  return "usage: vcrmctl [options] upgrade apply FILE [--allow-downgrade] [--yes]\n"
         "                                 [--backup-passphrase-file F]\n"
         "       vcrmctl [options] upgrade upload FILE [--allow-downgrade]\n"
         "       vcrmctl [options] upgrade confirm [--backup-passphrase-file F]\n"
         "       vcrmctl [options] upgrade status | discard | go-back\n"
         "  apply: sends a signed upgrade bundle (.bin) to vcrmd (resumable; progress on\n"
         "  stderr), has the appliance verify it, shows what it is (version, release date,\n"
         "  signer, licence entitlement, release notes), asks (--yes: does not), then confirms\n"
         "  and follows the steps across the restart until the new version serves (exit 0) or\n"
         "  it rolled back by itself (exit 1, with the reason). The pre-upgrade backup is\n"
         "  sealed with the passphrase: the first line of F or VCRM_BACKUP_PASSPHRASE.\n"
         "  upload: only sends and verifies (it waits for confirm); --allow-downgrade (admins\n"
         "  only) lets an older or the same version through.\n"
         "  status: what runs, the bundle waiting, the last upgrade and the history;\n"
         "  discard: drops the waiting bundle; go-back: returns to the previous version.\n"
         "exit status: 0 when done, 1 when refused, failed or rolled back, 2 for a usage error\n";
}

int upgradeCommand(const std::vector<std::string>& args,
                   const std::function<ApiClient()>& connect) {
  const std::string sub = args.empty() ? "" : args[0];
  const bool takesFile = sub == "upload" || sub == "apply";
  const bool takesPassphrase = sub == "apply" || sub == "confirm";
  std::string file, passphraseFile;
  bool allowDowngrade = false, yes = false;
  for (std::size_t i = 1; i < args.size(); ++i) {
    if (takesFile && args[i] == "--allow-downgrade") {
      allowDowngrade = true;
    } else if (sub == "apply" && args[i] == "--yes") {
      yes = true;
    } else if (takesPassphrase && args[i] == "--backup-passphrase-file" && i + 1 < args.size()) {
      passphraseFile = args[++i];
    } else if (takesFile && file.empty() && args[i].rfind("--", 0) != 0) {
      file = args[i];
    } else {
      std::cerr << upgradeUsage();
      return 2;
    }
  }
  const bool known =
      takesFile || sub == "confirm" || sub == "status" || sub == "discard" || sub == "go-back";
  if (!known || takesFile == file.empty()) {
    std::cerr << upgradeUsage();
    return 2;
  }
  try {
    std::string passphrase;
    if (takesPassphrase) {
      passphrase = backupPassphrase(passphraseFile);
      if (passphrase.empty()) {
        std::cerr << "vcrmctl: give --backup-passphrase-file or set VCRM_BACKUP_PASSPHRASE (the "
                     "pre-upgrade backup is sealed with it)\n";
        return 2;
      }
    }
    if (sub == "upload") {
      uploadAndVerify(file, allowDowngrade, connect);
      std::cout << "verified; it waits for confirmation (vcrmctl upgrade confirm, or the web UI; "
                   "vcrmctl upgrade discard drops it)\n";
      return 0;
    }
    if (sub == "apply") {
      const auto bundle = uploadAndVerify(file, allowDowngrade, connect);
      if (!yes && !askYes("Upgrade to " + bundle->getValue<std::string>("version") +
                          "? The appliance restarts on it (about two seconds offline; a "
                          "failed start rolls back by itself).")) {
        std::cout << "not upgraded; the verified bundle waits (vcrmctl upgrade confirm)\n";
        return 1;
      }
      return confirm(passphrase, connect);
    }
    if (sub == "confirm") return confirm(passphrase, connect);
    if (sub == "go-back") return goBack(connect);
    return sub == "status" ? status(connect) : discard(connect);
  } catch (const std::exception& e) {
    std::cerr << "vcrmctl: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace vcrm::ctl
