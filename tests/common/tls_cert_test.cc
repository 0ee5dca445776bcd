// The appliance's self-signed certificate, checked the way a TLS client would: parsed and
// verified by OpenSSL itself, not by re-reading our own code's assumptions.
#include "vcrm/common/tls_cert.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <climits>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <memory>
#include <set>
#include <string>

#include "vcrm/common/error.h"
#include "vcrm/common/files.h"

namespace vcrm::tls {
namespace {

template <auto FreeFn>
struct FreeDeleter {
  template <typename T>
  void operator()(T* p) const {
    FreeFn(p);
  }
};
using X509Ptr = std::unique_ptr<X509, FreeDeleter<X509_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, FreeDeleter<EVP_PKEY_free>>;
using BioPtr = std::unique_ptr<BIO, FreeDeleter<BIO_free_all>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, FreeDeleter<GENERAL_NAMES_free>>;
using StorePtr = std::unique_ptr<X509_STORE, FreeDeleter<X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, FreeDeleter<X509_STORE_CTX_free>>;

X509Ptr parseCert(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

PkeyPtr parseKey(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return PkeyPtr(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

struct AltNames {
  std::set<std::string> dns;
  std::set<std::string> ips;
};

AltNames altNamesOf(X509* cert) {
  AltNames out;
  GeneralNamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (!names) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type == GEN_DNS) {
      const ASN1_IA5STRING* s = name->d.dNSName;
      out.dns.emplace(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                      static_cast<std::size_t>(ASN1_STRING_length(s)));
    } else if (name->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* s = name->d.iPAddress;
      std::array<char, INET6_ADDRSTRLEN> text{};
      const int family = ASN1_STRING_length(s) == 4 ? AF_INET : AF_INET6;
      inet_ntop(family, ASN1_STRING_get0_data(s), text.data(), text.size());
      out.ips.emplace(text.data());
    }
  }
  return out;
}

std::string commonNameOf(X509* cert) {
  std::array<char, 256> buffer{};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buffer.data(),
                            static_cast<int>(buffer.size()));
  return buffer.data();
}

// Verifies the way a client that pinned this certificate would: it is its own trust anchor.
bool verifiesAgainstItself(X509* cert) {
  StorePtr store(X509_STORE_new());
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!store || !ctx || X509_STORE_add_cert(store.get(), cert) != 1) return false;
  if (X509_STORE_CTX_init(ctx.get(), store.get(), cert, nullptr) != 1) return false;
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER);
  const bool ok = X509_verify_cert(ctx.get()) == 1;
  if (!ok) {
    ADD_FAILURE() << "verification error: "
                  << X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
  }
  return ok;
}

class TlsCertTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = "/tmp/vcrm-tls-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  static SelfSignedRequest sampleRequest() {
    SelfSignedRequest request;
    request.commonName = "vcrm.example.test";
    request.dnsNames = {"vcrm.example.test", "localhost"};
    request.ipAddresses = {"192.0.2.10", "2001:db8::5", "127.0.0.1"};
    request.validDays = 30;
    return request;
  }

  std::filesystem::path dir_;
};

TEST_F(TlsCertTest, GeneratedCertificateParsesAndCarriesRequestedNames) {
  const PemPair pair = makeSelfSigned(sampleRequest());
  X509Ptr cert = parseCert(pair.certificatePem);
  ASSERT_TRUE(cert) << pair.certificatePem;

  EXPECT_EQ(X509_get_version(cert.get()), X509_VERSION_3);
  EXPECT_EQ(commonNameOf(cert.get()), "vcrm.example.test");
  const AltNames names = altNamesOf(cert.get());
  EXPECT_EQ(names.dns, (std::set<std::string>{"vcrm.example.test", "localhost"}));
  EXPECT_EQ(names.ips, (std::set<std::string>{"192.0.2.10", "2001:db8::5", "127.0.0.1"}));
  // What a client does with the names: match the host it connected to.
  EXPECT_EQ(X509_check_host(cert.get(), "vcrm.example.test", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "2001:db8::5", 0), 1);
  EXPECT_NE(X509_check_host(cert.get(), "other.example.test", 0, 0, nullptr), 1);
}

