// A live event stream (GET /api/v1/events) read as a browser tab's EventSource would: on a
// connection of its own, by a thread that collects the events. The destructor drops the
// connection and joins the thread, even when a test fails half-way.
#pragma once

#include <Poco/Net/HTTPSClientSession.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "vcrm/common/guarded.h"
#include "vcrmd_process.h"

namespace vcrm::test {

struct StreamEvent {
  std::string type;  // "conference", "participant", "bridge"
  std::string data;  // the JSON payload
};

class EventStream {
 public:
  // Opens the stream with a bearer token and reads the response head: status() is known when
  // the constructor returns, and on a refusal body() holds the error.
  EventStream(const VcrmdProcess& app, const std::string& token);
  ~EventStream();
  EventStream(const EventStream&) = delete;
  EventStream& operator=(const EventStream&) = delete;

  int status() const { return status_; }
  const std::string& body() const { return body_; }  // the error body of a refusal
  const std::string& contentType() const { return contentType_; }
  const std::string& retryAfter() const { return retryAfter_; }
  std::string errorCode() const;

  // Waits until an event read so far or later satisfies `accept`; false when the time is up or
  // the stream ended first.
  bool waitFor(const std::function<bool(const StreamEvent&)>& accept,
               std::chrono::milliseconds timeout);
  // Waits until the server ends the stream (or the connection breaks); false when the time is up.
  bool waitEnded(std::chrono::milliseconds timeout);
  std::vector<StreamEvent> events() const;
  // Drops the connection, as a closed tab does.
  void close();

 private:
  void read(std::istream& is);
  std::unique_ptr<Poco::Net::HTTPSClientSession> session_;
  int status_ = 0;
  std::string body_;
  std::string contentType_;
  std::string retryAfter_;
  struct Seen {
    std::vector<StreamEvent> events;
    bool ended = false;
  };
  Guarded<Seen> seen_;
  std::condition_variable changed_;
  std::thread reader_;
};

}  // namespace vcrm::test
