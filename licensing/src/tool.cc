#include "vcrm/licensing/tool.h"

#include <charconv>
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <ostream>
#include <set>

#include "vcrm/common/error.h"
#include "vcrm/common/files.h"
#include "vcrm/licensing/armour.h"
#include "vcrm/licensing/licence_file.h"
#include "vcrm/licensing/policy.h"
#include "vcrm/licensing/serial.h"

namespace vcrm::licensing {

namespace {

constexpr const char* kUsage =
    "usage: vcrm-license COMMAND [options]\n"
    "\n"
    "  keygen --key-id ID --out PREFIX\n"
    "      a new vendor signing key: PREFIX.key (secret, mode 0600) and PREFIX.pub (a keyring "
    "line)\n"
    "  issue --key FILE --serial SERIAL --licence-id ID --sequence N --customer NAME\n"
    "        --upgrades-until YYYY-MM-DD --ports N --bridges N [--redundancy]\n"
    "        [--role primary|redundant] [--peer-serial SERIAL] [--valid-from TIME]\n"
    "        [--valid-until TIME|never] [--grace-days N] [--issued-at TIME]\n"
    "        [--feature NAME=INTEGER|true|false]... [--out FILE]\n"
    "      a signed licence file for one server (times are UTC: 2026-03-01T00:00:00Z;\n"
    "      valid-from and issued-at default to now, valid-until to never, grace-days to 30)\n"
    "  show FILE [--keyring FILE]\n"
    "      verifies the signature, then prints the licence as JSON\n"
    "  verify FILE [--keyring FILE] [--serial SERIAL] [--role primary|redundant] [--at TIME]\n"
    "      verifies the signature and, with --serial, whether that server would accept it\n"
    "      (at --at, default now); prints \"ok\" or the refusal's code and reason\n"
    "\n"
    "The keyring defaults to the one built into this tool. Exit status: 0 ok, 1 refused or\n"
    "failed, 2 usage.\n";

struct Usage {
  std::string message;
};

class Args {
 public:
  explicit Args(const std::vector<std::string>& a) {
    for (std::size_t i = 0; i < a.size(); ++i) {
      const std::string& s = a[i];
      if (s.rfind("--", 0) != 0) {
        positional.push_back(s);
      } else if (s == "--redundancy") {
        flags[s] = {"true"};
      } else {
        if (i + 1 >= a.size()) throw Usage{s + " needs a value"};
        flags[s].push_back(a[++i]);
      }
    }
  }
  std::optional<std::string> opt(const std::string& name) {
    used_.insert(name);
    auto it = flags.find(name);
    if (it == flags.end()) return std::nullopt;
    if (it->second.size() > 1 && name != "--feature") throw Usage{name + " is given twice"};
    return it->second.front();
  }
  std::string req(const std::string& name) {
    auto v = opt(name);
    if (!v) throw Usage{name + " is required"};
    return *v;
  }
  std::vector<std::string> all(const std::string& name) {
    used_.insert(name);
    auto it = flags.find(name);
    return it == flags.end() ? std::vector<std::string>{} : it->second;
  }
  void done(std::size_t positionals) const {
    for (const auto& [k, v] : flags) {
      if (!used_.count(k)) throw Usage{"unknown option " + k};
    }
    if (positional.size() != positionals)
      throw Usage{"expected " + std::to_string(positionals) + " file argument(s)"};
  }
  std::vector<std::string> positional;

