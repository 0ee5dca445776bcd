// Off-box copies against a real OpenSSH server started for each test: a multi-megabyte archive
// arrives byte for byte under its name with no .part left; a wrong pinned host key, a wrong
// client key, a closed port, an unknown host, a silent service, a server that stops answering,
// a missing remote directory and a full remote disk are each refused with their own reason and
// words an operator can act on, within the time limits; retention keeps the newest N.
#include "vcrm/upgrade/sftp_copy.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/socket.h>

#include <fstream>
#include <random>

#include "janus_process.h"
#include "sshd_process.h"
#include "temp_dir.h"
#include "vcrm/common/files.h"

namespace vcrm::upgrade {
namespace {

namespace fs = std::filesystem;
using vcrm::test::SshdProcess;

std::string randomBytes(std::size_t n) {
  std::mt19937_64 rng(42);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

void writeFile(const fs::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary);
  out << data;
  ASSERT_TRUE(out.flush());
}

std::vector<std::string> namesIn(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

class SftpCopyTest : public ::testing::Test {
 protected:
  SftpTarget target(const fs::path& remoteDir) const {
    SftpTarget t;
    t.host = "127.0.0.1";
    t.port = sshd_.port();
    t.user = sshd_.user();
    t.remoteDir = remoteDir.string();
    t.privateKey = sshd_.clientKey().privateKey;
    t.hostKey = sshd_.hostKeyLine();
    t.connectTimeout = std::chrono::seconds(10);
    t.ioTimeout = std::chrono::seconds(20);
    return t;
  }

  // The error an operation is refused with (fails the test if it is not refused).
  template <typename F>
  SftpError refusal(F&& f) {
    try {
      f();
    } catch (const SftpError& e) {
      return e;
    }
    ADD_FAILURE() << "not refused";
    return SftpError(SftpReason::Transfer, "not refused");
  }

  SshdProcess sshd_;
  test::TempDir local_{"vcrm-sftp-local"};
};

TEST_F(SftpCopyTest, CopiesAMultiMegabyteArchiveByteForByte) {
  const fs::path remote = sshd_.makeRemoteDir("copies");
  const std::string data = randomBytes(6 * 1024 * 1024 + 123);
  writeFile(local_.path() / "a.vcrmbak", data);
  std::uint64_t lastDone = 0, lastTotal = 0;
  const auto outcome =
      copyArchive(target(remote), local_.path() / "a.vcrmbak", "vcrm-S1-20261202T010000Z.vcrmbak",
                  std::nullopt, [&](std::uint64_t done, std::uint64_t total) {
                    EXPECT_GE(done, lastDone);
                    lastDone = done;
                    lastTotal = total;
                  });
  EXPECT_EQ(outcome.bytes, data.size());
  EXPECT_EQ(lastDone, data.size());
  EXPECT_EQ(lastTotal, data.size());
  EXPECT_EQ(namesIn(remote), std::vector<std::string>{"vcrm-S1-20261202T010000Z.vcrmbak"});
  EXPECT_EQ(files::readFile(remote / "vcrm-S1-20261202T010000Z.vcrmbak", 64u << 20), data);

  // Copying again under the same name replaces the file.
  writeFile(local_.path() / "a.vcrmbak", "shorter");
  copyArchive(target(remote), local_.path() / "a.vcrmbak", "vcrm-S1-20261202T010000Z.vcrmbak");
  EXPECT_EQ(files::readFile(remote / "vcrm-S1-20261202T010000Z.vcrmbak"), "shorter");
  EXPECT_EQ(namesIn(remote).size(), 1u);
}

TEST_F(SftpCopyTest, AnotherHostKeyIsRefusedShowingTheFingerprintReceived) {
  const fs::path remote = sshd_.makeRemoteDir("copies");
  writeFile(local_.path() / "a.vcrmbak", "data");
  auto t = target(remote);
  const auto other = test::makeSshKeyPair(local_.path(), "impostor");
  t.hostKey = "[127.0.0.1]:" + std::to_string(sshd_.port()) + " " + other.publicLine;
  const auto e = refusal([&] { copyArchive(t, local_.path() / "a.vcrmbak", "x.vcrmbak"); });
  EXPECT_EQ(e.reason(), SftpReason::HostKey);
  EXPECT_EQ(e.code(), "sftp_host_key");
  const std::string got = test::sshKeygenFingerprint(sshd_.hostKeyPublicFile());
  EXPECT_NE(std::string(e.what()).find(got), std::string::npos) << e.what();
  EXPECT_EQ(sshKeyFingerprint(sshd_.hostKeyLine()), got);
  EXPECT_TRUE(namesIn(remote).empty());

  t.hostKey = "not a key";
  EXPECT_EQ(refusal([&] { SftpClient c(t); }).reason(), SftpReason::HostKey);
  // The keyscan form of the right key is accepted.
  t.hostKey = "[127.0.0.1]:" + std::to_string(sshd_.port()) + " " + sshd_.hostKeyLine();
  EXPECT_NO_THROW(SftpClient{t});
}

TEST_F(SftpCopyTest, AKeyNotInAuthorizedKeysIsRefusedAsCredentials) {
  const fs::path remote = sshd_.makeRemoteDir("copies");
  writeFile(local_.path() / "a.vcrmbak", "data");
  auto t = target(remote);
  t.privateKey = test::makeSshKeyPair(local_.path(), "stranger").privateKey;
  const auto e = refusal([&] { copyArchive(t, local_.path() / "a.vcrmbak", "x.vcrmbak"); });
  EXPECT_EQ(e.reason(), SftpReason::Credentials);
  EXPECT_NE(std::string(e.what()).find("authorized_keys"), std::string::npos) << e.what();
  // The key text never appears in what is shown.
  EXPECT_EQ(std::string(e.what()).find("PRIVATE KEY"), std::string::npos);
  EXPECT_TRUE(namesIn(remote).empty());

  t.privateKey = "garbage";
  EXPECT_EQ(refusal([&] { SftpClient c(t); }).reason(), SftpReason::Credentials);
  t = target(remote);
  t.user = "nobody-here";
  EXPECT_EQ(refusal([&] { SftpClient c(t); }).reason(), SftpReason::Credentials);
}

TEST_F(SftpCopyTest, AClosedPortIsRefusedAsThePort) {
  auto t = target(sshd_.makeRemoteDir("copies"));
  t.port = test::freeLoopbackPort();
  const auto e = refusal([&] { SftpClient c(t); });
  EXPECT_EQ(e.reason(), SftpReason::Port);
  EXPECT_NE(std::string(e.what()).find(std::to_string(t.port)), std::string::npos) << e.what();
  // A stopped server is the same to the client.
  t = target(sshd_.makeRemoteDir("copies"));
  sshd_.stop();
  EXPECT_EQ(refusal([&] { SftpClient c(t); }).reason(), SftpReason::Port);
}

TEST_F(SftpCopyTest, AnUnknownHostNameIsRefusedAsTheAddress) {
  auto t = target(sshd_.makeRemoteDir("copies"));
  t.host = "no-such-host.invalid";
  auto e = refusal([&] { SftpClient c(t); });
  EXPECT_EQ(e.reason(), SftpReason::Address);
  EXPECT_NE(std::string(e.what()).find("no-such-host.invalid"), std::string::npos) << e.what();
}

// A port where something accepts TCP but never speaks SSH: refused as the port within the
// connect time limit, not hanging.
TEST_F(SftpCopyTest, ASilentServiceIsRefusedAsThePortWithinTheTimeLimit) {
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  files::Fd owned(listener);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(listener, 4), 0);
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len), 0);
  auto t = target(sshd_.makeRemoteDir("copies"));
  t.port = ntohs(a.sin_port);
  t.connectTimeout = std::chrono::seconds(1);
  const auto started = std::chrono::steady_clock::now();
  const auto e = refusal([&] { SftpClient c(t); });
  EXPECT_EQ(e.reason(), SftpReason::Port) << e.what();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
}

