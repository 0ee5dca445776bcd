// Crash-safe file writes and descriptor ownership, on a real file system under /tmp.
#include "vcrm/common/files.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "vcrm/common/error.h"

namespace vcrm::files {
namespace {

namespace fs = std::filesystem;

mode_t modeOf(const fs::path& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

std::set<std::string> namesIn(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.insert(entry.path().filename());
  return names;
}

bool isOpen(int fd) {
  return ::fcntl(fd, F_GETFD) != -1;
}

// Sets the process umask for one test and puts the old one back.
class UmaskScope {
 public:
  explicit UmaskScope(mode_t mask) : old_(::umask(mask)) {}
  ~UmaskScope() { ::umask(old_); }
  UmaskScope(const UmaskScope&) = delete;
  UmaskScope& operator=(const UmaskScope&) = delete;

 private:
  mode_t old_;
};

class FilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = "/tmp/vcrm-files-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << std::strerror(errno);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    // A test may have made a directory read-only; give permissions back so it can be removed.
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::add, ec);
    for (const auto& entry : fs::recursive_directory_iterator(dir_, ec)) {
      if (entry.is_directory())
        fs::permissions(entry.path(), fs::perms::owner_all, fs::perm_options::add, ec);
    }
    fs::remove_all(dir_, ec);
  }

  fs::path dir_;
};

TEST_F(FilesTest, ReadFileThatRefusesLinksReadsPlainFilesOnly) {
  atomicWrite(dir_ / "plain", "text");
  EXPECT_EQ(readFile(dir_ / "plain", 1024, Links::Refuse), "text");
  atomicWrite(dir_ / "target", "secret");
  fs::create_symlink(dir_ / "target", dir_ / "link");
  EXPECT_EQ(readFile(dir_ / "link"), "secret") << "following stays the default";
  try {
    readFile(dir_ / "link", 1024, Links::Refuse);
    ADD_FAILURE() << "a link was followed";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("symbolic link"), std::string::npos) << e.what();
  }
  // A FIFO would block a reader for ever: refused at once.
  ASSERT_EQ(::mkfifo((dir_ / "fifo").c_str(), 0600), 0);
  EXPECT_THROW(readFile(dir_ / "fifo", 1024, Links::Refuse), IoError);
}

TEST_F(FilesTest, AtomicWriteWithAnOwnerReplacesALinkInsteadOfFollowingIt) {
  atomicWrite(dir_ / "target", "keep me", 0600);
  fs::create_symlink(dir_ / "target", dir_ / "conf");
  const uid_t uid = geteuid() == 0 ? 65534 : geteuid();  // nobody, when we may give files away
  atomicWrite(dir_ / "conf", "new", 0600, Owner{uid, getegid()});
  EXPECT_FALSE(fs::is_symlink(dir_ / "conf"));
  EXPECT_EQ(readFile(dir_ / "conf"), "new");
  EXPECT_EQ(readFile(dir_ / "target"), "keep me");
  struct stat conf {}, target {};
  ASSERT_EQ(::stat((dir_ / "conf").c_str(), &conf), 0);
  ASSERT_EQ(::stat((dir_ / "target").c_str(), &target), 0);
  EXPECT_EQ(conf.st_uid, uid);
  EXPECT_EQ(target.st_uid, geteuid());
}

TEST_F(FilesTest, AtomicWriteCreatesFileWithContentAndMode) {
  const fs::path path = dir_ / "settings.json";
  atomicWrite(path, "{\"a\":1}\n", 0640);
  EXPECT_EQ(readFile(path), "{\"a\":1}\n");
  EXPECT_EQ(modeOf(path), 0640u);
}

TEST_F(FilesTest, AtomicWriteModeIgnoresUmask) {
  UmaskScope umask(077);
  atomicWrite(dir_ / "public.txt", "x");
  EXPECT_EQ(modeOf(dir_ / "public.txt"), 0644u);
  atomicWrite(dir_ / "secret.key", "k", 0600);
  EXPECT_EQ(modeOf(dir_ / "secret.key"), 0600u);
}

TEST_F(FilesTest, AtomicWriteReplacesExistingFileAndMode) {
  const fs::path path = dir_ / "state";
  atomicWrite(path, "old content that is longer", 0644);
  atomicWrite(path, "new", 0600);
  EXPECT_EQ(readFile(path), "new");
  EXPECT_EQ(modeOf(path), 0600u);
}

