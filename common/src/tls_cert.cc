#include "vcrm/common/tls_cert.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <climits>
#include <memory>
#include <system_error>

#include "vcrm/common/crypto.h"
#include "vcrm/common/error.h"
#include "vcrm/common/files.h"
#include "ossl_ptr.h"

namespace vcrm::tls {

namespace {

using X509Ptr = detail::OsslPtr<X509, X509_free>;
using X509NamePtr = detail::OsslPtr<X509_NAME, X509_NAME_free>;
using X509ExtensionPtr = detail::OsslPtr<X509_EXTENSION, X509_EXTENSION_free>;
using PkeyPtr = detail::OsslPtr<EVP_PKEY, EVP_PKEY_free>;
using PkeyCtxPtr = detail::OsslPtr<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using BignumPtr = detail::OsslPtr<BIGNUM, BN_free>;
using Asn1IntegerPtr = detail::OsslPtr<ASN1_INTEGER, ASN1_INTEGER_free>;
using Asn1BitStringPtr = detail::OsslPtr<ASN1_BIT_STRING, ASN1_BIT_STRING_free>;
using Asn1OctetStringPtr = detail::OsslPtr<ASN1_OCTET_STRING, ASN1_OCTET_STRING_free>;
using Asn1Ia5StringPtr = detail::OsslPtr<ASN1_IA5STRING, ASN1_IA5STRING_free>;
using BasicConstraintsPtr = detail::OsslPtr<BASIC_CONSTRAINTS, BASIC_CONSTRAINTS_free>;
using ExtendedKeyUsagePtr =
    detail::OsslPtr<EXTENDED_KEY_USAGE, EXTENDED_KEY_USAGE_free>;
using GeneralNamePtr = detail::OsslPtr<GENERAL_NAME, GENERAL_NAME_free>;
using GeneralNamesPtr = detail::OsslPtr<GENERAL_NAMES, GENERAL_NAMES_free>;
using BioPtr = detail::OsslPtr<BIO, BIO_free_all>;
using IfAddrsPtr = detail::OsslPtr<ifaddrs, freeifaddrs>;

// X.520 upper bound for a commonName.
constexpr std::size_t kMaxCommonName = 64;
constexpr std::size_t kMaxDnsName = 253;
// Browsers and the appliance's clock may disagree by a few minutes; an hour of slack avoids
// a freshly generated certificate being "not yet valid" to them.
constexpr long kBackdateSeconds = 3600;

[[noreturn]] void throwOpenSsl(const std::string& what) {
  std::string details;
  unsigned long code = 0;
  while ((code = ERR_get_error()) != 0) {
    std::array<char, 256> buffer{};
    ERR_error_string_n(code, buffer.data(), buffer.size());
    if (!details.empty()) details += "; ";
    details += buffer.data();
  }
  throw CryptoError("TLS certificate: " + what +
                    (details.empty() ? std::string() : " (OpenSSL: " + details + ")"));
}

// Letters, digits, '-', '.', '_' and a '*' for wildcards: enough for host names and keeps
// anything that could be misread by a certificate parser (spaces, commas, non-ASCII) out.
bool isUsableDnsName(std::string_view name) {
  if (name.empty() || name.size() > kMaxDnsName) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '.' || c == '_' ||
           c == '*';
  });
}

std::string lowercase(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  });
  return s;
}

void pushUnique(std::vector<std::string>& list, std::string value) {
  if (std::find(list.begin(), list.end(), value) == list.end()) list.push_back(std::move(value));
}

void addExtension(X509* cert, int nid, void* value, bool critical, const char* name) {
  if (X509_add1_ext_i2d(cert, nid, value, critical ? 1 : 0, X509V3_ADD_DEFAULT) != 1) {
    throwOpenSsl(std::string("cannot add the ") + name + " extension");
  }
}

