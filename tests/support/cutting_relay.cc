#include "cutting_relay.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <stdexcept>

namespace vcrm::test {

CuttingRelay::CuttingRelay(int targetPort, std::uint64_t cutAfter)
    : targetPort_(targetPort), cutAfter_(cutAfter) {
  listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener_, 16) != 0 ||
      ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error("cannot start the relay");
  }
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { acceptLoop(); });
}

CuttingRelay::~CuttingRelay() {
  stopping_ = true;
  ::shutdown(listener_, SHUT_RDWR);
  acceptor_.join();
  ::close(listener_);
  std::lock_guard lock(threadsLock_);
  for (auto& t : threads_) t.join();
}

void CuttingRelay::acceptLoop() {
  while (!stopping_) {
    pollfd p{listener_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    ++connections_;
    std::lock_guard lock(threadsLock_);
    threads_.emplace_back([this, client] { relay(client); });
  }
}

void CuttingRelay::relay(int client) {
  const int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(targetPort_));
  if (server < 0 || ::connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(client);
    if (server >= 0) ::close(server);
    return;
  }
  std::uint64_t sent = 0;
  std::array<char, 65536> buf{};
  std::array<pollfd, 2> fds{{{client, POLLIN, 0}, {server, POLLIN, 0}}};
  while (!stopping_) {
    if (::poll(fds.data(), fds.size(), 100) < 0) break;
    bool done = false;
    for (int i = 0; i < 2 && !done; ++i) {
      if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      std::size_t want = buf.size();
      if (i == 0 && !cut_)
        want = static_cast<std::size_t>(
            std::min<std::uint64_t>(want, cutAfter_ - std::min(sent, cutAfter_) + 1));
      const ssize_t n = ::read(fds[i].fd, buf.data(), want);
      if (n <= 0) {
        done = true;
        break;
      }
      if (i == 0) {
        sent += static_cast<std::uint64_t>(n);
        if (sent > cutAfter_ && !cut_.exchange(true)) {
          done = true;  // the cut: neither side hears from the other again
          break;
        }
      }
      for (ssize_t off = 0; off < n;) {
        const ssize_t w =
            ::write(fds[1 - i].fd, buf.data() + off, static_cast<std::size_t>(n - off));
        if (w <= 0) {
          done = true;
          break;
        }
        off += w;
      }
    }
    if (done) break;
  }
  ::shutdown(client, SHUT_RDWR);
  ::shutdown(server, SHUT_RDWR);
  ::close(client);
  ::close(server);
}

}  // namespace vcrm::test