TEST_F(FilesTest, AtomicWriteKeepsBinaryAndEmptyData) {
  const std::string binary("\0\x01\xff\n\0end", 8);
  atomicWrite(dir_ / "bin", binary);
  EXPECT_EQ(readFile(dir_ / "bin"), binary);
  atomicWrite(dir_ / "empty", "");
  EXPECT_EQ(readFile(dir_ / "empty"), "");
  EXPECT_TRUE(fs::is_regular_file(dir_ / "empty"));
}

TEST_F(FilesTest, AtomicWriteLeavesNoTemporaryFiles) {
  for (int i = 0; i < 20; ++i) atomicWrite(dir_ / "counter", std::to_string(i));
  atomicWrite(dir_ / "other", "x");
  EXPECT_EQ(namesIn(dir_), (std::set<std::string>{"counter", "other"}));
  EXPECT_EQ(readFile(dir_ / "counter"), "19");
}

TEST_F(FilesTest, AtomicWriteWorksWithRelativePathInCurrentDirectory) {
  const fs::path old = fs::current_path();
  fs::current_path(dir_);
  EXPECT_NO_THROW(atomicWrite("relative.txt", "here"));
  fs::current_path(old);
  EXPECT_EQ(readFile(dir_ / "relative.txt"), "here");
}

TEST_F(FilesTest, AtomicWriteUnderRegularFileFailsWithIoErrorNamingPath) {
  atomicWrite(dir_ / "plain", "I am a file");
  const fs::path path = dir_ / "plain" / "child.txt";
  try {
    atomicWrite(path, "data");
    ADD_FAILURE() << "write under a regular file succeeded";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(std::strerror(ENOTDIR)), std::string::npos) << e.what();
  }
  EXPECT_EQ(readFile(dir_ / "plain"), "I am a file");
  EXPECT_EQ(namesIn(dir_), (std::set<std::string>{"plain"}));
}

TEST_F(FilesTest, AtomicWriteIntoMissingDirectoryFails) {
  EXPECT_THROW(atomicWrite(dir_ / "no" / "such" / "file", "x"), IoError);
  EXPECT_EQ(namesIn(dir_), std::set<std::string>{});
}

TEST_F(FilesTest, AtomicWriteFailingAtRenameRemovesTemporaryFile) {
  // Renaming a file over a non-empty directory fails even for root, which exercises the
  // clean-up after the temporary file was fully written.
  fs::create_directory(dir_ / "target");
  atomicWrite(dir_ / "target" / "keep", "kept");
  EXPECT_THROW(atomicWrite(dir_ / "target", "data"), IoError);
  EXPECT_EQ(namesIn(dir_), (std::set<std::string>{"target"}));
  EXPECT_EQ(readFile(dir_ / "target" / "keep"), "kept");
}

TEST_F(FilesTest, AtomicWriteInReadOnlyDirectoryFailsAndKeepsOldFile) {
  if (::geteuid() == 0) {
    GTEST_SKIP() << "root ignores directory permissions; covered by the regular-file-parent "
                    "and rename-failure tests";
  }
  const fs::path path = dir_ / "config";
  atomicWrite(path, "version 1");
  ASSERT_EQ(::chmod(dir_.c_str(), 0500), 0);
  EXPECT_THROW(atomicWrite(path, "version 2"), IoError);
  ASSERT_EQ(::chmod(dir_.c_str(), 0700), 0);
  EXPECT_EQ(readFile(path), "version 1");
  EXPECT_EQ(namesIn(dir_), (std::set<std::string>{"config"}));
}

TEST_F(FilesTest, AtomicWriteRefusesPathWithoutFileName) {
  EXPECT_THROW(atomicWrite(dir_ / "", "x"), IoError);
  EXPECT_THROW(atomicWrite(dir_ / ".", "x"), IoError);
}

TEST_F(FilesTest, ReadFileOnMissingFileThrowsIoErrorNamingPath) {
  const fs::path path = dir_ / "missing.conf";
  try {
    readFile(path);
    ADD_FAILURE() << "reading a missing file succeeded";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(std::strerror(ENOENT)), std::string::npos) << e.what();
    EXPECT_EQ(e.code(), "io_error");
  }
}

TEST_F(FilesTest, ReadFileEnforcesMaxBytes) {
  const fs::path path = dir_ / "hundred";
  atomicWrite(path, std::string(100, 'x'));
  EXPECT_EQ(readFile(path, 100).size(), 100u);
  try {
    readFile(path, 99);
    ADD_FAILURE() << "limit not enforced";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
  }
  EXPECT_THROW(readFile(path, 0), IoError);
}

