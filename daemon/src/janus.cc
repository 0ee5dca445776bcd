#include "vcrm/daemon/janus.h"

#include <Poco/JSON/Parser.h>

// After Poco: cpprest's U() macro breaks Poco's ordered-map templates; we do not use it.
#define _TURN_OFF_PLATFORM_STRING  // NOLINT(bugprone-reserved-identifier): cpprest's switch
#include <cpprest/http_client.h>

#include <algorithm>
#include <cerrno>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "vcrm/common/crypto.h"
#include "vcrm/common/guarded.h"
#include "vcrm/common/json.h"
#include "vcrm/common/utf8.h"

namespace vcrm::janus {

namespace {

namespace http = web::http;
using json::ArrayPtr;
using json::ObjectPtr;

constexpr const char* kVideoRoom = "janus.plugin.videoroom";
// A bridge answer larger than this is not something Janus sends for our requests.
constexpr std::size_t kMaxAnswerBytes = 32u << 20;
// sampleevh groups at most 100 events per POST; this leaves room and still bounds the work.
constexpr std::size_t kMaxEventBodyBytes = 16u << 20;
constexpr int kMaxEventDepth = 32;
constexpr std::size_t kMaxDisplayBytes = 256;

// ---- tolerant field access: nullopt for a missing field or one of the wrong type ----

std::optional<std::int64_t> intOf(const Poco::Dynamic::Var& v) {
  // Poco counts true/false as integers; Janus never sends a bool where it means a number.
  if (v.isEmpty() || !v.isInteger() || v.type() == typeid(bool)) return std::nullopt;
  try {
    return v.convert<std::int64_t>();
  } catch (const Poco::Exception&) {  // an unsigned value beyond int64
    return std::nullopt;
  }
}

std::optional<std::int64_t> intField(const ObjectPtr& o, const std::string& key) {
  if (!o || !o->has(key)) return std::nullopt;
  return intOf(o->get(key));
}

std::optional<std::int64_t> positiveField(const ObjectPtr& o, const std::string& key) {
  auto v = intField(o, key);
  if (!v || *v <= 0) return std::nullopt;
  return v;
}

std::optional<std::string> stringField(const ObjectPtr& o, const std::string& key) {
  if (!o || !o->has(key)) return std::nullopt;
  const auto v = o->get(key);
  if (v.isEmpty() || !v.isString()) return std::nullopt;
  return v.extract<std::string>();
}

std::optional<bool> boolField(const ObjectPtr& o, const std::string& key) {
  if (!o || !o->has(key)) return std::nullopt;
  const auto v = o->get(key);
  if (v.type() != typeid(bool)) return std::nullopt;
  return v.extract<bool>();
}

ObjectPtr objectOf(const Poco::Dynamic::Var& v) {
  if (v.type() != typeid(ObjectPtr)) return nullptr;
  return v.extract<ObjectPtr>();
}

ObjectPtr objectField(const ObjectPtr& o, const std::string& key) {
  if (!o || !o->has(key)) return nullptr;
  return objectOf(o->get(key));
}

ArrayPtr arrayField(const ObjectPtr& o, const std::string& key) {
  if (!o || !o->has(key)) return nullptr;
  const auto v = o->get(key);
  if (v.type() != typeid(ArrayPtr)) return nullptr;
  return v.extract<ArrayPtr>();
}

std::string transactionId() {
  return crypto::toHex(crypto::randomBytes(12));
}

// VideoRoom's error numbers (janus_videoroom.c) that callers act on, as stable codes.
std::string pluginErrorCode(int janusCode) {
  switch (janusCode) {
    case 426:
      return "no_such_room";
    case 427:
      return "room_exists";
    case 428:
      return "no_such_participant";
    case 433:
      return "room_unauthorized";
    default:
      return "plugin_error";
  }
}


struct Stream {
  std::string mid;
  std::string type;
  bool disabled = false;
};

struct HandleRef {
  std::int64_t session = 0;
  std::int64_t handle = 0;
};

}  // namespace

// ----------------------------------------------------------------------------------------
// Driver

struct Driver::Impl {
  Endpoint ep;
  std::unique_ptr<http::client::http_client> admin;
  std::string adminUrlProblem;  // set when the admin URL cannot be used at all
  // Where each publisher's handle lives, learnt by scanning the Admin API for `mute` (1.1's
  // `moderate` needs the mids, which only handle_info tells). Subscriber and other-plugin
  // handles are remembered too, so a rescan skips them; handles not yet joined are asked again.
  struct HandleCache {
    std::map<std::pair<std::int64_t, std::int64_t>, HandleRef> publishers;
    std::set<std::int64_t> others;
  };
  Guarded<HandleCache> handles;

