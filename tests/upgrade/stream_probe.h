// Helpers for the streaming tests: deterministic bytes at several GB/s, the process's peak
// memory, and a producer thread writing into a pipe that the test reads from.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <exception>
#include <fstream>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>

#include "vcrm/common/files.h"
#include "vcrm/upgrade/byte_stream.h"

namespace vcrm::upgrade::test {

// xorshift64: the data costs next to nothing, so a measurement is of the code under test.
class FastBytes {
 public:
  explicit FastBytes(std::uint64_t seed) : state_(seed) {}
  void fill(std::span<char> out) {
    for (std::size_t i = 0; i < out.size(); i += 8) {
      state_ ^= state_ << 13;
      state_ ^= state_ >> 7;
      state_ ^= state_ << 17;
      std::memcpy(out.data() + i, &state_, std::min<std::size_t>(8, out.size() - i));
    }
  }

 private:
  std::uint64_t state_;
};

// `size` bytes of FastBytes(seed), the same on every open.
class FastBytesSource : public ByteSource {
 public:
  FastBytesSource(std::uint64_t seed, std::uint64_t size) : gen_(seed), left_(size) {}
  std::size_t read(std::span<char> buffer) override {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), left_));
    gen_.fill(buffer.first(n));
    left_ -= n;
    return n;
  }

 private:
  FastBytes gen_;
  std::uint64_t left_;
};

// Peak resident memory since the last resetPeakRss(), in bytes.
inline std::size_t peakRss() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmHWM:")) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

inline void resetPeakRss() {
  std::ofstream("/proc/self/clear_refs") << "5";
}

// Runs `produce` on a thread writing into a pipe while `consume` reads the other end here.
// If the consumer stops early its end is closed, so the producer fails instead of blocking.
// The producer's exception, if any, is rethrown after the consumer's result is in.
inline void throughPipe(const std::function<void(ByteSink&)>& produce,
                        const std::function<void(ByteSource&)>& consume) {
  std::array<int, 2> fds{};
  if (::pipe(fds.data()) != 0) throw std::runtime_error("pipe failed");
  files::Fd readEnd(fds[0]);
  files::Fd writeEnd(fds[1]);
  ::signal(SIGPIPE, SIG_IGN);  // a closed read end is an error the producer sees, not a signal
  std::exception_ptr producerError;
  std::thread producer([&] {
    try {
      FdSink sink(writeEnd.get(), "pipe");
      produce(sink);
    } catch (...) {
      producerError = std::current_exception();
    }
    writeEnd.reset();
  });
  try {
    FdSource source(readEnd.get(), "pipe");
    consume(source);
  } catch (...) {
    readEnd.reset();
    producer.join();
    throw;
  }
  readEnd.reset();
  producer.join();
  if (producerError) std::rethrow_exception(producerError);
}

}  // namespace vcrm::upgrade::test
