#include "vcrm/upgrade/sealed_stream.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "vcrm/common/error.h"
#include "vcrm/upgrade/archive_error.h"

namespace vcrm::upgrade {

namespace {

// "VCRMBAK" and a NUL: a file that starts otherwise is not ours.
constexpr std::string_view kMagic{"VCRMBAK\0", 8};
constexpr std::size_t kSaltSize = 16;
constexpr std::size_t kNoncePrefixSize = 7;
constexpr std::size_t kCheckSize = 32;
constexpr std::size_t kCheckedHeaderSize = kSealedHeaderSize - kCheckSize;  // what the check covers
constexpr std::size_t kLengthSize = 4;  // the data length at the front of every chunk frame
constexpr std::uint64_t kMaxChunks = std::uint64_t{1} << 32;
// A chunk that fails is tried at this many positions either side to tell a dropped, swapped or
// repeated chunk from a changed one. Only the failure path pays for it.
constexpr std::uint64_t kReorderWindow = 8;

void putBe(std::string& out, std::uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out += static_cast<char>((value >> (8 * i)) & 0xff);
}

std::uint64_t getBe(std::string_view in, std::size_t offset, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(in[offset + i]);
  return v;
}

std::string nonceFor(std::string_view prefix, std::uint64_t counter, bool last) {
  std::string nonce(prefix);
  putBe(nonce, counter, 4);
  nonce += last ? '\x01' : '\x00';
  return nonce;
}

std::uint64_t scryptMemory(std::uint64_t n, std::uint64_t r, std::uint64_t p) {
  return 128 * r * (n + 2) + 128 * r * p;
}

// scrypt's 64 bytes: the AES key, then the key of the header check.
struct Keys {
  std::string derived;
  [[nodiscard]] std::string_view cipherKey() const {
    return std::string_view(derived).substr(0, 32);
  }
  [[nodiscard]] std::string_view checkKey() const {
    return std::string_view(derived).substr(32, 32);
  }
  ~Keys() { crypto::wipe(derived); }
};

Keys deriveKeys(std::string_view passphrase, std::string_view salt,
                const crypto::ScryptParams& params) {
  return Keys{crypto::scrypt(passphrase, salt, 64, params)};
}

}  // namespace

// ----------------------------------------------------------------------------------- writer

SealedWriter::SealedWriter(ByteSink& out, std::string_view passphrase, const SealOptions& options)
    : out_(out), capacity_(options.chunkSize - kLengthSize) {
  if (options.chunkSize < kMinChunkSize || options.chunkSize > kMaxChunkSize) {
    throw InvalidInput("archive chunk size must be between " + std::to_string(kMinChunkSize) +
                       " and " + std::to_string(kMaxChunkSize) + " bytes");
  }
  const crypto::ScryptParams& s = options.scrypt;
  if (s.n < 2 || !std::has_single_bit(s.n) || s.r < 1 || s.r > 255 || s.p < 1 || s.p > 255) {
    throw InvalidInput("archive scrypt parameters out of range: N a power of two, r and p 1-255");
  }
  if (passphrase.empty()) throw InvalidInput("a backup archive needs a passphrase");

  const std::string salt = crypto::randomBytes(kSaltSize);
  const std::string prefix = crypto::randomBytes(kNoncePrefixSize);
  const Keys keys = deriveKeys(passphrase, salt, s);
  cipher_ = std::make_unique<crypto::Aes256Gcm>(keys.cipherKey());

  header_.append(kMagic);
  putBe(header_, kSealedFormatVersion, 2);
  header_ += static_cast<char>(std::countr_zero(s.n));
  header_ += static_cast<char>(s.r);
  header_ += static_cast<char>(s.p);
  putBe(header_, options.chunkSize, 4);
  header_ += salt;
  header_ += prefix;
  header_ += crypto::hmacSha256(keys.checkKey(), header_);
  nonce_ = prefix;

  frame_.assign(options.chunkSize, '\0');
  sealed_.assign(options.chunkSize + kSealedTagSize, '\0');
  out_.write(header_);
}

SealedWriter::~SealedWriter() {
  crypto::wipe(frame_);
}

void SealedWriter::write(std::string_view bytes) {
  if (finished_) throw InvalidInput("archive writer: write() after finish()");
  while (!bytes.empty()) {
    // A full chunk is sealed only once more data arrives, so the last chunk may be full.
    if (filled_ == capacity_) sealChunk(false);
    const std::size_t n = std::min(capacity_ - filled_, bytes.size());
    std::memcpy(frame_.data() + kLengthSize + filled_, bytes.data(), n);
    filled_ += n;
    plaintextBytes_ += n;
    bytes.remove_prefix(n);
  }
}

void SealedWriter::finish() {
  if (finished_) throw InvalidInput("archive writer: finish() called twice");
  sealChunk(true);
  finished_ = true;
}

void SealedWriter::sealChunk(bool last) {
  if (chunk_ >= kMaxChunks) {
    throw InvalidInput("archive too large: more than 2^32 chunks of " +
                       std::to_string(frame_.size()) + " bytes");
  }
  std::string length;
  putBe(length, filled_, 4);
  std::memcpy(frame_.data(), length.data(), kLengthSize);
  std::memset(frame_.data() + kLengthSize + filled_, 0, capacity_ - filled_);
  const std::span<char> out(sealed_);
  cipher_->seal(nonceFor(nonce_, chunk_, last), header_, frame_, out.first(frame_.size()),
                out.last<kSealedTagSize>());
  out_.write(sealed_);
  ++chunk_;
  filled_ = 0;
}

// ----------------------------------------------------------------------------------- reader

SealedReader::SealedReader(ByteSource& in, std::string_view passphrase, const UnsealLimits& limits)
    : in_(in) {
  header_.assign(kSealedHeaderSize, '\0');
  const std::size_t got = readFull(in_, header_);
  if (got < kMagic.size() || std::string_view(header_).substr(0, kMagic.size()) != kMagic) {
    throw ArchiveError(ArchiveReason::NotAnArchive,
                       "this file is not a vcrm backup archive (it does not start with the vcrm "
                       "archive header); choose the .vcrmbak file vcrm created");
  }
  if (got < kSealedHeaderSize) {
    throw ArchiveError(ArchiveReason::Truncated,
                       "the archive is truncated inside its header (" + std::to_string(got) +
                           " of " + std::to_string(kSealedHeaderSize) +
                           " bytes); copy it again from where it was stored");
  }
  const auto version = getBe(header_, 8, 2);
  if (version > kSealedFormatVersion) {
    throw ArchiveError(ArchiveReason::UnsupportedFormat,
                       "the archive uses container format version " + std::to_string(version) +
                           ", newer than this vcrm reads (" + std::to_string(kSealedFormatVersion) +
                           "); restore it with the vcrm version that created it or a newer one");
  }
  const auto logN = static_cast<std::uint32_t>(getBe(header_, 10, 1));
  const auto r = static_cast<std::uint32_t>(getBe(header_, 11, 1));
  const auto p = static_cast<std::uint32_t>(getBe(header_, 12, 1));
  chunkSize_ = static_cast<std::size_t>(getBe(header_, 13, 4));
  const bool paramsOk = version >= 1 && logN >= 1 && logN <= limits.maxScryptLogN && r >= 1 &&
                        p >= 1 && p <= limits.maxScryptP &&
                        scryptMemory(std::uint64_t{1} << logN, r, p) <= limits.maxScryptMemoryBytes;
  if (!paramsOk || chunkSize_ < kMinChunkSize || chunkSize_ > kMaxChunkSize) {
    throw ArchiveError(ArchiveReason::BadHeader,
                       "the archive header is damaged (its version, key-derivation parameters or "
                       "chunk size are out of range); copy it again from where it was stored");
  }
  const std::string_view salt = std::string_view(header_).substr(17, kSaltSize);
  noncePrefix_ = header_.substr(17 + kSaltSize, kNoncePrefixSize);

  const Keys keys = deriveKeys(passphrase, salt, {.n = std::uint64_t{1} << logN, .r = r, .p = p});
  const std::string check =
      crypto::hmacSha256(keys.checkKey(), std::string_view(header_).substr(0, kCheckedHeaderSize));
  if (!crypto::constantTimeEqual(check, std::string_view(header_).substr(kCheckedHeaderSize))) {
    throw ArchiveError(ArchiveReason::WrongPassphrase,
                       "wrong passphrase or not a vcrm archive: the passphrase does not open "
                       "this archive (or its header was altered); enter the passphrase it was "
                       "created with");
  }
  cipher_ = std::make_unique<crypto::Aes256Gcm>(keys.cipherKey());
  sealed_.assign(chunkSize_ + kSealedTagSize, '\0');
  frame_.assign(chunkSize_, '\0');
}

SealedReader::~SealedReader() {
  crypto::wipe(frame_);
}

std::uint64_t SealedReader::chunkOffset(std::uint64_t index) const {
  return kSealedHeaderSize + index * (chunkSize_ + kSealedTagSize);
}

std::size_t SealedReader::read(std::span<char> buffer) {
  while (dataBegin_ == dataEnd_) {
    if (ended_ || buffer.empty()) return 0;
    loadChunk();
  }
  const std::size_t n = std::min(buffer.size(), dataEnd_ - dataBegin_);
  std::memcpy(buffer.data(), frame_.data() + dataBegin_, n);
  dataBegin_ += n;
  position_ += n;
  return n;
}

bool SealedReader::openAs(std::uint64_t counter, bool last) {
  const std::string_view sealed(sealed_);
  return cipher_->open(nonceFor(noncePrefix_, counter, last), header_, sealed.substr(0, chunkSize_),
                       sealed.substr(chunkSize_), frame_);
}

void SealedReader::loadChunk() {
  std::size_t got = 0;
  const std::span<char> buf(sealed_);
  if (hasLookahead_) {
    buf[0] = lookahead_;
    hasLookahead_ = false;
    got = 1 + readFull(in_, buf.subspan(1));
  } else {
    got = readFull(in_, buf);
  }
  if (got == 0) {
    throw ArchiveError(ArchiveReason::Truncated,
                       "the archive is truncated: it ends after " + std::to_string(chunk_) +
                           " chunks (at byte " + std::to_string(chunkOffset(chunk_)) +
                           ") without its end marker; copy it again from where it was stored");
  }
  if (got < buf.size()) {
    throw ArchiveError(ArchiveReason::Truncated,
                       "the archive is truncated inside chunk " + std::to_string(chunk_) +
                           " (the file ends at byte " + std::to_string(chunkOffset(chunk_) + got) +
                           "); copy it again from where it was stored");
  }
  // One byte of look-ahead says whether this must be the last chunk.
  char next = 0;
  const bool atEnd = in_.read(std::span<char>(&next, 1)) == 0;
  if (!atEnd) {
    hasLookahead_ = true;
    lookahead_ = next;
  }
  bool last = atEnd;
  if (!openAs(chunk_, atEnd)) {
    // Authentic at this position but not the last: the file ends early. Its data is handed
    // out and the next read reports the truncation, so the error names where data ran out.
    if (atEnd && openAs(chunk_, false)) {
      last = false;
    } else {
      refuseChunk(atEnd);
    }
  }

  const std::size_t capacity = chunkSize_ - kLengthSize;
  const auto length = static_cast<std::size_t>(getBe(frame_, 0, 4));
  const bool lengthOk = last ? length <= capacity : length == capacity;
  if (!lengthOk || std::any_of(frame_.begin() + static_cast<std::ptrdiff_t>(kLengthSize + length),
                               frame_.end(), [](char c) { return c != 0; })) {
    // Authentic but not laid out as vcrm writes chunks: made by something else with the key.
    throw ArchiveError(ArchiveReason::ChunkAltered,
                       "chunk " + std::to_string(chunk_) +
                           " of the archive is malformed (its data length or padding is wrong); "
                           "it was not written by vcrm");
  }
  dataBegin_ = kLengthSize;
  dataEnd_ = kLengthSize + length;
  ended_ = last;
  ++chunk_;
}

void SealedReader::refuseChunk(bool atEnd) {
  const std::string where = "chunk " + std::to_string(chunk_) + " (bytes " +
                            std::to_string(chunkOffset(chunk_)) + "-" +
                            std::to_string(chunkOffset(chunk_ + 1) - 1) + " of the file)";
  if (!atEnd && openAs(chunk_, true)) {
    crypto::wipe(frame_);
    throw ArchiveError(ArchiveReason::TrailingData,
                       "the archive ends at " + where +
                           " but more bytes follow; the file has data appended to it");
  }
  for (std::uint64_t d = 1; d <= kReorderWindow; ++d) {
    for (const std::uint64_t j : {chunk_ - d, chunk_ + d}) {
      if (j >= kMaxChunks) continue;  // wrapped below 0 or past the counter range
      for (const bool last : {false, true}) {
        if (!openAs(j, last)) continue;
        crypto::wipe(frame_);
        throw ArchiveError(ArchiveReason::ChunksOutOfOrder,
                           where + " is chunk " + std::to_string(j) +
                               " of the archive: chunks were dropped, repeated or reordered; "
                               "copy the archive again from where it was stored");
      }
    }
  }
  throw ArchiveError(ArchiveReason::ChunkAltered,
                     where +
                         " fails authentication: the archive was altered or damaged; copy "
                         "it again from where it was stored");
}

}  // namespace vcrm::upgrade
