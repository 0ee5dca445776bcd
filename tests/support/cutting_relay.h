// A TCP relay on 127.0.0.1 in front of a local port that cuts one connection once, as a dropped
// network would: the first connection whose client has sent more than `cutAfter` bytes is
// closed both ways at that point. For tests of clients that must resume (tus uploads).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace vcrm::test {

class CuttingRelay {
 public:
  CuttingRelay(int targetPort, std::uint64_t cutAfter);
  ~CuttingRelay();
  CuttingRelay(const CuttingRelay&) = delete;
  CuttingRelay& operator=(const CuttingRelay&) = delete;

  int port() const { return port_; }
  bool cut() const { return cut_; }  // whether the cut has happened
  int connections() const { return connections_; }

 private:
  void acceptLoop();
  void relay(int client);

  int targetPort_;
  std::uint64_t cutAfter_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> cut_{false};
  std::atomic<int> connections_{0};
  std::mutex threadsLock_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

}  // namespace vcrm::test
