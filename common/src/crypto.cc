#include "vcrm/common/crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <climits>
#include <limits>

#include "vcrm/common/error.h"
#include "ossl_ptr.h"

namespace vcrm::crypto {

namespace {

using MdCtxPtr = detail::OsslPtr<EVP_MD_CTX, EVP_MD_CTX_free>;
using PkeyPtr = detail::OsslPtr<EVP_PKEY, EVP_PKEY_free>;
using PkeyCtxPtr = detail::OsslPtr<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using CipherCtxPtr = detail::OsslPtr<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>;
using MacPtr = detail::OsslPtr<EVP_MAC, EVP_MAC_free>;
using MacCtxPtr = detail::OsslPtr<EVP_MAC_CTX, EVP_MAC_CTX_free>;
using KdfPtr = detail::OsslPtr<EVP_KDF, EVP_KDF_free>;
using KdfCtxPtr = detail::OsslPtr<EVP_KDF_CTX, EVP_KDF_CTX_free>;

constexpr std::size_t kGcmNonceSize = 12;
constexpr std::size_t kGcmTagSize = 16;
constexpr std::size_t kAesKeySize = 32;
constexpr std::size_t kEd25519KeySize = 32;
constexpr std::size_t kEd25519SignatureSize = 64;

// Password hash parameters. The bounds keep a tampered or corrupt stored hash from making one
// login attempt take minutes or gigabytes; hashPassword refuses to write what verify would reject.
constexpr std::size_t kPasswordSaltSize = 16;
constexpr std::size_t kPasswordHashSize = 32;
constexpr std::uint32_t kMaxLogN = 17;  // 128 MiB at r=8: a tampered hash cannot exhaust memory
constexpr std::uint32_t kMaxR = 8;
constexpr std::uint32_t kMaxP = 4;
constexpr std::string_view kScryptPrefix = "$scrypt$";

constexpr std::string_view kAuthFailed =
    "AES-256-GCM authentication failed: the data was altered or truncated, or the key or "
    "associated data differs from the one it was sealed with";

// Takes the whole OpenSSL error queue, so a failure here is not blamed on a later call.
[[noreturn]] void throwOpenSsl(const std::string& what) {
  std::string details;
  unsigned long code = 0;
  while ((code = ERR_get_error()) != 0) {
    std::array<char, 256> buffer{};
    ERR_error_string_n(code, buffer.data(), buffer.size());
    if (!details.empty()) details += "; ";
    details += buffer.data();
  }
  throw CryptoError(what + (details.empty() ? std::string() : " (OpenSSL: " + details + ")"));
}

const unsigned char* bytesOf(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

unsigned char* bytesOf(std::string& s) {
  return reinterpret_cast<unsigned char*>(s.data());
}

// Several EVP calls take an int length; larger inputs are fed in pieces.
template <typename Fn>
void forEachChunk(std::string_view data, Fn&& fn) {
  constexpr std::size_t kMaxChunk = 1u << 30;
  while (!data.empty()) {
    std::size_t n = std::min(data.size(), kMaxChunk);
    fn(data.substr(0, n));
    data.remove_prefix(n);
  }
}

constexpr std::string_view kBase64Std =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view kBase64Url =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64EncodeWith(std::string_view bytes, std::string_view alphabet, bool pad) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    std::uint32_t v = (std::uint32_t(std::uint8_t(bytes[i])) << 16) |
                      (std::uint32_t(std::uint8_t(bytes[i + 1])) << 8) |
                      std::uint32_t(std::uint8_t(bytes[i + 2]));
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    std::uint32_t v = std::uint32_t(std::uint8_t(bytes[i])) << 16;
    if (rest == 2) v |= std::uint32_t(std::uint8_t(bytes[i + 1])) << 8;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    if (rest == 2) out += alphabet[(v >> 6) & 63];
    if (pad) out.append(rest == 1 ? 2 : 1, '=');
  }
  return out;
}

// One decoder serves both alphabets because the header offers no separate URL-safe decoder;
// the two alphabets differ only in characters that cannot be confused with each other.
int base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void checkScryptParams(const ScryptParams& params, std::size_t length) {
  if (length == 0) throw InvalidInput("scrypt: the requested key length must be at least 1 byte");
  if (params.n < 2 || !std::has_single_bit(params.n)) {
    throw InvalidInput("scrypt: N must be a power of two greater than 1, got " +
                       std::to_string(params.n));
  }
  if (params.r == 0 || params.p == 0) {
    throw InvalidInput("scrypt: r and p must be at least 1");
  }
}

// Memory scrypt allocates, computed as OpenSSL does (128·r·(N+2) + 128·r·p), so the limit we
// pass is exactly what these parameters need instead of OpenSSL's 32 MiB default, which
// N=2^15, r=8 already exceeds.
std::uint64_t scryptMemoryBytes(const ScryptParams& params) {
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  const std::uint64_t blockBytes = 128ull * params.r;
  if (params.n > kMax / blockBytes - 2) {
    throw InvalidInput("scrypt: N and r are too large to fit in memory");
  }
  const std::uint64_t v = blockBytes * (params.n + 2);
  if (params.p > (kMax - v) / blockBytes) {
    throw InvalidInput("scrypt: p and r are too large to fit in memory");
  }
  return v + blockBytes * params.p;
}

bool inPasswordBounds(std::uint32_t logN, std::uint32_t r, std::uint32_t p) {
  return logN >= 1 && logN <= kMaxLogN && r >= 1 && r <= kMaxR && p >= 1 && p <= kMaxP;
}

// Parses "<key><decimal>" at the front of `text` and consumes it.
bool takeNumber(std::string_view& text, std::string_view key, std::uint32_t& out) {
  if (!text.starts_with(key)) return false;
  text.remove_prefix(key.size());
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(begin, end, out);
  if (ec != std::errc() || ptr == begin) return false;
  text.remove_prefix(static_cast<std::size_t>(ptr - begin));
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

Bytes randomBytes(std::size_t n) {
  Bytes out(n, '\0');
  std::size_t done = 0;
  while (done < n) {
    const int chunk = static_cast<int>(std::min<std::size_t>(n - done, INT_MAX));
    if (RAND_bytes(bytesOf(out) + done, chunk) != 1) {
      throwOpenSsl("cannot get random bytes from the system");
    }
    done += static_cast<std::size_t>(chunk);
  }
  return out;
}

std::string toHex(std::string_view bytes) {
  constexpr std::string_view kDigits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

Bytes fromHex(std::string_view hex) {
  if (hex.size() % 2 != 0) {
    throw InvalidInput("invalid hex: it has an odd number of digits (" +
                       std::to_string(hex.size()) + "); each byte needs two hex digits");
  }
  Bytes out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = hexValue(hex[i]);
    const int lo = hexValue(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      // The position, not the character: the text may be a key.
      throw InvalidInput("invalid hex: the character at position " +
                         std::to_string(hi < 0 ? i : i + 1) + " is not a hex digit (0-9, a-f)");
    }
    out += static_cast<char>((hi << 4) | lo);
  }
  return out;
}

std::string base64Encode(std::string_view bytes) {
  return base64EncodeWith(bytes, kBase64Std, true);
}

std::string base64UrlEncode(std::string_view bytes) {
  return base64EncodeWith(bytes, kBase64Url, false);
}

Bytes base64Decode(std::string_view text) {
  Bytes out;
  out.reserve(text.size() / 4 * 3 + 3);
  std::uint32_t acc = 0;
  int bits = 0;
  std::size_t dataChars = 0;
  std::size_t padChars = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    if (c == '=') {
      ++padChars;
      continue;
    }
    const int v = base64Value(c);
    if (v < 0) {
      throw InvalidInput("invalid base64: the character at position " + std::to_string(i) +
                         " is not a base64 character");
    }
    if (padChars > 0) {
      throw InvalidInput("invalid base64: data continues after '=' padding at position " +
                         std::to_string(i));
    }
    ++dataChars;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  const std::size_t rem = dataChars % 4;
  if (rem == 1) {
    throw InvalidInput("invalid base64: the text is truncated (a lone character at the end)");
  }
  // Padding is optional, but when present it must be exactly what completes the last group.
  if (padChars > 0 && (rem == 0 || padChars != 4 - rem)) {
    throw InvalidInput("invalid base64: wrong amount of '=' padding");
  }
  return out;
}

void wipe(std::string& secret) {
  OPENSSL_cleanse(secret.data(), secret.size());
}

bool constantTimeEqual(std::string_view a, std::string_view b) {
  // Lengths are not secret here (MACs and hashes have fixed sizes), only the contents are.
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// ---------------------------------------------------------------------------------------------

struct Sha256::Impl {
  MdCtxPtr ctx;
  bool finished = false;
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  impl_->ctx.reset(EVP_MD_CTX_new());
  if (!impl_->ctx) throwOpenSsl("SHA-256: cannot allocate a digest context");
  if (EVP_DigestInit_ex(impl_->ctx.get(), EVP_sha256(), nullptr) != 1) {
    throwOpenSsl("SHA-256: cannot initialise the digest");
  }
}

Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(std::string_view data) {
  update(data.data(), data.size());
}

void Sha256::update(const void* data, std::size_t size) {
  if (!impl_) throw CryptoError("SHA-256: this hasher was moved from; use the moved-to one");
  if (impl_->finished) {
    throw CryptoError("SHA-256: update() after finish(); start a new Sha256 for new data");
  }
  if (size == 0) return;
  if (EVP_DigestUpdate(impl_->ctx.get(), data, size) != 1) {
    throwOpenSsl("SHA-256: cannot hash data");
  }
}

std::array<std::uint8_t, 32> Sha256::finish() {
  if (!impl_) throw CryptoError("SHA-256: this hasher was moved from; use the moved-to one");
  if (impl_->finished) throw CryptoError("SHA-256: finish() may be called only once");
  std::array<std::uint8_t, 32> digest{};
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(impl_->ctx.get(), digest.data(), &len) != 1 || len != digest.size()) {
    throwOpenSsl("SHA-256: cannot finish the digest");
  }
  impl_->finished = true;
  return digest;
}

Sha256 Sha256::clone() const {
  if (!impl_) throw CryptoError("SHA-256: this hasher was moved from; use the moved-to one");
  if (impl_->finished) throw CryptoError("SHA-256: clone() after finish()");
  Sha256 copy;
  if (EVP_MD_CTX_copy_ex(copy.impl_->ctx.get(), impl_->ctx.get()) != 1) {
    throwOpenSsl("SHA-256: cannot copy the digest state");
  }
  return copy;
}

std::string Sha256::finishHex() {
  const auto digest = finish();
  return toHex(std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
}

std::array<std::uint8_t, 32> sha256(std::string_view data) {
  std::array<std::uint8_t, 32> digest{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), digest.data(), &len, EVP_sha256(), nullptr) != 1 ||
      len != digest.size()) {
    throwOpenSsl("SHA-256: cannot hash data");
  }
  return digest;
}

std::string sha256Hex(std::string_view data) {
  const auto digest = sha256(data);
  return toHex(std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
}

Bytes hmacSha256(std::string_view key, std::string_view data) {
  MacPtr mac(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
  if (!mac) throwOpenSsl("HMAC-SHA256: HMAC is not available in this OpenSSL");
  MacCtxPtr ctx(EVP_MAC_CTX_new(mac.get()));
  if (!ctx) throwOpenSsl("HMAC-SHA256: cannot allocate a MAC context");

  // OSSL_PARAM wants a mutable pointer even for input.
  std::string digestName = "SHA256";
  const std::array<OSSL_PARAM, 2> params = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digestName.data(), 0),
      OSSL_PARAM_construct_end()};
  // A null key means "keep the previous key" to EVP_MAC_init, so an empty key still needs a
  // non-null pointer.
  static const unsigned char kNoKey = 0;
  const unsigned char* keyPtr = key.empty() ? &kNoKey : bytesOf(key);
  if (EVP_MAC_init(ctx.get(), keyPtr, key.size(), params.data()) != 1) {
    throwOpenSsl("HMAC-SHA256: cannot set the key");
  }
  if (!data.empty() && EVP_MAC_update(ctx.get(), bytesOf(data), data.size()) != 1) {
    throwOpenSsl("HMAC-SHA256: cannot process data");
  }
  Bytes out(32, '\0');
  std::size_t len = 0;
  if (EVP_MAC_final(ctx.get(), bytesOf(out), &len, out.size()) != 1 || len != out.size()) {
    throwOpenSsl("HMAC-SHA256: cannot finish the MAC");
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

struct Ed25519PrivateKey::Impl {
  PkeyPtr key;
};

Ed25519PrivateKey::Ed25519PrivateKey(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Ed25519PrivateKey::~Ed25519PrivateKey() = default;
Ed25519PrivateKey::Ed25519PrivateKey(Ed25519PrivateKey&&) noexcept = default;
Ed25519PrivateKey& Ed25519PrivateKey::operator=(Ed25519PrivateKey&&) noexcept = default;

Ed25519PrivateKey Ed25519PrivateKey::generate() {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "ED25519", nullptr));
  if (!ctx) throwOpenSsl("Ed25519: the algorithm is not available in this OpenSSL");
  if (EVP_PKEY_keygen_init(ctx.get()) != 1) throwOpenSsl("Ed25519: cannot start key generation");
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_generate(ctx.get(), &raw) != 1) throwOpenSsl("Ed25519: cannot generate a key");
  auto impl = std::make_unique<Impl>();
  impl->key.reset(raw);
  return Ed25519PrivateKey(std::move(impl));
}

Ed25519PrivateKey Ed25519PrivateKey::fromSeed(std::string_view seed32) {
  if (seed32.size() != kEd25519KeySize) {
    throw InvalidInput("Ed25519 private key seed must be 32 bytes, got " +
                       std::to_string(seed32.size()));
  }
  auto impl = std::make_unique<Impl>();
  impl->key.reset(
      EVP_PKEY_new_raw_private_key_ex(nullptr, "ED25519", nullptr, bytesOf(seed32), seed32.size()));
  if (!impl->key) throwOpenSsl("Ed25519: cannot load the private key");
  return Ed25519PrivateKey(std::move(impl));
}

Bytes Ed25519PrivateKey::seed() const {
  if (!impl_) throw CryptoError("Ed25519: this key was moved from; use the moved-to one");
  Bytes out(kEd25519KeySize, '\0');
  std::size_t len = out.size();
  if (EVP_PKEY_get_raw_private_key(impl_->key.get(), bytesOf(out), &len) != 1 ||
      len != kEd25519KeySize) {
    throwOpenSsl("Ed25519: cannot export the private key");
  }
  return out;
}

Bytes Ed25519PrivateKey::publicKey() const {
  if (!impl_) throw CryptoError("Ed25519: this key was moved from; use the moved-to one");
  Bytes out(kEd25519KeySize, '\0');
  std::size_t len = out.size();
  if (EVP_PKEY_get_raw_public_key(impl_->key.get(), bytesOf(out), &len) != 1 ||
      len != kEd25519KeySize) {
    throwOpenSsl("Ed25519: cannot export the public key");
  }
  return out;
}

Bytes Ed25519PrivateKey::sign(std::string_view message) const {
  if (!impl_) throw CryptoError("Ed25519: this key was moved from; use the moved-to one");
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) throwOpenSsl("Ed25519: cannot allocate a signing context");
  // Pure Ed25519 hashes internally, so no digest is named and the message goes in at once.
  if (EVP_DigestSignInit_ex(ctx.get(), nullptr, nullptr, nullptr, nullptr, impl_->key.get(),
                            nullptr) != 1) {
    throwOpenSsl("Ed25519: cannot start signing");
  }
  Bytes sig(kEd25519SignatureSize, '\0');
  std::size_t len = sig.size();
  if (EVP_DigestSign(ctx.get(), bytesOf(sig), &len, bytesOf(message), message.size()) != 1 ||
      len != kEd25519SignatureSize) {
    throwOpenSsl("Ed25519: cannot sign");
  }
  return sig;
}