GeneralNamesPtr buildSubjectAltNames(const SelfSignedRequest& request) {
  GeneralNamesPtr names(GENERAL_NAMES_new());
  if (!names) throwOpenSsl("cannot allocate subjectAltName");

  auto push = [&](int type, void* value) {
    GeneralNamePtr entry(GENERAL_NAME_new());
    if (!entry) throwOpenSsl("cannot allocate a subjectAltName entry");
    GENERAL_NAME_set0_value(entry.get(), type, value);
    if (sk_GENERAL_NAME_push(names.get(), entry.get()) <= 0) {
      throwOpenSsl("cannot add a subjectAltName entry");
    }
    static_cast<void>(entry.release());  // now owned by `names`
  };

  for (const auto& dns : request.dnsNames) {
    if (!isUsableDnsName(dns)) {
      throw InvalidInput("TLS certificate: \"" + dns +
                         "\" is not a usable DNS name; use letters, digits, '-' and '.' only");
    }
    Asn1Ia5StringPtr text(ASN1_IA5STRING_new());
    if (!text || ASN1_STRING_set(text.get(), dns.data(), static_cast<int>(dns.size())) != 1) {
      throwOpenSsl("cannot store a DNS name");
    }
    push(GEN_DNS, text.get());
    static_cast<void>(text.release());  // now owned by the entry
  }

  for (const auto& ip : request.ipAddresses) {
    // inet_pton rather than OpenSSL's lenient parser, so "10.0.0.1junk" is refused, not trimmed.
    std::array<unsigned char, sizeof(in6_addr)> raw{};
    int size = 0;
    if (::inet_pton(AF_INET, ip.c_str(), raw.data()) == 1) {
      size = 4;
    } else if (::inet_pton(AF_INET6, ip.c_str(), raw.data()) == 1) {
      size = 16;
    } else {
      throw InvalidInput("TLS certificate: \"" + ip +
                         "\" is not an IPv4 or IPv6 address (no zone suffix such as %eth0)");
    }
    Asn1OctetStringPtr octets(ASN1_OCTET_STRING_new());
    if (!octets || ASN1_OCTET_STRING_set(octets.get(), raw.data(), size) != 1) {
      throwOpenSsl("cannot store an IP address");
    }
    push(GEN_IPADD, octets.get());
    static_cast<void>(octets.release());  // now owned by the entry
  }
  return names;
}

std::string bioToString(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  if (len <= 0 || data == nullptr) throwOpenSsl("PEM encoding produced no output");
  return {data, static_cast<std::size_t>(len)};
}

bool pathExists(const std::filesystem::path& path) {
  std::error_code ec;
  const bool found = std::filesystem::exists(path, ec);
  if (ec) throw IoError("cannot examine " + path.string() + ": " + ec.message());
  return found;
}

}  // namespace

