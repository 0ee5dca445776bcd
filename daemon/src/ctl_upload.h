// What the vcrmctl commands that send files share: a resumable tus upload of a file with its
// progress on stderr, and the error message of an API answer.
#pragma once

#include <functional>
#include <string>

#include "vcrm/daemon/api_client.h"

namespace vcrm::ctl {

// The error message of an API answer with its code ("... (bundle_truncated)"), or its body.
std::string messageOf(const ApiClient::Reply& reply);
// Throws Error("refused") saying `what`, the status and the answer's message.
[[noreturn]] void refused(const std::string& what, const ApiClient::Reply& reply);

struct UploadedFile {
  std::string id;
  ApiClient::Reply finished;  // the answer of the PATCH that brought the last byte
};

// Uploads `file` to the tus collection `collection` (e.g. "/api/v1/upgrade/uploads") in PATCHes
// of 16 MiB, printing the progress on stderr. A PATCH whose connection fails is resumed where
// the server says the upload is (HEAD), on a connection from `reconnect`, up to five times in a
// row. Throws Error("refused") when the server refuses it.
UploadedFile uploadFile(ApiClient& client, const std::function<ApiClient()>& reconnect,
                        const std::string& collection, const std::string& file);

// The backup passphrase: the first line of `file`, else VCRM_BACKUP_PASSPHRASE; empty when
// neither is given.
std::string backupPassphrase(const std::string& file);

}  // namespace vcrm::ctl