bool ed25519Verify(std::string_view publicKey32, std::string_view message,
                   std::string_view signature64) {
  if (publicKey32.size() != kEd25519KeySize || signature64.size() != kEd25519SignatureSize) {
    return false;
  }
  PkeyPtr key(EVP_PKEY_new_raw_public_key_ex(nullptr, "ED25519", nullptr, bytesOf(publicKey32),
                                             publicKey32.size()));
  MdCtxPtr ctx(EVP_MD_CTX_new());
  const bool ok = key && ctx &&
                  EVP_DigestVerifyInit_ex(ctx.get(), nullptr, nullptr, nullptr, nullptr, key.get(),
                                          nullptr) == 1 &&
                  EVP_DigestVerify(ctx.get(), bytesOf(signature64), signature64.size(),
                                   bytesOf(message), message.size()) == 1;
  // A rejected signature leaves an entry on the thread's error queue; it is an expected
  // outcome, not an error, and must not be reported by whichever call fails next.
  if (!ok) ERR_clear_error();
  return ok;
}

// ---------------------------------------------------------------------------------------------

Bytes aes256GcmSeal(std::string_view key32, std::string_view plaintext, std::string_view aad) {
  Aes256Gcm cipher(key32);
  // A random 96-bit nonce per message: with one key sealing far fewer than 2^32 messages the
  // chance of a repeat (which would break GCM) is negligible.
  const Bytes nonce = randomBytes(kGcmNonceSize);
  Bytes out(kGcmNonceSize + plaintext.size() + kGcmTagSize, '\0');
  std::copy(nonce.begin(), nonce.end(), out.begin());
  const std::span<char> all(out);
  cipher.seal(nonce, aad, plaintext, all.subspan(kGcmNonceSize, plaintext.size()),
              all.last<kGcmTagSize>());
  return out;
}