  explicit Impl(Endpoint e) : ep(std::move(e)) {
    try {
      const web::uri uri(utility::conversions::to_string_t(ep.adminUrl));
      if (uri.scheme() != "http" && uri.scheme() != "https") {
        adminUrlProblem =
            "admin_url \"" + ep.adminUrl +
            "\" must start with http:// or https:// (e.g. http://10.0.0.5:7088/admin)";
        return;
      }
      if (uri.host().empty()) {
        adminUrlProblem = "admin_url \"" + ep.adminUrl + "\" has no host name";
        return;
      }
      http::client::http_client_config cfg;
      cfg.set_timeout(ep.timeout);
      // Bridges are reached directly; a proxy from the environment would only hide the cause.
      cfg.set_proxy(web::web_proxy(web::web_proxy::disabled));
      admin = std::make_unique<http::client::http_client>(uri, cfg);
    } catch (const std::exception& e) {
      adminUrlProblem = "admin_url \"" + ep.adminUrl + "\" is not a valid URL (" + e.what() +
                        "); expected e.g. http://10.0.0.5:7088/admin";
    }
  }

  // "bridge east-1 (10.0.0.5:7088)": the name an operator knows and the address to check.
  std::string where() const {
    std::string address = ep.adminUrl;
    if (admin) {
      const auto& u = admin->base_uri();
      address = utility::conversions::to_utf8string(u.host()) + ":" + std::to_string(u.port());
    }
    return ep.name.empty() ? "the bridge at " + address : "bridge " + ep.name + " (" + address + ")";
  }

  [[noreturn]] void throwTransport(const http::http_exception& e) const {
    const int err = e.error_code().value();
    const std::string what = e.what();
    if (err == ETIMEDOUT) {
      throw BridgeError("firewall", "no answer within " + std::to_string(ep.timeout.count()) +
                                        " ms: a firewall may be dropping packets, or the bridge "
                                        "is overloaded (" +
                                        where() + ")");
    }
    if (what.rfind("Error resolving address", 0) == 0 ||
        what.rfind("Failed to resolve address", 0) == 0) {
      throw BridgeError("address", "cannot resolve the host name in " + ep.adminUrl +
                                       ": check the bridge's address (" + what + ")");
    }
    if (err == ENETUNREACH) {
      throw BridgeError("address", "no route to " + where() + ": check the bridge's address");
    }
    // cpprest reports a refused connection as EHOSTUNREACH (it "corrects" ECONNREFUSED).
    if (err == ECONNREFUSED || err == EHOSTUNREACH) {
      throw BridgeError("port", "connection to " + where() +
                                    " refused: Janus is not running there, or its Admin API "
                                    "(admin_http in janus.transport.http.jcfg) uses another port");
    }
    if (what.find("SSL") != std::string::npos) {
      throw BridgeError("protocol", "TLS with " + where() + " failed (" + what +
                                        "): use http://, or give Janus a certificate vcrm trusts");
    }
    throw BridgeError("protocol", "talking to " + where() + " failed: " + what);
  }

