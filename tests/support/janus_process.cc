#include "janus_process.h"

#include "child.h"

#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>
#include <Poco/URI.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <sched.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace fs = std::filesystem;
using Poco::JSON::Object;

namespace vcrm::test {

namespace {

constexpr const char* kJanusBinary = "/usr/bin/janus";
constexpr const char* kVideoRoom = "janus.plugin.videoroom";

// Debian installs the modules under the multiarch library directory.
fs::path janusLibDir() {
  for (const char* d : {"/usr/lib/x86_64-linux-gnu/janus", "/usr/lib/aarch64-linux-gnu/janus",
                        "/usr/lib/janus", "/usr/local/lib/janus", "/opt/janus/lib/janus"}) {
    if (fs::exists(fs::path(d) / "plugins/libjanus_videoroom.so")) return d;
  }
  throw std::runtime_error("Janus's VideoRoom plugin was not found (install the janus package)");
}

// The module files of a folder except `keep`, comma-separated, for a `disable` directive.
std::string allBut(const fs::path& folder, const std::string& keep) {
  std::set<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(folder, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() > 3 && name.compare(name.size() - 3, 3, ".so") == 0 && name != keep) {
      names.insert(name);
    }
  }
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ",") + n;
  return out;
}

// libconfig string literal.
std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void spew(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + p.string());
}

std::string randomTransaction() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::ostringstream s;
  s << std::hex << rng();
  return s.str();
}

Poco::JSON::Object::Ptr parseObject(const std::string& text, const std::string& what) {
  try {
    Poco::JSON::Parser parser;
    const auto v = parser.parse(text);
    if (v.type() == typeid(Object::Ptr)) return v.extract<Object::Ptr>();
  } catch (const Poco::Exception&) {  // NOLINT(bugprone-empty-catch): reported below
  }
  throw std::runtime_error(what + " did not answer a JSON object: " + text.substr(0, 500));
}

// One HTTP exchange with a loopback server; returns the body.
std::string exchange(const std::string& method, const std::string& url, const std::string& body,
                     std::chrono::milliseconds timeout) {
  const Poco::URI uri(url);
  Poco::Net::HTTPClientSession session(uri.getHost(), uri.getPort());
  session.setTimeout(Poco::Timespan(static_cast<long>(timeout.count() / 1000),
                                    static_cast<long>((timeout.count() % 1000) * 1000)));
  Poco::Net::HTTPRequest req(method, uri.getPathAndQuery(), Poco::Net::HTTPMessage::HTTP_1_1);
  if (!body.empty()) {
    req.setContentType("application/json");
    req.setContentLength(static_cast<std::streamsize>(body.size()));
  }
  session.sendRequest(req) << body;
  Poco::Net::HTTPResponse resp;
  std::istream& in = session.receiveResponse(resp);
  std::string answer;
  Poco::StreamCopier::copyToString(in, answer);
  if (resp.getStatus() != Poco::Net::HTTPResponse::HTTP_OK) {
    throw std::runtime_error(method + " " + url + " answered HTTP " +
                             std::to_string(resp.getStatus()) + ": " + answer.substr(0, 300));
  }
  return answer;
}

std::string stringify(const Object::Ptr& o) {
  std::ostringstream s;
  o->stringify(s);
  return s.str();
}

// plugindata.data of a Janus API event, or nullptr.
Object::Ptr pluginData(const Object::Ptr& event) {
  if (!event || event->optValue<std::string>("janus", "") != "event") return nullptr;
  const auto pd = event->getObject("plugindata");
  return pd ? pd->getObject("data") : nullptr;
}

}  // namespace

int freeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(fd);
    throw std::runtime_error("cannot bind 127.0.0.1:0");
  }
  close(fd);
  return ntohs(a.sin_port);
}

Object::Ptr postJson(const std::string& url, const Object::Ptr& body,
                     std::chrono::milliseconds timeout) {
  return parseObject(exchange("POST", url, stringify(body), timeout), url);
}

// ------------------------------------------------------------------------------------------
// JanusProcess

JanusProcess::JanusProcess() : JanusProcess(Options{}) {}

JanusProcess::JanusProcess(Options options) : options_(std::move(options)), dir_("janus") {
  httpPort_ = freeLoopbackPort();
  do {
    adminPort_ = freeLoopbackPort();
  } while (adminPort_ == httpPort_);
  writeConfig();
  start();
}

JanusProcess::~JanusProcess() {
  if (running()) stop();
}

std::string JanusProcess::httpUrl() const {
  return "http://" + options_.ip + ":" + std::to_string(httpPort_) + "/janus";
}

