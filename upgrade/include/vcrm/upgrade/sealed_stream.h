// The encrypted container of a backup archive: a passphrase-keyed, chunked AES-256-GCM stream
// (the STREAM construction) whose chunk order and end are authenticated. SealedWriter is a sink
// you push plaintext into; SealedReader a source you pull verified plaintext from. Both run in
// constant memory (two chunk buffers) at any stream size. The byte layout is in the README
// ("Backup archive file format").
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "vcrm/common/crypto.h"
#include "vcrm/upgrade/byte_stream.h"

namespace vcrm::upgrade {

inline constexpr std::uint16_t kSealedFormatVersion = 1;
inline constexpr std::size_t kSealedHeaderSize = 72;
inline constexpr std::size_t kSealedTagSize = 16;
inline constexpr std::size_t kDefaultChunkSize = 1u << 20;
inline constexpr std::size_t kMinChunkSize = 64;
inline constexpr std::size_t kMaxChunkSize = 16u << 20;

struct SealOptions {
  // N = 2^17, r = 8: 128 MiB and about half a second per archive, so each passphrase guess
  // costs an attacker as much.
  crypto::ScryptParams scrypt{.n = 1u << 17, .r = 8, .p = 1};
  // Bytes of plaintext frame per chunk (4 of them hold the chunk's data length).
  std::size_t chunkSize = kDefaultChunkSize;
};

// Encrypts into `out`. The header is written at construction (after the scrypt derivation);
// finish() seals the last chunk, which marks the end. Without finish() the stream is refused
// by the reader as truncated — a writer destroyed by an exception leaves no valid archive.
class SealedWriter : public ByteSink {
 public:
  SealedWriter(ByteSink& out, std::string_view passphrase, const SealOptions& options = {});
  ~SealedWriter() override;
  SealedWriter(const SealedWriter&) = delete;
  SealedWriter& operator=(const SealedWriter&) = delete;

  void write(std::string_view bytes) override;
  void finish();
  [[nodiscard]] std::uint64_t plaintextBytes() const { return plaintextBytes_; }

 private:
  void sealChunk(bool last);

  ByteSink& out_;
  std::unique_ptr<crypto::Aes256Gcm> cipher_;
  std::string header_;
  std::string nonce_;
  std::size_t capacity_;  // data bytes per chunk
  std::string frame_;     // 4-byte length || data || zero padding
  std::size_t filled_ = 0;
  std::string sealed_;  // ciphertext || tag of one chunk
  std::uint64_t chunk_ = 0;
  std::uint64_t plaintextBytes_ = 0;
  bool finished_ = false;
};

// Limits a reader puts on a header it has not authenticated yet, so a hostile file cannot
// make opening it take minutes or gigabytes.
struct UnsealLimits {
  std::uint64_t maxScryptMemoryBytes = 256u << 20;
  std::uint32_t maxScryptLogN = 20;
  std::uint32_t maxScryptP = 16;
};

// Decrypts from `in`. The constructor reads the header and checks the passphrase (throwing
// ArchiveError WrongPassphrase, NotAnArchive, UnsupportedFormat or BadHeader). read() returns
// only plaintext of chunks whose tag verified, and returns 0 only after the last chunk
// verified; anything else (truncation, a changed, dropped, swapped or repeated chunk, bytes
// after the end) throws ArchiveError naming the chunk and its offset.
class SealedReader : public ByteSource {
 public:
  SealedReader(ByteSource& in, std::string_view passphrase, const UnsealLimits& limits = {});
  ~SealedReader() override;
  SealedReader(const SealedReader&) = delete;
  SealedReader& operator=(const SealedReader&) = delete;

  std::size_t read(std::span<char> buffer) override;
  // Plaintext bytes handed out so far.
  [[nodiscard]] std::uint64_t position() const { return position_; }
  // Chunk size and scrypt parameters from the header (for "what does this archive hold").
  [[nodiscard]] std::size_t chunkSize() const { return chunkSize_; }

 private:
  void loadChunk();
  [[noreturn]] void refuseChunk(bool atEnd);
  bool openAs(std::uint64_t counter, bool last);
  [[nodiscard]] std::uint64_t chunkOffset(std::uint64_t index) const;

  ByteSource& in_;
  std::unique_ptr<crypto::Aes256Gcm> cipher_;
  std::string header_;
  std::string noncePrefix_;
  std::size_t chunkSize_ = 0;
  std::string sealed_;  // the chunk being checked
  std::string frame_;   // its plaintext once verified
  std::size_t dataBegin_ = 0;
  std::size_t dataEnd_ = 0;
  bool hasLookahead_ = false;
  char lookahead_ = 0;
  std::uint64_t chunk_ = 0;
  std::uint64_t position_ = 0;
  bool ended_ = false;
};

}  // namespace vcrm::upgrade