Bytes aes256GcmOpen(std::string_view key32, std::string_view sealed, std::string_view aad) {
  Aes256Gcm cipher(key32);
  if (sealed.size() < kGcmNonceSize + kGcmTagSize) throw CryptoError(std::string(kAuthFailed));
  const std::string_view ciphertext =
      sealed.substr(kGcmNonceSize, sealed.size() - kGcmNonceSize - kGcmTagSize);
  Bytes plain(ciphertext.size(), '\0');
  if (!cipher.open(sealed.substr(0, kGcmNonceSize), aad, ciphertext,
                   sealed.substr(sealed.size() - kGcmTagSize), plain)) {
    throw CryptoError(std::string(kAuthFailed));
  }
  return plain;
}

// ---------------------------------------------------------------------------------------------

struct Aes256Gcm::Impl {
  std::array<unsigned char, kAesKeySize> key{};
  CipherCtxPtr ctx;
  ~Impl() { OPENSSL_cleanse(key.data(), key.size()); }
};

namespace {

void checkGcmSizes(std::string_view nonce, std::size_t in, std::size_t out) {
  if (nonce.size() != kGcmNonceSize) {
    throw InvalidInput("AES-256-GCM nonce must be 12 bytes, got " + std::to_string(nonce.size()));
  }
  if (in != out) {
    throw InvalidInput("AES-256-GCM: the output buffer (" + std::to_string(out) +
                       " bytes) must be as large as the input (" + std::to_string(in) + ")");
  }
}

}  // namespace

