#include "ctl_upgrade.h"

#include <iostream>
#include <sstream>

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

int uploadAndVerify(const std::string& file, bool allowDowngrade,
                    const std::function<ApiClient()>& connect) {
  ApiClient client = connect();
  const auto uploaded = uploadFile(client, connect, "/api/v1/upgrade/uploads", file);
  json::ObjectPtr body = new json::Object;
  body->set("upload_id", uploaded.id);
  if (allowDowngrade) body->set("allow_downgrade", true);
  std::cerr << "verifying the whole bundle...\n";
  auto verified = client.request("POST", "/api/v1/upgrade", json::stringify(body));
  if (verified.status != 201) refused("the bundle was refused", verified);
  showBundle(json::parseObject(verified.body)->getObject("bundle"));
  std::cout << "verified; applying a bundle is not available yet (it waits: vcrmctl upgrade "
               "status; vcrmctl upgrade discard drops it)\n";
  return 0;
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
  return "usage: vcrmctl [options] upgrade upload FILE [--allow-downgrade]\n"
         "       vcrmctl [options] upgrade status | discard\n"
         "  upload: sends a signed upgrade bundle (.bin) to vcrmd (resumable; progress on\n"
         "  stderr), has the appliance verify it and shows what it is: version, release date,\n"
         "  signer, licence entitlement, release notes. --allow-downgrade (admins only) lets an\n"
         "  older or the same version through. Applying it is not available yet.\n"
         "  status: what runs and the verified bundle waiting; discard: drops that bundle.\n"
         "exit status: 0 when done, 1 when refused or failed, 2 for a usage error\n";
}

int upgradeCommand(const std::vector<std::string>& args,
                   const std::function<ApiClient()>& connect) {
  const std::string sub = args.empty() ? "" : args[0];
  std::string file;
  bool allowDowngrade = false;
  for (std::size_t i = 1; i < args.size(); ++i) {
    if (sub == "upload" && args[i] == "--allow-downgrade") {
      allowDowngrade = true;
    } else if (sub == "upload" && file.empty() && args[i].rfind("--", 0) != 0) {
      file = args[i];
    } else {
      std::cerr << upgradeUsage();
      return 2;
    }
  }
  if ((sub == "upload") == file.empty() ||
      (sub != "upload" && sub != "status" && sub != "discard")) {
    std::cerr << upgradeUsage();
    return 2;
  }
  try {
    if (sub == "upload") return uploadAndVerify(file, allowDowngrade, connect);
    return sub == "status" ? status(connect) : discard(connect);
  } catch (const std::exception& e) {
    std::cerr << "vcrmctl: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace vcrm::ctl
