// Helpers for the benchmarks in tests/bench: an HTTPS client that keeps its TLS connection
// open across requests (HttpsClient opens a new one per request), percentiles, and CPU and
// memory figures of a process read from /proc.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "https_client.h"

namespace Poco::Net {
class HTTPSClientSession;
}

namespace vcrm::test {

// One persistent HTTPS connection to an appliance, trusting its certificate file, sending a
// bearer token with every request. Reconnects once if the server closed the connection.
// Not thread-safe: one per thread.
class KeepAliveHttps {
 public:
  KeepAliveHttps(const std::string& host, int port, const std::string& caFile, std::string bearer);
  ~KeepAliveHttps();
  KeepAliveHttps(const KeepAliveHttps&) = delete;
  KeepAliveHttps& operator=(const KeepAliveHttps&) = delete;

  HttpResult request(const std::string& method, const std::string& path,
                     const std::string& body = {});
  HttpResult get(const std::string& path) { return request("GET", path); }
  HttpResult post(const std::string& path, const std::string& json) {
    return request("POST", path, json);
  }
  int connects() const { return connects_; }  // TLS connections opened so far

 private:
  HttpResult once(const std::string& method, const std::string& path, const std::string& body);
  std::unique_ptr<Poco::Net::HTTPSClientSession> session_;
  std::string bearer_;
  int connects_ = 0;
};

// q in [0, 1] of the values (sorted copy); 0 for none.
double percentile(std::vector<double> values, double q);

double msSince(std::chrono::steady_clock::time_point t);

// utime + stime of a process in seconds, or -1 if it is gone.
double processCpuSeconds(pid_t pid);
// VmRSS of a process in KiB, or -1.
long processRssKib(pid_t pid);
// Direct children of a process (e.g. PostgreSQL's backends under its postmaster).
std::vector<pid_t> childrenOf(pid_t parent);
// CPU seconds of a process and its direct children (children that exited are not counted).
double treeCpuSeconds(pid_t pid);

}  // namespace vcrm::test
