// Backup archives end to end: round trips through writeArchive / verifyArchive / extractArchive,
// and a suite of bad archives — each built with libarchive directly and sealed with the real
// container writer so it carries only its one defect — refused by both verify and extract with
// its own reason, extract leaving nothing behind.
#include "vcrm/upgrade/backup_archive.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "bad_archives.h"
#include "hostile_tar.h"
#include "stream_probe.h"
#include "temp_dir.h"
#include "vcrm/common/error.h"
#include "vcrm/common/files.h"
#include "vcrm/upgrade/archive_error.h"

namespace vcrm::upgrade {
namespace {

using namespace vcrm::upgrade::test;
namespace fs = std::filesystem;

ArchiveInfo sampleInfo() {
  return ArchiveInfo{
      .productVersion = "0.1.0",
      .schemaVersion = 7,
      .sourceSerial = "VCRM-0001-2345-6",
      .sourceRole = "standalone",
      .postgresVersion = "15.8",
      .pgDumpVersion = "15.8",
      .counts = {{"conferences", 12}, {"cdrs", 10}, {"participant_cdrs", 340}, {"users", 3}}};
}

std::vector<MemberSource> sourcesOf(const std::vector<TarEntry>& entries) {
  std::vector<MemberSource> out;
  out.reserve(entries.size());
  for (const TarEntry& e : entries) out.push_back(memberFromBytes(e.name, e.data));
  return out;
}

std::string writeTypical(std::size_t chunkSize = 4096) {
  StringSink out;
  WriteOptions options{.seal = fastSeal(chunkSize), .progress = {}};
  writeArchive(out, kPassphrase, sampleInfo(), sourcesOf(typicalMembers()), options);
  return out.take();
}

TEST(BackupArchiveTest, RoundTripVerifiesAndExtractsEveryMember) {
  const auto members = typicalMembers();
  StringSink out;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> progress;
  WriteOptions options{.seal = fastSeal(), .progress = [&](std::uint64_t d, std::uint64_t t) {
                         progress.emplace_back(d, t);
                       }};
  const Manifest written =
      writeArchive(out, kPassphrase, sampleInfo(), sourcesOf(members), options);
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back().first, progress.back().second);
  EXPECT_EQ(progress.back().second, written.totalBytes());

  StringSource in(out.data());
  const Manifest verified = verifyArchive(in, kPassphrase, fastRead());
  EXPECT_EQ(verified.info.product, "vcrm");
  EXPECT_EQ(verified.info.productVersion, "0.1.0");
  EXPECT_EQ(verified.info.schemaVersion, 7);
  EXPECT_EQ(verified.info.sourceSerial, "VCRM-0001-2345-6");
  EXPECT_EQ(verified.info.sourceRole, "standalone");
  EXPECT_EQ(verified.info.postgresVersion, "15.8");
  EXPECT_EQ(verified.info.pgDumpVersion, "15.8");
  EXPECT_EQ(verified.info.counts, sampleInfo().counts);
  EXPECT_EQ(verified.info.createdAt, written.info.createdAt);
  EXPECT_EQ(verified.info.createdAt.size(), 20u) << verified.info.createdAt;  // ISO 8601 UTC
  ASSERT_EQ(verified.members.size(), members.size());
  for (std::size_t i = 0; i < members.size(); ++i) {
    EXPECT_EQ(verified.members[i].path, members[i].name);
    EXPECT_EQ(verified.members[i].size, members[i].data.size());
    EXPECT_EQ(verified.members[i].sha256, crypto::sha256Hex(members[i].data));
  }