  // One Admin API request. Adds transaction and admin_secret; returns the parsed answer after
  // checking transport, HTTP status and Janus-level errors.
  ObjectPtr adminRequest(ObjectPtr body) {
    if (!admin) throw BridgeError("address", adminUrlProblem);
    body->set("transaction", transactionId());
    body->set("admin_secret", ep.adminSecret);
    const std::string text = json::stringify(body);

    http::http_response response;
    std::string answer;
    try {
      http::http_request req(http::methods::POST);
      req.set_body(text, "application/json");
      response = admin->request(req).get();
      const auto length = response.headers().content_length();
      if (length > kMaxAnswerBytes) {
        throw BridgeError("protocol", where() + " sent an answer of " +
                                          std::to_string(length) + " bytes; refusing it");
      }
      answer = response.extract_utf8string(true).get();
    } catch (const http::http_exception& e) {
      throwTransport(e);
    } catch (const BridgeError&) {
      throw;
    } catch (const std::exception& e) {
      throw BridgeError("protocol", "talking to " + where() + " failed: " + e.what());
    }

    const auto status = response.status_code();
    if (status == http::status_codes::Unauthorized || status == http::status_codes::Forbidden) {
      throw BridgeError("credentials", where() + " answered HTTP " +
                                           std::to_string(status) +
                                           ": check the admin secret and any proxy credentials");
    }
    if (status != http::status_codes::OK) {
      throw BridgeError("protocol",
                        where() + " answered HTTP " + std::to_string(status) +
                            ": is admin_url the Janus Admin API (e.g. http://host:7088/admin)?");
    }
    ObjectPtr top;
    try {
      top = json::parseObject(answer, 64);
    } catch (const InvalidInput&) {
      throw BridgeError("protocol", "the answer from " + where() +
                                        " is not a JSON object: is admin_url the Janus Admin "
                                        "API (e.g. http://host:7088/admin)?");
    }
    const auto kind = stringField(top, "janus");
    if (!kind) throw BridgeError("protocol", "the answer from " + where() + " has no \"janus\"");
    if (*kind == "error") {
      const auto err = objectField(top, "error");
      const int code = static_cast<int>(intField(err, "code").value_or(0));
      const std::string reason = stringField(err, "reason").value_or("no reason given");
      // 403 JANUS_ERROR_UNAUTHORIZED, 405 JANUS_ERROR_UNAUTHORIZED_PLUGIN
      if (code == 403 || code == 405) {
        throw BridgeError("credentials",
                          "the bridge refused the admin secret (Janus error " +
                              std::to_string(code) + ": " + reason +
                              "): set it to admin_secret of the bridge's janus.jcfg");
      }
      // 460 JANUS_ERROR_PLUGIN_NOT_FOUND
      if (code == 460) {
        throw BridgeError(
            "plugin", "the bridge has no VideoRoom plugin loaded (Janus error 460: " + reason + ")",
            "plugin_missing", code);
      }
      // 457 JANUS_ERROR_INVALID_REQUEST_PATH: Admin API requests sent to the Janus API.
      const std::string hint = code == 457 ? ": is admin_url the Admin API (e.g. "
                                             "http://host:7088/admin), not the Janus API?"
                                           : "";
      throw BridgeError("protocol", "the bridge refused the request (Janus error " +
                                        std::to_string(code) + ": " + reason + ")" + hint);
    }
    return top;
  }

  ObjectPtr adminSuccess(ObjectPtr body) {
    auto top = adminRequest(std::move(body));
    if (stringField(top, "janus") != "success") {
      throw BridgeError("protocol", "unexpected answer from " + where() + R"(: "janus": ")" +
                                        stringField(top, "janus").value_or("") + "\"");
    }
    return top;
  }

  // A VideoRoom request through message_plugin. Plugin errors arrive as "janus":"success"
  // with error_code inside the response; they become BridgeError(cause "plugin").
  ObjectPtr videoRoom(const ObjectPtr& request) {
    ObjectPtr body = new json::Object;
    body->set("janus", "message_plugin");
    body->set("plugin", kVideoRoom);
    body->set("request", request);
    const auto top = adminSuccess(body);
    auto response = objectField(top, "response");
    if (!response) {
      throw BridgeError("protocol", "VideoRoom answer from " + where() + " has no response object");
    }
    if (response->has("error_code")) {
      const int code = static_cast<int>(intField(response, "error_code").value_or(0));
      const std::string text = stringField(response, "error").value_or("no reason given");
      throw BridgeError("plugin",
                        "VideoRoom refused \"" + stringField(request, "request").value_or("") +
                            "\" (error " + std::to_string(code) + ": " + text + ")",
                        pluginErrorCode(code), code);
    }
    return response;
  }

  static ObjectPtr roomRequest(const char* name, std::int64_t room) {
    ObjectPtr r = new json::Object;
    r->set("request", name);
    r->set("room", room);
    return r;
  }

  struct HandleInfo {
    enum class What { Gone, Idle, Publisher, Other } what = What::Gone;
    std::int64_t room = 0;
    std::int64_t participant = 0;
    std::vector<Stream> streams;
  };

