#include "vcrm/daemon/restore_swap.h"

#include <fcntl.h>
#include <sys/file.h>

#include <algorithm>
#include <regex>
#include <set>
#include <sstream>
#include <system_error>

#include "vcrm/common/error.h"
#include "vcrm/common/files.h"
#include "vcrm/common/json.h"
#include "vcrm/upgrade/apply.h"

namespace fs = std::filesystem;

namespace vcrm::restore {

namespace {

constexpr const char* kComponent = "restore";

std::vector<fs::path> pathsIn(const upgrade::JournalRecord& r, const char* fact) {
  std::vector<fs::path> out;
  std::istringstream in(r.fact(fact));
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.emplace_back(line);
  }
  return out;
}

std::vector<fs::path> stagedTargets(const upgrade::JournalRecord& r) {
  return pathsIn(r, kFactStaged);
}

bool contains(const std::vector<fs::path>& list, const fs::path& p) {
  return std::find(list.begin(), list.end(), p) != list.end();
}

bool passed(const upgrade::JournalRecord& r, const std::string& step) {
  for (const auto& [s, _] : r.history) {
    if (s == step) return true;
  }
  return false;
}

void renameDurably(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::rename(from, to, ec);
  if (ec) {
    throw StartupError("cannot rename " + from.string() + " to " + to.string() + ": " +
                       ec.message() +
                       "; free the file and start vcrmd again to finish the restore");
  }
  files::fsyncDir(to.parent_path());
}

bool validName(const std::string& name) {
  static const std::regex kName("[a-z_][a-z0-9_]{0,62}");
  return std::regex_match(name, kName);
}

void rollBack(const Layout& layout, const upgrade::StepJournal& journal, upgrade::JournalRecord& r,
              Logger& log) {
  std::error_code ec;
  for (const auto& target : stagedTargets(r)) fs::remove(stagedPath(target), ec);
  if (!r.fact(kFactWorkDir).empty()) fs::remove_all(r.fact(kFactWorkDir), ec);
  const std::string step = r.step;
  journal.fail(r, "interrupted at " + step);
  log.warn(kComponent, "ROLLED_BACK",
           "the " + r.operation + " was interrupted at step " + step +
               " before it was ready; nothing of it was kept and the system is as it was",
           r.id);
  (void)layout;
}

void rollForward(const Layout& layout, const upgrade::StepJournal& journal,
                 upgrade::JournalRecord& r, Logger& log) {
  const auto targets = stagedTargets(r);
  const auto removed = pathsIn(r, kFactRemoved);
  std::vector<fs::path> touched = targets;
  touched.insert(touched.end(), removed.begin(), removed.end());
  // Which targets the replaced system did not have, decided once before anything is renamed
  // (after a rename, a missing target could be one moved aside by a crashed roll forward).
  // A journal whose renames began without this step (an older vcrmd) counts none as absent.
  bool renamedAlready = false;
  for (const auto& [step, _] : r.history) {
    if (step.rfind("renamed-", 0) == 0 || step.rfind("removed-", 0) == 0) renamedAlready = true;
  }
  if (!passed(r, "absence-recorded") && !renamedAlready) {
    std::string absent;
    for (const auto& target : touched) {
      std::error_code ec;
      if (!fs::exists(fs::symlink_status(target, ec))) absent += target.string() + "\n";
    }
    r.facts[kFactAbsentBefore] = absent;
    journal.step(r, "absence-recorded");
  }
  const auto absentBefore = pathsIn(r, kFactAbsentBefore);
  for (const auto& target : targets) {
    const fs::path staged = stagedPath(target);
    std::error_code ec;
    if (!fs::exists(fs::symlink_status(staged, ec))) continue;  // renamed before a crash
    if (contains(absentBefore, target)) {
      // Nothing to keep: a *.pre-restore of an older swap must not pass for this one's.
      fs::remove(keptPath(target), ec);
    } else if (fs::exists(fs::symlink_status(target, ec))) {
      renameDurably(target, keptPath(target));
    }
    renameDurably(staged, target);
    journal.step(r, "renamed-" + target.filename().string());
  }
  for (const auto& target : removed) {
    std::error_code ec;
    if (contains(absentBefore, target)) {
      fs::remove(keptPath(target), ec);
    } else if (fs::exists(fs::symlink_status(target, ec))) {
      renameDurably(target, keptPath(target));
    }
    if (!passed(r, "removed-" + target.filename().string()))
      journal.step(r, "removed-" + target.filename().string());
  }
  if (!passed(r, "previous-recorded")) {
    Previous p;
    p.restoreId = r.id;
    p.database = r.fact(kFactReplaces);
    // When it was committed: the moment the old system stopped being the one to keep.
    for (const auto& [step, at] : r.history) {
      if (step == "ready") p.replacedAt = at;
    }
    for (const auto& target : touched) {
      std::error_code ec;
      if (contains(absentBefore, target)) {
        p.absentFiles.push_back(target);
      } else if (fs::exists(keptPath(target), ec)) {
        p.keptFiles.push_back(target);
      }
    }
    writePrevious(layout, p);
    journal.step(r, "previous-recorded");
  }
  if (!passed(r, "pointer-switched")) {
    files::atomicWrite(layout.pointerFile(), r.fact(kFactDatabase) + "\n", 0644);
    journal.step(r, "pointer-switched");
  }
  std::error_code ec;
  if (!r.fact(kFactWorkDir).empty()) fs::remove_all(r.fact(kFactWorkDir), ec);
  journal.finish(r);
  log.info(kComponent, "SWAPPED_IN",
           "the " + r.operation + " is complete: database " + r.fact(kFactDatabase) +
               " is active, " + r.fact(kFactReplaces) + " is kept as the previous one",
           r.id);
}

}  // namespace