// The server stops answering in the middle of a copy (its session processes are frozen):
// the copy fails as a transfer within the I/O time limit instead of hanging.
TEST_F(SftpCopyTest, AServerThatStopsAnsweringFailsTheCopyWithinTheTimeLimit) {
  const fs::path remote = sshd_.makeRemoteDir("copies");
  writeFile(local_.path() / "a.vcrmbak", randomBytes(8 * 1024 * 1024));
  auto t = target(remote);
  t.ioTimeout = std::chrono::seconds(2);
  SftpClient client(t);
  bool paused = false;
  std::chrono::steady_clock::time_point pausedAt;
  const auto e = refusal([&] {
    client.copy(local_.path() / "a.vcrmbak", "vcrm-S1-20261202T010000Z.vcrmbak",
                [&](std::uint64_t done, std::uint64_t) {
                  if (!paused && done >= 1024 * 1024) {
                    sshd_.pauseSessions(true);
                    paused = true;
                    pausedAt = std::chrono::steady_clock::now();
                  }
                });
  });
  sshd_.pauseSessions(false);
  ASSERT_TRUE(paused);
  EXPECT_EQ(e.reason(), SftpReason::Transfer) << e.what();
  EXPECT_LT(std::chrono::steady_clock::now() - pausedAt, std::chrono::seconds(10));
  EXPECT_FALSE(fs::exists(remote / "vcrm-S1-20261202T010000Z.vcrmbak"));
}

