#include "vcrm/upgrade/sftp_copy.h"

#include <fcntl.h>
#include <libssh/libssh.h>
#include <libssh/sftp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <ctime>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "vcrm/common/files.h"

namespace fs = std::filesystem;

namespace vcrm::upgrade {

namespace {

constexpr std::size_t kWriteChunk = 64 * 1024;  // OpenSSH's sftp-server takes up to 256 KiB

struct SessionFree {
  void operator()(ssh_session s) const {
    if (ssh_is_connected(s) != 0) ssh_disconnect(s);
    ssh_free(s);
  }
};
struct SftpFree {
  void operator()(sftp_session s) const { sftp_free(s); }
};
struct FileClose {
  void operator()(sftp_file f) const { sftp_close(f); }
};
struct DirClose {
  void operator()(sftp_dir d) const { sftp_closedir(d); }
};
struct AttributesFree {
  void operator()(sftp_attributes a) const { sftp_attributes_free(a); }
};
struct StatvfsFree {
  void operator()(sftp_statvfs_t s) const { sftp_statvfs_free(s); }
};
struct KeyFree {
  void operator()(ssh_key k) const { ssh_key_free(k); }
};
struct CharFree {
  void operator()(char* c) const { ssh_string_free_char(c); }
};

using Session = std::unique_ptr<ssh_session_struct, SessionFree>;
using Sftp = std::unique_ptr<sftp_session_struct, SftpFree>;
using File = std::unique_ptr<sftp_file_struct, FileClose>;
using Dir = std::unique_ptr<sftp_dir_struct, DirClose>;
using Attributes = std::unique_ptr<sftp_attributes_struct, AttributesFree>;
using Statvfs = std::unique_ptr<sftp_statvfs_struct, StatvfsFree>;
using Key = std::unique_ptr<ssh_key_struct, KeyFree>;
using SshChars = std::unique_ptr<char, CharFree>;

long wholeSeconds(std::chrono::milliseconds ms) {
  return std::max<long>(1, static_cast<long>((ms.count() + 999) / 1000));
}

std::string endpoint(const SftpTarget& t) {
  return t.host + ":" + std::to_string(t.port);
}

// A public key line split into its type and base64 blob; the known_hosts host field and the
// trailing comment are dropped.
struct KeyLine {
  std::string type;
  std::string base64;
};

bool isKeyType(const std::string& word) {
  return word.rfind("ssh-", 0) == 0 || word.rfind("ecdsa-sha2-", 0) == 0 ||
         word.rfind("sk-", 0) == 0;
}

KeyLine parseKeyLine(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  for (std::size_t i = 0; i + 1 < words.size() && i < 2; ++i) {
    if (isKeyType(words[i])) return {words[i], words[i + 1]};
  }
  throw SftpError(SftpReason::HostKey,
                  "The pinned host key is not a public key line (expected \"ssh-ed25519 AAAA...\" "
                  "as ssh-keyscan prints it); paste the server's key again.");
}

Key importPublic(const KeyLine& k) {
  ssh_key key = nullptr;
  if (ssh_pki_import_pubkey_base64(k.base64.c_str(), ssh_key_type_from_name(k.type.c_str()),
                                   &key) != SSH_OK) {
    throw SftpError(SftpReason::HostKey,
                    "The pinned host key (" + k.type +
                        ") cannot be read; paste the server's key line again as ssh-keyscan "
                        "prints it.");
  }
  return Key(key);
}

std::string fingerprintOf(ssh_key key) {
  unsigned char* hash = nullptr;
  size_t len = 0;
  if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &len) != 0) return "unknown";
  SshChars text(ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, len));
  ssh_clean_pubkey_hash(&hash);
  return text ? std::string(text.get()) : "unknown";
}

// The host key algorithms to offer so that the server presents the pinned kind of key.
std::string hostKeyAlgorithms(const std::string& type) {
  if (type == "ssh-rsa") return "rsa-sha2-512,rsa-sha2-256,ssh-rsa";
  return type;
}