std::vector<SwappedFile> swappedFiles(const Paths& paths) {
  return {{"etc/vcrmd.conf", paths.configFile()},
          {"tls/server.crt", paths.tlsDir() / "server.crt"},
          {"tls/server.key", paths.tlsDir() / "server.key"}};
}

fs::path stagedPath(const fs::path& target) {
  return target.parent_path() / (target.filename().string() + ".restore-new");
}

fs::path keptPath(const fs::path& target) {
  return target.parent_path() / (target.filename().string() + ".pre-restore");
}

std::string activeDatabase(const Paths& paths, const std::string& base) {
  const fs::path pointer = Layout(paths).pointerFile();
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(pointer, ec))) return base;
  std::string name = files::readFile(pointer, 4096, files::Links::Refuse);
  while (!name.empty() && (name.back() == '\n' || name.back() == '\r' || name.back() == ' ')) {
    name.pop_back();
  }
  if (!validName(name)) {
    throw StartupError(pointer.string() + " does not name a database (it holds \"" + name +
                       "\"); write the name of the database to use into it, or remove it to use " +
                       base);
  }
  return name;
}

std::string restoredDatabaseName(const std::string& restoreId) {
  std::string name = "vcrm_" + restoreId;
  for (char& ch : name) {
    if (ch == '-') ch = '_';
  }
  return name;
}

bool isRestoredDatabaseName(const std::string& name) {
  static const std::regex kRestored("vcrm_[0-9]{8}_[0-9]{6}_[0-9a-f]{4}");
  return std::regex_match(name, kRestored);
}

std::optional<Previous> readPrevious(const Layout& layout) {
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(layout.previousFile(), ec))) return std::nullopt;
  const auto o =
      json::parseObject(files::readFile(layout.previousFile(), 1u << 20, files::Links::Refuse));
  Previous p;
  p.restoreId = o->getValue<std::string>("restore_id");
  p.database = o->getValue<std::string>("database");
  p.replacedAt = o->getValue<std::string>("replaced_at");
  for (const auto& [key, list] :
       {std::pair{"kept_files", &p.keptFiles}, std::pair{"absent_files", &p.absentFiles}}) {
    if (auto a = o->getArray(key)) {
      for (std::size_t i = 0; i < a->size(); ++i) {
        list->emplace_back(a->getElement<std::string>(static_cast<unsigned>(i)));
      }
    }
  }
  return p;
}

void writePrevious(const Layout& layout, const Previous& p) {
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("restore_id", p.restoreId);
  o->set("database", p.database);
  o->set("replaced_at", p.replacedAt);
  for (const auto& [key, list] :
       {std::pair{"kept_files", &p.keptFiles}, std::pair{"absent_files", &p.absentFiles}}) {
    json::ArrayPtr a = new json::Array;
    for (const auto& f : *list) a->add(f.string());
    o->set(key, a);
  }
  files::ensureDir(layout.dir(), 0700);
  files::atomicWrite(layout.previousFile(), json::stringify(o) + "\n", 0600);
}

void removePrevious(const Layout& layout) {
  std::error_code ec;
  fs::remove(layout.previousFile(), ec);
  if (ec) throw IoError("cannot remove " + layout.previousFile().string() + ": " + ec.message());
  files::fsyncDir(layout.dir());
}

void recover(const Paths& paths, Logger& log) {
  const Layout layout(paths);
  const auto journal = layout.journal();
  auto r = journal.load();
  if (!r || r->finished()) return;
  // Another vcrmd on this root may be in the middle of this very operation.
  files::ensureDir(paths.runDir(), 0755);
  const fs::path lockPath = paths.runDir() / "vcrmd.lock";
  files::Fd lock(::open(lockPath.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!lock || flock(lock.get(), LOCK_EX | LOCK_NB) != 0) return;
  if (r->phase == upgrade::JournalPhase::Committed) {
    rollForward(layout, journal, *r, log);
  } else {
    rollBack(layout, journal, *r, log);
  }
}

void dropLeftoverDatabases(const Paths& paths, const std::string& base, db::Connection& c,
                           Logger& log) {
  const Layout layout(paths);
  std::set<std::string> named{activeDatabase(paths, base)};
  if (auto p = readPrevious(layout)) named.insert(p->database);
  if (auto r = layout.journal().load(); r && !r->finished()) {
    named.insert(r->fact(kFactDatabase));
    named.insert(r->fact(kFactReplaces));
  }
  // An upgrade's original and copy (throws for an unreadable journal: nothing is dropped).
  named.merge(upgrade::databasesNamedByUpgrade(upgrade::UpgradeLayout(paths.root)));
  auto rows = c.exec("SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY datname");
  for (int i = 0; i < rows.rows(); ++i) {
    const std::string name = rows.text(i, 0);
    if (named.count(name) != 0 || name == "postgres" ||
        (!isRestoredDatabaseName(name) && !upgrade::isUpgradeCopyName(name) && name != base)) {
      continue;
    }
    try {
      db::dropDatabase(c, name);
      log.info(kComponent, "LEFTOVER_DROPPED",
               "dropped database " + name + ", which no restore or upgrade names any more", name);
    } catch (const std::exception& e) {
      log.warn(kComponent, "LEFTOVER_DROP_FAILED", e.what(), name);
    }
  }
}

}  // namespace vcrm::restore
