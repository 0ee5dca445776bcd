#include "vcrm/daemon/event_bus.h"

namespace vcrm {

void EventBus::publish(std::string type, std::string json) {
  {
    auto st = state_.lock();
    if (st->closed) return;
    st->recent.push_back(Message{st->nextId++, std::move(type), std::move(json)});
    while (st->recent.size() > keep_) st->recent.pop_front();
  }
  changed_.notify_all();
}

std::vector<EventBus::Message> EventBus::waitAfter(std::uint64_t afterId,
                                                   std::chrono::milliseconds timeout) {
  auto st = state_.lock();
  st.waitFor(changed_, timeout, [&] { return st->closed || st->nextId - 1 > afterId; });
  std::vector<Message> out;
  for (const auto& m : st->recent) {
    if (m.id > afterId) out.push_back(m);
  }
  return out;
}

std::uint64_t EventBus::lastId() const {
  return state_.lock()->nextId - 1;
}

std::shared_ptr<const void> EventBus::reader() {
  ++state_.lock()->readers;
  return std::shared_ptr<const void>(this, [this](const void*) {
    --state_.lock()->readers;
    changed_.notify_all();
  });
}

bool EventBus::awaitReaders(std::chrono::milliseconds timeout) {
  auto st = state_.lock();
  return st.waitFor(changed_, timeout, [&] { return st->readers == 0; });
}

void EventBus::close() {
  state_.lock()->closed = true;
  changed_.notify_all();
}

bool EventBus::closed() const {
  return state_.lock()->closed;
}

}  // namespace vcrm
