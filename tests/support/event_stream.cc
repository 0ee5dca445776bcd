#include "event_stream.h"

#include <Poco/JSON/Parser.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>

namespace vcrm::test {

EventStream::EventStream(const VcrmdProcess& app, const std::string& token) {
  Poco::Net::Context::Ptr ctx = new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "", "",
                                                       (app.stateDir() / "tls/server.crt").string(),
                                                       Poco::Net::Context::VERIFY_STRICT, 9, false);
  session_ = std::make_unique<Poco::Net::HTTPSClientSession>(
      "127.0.0.1", static_cast<Poco::UInt16>(app.httpsPort()), ctx);
  // Longer than the server's keep-alive period, shorter than any test's patience.
  session_->setTimeout(Poco::Timespan(20, 0));
  Poco::Net::HTTPRequest req("GET", "/api/v1/events", Poco::Net::HTTPMessage::HTTP_1_1);
  req.set("Authorization", "Bearer " + token);
  session_->sendRequest(req);
  Poco::Net::HTTPResponse resp;
  auto& is = session_->receiveResponse(resp);
  status_ = static_cast<int>(resp.getStatus());
  contentType_ = resp.getContentType();
  retryAfter_ = resp.get("Retry-After", "");
  if (status_ != 200) {
    Poco::StreamCopier::copyToString(is, body_);
    seen_.lock()->ended = true;
    return;
  }
  reader_ = std::thread([this, in = &is] { read(*in); });
}

EventStream::~EventStream() {
  close();
}

void EventStream::read(std::istream& is) {
  try {
    std::string line;
    StreamEvent ev;
    while (std::getline(is, line)) {
      if (line.rfind("event: ", 0) == 0) ev.type = line.substr(7);
      if (line.rfind("data: ", 0) == 0) {
        ev.data = line.substr(6);
        seen_.lock()->events.push_back(ev);
        changed_.notify_all();
      }
    }
  } catch (const std::exception&) {  // the connection broke or was dropped by close()
  }
  seen_.lock()->ended = true;
  changed_.notify_all();
}

std::string EventStream::errorCode() const {
  try {
    Poco::JSON::Parser p;
    return p.parse(body_)
        .extract<Poco::JSON::Object::Ptr>()
        ->getObject("error")
        ->getValue<std::string>("code");
  } catch (...) {
    return {};
  }
}

bool EventStream::waitFor(const std::function<bool(const StreamEvent&)>& accept,
                          std::chrono::milliseconds timeout) {
  auto seen = seen_.lock();
  std::size_t checked = 0;
  bool found = false;
  seen.waitFor(changed_, timeout, [&] {
    for (; checked < seen->events.size() && !found; ++checked)
      found = accept(seen->events[checked]);
    return found || seen->ended;
  });
  return found;
}

bool EventStream::waitEnded(std::chrono::milliseconds timeout) {
  auto seen = seen_.lock();
  return seen.waitFor(changed_, timeout, [&] { return seen->ended; });
}

std::vector<StreamEvent> EventStream::events() const {
  return seen_.lock()->events;
}

void EventStream::close() {
  if (session_) {
    try {
      session_->abort();
    } catch (const std::exception&) {  // already closed
    }
  }
  if (reader_.joinable()) reader_.join();
  session_.reset();  // only now: the reader read from the session's stream
}

}  // namespace vcrm::test