std::string JanusProcess::adminUrl() const {
  return "http://" + options_.ip + ":" + std::to_string(adminPort_) + "/admin";
}

std::string JanusProcess::output() const {
  return slurp(dir_.path() / "janus.out");
}

void JanusProcess::writeConfig() const {
  const fs::path lib = janusLibDir();
  const fs::path dir = dir_.path();
  const bool events = !options_.eventsUrl.empty();
  // A small RTP range of its own; no test sends media, but Janus wants one.
  const int rtpBase = 20000 + (httpPort_ % 20000);

  std::ostringstream core;
  core << "general: {\n"
       << "  configs_folder = " << quoted(dir.string()) << "\n"
       << "  plugins_folder = " << quoted((lib / "plugins").string()) << "\n"
       << "  transports_folder = " << quoted((lib / "transports").string()) << "\n"
       << "  events_folder = " << quoted((lib / "events").string()) << "\n"
       << "  loggers_folder = " << quoted((lib / "loggers").string()) << "\n"
       << "  log_to_stdout = true\n"
       << "  log_to_file = " << quoted((dir / "janus.log").string()) << "\n"
       << "  debug_level = 4\n"
       << "  debug_timestamps = true\n"
       << "  debug_colors = false\n"
       << "  admin_secret = " << quoted(options_.adminSecret) << "\n"
       << "  server_name = \"vcrm-test-janus\"\n"
       << "  session_timeout = 60\n"
       << "  interface = " << quoted(options_.ip) << "\n"
       << "}\n"
       << "certificates: {\n}\n"
       << "media: {\n  rtp_port_range = \"" << rtpBase << "-" << rtpBase + 99 << "\"\n}\n"
       << "nat: {\n  nice_debug = false\n}\n"
       << "plugins: {\n  disable = " << quoted(allBut(lib / "plugins", "libjanus_videoroom.so"))
       << "\n}\n"
       << "transports: {\n  disable = " << quoted(allBut(lib / "transports", "libjanus_http.so"))
       << "\n}\n"
       << "loggers: {\n  disable = " << quoted(allBut(lib / "loggers", "")) << "\n}\n"
       << "events: {\n  broadcast = " << (events ? "true" : "false")
       << "\n  disable = " << quoted(allBut(lib / "events", "libjanus_sampleevh.so")) << "\n}\n";
  spew(dir / "janus.jcfg", core.str());

  std::ostringstream http;
  http << "general: {\n  json = \"compact\"\n  base_path = \"/janus\"\n  http = true\n"
       << "  port = " << httpPort_ << "\n  ip = " << quoted(options_.ip) << "\n  https = false\n}\n"
       << "admin: {\n  admin_base_path = \"/admin\"\n  admin_http = true\n"
       << "  admin_port = " << adminPort_ << "\n  admin_ip = " << quoted(options_.ip) << "\n"
       << "  admin_https = false\n}\n"
       << "cors: {\n}\n"
       << "certificates: {\n}\n";
  spew(dir / "janus.transport.http.jcfg", http.str());

  // No static rooms: every room a test sees was created through the driver.
  spew(dir / "janus.plugin.videoroom.jcfg", "general: {\n}\n");

  std::ostringstream evh;
  evh << "general: {\n  enabled = " << (events ? "true" : "false") << "\n";
  if (events) {
    evh << "  events = \"plugins,handles,sessions\"\n"
        << "  grouping = true\n"
        << "  json = \"compact\"\n"
        << "  backend = " << quoted(options_.eventsUrl) << "\n";
    if (!options_.eventsUser.empty()) {
      evh << "  backend_user = " << quoted(options_.eventsUser) << "\n"
          << "  backend_pwd = " << quoted(options_.eventsPassword) << "\n";
    }
    // A test's backend goes away before Janus does; do not hold Janus's shutdown for long.
    evh << "  max_retransmissions = 2\n  retransmissions_backoff = 50\n";
  }
  evh << "}\n";
  spew(dir / "janus.eventhandler.sampleevh.jcfg", evh.str());
}

bool JanusProcess::adminAnswers() const {
  try {
    Object::Ptr ping = new Object;
    ping->set("janus", "ping");
    ping->set("transaction", randomTransaction());
    if (postJson(adminUrl(), ping, std::chrono::milliseconds(500))
            ->optValue<std::string>("janus", "") != "pong") {
      return false;
    }
    const auto info = parseObject(
        exchange("GET", httpUrl() + "/info", "", std::chrono::milliseconds(500)), "Janus API");
    return info->optValue<std::string>("janus", "") == "server_info";
  } catch (const std::exception&) {
    return false;
  }
}

