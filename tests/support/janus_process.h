// A real Janus WebRTC Server (Debian's /usr/bin/janus) for tests: VideoRoom and the HTTP
// transport only, listening on 127.0.0.1 at free ports, optionally posting events to a
// sampleevh backend. And a participant that joins a VideoRoom through Janus's own HTTP API
// as a publisher without media, as a browser would before it sends any.
#pragma once

#include <Poco/JSON/Object.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "temp_dir.h"

namespace vcrm::test {

// A TCP port on 127.0.0.1 that was free a moment ago (bind to :0, read it, close).
int freeLoopbackPort();

// POSTs a JSON object to an http://127.0.0.1 URL and parses the JSON object answer. Throws
// std::runtime_error on transport errors or a non-JSON answer.
Poco::JSON::Object::Ptr postJson(const std::string& url, const Poco::JSON::Object::Ptr& body,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(10));

class JanusProcess {
 public:
  struct Options {
    std::string adminSecret = "test-admin-secret";
    std::string eventsUrl;  // sampleevh backend; empty: no event handler
    std::string eventsUser;
    std::string eventsPassword;
    std::chrono::seconds readyTimeout{30};
    std::string ip = "127.0.0.1";  // where Janus listens (and its ICE interface)
    std::string netns;             // run inside this named network namespace (ip netns)
  };
  // Writes the configuration and starts Janus; throws with Janus's output if it does not
  // come up.
  JanusProcess();
  explicit JanusProcess(Options options);
  ~JanusProcess();  // always stops Janus
  JanusProcess(const JanusProcess&) = delete;
  JanusProcess& operator=(const JanusProcess&) = delete;

  // Starts again (same configuration and ports) after stop() or kill9().
  void start();
  // SIGTERM, wait up to 10 s, then SIGKILL. Returns the exit status, -1 if killed or not running.
  int stop();
  // SIGKILL, as a crash or power cut would.
  void kill9();

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  std::string httpUrl() const;   // http://<ip>:<port>/janus
  std::string adminUrl() const;  // http://<ip>:<port>/admin
  const std::string& adminSecret() const { return options_.adminSecret; }
  std::string output() const;  // Janus's stdout/stderr so far
  const std::filesystem::path& configDir() const { return dir_.path(); }

  // A VideoRoom request through the Admin API's message_plugin; returns "response".
  Poco::JSON::Object::Ptr videoRoom(const Poco::JSON::Object::Ptr& request) const;

 private:
  void writeConfig() const;
  bool adminAnswers() const;

  Options options_;
  TempDir dir_;
  int httpPort_ = 0;
  int adminPort_ = 0;
  pid_t pid_ = -1;
};

class JanusParticipant {
 public:
  // Creates a session, attaches VideoRoom and joins `room` as a publisher. Throws
  // std::runtime_error carrying Janus's error text (e.g. "Unauthorized (wrong pin)").
  JanusParticipant(std::string httpUrl, std::int64_t room, const std::string& display,
                   std::optional<std::string> pin = std::nullopt);
  ~JanusParticipant();  // leaves and destroys the session, quietly
  JanusParticipant(const JanusParticipant&) = delete;
  JanusParticipant& operator=(const JanusParticipant&) = delete;

  std::int64_t id() const { return id_; }
  std::int64_t sessionId() const { return session_; }
  std::int64_t handleId() const { return handle_; }

  // The next VideoRoom event on this participant's handle whose data matches `pred` (e.g. a
  // "leaving":"ok" with "reason":"kicked"), or nullptr after `timeout`.
  Poco::JSON::Object::Ptr waitForEvent(
      const std::function<bool(const Poco::JSON::Object::Ptr& data)>& pred,
      std::chrono::milliseconds timeout);

  // Offers audio (mid "0") and, if asked, video (mid "1") as a publisher, with a real SDP whose
  // media never flows; returns Janus's SDP answer. The publisher then has streams to moderate.
  std::string publishWithoutMedia(bool video);

  // Sends "leave", detaches and destroys the session. Throws if Janus refuses.
  void leave();

 private:
  // Sends a VideoRoom request (and an optional JSEP) and returns the event that answers it, or
  // nullptr after 10 s.
  Poco::JSON::Object::Ptr ask(const Poco::JSON::Object::Ptr& body, const Poco::JSON::Object::Ptr& jsep);
  Poco::JSON::Object::Ptr send(const std::string& janus, Poco::JSON::Object::Ptr extra,
                               bool toHandle);
  void keepalive();
  void stopKeepalive();

  std::string url_;
  std::int64_t session_ = 0;
  std::int64_t handle_ = 0;
  std::int64_t id_ = 0;
  bool left_ = false;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread keepalive_;
};

}  // namespace vcrm::test
