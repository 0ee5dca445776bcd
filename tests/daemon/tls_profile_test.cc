// The HTTPS listener's TLS profile, tried with openssl s_client as an auditor would: TLS 1.3 and
// TLS 1.2 with ECDHE and AEAD suites are accepted, the server's order wins, and older protocols,
// static-RSA key exchange and CBC suites are refused.
#include <gtest/gtest.h>

#include "vcrm/common/process.h"
#include "vcrmd_process.h"

using vcrm::test::VcrmdProcess;

namespace {

class TlsProfileTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    app_ = new VcrmdProcess();
    app_->start();
  }
  static void TearDownTestSuite() {
    delete app_;
    app_ = nullptr;
  }
  // s_client's transcript; the handshake succeeded when it names a cipher other than "(NONE)".
  // SECLEVEL=0 on our side, so that a refusal is the server's and not the client's.
  static std::string handshake(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"/usr/bin/openssl", "s_client", "-connect",
                                     "127.0.0.1:" + std::to_string(app_->httpsPort()), "-brief"};
    argv.insert(argv.end(), args.begin(), args.end());
    vcrm::process::Options o;
    o.timeout = std::chrono::seconds(20);
    const auto out = vcrm::process::run(argv, o);
    return out.output;
  }
  static bool accepted(const std::string& transcript) {
    return transcript.find("CONNECTION ESTABLISHED") != std::string::npos;
  }
  static VcrmdProcess* app_;
};
VcrmdProcess* TlsProfileTest::app_ = nullptr;

TEST_F(TlsProfileTest, Tls13IsAccepted) {
  const auto t = handshake({"-tls1_3"});
  EXPECT_TRUE(accepted(t)) << t;
  EXPECT_NE(t.find("TLSv1.3"), std::string::npos) << t;
}

TEST_F(TlsProfileTest, Tls12WithEcdheAndAeadIsAccepted) {
  for (const char* suite : {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"}) {
    const auto t = handshake({"-tls1_2", "-cipher", std::string(suite) + ":@SECLEVEL=0"});
    EXPECT_TRUE(accepted(t)) << suite << ": " << t;
  }
}

TEST_F(TlsProfileTest, CbcAndNonForwardSecretSuitesAreRefused) {
  for (const char* suite : {"ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384", "AES128-GCM-SHA256",
                            "AES128-SHA", "DHE-RSA-AES128-GCM-SHA256"}) {
    const auto t = handshake({"-tls1_2", "-cipher", std::string(suite) + ":@SECLEVEL=0"});
    EXPECT_FALSE(accepted(t)) << suite << " was accepted: " << t;
  }
}

TEST_F(TlsProfileTest, Tls11AndTls10AreRefused) {
  for (const char* version : {"-tls1_1", "-tls1"}) {
    const auto t = handshake({version, "-cipher", "DEFAULT:@SECLEVEL=0"});
    EXPECT_FALSE(accepted(t)) << version << " was accepted: " << t;
  }
}

TEST_F(TlsProfileTest, TheServersOrderWins) {
  // The client prefers CHACHA20 and lists it first; the server's first choice is AES128-GCM.
  const auto t = handshake({"-tls1_2", "-cipher",
                            "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:@SECLEVEL=0"});
  ASSERT_TRUE(accepted(t)) << t;
  EXPECT_NE(t.find("ECDHE-ECDSA-AES128-GCM-SHA256"), std::string::npos) << t;
}

}  // namespace
