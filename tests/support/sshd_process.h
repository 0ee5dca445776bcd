// A real OpenSSH server (/usr/sbin/sshd) for tests of SFTP copies: its own host key, config,
// authorized_keys and pid file in a temp dir, listening on 127.0.0.1 at a free port, serving
// internal-sftp to the user running the test, and stopped when the object goes away.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "temp_dir.h"

namespace vcrm::test {

// An Ed25519 key pair made with ssh-keygen: the private key text (OpenSSH format) and the
// public key line ("ssh-ed25519 AAAA... comment").
struct SshKeyPair {
  std::string privateKey;
  std::string publicLine;
};
SshKeyPair makeSshKeyPair(const std::filesystem::path& dir, const std::string& name);

// "SHA256:..." of a public key file, as ssh-keygen -l prints it.
std::string sshKeygenFingerprint(const std::filesystem::path& publicKeyFile);

class SshdProcess {
 public:
  // Makes the host key and one client key allowed to log in, writes the config and starts
  // sshd; throws with sshd's output if it does not accept connections in time.
  SshdProcess();
  ~SshdProcess();  // always stops sshd
  SshdProcess(const SshdProcess&) = delete;
  SshdProcess& operator=(const SshdProcess&) = delete;

  void start();
  void stop();  // SIGTERM, then SIGKILL after 10 s
  bool running() const { return pid_ > 0; }
  // SIGSTOP (true) or SIGCONT (false) every process serving a connection: a server that stops
  // answering without closing anything.
  void pauseSessions(bool pause) const;

  int port() const { return port_; }
  std::string user() const { return user_; }  // who may log in (the test's user)
  const std::string& hostKeyLine() const { return hostKey_.publicLine; }
  std::filesystem::path hostKeyPublicFile() const;
  const SshKeyPair& clientKey() const { return clientKey_; }  // in authorized_keys
  // A directory the user can write, for copies to land in.
  std::filesystem::path makeRemoteDir(const std::string& name) const;
  std::string output() const;  // sshd's log (-e)
  const std::filesystem::path& dir() const { return dir_.path(); }

 private:
  std::vector<pid_t> sessions() const;  // every process below the listener

  TempDir dir_{"vcrm-sshd"};
  int port_ = 0;
  pid_t pid_ = -1;
  std::string user_;
  SshKeyPair hostKey_;
  SshKeyPair clientKey_;
};

}  // namespace vcrm::test