TEST_F(SftpCopyTest, AMissingRemoteDirectoryIsRefusedAndNothingIsWritten) {
  auto t = target(sshd_.dir() / "no-such-dir");
  const auto e = refusal([&] { SftpClient c(t); });
  EXPECT_EQ(e.reason(), SftpReason::RemoteDirectory);
  EXPECT_NE(std::string(e.what()).find("no-such-dir"), std::string::npos) << e.what();
  EXPECT_FALSE(fs::exists(sshd_.dir() / "no-such-dir"));
  // A file where the directory should be.
  writeFile(sshd_.dir() / "plain-file", "x");
  t.remoteDir = (sshd_.dir() / "plain-file").string();
  EXPECT_EQ(refusal([&] { SftpClient c(t); }).reason(), SftpReason::RemoteDirectory);
}

// A 1 MiB tmpfs as the remote directory: a larger archive is refused before it is sent, and
// no .part stays behind.
TEST_F(SftpCopyTest, AFullRemoteDiskIsRefusedAsDiskSpace) {
  const fs::path remote = sshd_.makeRemoteDir("small");
  if (mount("tmpfs", remote.c_str(), "tmpfs", 0, "size=1m") != 0) {
    GTEST_SKIP() << "cannot mount a small tmpfs here (needs root)";
  }
  struct Unmount {
    fs::path p;
    ~Unmount() { umount2(p.c_str(), MNT_DETACH); }
  } unmount{remote};
  writeFile(local_.path() / "big.vcrmbak", randomBytes(3 * 1024 * 1024));
  const auto e = refusal(
      [&] { copyArchive(target(remote), local_.path() / "big.vcrmbak", "vcrm-big.vcrmbak"); });
  EXPECT_EQ(e.reason(), SftpReason::DiskSpace);
  EXPECT_NE(std::string(e.what()).find("free"), std::string::npos) << e.what();
  EXPECT_TRUE(namesIn(remote).empty());
}

TEST_F(SftpCopyTest, RetentionKeepsTheNewestArchivesAndLeavesOtherFiles) {
  const fs::path remote = sshd_.makeRemoteDir("copies");
  writeFile(remote / "notes.txt", "not an archive");
  writeFile(remote / "vcrm-S1-20261201T000000Z.vcrmbak", "old 1");
  writeFile(remote / "vcrm-S2-20261201T120000Z.vcrmbak", "old 2");  // another serial, later
  writeFile(remote / "vcrm-S1-20261202T000000Z.vcrmbak", "old 3");
  writeFile(local_.path() / "new.vcrmbak", "newest");
  const auto outcome = copyArchive(target(remote), local_.path() / "new.vcrmbak",
                                   "vcrm-S1-20261203T000000Z.vcrmbak", std::size_t{2});
  EXPECT_EQ(outcome.removed, (std::vector<std::string>{"vcrm-S1-20261201T000000Z.vcrmbak",
                                                       "vcrm-S2-20261201T120000Z.vcrmbak"}));
  EXPECT_EQ(namesIn(remote),
            (std::vector<std::string>{"notes.txt", "vcrm-S1-20261202T000000Z.vcrmbak",
                                      "vcrm-S1-20261203T000000Z.vcrmbak"}));
  SftpClient client(target(remote));
  const auto listed = client.listArchives();
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[1].name, "vcrm-S1-20261203T000000Z.vcrmbak");
  EXPECT_EQ(listed[1].size, 6u);
}

TEST_F(SftpCopyTest, ARemoteNameWithAPathIsRefused) {
  writeFile(local_.path() / "a.vcrmbak", "data");
  SftpClient client(target(sshd_.makeRemoteDir("copies")));
  EXPECT_THROW(client.copy(local_.path() / "a.vcrmbak", "../escape.vcrmbak"), InvalidInput);
  EXPECT_FALSE(fs::exists(sshd_.dir() / "escape.vcrmbak"));
}

}  // namespace
}  // namespace vcrm::upgrade
