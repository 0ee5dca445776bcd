// Guarded<T>: a value that can only be reached while holding its mutex.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <utility>

namespace vcrm {

template <typename T>
class Guarded {
 public:
  // A locked view of the value; the lock is released when the handle goes away.
  template <typename U>
  class Handle {
   public:
    Handle(U& value, std::mutex& m) : lock_(m), value_(value) {}
    U& operator*() const { return value_; }
    U* operator->() const { return &value_; }
    // Waits on `cv` (releasing the lock meanwhile) until `pred` holds or `timeout` passes.
    template <typename Rep, typename Period, typename Pred>
    bool waitFor(std::condition_variable& cv, std::chrono::duration<Rep, Period> timeout,
                 Pred pred) {
      return cv.wait_for(lock_, timeout, pred);
    }

   private:
    std::unique_lock<std::mutex> lock_;
    U& value_;
  };

  Guarded() = default;
  template <typename... Args>
  explicit Guarded(Args&&... args) : value_(std::forward<Args>(args)...) {}

  Handle<T> lock() { return Handle<T>(value_, mutex_); }
  Handle<const T> lock() const { return Handle<const T>(value_, mutex_); }

 private:
  mutable std::mutex mutex_;
  T value_;
};

}  // namespace vcrm
