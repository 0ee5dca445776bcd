// Test hosts on one machine: two network namespaces joined by a veth pair, with addresses from
// 198.18.0.0/15 (RFC 2544, benchmarking), so traffic never leaves the machine. Both are
// deleted, with everything in them, when the object goes away.
#pragma once

#include <string>
#include <vector>

namespace vcrm::test {

class NetnsLink {
 public:
  NetnsLink();
  ~NetnsLink();
  NetnsLink(const NetnsLink&) = delete;
  NetnsLink& operator=(const NetnsLink&) = delete;

  const std::string& a() const { return a_; }
  const std::string& b() const { return b_; }
  static std::string addressA() { return "198.18.0.1"; }
  static std::string addressB() { return "198.18.0.2"; }

  // Runs a command inside namespace `ns` (ip netns exec); throws with its output on failure.
  static void exec(const std::string& ns, const std::vector<std::string>& argv);
  // Why these tests cannot run here (not root, no ip or nft), or empty when they can.
  static std::string unavailableReason();

 private:
  std::string a_;
  std::string b_;
};

// Moves the calling thread into a named network namespace; moves it back on destruction.
// Processes the thread starts meanwhile are born inside it.
class ScopedNetns {
 public:
  explicit ScopedNetns(const std::string& name);
  ~ScopedNetns();
  ScopedNetns(const ScopedNetns&) = delete;
  ScopedNetns& operator=(const ScopedNetns&) = delete;

 private:
  int original_ = -1;
};

}  // namespace vcrm::test
