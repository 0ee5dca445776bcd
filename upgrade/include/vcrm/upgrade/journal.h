// A step journal for an operation that must either complete or leave the system as it was
// after a crash at any instant (a restore, an upgrade's apply): one small JSON file rewritten
// atomically after every step (temporary file, fsync, rename, fsync of the directory), so after
// kill -9 or a power cut it names the last step that finished. One step is the commit point:
// recovery rolls an operation forward past it and back before it. What the steps are and how
// each is undone or redone belongs to the caller; the journal only records them.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vcrm::upgrade {

enum class JournalPhase {
  Running,    // before the commit point: recovery undoes it
  Committed,  // past the commit point: recovery finishes it
  Done,
  Failed,
};
std::string_view phaseName(JournalPhase phase);  // "running", "committed", "done", "failed"

struct JournalRecord {
  std::string id;         // the operation's id
  std::string operation;  // what it is: "restore", "revert", "upgrade"
  JournalPhase phase = JournalPhase::Running;
  std::string step{};                                          // the last step that finished
  std::vector<std::pair<std::string, std::string>> history{};  // every step and when (RFC 3339)
  // What recovery needs to undo or finish the operation (names, paths), and what the user is
  // shown of it; values are text (lists are the caller's to encode).
  std::map<std::string, std::string> facts{};
  std::string message{};  // why it failed
  [[nodiscard]] bool committed() const {
    return phase == JournalPhase::Committed || phase == JournalPhase::Done;
  }
  [[nodiscard]] bool finished() const {
    return phase == JournalPhase::Done || phase == JournalPhase::Failed;
  }
  [[nodiscard]] const std::string& fact(const std::string& key) const;  // "" when absent
};

class StepJournal {
 public:
  explicit StepJournal(std::filesystem::path file) : file_(std::move(file)) {}

  // The record, or nullopt when there is no journal. Throws IoError for a file that is not a
  // journal (it is never half-written, so that means someone edited it).
  [[nodiscard]] std::optional<JournalRecord> load() const;
  // Writes `record` as it is, atomically and durably, then runs the crash hook for its step.
  void save(const JournalRecord& record) const;
  // Records that `step` finished: appended to the history and saved.
  void step(JournalRecord& record, const std::string& step) const;
  // Records the commit point as step `step`: from now on recovery rolls forward.
  void commit(JournalRecord& record, const std::string& step) const;
  void finish(JournalRecord& record, const std::string& step = "done") const;
  void fail(JournalRecord& record, const std::string& message) const;
  void remove() const;
  [[nodiscard]] const std::filesystem::path& file() const { return file_; }

 private:
  std::filesystem::path file_;
};

// A new id for an operation: "YYYYMMDD-HHMMSS-xxxx" (UTC, then 16 random bits), sorting by time.
std::string newOperationId();

// Test hook: when the environment variable VCRM_TEST_CRASH_AT equals `step`, the process kills
// itself with SIGKILL at once, as a power cut right after that step would. StepJournal::save
// calls it; an operation may call it at points that are not journalled.
void crashHookAt(std::string_view step);

}  // namespace vcrm::upgrade