PemPair makeSelfSigned(const SelfSignedRequest& request) {
  if (request.commonName.empty() || request.commonName.size() > kMaxCommonName) {
    throw InvalidInput("TLS certificate: the common name must be 1 to 64 characters, got " +
                       std::to_string(request.commonName.size()));
  }
  if (request.dnsNames.empty() && request.ipAddresses.empty()) {
    // Browsers ignore the common name; without subjectAltName no client would accept the cert.
    throw InvalidInput("TLS certificate: give at least one DNS name or IP address");
  }
  if (request.validDays <= 0) {
    throw InvalidInput("TLS certificate: validDays must be positive, got " +
                       std::to_string(request.validDays));
  }
  GeneralNamesPtr altNames = buildSubjectAltNames(request);

  PkeyCtxPtr keyCtx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  if (!keyCtx || EVP_PKEY_keygen_init(keyCtx.get()) != 1 ||
      EVP_PKEY_CTX_set_group_name(keyCtx.get(), "P-256") != 1) {
    throwOpenSsl("cannot set up EC P-256 key generation");
  }
  EVP_PKEY* rawKey = nullptr;
  if (EVP_PKEY_generate(keyCtx.get(), &rawKey) != 1) throwOpenSsl("cannot generate the key");
  PkeyPtr key(rawKey);

  X509Ptr cert(X509_new());
  if (!cert) throwOpenSsl("cannot allocate a certificate");
  if (X509_set_version(cert.get(), X509_VERSION_3) != 1) throwOpenSsl("cannot set the version");

  // RFC 5280 asks for unpredictable serials of up to 20 octets; 128 random bits fit with the
  // sign octet DER may add.
  const crypto::Bytes serialBytes = crypto::randomBytes(16);
  BignumPtr serialBn(BN_bin2bn(reinterpret_cast<const unsigned char*>(serialBytes.data()),
                               static_cast<int>(serialBytes.size()), nullptr));
  if (!serialBn) throwOpenSsl("cannot build the serial number");
  if (BN_is_zero(serialBn.get()) && BN_set_word(serialBn.get(), 1) != 1) {
    throwOpenSsl("cannot build the serial number");  // zero is not a valid serial
  }
  Asn1IntegerPtr serial(BN_to_ASN1_INTEGER(serialBn.get(), nullptr));
  if (!serial || X509_set_serialNumber(cert.get(), serial.get()) != 1) {
    throwOpenSsl("cannot set the serial number");
  }

  if (X509_gmtime_adj(X509_getm_notBefore(cert.get()), -kBackdateSeconds) == nullptr ||
      X509_time_adj_ex(X509_getm_notAfter(cert.get()), request.validDays, 0, nullptr) == nullptr) {
    throwOpenSsl("cannot set the validity period");
  }

  X509NamePtr name(X509_NAME_new());
  if (!name ||
      X509_NAME_add_entry_by_NID(name.get(), NID_commonName, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(request.commonName.c_str()),
                                 -1, -1, 0) != 1) {
    throwOpenSsl("cannot set the common name \"" + request.commonName + "\"");
  }
  // Self-signed: the issuer is the subject.
  if (X509_set_subject_name(cert.get(), name.get()) != 1 ||
      X509_set_issuer_name(cert.get(), name.get()) != 1) {
    throwOpenSsl("cannot set the subject");
  }
  if (X509_set_pubkey(cert.get(), key.get()) != 1) throwOpenSsl("cannot set the public key");

  BasicConstraintsPtr basic(BASIC_CONSTRAINTS_new());
  if (!basic) throwOpenSsl("cannot allocate basicConstraints");
  basic->ca = 0;
  addExtension(cert.get(), NID_basic_constraints, basic.get(), true, "basicConstraints");

  Asn1BitStringPtr usage(ASN1_BIT_STRING_new());
  if (!usage || ASN1_BIT_STRING_set_bit(usage.get(), 0 /* digitalSignature */, 1) != 1) {
    throwOpenSsl("cannot build keyUsage");
  }
  addExtension(cert.get(), NID_key_usage, usage.get(), true, "keyUsage");

  ExtendedKeyUsagePtr extUsage(sk_ASN1_OBJECT_new_null());
  // OBJ_nid2obj returns a static object; freeing the stack leaves it alone.
  if (!extUsage || sk_ASN1_OBJECT_push(extUsage.get(), OBJ_nid2obj(NID_server_auth)) <= 0) {
    throwOpenSsl("cannot build extendedKeyUsage");
  }
  addExtension(cert.get(), NID_ext_key_usage, extUsage.get(), false, "extendedKeyUsage");

  addExtension(cert.get(), NID_subject_alt_name, altNames.get(), false, "subjectAltName");

  // A subject key identifier lets clients that pin or chain certificates tell keys apart.
  X509V3_CTX v3ctx;
  X509V3_set_ctx_nodb(&v3ctx);
  X509V3_set_ctx(&v3ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  X509ExtensionPtr ski(X509V3_EXT_conf_nid(nullptr, &v3ctx, NID_subject_key_identifier, "hash"));
  if (!ski || X509_add_ext(cert.get(), ski.get(), -1) != 1) {
    throwOpenSsl("cannot add the subjectKeyIdentifier extension");
  }

  if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0) {
    throwOpenSsl("cannot sign the certificate");
  }

  PemPair out;
  BioPtr certBio(BIO_new(BIO_s_mem()));
  if (!certBio || PEM_write_bio_X509(certBio.get(), cert.get()) != 1) {
    throwOpenSsl("cannot encode the certificate as PEM");
  }
  out.certificatePem = bioToString(certBio.get());

  BioPtr keyBio(BIO_new(BIO_s_mem()));
  if (!keyBio || PEM_write_bio_PKCS8PrivateKey(keyBio.get(), key.get(), nullptr, nullptr, 0,
                                               nullptr, nullptr) != 1) {
    throwOpenSsl("cannot encode the private key as PEM");
  }
  out.privateKeyPem = bioToString(keyBio.get());
  return out;
}