  vcrm::test::TempDir tmp;
  const fs::path dir = tmp.path() / "restore";
  StringSource again(out.data());
  extractArchive(again, kPassphrase, dir, fastRead());
  struct stat st {};
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  std::size_t files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) files += entry.is_regular_file();
  EXPECT_EQ(files, members.size()) << "exactly the members, the manifest not among them";
  for (const TarEntry& m : members) {
    EXPECT_EQ(files::readFile(dir / m.name), m.data) << m.name;
    ASSERT_EQ(::stat((dir / m.name).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u) << m.name;
  }
}

TEST(BackupArchiveTest, MembersOfEverySizeAroundTarAndChunkBoundaries) {
  std::vector<TarEntry> members;
  for (std::size_t size : {0u, 1u, 511u, 512u, 513u, 4091u, 4092u, 4093u, 10000u}) {
    members.push_back({.name = "m/" + std::to_string(size),
                       .data = std::string(size, static_cast<char>('a' + size % 26))});
  }
  StringSink out;
  writeArchive(out, kPassphrase, sampleInfo(), sourcesOf(members),
               WriteOptions{.seal = fastSeal(), .progress = {}});
  vcrm::test::TempDir tmp;
  StringSource in(out.data());
  const Manifest m = extractArchive(in, kPassphrase, tmp.path() / "x", fastRead());
  EXPECT_EQ(m.members.size(), members.size());
  for (const TarEntry& e : members) EXPECT_EQ(files::readFile(tmp.path() / "x" / e.name), e.data);
}

TEST(BackupArchiveTest, MembersFromFilesAndTheDefaultChunkSize) {
  vcrm::test::TempDir tmp;
  const std::string big = typicalMembers()[0].data + std::string(3u << 20, 'z');  // 3+ chunks
  { std::ofstream(tmp.path() / "dump.bin", std::ios::binary) << big; }
  StringSink out;
  writeArchive(
      out, kPassphrase, sampleInfo(), {memberFromFile("database.dump", tmp.path() / "dump.bin")},
      WriteOptions{.seal = SealOptions{.scrypt = {.n = 1u << 6, .r = 8, .p = 1}}, .progress = {}});
  StringSource in(out.data());
  extractArchive(in, kPassphrase, tmp.path() / "out", fastRead());
  EXPECT_EQ(files::readFile(tmp.path() / "out" / "database.dump", 16u << 20), big);
}

TEST(BackupArchiveTest, AGibMemberStreamsThroughWriteAndVerifyInConstantMemory) {
  constexpr std::uint64_t kDump = 1ull << 30;
  const MemberSource dump{"database.dump", []() -> std::unique_ptr<ByteSource> {
                            return std::make_unique<test::FastBytesSource>(7,
                                                                           std::uint64_t{1} << 30);
                          }};
  test::resetPeakRss();
  const std::size_t rssBefore = test::peakRss();
  const auto start = std::chrono::steady_clock::now();
  Manifest verified;
  test::throughPipe(
      [&](ByteSink& sink) {
        writeArchive(sink, kPassphrase, sampleInfo(),
                     {dump, memberFromBytes("config/vcrmd.conf", "[http]\n")},
                     WriteOptions{.seal = fastSeal(kDefaultChunkSize), .progress = {}});
      },
      [&](ByteSource& source) { verified = verifyArchive(source, kPassphrase, fastRead()); });
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(verified.members.size(), 2u);
  EXPECT_EQ(verified.members[0].size, kDump);
  const std::size_t peak = test::peakRss();
  const std::size_t growth = peak > rssBefore ? peak - rssBefore : 0;
  EXPECT_LT(growth, 32u << 20) << "peak memory grew by " << (growth >> 20) << " MiB";
  std::printf(
      "1 GiB member written (hashed, then copied) and verified in %.1f s, peak RSS +%zu KiB\n",
      seconds, growth >> 10);
}

// Counts what was pulled, to show readManifest stops early.
class CountingSource : public ByteSource {
 public:
  explicit CountingSource(std::string_view data) : inner_(data) {}
  std::size_t read(std::span<char> buffer) override {
    const std::size_t n = inner_.read(buffer);
    read_ += n;
    return n;
  }
  [[nodiscard]] std::size_t bytesRead() const { return read_; }