Aes256Gcm::Aes256Gcm(std::string_view key32) : impl_(std::make_unique<Impl>()) {
  if (key32.size() != kAesKeySize) {
    throw InvalidInput("AES-256-GCM key must be 32 bytes, got " + std::to_string(key32.size()));
  }
  std::copy_n(bytesOf(key32), kAesKeySize, impl_->key.begin());
  impl_->ctx.reset(EVP_CIPHER_CTX_new());
  if (!impl_->ctx) throwOpenSsl("AES-256-GCM: cannot allocate a cipher context");
}

Aes256Gcm::~Aes256Gcm() = default;
Aes256Gcm::Aes256Gcm(Aes256Gcm&&) noexcept = default;
Aes256Gcm& Aes256Gcm::operator=(Aes256Gcm&&) noexcept = default;

void Aes256Gcm::seal(std::string_view nonce12, std::string_view aad, std::string_view plaintext,
                     std::span<char> ciphertext, std::span<char, kTagSize> tag) {
  if (!impl_) throw CryptoError("AES-256-GCM: this cipher was moved from; use the moved-to one");
  checkGcmSizes(nonce12, plaintext.size(), ciphertext.size());
  EVP_CIPHER_CTX* ctx = impl_->ctx.get();
  if (EVP_EncryptInit_ex2(ctx, EVP_aes_256_gcm(), impl_->key.data(), bytesOf(nonce12), nullptr) !=
      1) {
    throwOpenSsl("AES-256-GCM: cannot start encryption");
  }
  forEachChunk(aad, [&](std::string_view piece) {
    int len = 0;
    if (EVP_EncryptUpdate(ctx, nullptr, &len, bytesOf(piece), static_cast<int>(piece.size())) !=
        1) {
      throwOpenSsl("AES-256-GCM: cannot process associated data");
    }
  });
  auto* out = reinterpret_cast<unsigned char*>(ciphertext.data());
  std::size_t written = 0;
  forEachChunk(plaintext, [&](std::string_view piece) {
    int len = 0;
    if (EVP_EncryptUpdate(ctx, out + written, &len, bytesOf(piece),
                          static_cast<int>(piece.size())) != 1) {
      throwOpenSsl("AES-256-GCM: cannot encrypt");
    }
    written += static_cast<std::size_t>(len);
  });
  int finalLen = 0;
  if (EVP_EncryptFinal_ex(ctx, out + written, &finalLen) != 1) {
    throwOpenSsl("AES-256-GCM: cannot finish encryption");
  }
  written += static_cast<std::size_t>(finalLen);
  if (written != plaintext.size()) {
    throw CryptoError("AES-256-GCM: the cipher produced an unexpected amount of output");
  }
  std::array<OSSL_PARAM, 2> params = {
      OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag.data(), kGcmTagSize),
      OSSL_PARAM_construct_end()};
  if (EVP_CIPHER_CTX_get_params(ctx, params.data()) != 1) {
    throwOpenSsl("AES-256-GCM: cannot read the authentication tag");
  }
}

