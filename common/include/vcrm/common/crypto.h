// Cryptography on OpenSSL 3, every handle owned by RAII. Byte strings are std::string
// (binary-safe) or std::span<const uint8_t>; hex/base64 helpers convert for transport.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace vcrm::crypto {

using Bytes = std::string;  // binary-safe byte string

Bytes randomBytes(std::size_t n);  // from the OS CSPRNG; throws CryptoError on failure

std::string toHex(std::string_view bytes);
Bytes fromHex(std::string_view hex);  // throws InvalidInput on odd length or non-hex
std::string base64Encode(std::string_view bytes);
std::string base64UrlEncode(std::string_view bytes);  // no padding
Bytes base64Decode(std::string_view text);  // accepts padding and whitespace; throws InvalidInput

// Overwrites the bytes with zeros in a way the compiler cannot drop (keys, plaintext buffers).
void wipe(std::string& secret);

// Compares in time independent of where the inputs differ.
bool constantTimeEqual(std::string_view a, std::string_view b);

// Streaming SHA-256: feed data in pieces, then take the digest once.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  void update(std::string_view data);
  void update(const void* data, std::size_t size);
  std::array<std::uint8_t, 32> finish();  // may be called once
  // An independent copy of the state so far: the digest of a prefix without ending this one.
  Sha256 clone() const;
  std::string finishHex();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::array<std::uint8_t, 32> sha256(std::string_view data);
std::string sha256Hex(std::string_view data);
Bytes hmacSha256(std::string_view key, std::string_view data);  // 32 bytes

// Ed25519 keys, raw 32-byte public and private (seed) forms as in RFC 8032.
class Ed25519PrivateKey {
 public:
  static Ed25519PrivateKey generate();
  static Ed25519PrivateKey fromSeed(std::string_view seed32);  // throws InvalidInput if not 32 B
  ~Ed25519PrivateKey();
  Ed25519PrivateKey(Ed25519PrivateKey&&) noexcept;
  Ed25519PrivateKey& operator=(Ed25519PrivateKey&&) noexcept;

  Bytes seed() const;       // 32 bytes
  Bytes publicKey() const;  // 32 bytes
  Bytes sign(std::string_view message) const;  // 64 bytes

 private:
  struct Impl;
  explicit Ed25519PrivateKey(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Returns false (never throws) for a bad signature or a key/signature of the wrong size.
bool ed25519Verify(std::string_view publicKey32, std::string_view message,
                   std::string_view signature64);

// AES-256-GCM. `seal` returns nonce(12) || ciphertext || tag(16). `open` throws CryptoError
// ("authentication failed") on any tampering, a wrong key, or truncated input.
Bytes aes256GcmSeal(std::string_view key32, std::string_view plaintext, std::string_view aad = {});
Bytes aes256GcmOpen(std::string_view key32, std::string_view sealed, std::string_view aad = {});

// AES-256-GCM under one key for many messages with nonces the caller chooses (a chunked stream
// derives each chunk's nonce from its position). The caller guarantees a nonce is never reused
// under the same key. Outputs go into caller buffers so a stream needs no allocation per chunk.
class Aes256Gcm {
 public:
  static constexpr std::size_t kKeySize = 32;
  static constexpr std::size_t kNonceSize = 12;
  static constexpr std::size_t kTagSize = 16;

  explicit Aes256Gcm(std::string_view key32);  // throws InvalidInput if not 32 bytes
  ~Aes256Gcm();                                 // wipes the key
  Aes256Gcm(const Aes256Gcm&) = delete;
  Aes256Gcm& operator=(const Aes256Gcm&) = delete;
  Aes256Gcm(Aes256Gcm&&) noexcept;
  Aes256Gcm& operator=(Aes256Gcm&&) noexcept;

  // Encrypts `plaintext` into `ciphertext` (same size) and writes the 16-byte tag.
  void seal(std::string_view nonce12, std::string_view aad, std::string_view plaintext,
            std::span<char> ciphertext, std::span<char, kTagSize> tag);
  // Decrypts into `plaintext` (same size as `ciphertext`). False when the tag does not match;
  // `plaintext` is then wiped, so unauthenticated bytes never reach the caller.
  [[nodiscard]] bool open(std::string_view nonce12, std::string_view aad,
                          std::string_view ciphertext, std::string_view tag16,
                          std::span<char> plaintext);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// scrypt (RFC 7914) key derivation.
struct ScryptParams {
  std::uint64_t n = 1 << 15;
  std::uint32_t r = 8;
  std::uint32_t p = 1;
};
Bytes scrypt(std::string_view password, std::string_view salt, std::size_t length,
             const ScryptParams& params = {});

// Password hashing for user accounts: "$scrypt$ln=15,r=8,p=1$<salt b64>$<hash b64>".
// The whole password is hashed (no truncation).
std::string hashPassword(std::string_view password, const ScryptParams& params = {});
// False for a wrong password or an unparseable stored hash.
bool verifyPassword(std::string_view password, std::string_view stored);

}  // namespace vcrm::crypto