 private:
  StringSource inner_;
  std::size_t read_ = 0;
};

TEST(BackupArchiveTest, ReadManifestReadsOnlyTheFrontOfTheArchive) {
  const std::string archive = writeTypical();
  CountingSource in(archive);
  const Manifest m = readManifest(in, kPassphrase, fastRead());
  EXPECT_EQ(m.members.size(), typicalMembers().size());
  EXPECT_EQ(m.info.sourceSerial, "VCRM-0001-2345-6");
  EXPECT_LT(in.bytesRead(), archive.size() / 4);
}

TEST(BackupArchiveTest, ExtractRefusesAnExistingDirectoryOrALinkInItsPlace) {
  const std::string archive = writeTypical();
  vcrm::test::TempDir tmp;
  fs::create_directory(tmp.path() / "exists");
  { std::ofstream(tmp.path() / "exists" / "keep") << "mine"; }
  StringSource in(archive);
  EXPECT_THROW(extractArchive(in, kPassphrase, tmp.path() / "exists", fastRead()), Conflict);
  EXPECT_EQ(files::readFile(tmp.path() / "exists" / "keep"), "mine");

  fs::create_directory(tmp.path() / "elsewhere");
  fs::create_directory_symlink(tmp.path() / "elsewhere", tmp.path() / "link");
  StringSource again(archive);
  EXPECT_THROW(extractArchive(again, kPassphrase, tmp.path() / "link", fastRead()), Conflict);
  EXPECT_TRUE(fs::is_empty(tmp.path() / "elsewhere"));
}

// A source whose second read differs from its first (a file changed during the backup).
TEST(BackupArchiveTest, WriterRefusesAMemberThatChangesWhileWritten) {
  auto calls = std::make_shared<int>(0);
  MemberSource changing{"database.dump", [calls]() -> std::unique_ptr<ByteSource> {
                          static const std::string first(1000, 'a');
                          static const std::string second(1000, 'b');
                          return std::make_unique<StringSource>((*calls)++ == 0 ? first : second);
                        }};
  StringSink out;
  EXPECT_THROW(writeArchive(out, kPassphrase, sampleInfo(), {changing},
                            WriteOptions{.seal = fastSeal(), .progress = {}}),
               IoError);
  StringSource in(out.data());
  EXPECT_THROW(verifyArchive(in, kPassphrase, fastRead()), ArchiveError)
      << "what was written before the failure is not a valid archive";
}

TEST(BackupArchiveTest, WriterRefusesUnsafeOrDuplicateNames) {
  for (const std::string name :
       {"/etc/passwd", "../x", "a/../b", "a//b", "", "manifest.json", "sp ace", "a/./b"}) {
    StringSink out;
    EXPECT_THROW(writeArchive(out, kPassphrase, sampleInfo(), {memberFromBytes(name, "x")},
                              WriteOptions{.seal = fastSeal(), .progress = {}}),
                 InvalidInput)
        << name;
  }
  StringSink clash;
  EXPECT_THROW(writeArchive(clash, kPassphrase, sampleInfo(),
                            {memberFromBytes("a/b", "x"), memberFromBytes("a", "y")},
                            WriteOptions{.seal = fastSeal(), .progress = {}}),
               InvalidInput);
  StringSink out;
  EXPECT_THROW(writeArchive(out, kPassphrase, sampleInfo(),
                            {memberFromBytes("a", "x"), memberFromBytes("a", "y")},
                            WriteOptions{.seal = fastSeal(), .progress = {}}),
               InvalidInput);
}

TEST(BackupArchiveTest, CompareVersions) {
  EXPECT_EQ(compareVersions("0.1.0", "0.1.0"), 0);
  EXPECT_EQ(compareVersions("0.1", "0.1.0"), 0);
  EXPECT_EQ(compareVersions("0.10.0", "0.9.9"), 1);
  EXPECT_EQ(compareVersions("1.0.0", "1.0.1"), -1);
  EXPECT_THROW(compareVersions("1.0.x", "1"), InvalidInput);
  EXPECT_THROW(compareVersions("", "1"), InvalidInput);
  EXPECT_THROW(compareVersions("1..2", "1"), InvalidInput);
}

// ------------------------------------------------------------------------------- bad archives

class BadArchiveTest : public ::testing::TestWithParam<BadArchive> {};

std::string nameOf(const ::testing::TestParamInfo<BadArchive>& info) {
  return info.param.name;
}

// Verify and extract each refuse with the reason, and extract leaves no directory behind.
void expectRefused(const BadArchive& c, const std::string& archive) {
  ReadOptions options = fastRead();
  options.limits.maxMembers = 64;
  try {
    StringSource in(archive);
    verifyArchive(in, c.passphrase, options);
    ADD_FAILURE() << c.name << ": verify accepted the archive";
  } catch (const ArchiveError& e) {
    EXPECT_EQ(e.reason(), c.reason) << c.name << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find(c.says), std::string::npos)
        << c.name << ": the message should say \"" << c.says << "\" but is: " << e.what();
    EXPECT_EQ(e.code(), archiveReasonCode(c.reason));
  }
  vcrm::test::TempDir tmp;
  const fs::path dir = tmp.path() / "restore";
  try {
    StringSource in(archive);
    extractArchive(in, c.passphrase, dir, options);
    ADD_FAILURE() << c.name << ": extract accepted the archive";
  } catch (const ArchiveError& e) {
    EXPECT_EQ(e.reason(), c.reason) << c.name << ": " << e.what();
  }
  EXPECT_FALSE(fs::exists(dir)) << c.name << ": extract left files behind";
  EXPECT_TRUE(fs::is_empty(tmp.path())) << c.name;
}