// Opens a TCP connection itself (rather than through libssh) so that a failure can say whether
// the name, the route or the port is wrong.
files::Fd connectTcp(const SftpTarget& t) {
  if (t.host.empty()) throw SftpError(SftpReason::Address, "No SFTP server address is set.");
  if (t.port < 1 || t.port > 65535) {
    throw SftpError(SftpReason::Port,
                    "The SFTP port " + std::to_string(t.port) + " is not between 1 and 65535.");
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(t.host.c_str(), std::to_string(t.port).c_str(), &hints, &found);
  if (rc != 0) {
    throw SftpError(SftpReason::Address, "The SFTP server address " + t.host +
                                             " does not resolve (" + gai_strerror(rc) +
                                             "); check the host name.");
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> list(found, &freeaddrinfo);
  int lastErr = ETIMEDOUT;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    files::Fd fd(
        socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol));
    if (!fd) {
      lastErr = errno;
      continue;
    }
    if (connect(fd.get(), a->ai_addr, a->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        lastErr = errno;
        continue;
      }
      pollfd p{fd.get(), POLLOUT, 0};
      const int ready = poll(&p, 1, static_cast<int>(t.connectTimeout.count()));
      if (ready <= 0) {
        lastErr = ready == 0 ? ETIMEDOUT : errno;
        continue;
      }
      int soErr = 0;
      socklen_t len = sizeof soErr;
      getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &soErr, &len);
      if (soErr != 0) {
        lastErr = soErr;
        continue;
      }
    }
    const int flags = fcntl(fd.get(), F_GETFL);
    fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
    const int one = 1;
    setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
  }
  if (lastErr == ECONNREFUSED) {
    throw SftpError(SftpReason::Port, "Nothing accepts connections on port " +
                                          std::to_string(t.port) + " of " + t.host +
                                          "; check the port (SSH is usually 22).");
  }
  throw SftpError(SftpReason::Address,
                  "The SFTP server " + endpoint(t) + " cannot be reached (" + errnoText(lastErr) +
                      "); check the address, and that a firewall lets SSH through.");
}

std::string sftpErrorText(sftp_session sftp) {
  switch (sftp_get_error(sftp)) {
    case SSH_FX_NO_SUCH_FILE:
      return "no such file or directory";
    case SSH_FX_PERMISSION_DENIED:
      return "permission denied";
    case SSH_FX_FAILURE:
      return "the server failed the request";
    case SSH_FX_CONNECTION_LOST:
    case SSH_FX_NO_CONNECTION:
      return "the connection was lost";
    default:
      return "SFTP error " + std::to_string(sftp_get_error(sftp));
  }
}

