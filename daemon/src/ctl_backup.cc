#include "src/ctl_backup.h"

#include <fcntl.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "src/ctl_upload.h"
#include "vcrm/common/error.h"
#include "vcrm/common/files.h"
#include "vcrm/common/json.h"
#include "vcrm/common/version.h"
#include "vcrm/daemon/migrations.h"
#include "vcrm/upgrade/archive_error.h"
#include "vcrm/upgrade/backup_archive.h"

namespace fs = std::filesystem;

namespace vcrm::ctl {

namespace {

std::string trimNewline(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

// The first line of `file`, or VCRM_BACKUP_PASSPHRASE; empty when neither is given.
std::string readPassphrase(const std::string& file) {
  if (!file.empty()) {
    std::string text = files::readFile(file, 4096);
    return trimNewline(text.substr(0, text.find('\n')));
  }
  if (const char* env = std::getenv("VCRM_BACKUP_PASSPHRASE"); env && *env) return env;
  return {};
}

int refused(const ApiClient::Reply& reply) {
  std::cerr << "vcrmctl: " << reply.status << ": " << messageOf(reply) << "\n";
  return 1;
}

std::string megabytes(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(bytes) / 1e6);
  return buf;
}

// Writes the archive to FILE.part and renames it once all of its bytes (the size the appliance
// lists) arrived: a connection that drops half-way leaves no file that looks whole.
int downloadTo(ApiClient& client, const std::string& id, const fs::path& out) {
  const auto record = client.request("GET", "/api/v1/backups/" + id);
  if (record.status != 200) return refused(record);
  const auto size = json::parseObject(record.body)->getValue<std::uint64_t>("size");
  const fs::path part = out.string() + ".part";
  ApiClient::Reply reply;
  {
    std::ofstream file(part, std::ios::binary | std::ios::trunc);
    if (!file) throw IoError("cannot write " + part.string());
    fs::permissions(part, fs::perms::owner_read | fs::perms::owner_write);
    try {
      reply = client.request("GET", "/api/v1/backups/" + id + "/download", {}, &file);
    } catch (...) {
      std::error_code ec;
      fs::remove(part, ec);
      throw;
    }
    file.flush();
    if (reply.status == 200 && !file) throw IoError("cannot write " + part.string());
  }
  if (reply.status != 200) {
    std::error_code ec;
    fs::remove(part, ec);
    return refused(reply);
  }
  if (const auto got = fs::file_size(part); got != size) {
    std::error_code ec;
    fs::remove(part, ec);
    std::cerr << "vcrmctl: the download of " << id << " ended after " << got << " of " << size
              << " bytes; nothing was saved, run it again\n";
    return 1;
  }
  fs::rename(part, out);
  std::cerr << "vcrmctl: backup " << id << " saved to " << out.string() << " ("
            << megabytes(fs::file_size(out)) << ")\n";
  return 0;
}

int create(ApiClient& client, const std::string& passphrase, std::string out) {
  json::ObjectPtr body = new json::Object;
  body->set("passphrase", passphrase);
  auto started = client.request("POST", "/api/v1/backups", json::stringify(body));
  if (started.status != 202) return refused(started);
  const std::string id =
      json::parseObject(started.body)->getObject("backup")->getValue<std::string>("id");
  std::cerr << "vcrmctl: backup " << id << " started\n";
  std::string lastLine;
  for (;;) {
    auto list = client.request("GET", "/api/v1/backups");
    if (list.status != 200) return refused(list);
    auto o = json::parseObject(list.body);
    auto running = o->getObject("running");
    if (!running || running->getValue<std::string>("id") != id) break;
    const std::string phase = running->getValue<std::string>("phase");
    const auto done = running->getValue<std::uint64_t>("done");
    const auto total = running->getValue<std::uint64_t>("total");
    std::string line = "vcrmctl: " + phase + " " + megabytes(done);
    if (total > 0)
      line += " of " + megabytes(total) + " (" + std::to_string(done * 100 / total) + "%)";
    if (line != lastLine) std::cerr << line << "\n";
    lastLine = line;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  auto got = client.request("GET", "/api/v1/backups/" + id);
  if (got.status != 200) {
    auto list = client.request("GET", "/api/v1/backups");
    std::string why = "it is not on the appliance";
    try {
      auto failure = json::parseObject(list.body)->getObject("last_failure");
      if (failure && failure->getValue<std::string>("id") == id)
        why = failure->getValue<std::string>("error");
    } catch (...) {  // NOLINT(bugprone-empty-catch): the generic reason
    }
    std::cerr << "vcrmctl: backup " << id << " failed: " << why << "\n";
    return 1;
  }
  std::cout << got.body << "\n";
  if (out.empty()) out = id + ".vcrmbak";
  return downloadTo(client, id, out);
}

int list(ApiClient& client) {
  auto reply = client.request("GET", "/api/v1/backups");
  if (reply.status != 200) return refused(reply);
  auto o = json::parseObject(reply.body);
  auto backups = o->getArray("backups");
  std::printf("%-48s %-20s %12s %-9s %s\n", "ID", "CREATED", "SIZE", "ORIGIN", "COPY");
  for (std::size_t i = 0; i < backups->size(); ++i) {
    auto b = backups->getObject(static_cast<unsigned>(i));
    std::printf("%-48s %-20s %12s %-9s %s\n", b->getValue<std::string>("id").c_str(),
                b->getValue<std::string>("created_at").c_str(),
                megabytes(b->getValue<std::uint64_t>("size")).c_str(),
                b->getValue<std::string>("origin").c_str(),
                b->getObject("copy")->getValue<std::string>("state").c_str());
  }
  if (auto running = o->getObject("running")) {
    std::printf("running: %s (%s)\n", running->getValue<std::string>("id").c_str(),
                running->getValue<std::string>("phase").c_str());
  }
  return 0;
}

// Local: no vcrmd needed.
int verify(const std::string& file, const std::string& passphrase) {
  try {
    const files::Fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw IoError("cannot open " + file + ": " + errnoText(errno));
    upgrade::FdSource source(fd.get(), file);
    upgrade::ReadOptions options;
    options.compatibleWith = upgrade::Compatibility{
        .productVersion = vcrm::productVersion(), .schemaVersion = loadMigrations().back().version};
    const auto manifest = upgrade::verifyArchive(source, passphrase, options);
    std::cout << upgrade::manifestJson(manifest) << "\n";
    return 0;
  } catch (const upgrade::ArchiveError& e) {
    std::cerr << "vcrmctl: backup refused (" << e.code() << "): " << e.what() << "\n";
    return 1;
  }
}

}  // namespace

const char* backupUsage() {
  return "usage: vcrmctl [connection options] backup create --passphrase-file F [--out FILE]\n"
         "  makes a backup archive on the appliance, prints its progress, waits for it and "
         "downloads\n"
         "  it to FILE (default ./<id>.vcrmbak); the passphrase is the first line of F or\n"
         "  VCRM_BACKUP_PASSPHRASE, at least 12 characters.\n"
         "usage: vcrmctl [connection options] backup list\n"
         "usage: vcrmctl [connection options] backup download ID --out FILE\n"
         "usage: vcrmctl [connection options] backup delete ID\n"
         "usage: vcrmctl backup verify FILE [--passphrase-file F]\n"
         "  checks a whole backup archive without restoring it (every authentication tag, the\n"
         "  manifest, every member's size and hash) and prints its manifest as JSON; no vcrmd "
         "needed.\n"
         "exit status: 0 when done, 1 when refused or failed (the reason goes to stderr), 2 for "
         "usage\n";
}

int backupCommand(const std::vector<std::string>& args, const std::function<ApiClient()>& connect) {
  std::string passphraseFile, out;
  std::vector<std::string> positional;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--passphrase-file" && i + 1 < args.size()) {
      passphraseFile = args[++i];
    } else if (args[i] == "--out" && i + 1 < args.size()) {
      out = args[++i];
    } else if (args[i].rfind("--", 0) == 0) {
      std::cerr << backupUsage();
      return 2;
    } else {
      positional.push_back(args[i]);
    }
  }
  const std::string verb = positional.empty() ? "" : positional[0];
  const std::size_t operands = positional.empty() ? 0 : positional.size() - 1;
  try {
    if (verb == "verify" && operands == 1) {
      const std::string passphrase = readPassphrase(passphraseFile);
      if (passphrase.empty()) {
        std::cerr << "vcrmctl: give --passphrase-file or set VCRM_BACKUP_PASSPHRASE\n";
        return 2;
      }
      return verify(positional[1], passphrase);
    }
    if (verb == "create" && operands == 0) {
      const std::string passphrase = readPassphrase(passphraseFile);
      if (passphrase.empty()) {
        std::cerr << "vcrmctl: give --passphrase-file or set VCRM_BACKUP_PASSPHRASE\n";
        return 2;
      }
      ApiClient client = connect();
      return create(client, passphrase, out);
    }
    if (verb == "list" && operands == 0) {
      ApiClient client = connect();
      return list(client);
    }
    if (verb == "download" && operands == 1 && !out.empty()) {
      ApiClient client = connect();
      return downloadTo(client, positional[1], out);
    }
    if (verb == "delete" && operands == 1) {
      ApiClient client = connect();
      auto reply = client.request("DELETE", "/api/v1/backups/" + positional[1]);
      if (reply.status != 204) return refused(reply);
      std::cerr << "vcrmctl: backup " << positional[1] << " deleted\n";
      return 0;
    }
  } catch (const std::exception& e) {
    std::cerr << "vcrmctl: " << e.what() << "\n";
    return 1;
  }
  std::cerr << backupUsage();
  return 2;
}

}  // namespace vcrm::ctl
