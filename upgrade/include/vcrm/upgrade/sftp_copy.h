// Off-box copies of backup archives over SFTP (libssh): one connection to a pinned server,
// authenticated with a private key held in memory, that copies a file as `name.part`, checks
// the remote size, renames it into place, and can prune the oldest vcrm-*.vcrmbak archives
// beyond a count. Every refusal is an SftpError whose reason names what is wrong: the address,
// the port, the host key, the credentials, the remote directory or its disk space.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vcrm/common/error.h"

namespace vcrm::upgrade {

// Where a copy goes and how it proves who it talks to.
struct SftpTarget {
  std::string host;  // name or address
  int port = 22;
  std::string user;
  std::string remoteDir;   // absolute, or relative to the user's login directory
  std::string privateKey;  // OpenSSH private key text (unencrypted); never logged or shown
  // The server's public key as ssh-keyscan prints it or as in known_hosts
  // ("[host]:port ssh-ed25519 AAAA..." or "ssh-ed25519 AAAA... comment"); compared exactly.
  std::string hostKey;
  std::chrono::milliseconds connectTimeout = std::chrono::seconds(15);  // TCP, handshake, login
  std::chrono::milliseconds ioTimeout = std::chrono::seconds(60);       // each SFTP request
};

enum class SftpReason {
  Address,          // the host name does not resolve, or no route to it / no answer (firewall)
  Port,             // nothing listens there, or not an SSH server
  HostKey,          // the server's key is not the pinned one (or the pinned line is unusable)
  Credentials,      // the user or the key is refused (or the key text is unusable)
  RemoteDirectory,  // missing, not a directory, or not writable by the user
  DiskSpace,        // the remote file system has no room for the file
  Transfer,         // the connection failed or timed out during the copy
};

// "sftp_address", "sftp_port", "sftp_host_key", ...: the stable code for a reason.
std::string_view sftpReasonCode(SftpReason reason);

class SftpError : public Unprocessable {
 public:
  SftpError(SftpReason reason, const std::string& message)
      : Unprocessable(message, std::string(sftpReasonCode(reason))), reason_(reason) {}
  [[nodiscard]] SftpReason reason() const noexcept { return reason_; }

 private:
  SftpReason reason_;
};

// "SHA256:..." as ssh-keygen -l prints it, of a public key line in either form SftpTarget
// takes; throws SftpError(HostKey) when the line holds no public key.
std::string sshKeyFingerprint(const std::string& keyLine);

// Called as a copy streams: bytes sent so far and in all.
using CopyProgress = std::function<void(std::uint64_t done, std::uint64_t total)>;

// An archive found in the remote directory.
struct RemoteArchive {
  std::string name;
  std::uint64_t size = 0;
};

// One authenticated SFTP session in the target's remote directory.
class SftpClient {
 public:
  // Connects, checks the host key, logs in and checks the remote directory; throws SftpError.
  explicit SftpClient(SftpTarget target);
  ~SftpClient();
  SftpClient(const SftpClient&) = delete;
  SftpClient& operator=(const SftpClient&) = delete;

  // Copies `localFile` to `remoteName` in the remote directory (replacing one of that name):
  // writes `remoteName.part`, checks its size, renames it. On failure the .part is removed.
  // Returns the bytes copied. `remoteName` is one plain file name ([A-Za-z0-9._-]).
  std::uint64_t copy(const std::filesystem::path& localFile, const std::string& remoteName,
                     const CopyProgress& progress = {});

  // The vcrm-*.vcrmbak files in the remote directory, oldest first (by the time stamp in the
  // name, else by modification time).
  std::vector<RemoteArchive> listArchives();

  // Removes the oldest archives so that at most `keep` remain; returns the names removed.
  std::vector<std::string> pruneArchives(std::size_t keep);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct CopyOutcome {
  std::uint64_t bytes = 0;
  std::vector<std::string> removed;  // older archives pruned
};

// What the backups module does after a backup: connect, copy, and with `keep` prune the
// remote directory to that many archives, on one connection.
CopyOutcome copyArchive(const SftpTarget& target, const std::filesystem::path& localFile,
                        const std::string& remoteName, std::optional<std::size_t> keep = {},
                        const CopyProgress& progress = {});

}  // namespace vcrm::upgrade