TEST_F(FilesTest, ReadFileEnforcesMaxBytesWhenSizeIsUnknown) {
  // /proc files report size 0, so only the limit checked while reading can catch them.
  EXPECT_THROW(readFile("/proc/self/status", 10), IoError);
  EXPECT_FALSE(readFile("/proc/self/status").empty());
}

TEST_F(FilesTest, ReadFileOnDirectoryThrowsIoError) {
  EXPECT_THROW(readFile(dir_), IoError);
}

TEST_F(FilesTest, EnsureDirCreatesNestedDirectoriesWithExactMode) {
  UmaskScope umask(077);
  const fs::path nested = dir_ / "a" / "b" / "c";
  ensureDir(nested, 0755);
  EXPECT_TRUE(fs::is_directory(nested));
  EXPECT_EQ(modeOf(dir_ / "a"), 0755u);
  EXPECT_EQ(modeOf(nested), 0755u);

  ensureDir(dir_ / "private" / "tls", 0700);
  EXPECT_EQ(modeOf(dir_ / "private"), 0700u);
  EXPECT_EQ(modeOf(dir_ / "private" / "tls"), 0700u);
}

TEST_F(FilesTest, EnsureDirLeavesExistingDirectoriesAlone) {
  ASSERT_EQ(::mkdir((dir_ / "existing").c_str(), 0750), 0);
  ASSERT_EQ(::chmod((dir_ / "existing").c_str(), 0750), 0);
  atomicWrite(dir_ / "existing" / "file", "content");
  ensureDir(dir_ / "existing", 0700);
  ensureDir(dir_ / "existing/", 0700);  // trailing slash
  EXPECT_EQ(modeOf(dir_ / "existing"), 0750u);
  EXPECT_EQ(readFile(dir_ / "existing" / "file"), "content");
}

TEST_F(FilesTest, EnsureDirThroughRegularFileThrowsIoError) {
  atomicWrite(dir_ / "plain", "x");
  EXPECT_THROW(ensureDir(dir_ / "plain"), IoError);
  EXPECT_THROW(ensureDir(dir_ / "plain" / "sub"), IoError);
}

TEST_F(FilesTest, FsyncDirOnMissingDirectoryThrowsIoError) {
  EXPECT_NO_THROW(fsyncDir(dir_));
  EXPECT_THROW(fsyncDir(dir_ / "missing"), IoError);
}

TEST_F(FilesTest, FdClosesOnDestructionAndReset) {
  int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(raw, 0);
  {
    Fd fd(raw);
    EXPECT_TRUE(fd);
    EXPECT_EQ(fd.get(), raw);
  }
  EXPECT_FALSE(isOpen(raw));

  int first = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int second = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  Fd fd(first);
  fd.reset(second);
  EXPECT_FALSE(isOpen(first));
  EXPECT_TRUE(isOpen(second));
  fd.reset();
  EXPECT_FALSE(isOpen(second));
  EXPECT_FALSE(fd);
}

TEST_F(FilesTest, FdMoveAndReleaseTransferOwnership) {
  int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(raw, 0);
  Fd a(raw);
  Fd b(std::move(a));
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): checking the moved-from state
  EXPECT_EQ(b.get(), raw);

  Fd c;
  c = std::move(b);
  EXPECT_EQ(c.get(), raw);
  EXPECT_TRUE(isOpen(raw));

  int released = c.release();
  EXPECT_EQ(released, raw);
  EXPECT_FALSE(c);
  EXPECT_TRUE(isOpen(raw));  // release() hands the descriptor over without closing it
  ::close(released);
}

TEST(FilesErrnoTextTest, DescribesErrnoValues) {
  EXPECT_EQ(errnoText(ENOENT), std::strerror(ENOENT));
  EXPECT_EQ(errnoText(EACCES), std::strerror(EACCES));
  EXPECT_FALSE(errnoText(0).empty());
  EXPECT_FALSE(errnoText(987654).empty());
}

TEST(FilesErrnoTextTest, IsSafeFromManyThreads) {
  std::vector<std::thread> threads;
  threads.reserve(8);
  std::vector<int> mismatches(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([t, &mismatches] {
      const int err = (t % 2 == 0) ? ENOENT : EACCES;
      const std::string expected = (t % 2 == 0) ? "No such file or directory" : "Permission denied";
      for (int i = 0; i < 2000; ++i) {
        if (errnoText(err) != expected) ++mismatches[static_cast<std::size_t>(t)];
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

}  // namespace
}  // namespace vcrm::files
