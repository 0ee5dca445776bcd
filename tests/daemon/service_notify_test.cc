// vcrmd tells systemd (Type=notify, packaging/vcrm.service) when it serves and when it stops,
// over a real datagram socket the test binds where $NOTIFY_SOCKET says.
#include "vcrm/daemon/service_notify.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <string>

#include "temp_dir.h"
#include "vcrmd_process.h"
#include "vcrm/common/files.h"
#include "vcrm/common/version.h"

namespace {

// A notification socket like systemd's: bound at `path` ("@name": abstract).
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path)
      : fd_(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    if (path[0] == '@') addr.sun_path[0] = '\0';
    const auto size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
    EXPECT_EQ(::bind(fd_.get(), reinterpret_cast<const sockaddr*>(&addr), size), 0)
        << std::strerror(errno);
  }
  // The next datagram within `timeout`, or nullopt.
  std::optional<std::string> next(std::chrono::milliseconds timeout) {
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
    char buf[4096];
    const ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<std::size_t>(n));
  }

 private:
  vcrm::files::Fd fd_;
};

class EnvVar {
 public:
  EnvVar(const char* name, const std::string& value) : name_(name) {
    ::setenv(name, value.c_str(), 1);
  }
  ~EnvVar() { ::unsetenv(name_); }

 private:
  const char* name_;
};

TEST(ServiceNotify, WithoutASocketNothingIsSentAndThatIsNoError) {
  ::unsetenv("NOTIFY_SOCKET");
  EXPECT_FALSE(vcrm::notifyServiceManager("READY=1"));
  EnvVar relative("NOTIFY_SOCKET", "not/absolute");
  EXPECT_FALSE(vcrm::notifyServiceManager("READY=1"));
}

TEST(ServiceNotify, ReachesAnAbstractSocket) {
  const std::string name = "@vcrm-notify-test-" + std::to_string(::getpid());
  NotifySocket socket(name);
  EnvVar env("NOTIFY_SOCKET", name);
  EXPECT_TRUE(vcrm::notifyServiceManager("STATUS=hello"));
  EXPECT_EQ(socket.next(std::chrono::seconds(2)), "STATUS=hello");
}

TEST(ServiceNotify, VcrmdSaysReadyOnceItServesAndStoppingWhenItStops) {
  vcrm::test::TempDir dir;
  const std::string path = (dir.path() / "notify").string();
  NotifySocket socket(path);
  vcrm::test::VcrmdProcess::Options options;
  options.env = {"NOTIFY_SOCKET=" + path};
  vcrm::test::VcrmdProcess vcrmd(options);
  vcrmd.start();
  const auto ready = socket.next(std::chrono::seconds(10));
  ASSERT_TRUE(ready) << "no READY=1 within 10 s of the ready file";
  EXPECT_EQ(ready->rfind("READY=1\nSTATUS=vcrm " + std::string(vcrm::productVersion()) +
                             " serving at https://",
                         0),
            0u)
      << *ready;
  EXPECT_FALSE(socket.next(std::chrono::milliseconds(200))) << "READY is said once";
  EXPECT_EQ(vcrmd.stop(), 0);
  EXPECT_EQ(socket.next(std::chrono::seconds(5)), "STOPPING=1");
}

}  // namespace