  // What a handle is: a VideoRoom publisher (with its room, id and streams), a handle that has
  // not joined yet, something else (subscriber, another plugin), or gone.
  HandleInfo handleInfo(const HandleRef& h) {
    ObjectPtr body = new json::Object;
    body->set("janus", "handle_info");
    body->set("session_id", h.session);
    body->set("handle_id", h.handle);
    HandleInfo out;
    ObjectPtr top;
    try {
      top = adminSuccess(body);
    } catch (const BridgeError& e) {
      // 458 no such session / 459 no such handle: it went away between listing and asking.
      if (e.cause() == "protocol") return out;
      throw;
    }
    const auto info = objectField(top, "info");
    const auto ps = objectField(info, "plugin_specific");
    out.what = HandleInfo::What::Other;
    if (stringField(info, "plugin") != kVideoRoom) return out;
    const auto type = stringField(ps, "type");
    if (!type) {
      out.what = HandleInfo::What::Idle;
      return out;
    }
    const auto room = intField(ps, "room");
    const auto id = intField(ps, "id");
    if (*type != "publisher" || !room || !id) return out;
    out.what = HandleInfo::What::Publisher;
    out.room = *room;
    out.participant = *id;
    if (const auto arr = arrayField(ps, "streams")) {
      for (std::size_t i = 0; i < arr->size(); ++i) {
        const auto st = objectOf(arr->get(static_cast<unsigned>(i)));
        auto mid = stringField(st, "mid");
        auto kind = stringField(st, "type");
        if (!mid || !kind) continue;
        out.streams.push_back({*mid, *kind, boolField(st, "disabled").value_or(false)});
      }
    }
    return out;
  }

  // Finds the participant's publisher handle and its streams: the cached handle if still
  // right, else a scan of sessions and handles through the Admin API that asks only about
  // handles not known to be subscribers or other plugins. nullopt: no such local publisher.
  std::optional<std::vector<Stream>> findStreams(std::int64_t room, std::int64_t participant) {
    using What = HandleInfo::What;
    const auto key = std::make_pair(room, participant);
    std::optional<HandleRef> cached;
    {
      auto c = handles.lock();
      if (auto it = c->publishers.find(key); it != c->publishers.end()) cached = it->second;
    }
    if (cached) {
      auto info = handleInfo(*cached);
      if (info.what == What::Publisher && info.room == room && info.participant == participant) {
        return std::move(info.streams);
      }
      handles.lock()->publishers.erase(key);
    }

    ObjectPtr listSessions = new json::Object;
    listSessions->set("janus", "list_sessions");
    const auto sessions = arrayField(adminSuccess(listSessions), "sessions");
    if (!sessions) throw BridgeError("protocol", "list_sessions from " + where() + " has no array");
    for (std::size_t i = 0; i < sessions->size(); ++i) {
      const auto session = intOf(sessions->get(static_cast<unsigned>(i)));
      if (!session) continue;
      ObjectPtr listHandles = new json::Object;
      listHandles->set("janus", "list_handles");
      listHandles->set("session_id", *session);
      ArrayPtr hs;
      try {
        hs = arrayField(adminSuccess(listHandles), "handles");
      } catch (const BridgeError& e) {
        if (e.cause() == "protocol") continue;  // the session went away meanwhile
        throw;
      }
      if (!hs) continue;
      for (std::size_t j = 0; j < hs->size(); ++j) {
        const auto handle = intOf(hs->get(static_cast<unsigned>(j)));
        if (!handle) continue;
        {
          auto c = handles.lock();
          if (c->others.count(*handle) != 0) continue;
        }
        const HandleRef ref{*session, *handle};
        auto info = handleInfo(ref);
        auto c = handles.lock();
        if (info.what == What::Publisher) {
          if (c->publishers.size() > 100000) c->publishers.clear();
          c->publishers[{info.room, info.participant}] = ref;
          if (info.room == room && info.participant == participant) return std::move(info.streams);
        } else if (info.what == What::Other) {
          // A subscriber stays one; bounded so a long-lived driver does not grow without end.
          if (c->others.size() > 100000) c->others.clear();
          c->others.insert(*handle);
        }
      }
    }
    return std::nullopt;
  }
};

Driver::Driver(Endpoint endpoint) : impl_(std::make_unique<Impl>(std::move(endpoint))) {}
Driver::~Driver() = default;

