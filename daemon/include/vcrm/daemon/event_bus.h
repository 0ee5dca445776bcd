// In-process publish/subscribe for live changes (conferences, participants, bridges) that the
// server-sent event stream forwards to browsers. Keeps the last messages so a client that
// reconnects with Last-Event-ID misses nothing recent.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vcrm/common/guarded.h"

namespace vcrm {

class EventBus {
 public:
  struct Message {
    std::uint64_t id = 0;
    std::string type;  // e.g. "conference", "participant", "bridge"
    std::string json;  // the payload, a JSON object
  };

  explicit EventBus(std::size_t keep = 2000) : keep_(keep) {}

  void publish(std::string type, std::string json);
  // Messages after `afterId`, waiting up to `timeout` for at least one. Empty on timeout; once
  // the bus is closed it returns at once with what was published before the close, so the
  // last steps of whatever closed it (a restore's "conferences-ended") still reach readers.
  std::vector<Message> waitAfter(std::uint64_t afterId, std::chrono::milliseconds timeout);
  std::uint64_t lastId() const;
  // A reader (an event stream) holds this while it forwards messages; close() then
  // awaitReaders() lets every reader write out the last messages before the listeners stop.
  std::shared_ptr<const void> reader();
  void close();
  bool closed() const;
  // Waits up to `timeout` for every reader() handle to be dropped; false if some remain.
  bool awaitReaders(std::chrono::milliseconds timeout);

 private:
  struct State {
    std::deque<Message> recent;
    std::uint64_t nextId = 1;
    bool closed = false;
    int readers = 0;
  };
  std::size_t keep_;
  Guarded<State> state_;
  std::condition_variable changed_;
};

}  // namespace vcrm
