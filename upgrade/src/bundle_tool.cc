#include "vcrm/upgrade/bundle_tool.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <charconv>
#include <map>
#include <optional>
#include <ostream>

#include "vcrm/common/error.h"
#include "vcrm/common/files.h"
#include "vcrm/upgrade/bundle.h"
#include "vcrm/upgrade/bundle_policy.h"

namespace vcrm::upgrade {

namespace {

constexpr const char* kUsage =
    "usage: vcrm-bundle COMMAND [options]\n"
    "\n"
    "  keygen --key-id ID --out PREFIX\n"
    "      a new signing key: PREFIX.key (secret, mode 0600) and PREFIX.pub (a keyring line)\n"
    "  create --key KEY --version V --release-date YYYY-MM-DD --compatible S --min-version V\n"
    "         --notes FILE --from DIR --out FILE [--chunk-size BYTES]\n"
    "      a signed bundle of the installation tree DIR (bin/, share/ of an installed build)\n"
    "  inspect FILE\n"
    "      prints what the bundle says about itself, WITHOUT verifying anything\n"
    "  verify FILE --keyring FILE [--compatible S --installed-version V\n"
    "         [--upgrades-until YYYY-MM-DD] [--allow-downgrade]]\n"
    "      verifies signature, manifest, every chunk and entry; with --compatible and\n"
    "      --installed-version also whether a system of that kind and version may install it\n"
    "\n"
    "Exit status: 0 ok, 1 refused or failed, 2 usage.\n";

struct Usage {
  std::string message;
};

// "--name value" options, "--flag" switches and positional arguments of one command.
struct Options {
  std::vector<std::string> files;
  std::map<std::string, std::string> values;
  std::map<std::string, bool> switches;