ProbeResult Driver::probe() {
  ProbeResult result;
  try {
    // `info` needs no secret, so it measures reachability and reports the version; a
    // secret-checked request (get_status, small and side-effect free) then tests credentials.
    ObjectPtr info = new json::Object;
    info->set("janus", "info");
    const auto t0 = std::chrono::steady_clock::now();
    const auto top = impl_->adminRequest(info);
    const auto t1 = std::chrono::steady_clock::now();
    if (stringField(top, "janus") != "server_info") {
      throw BridgeError("protocol", impl_->where() +
                                        " did not answer \"info\" with server_info: is admin_url "
                                        "the Janus Admin API?");
    }
    result.version = stringField(top, "version_string").value_or("");
    if (result.version.empty()) {
      if (auto v = intField(top, "version")) result.version = std::to_string(*v);
    }
    result.latencyMs =
        static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(t1 - t0).count());

    ObjectPtr status = new json::Object;
    status->set("janus", "get_status");
    impl_->adminSuccess(status);

    const auto plugins = objectField(top, "plugins");
    if (plugins && !plugins->has(kVideoRoom)) {
      throw BridgeError("plugin", "the bridge runs Janus " + result.version +
                                      " without the VideoRoom plugin: enable "
                                      "libjanus_videoroom.so in janus.jcfg");
    }
    result.up = true;
  } catch (const BridgeError& e) {
    result.up = false;
    result.cause = e.cause();
    result.message = e.what();
  } catch (const std::exception& e) {
    result.up = false;
    result.cause = "protocol";
    result.message = std::string("probing the bridge failed: ") + e.what();
  } catch (...) {
    result.up = false;
    result.cause = "protocol";
    result.message = "probing the bridge failed for an unknown reason";
  }
  if (!result.up) result.latencyMs = 0;
  return result;
}

bool Driver::createRoom(const RoomSpec& spec) {
  if (spec.room <= 0) throw InvalidInput("room number must be a positive integer");
  if (spec.publishers < 1) {
    throw InvalidInput("publishers must be at least 1 (Janus would let nobody publish with 0)");
  }
  auto r = Impl::roomRequest("create", spec.room);
  r->set("permanent", false);
  // Private: the public Janus API's `list` would otherwise show every conference to anyone.
  r->set("is_private", true);
  r->set("publishers", spec.publishers);
  if (!spec.description.empty()) r->set("description", spec.description);
  if (!spec.secret.empty()) r->set("secret", spec.secret);
  if (spec.pin) r->set("pin", *spec.pin);
  try {
    const auto response = impl_->videoRoom(r);
    if (stringField(response, "videoroom") != "created") {
      throw BridgeError("protocol",
                        "VideoRoom did not confirm creating room " + std::to_string(spec.room));
    }
    return true;
  } catch (const BridgeError& e) {
    if (e.janusCode() == 427) return false;
    throw;
  }
}

bool Driver::destroyRoom(std::int64_t room, const std::string& secret) {
  auto r = Impl::roomRequest("destroy", room);
  r->set("permanent", false);
  if (!secret.empty()) r->set("secret", secret);
  try {
    const auto response = impl_->videoRoom(r);
    if (stringField(response, "videoroom") != "destroyed") {
      throw BridgeError("protocol",
                        "VideoRoom did not confirm destroying room " + std::to_string(room));
    }
    return true;
  } catch (const BridgeError& e) {
    if (e.janusCode() == 426) return false;
    throw;
  }
}

bool Driver::roomExists(std::int64_t room) {
  const auto response = impl_->videoRoom(Impl::roomRequest("exists", room));
  const auto exists = boolField(response, "exists");
  if (!exists) throw BridgeError("protocol", "VideoRoom's \"exists\" answer has no boolean");
  return *exists;
}

std::vector<Participant> Driver::listParticipants(std::int64_t room) {
  const auto response = impl_->videoRoom(Impl::roomRequest("listparticipants", room));
  const auto arr = arrayField(response, "participants");
  if (!arr) throw BridgeError("protocol", "VideoRoom's participant list has no array");
  std::vector<Participant> out;
  out.reserve(arr->size());
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const auto p = objectOf(arr->get(static_cast<unsigned>(i)));
    const auto id = positiveField(p, "id");
    if (!id) continue;
    Participant part;
    part.id = *id;
    part.display = utf8::clip(stringField(p, "display").value_or(""), kMaxDisplayBytes);
    part.publisher = boolField(p, "publisher").value_or(false);
    part.talking = boolField(p, "talking").value_or(false);
    out.push_back(std::move(part));
  }
  return out;
}

void Driver::kick(std::int64_t room, const std::string& secret, std::int64_t participant) {
  auto r = Impl::roomRequest("kick", room);
  r->set("id", participant);
  if (!secret.empty()) r->set("secret", secret);
  impl_->videoRoom(r);
}