void JanusProcess::start() {
  if (running()) throw std::logic_error("Janus is already running");
  if (access(kJanusBinary, X_OK) != 0) {
    throw std::runtime_error(std::string(kJanusBinary) + " not found (install the janus package)");
  }
  const fs::path cfg = dir_.path() / "janus.jcfg";
  const fs::path out = dir_.path() / "janus.out";
  SpawnOptions spawn;
  spawn.log = out;
  spawn.appendLog = true;
  spawn.dieWithParent = true;      // Janus must not outlive a test binary that crashes
  spawn.closeInheritedFds = true;  // no listening socket of the test may leak into Janus
  spawn.netns = options_.netns;
  pid_ = spawnLogged({kJanusBinary, "-C", cfg.string(), "-F", dir_.path().string()}, spawn);

  const auto deadline = std::chrono::steady_clock::now() + options_.readyTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("Janus exited during start-up:\n" + output());
    }
    if (adminAnswers()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill9();
  throw std::runtime_error("Janus did not answer within " +
                           std::to_string(options_.readyTimeout.count()) + " s:\n" + output());
}

int JanusProcess::stop() {
  if (!running()) return -1;
  const int code = terminate(pid_, std::chrono::seconds(10));
  pid_ = -1;
  return code;
}

void JanusProcess::kill9() {
  if (!running()) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitExit(pid_, std::chrono::seconds(10), &status);
  pid_ = -1;
}

Object::Ptr JanusProcess::videoRoom(const Object::Ptr& request) const {
  Object::Ptr body = new Object;
  body->set("janus", "message_plugin");
  body->set("transaction", randomTransaction());
  body->set("admin_secret", options_.adminSecret);
  body->set("plugin", kVideoRoom);
  body->set("request", request);
  const auto answer = postJson(adminUrl(), body);
  auto response = answer->getObject("response");
  if (!response) throw std::runtime_error("message_plugin failed: " + stringify(answer));
  return response;
}

// ------------------------------------------------------------------------------------------
// JanusParticipant

JanusParticipant::JanusParticipant(std::string httpUrl, std::int64_t room,
                                   const std::string& display, std::optional<std::string> pin)
    : url_(std::move(httpUrl)) {
  Object::Ptr attach = new Object;
  attach->set("plugin", kVideoRoom);
  session_ = send("create", nullptr, false)->getObject("data")->getValue<std::int64_t>("id");
  try {
    handle_ = send("attach", attach, false)->getObject("data")->getValue<std::int64_t>("id");
    keepalive_ = std::thread([this] { keepalive(); });

    Object::Ptr body = new Object;
    body->set("request", "join");
    body->set("ptype", "publisher");
    body->set("room", room);
    body->set("display", display);
    if (pin) body->set("pin", *pin);
    const auto reply = pluginData(ask(body, nullptr));
    if (!reply) throw std::runtime_error("no answer to join within 10 s");
    if (reply->has("error_code")) {
      throw std::runtime_error("join refused: " + reply->optValue<std::string>("error", "") + " (" +
                               std::to_string(reply->optValue<int>("error_code", 0)) + ")");
    }
    if (reply->optValue<std::string>("videoroom", "") != "joined") {
      throw std::runtime_error("unexpected answer to join: " + stringify(reply));
    }
    id_ = reply->getValue<std::int64_t>("id");
  } catch (...) {
    stopKeepalive();
    try {
      send("destroy", nullptr, false);
    } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): reporting the first error
    }
    throw;
  }
}

Object::Ptr JanusParticipant::ask(const Object::Ptr& body, const Object::Ptr& jsep) {
  Object::Ptr message = new Object;
  message->set("body", body);
  if (jsep) message->set("jsep", jsep);
  const auto ack = send("message", message, true);
  const auto transaction = ack->optValue<std::string>("transaction", "");
  // The outcome of an asynchronous request comes as an event carrying its transaction.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    Object::Ptr event;
    try {
      const auto text = exchange("GET", url_ + "/" + std::to_string(session_) + "?maxev=1", "",
                                 std::chrono::seconds(10));
      event = parseObject(text, "Janus long poll");
    } catch (const Poco::TimeoutException&) {
      break;
    }
    if (event->optValue<std::string>("transaction", "") == transaction) return event;
  }
  return nullptr;
}

