// How a restored (or reverted-to) system is swapped in: the files under <state>/restore/, the
// pointer file <state>/database naming the active database, and the recovery vcrmd runs before
// it loads its configuration — it finishes a restore or revert whose journal passed "ready"
// (config and TLS files renamed into place with the old ones kept as *.pre-restore,
// previous.json, the pointer replaced by rename) and undoes one that did not (staged files and
// work directory removed, the journal says "failed: interrupted at <step>"). The restore
// module does the steps up to "ready"; the databases nothing names any more are dropped by
// App::start (dropLeftoverDatabases).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "vcrm/common/config.h"
#include "vcrm/common/db.h"
#include "vcrm/common/log.h"
#include "vcrm/upgrade/journal.h"

namespace vcrm::restore {

inline constexpr const char* kDefaultDatabase = "vcrm";

// Where everything of restores lives.
struct Layout {
  explicit Layout(const Paths& paths) : paths(paths) {}
  const Paths& paths;
  [[nodiscard]] std::filesystem::path dir() const { return paths.stateDir() / "restore"; }
  [[nodiscard]] std::filesystem::path journalFile() const { return dir() / "journal.json"; }
  [[nodiscard]] std::filesystem::path previousFile() const { return dir() / "previous.json"; }
  [[nodiscard]] std::filesystem::path uploadsDir() const { return dir() / "uploads"; }
  [[nodiscard]] std::filesystem::path workDir(const std::string& id) const {
    return dir() / ("work-" + id);
  }
  [[nodiscard]] std::filesystem::path pointerFile() const { return paths.stateDir() / "database"; }
  [[nodiscard]] upgrade::StepJournal journal() const { return upgrade::StepJournal(journalFile()); }
};

// The files a restore may replace, each with its member name in an archive.
struct SwappedFile {
  std::string member;  // "etc/vcrmd.conf"
  std::filesystem::path target;
};
std::vector<SwappedFile> swappedFiles(const Paths& paths);
std::filesystem::path stagedPath(const std::filesystem::path& target);  // <target>.restore-new
std::filesystem::path keptPath(const std::filesystem::path& target);    // <target>.pre-restore

// The database the pointer file names; `base` (the embedded "vcrm" or db.dsn's database) when
// there is no pointer.
std::string activeDatabase(const Paths& paths, const std::string& base);
// The name of the database a restore with this id loads into.
std::string restoredDatabaseName(const std::string& restoreId);
bool isRestoredDatabaseName(const std::string& name);

// What is kept of the system a restore or revert replaced (previous.json).
struct Previous {
  std::string restoreId;  // the restore or revert that replaced it
  std::string database;
  std::string replacedAt;                        // RFC 3339
  std::vector<std::filesystem::path> keptFiles;  // targets whose *.pre-restore is the old file
  // Targets the replaced system did not have: going back to it sets them aside (as
  // *.pre-restore), so a file the restore brought in does not outlive the return.
  std::vector<std::filesystem::path> absentFiles;
};
std::optional<Previous> readPrevious(const Layout& layout);
void writePrevious(const Layout& layout, const Previous& previous);
void removePrevious(const Layout& layout);

// Journal facts the swap reads (written by the restore module).
inline constexpr const char* kFactDatabase = "database";  // the database to switch to
inline constexpr const char* kFactReplaces = "replaces";  // the database it replaces
inline constexpr const char* kFactStaged = "staged";      // targets staged, '\n'-separated
inline constexpr const char* kFactRemoved = "removed";    // targets set aside, '\n'-separated
// Written by the roll forward before its first rename: which targets did not exist then.
inline constexpr const char* kFactAbsentBefore = "absent_before";
inline constexpr const char* kFactWorkDir = "work_dir";

// Before vcrmd loads its configuration (at every start, and across the restart a restore asks
// for): finishes or undoes what the journal says is under way. Takes the root's lock for the
// time it works, and does nothing while another vcrmd holds it.
void recover(const Paths& paths, Logger& log);

// Restore databases and the base database that neither the pointer, previous.json nor a
// journal still under way names. Called by App::start on a connection to the active database.
void dropLeftoverDatabases(const Paths& paths, const std::string& base, db::Connection& c,
                           Logger& log);

}  // namespace vcrm::restore