SelfSignedRequest defaultRequestForThisHost() {
  SelfSignedRequest request;

  std::array<char, HOST_NAME_MAX + 1> host{};
  // One byte short so the name stays NUL-terminated even if the kernel truncates it.
  if (::gethostname(host.data(), host.size() - 1) != 0) {
    throw IoError("cannot read the host name: " + errnoText(errno));
  }
  const std::string hostname = lowercase(host.data());

  // The first label is a fallback for host names longer than a commonName may be.
  const std::string firstLabel = hostname.substr(0, hostname.find('.'));
  if (isUsableDnsName(hostname) && hostname.size() <= kMaxCommonName) {
    request.commonName = hostname;
  } else if (isUsableDnsName(firstLabel) && firstLabel.size() <= kMaxCommonName) {
    request.commonName = firstLabel;
  } else {
    request.commonName = "localhost";
  }
  if (isUsableDnsName(hostname)) pushUnique(request.dnsNames, hostname);
  pushUnique(request.dnsNames, "localhost");

  ifaddrs* rawList = nullptr;
  if (::getifaddrs(&rawList) != 0) {
    throw IoError("cannot list the network interfaces: " + errnoText(errno));
  }
  IfAddrsPtr list(rawList);
  for (const ifaddrs* ifa = list.get(); ifa != nullptr; ifa = ifa->ifa_next) {
    if (ifa->ifa_addr == nullptr || (ifa->ifa_flags & IFF_LOOPBACK) != 0) continue;
    std::array<char, INET6_ADDRSTRLEN> text{};
    if (ifa->ifa_addr->sa_family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(ifa->ifa_addr);
      if (::inet_ntop(AF_INET, &sin->sin_addr, text.data(), text.size()) == nullptr) continue;
    } else if (ifa->ifa_addr->sa_family == AF_INET6) {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(ifa->ifa_addr);
      // A link-local address only means something with its interface (fe80::1%eth0), which a
      // certificate cannot express; an IPv4 link-local address has no such problem.
      if (IN6_IS_ADDR_LINKLOCAL(&sin6->sin6_addr) || IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr)) {
        continue;
      }
      if (::inet_ntop(AF_INET6, &sin6->sin6_addr, text.data(), text.size()) == nullptr) continue;
    } else {
      continue;
    }
    pushUnique(request.ipAddresses, text.data());
  }
  pushUnique(request.ipAddresses, "127.0.0.1");
  pushUnique(request.ipAddresses, "::1");
  return request;
}

bool ensureSelfSigned(const std::filesystem::path& certFile, const std::filesystem::path& keyFile) {
  if (pathExists(certFile) && pathExists(keyFile)) return false;

  for (const auto& file : {certFile, keyFile}) {
    if (file.has_parent_path()) files::ensureDir(file.parent_path(), 0700);
  }
  PemPair pair = makeSelfSigned(defaultRequestForThisHost());

  // Remove a leftover certificate first and write it last: a crash at any point then leaves
  // the certificate missing (so the next start regenerates both) rather than a certificate
  // beside a key that does not match it.
  std::error_code ec;
  std::filesystem::remove(certFile, ec);
  if (ec) {
    throw IoError("cannot remove the old certificate " + certFile.string() + ": " + ec.message());
  }
  files::atomicWrite(keyFile, pair.privateKeyPem, 0600);
  files::atomicWrite(certFile, pair.certificatePem, 0644);
  return true;
}

}  // namespace vcrm::tls
