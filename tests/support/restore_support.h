// What the restore tests do again and again: a backup of a running vcrmd made through the
// backups module, downloaded and uploaded through the restore upload collection (tus) or named
// by its id, verified, confirmed and followed until vcrmd is back; and the snapshot of the
// stored data a restore must bring back exactly.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "https_client.h"
#include "vcrm/common/db.h"
#include "vcrmd_process.h"

namespace vcrm::test {

inline constexpr const char* kBackupPassphrase = "correct horse battery staple backup";

// A vcrmd on `root` with a configuration file `conf` of its own (so that a restore has one to
// swap), started.
std::unique_ptr<VcrmdProcess> startWithConfigFile(const std::filesystem::path& root,
                                                  const std::string& conf);

// A backup made through the backups module (POST /api/v1/backups as `client`), waited for
// until it is listed; returns its id.
std::string backupThroughApi(HttpsClient& client,
                             const std::string& passphrase = kBackupPassphrase);
// That backup's bytes, as GET /api/v1/backups/{id}/download gives them.
std::string downloadBackup(HttpsClient& client, const std::string& id);
// POST /api/v1/restores {"backup_id", "passphrase"}.
HttpResult verifyBackup(HttpsClient& client, const std::string& backupId,
                        const std::string& passphrase = kBackupPassphrase);

// POST + PATCH of the whole archive to /api/v1/restores/uploads; returns the upload id.
std::string uploadArchive(HttpsClient& client, const std::string& archive);
// POST /api/v1/restores {"upload_id", "passphrase"}.
HttpResult verifyUpload(HttpsClient& client, const std::string& uploadId,
                        const std::string& passphrase = kBackupPassphrase);
// Uploads, verifies (expecting 201) and returns the restore's id.
std::string verifiedRestore(HttpsClient& client, const std::string& archive,
                            const std::string& passphrase = kBackupPassphrase);
// Confirms restore `id` (expecting 202) and waits until vcrmd has restarted in place.
void confirmAndAwait(VcrmdProcess& vcrmd, HttpsClient& client, const std::string& id);

// Every row a restore brings back, in a fixed order; left out what changes by itself or by
// signing in (audit log, sessions, last sign-in, bridge health, the licence clock).
std::string restorableSnapshot(db::Connection& c);
// The files a restore may replace (config, TLS), their bytes joined with their names.
std::string swappedFilesSnapshot(const VcrmdProcess& vcrmd);

}  // namespace vcrm::test