bool Aes256Gcm::open(std::string_view nonce12, std::string_view aad, std::string_view ciphertext,
                     std::string_view tag16, std::span<char> plaintext) {
  if (!impl_) throw CryptoError("AES-256-GCM: this cipher was moved from; use the moved-to one");
  checkGcmSizes(nonce12, ciphertext.size(), plaintext.size());
  if (tag16.size() != kGcmTagSize) return false;
  EVP_CIPHER_CTX* ctx = impl_->ctx.get();
  if (EVP_DecryptInit_ex2(ctx, EVP_aes_256_gcm(), impl_->key.data(), bytesOf(nonce12), nullptr) !=
      1) {
    throwOpenSsl("AES-256-GCM: cannot start decryption");
  }
  forEachChunk(aad, [&](std::string_view piece) {
    int len = 0;
    if (EVP_DecryptUpdate(ctx, nullptr, &len, bytesOf(piece), static_cast<int>(piece.size())) !=
        1) {
      throwOpenSsl("AES-256-GCM: cannot process associated data");
    }
  });
  auto* out = reinterpret_cast<unsigned char*>(plaintext.data());
  std::size_t written = 0;
  forEachChunk(ciphertext, [&](std::string_view piece) {
    int len = 0;
    if (EVP_DecryptUpdate(ctx, out + written, &len, bytesOf(piece),
                          static_cast<int>(piece.size())) != 1) {
      throwOpenSsl("AES-256-GCM: cannot decrypt");
    }
    written += static_cast<std::size_t>(len);
  });
  std::array<unsigned char, kGcmTagSize> tag{};
  std::copy_n(bytesOf(tag16), kGcmTagSize, tag.begin());
  const std::array<OSSL_PARAM, 2> params = {
      OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag.data(), tag.size()),
      OSSL_PARAM_construct_end()};
  if (EVP_CIPHER_CTX_set_params(ctx, params.data()) != 1) {
    throwOpenSsl("AES-256-GCM: cannot set the authentication tag");
  }
  int finalLen = 0;
  if (EVP_DecryptFinal_ex(ctx, out + written, &finalLen) != 1) {
    OPENSSL_cleanse(plaintext.data(), plaintext.size());
    ERR_clear_error();
    return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------

Bytes scrypt(std::string_view password, std::string_view salt, std::size_t length,
             const ScryptParams& params) {
  checkScryptParams(params, length);
  std::uint64_t n = params.n;
  std::uint32_t r = params.r;
  std::uint32_t p = params.p;
  std::uint64_t maxMem = scryptMemoryBytes(params);

  KdfPtr kdf(EVP_KDF_fetch(nullptr, "SCRYPT", nullptr));
  if (!kdf) throwOpenSsl("scrypt is not available in this OpenSSL");
  KdfCtxPtr ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) throwOpenSsl("scrypt: cannot allocate a KDF context");

  // OSSL_PARAM takes void* for input buffers; OpenSSL only reads them. An empty password or
  // salt still needs a valid pointer.
  static char kEmpty = 0;
  auto buffer = [](std::string_view s) {
    return s.empty() ? static_cast<void*>(&kEmpty) : const_cast<char*>(s.data());
  };
  const std::array<OSSL_PARAM, 7> kdfParams = {
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, buffer(password), password.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, buffer(salt), salt.size()),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
      OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
      OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxMem),
      OSSL_PARAM_construct_end()};

  Bytes out(length, '\0');
  if (EVP_KDF_derive(ctx.get(), bytesOf(out), out.size(), kdfParams.data()) != 1) {
    throwOpenSsl("scrypt: key derivation failed (N=" + std::to_string(params.n) +
                 ", r=" + std::to_string(params.r) + ", p=" + std::to_string(params.p) + ")");
  }
  return out;
}

