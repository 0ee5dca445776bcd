// The step journal: what is saved is what is loaded, the history keeps every step, a journal
// edited by hand is refused rather than guessed at, and the crash hook kills the process right
// after the step it names is on disk.
#include "vcrm/upgrade/journal.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include "temp_dir.h"
#include "vcrm/common/error.h"
#include "vcrm/common/files.h"

namespace vcrm::upgrade {
namespace {

TEST(StepJournalTest, RecordsStepsCommitAndFailureDurably) {
  vcrm::test::TempDir tmp;
  const StepJournal journal(tmp.path() / "sub/journal.json");
  EXPECT_FALSE(journal.load().has_value());
  JournalRecord r;
  r.id = "op-1";
  r.operation = "restore";
  r.facts["database"] = "vcrm_x";
  r.facts["staged"] = "/a\n/b\n";
  journal.step(r, "verifying");
  journal.step(r, "db-created");
  auto loaded = journal.load();
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->phase, JournalPhase::Running);
  EXPECT_EQ(loaded->step, "db-created");
  EXPECT_EQ(loaded->fact("database"), "vcrm_x");
  EXPECT_EQ(loaded->fact("staged"), "/a\n/b\n");
  EXPECT_EQ(loaded->fact("absent"), "");
  ASSERT_EQ(loaded->history.size(), 2u);
  EXPECT_EQ(loaded->history[0].first, "verifying");
  EXPECT_FALSE(loaded->committed());

  journal.commit(*loaded, "ready");
  EXPECT_TRUE(journal.load()->committed());
  EXPECT_EQ(journal.load()->phase, JournalPhase::Committed);
  journal.finish(*loaded);
  EXPECT_EQ(journal.load()->phase, JournalPhase::Done);
  EXPECT_TRUE(journal.load()->finished());

  JournalRecord other{.id = "op-2", .operation = "restore"};
  journal.step(other, "verifying");
  journal.fail(other, "interrupted at verifying");
  EXPECT_EQ(journal.load()->phase, JournalPhase::Failed);
  EXPECT_EQ(journal.load()->message, "interrupted at verifying");
  // Only the owner may read it: it names files and databases.
  EXPECT_EQ(std::filesystem::status(journal.file()).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  journal.remove();
  EXPECT_FALSE(journal.load().has_value());
}

TEST(StepJournalTest, AJournalEditedByHandIsRefused) {
  vcrm::test::TempDir tmp;
  const StepJournal journal(tmp.path() / "journal.json");
  files::atomicWrite(journal.file(), "{\"format\": 1, \"id\": \"x\"}", 0600);
  EXPECT_THROW((void)journal.load(), IoError);
  files::atomicWrite(journal.file(), "not json", 0600);
  EXPECT_THROW((void)journal.load(), IoError);
  files::atomicWrite(journal.file(),
                     R"({"format":1,"id":"x","operation":"o","phase":"half-done","step":"s"})",
                     0600);
  EXPECT_THROW((void)journal.load(), IoError);
}

TEST(StepJournalTest, TheCrashHookKillsRightAfterItsStepIsOnDisk) {
  vcrm::test::TempDir tmp;
  const StepJournal journal(tmp.path() / "journal.json");
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    setenv("VCRM_TEST_CRASH_AT", "second", 1);
    JournalRecord r{.id = "op", .operation = "test"};
    journal.step(r, "first");
    journal.step(r, "second");
    journal.step(r, "third");
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  EXPECT_EQ(journal.load()->step, "second");
}

}  // namespace
}  // namespace vcrm::upgrade
