#include "restore_support.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "db_snapshot.h"
#include "eventually.h"
#include "tus_client.h"
#include "vcrm/common/files.h"
#include "vcrm/common/json.h"

namespace fs = std::filesystem;

namespace vcrm::test {

namespace {

std::string readIfPresent(const fs::path& p) {
  std::error_code ec;
  if (!fs::exists(p, ec)) return "<absent>";
  return files::readFile(p);
}

}  // namespace

std::unique_ptr<VcrmdProcess> startWithConfigFile(const fs::path& root, const std::string& conf) {
  files::ensureDir(root / "etc/vcrm");
  files::atomicWrite(root / "etc/vcrm/vcrmd.conf", conf);
  VcrmdProcess::Options options;
  options.root = root;
  auto vcrmd = std::make_unique<VcrmdProcess>(options);
  vcrmd->start();
  return vcrmd;
}

std::string backupThroughApi(HttpsClient& client, const std::string& passphrase) {
  json::ObjectPtr o = new json::Object;
  o->set("passphrase", passphrase);
  const auto started = client.postJson("/api/v1/backups", json::stringify(o));
  if (started.status != 202) throw std::runtime_error("backup refused: " + started.body);
  const std::string id = started.json()->getObject("backup")->getValue<std::string>("id");
  if (!eventually([&] { return client.get("/api/v1/backups").json()->isNull("running"); },
                  std::chrono::seconds(120))) {
    throw std::runtime_error("backup " + id + " still running after the time limit");
  }
  const auto made = client.get("/api/v1/backups/" + id);
  if (made.status != 200) throw std::runtime_error("backup " + id + " failed: " + made.body);
  return id;
}

std::string downloadBackup(HttpsClient& client, const std::string& id) {
  auto r = client.get("/api/v1/backups/" + id + "/download");
  if (r.status != 200) throw std::runtime_error("cannot download backup " + id + ": " + r.body);
  return r.body;
}

HttpResult verifyBackup(HttpsClient& client, const std::string& backupId,
                        const std::string& passphrase) {
  json::ObjectPtr o = new json::Object;
  o->set("backup_id", backupId);
  o->set("passphrase", passphrase);
  return client.postJson("/api/v1/restores", json::stringify(o));
}

std::string uploadArchive(HttpsClient& client, const std::string& archive) {
  auto upload = uploadWhole(client, "/api/v1/restores/uploads", archive);
  if (upload.finished.status != 201 && upload.finished.status != 204) {
    throw std::runtime_error("cannot upload the archive: " +
                             std::to_string(upload.finished.status) + " " + upload.finished.body);
  }
  return upload.id;
}

HttpResult verifyUpload(HttpsClient& client, const std::string& uploadId,
                        const std::string& passphrase) {
  json::ObjectPtr o = new json::Object;
  o->set("upload_id", uploadId);
  o->set("passphrase", passphrase);
  return client.postJson("/api/v1/restores", json::stringify(o));
}

std::string verifiedRestore(HttpsClient& client, const std::string& archive,
                            const std::string& passphrase) {
  auto r = verifyUpload(client, uploadArchive(client, archive), passphrase);
  if (r.status != 201) {
    throw std::runtime_error("the archive was refused: " + std::to_string(r.status) + " " + r.body);
  }
  return r.json()->getObject("restore")->getValue<std::string>("id");
}

void confirmAndAwait(VcrmdProcess& vcrmd, HttpsClient& client, const std::string& id) {
  auto r = client.postJson("/api/v1/restores/" + id + "/confirm", "{}");
  if (r.status != 202) {
    throw std::runtime_error("confirm was refused: " + std::to_string(r.status) + " " + r.body);
  }
  vcrmd.awaitInPlaceRestart();
}

std::string restorableSnapshot(db::Connection& c) {
  static const SnapshotExclusions kLeftOut{
      {"audit_log", "sessions"},
      {{"users", {"last_login_at"}},
       {"bridges",
        {"health", "health_cause", "health_message", "latency_ms", "bridge_version",
         "health_checked_at", "health_changed_at"}},
       {"appliance_serials", {"latest_seen"}}}};
  return databaseSnapshot(c, kLeftOut);
}

std::string swappedFilesSnapshot(const VcrmdProcess& vcrmd) {
  std::string out;
  for (const fs::path& p :
       {vcrmd.root() / "etc/vcrm/vcrmd.conf", vcrmd.stateDir() / "tls/server.crt",
        vcrmd.stateDir() / "tls/server.key"}) {
    out += p.filename().string() + ":\n" + readIfPresent(p) + "\n";
  }
  return out;
}

}  // namespace vcrm::test
