#include "sshd_process.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "bench_support.h"
#include "child.h"
#include "eventually.h"
#include "janus_process.h"
#include "vcrm/common/process.h"

namespace fs = std::filesystem;

namespace vcrm::test {

namespace {

constexpr const char* kSshd = "/usr/sbin/sshd";
constexpr const char* kSshKeygen = "/usr/bin/ssh-keygen";

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void writeText(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out.flush()) throw std::runtime_error("cannot write " + p.string());
}

bool accepts(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

}  // namespace

SshKeyPair makeSshKeyPair(const fs::path& dir, const std::string& name) {
  const fs::path key = dir / name;
  const auto out = process::run(
      {kSshKeygen, "-q", "-t", "ed25519", "-N", "", "-C", name + "@vcrm-test", "-f", key.string()});
  if (!out.ok()) throw std::runtime_error("ssh-keygen failed: " + out.output);
  std::string pub = slurp(key.string() + ".pub");
  while (!pub.empty() && (pub.back() == '\n' || pub.back() == '\r')) pub.pop_back();
  return {slurp(key), pub};
}

std::string sshKeygenFingerprint(const fs::path& publicKeyFile) {
  const auto out = process::run({kSshKeygen, "-l", "-E", "sha256", "-f", publicKeyFile.string()});
  if (!out.ok()) throw std::runtime_error("ssh-keygen -l failed: " + out.output);
  std::istringstream words(out.output);
  std::string bits, fingerprint;
  words >> bits >> fingerprint;  // "256 SHA256:... comment (ED25519)"
  return fingerprint;
}

SshdProcess::SshdProcess() {
  const passwd* pw = getpwuid(geteuid());
  if (pw == nullptr) throw std::runtime_error("the test's user has no passwd entry");
  user_ = pw->pw_name;
  hostKey_ = makeSshKeyPair(dir(), "host_ed25519");
  clientKey_ = makeSshKeyPair(dir(), "client_ed25519");
  writeText(dir() / "authorized_keys", clientKey_.publicLine + "\n");
  port_ = freeLoopbackPort();
  writeText(dir() / "sshd_config", "Port " + std::to_string(port_) +
                                       "\n"
                                       "ListenAddress 127.0.0.1\n"
                                       "HostKey " +
                                       (dir() / "host_ed25519").string() + "\n" + "PidFile " +
                                       (dir() / "sshd.pid").string() + "\n" +
                                       "AuthorizedKeysFile " +
                                       (dir() / "authorized_keys").string() + "\n" +
                                       "StrictModes no\n"
                                       "UsePAM no\n"
                                       "PasswordAuthentication no\n"
                                       "KbdInteractiveAuthentication no\n"
                                       "PermitRootLogin prohibit-password\n"
                                       "AllowUsers " +
                                       user_ + "\n" +
                                       "Subsystem sftp internal-sftp\n"
                                       "LogLevel VERBOSE\n");
  // sshd's privilege separation wants its empty directory.
  std::error_code ec;
  fs::create_directories("/run/sshd", ec);
  start();
}

SshdProcess::~SshdProcess() {
  stop();
}

fs::path SshdProcess::hostKeyPublicFile() const {
  return dir() / "host_ed25519.pub";
}

fs::path SshdProcess::makeRemoteDir(const std::string& name) const {
  const fs::path p = dir() / name;
  fs::create_directories(p);
  return p;
}

std::string SshdProcess::output() const {
  return slurp(dir() / "sshd.log");
}

void SshdProcess::start() {
  if (running()) return;
  SpawnOptions o;
  o.log = dir() / "sshd.log";
  o.appendLog = true;
  o.dieWithParent = true;
  o.closeInheritedFds = true;
  pid_ = spawnLogged({kSshd, "-D", "-e", "-f", (dir() / "sshd_config").string()}, o);
  const bool up = eventually(
      [&] {
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
          pid_ = -1;
          return true;
        }
        return accepts(port_);
      },
      std::chrono::seconds(20));
  if (!up || pid_ < 0) {
    stop();
    throw std::runtime_error("sshd did not accept connections on port " + std::to_string(port_) +
                             ":\n" + output());
  }
}

void SshdProcess::pauseSessions(bool pause) const {
  for (const pid_t p : sessions()) kill(p, pause ? SIGSTOP : SIGCONT);
}

std::vector<pid_t> SshdProcess::sessions() const {
  std::vector<pid_t> all;
  if (!running()) return all;
  std::vector<pid_t> todo = childrenOf(pid_);
  while (!todo.empty()) {
    const pid_t p = todo.back();
    todo.pop_back();
    all.push_back(p);
    for (const pid_t c : childrenOf(p)) todo.push_back(c);
  }
  return all;
}

void SshdProcess::stop() {
  if (!running()) return;
  // Sessions are processes of their own: end them too, paused or not.
  for (const pid_t p : sessions()) {
    kill(p, SIGTERM);
    kill(p, SIGCONT);
  }
  terminate(pid_, std::chrono::seconds(10));
  pid_ = -1;
}

}  // namespace vcrm::test