bool plainName(const std::string& name) {
  if (name.empty() || name.size() > 200 || name[0] == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

bool isArchiveName(const std::string& name) {
  constexpr std::string_view kPrefix = "vcrm-";
  constexpr std::string_view kSuffix = ".vcrmbak";
  return name.size() > kPrefix.size() + kSuffix.size() && name.rfind(kPrefix, 0) == 0 &&
         name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) == 0;
}

// "20261202T062308Z" from vcrm-<serial>-<stamp>.vcrmbak, else the modification time so.
std::string orderKey(const std::string& name, std::uint32_t mtime) {
  const auto stem = name.substr(0, name.size() - std::string_view(".vcrmbak").size());
  const auto dash = stem.find_last_of('-');
  const std::string stamp = dash == std::string::npos ? "" : stem.substr(dash + 1);
  const bool stampOk = stamp.size() == 16 && stamp[8] == 'T' && stamp[15] == 'Z' &&
                       std::all_of(stamp.begin(), stamp.begin() + 8, ::isdigit) &&
                       std::all_of(stamp.begin() + 9, stamp.begin() + 15, ::isdigit);
  if (stampOk) return stamp;
  const std::time_t t = mtime;
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::array<char, 32> buf{};
  std::strftime(buf.data(), buf.size(), "%Y%m%dT%H%M%SZ", &tm);
  return buf.data();
}

// libssh 0.10's SFTP calls retry a read that timed out for as long as the channel is open, so
// SSH_OPTIONS_TIMEOUT alone does not bound a request to a server that stopped answering. While
// a request is armed, this thread shuts the socket down once its deadline passes: the call
// then fails, and `expired()` says why.
class Watchdog {
 public:
  explicit Watchdog(int fd) : fd_(fd), thread_([this] { run(); }) {}
  ~Watchdog() {
    {
      std::lock_guard lock(mutex_);
      quit_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // What arm() replaced, for a nested request to put back.
  struct State {
    bool armed = false;
    std::chrono::steady_clock::time_point deadline;
  };
  State arm(std::chrono::milliseconds limit) {
    State before;
    {
      std::lock_guard lock(mutex_);
      before = {armed_, deadline_};
      deadline_ = std::chrono::steady_clock::now() + limit;
      armed_ = true;
    }
    wake_.notify_one();
    return before;
  }
  void restore(const State& state) {
    {
      std::lock_guard lock(mutex_);
      armed_ = state.armed && !expired_;
      deadline_ = state.deadline;
    }
    wake_.notify_one();
  }
  [[nodiscard]] bool expired() const { return expired_.load(); }

 private:
  void run() {
    std::unique_lock lock(mutex_);
    while (!quit_) {
      if (!armed_) {
        wake_.wait(lock);
      } else if (std::chrono::steady_clock::now() >= deadline_) {
        expired_ = true;
        armed_ = false;
        ::shutdown(fd_, SHUT_RDWR);
      } else {
        wake_.wait_until(lock, deadline_);
      }
    }
  }

  int fd_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::chrono::steady_clock::time_point deadline_;
  bool armed_ = false;
  bool quit_ = false;
  std::atomic<bool> expired_{false};
  std::thread thread_;
};

// Arms the watchdog for one blocking call.
class Armed {
 public:
  Armed(Watchdog& w, std::chrono::milliseconds limit) : w_(w), before_(w_.arm(limit)) {}
  ~Armed() { w_.restore(before_); }
  Armed(const Armed&) = delete;
  Armed& operator=(const Armed&) = delete;

 private:
  Watchdog& w_;
  Watchdog::State before_;
};

}  // namespace

std::string_view sftpReasonCode(SftpReason reason) {
  switch (reason) {
    case SftpReason::Address:
      return "sftp_address";
    case SftpReason::Port:
      return "sftp_port";
    case SftpReason::HostKey:
      return "sftp_host_key";
    case SftpReason::Credentials:
      return "sftp_credentials";
    case SftpReason::RemoteDirectory:
      return "sftp_remote_directory";
    case SftpReason::DiskSpace:
      return "sftp_disk_space";
    case SftpReason::Transfer:
      return "sftp_transfer";
  }
  return "sftp_failed";
}

std::string sshKeyFingerprint(const std::string& keyLine) {
  return fingerprintOf(importPublic(parseKeyLine(keyLine)).get());
}

struct SftpClient::Impl {
  SftpTarget target;
  // libssh 0.10 leaves a socket given with SSH_OPTIONS_FD open on disconnect, except on some
  // handshake failures; `socket` is closed after the session unless libssh already did.
  files::Fd socket;
  std::unique_ptr<Watchdog> watchdog;  // stopped before the socket closes
  Session session;
  Sftp sftp;

  ~Impl() {
    if (watchdog) watchdog->arm(std::chrono::seconds(5));  // closing must not hang either
    sftp.reset();
    if (session && ssh_get_fd(session.get()) == SSH_INVALID_SOCKET) (void)socket.release();
    session.reset();
    watchdog.reset();
  }

  // Bounds one SFTP request by the I/O time limit.
  [[nodiscard]] Armed request() { return Armed(*watchdog, target.ioTimeout); }

  std::string where() const { return endpoint(target); }

  [[noreturn]] void transferFailed(const std::string& what) const {
    if (watchdog && watchdog->expired()) {
      throw SftpError(SftpReason::Transfer,
                      what + " on " + where() + " failed: the server did not answer for " +
                          std::to_string(wholeSeconds(target.ioTimeout)) +
                          " s; check the connection and the server, then try again.");
    }
    std::string detail = sftp ? sftpErrorText(sftp.get()) : "";
    const char* sshText = session ? ssh_get_error(session.get()) : "";
    if (sshText != nullptr && *sshText != '\0')
      detail += (detail.empty() ? "" : "; ") + std::string(sshText);
    throw SftpError(SftpReason::Transfer, what + " on " + where() + " failed (" + detail +
                                              "); check the connection and try again.");
  }

  std::string remotePath(const std::string& name) const {
    if (target.remoteDir.empty()) return name;
    return target.remoteDir.back() == '/' ? target.remoteDir + name : target.remoteDir + "/" + name;
  }

  void connect() {
    socket = connectTcp(target);
    watchdog = std::make_unique<Watchdog>(socket.get());
    session.reset(ssh_new());
    if (!session) throw SftpError(SftpReason::Transfer, "Out of memory starting an SSH session.");
    ssh_session s = session.get();
    const Armed handshake(*watchdog, target.connectTimeout);
    const KeyLine pinned = parseKeyLine(target.hostKey);
    const Key pinnedKey = importPublic(pinned);
    int no = 0;
    long seconds = wholeSeconds(target.connectTimeout);
    const socket_t fd = socket.get();
    const std::string algorithms = hostKeyAlgorithms(pinned.type);
    ssh_options_set(s, SSH_OPTIONS_PROCESS_CONFIG, &no);  // no ~/.ssh/config
    ssh_options_set(s, SSH_OPTIONS_HOST, target.host.c_str());
    ssh_options_set(s, SSH_OPTIONS_PORT, &target.port);
    ssh_options_set(s, SSH_OPTIONS_USER, target.user.c_str());
    ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &seconds);
    ssh_options_set(s, SSH_OPTIONS_HOSTKEYS, algorithms.c_str());
    ssh_options_set(s, SSH_OPTIONS_FD, &fd);
    if (ssh_connect(s) != SSH_OK) {
      throw SftpError(SftpReason::Port, "Port " + std::to_string(target.port) + " of " +
                                            target.host + " does not answer as an SSH server (" +
                                            ssh_get_error(s) + "); check the port.");
    }
    checkHostKey(pinnedKey.get());
    logIn();
    sftp.reset(sftp_new(s));
    if (!sftp || sftp_init(sftp.get()) != SSH_OK) {
      throw SftpError(SftpReason::Credentials, "User " + target.user + " on " + where() +
                                                   " may not use SFTP (" + ssh_get_error(s) +
                                                   "); enable the sftp subsystem for this user.");
    }
    seconds = wholeSeconds(target.ioTimeout);
    ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &seconds);
    checkRemoteDir();
  }

  void checkHostKey(ssh_key pinnedKey) const {
    ssh_key raw = nullptr;
    if (ssh_get_server_publickey(session.get(), &raw) != SSH_OK) {
      throw SftpError(SftpReason::HostKey, "The SFTP server " + where() + " sent no host key.");
    }
    const Key got(raw);
    if (ssh_key_cmp(got.get(), pinnedKey, SSH_KEY_CMP_PUBLIC) != 0) {
      throw SftpError(SftpReason::HostKey,
                      "The SFTP server " + where() + " presented host key " +
                          ssh_key_type_to_char(ssh_key_type(got.get())) + " " +
                          fingerprintOf(got.get()) + ", not the pinned key " +
                          fingerprintOf(pinnedKey) +
                          "; if the server's key really changed, pin its new key, otherwise do "
                          "not copy there.");
    }
  }

  void logIn() const {
    ssh_key raw = nullptr;
    if (ssh_pki_import_privkey_base64(target.privateKey.c_str(), nullptr, nullptr, nullptr, &raw) !=
        SSH_OK) {
      throw SftpError(SftpReason::Credentials,
                      "The SFTP private key cannot be read (it must be an unencrypted OpenSSH or "
                      "PEM private key); set the key again.");
    }
    const Key key(raw);
    const int rc = ssh_userauth_publickey(session.get(), nullptr, key.get());
    if (rc == SSH_AUTH_SUCCESS) return;
    if (rc == SSH_AUTH_ERROR) {
      throw SftpError(SftpReason::Transfer, "Logging in to " + where() + " failed (" +
                                                ssh_get_error(session.get()) + "); try again.");
    }
    throw SftpError(SftpReason::Credentials,
                    "The SFTP server " + where() + " refused user " + target.user +
                        " with this key; check the user name and that the key's public half is "
                        "in that user's authorized_keys.");
  }

  void checkRemoteDir() {
    const std::string dir = target.remoteDir.empty() ? "." : target.remoteDir;
    const auto limit = request();
    const Attributes a(sftp_stat(sftp.get(), dir.c_str()));
    if (!a) {
      throw SftpError(SftpReason::RemoteDirectory,
                      "The remote directory " + dir + " on " + where() + " cannot be used (" +
                          sftpErrorText(sftp.get()) + "); create it or correct the path.");
    }
    if (a->type != SSH_FILEXFER_TYPE_DIRECTORY) {
      throw SftpError(SftpReason::RemoteDirectory, "The remote path " + dir + " on " + where() +
                                                       " is not a directory; correct the path.");
    }
  }

  // Free bytes in the remote directory, when the server can tell (OpenSSH's statvfs extension).
  std::optional<std::uint64_t> freeBytes() {
    if (sftp_extension_supported(sftp.get(), "statvfs@openssh.com", "2") == 0) return {};
    const std::string dir = target.remoteDir.empty() ? "." : target.remoteDir;
    const auto limit = request();
    const Statvfs v(sftp_statvfs(sftp.get(), dir.c_str()));
    if (!v) return {};
    return v->f_bavail * std::max<std::uint64_t>(v->f_frsize, 1);
  }

  [[noreturn]] void noRoom(std::uint64_t needed, std::uint64_t available) const {
    throw SftpError(SftpReason::DiskSpace,
                    "The remote directory " + target.remoteDir + " on " + where() + " has " +
                        std::to_string(available) + " bytes free, " + std::to_string(needed) +
                        " are needed; free space there or lower the number of copies kept.");
  }

  // Best effort: on a connection that failed the .part cannot be removed; it is overwritten by
  // the next copy of that name and never counted as an archive.
  void remove(const std::string& path) {
    if (watchdog->expired()) return;
    const auto limit = request();
    sftp_unlink(sftp.get(), path.c_str());
  }
};