void Driver::mute(std::int64_t room, const std::string& secret, std::int64_t participant,
                  bool muted) {
  auto streams = impl_->findStreams(room, participant);
  if (!streams) {
    // No local publisher handle: either not in the room (say so precisely) or a remote
    // publisher, whose mids the Admin API does not expose.
    bool present = false;
    for (const auto& p : listParticipants(room)) present = present || p.id == participant;
    if (!present) {
      throw BridgeError(
          "plugin",
          "participant " + std::to_string(participant) + " is not in room " + std::to_string(room),
          "no_such_participant", 428);
    }
    throw BridgeError("plugin",
                      "cannot find the media streams of participant " +
                          std::to_string(participant) + " in room " + std::to_string(room) +
                          " (a remote publisher?)",
                      "plugin_error");
  }
  for (const auto& s : *streams) {
    if (s.type != "audio" || s.disabled) continue;
    auto r = Impl::roomRequest("moderate", room);
    r->set("id", participant);
    r->set("mid", s.mid);
    r->set("mute", muted);
    if (!secret.empty()) r->set("secret", secret);
    impl_->videoRoom(r);
  }
}

void Driver::editRoom(std::int64_t room, const std::string& secret, int publishers) {
  if (publishers < 1) throw InvalidInput("publishers must be at least 1");
  auto r = Impl::roomRequest("edit", room);
  r->set("new_publishers", publishers);
  r->set("permanent", false);
  if (!secret.empty()) r->set("secret", secret);
  const auto response = impl_->videoRoom(r);
  if (stringField(response, "videoroom") != "edited") {
    throw BridgeError("protocol", "VideoRoom did not confirm editing room " + std::to_string(room));
  }
}

// ----------------------------------------------------------------------------------------
// Event-handler posts

namespace {

std::optional<Event::Kind> videoRoomKind(const std::string& name) {
  static const std::map<std::string, Event::Kind> kinds{
      {"joined", Event::Kind::Joined},           {"leaving", Event::Kind::Leaving},
      {"kicked", Event::Kind::Kicked},           {"published", Event::Kind::Published},
      {"unpublished", Event::Kind::Unpublished}, {"destroyed", Event::Kind::Destroyed},
      {"created", Event::Kind::Created}};
  const auto it = kinds.find(name);
  if (it == kinds.end()) return std::nullopt;
  return it->second;
}

// One element of a post. nullopt: malformed, skipped. Kind::Other: well-formed but not a
// VideoRoom event vcrm follows (sessions, handles, other plugins, other VideoRoom events).
std::optional<Event> parseOne(const Poco::Dynamic::Var& v) {
  const auto o = objectOf(v);
  if (!o) return std::nullopt;
  const auto type = intField(o, "type");
  if (!type) return std::nullopt;
  Event e;
  e.timestampUs = std::max<std::int64_t>(0, intField(o, "timestamp").value_or(0));
  constexpr std::int64_t kPluginEvent = 64;  // JANUS_EVENT_TYPE_PLUGIN
  if (*type != kPluginEvent) return e;
  const auto ev = objectField(o, "event");
  if (!ev) return std::nullopt;
  if (stringField(ev, "plugin") != kVideoRoom) return e;
  const auto data = objectField(ev, "data");
  const auto name = stringField(data, "event");
  if (!data || !name) return std::nullopt;
  const auto kind = videoRoomKind(*name);
  if (!kind) return e;
  // String room ids (VideoRoom's string_ids option) are not used by vcrm: skipped.
  const auto room = positiveField(data, "room");
  if (!room) return std::nullopt;
  e.kind = *kind;
  e.room = *room;
  if (*kind == Event::Kind::Destroyed || *kind == Event::Kind::Created) return e;
  const auto id = positiveField(data, "id");
  if (!id) return std::nullopt;
  e.participant = *id;
  e.display = utf8::clip(stringField(data, "display").value_or(""), kMaxDisplayBytes);
  return e;
}

}  // namespace

std::vector<Event> parseEvents(const std::string& body) {
  if (body.size() > kMaxEventBodyBytes) {
    throw TooLarge("event post of " + std::to_string(body.size()) + " bytes exceeds " +
                   std::to_string(kMaxEventBodyBytes) + " bytes");
  }
  const Poco::Dynamic::Var doc = json::parse(body, kMaxEventDepth, "event post");
  std::vector<Event> out;
  if (doc.type() == typeid(ArrayPtr)) {
    const auto& arr = doc.extract<ArrayPtr>();
    out.reserve(arr->size());
    for (std::size_t i = 0; i < arr->size(); ++i) {
      if (auto e = parseOne(arr->get(static_cast<unsigned>(i)))) out.push_back(std::move(*e));
    }
  } else if (doc.type() == typeid(ObjectPtr)) {
    if (auto e = parseOne(doc)) out.push_back(std::move(*e));
  } else {
    throw InvalidInput("event post must be a JSON object or an array of objects");
  }
  return out;
}

}  // namespace vcrm::janus
