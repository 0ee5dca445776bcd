// Byte streams the archive code pushes into (ByteSink) and pulls from (ByteSource), so an
// archive streams between files, pipes, uploads and downloads in constant memory.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace vcrm::upgrade {

class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual void write(std::string_view bytes) = 0;  // all of it, or throws
};

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Up to buffer.size() bytes; 0 only at the end of the stream. Throws on failure.
  virtual std::size_t read(std::span<char> buffer) = 0;
};

// Writes to a descriptor the caller owns; `what` names it in errors ("archive /x/y.vcrmbak").
class FdSink : public ByteSink {
 public:
  FdSink(int fd, std::string what) : fd_(fd), what_(std::move(what)) {}
  void write(std::string_view bytes) override;

 private:
  int fd_;
  std::string what_;
};

// Reads from a descriptor the caller owns.
class FdSource : public ByteSource {
 public:
  FdSource(int fd, std::string what) : fd_(fd), what_(std::move(what)) {}
  std::size_t read(std::span<char> buffer) override;

 private:
  int fd_;
  std::string what_;
};

class StringSink : public ByteSink {
 public:
  void write(std::string_view bytes) override { data_.append(bytes); }
  [[nodiscard]] const std::string& data() const { return data_; }
  std::string take() { return std::move(data_); }

 private:
  std::string data_;
};

// Reads a view the caller keeps alive.
class StringSource : public ByteSource {
 public:
  explicit StringSource(std::string_view data) : data_(data) {}
  std::size_t read(std::span<char> buffer) override;

 private:
  std::string_view data_;
};

// Reads exactly buffer.size() bytes unless the stream ends first; returns how many it got.
std::size_t readFull(ByteSource& source, std::span<char> buffer);

}  // namespace vcrm::upgrade
