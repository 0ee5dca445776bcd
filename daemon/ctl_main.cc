// vcrmctl: one API request from the command line, e.g.
//   vcrmctl --root /var/lib/vcrm-dev GET /api/v1/bridges
//   vcrmctl POST /api/v1/bridges '{"name":"b1",...}' --field id
//   vcrmctl POST /api/v1/license --file-field file=site.lic
//   vcrmctl --root /var/lib/vcrm-dev backup create --passphrase-file F --out site.vcrmbak
//   vcrmctl --root /var/lib/vcrm-dev restore site.vcrmbak --passphrase-file F
//   vcrmctl --root /var/lib/vcrm-dev upgrade upload vcrm-0.2.0.bin
// and local commands that need no vcrmd:
//   vcrmctl backup verify FILE
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "src/ctl_backup.h"
#include "src/ctl_restore.h"
#include "src/ctl_upgrade.h"
#include "vcrm/common/error.h"
#include "vcrm/common/files.h"
#include "vcrm/common/json.h"
#include "vcrm/daemon/api_client.h"

namespace {

void usage(std::ostream& out) {
  out << "usage: vcrmctl [options] METHOD PATH [JSON]\n"
         "  --root DIR           appliance root: finds the port, certificate and first admin "
         "password\n"
         "  --host H --port N    where vcrmd listens (default 127.0.0.1:8443, or from --root)\n"
         "  --ca FILE            certificate to trust (default "
         "<root>/var/lib/vcrm/tls/server.crt)\n"
         "  --user NAME          default admin\n"
         "  --password-file F    default <root>/var/lib/vcrm/initial-admin-password; or set "
         "VCRM_PASSWORD\n"
         "  --field NAME         print only this top-level field of the JSON answer\n"
         "  --file-field K=FILE  send {\"K\": <FILE's text>} as the body (e.g. a licence file)\n"
         "exit status: 0 for a 2xx answer, 1 otherwise (the error message goes to stderr)\n"
         "\n";
  out << vcrm::ctl::backupUsage() << "\n"
      << vcrm::ctl::restoreUsage() << "\n"
      << vcrm::ctl::upgradeUsage();
}

std::string trimNewline(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  std::string root, host = "127.0.0.1", ca, user = "admin", passwordFile, field, fileField;
  int port = 0;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "vcrmctl: " << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      usage(std::cout);
      return 0;
    } else if (a == "--root") {
      root = next();
    } else if (a == "--host") {
      host = next();
    } else if (a == "--port") {
      port = std::atoi(next().c_str());
    } else if (a == "--ca") {
      ca = next();
    } else if (a == "--user") {
      user = next();
    } else if (a == "--password-file") {
      passwordFile = next();
    } else if (a == "--field") {
      field = next();
    } else if (a == "--file-field") {
      fileField = next();
    } else {
      positional.push_back(a);
    }
  }
  const bool backup = !positional.empty() && positional[0] == "backup";
  const bool restore = !positional.empty() && positional[0] == "restore";
  const bool upgrade = !positional.empty() && positional[0] == "upgrade";
  if (!backup && !restore && !upgrade &&
      (positional.size() < 2 || positional.size() > 3 ||
       (!fileField.empty() && positional.size() == 3))) {
    usage(std::cerr);
    return 2;
  }
  if (backup && positional.size() >= 2 && positional[1] == "verify") {
    // Local: no vcrmd, no sign-in.
    return vcrm::ctl::backupCommand(
        std::vector<std::string>(positional.begin() + 1, positional.end()),
        []() -> vcrm::ApiClient { throw vcrm::InvalidInput("backup verify needs no vcrmd"); });
  }
  try {
    const std::string state = root.empty() ? "" : root + "/var/lib/vcrm";
    // With --root and no --port, the port is read at every connection: a restore restarts
    // vcrmd, which may then listen elsewhere (port 0 in tests).
    const bool portFromRoot = !state.empty() && port == 0;
    if (!state.empty()) {
      if (ca.empty()) ca = state + "/tls/server.crt";
      if (passwordFile.empty()) passwordFile = state + "/initial-admin-password";
    }
    std::string password;
    if (const char* env = std::getenv("VCRM_PASSWORD"); env && *env) {
      password = env;
    } else if (!passwordFile.empty()) {
      password = trimNewline(vcrm::files::readFile(passwordFile, 4096));
    } else {
      std::cerr << "vcrmctl: give --password-file, --root or VCRM_PASSWORD\n";
      return 2;
    }
    auto connect = [&] {
      if (portFromRoot) {
        port = vcrm::json::parseObject(vcrm::files::readFile(state + "/run/vcrmd.json"))
                   ->getValue<int>("https_port");
      }
      vcrm::ApiClient client({host, port ? port : 8443, ca, false});
      client.login(user, password);
      return client;
    };
    if (backup) {
      return vcrm::ctl::backupCommand(
          std::vector<std::string>(positional.begin() + 1, positional.end()), connect);
    }
    if (restore) {
      return vcrm::ctl::restoreCommand(
          std::vector<std::string>(positional.begin() + 1, positional.end()), connect);
    }
    if (upgrade) {
      return vcrm::ctl::upgradeCommand(
          std::vector<std::string>(positional.begin() + 1, positional.end()), connect);
    }
    vcrm::ApiClient client = connect();
    std::string body = positional.size() == 3 ? positional[2] : "";
    if (!fileField.empty()) {
      const auto eq = fileField.find('=');
      if (eq == std::string::npos || eq == 0) {
        std::cerr << "vcrmctl: --file-field takes KEY=FILE\n";
        return 2;
      }
      vcrm::json::ObjectPtr o = new vcrm::json::Object;
      o->set(fileField.substr(0, eq), vcrm::files::readFile(fileField.substr(eq + 1), 16u << 20));
      body = vcrm::json::stringify(o);
    }
    const auto reply = client.request(positional[0], positional[1], body);
    if (reply.status >= 300) {
      std::string message = reply.body;
      try {
        message = vcrm::json::parseObject(reply.body)->getObject("error")->getValue<std::string>("message");
      } catch (...) {  // NOLINT(bugprone-empty-catch): print the raw body instead
      }
      std::cerr << "vcrmctl: " << reply.status << ": " << message << "\n";
      return 1;
    }
    if (!field.empty()) {
      std::cout << vcrm::json::parseObject(reply.body)->get(field).toString() << "\n";
    } else {
      std::cout << reply.body << (reply.body.empty() || reply.body.back() == '\n' ? "" : "\n");
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "vcrmctl: " << e.what() << "\n";
    return 1;
  }
}
