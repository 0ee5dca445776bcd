#include "vcrm/upgrade/journal.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <system_error>

#include "vcrm/common/crypto.h"
#include "vcrm/common/error.h"
#include "vcrm/common/files.h"
#include "vcrm/common/json.h"

namespace fs = std::filesystem;

namespace vcrm::upgrade {

namespace {

constexpr int kJournalFormat = 1;

std::string nowRfc3339() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms));
  return out;
}

std::optional<JournalPhase> phaseFromName(std::string_view name) {
  for (auto p :
       {JournalPhase::Running, JournalPhase::Committed, JournalPhase::Done, JournalPhase::Failed}) {
    if (phaseName(p) == name) return p;
  }
  return std::nullopt;
}

}  // namespace

std::string_view phaseName(JournalPhase phase) {
  switch (phase) {
    case JournalPhase::Running:
      return "running";
    case JournalPhase::Committed:
      return "committed";
    case JournalPhase::Done:
      return "done";
    case JournalPhase::Failed:
      return "failed";
  }
  return "failed";
}

const std::string& JournalRecord::fact(const std::string& key) const {
  static const std::string kNone;
  const auto it = facts.find(key);
  return it == facts.end() ? kNone : it->second;
}

std::optional<JournalRecord> StepJournal::load() const {
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(file_, ec))) return std::nullopt;
  const std::string text = files::readFile(file_, 1u << 20, files::Links::Refuse);
  try {
    const auto o = json::parseObject(text);
    if (o->getValue<int>("format") != kJournalFormat) {
      throw IoError("journal " + file_.string() +
                    " is of an unknown format; a newer vcrm wrote it, or it was changed by hand: "
                    "restore it or remove it");
    }
    JournalRecord r;
    r.id = o->getValue<std::string>("id");
    r.operation = o->getValue<std::string>("operation");
    const auto phase = phaseFromName(o->getValue<std::string>("phase"));
    if (!phase) {
      throw IoError("journal " + file_.string() +
                    " has an unknown phase; it is written atomically, so it was changed by hand: "
                    "restore it or remove it");
    }
    r.phase = *phase;
    r.step = o->getValue<std::string>("step");
    r.message = o->optValue<std::string>("message", "");
    if (auto h = o->getArray("history")) {
      for (std::size_t i = 0; i < h->size(); ++i) {
        auto e = h->getObject(static_cast<unsigned>(i));
        r.history.emplace_back(e->getValue<std::string>("step"), e->getValue<std::string>("at"));
      }
    }
    if (auto f = o->getObject("facts")) {
      for (const auto& [k, v] : *f) r.facts[k] = v.convert<std::string>();
    }
    return r;
  } catch (const IoError&) {
    throw;
  } catch (const std::exception& e) {
    throw IoError("journal " + file_.string() + " cannot be read: " + e.what() +
                  "; it is written atomically, so it was changed by hand: restore it or remove it");
  }
}

void StepJournal::save(const JournalRecord& record) const {
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("format", kJournalFormat);
  o->set("id", record.id);
  o->set("operation", record.operation);
  o->set("phase", std::string(phaseName(record.phase)));
  o->set("step", record.step);
  if (!record.message.empty()) o->set("message", record.message);
  json::ArrayPtr history = new json::Array;
  for (const auto& [step, at] : record.history) {
    json::ObjectPtr e = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    e->set("step", step);
    e->set("at", at);
    history->add(e);
  }
  o->set("history", history);
  json::ObjectPtr facts = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  for (const auto& [k, v] : record.facts) facts->set(k, v);
  o->set("facts", facts);
  files::ensureDir(file_.parent_path(), 0700);
  files::atomicWrite(file_, json::stringify(o) + "\n", 0600);
  crashHookAt(record.step);
}

void StepJournal::step(JournalRecord& record, const std::string& step) const {
  record.step = step;
  record.history.emplace_back(step, nowRfc3339());
  save(record);
}

void StepJournal::commit(JournalRecord& record, const std::string& step) const {
  record.phase = JournalPhase::Committed;
  this->step(record, step);
}

void StepJournal::finish(JournalRecord& record, const std::string& step) const {
  record.phase = JournalPhase::Done;
  this->step(record, step);
}

void StepJournal::fail(JournalRecord& record, const std::string& message) const {
  record.phase = JournalPhase::Failed;
  record.message = message;
  this->step(record, "failed");
}

void StepJournal::remove() const {
  std::error_code ec;
  fs::remove(file_, ec);
  if (ec) throw IoError("cannot remove " + file_.string() + ": " + ec.message());
  files::fsyncDir(file_.parent_path());
}

std::string newOperationId() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
  return std::string(buf) + "-" + crypto::toHex(crypto::randomBytes(2));
}

void crashHookAt(std::string_view step) {
  const char* at = std::getenv("VCRM_TEST_CRASH_AT");
  if (at != nullptr && step == at) ::kill(::getpid(), SIGKILL);
}

}  // namespace vcrm::upgrade
