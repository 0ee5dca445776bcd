// The Janus WebRTC Server driver: VideoRoom rooms controlled through the Admin API's
// `message_plugin` request, and the parser for Janus event-handler (sampleevh) posts.
// Janus quirks handled here, once: plugin errors arrive as "janus":"success" with an
// error_code inside; `destroy` sends no per-participant `leaving`; admin-API events carry no
// session id, so participants are identified by (room, participant id).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vcrm/common/error.h"

namespace vcrm::janus {

// A bridge could not do what was asked. `cause` says which of address, port, credentials,
// firewall, protocol or plugin is the likely culprit, for the operator. For cause "plugin",
// `code()` names VideoRoom's refusal (no_such_room, room_exists, no_such_participant,
// room_unauthorized, plugin_missing, plugin_error) and `janusCode()` carries Janus's number (426,
// 427, ...).
class BridgeError : public Error {
 public:
  BridgeError(std::string cause, const std::string& message, std::string code = "bridge_error",
              int janusCode = 0)
      : Error(std::move(code), message), cause_(std::move(cause)), janusCode_(janusCode) {}
  [[nodiscard]] const std::string& cause() const noexcept { return cause_; }
  [[nodiscard]] int janusCode() const noexcept { return janusCode_; }

 private:
  std::string cause_;
  int janusCode_ = 0;
};

struct Endpoint {
  std::string name;         // the bridge's name in vcrm, for messages ("" outside vcrm)
  std::string url;          // Janus HTTP API, e.g. http://127.0.0.1:8088/janus
  std::string adminUrl;     // Janus Admin API, e.g. http://127.0.0.1:7088/admin
  std::string adminSecret;  // janus.jcfg general.admin_secret
  std::chrono::milliseconds timeout{3000};
};

struct RoomSpec {
  std::int64_t room = 0;
  std::string description;
  std::string secret;              // needed to edit/destroy/kick/moderate
  std::optional<std::string> pin;  // needed to join
  int publishers = 0;              // max publishers = ports reserved
};

struct Participant {
  std::int64_t id = 0;
  std::string display;
  bool publisher = false;
  bool talking = false;
};

struct ProbeResult {
  bool up = false;
  int latencyMs = 0;
  std::string version;  // Janus version string when up
  std::string cause;    // when down: address | port | credentials | firewall | protocol | plugin
  std::string message;  // when down: a sentence for the operator
};

class Driver {
 public:
  explicit Driver(Endpoint endpoint);
  ~Driver();
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;

  // Reachability and credentials; never throws.
  ProbeResult probe();
  // Creates the room (private: hidden from the public `list`); an existing room with that
  // number is not an error (returns false, settings untouched). publishers must be >= 1.
  bool createRoom(const RoomSpec& spec);
  // Destroys the room; a room that does not exist is not an error (returns false).
  bool destroyRoom(std::int64_t room, const std::string& secret);
  bool roomExists(std::int64_t room);
  // Throws BridgeError(cause "plugin") with code no_such_room when the room is gone.
  std::vector<Participant> listParticipants(std::int64_t room);
  void kick(std::int64_t room, const std::string& secret, std::int64_t participant);
  // Mutes or unmutes every audio stream the participant publishes (VideoRoom `moderate`, one
  // request per audio mid, found through the Admin API's handle_info). A participant that
  // publishes nothing has nothing to mute: returns without moderating anything, and Janus will not
  // apply it to streams published later (re-apply on Event::Kind::Published). Throws BridgeError
  // no_such_participant if not in the room.
  void mute(std::int64_t room, const std::string& secret, std::int64_t participant, bool muted);
  // Changes the publisher cap of a live room (extend / edit ports). Janus 1.1 counts only
  // publishers whose PeerConnection is up against the cap; joins without media always pass.
  void editRoom(std::int64_t room, const std::string& secret, int publishers);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One event from a Janus event-handler post, reduced to what vcrm needs.
struct Event {
  enum class Kind { Joined, Leaving, Kicked, Published, Unpublished, Destroyed, Created, Other };
  Kind kind = Kind::Other;
  std::int64_t room = 0;
  std::int64_t participant = 0;  // 0 for room events
  std::string display;
  std::int64_t timestampUs = 0;  // Janus's event time (microseconds since the epoch)
};

// Parses a sampleevh POST body (one event object or an array when grouping is on). Unknown
// event types become Kind::Other; events with missing or ill-typed fields are skipped;
// malformed JSON throws InvalidInput, a body over 16 MiB TooLarge. Never trusts sizes.
std::vector<Event> parseEvents(const std::string& body);

}  // namespace vcrm::janus
