#include "tus_client.h"

#include <Poco/Net/Context.h>
#include <Poco/Net/SSLManager.h>
#include <Poco/Net/SecureStreamSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace vcrm::test {

namespace {
std::uint64_t splitmix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
}  // namespace

void PatternBytes::fill(std::uint64_t position, char* out, std::size_t n) const {
  std::size_t i = 0;
  while (i < n) {
    const std::uint64_t p = position + i;
    const std::uint64_t word = splitmix(seed_ ^ (p / 8) * 0x2545f4914f6cdd1dull);
    const std::size_t skip = p % 8;
    const std::size_t take = std::min<std::size_t>(8 - skip, n - i);
    std::memcpy(out + i, reinterpret_cast<const char*>(&word) + skip, take);
    i += take;
  }
}

std::string PatternBytes::at(std::uint64_t position, std::size_t n) const {
  std::string s(n, '\0');
  fill(position, s.data(), n);
  return s;
}

RawTls::RawTls(const std::string& host, int port, const std::string& caFile) {
  static const bool sslReady = [] {
    Poco::Net::initializeSSL();
    return true;
  }();
  (void)sslReady;
  Poco::Net::Context::Ptr ctx =
      new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "", "", caFile,
                             Poco::Net::Context::VERIFY_STRICT, 9, false);
  socket_ = std::make_unique<Poco::Net::SecureStreamSocket>(
      Poco::Net::SocketAddress(host, static_cast<Poco::UInt16>(port)), ctx);
  socket_->setReceiveTimeout(Poco::Timespan(60, 0));
  socket_->setSendTimeout(Poco::Timespan(60, 0));
}

RawTls::~RawTls() {
  try {
    if (socket_) socket_->close();
  } catch (...) {
  }
}

void RawTls::send(const char* data, std::size_t n) {
  std::size_t done = 0;
  while (done < n) {
    const int sent =
        socket_->sendBytes(data + done, static_cast<int>(std::min<std::size_t>(n - done, 1 << 20)));
    if (sent <= 0)
      throw std::runtime_error("the server closed the connection while we were sending");
    done += static_cast<std::size_t>(sent);
  }
}

void RawTls::cut() {
  socket_->close();
}

void RawTls::endSending() {
  ::shutdown(socket_->impl()->sockfd(), SHUT_WR);
}

HttpResult RawTls::readResponse() {
  HttpResult out;
  char buf[16384];
  auto more = [&]() {
    int n = 0;
    try {
      n = socket_->receiveBytes(buf, sizeof buf);
    } catch (const Poco::Exception&) {
      n = 0;
    }
    if (n > 0) buffered_.append(buf, static_cast<std::size_t>(n));
    return n > 0;
  };
  std::size_t end;
  while ((end = buffered_.find("\r\n\r\n")) == std::string::npos) {
    if (!more()) return out;
  }
  const std::string head = buffered_.substr(0, end);
  buffered_.erase(0, end + 4);
  std::size_t lineEnd = head.find("\r\n");
  const std::string statusLine = head.substr(0, lineEnd);
  out.status = std::stoi(statusLine.substr(statusLine.find(' ') + 1, 3));
  while (lineEnd != std::string::npos) {
    const std::size_t next = head.find("\r\n", lineEnd + 2);
    const std::string line = head.substr(
        lineEnd + 2, next == std::string::npos ? std::string::npos : next - lineEnd - 2);
    const auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string k = line.substr(0, colon);
      std::transform(k.begin(), k.end(), k.begin(), ::tolower);
      std::string v = line.substr(colon + 1);
      v.erase(0, v.find_first_not_of(' '));
      out.headers[k] = v;
    }
    lineEnd = next;
  }
  const std::size_t length =
      out.headers.count("content-length") ? std::stoull(out.headers["content-length"]) : 0;
  while (buffered_.size() < length && more()) {
  }
  out.body = buffered_.substr(0, length);
  buffered_.erase(0, std::min(length, buffered_.size()));
  return out;
}

std::string tusPatchHead(const std::string& path, const std::string& bearer, std::uint64_t offset,
                         std::optional<std::uint64_t> contentLength) {
  std::string h = "PATCH " + path +
                  " HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n"
                  "Content-Type: application/offset+octet-stream\r\nAuthorization: Bearer " +
                  bearer + "\r\nUpload-Offset: " + std::to_string(offset) + "\r\n";
  h += contentLength ? "Content-Length: " + std::to_string(*contentLength) + "\r\n"
                     : std::string("Transfer-Encoding: chunked\r\n");
  return h + "\r\n";
}

void sendPattern(RawTls& conn, const PatternBytes& bytes, std::uint64_t position,
                 std::uint64_t count, bool chunked) {
  std::vector<char> buf(1 << 20);
  std::uint64_t sent = 0;
  while (sent < count) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), count - sent));
    bytes.fill(position + sent, buf.data(), n);
    if (chunked) {
      char size[32];
      std::snprintf(size, sizeof size, "%zx\r\n", n);
      conn.send(size, std::strlen(size));
    }
    conn.send(buf.data(), n);
    if (chunked) conn.send("\r\n", 2);
    sent += n;
  }
}

TusUpload uploadWhole(HttpsClient& client, const std::string& collection,
                      const std::string& bytes) {
  auto created =
      client.request("POST", collection, "",
                     {{"Tus-Resumable", "1.0.0"}, {"Upload-Length", std::to_string(bytes.size())}});
  if (created.status != 201) {
    throw std::runtime_error("cannot create the upload: " + std::to_string(created.status) + " " +
                             created.body);
  }
  const std::string location = created.header("location");
  auto patched = client.request("PATCH", location, bytes,
                                {{"Tus-Resumable", "1.0.0"},
                                 {"Upload-Offset", "0"},
                                 {"Content-Type", "application/offset+octet-stream"}});
  return {location.substr(location.rfind('/') + 1), patched};
}

}  // namespace vcrm::test