std::string hashPassword(std::string_view password, const ScryptParams& params) {
  const bool powerOfTwo = params.n >= 2 && std::has_single_bit(params.n);
  const auto logN = static_cast<std::uint32_t>(std::countr_zero(params.n));
  if (!powerOfTwo || !inPasswordBounds(logN, params.r, params.p)) {
    throw InvalidInput(
        "password hashing parameters out of range: N must be a power of two from "
        "2 to 2^20, r from 1 to 16 and p from 1 to 4");
  }
  const Bytes salt = randomBytes(kPasswordSaltSize);
  const Bytes hash = scrypt(password, salt, kPasswordHashSize, params);
  return std::string(kScryptPrefix) + "ln=" + std::to_string(logN) +
         ",r=" + std::to_string(params.r) + ",p=" + std::to_string(params.p) + "$" +
         base64EncodeWith(salt, kBase64Std, false) + "$" +
         base64EncodeWith(hash, kBase64Std, false);
}

bool verifyPassword(std::string_view password, std::string_view stored) {
  if (!stored.starts_with(kScryptPrefix)) return false;
  std::string_view rest = stored.substr(kScryptPrefix.size());

  std::uint32_t logN = 0;
  std::uint32_t r = 0;
  std::uint32_t p = 0;
  if (!takeNumber(rest, "ln=", logN) || !takeNumber(rest, ",r=", r) ||
      !takeNumber(rest, ",p=", p) || !rest.starts_with('$')) {
    return false;
  }
  if (!inPasswordBounds(logN, r, p)) return false;
  rest.remove_prefix(1);

  const std::size_t dollar = rest.find('$');
  if (dollar == std::string_view::npos) return false;
  const std::string_view saltText = rest.substr(0, dollar);
  const std::string_view hashText = rest.substr(dollar + 1);
  if (saltText.empty() || hashText.empty() || hashText.find('$') != std::string_view::npos) {
    return false;
  }

  Bytes salt;
  Bytes expected;
  try {
    salt = base64Decode(saltText);
    expected = base64Decode(hashText);
  } catch (const InvalidInput&) {
    return false;
  }
  // Hashes we write are 32 bytes; a very short one would be guessable, a very long one is junk.
  if (salt.size() < 8 || salt.size() > 64 || expected.size() < 16 || expected.size() > 64) {
    return false;
  }

  ScryptParams params;
  params.n = std::uint64_t{1} << logN;
  params.r = r;
  params.p = p;
  const Bytes actual = scrypt(password, salt, expected.size(), params);
  return constantTimeEqual(actual, expected);
}

}  // namespace vcrm::crypto