std::string JanusParticipant::publishWithoutMedia(bool video) {
  // A real offer as a browser would make it (ICE credentials, DTLS fingerprint, Opus and VP8),
  // whose media never flows: Janus negotiates it and sets up the publisher's streams.
  std::mt19937_64 rng(std::random_device{}());
  const auto hex = [&rng](int bytes, bool colons) {
    static const char* digits = "0123456789ABCDEF";
    std::string out;
    for (int i = 0; i < bytes; ++i) {
      const auto b = static_cast<unsigned>(rng() & 0xff);
      if (colons && i) out += ':';
      out += digits[b >> 4];
      out += digits[b & 15];
    }
    return out;
  };
  const std::string ufrag = hex(4, false);
  const std::string pwd = hex(12, false);
  const std::string fingerprint = hex(32, true);
  std::string sdp =
      "v=0\r\no=- " + std::to_string(rng() >> 2) + " 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
      "a=group:BUNDLE 0" + std::string(video ? " 1" : "") + "\r\na=msid-semantic: WMS vcrm\r\n";
  const auto media = [&](const std::string& kind, const std::string& mid, const std::string& pt,
                         const std::string& rtpmap, std::uint32_t ssrc) {
    return "m=" + kind + " 9 UDP/TLS/RTP/SAVPF " + pt + "\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n" +
           "a=ice-ufrag:" + ufrag + "\r\na=ice-pwd:" + pwd + "\r\na=ice-options:trickle\r\n" +
           "a=fingerprint:sha-256 " + fingerprint + "\r\na=setup:actpass\r\na=mid:" + mid +
           "\r\na=sendonly\r\na=msid:vcrm " + kind + mid + "\r\na=rtcp-mux\r\na=rtpmap:" + pt + " " +
           rtpmap + "\r\na=ssrc:" + std::to_string(ssrc) + " cname:vcrm\r\n";
  };
  sdp += media("audio", "0", "111", "opus/48000/2", 1111);
  if (video) sdp += media("video", "1", "96", "VP8/90000", 2222);

  Object::Ptr body = new Object;
  body->set("request", "configure");
  body->set("audio", true);
  body->set("video", video);
  Object::Ptr jsep = new Object;
  jsep->set("type", "offer");
  jsep->set("sdp", sdp);
  const auto event = ask(body, jsep);
  if (!event) throw std::runtime_error("no answer to configure within 10 s");
  const auto data = pluginData(event);
  if (!data || data->optValue<std::string>("configured", "") != "ok") {
    throw std::runtime_error("configure refused: " + stringify(event));
  }
  const auto answer = event->getObject("jsep");
  if (!answer || answer->optValue<std::string>("type", "") != "answer") {
    throw std::runtime_error("configure came back without an SDP answer: " + stringify(event));
  }
  return answer->getValue<std::string>("sdp");
}

JanusParticipant::~JanusParticipant() {
  if (!left_) {
    try {
      leave();
    } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): Janus may be gone
    }
  }
  stopKeepalive();
}

Object::Ptr JanusParticipant::send(const std::string& janus, Object::Ptr extra, bool toHandle) {
  Object::Ptr body = extra ? extra : Object::Ptr(new Object);
  body->set("janus", janus);
  body->set("transaction", randomTransaction());
  std::string url = url_;
  if (janus != "create") url += "/" + std::to_string(session_);
  if (toHandle) url += "/" + std::to_string(handle_);
  auto answer = postJson(url, body);
  const auto kind = answer->optValue<std::string>("janus", "");
  if (kind == "error") {
    const auto err = answer->getObject("error");
    throw std::runtime_error(janus + " refused: " +
                             (err ? err->optValue<std::string>("reason", "") : stringify(answer)));
  }
  return answer;
}

Object::Ptr JanusParticipant::waitForEvent(const std::function<bool(const Object::Ptr&)>& pred,
                                           std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return nullptr;
    std::string text;
    try {
      text = exchange("GET", url_ + "/" + std::to_string(session_) + "?maxev=1", "", left);
    } catch (const Poco::TimeoutException&) {
      return nullptr;
    }
    const auto event = parseObject(text, "Janus long poll");
    auto data = pluginData(event);
    if (data && event->optValue<std::int64_t>("sender", 0) == handle_ && pred(data)) return data;
  }
}

void JanusParticipant::leave() {
  left_ = true;
  Object::Ptr body = new Object;
  body->set("request", "leave");
  Object::Ptr message = new Object;
  message->set("body", body);
  send("message", message, true);
  send("detach", nullptr, true);
  send("destroy", nullptr, false);
  stopKeepalive();
}

void JanusParticipant::keepalive() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!wake_.wait_for(lock, std::chrono::seconds(15), [this] { return stopping_; })) {
    lock.unlock();
    try {
      send("keepalive", nullptr, false);
    } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): next round tries again
    }
    lock.lock();
  }
}

void JanusParticipant::stopKeepalive() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (keepalive_.joinable()) keepalive_.join();
}

}  // namespace vcrm::test
