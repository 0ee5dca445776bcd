#include "bench_support.h"

#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SSLException.h>
#include <Poco/Net/SSLManager.h>
#include <Poco/StreamCopier.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace vcrm::test {

KeepAliveHttps::KeepAliveHttps(const std::string& host, int port, const std::string& caFile,
                               std::string bearer)
    : bearer_(std::move(bearer)) {
  static const bool sslReady = [] {
    Poco::Net::initializeSSL();
    return true;
  }();
  (void)sslReady;
  Poco::Net::Context::Ptr ctx =
      new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "", "", caFile,
                             Poco::Net::Context::VERIFY_STRICT, 9, false);
  session_ =
      std::make_unique<Poco::Net::HTTPSClientSession>(host, static_cast<Poco::UInt16>(port), ctx);
  session_->setKeepAlive(true);
  session_->setTimeout(Poco::Timespan(30, 0));
}

KeepAliveHttps::~KeepAliveHttps() = default;

HttpResult KeepAliveHttps::request(const std::string& method, const std::string& path,
                                   const std::string& body) {
  try {
    return once(method, path, body);
  } catch (const Poco::Net::NoMessageException&) {  // NOLINT(bugprone-empty-catch): retried below
  } catch (
      const Poco::Net::ConnectionResetException&) {  // NOLINT(bugprone-empty-catch): retried below
  } catch (
      const Poco::Net::SSLConnectionUnexpectedlyClosedException&) {  // NOLINT(bugprone-empty-catch)
  }
  // The server closed an idle connection between our requests: once more on a new one.
  session_->reset();
  return once(method, path, body);
}

HttpResult KeepAliveHttps::once(const std::string& method, const std::string& path,
                                const std::string& body) {
  if (!session_->connected()) ++connects_;
  Poco::Net::HTTPRequest req(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
  req.setKeepAlive(true);
  if (!bearer_.empty()) req.set("Authorization", "Bearer " + bearer_);
  if (!body.empty()) req.setContentType("application/json");
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
    req.setContentLength(static_cast<std::streamsize>(body.size()));
  }
  session_->sendRequest(req) << body;
  Poco::Net::HTTPResponse resp;
  auto& is = session_->receiveResponse(resp);
  HttpResult out;
  out.status = static_cast<int>(resp.getStatus());
  Poco::StreamCopier::copyToString(is, out.body);
  for (const auto& [k, v] : resp) {
    std::string lower = k;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    out.headers[lower] = v;
  }
  return out;
}

double percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double pos = q * static_cast<double>(values.size() - 1);
  const auto lo = static_cast<std::size_t>(pos);
  const auto hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (values[hi] - values[lo]) * (pos - static_cast<double>(lo));
}

double msSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

double processCpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command name may hold spaces: fields are counted after its closing parenthesis.
  const auto close = text.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(text.substr(close + 2));
  std::string field;
  unsigned long long utime = 0;
  unsigned long long stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

long processRssKib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

std::vector<pid_t> childrenOf(pid_t parent) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto close = text.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(text.substr(close + 2));
    std::string state;
    long ppid = 0;
    if (rest >> state >> ppid && ppid == parent) out.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return out;
}

double treeCpuSeconds(pid_t pid) {
  double total = processCpuSeconds(pid);
  if (total < 0) return -1;
  for (const pid_t child : childrenOf(pid)) total += std::max(0.0, processCpuSeconds(child));
  return total;
}

}  // namespace vcrm::test