TEST_F(TlsCertTest, KeyIsPkcs8EcP256AndMatchesCertificate) {
  const PemPair pair = makeSelfSigned(sampleRequest());
  EXPECT_TRUE(pair.privateKeyPem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
  X509Ptr cert = parseCert(pair.certificatePem);
  PkeyPtr key = parseKey(pair.privateKeyPem);
  ASSERT_TRUE(cert);
  ASSERT_TRUE(key);
  EXPECT_EQ(X509_check_private_key(cert.get(), key.get()), 1);

  std::array<char, 64> group{};
  ASSERT_EQ(EVP_PKEY_get_group_name(key.get(), group.data(), group.size(), nullptr), 1);
  EXPECT_STREQ(group.data(), "prime256v1");
  EXPECT_EQ(X509_get_signature_nid(cert.get()), NID_ecdsa_with_SHA256);

  // A key from another run must not match.
  PkeyPtr otherKey = parseKey(makeSelfSigned(sampleRequest()).privateKeyPem);
  EXPECT_NE(X509_check_private_key(cert.get(), otherKey.get()), 1);
}

TEST_F(TlsCertTest, IsSelfSignedAndVerifiable) {
  X509Ptr cert = parseCert(makeSelfSigned(sampleRequest()).certificatePem);
  ASSERT_TRUE(cert);
  EXPECT_EQ(X509_NAME_cmp(X509_get_subject_name(cert.get()), X509_get_issuer_name(cert.get())), 0);
  EXPECT_EQ(X509_verify(cert.get(), X509_get0_pubkey(cert.get())), 1);
  EXPECT_TRUE(verifiesAgainstItself(cert.get()));
}

TEST_F(TlsCertTest, ExtensionsMarkAServerLeaf) {
  X509Ptr cert = parseCert(makeSelfSigned(sampleRequest()).certificatePem);
  ASSERT_TRUE(cert);
  EXPECT_EQ(X509_check_ca(cert.get()), 0);
  const uint32_t flags = X509_get_extension_flags(cert.get());
  EXPECT_TRUE(flags & EXFLAG_BCONS);
  EXPECT_FALSE(flags & EXFLAG_CA);
  EXPECT_EQ(X509_get_key_usage(cert.get()), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_EQ(X509_get_extended_key_usage(cert.get()), static_cast<uint32_t>(XKU_SSL_SERVER));
  EXPECT_EQ(X509_check_purpose(cert.get(), X509_PURPOSE_SSL_SERVER, 0), 1);
}

TEST_F(TlsCertTest, ValidityCoversNowForRequestedDays) {
  X509Ptr cert = parseCert(makeSelfSigned(sampleRequest()).certificatePem);
  ASSERT_TRUE(cert);
  EXPECT_LT(X509_cmp_current_time(X509_get0_notBefore(cert.get())), 0);
  EXPECT_GT(X509_cmp_current_time(X509_get0_notAfter(cert.get())), 0);
  // 30 days asked for: still valid in 29 days, expired in 31.
  constexpr time_t kDay = 86400;
  time_t in29 = std::time(nullptr) + 29 * kDay;
  time_t in31 = std::time(nullptr) + 31 * kDay;
  EXPECT_GT(X509_cmp_time(X509_get0_notAfter(cert.get()), &in29), 0);
  EXPECT_LT(X509_cmp_time(X509_get0_notAfter(cert.get()), &in31), 0);
}

TEST_F(TlsCertTest, SerialIsRandomAndPositive) {
  X509Ptr a = parseCert(makeSelfSigned(sampleRequest()).certificatePem);
  X509Ptr b = parseCert(makeSelfSigned(sampleRequest()).certificatePem);
  ASSERT_TRUE(a && b);
  const ASN1_INTEGER* sa = X509_get0_serialNumber(a.get());
  const ASN1_INTEGER* sb = X509_get0_serialNumber(b.get());
  EXPECT_NE(ASN1_INTEGER_cmp(sa, sb), 0);
  EXPECT_EQ(ASN1_STRING_type(sa), V_ASN1_INTEGER);  // not V_ASN1_NEG_INTEGER
  EXPECT_LE(ASN1_STRING_length(sa), 20);
  EXPECT_GE(ASN1_STRING_length(sa), 8);
}

TEST_F(TlsCertTest, BadRequestsAreInvalidInput) {
  SelfSignedRequest badIp = sampleRequest();
  badIp.ipAddresses = {"10.0.0.1junk"};
  EXPECT_THROW(makeSelfSigned(badIp), InvalidInput);
  badIp.ipAddresses = {"fe80::1%eth0"};
  EXPECT_THROW(makeSelfSigned(badIp), InvalidInput);

  SelfSignedRequest badDns = sampleRequest();
  badDns.dnsNames = {"evil.example, DNS:other"};
  EXPECT_THROW(makeSelfSigned(badDns), InvalidInput);
  badDns.dnsNames = {""};
  EXPECT_THROW(makeSelfSigned(badDns), InvalidInput);

  SelfSignedRequest noCn = sampleRequest();
  noCn.commonName.clear();
  EXPECT_THROW(makeSelfSigned(noCn), InvalidInput);
  noCn.commonName = std::string(65, 'a');
  EXPECT_THROW(makeSelfSigned(noCn), InvalidInput);

  SelfSignedRequest noNames = sampleRequest();
  noNames.dnsNames.clear();
  noNames.ipAddresses.clear();
  EXPECT_THROW(makeSelfSigned(noNames), InvalidInput);

  SelfSignedRequest noDays = sampleRequest();
  noDays.validDays = 0;
  EXPECT_THROW(makeSelfSigned(noDays), InvalidInput);
}

TEST_F(TlsCertTest, DefaultRequestNamesThisHost) {
  const SelfSignedRequest request = defaultRequestForThisHost();
  std::array<char, HOST_NAME_MAX + 1> host{};
  ASSERT_EQ(gethostname(host.data(), host.size() - 1), 0);
  std::string hostname = host.data();
  std::transform(hostname.begin(), hostname.end(), hostname.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });

  auto has = [](const std::vector<std::string>& list, const std::string& value) {
    return std::find(list.begin(), list.end(), value) != list.end();
  };
  EXPECT_TRUE(has(request.dnsNames, "localhost"));
  EXPECT_TRUE(has(request.dnsNames, hostname)) << hostname;
  EXPECT_TRUE(has(request.ipAddresses, "127.0.0.1"));
  EXPECT_TRUE(has(request.ipAddresses, "::1"));
  EXPECT_FALSE(request.commonName.empty());
  for (const auto& ip : request.ipAddresses) {
    EXPECT_FALSE(ip.starts_with("fe80:")) << "link-local address " << ip;
  }
  EXPECT_EQ(std::set<std::string>(request.ipAddresses.begin(), request.ipAddresses.end()).size(),
            request.ipAddresses.size())
      << "duplicate addresses";

  // And it makes a certificate that names those addresses.
  X509Ptr cert = parseCert(makeSelfSigned(request).certificatePem);
  ASSERT_TRUE(cert);
  const AltNames names = altNamesOf(cert.get());
  EXPECT_EQ(names.ips.size(), request.ipAddresses.size());
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_host(cert.get(), "localhost", 0, 0, nullptr), 1);
}