SftpClient::SftpClient(SftpTarget target) : impl_(std::make_unique<Impl>()) {
  impl_->target = std::move(target);
  impl_->connect();
}

SftpClient::~SftpClient() = default;

std::uint64_t SftpClient::copy(const fs::path& localFile, const std::string& remoteName,
                               const CopyProgress& progress) {
  if (!plainName(remoteName)) {
    throw InvalidInput("The remote file name \"" + remoteName +
                       "\" must be one plain file name (letters, digits, '.', '_', '-').");
  }
  files::Fd in(::open(localFile.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (!in || fstat(in.get(), &st) != 0) {
    throw IoError("Cannot read " + localFile.string() + ": " + errnoText(errno));
  }
  const auto total = static_cast<std::uint64_t>(st.st_size);
  Impl& d = *impl_;
  if (const auto room = d.freeBytes(); room && *room < total) d.noRoom(total, *room);

  const std::string finalPath = d.remotePath(remoteName);
  const std::string partPath = finalPath + ".part";
  File out;
  {
    const auto limit = d.request();
    out.reset(sftp_open(d.sftp.get(), partPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600));
  }
  if (!out) {
    throw SftpError(SftpReason::RemoteDirectory, "Cannot create " + partPath + " on " + d.where() +
                                                     " (" + sftpErrorText(d.sftp.get()) +
                                                     "); let user " + d.target.user +
                                                     " write in the remote directory.");
  }
  // From here on a failure leaves no .part behind.
  struct PartGuard {
    Impl& d;
    const std::string& path;
    bool armed = true;
    ~PartGuard() {
      if (armed) d.remove(path);
    }
  } guard{d, partPath};

  std::vector<char> buf(kWriteChunk);
  std::uint64_t done = 0;
  if (progress) progress(0, total);
  while (done < total) {
    const ssize_t n = ::read(in.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      throw IoError("Cannot read " + localFile.string() + ": " +
                    (n == 0 ? std::string("it shrank while being copied") : errnoText(errno)));
    }
    std::size_t off = 0;
    while (off < static_cast<std::size_t>(n)) {
      ssize_t w = 0;
      {
        const auto limit = d.request();
        w = sftp_write(out.get(), buf.data() + off, static_cast<std::size_t>(n) - off);
      }
      if (w <= 0) {
        if (d.watchdog->expired()) d.transferFailed("Writing " + partPath);
        if (const auto room = d.freeBytes(); room && *room < total - done) {
          d.noRoom(total - done, *room);
        }
        d.transferFailed("Writing " + partPath);
      }
      off += static_cast<std::size_t>(w);
    }
    done += static_cast<std::uint64_t>(n);
    if (progress) progress(done, total);
  }
  const auto limit = d.request();  // the rest is a few short requests
  if (sftp_close(out.release()) != SSH_OK) d.transferFailed("Closing " + partPath);

  const Attributes written(sftp_stat(d.sftp.get(), partPath.c_str()));
  if (!written) d.transferFailed("Checking " + partPath);
  if (written->size != total) {
    throw SftpError(SftpReason::Transfer, partPath + " on " + d.where() + " holds " +
                                              std::to_string(written->size) + " bytes, not " +
                                              std::to_string(total) + "; try the copy again.");
  }
  if (sftp_rename(d.sftp.get(), partPath.c_str(), finalPath.c_str()) != SSH_OK) {
    // Without the posix-rename extension a rename does not replace an existing file.
    d.remove(finalPath);
    if (sftp_rename(d.sftp.get(), partPath.c_str(), finalPath.c_str()) != SSH_OK) {
      d.transferFailed("Renaming " + partPath + " to " + remoteName);
    }
  }
  guard.armed = false;
  const Attributes placed(sftp_stat(d.sftp.get(), finalPath.c_str()));
  if (!placed || placed->size != total) d.transferFailed("Checking " + finalPath);
  return total;
}

std::vector<RemoteArchive> SftpClient::listArchives() {
  Impl& d = *impl_;
  const std::string dirPath = d.target.remoteDir.empty() ? "." : d.target.remoteDir;
  Dir dir;
  {
    const auto limit = d.request();
    dir.reset(sftp_opendir(d.sftp.get(), dirPath.c_str()));
  }
  if (!dir) {
    throw SftpError(SftpReason::RemoteDirectory, "Cannot list " + dirPath + " on " + d.where() +
                                                     " (" + sftpErrorText(d.sftp.get()) +
                                                     "); let user " + d.target.user + " read it.");
  }
  std::vector<std::pair<std::string, RemoteArchive>> found;
  while (true) {
    const auto limit = d.request();
    const Attributes a(sftp_readdir(d.sftp.get(), dir.get()));
    if (!a) break;
    const std::string name = a->name != nullptr ? a->name : "";
    if (a->type != SSH_FILEXFER_TYPE_REGULAR || !isArchiveName(name)) continue;
    found.push_back({orderKey(name, a->mtime), RemoteArchive{name, a->size}});
  }
  if (sftp_dir_eof(dir.get()) == 0) d.transferFailed("Listing " + dirPath);
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : a.second.name < b.second.name;
  });
  std::vector<RemoteArchive> out;
  out.reserve(found.size());
  for (auto& f : found) out.push_back(std::move(f.second));
  return out;
}