TEST_P(BadArchiveTest, IsRefusedWithItsReason) {
  const BadArchive& c = GetParam();
  const std::string archive = c.build();
  if (c.name != "FlippedByteInEveryTag") {
    expectRefused(c, archive);
    return;
  }
  const std::size_t chunks = chunkCount(archive);
  ASSERT_GT(chunks, 50u);
  for (std::size_t i = 0; i < chunks; ++i) {
    SCOPED_TRACE("tag of chunk " + std::to_string(i));
    expectRefused(c, withTagFlipped(archive, i));
  }
}

INSTANTIATE_TEST_SUITE_P(Bad, BadArchiveTest, ::testing::ValuesIn(badArchives()), nameOf);

TEST(BadArchiveSuite, HasAtLeastTwentyFiveDistinctDefects) {
  EXPECT_GE(badArchives().size(), 25u);
}

// The sealed-but-valid typical archive the bad ones are derived from is itself accepted, so
// each refusal above is caused by its one defect.
TEST(BadArchiveSuite, TheUndamagedArchiveIsAccepted) {
  const auto m = typicalMembers();
  const std::string sealed = sealBytes(archiveTar(m, m));
  StringSource in(sealed);
  const Manifest manifest = verifyArchive(in, kPassphrase, fastRead());
  EXPECT_EQ(manifest.members.size(), m.size());
  const std::string typical = writeTypical();
  StringSource written(typical);
  EXPECT_EQ(verifyArchive(written, kPassphrase, fastRead()).members.size(), m.size());
}

}  // namespace
}  // namespace vcrm::upgrade

namespace vcrm::upgrade {
namespace {

// The fuzz target's seed corpus (tests/fuzz/corpus/backup_archive, replayed as fuzz_replay_*)
// stays meaningful: the valid seeds are accepted, every other seed is refused. Mode byte 0 is
// an archive file, 1 a plaintext tar the fuzz target seals itself.
TEST(FuzzCorpusTest, ValidSeedsAreAcceptedAndTheOthersRefused) {
  const fs::path dir = fs::path(VCRM_SOURCE_DIR) / "tests/fuzz/corpus/backup_archive";
  std::size_t seeds = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string bytes = files::readFile(entry.path());
    ASSERT_FALSE(bytes.empty()) << entry.path();
    std::string archive = bytes.substr(1);
    if (bytes[0] == 1) archive = sealBytes(archive, fastSeal(), "fuzz");
    StringSource in(archive);
    const bool valid = entry.path().filename().string().ends_with("_valid");
    if (valid) {
      EXPECT_NO_THROW(verifyArchive(in, "fuzz", fastRead())) << entry.path();
    } else {
      EXPECT_THROW(verifyArchive(in, "fuzz", fastRead()), ArchiveError) << entry.path();
    }
    ++seeds;
  }
  EXPECT_GE(seeds, 10u);
}

}  // namespace
}  // namespace vcrm::upgrade
