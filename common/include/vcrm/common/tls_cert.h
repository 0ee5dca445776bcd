// Self-signed X.509 certificate for the appliance's HTTPS endpoint.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace vcrm::tls {

struct SelfSignedRequest {
  std::string commonName;           // usually the host name
  std::vector<std::string> dnsNames;  // subjectAltName DNS entries
  std::vector<std::string> ipAddresses;  // subjectAltName IP entries (v4 or v6 text)
  int validDays = 3650;
};

struct PemPair {
  std::string certificatePem;
  std::string privateKeyPem;  // EC P-256 key, PKCS#8 PEM
};

PemPair makeSelfSigned(const SelfSignedRequest& request);

// The host name and every non-loopback interface address plus localhost, 127.0.0.1 and ::1.
SelfSignedRequest defaultRequestForThisHost();

// Creates cert and key (key 0600) atomically if either is missing; returns true if it created.
bool ensureSelfSigned(const std::filesystem::path& certFile, const std::filesystem::path& keyFile);

}  // namespace vcrm::tls