  static Options of(const std::vector<std::string>& args, std::initializer_list<const char*> valued,
                    std::initializer_list<const char*> flags) {
    Options o;
    for (std::size_t i = 1; i < args.size(); ++i) {
      const std::string& a = args[i];
      if (a.rfind("--", 0) != 0) {
        o.files.push_back(a);
        continue;
      }
      bool known = false;
      for (const char* f : flags) known = known || a == f;
      if (known) {
        o.switches[a] = true;
        continue;
      }
      for (const char* v : valued) known = known || a == v;
      if (!known) throw Usage{"unknown option " + a};
      if (i + 1 >= args.size()) throw Usage{a + " needs a value"};
      if (!o.values.emplace(a, args[++i]).second) throw Usage{a + " is given twice"};
    }
    return o;
  }
  std::string need(const std::string& name) const {
    const auto it = values.find(name);
    if (it == values.end()) throw Usage{name + " is required"};
    return it->second;
  }
  std::optional<std::string> maybe(const std::string& name) const {
    const auto it = values.find(name);
    return it == values.end() ? std::nullopt : std::optional(it->second);
  }
  std::string onlyFile() const {
    if (files.size() != 1) throw Usage{"expected one bundle file"};
    return files.front();
  }
};

files::Fd openBundle(const std::string& path) {
  files::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw IoError("cannot open " + path + ": " + errnoText(errno));
  return fd;
}

void describe(const BundleInfo& info, std::ostream& out) {
  const BundleManifest& m = info.manifest;
  out << "product:      " << m.product << "\n"
      << "version:      " << m.release.version << "\n"
      << "released:     " << m.release.releaseDate << "\n"
      << "compatible:   " << m.release.compatible << "\n"
      << "upgrades from " << m.release.minVersion << " or later\n"
      << "signed by:    " << info.keyId << "\n"
      << "payload:      " << m.payloadSize << " bytes in " << m.chunks.size() << " chunks of "
      << m.chunkSize << ", " << m.entries.size() << " entries, " << m.totalFileBytes()
      << " bytes of files\n"
      << "release notes:\n"
      << m.release.notes << (m.release.notes.empty() || m.release.notes.back() == '\n' ? "" : "\n");
}

int keygen(const Options& o, std::ostream& out) {
  const BundleSigningKey key = BundleSigningKey::generate(o.need("--key-id"));
  const std::string prefix = o.need("--out");
  files::atomicWrite(prefix + ".key", key.text(), 0600);
  files::atomicWrite(prefix + ".pub", key.keyringLine() + "\n", 0644);
  out << "wrote " << prefix << ".key (secret) and " << prefix << ".pub (keyring line)\n";
  return 0;
}

int create(const Options& o, std::ostream& out) {
  const BundleSigningKey key =
      BundleSigningKey::parse(files::readFile(o.need("--key"), 1 << 16), o.need("--key"));
  BundleRelease r;
  r.version = o.need("--version");
  r.releaseDate = o.need("--release-date");
  r.compatible = o.need("--compatible");
  r.minVersion = o.need("--min-version");
  r.notes = files::readFile(o.need("--notes"), 64u << 10);
  std::uint64_t chunk = kDefaultBundleChunkSize;
  if (const auto c = o.maybe("--chunk-size")) {
    const auto res = std::from_chars(c->data(), c->data() + c->size(), chunk);
    if (res.ec != std::errc() || res.ptr != c->data() + c->size())
      throw Usage{"--chunk-size must be a number of bytes"};
  }
  if (!o.files.empty()) throw Usage{"create takes no file arguments"};
  const BundleManifest m = createBundle(key, r, o.need("--from"), o.need("--out"), chunk);
  out << "wrote " << o.need("--out") << ": vcrm " << m.release.version << ", " << m.entries.size()
      << " entries, payload " << m.payloadSize << " bytes, signed by " << key.keyId << "\n";
  return 0;
}

int inspect(const Options& o, std::ostream& out) {
  const files::Fd fd = openBundle(o.onlyFile());
  const BundleInfo info = inspectBundle(fd.get());
  out << "UNVERIFIED: nothing below is checked (signature, hashes); use `vcrm-bundle verify`\n";
  describe(info, out);
  out << "manifest (unverified):\n" << bundleManifestJson(info.manifest) << "\n";
  return 0;
}

int verify(const Options& o, std::ostream& out) {
  const BundleKeyring ring =
      BundleKeyring::parse(files::readFile(o.need("--keyring"), 1 << 20), o.need("--keyring"));
  const files::Fd fd = openBundle(o.onlyFile());
  const BundleInfo info = verifyBundle(fd.get(), ring);
  const auto compatible = o.maybe("--compatible");
  const auto installed = o.maybe("--installed-version");
  if (compatible.has_value() != installed.has_value()) {
    throw Usage{"--compatible and --installed-version go together"};
  }
  if (compatible) {
    checkUpgradePolicy(info.manifest.release,
                       InstalledFacts{*compatible, *installed, o.maybe("--upgrades-until"),
                                      o.switches.count("--allow-downgrade") != 0});
  }
  out << "verified: signature, manifest, " << info.manifest.chunks.size() << " chunks and "
      << info.manifest.entries.size() << " entries"
      << (compatible ? ", and this system may install it" : "") << "\n";
  describe(info, out);
  return 0;
}

}  // namespace

int runBundleTool(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  try {
    const std::string command = args.empty() ? "" : args[0];
    if (command == "keygen") return keygen(Options::of(args, {"--key-id", "--out"}, {}), out);
    if (command == "create") {
      return create(Options::of(args,
                                {"--key", "--version", "--release-date", "--compatible",
                                 "--min-version", "--notes", "--from", "--out", "--chunk-size"},
                                {}),
                    out);
    }
    if (command == "inspect") return inspect(Options::of(args, {}, {}), out);
    if (command == "verify") {
      return verify(
          Options::of(args,
                      {"--keyring", "--compatible", "--installed-version", "--upgrades-until"},
                      {"--allow-downgrade"}),
          out);
    }
    if (command == "--help" || command == "help") {
      out << kUsage;
      return 0;
    }
    throw Usage{command.empty() ? "no command given" : "unknown command " + command};
  } catch (const Usage& u) {
    err << "vcrm-bundle: " << u.message << "\n\n" << kUsage;
    return 2;
  } catch (const BundleRefused& e) {
    err << "refused (" << e.code() << "): " << e.what() << "\n";
    return 1;
  } catch (const Error& e) {
    err << "vcrm-bundle: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    err << "vcrm-bundle: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace vcrm::upgrade
