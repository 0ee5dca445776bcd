#include "netns.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <stdexcept>

#include "vcrm/common/process.h"

namespace vcrm::test {

namespace {

constexpr const char* kIp = "/usr/sbin/ip";
constexpr const char* kNft = "/usr/sbin/nft";

void run(const std::vector<std::string>& argv) {
  auto out = process::run(argv);
  if (!out.ok()) {
    std::string cmd;
    for (const auto& a : argv) cmd += a + " ";
    throw std::runtime_error("command failed: " + cmd + "\n" + out.output);
  }
}

}  // namespace

std::string NetnsLink::unavailableReason() {
  if (geteuid() != 0) return "network-namespace tests need root";
  if (access(kIp, X_OK) != 0) return std::string(kIp) + " is missing (install iproute2)";
  if (access(kNft, X_OK) != 0) return std::string(kNft) + " is missing (install nftables)";
  return {};
}

NetnsLink::NetnsLink() {
  const std::string tag = std::to_string(getpid());
  a_ = "vcrmt-" + tag + "-a";
  b_ = "vcrmt-" + tag + "-b";
  const std::string vethA = "vta" + tag;  // interface names stay under 15 characters
  const std::string vethB = "vtb" + tag;
  try {
    run({kIp, "netns", "add", a_});
    run({kIp, "netns", "add", b_});
    run({kIp, "link", "add", vethA, "netns", a_, "type", "veth", "peer", "name", vethB, "netns", b_});
    exec(a_, {kIp, "addr", "add", addressA() + "/30", "dev", vethA});
    exec(b_, {kIp, "addr", "add", addressB() + "/30", "dev", vethB});
    for (const auto& [ns, dev] : {std::pair{a_, vethA}, std::pair{b_, vethB}}) {
      exec(ns, {kIp, "link", "set", "lo", "up"});
      exec(ns, {kIp, "link", "set", dev, "up"});
    }
  } catch (...) {
    process::run({kIp, "netns", "del", a_});
    process::run({kIp, "netns", "del", b_});
    throw;
  }
}

NetnsLink::~NetnsLink() {
  process::run({kIp, "netns", "del", a_});
  process::run({kIp, "netns", "del", b_});
}

void NetnsLink::exec(const std::string& ns, const std::vector<std::string>& argv) {
  std::vector<std::string> full{kIp, "netns", "exec", ns};
  full.insert(full.end(), argv.begin(), argv.end());
  run(full);
}

ScopedNetns::ScopedNetns(const std::string& name) {
  original_ = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  const int target = open(("/var/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
  if (original_ < 0 || target < 0 || setns(target, CLONE_NEWNET) != 0) {
    if (target >= 0) close(target);
    if (original_ >= 0) close(original_);
    throw std::runtime_error("cannot enter network namespace " + name);
  }
  close(target);
}

ScopedNetns::~ScopedNetns() {
  if (original_ >= 0) {
    setns(original_, CLONE_NEWNET);
    close(original_);
  }
}

}  // namespace vcrm::test
