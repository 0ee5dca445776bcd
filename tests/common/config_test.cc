// Config: what an operator writes in vcrmd.conf or passes with --set, and what they are told
// when it cannot be used.
#include "vcrm/common/config.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "temp_dir.h"
#include "vcrm/common/error.h"

namespace fs = std::filesystem;

namespace vcrm {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  // Writes <root>/etc/vcrm/vcrmd.conf with exactly these bytes.
  void writeConfig(const std::string& text) {
    fs::create_directories(conf().parent_path());
    std::ofstream out(conf(), std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
  }
  fs::path conf() const { return Paths{dir_.path()}.configFile(); }

  // Loads and returns the ConfigError's message; fails the test if nothing is thrown.
  std::string loadError(const std::vector<std::string>& overrides = {}) {
    try {
      Config::load(dir_.path(), overrides);
    } catch (const ConfigError& e) {
      return e.what();
    }
    ADD_FAILURE() << "Config::load accepted the configuration";
    return {};
  }

  // The error for a file whose line `lineNo` is bad; asserts it names file:line.
  std::string fileError(const std::string& text, int lineNo) {
    writeConfig(text);
    const std::string msg = loadError();
    EXPECT_NE(msg.find(conf().string() + ":" + std::to_string(lineNo)), std::string::npos)
        << "message does not name " << conf().string() << ":" << lineNo << ": " << msg;
    return msg;
  }

  test::TempDir dir_{"vcrm-config"};
};

TEST_F(ConfigTest, DefaultsWithoutAFile) {
  const Config c = Config::load(dir_.path(), {});
  EXPECT_EQ(c.paths.root, dir_.path());
  EXPECT_EQ(c.dbDsn, "");
  EXPECT_EQ(c.dbEmbeddedUser, "vcrm");
  EXPECT_EQ(c.pgBinDir, "");
  EXPECT_EQ(c.dbPoolSize, 8);
  EXPECT_EQ(c.migrationsDir, "");
  EXPECT_EQ(c.httpListen, "0.0.0.0");
  EXPECT_EQ(c.httpsPort, 8443);
  EXPECT_EQ(c.httpPort, 8080);
  EXPECT_EQ(c.tlsCertFile, "");
  EXPECT_EQ(c.tlsKeyFile, "");
  EXPECT_EQ(c.webuiDir, "");
  EXPECT_EQ(c.maxBodyBytes, 1u << 20);
  EXPECT_EQ(c.httpThreads, 64);
  EXPECT_EQ(c.eventsListen, "127.0.0.1");
  EXPECT_EQ(c.eventsPort, 8090);
  EXPECT_EQ(c.prelaunchSeconds, 60);
  EXPECT_EQ(c.reconcileSeconds, 2);
  EXPECT_EQ(c.sessionIdleMinutes, 60);
  EXPECT_EQ(c.sessionMaxHours, 12);
  EXPECT_EQ(c.logLevel, LogLevel::Info);
}

TEST_F(ConfigTest, EveryPathLivesUnderTheRootPrefix) {
  const Config c = Config::load(dir_.path(), {});
  const std::string root = dir_.path().string() + "/";
  for (const fs::path& p :
       {c.paths.configFile(), c.paths.stateDir(), c.paths.pgDataDir(), c.paths.pgSocketDir(),
        c.paths.tlsDir(), c.paths.runDir(), c.paths.uploadsDir(),
        c.paths.initialAdminPasswordFile(), c.paths.readyFile()}) {
    EXPECT_EQ(p.string().rfind(root, 0), 0u) << p;
  }
  EXPECT_EQ(c.paths.configFile(), dir_.path() / "etc/vcrm/vcrmd.conf");
}

TEST_F(ConfigTest, FileWithCommentsBlankLinesQuotesAndEveryKey) {
  writeConfig(
      "# vcrmd configuration\n"
      "\n"
      "   # an indented comment\n"
      "db.dsn = \"host=db.example port=5433 dbname=vcrm\"\n"
      "db.embedded_user = pguser\n"
      "db.pg_bindir = /usr/lib/postgresql/15/bin\n"
      "db.pool_size = 4\n"
      "db.migrations_dir = \"/opt/vcrm/migrations\"\n"
      "\t\n"
      "http.listen = 127.0.0.1\r\n"
      "https.port=9443\n"
      "  http.port   =   -1  \n"
      "http.max_body_bytes = 2048\n"
      "http.threads = 4\n"
      "tls.cert_file = /etc/ssl/vcrm.crt\n"
      "tls.key_file = /etc/ssl/vcrm.key\n"
      "webui.dir = /srv/webui\n"
      "session.idle_minutes = 15\n"
      "session.max_hours = 2\n"
      "log.level = WARNING\n");
  const Config c = Config::load(dir_.path(), {});
  EXPECT_EQ(c.dbDsn, "host=db.example port=5433 dbname=vcrm");
  EXPECT_EQ(c.dbEmbeddedUser, "pguser");
  EXPECT_EQ(c.pgBinDir, "/usr/lib/postgresql/15/bin");
  EXPECT_EQ(c.dbPoolSize, 4);
  EXPECT_EQ(c.migrationsDir, "/opt/vcrm/migrations");
  EXPECT_EQ(c.httpListen, "127.0.0.1");
  EXPECT_EQ(c.httpsPort, 9443);
  EXPECT_EQ(c.httpPort, -1);
  EXPECT_EQ(c.maxBodyBytes, 2048u);
  EXPECT_EQ(c.httpThreads, 4);
  EXPECT_EQ(c.tlsCertFile, "/etc/ssl/vcrm.crt");
  EXPECT_EQ(c.tlsKeyFile, "/etc/ssl/vcrm.key");
  EXPECT_EQ(c.webuiDir, "/srv/webui");
  EXPECT_EQ(c.sessionIdleMinutes, 15);
  EXPECT_EQ(c.sessionMaxHours, 2);
  EXPECT_EQ(c.logLevel, LogLevel::Warn);
}

TEST_F(ConfigTest, EveryDocumentedKeyIsAccepted) {
  // keys() feeds --help and the README: each key listed there must really work.
  const std::vector<std::pair<std::string, std::string>> samples = {
      {"db.dsn", "host=/tmp"},
      {"db.embedded_user", "postgres"},
      {"db.pg_bindir", "/usr/bin"},
      {"db.pool_size", "2"},
      {"db.migrations_dir", "/m"},
      {"http.listen", "::1"},
      {"https.port", "0"},
      {"http.port", "80"},
      {"http.max_body_bytes", "4096"},
      {"http.threads", "8"},
      {"tls.cert_file", "/c.pem"},
      {"tls.key_file", "/k.pem"},
      {"webui.dir", "/w"},
      {"session.idle_minutes", "5"},
      {"session.max_hours", "1"},
      {"log.level", "debug"},
      {"bridge_events.listen", "0.0.0.0"},
      {"bridge_events.port", "-1"},
      {"conference.prelaunch_seconds", "10"},
      {"conference.empty_grace_seconds", "30"},
      {"conference.reconcile_seconds", "5"},
      {"conference.reconcile_workers", "2"},
      {"bridge.probe_seconds", "3"},
      {"uploads.expire_minutes", "90"},
      {"uploads.max_total_mb", "2048"},
      {"db.strict_leases", "true"},
      {"events.max_per_session", "1"},
      {"events.max_per_user", "3"},
      {"events.max_streams", "8"},
      {"audit.retention_days", "30"},
      {"audit.max_rows", "5000"},
      {"audit.prune_seconds", "60"},
      {"licence.keyring", "/etc/vcrm/licence-keyring"},
      {"upgrade.keyring", "/etc/vcrm/bundle-keyring"},
  };
  ASSERT_EQ(Config::keys().size(), samples.size()) << "a key was added: extend this test";
  for (const auto& [key, description] : Config::keys()) {
    EXPECT_FALSE(description.empty()) << key;
    auto it =
        std::find_if(samples.begin(), samples.end(), [&](const auto& s) { return s.first == key; });
    ASSERT_NE(it, samples.end()) << "no sample value for " << key;
    EXPECT_NO_THROW(Config::load(dir_.path(), {key + "=" + it->second})) << key;
  }
}

TEST_F(ConfigTest, ReconcileWorkersAreBounded) {
  EXPECT_EQ(Config::load(dir_.path(), {"conference.reconcile_workers=16"}).reconcileWorkers, 16);
  EXPECT_EQ(Config::load(dir_.path(), {}).reconcileWorkers, 4);
  for (const char* bad : {"0", "17", "-1", "four", ""}) {
    EXPECT_THROW(Config::load(dir_.path(), {std::string("conference.reconcile_workers=") + bad}), ConfigError) << bad;
  }
}

TEST_F(ConfigTest, UploadExpiryAndQuotaAreBounded) {
  const Config defaults = Config::load(dir_.path(), {});
  EXPECT_EQ(defaults.uploadExpireMinutes, 1440);
  EXPECT_EQ(defaults.uploadMaxTotalMb, 16384u);
  const Config c = Config::load(dir_.path(), {"uploads.expire_minutes=43200", "uploads.max_total_mb=1"});
  EXPECT_EQ(c.uploadExpireMinutes, 43200);
  EXPECT_EQ(c.uploadMaxTotalMb, 1u);
  for (const char* bad : {"0", "43201", "-5", "1h", ""}) {
    EXPECT_THROW(Config::load(dir_.path(), {std::string("uploads.expire_minutes=") + bad}), ConfigError) << bad;
  }
  for (const char* bad : {"0", "16777217", "-1", "2G", ""}) {
    EXPECT_THROW(Config::load(dir_.path(), {std::string("uploads.max_total_mb=") + bad}), ConfigError) << bad;
  }
}

TEST_F(ConfigTest, EventStreamCapsAndAuditRetentionAreBounded) {
  // Each key: its field, its default, the extremes it takes, and values it refuses.
  struct Bounded {
    const char* key;
    std::function<std::int64_t(const Config&)> field;
    std::int64_t byDefault;
    std::vector<const char*> good;
    std::vector<const char*> bad;
  };
  const std::vector<Bounded> keys = {
      {"events.max_per_session",
       [](const Config& c) { return c.eventsMaxPerSession; },
       2,
       {"1", "64"},
       {"0", "65", "-1", "two", ""}},
      {"events.max_per_user",
       [](const Config& c) { return c.eventsMaxPerUser; },
       4,
       {"1", "256"},
       {"0", "257", "x"}},
      // 0: a quarter of http.threads
      {"events.max_streams",
       [](const Config& c) { return c.eventsMaxStreams; },
       0,
       {"0", "128"},
       {"-1", "129", "all"}},
      {"audit.retention_days",
       [](const Config& c) { return c.auditRetentionDays; },
       365,
       {"1", "36500"},
       {"0", "36501", "-1", "1y", ""}},
      {"audit.max_rows",
       [](const Config& c) { return c.auditMaxRows; },
       1000000,
       {"100", "1000000000"},
       {"99", "1000000001", "1M"}},
      {"audit.prune_seconds",
       [](const Config& c) { return c.auditPruneSeconds; },
       600,
       {"1", "86400"},
       {"0", "86401", "10m"}},
  };
  const Config defaults = Config::load(dir_.path(), {});
  for (const auto& k : keys) {
    EXPECT_EQ(k.field(defaults), k.byDefault) << k.key;
    for (const char* good : k.good) {
      EXPECT_EQ(k.field(Config::load(dir_.path(), {std::string(k.key) + "=" + good})),
                std::stoll(good))
          << k.key;
    }
    for (const char* bad : k.bad) {
      EXPECT_THROW(Config::load(dir_.path(), {std::string(k.key) + "=" + bad}), ConfigError)
          << k.key << "=" << bad;
    }
  }
}

TEST_F(ConfigTest, CommandLineOverridesApplyAfterTheFile) {
  writeConfig("https.port = 9443\nhttp.port = 9080\nlog.level = error\n");
  const Config c =
      Config::load(dir_.path(), {"https.port=10443", " log.level = debug ", "https.port=11443"});
  EXPECT_EQ(c.httpsPort, 11443);  // the last override wins
  EXPECT_EQ(c.httpPort, 9080);    // the file's value stays where nothing overrides it
  EXPECT_EQ(c.logLevel, LogLevel::Debug);
}

TEST_F(ConfigTest, CommandLineOverrideWithoutEqualsIsRefused) {
  const std::string msg = loadError({"https.port"});
  EXPECT_NE(msg.find("command line"), std::string::npos) << msg;
  EXPECT_NE(msg.find("https.port"), std::string::npos) << msg;
  EXPECT_NE(loadError({"=8443"}).find("key=value"), std::string::npos);
}

TEST_F(ConfigTest, CommandLineOverrideWithBadValueNamesTheKey) {
  const std::string msg = loadError({"db.pool_size=0"});
  EXPECT_NE(msg.find("command line"), std::string::npos) << msg;
  EXPECT_NE(msg.find("db.pool_size"), std::string::npos) << msg;
  EXPECT_NE(msg.find("1 to 64"), std::string::npos) << msg;
}

TEST_F(ConfigTest, UnknownKeyListsTheKnownKeys) {
  const std::string msg = fileError("# ok\nhttps.prot = 8443\n", 2);
  EXPECT_NE(msg.find("https.prot"), std::string::npos) << msg;
  for (const auto& [key, _] : Config::keys()) {
    EXPECT_NE(msg.find(key), std::string::npos) << "known key " << key << " not listed: " << msg;
  }
}

TEST_F(ConfigTest, LineWithoutEqualsIsRefused) {
  const std::string msg = fileError("https.port 8443\n", 1);
  EXPECT_NE(msg.find("https.port 8443"), std::string::npos) << msg;
  EXPECT_NE(msg.find("key = value"), std::string::npos) << msg;
}

TEST_F(ConfigTest, EmptyKeyIsRefused) {
  const std::string msg = fileError("\n\n = 8443\n", 3);
  EXPECT_NE(msg.find("missing key"), std::string::npos) << msg;
}

TEST_F(ConfigTest, DuplicateKeyIsRefused) {
  const std::string msg = fileError("https.port = 8443\nhttp.port = 8080\nhttps.port = 9443\n", 3);
  EXPECT_NE(msg.find("https.port"), std::string::npos) << msg;
  EXPECT_NE(msg.find("twice"), std::string::npos) << msg;
}

TEST_F(ConfigTest, NonNumericPortIsRefused) {
  const std::string msg = fileError("https.port = eighty\n", 1);
  EXPECT_NE(msg.find("https.port"), std::string::npos) << msg;
  EXPECT_NE(msg.find("eighty"), std::string::npos) << msg;
  EXPECT_NE(msg.find("0 to 65535"), std::string::npos) << msg;
}

TEST_F(ConfigTest, PortWithTrailingJunkIsRefused) {
  const std::string msg = fileError("http.port = 80x\n", 1);
  EXPECT_NE(msg.find("http.port"), std::string::npos) << msg;
}

TEST_F(ConfigTest, OutOfRangePortIsRefused) {
  const std::string msg = fileError("\nhttps.port = 70000\n", 2);
  EXPECT_NE(msg.find("https.port"), std::string::npos) << msg;
  EXPECT_NE(msg.find("70000"), std::string::npos) << msg;
  EXPECT_NE(msg.find("65535"), std::string::npos) << msg;
}

TEST_F(ConfigTest, HugeNumberDoesNotWrapAround) {
  // 2^64 + 8443 must not silently become 8443.
  const std::string msg = fileError("https.port = 18446744073709560059\n", 1);
  EXPECT_NE(msg.find("https.port"), std::string::npos) << msg;
}

TEST_F(ConfigTest, NegativePoolSizeIsRefused) {
  const std::string msg = fileError("db.pool_size = -3\n", 1);
  EXPECT_NE(msg.find("db.pool_size"), std::string::npos) << msg;
  EXPECT_NE(msg.find("-3"), std::string::npos) << msg;
}

TEST_F(ConfigTest, RelativePathIsRefusedForEveryPathKey) {
  for (const char* key :
       {"db.pg_bindir", "db.migrations_dir", "tls.cert_file", "tls.key_file", "webui.dir"}) {
    SCOPED_TRACE(key);
    const std::string msg = fileError(std::string(key) + " = etc/relative\n", 1);
    EXPECT_NE(msg.find(key), std::string::npos) << msg;
    EXPECT_NE(msg.find("absolute path"), std::string::npos) << msg;
  }
}

TEST_F(ConfigTest, NulCharacterInALineIsRefused) {
  std::string text = "http.listen = 127.0.0.1\ndb.dsn = host=a";
  text += '\0';
  text += "b\n";
  const std::string msg = fileError(text, 2);
  EXPECT_NE(msg.find("control character"), std::string::npos) << msg;
}

TEST_F(ConfigTest, EscapeCharacterInALineIsRefused) {
  const std::string msg = fileError("# fine\n\nhttp.listen = \x1b[31m127.0.0.1\n", 3);
  EXPECT_NE(msg.find("control character"), std::string::npos) << msg;
}

TEST_F(ConfigTest, BadLogLevelIsRefused) {
  const std::string msg = fileError("log.level = verbose\n", 1);
  EXPECT_NE(msg.find("log.level"), std::string::npos) << msg;
  EXPECT_NE(msg.find("verbose"), std::string::npos) << msg;
  EXPECT_NE(msg.find("debug, info, warn, error"), std::string::npos) << msg;
}

TEST_F(ConfigTest, EmptyRequiredValuesAreRefused) {
  EXPECT_NE(fileError("db.embedded_user =\n", 1).find("db.embedded_user"), std::string::npos);
  EXPECT_NE(fileError("http.listen = \"\"\n", 1).find("http.listen"), std::string::npos);
}

TEST_F(ConfigTest, OversizedFileIsRefusedWithoutReadingIt) {
  // 1 MiB of comments: far above the 64 KiB limit a configuration file may have.
  std::string big;
  big.reserve(1 << 20);
  while (big.size() < (1u << 20)) big += "# padding padding padding padding padding padding\n";
  writeConfig(big);
  const std::string msg = loadError();
  EXPECT_NE(msg.find(conf().string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("limit"), std::string::npos) << msg;
}

TEST_F(ConfigTest, RelativeOrEmptyRootIsRefused) {
  for (const char* root : {"", "relative/root", "./x"}) {
    try {
      Config::load(root, {});
      ADD_FAILURE() << "accepted root \"" << root << "\"";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("absolute"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(std::string("\"") + root + "\""), std::string::npos)
          << e.what();
    }
  }
}

TEST_F(ConfigTest, FailedLoadThrowsEvenAfterGoodLines) {
  // Good settings before the bad one must not leak out as a half-applied configuration:
  // load() has nothing to return but the exception.
  writeConfig("https.port = 9443\nhttp.port = 9080\nlog.level = loud\n");
  EXPECT_THROW(Config::load(dir_.path(), {}), ConfigError);
  writeConfig("https.port = 9443\n");
  EXPECT_THROW(Config::load(dir_.path(), {"https.port=1", "nope=1"}), ConfigError);
}

TEST_F(ConfigTest, ConfigErrorHasStableCode) {
  writeConfig("nope = 1\n");
  try {
    Config::load(dir_.path(), {});
    FAIL() << "accepted an unknown key";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), "config_error");
  }
}

}  // namespace
}  // namespace vcrm