std::vector<std::string> SftpClient::pruneArchives(std::size_t keep) {
  const auto archives = listArchives();
  std::vector<std::string> removed;
  if (archives.size() <= keep) return removed;
  for (std::size_t i = 0; i < archives.size() - keep; ++i) {
    const std::string path = impl_->remotePath(archives[i].name);
    const auto limit = impl_->request();
    if (sftp_unlink(impl_->sftp.get(), path.c_str()) != SSH_OK) {
      throw SftpError(SftpReason::RemoteDirectory,
                      "Cannot remove the old copy " + path + " on " + impl_->where() + " (" +
                          sftpErrorText(impl_->sftp.get()) + "); let user " + impl_->target.user +
                          " delete files there.");
    }
    removed.push_back(archives[i].name);
  }
  return removed;
}

CopyOutcome copyArchive(const SftpTarget& target, const fs::path& localFile,
                        const std::string& remoteName, std::optional<std::size_t> keep,
                        const CopyProgress& progress) {
  SftpClient client(target);
  CopyOutcome outcome;
  outcome.bytes = client.copy(localFile, remoteName, progress);
  if (keep)
    outcome.removed = client.pruneArchives(std::max<std::size_t>(*keep, 1));  // never the new one
  return outcome;
}

}  // namespace vcrm::upgrade