TEST_F(TlsCertTest, EnsureSelfSignedCreatesOnceWithPrivateKeyMode) {
  const auto certFile = dir_ / "etc" / "tls" / "server.crt";
  const auto keyFile = dir_ / "etc" / "tls" / "server.key";

  ASSERT_TRUE(ensureSelfSigned(certFile, keyFile));
  struct stat st {};
  ASSERT_EQ(stat(keyFile.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(stat(certFile.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  ASSERT_EQ(stat(certFile.parent_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);

  const std::string certPem = files::readFile(certFile);
  const std::string keyPem = files::readFile(keyFile);
  X509Ptr cert = parseCert(certPem);
  PkeyPtr key = parseKey(keyPem);
  ASSERT_TRUE(cert && key);
  EXPECT_EQ(X509_check_private_key(cert.get(), key.get()), 1);

  EXPECT_FALSE(ensureSelfSigned(certFile, keyFile));
  EXPECT_EQ(files::readFile(certFile), certPem);
  EXPECT_EQ(files::readFile(keyFile), keyPem);

  // No temporary files are left beside them.
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& entry :
       std::filesystem::directory_iterator(certFile.parent_path())) {
    ++entries;
  }
  EXPECT_EQ(entries, 2u);
}

TEST_F(TlsCertTest, EnsureSelfSignedReplacesBothWhenOneIsMissing) {
  const auto certFile = dir_ / "server.crt";
  const auto keyFile = dir_ / "server.key";
  ASSERT_TRUE(ensureSelfSigned(certFile, keyFile));
  const std::string oldCert = files::readFile(certFile);

  std::filesystem::remove(keyFile);
  ASSERT_TRUE(ensureSelfSigned(certFile, keyFile));
  const std::string newCert = files::readFile(certFile);
  EXPECT_NE(newCert, oldCert);
  X509Ptr cert = parseCert(newCert);
  PkeyPtr key = parseKey(files::readFile(keyFile));
  ASSERT_TRUE(cert && key);
  EXPECT_EQ(X509_check_private_key(cert.get(), key.get()), 1);

  std::filesystem::remove(certFile);
  ASSERT_TRUE(ensureSelfSigned(certFile, keyFile));
  cert = parseCert(files::readFile(certFile));
  key = parseKey(files::readFile(keyFile));
  ASSERT_TRUE(cert && key);
  EXPECT_EQ(X509_check_private_key(cert.get(), key.get()), 1);
}

TEST_F(TlsCertTest, EnsureSelfSignedFailsWithIoErrorWhenDirectoryCannotBeMade) {
  files::atomicWrite(dir_ / "plain", "not a directory");
  EXPECT_THROW(ensureSelfSigned(dir_ / "plain" / "server.crt", dir_ / "plain" / "server.key"),
               IoError);
}

}  // namespace
}  // namespace vcrm::tls