 private:
  std::map<std::string, std::vector<std::string>> flags;
  std::set<std::string> used_;
};

std::int64_t integer(const std::string& name, const std::string& text) {
  std::int64_t v = 0;
  const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
  if (r.ec != std::errc() || r.ptr != text.data() + text.size())
    throw Usage{name + " must be an integer, not \"" + text + "\""};
  return v;
}

std::int64_t time(const std::string& name, const std::string& text) {
  const auto t = parseUtcTime(text);
  if (!t) throw Usage{name + " must be a UTC time like 2026-03-01T00:00:00Z, not \"" + text + "\""};
  return *t;
}

std::int64_t nowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string serial(const std::string& name, const std::string& typed) {
  std::string why;
  const auto s = parseSerial(typed, &why);
  if (!s) throw Usage{name + " \"" + typed + "\" is not a serial number: " + why};
  return *s;
}

Keyring keyring(Args& a) {
  if (auto path = a.opt("--keyring")) return Keyring::parse(files::readFile(*path, 1 << 20), *path);
  return Keyring::builtIn();
}

int keygen(Args& a, std::ostream& out) {
  const std::string id = a.req("--key-id");
  const std::string prefix = a.req("--out");
  a.done(0);
  const auto key = SigningKey::generate(id);
  if (std::filesystem::exists(prefix + ".key"))
    throw InvalidInput(prefix + ".key exists; not overwriting a signing key");
  files::atomicWrite(prefix + ".key", key.text(), 0600);
  files::atomicWrite(prefix + ".pub", "# vcrm licence keyring\n" + key.keyringLine() + "\n", 0644);
  out << "wrote " << prefix << ".key (secret) and " << prefix
      << ".pub (keyring for the appliances)\n";
  return 0;
}

int issue(Args& a, std::ostream& out) {
  const std::string keyPath = a.req("--key");
  const auto key = SigningKey::parse(files::readFile(keyPath, 1 << 16), keyPath);
  Licence l;
  l.keyId = key.keyId;
  l.serial = serial("--serial", a.req("--serial"));
  l.licenceId = a.req("--licence-id");
  l.sequence = integer("--sequence", a.req("--sequence"));
  l.customer = a.req("--customer");
  const auto role = parseRole(a.opt("--role").value_or("primary"));
  if (!role) throw Usage{"--role must be primary or redundant"};
  l.role = *role;
  if (auto peer = a.opt("--peer-serial")) l.peerSerial = serial("--peer-serial", *peer);
  const std::int64_t now = nowSeconds();
  l.issuedAt = a.opt("--issued-at") ? time("--issued-at", *a.opt("--issued-at")) : now;
  l.validFrom = a.opt("--valid-from") ? time("--valid-from", *a.opt("--valid-from")) : now;
  if (auto until = a.opt("--valid-until"); until && *until != "never")
    l.validUntil = time("--valid-until", *until);
  l.graceDays = static_cast<int>(integer("--grace-days", a.opt("--grace-days").value_or("30")));
  const auto upgrades = parseUtcDate(a.req("--upgrades-until"));
  if (!upgrades) throw Usage{"--upgrades-until must be a date like 2027-03-01"};
  l.upgradesUntil = *upgrades;
  l.features.concurrentPorts = integer("--ports", a.req("--ports"));
  l.features.bridges = integer("--bridges", a.req("--bridges"));
  l.features.redundancy = a.opt("--redundancy").has_value();
  for (const auto& f : a.all("--feature")) {
    const auto eq = f.find('=');
    if (eq == std::string::npos) throw Usage{"--feature takes NAME=VALUE, not \"" + f + "\""};
    const std::string name = f.substr(0, eq), value = f.substr(eq + 1);
    if (value == "true" || value == "false") {
      l.features.more[name] = value == "true";
    } else {
      l.features.more[name] = integer("--feature " + name, value);
    }
  }
  const auto outPath = a.opt("--out");
  a.done(0);
  const std::string file = issueLicence(l, key);
  if (outPath) {
    files::atomicWrite(*outPath, file, 0644);
  } else {
    out << file;
  }
  return 0;
}

// Reads and verifies FILE; prints the refusal and returns nullopt when it is refused.
std::optional<Licence> verified(Args& a, std::ostream& err) {
  const Keyring k = keyring(a);
  const std::string text = files::readFile(a.positional.at(0), kMaxLicenceFileBytes + 1);
  auto r = readLicence(text, k);
  if (auto* refusal = std::get_if<Refusal>(&r)) {
    err << reasonCode(refusal->reason) << ": " << refusal->message << "\n";
    return std::nullopt;
  }
  return std::get<Licence>(r);
}

int show(Args& a, std::ostream& out, std::ostream& err) {
  if (a.positional.size() != 1) throw Usage{"show takes one licence file"};
  auto l = verified(a, err);
  a.done(1);
  if (!l) return 1;
  out << json::stringify(toJson(*l)) << "\n";
  return 0;
}

int verify(Args& a, std::ostream& out, std::ostream& err) {
  if (a.positional.size() != 1) throw Usage{"verify takes one licence file"};
  const auto serialArg = a.opt("--serial");
  const auto role = parseRole(a.opt("--role").value_or("primary"));
  if (!role) throw Usage{"--role must be primary or redundant"};
  const auto atText = a.opt("--at");
  const std::int64_t at = atText ? time("--at", *atText) : nowSeconds();
  auto l = verified(a, err);
  a.done(1);
  if (!l) return 1;
  if (serialArg) {
    const auto refusal =
        checkApplicable(*l, std::nullopt, serial("--serial", *serialArg), *role, at, 0);
    if (refusal) {
      err << reasonCode(refusal->reason) << ": " << refusal->message << "\n";
      return 1;
    }
  }
  out << "ok: licence " << l->licenceId << " (sequence " << l->sequence << ") for " << l->serial
      << ", signed with key " << l->keyId << "\n";
  return 0;
}

}  // namespace

int runTool(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  try {
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
      (args.empty() ? err : out) << kUsage;
      return args.empty() ? 2 : 0;
    }
    Args a(std::vector<std::string>(args.begin() + 1, args.end()));
    const std::string& cmd = args[0];
    if (cmd == "keygen") return keygen(a, out);
    if (cmd == "issue") return issue(a, out);
    if (cmd == "show") return show(a, out, err);
    if (cmd == "verify") return verify(a, out, err);
    throw Usage{"unknown command \"" + cmd + "\""};
  } catch (const Usage& u) {
    err << "vcrm-license: " << u.message << "\n" << kUsage;
    return 2;
  } catch (const std::exception& e) {
    err << "vcrm-license: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace vcrm::licensing
