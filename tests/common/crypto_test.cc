// Known-answer and tamper tests for vcrm::crypto. Vectors are copied from the RFCs and FIPS
// documents named at each test, so a passing run means interoperability, not self-consistency.
#include "vcrm/common/crypto.h"

#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "vcrm/common/error.h"

namespace vcrm::crypto {
namespace {

std::string hex(const std::array<std::uint8_t, 32>& digest) {
  return toHex(std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
}

// ------------------------------------------------------------------------------------ SHA-256

// FIPS 180-2 appendix B and the NIST example values.
constexpr std::string_view kSha256Abc =
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
constexpr std::string_view kSha256Empty =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr std::string_view kSha256TwoBlock =
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
constexpr std::string_view kSha256MillionA =
    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";

TEST(Sha256Test, CloneGivesThePrefixDigestAndLeavesTheOriginalRunning) {
  vcrm::crypto::Sha256 h;
  h.update("ab");
  auto prefix = h.clone();
  h.update("c");
  prefix.update("c");
  EXPECT_EQ(h.finishHex(), kSha256Abc);
  EXPECT_EQ(prefix.finishHex(), kSha256Abc);
}

TEST(Sha256Test, Fips180Abc) {
  EXPECT_EQ(sha256Hex("abc"), kSha256Abc);
  EXPECT_EQ(hex(sha256("abc")), kSha256Abc);
}

TEST(Sha256Test, EmptyString) {
  EXPECT_EQ(sha256Hex(""), kSha256Empty);
  Sha256 streaming;
  EXPECT_EQ(streaming.finishHex(), kSha256Empty);
}

TEST(Sha256Test, Fips180TwoBlockMessage) {
  EXPECT_EQ(sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"), kSha256TwoBlock);
}

TEST(Sha256Test, MillionAInUnevenChunksEqualsOneShot) {
  const std::string message(1000000, 'a');
  // Chunk sizes straddle the 64-byte block boundary in every way.
  const std::vector<std::size_t> sizes = {1, 7, 63, 64, 65, 127, 1000, 4093, 0, 3};
  Sha256 streaming;
  std::size_t offset = 0;
  for (std::size_t i = 0; offset < message.size(); ++i) {
    const std::size_t n = std::min(sizes[i % sizes.size()], message.size() - offset);
    if (i % 2 == 0) {
      streaming.update(std::string_view(message).substr(offset, n));
    } else {
      streaming.update(message.data() + offset, n);
    }
    offset += n;
  }
  const std::string streamed = streaming.finishHex();
  EXPECT_EQ(streamed, kSha256MillionA);
  EXPECT_EQ(streamed, sha256Hex(message));
}

TEST(Sha256Test, FinishTwiceOrUpdateAfterFinishThrows) {
  Sha256 hasher;
  hasher.update("abc");
  EXPECT_EQ(hex(hasher.finish()), kSha256Abc);
  EXPECT_THROW(hasher.finish(), CryptoError);
  EXPECT_THROW(hasher.update("more"), CryptoError);
}

TEST(Sha256Test, MovedHasherContinues) {
  Sha256 first;
  first.update("a");
  Sha256 second(std::move(first));
  second.update("bc");
  Sha256 third;
  third = std::move(second);
  EXPECT_EQ(third.finishHex(), kSha256Abc);
}

// ------------------------------------------------------------------------------- HMAC-SHA256

struct HmacVector {
  const char* name;
  std::string keyHex;
  std::string dataHex;
  std::string macHex;
};

std::string hexOf(std::string_view text) {
  return toHex(text);
}

// RFC 4231 section 4.
const std::vector<HmacVector>& rfc4231() {
  static const std::vector<HmacVector> vectors = {
      {"case 1", "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", hexOf("Hi There"),
       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
      {"case 2", hexOf("Jefe"), hexOf("what do ya want for nothing?"),
       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
      {"case 3", std::string(40, 'a'), std::string(100, 'd'),
       "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
      {"case 4", "0102030405060708090a0b0c0d0e0f10111213141516171819",
       [] {
         std::string s;
         for (int i = 0; i < 50; ++i) s += "cd";
         return s;
       }(),
       "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
      {"case 6", std::string(262, 'a'),
       hexOf("Test Using Larger Than Block-Size Key - Hash Key First"),
       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
      {"case 7", std::string(262, 'a'),
       hexOf("This is a test using a larger than block-size key and a larger than block-size "
             "data. The key needs to be hashed before being used by the HMAC algorithm."),
       "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
  };
  return vectors;
}

TEST(HmacSha256Test, Rfc4231Cases1To4And6And7) {
  for (const auto& v : rfc4231()) {
    SCOPED_TRACE(v.name);
    const Bytes mac = hmacSha256(fromHex(v.keyHex), fromHex(v.dataHex));
    EXPECT_EQ(mac.size(), 32u);
    EXPECT_EQ(toHex(mac), v.macHex);
  }
}

TEST(HmacSha256Test, Rfc4231Case5TruncatedPrefix) {
  const Bytes mac =
      hmacSha256(fromHex("0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c"), "Test With Truncation");
  EXPECT_EQ(toHex(mac).substr(0, 32), "a3b6167473100ee06e0c796c2955552b");
}

TEST(HmacSha256Test, EmptyKeyAndMessage) {
  EXPECT_EQ(toHex(hmacSha256("", "")),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

// ------------------------------------------------------------------------------------ Ed25519

struct Ed25519Vector {
  std::string_view seed;
  std::string_view publicKey;
  std::string_view message;
  std::string_view signature;
};

// RFC 8032 section 7.1.
constexpr Ed25519Vector kTest1 = {
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"};
constexpr Ed25519Vector kTest2 = {
    "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
    "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
    "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"};
constexpr Ed25519Vector kTest3 = {
    "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
    "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
    "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
    "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"};
// TEST SHA(abc): the message is SHA-512("abc").
constexpr Ed25519Vector kTestShaAbc = {
    "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
    "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
    "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
    "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
    "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589"
    "09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704"};

void checkVector(const Ed25519Vector& v) {
  const auto key = Ed25519PrivateKey::fromSeed(fromHex(v.seed));
  EXPECT_EQ(toHex(key.seed()), v.seed);
  EXPECT_EQ(toHex(key.publicKey()), v.publicKey);
  const Bytes message = fromHex(v.message);
  const Bytes signature = key.sign(message);
  EXPECT_EQ(toHex(signature), v.signature);
  EXPECT_TRUE(ed25519Verify(fromHex(v.publicKey), message, fromHex(v.signature)));
}

TEST(Ed25519Test, Rfc8032Test1) {
  checkVector(kTest1);
}
TEST(Ed25519Test, Rfc8032Test2) {
  checkVector(kTest2);
}
TEST(Ed25519Test, Rfc8032Test3) {
  checkVector(kTest3);
}
TEST(Ed25519Test, Rfc8032TestShaAbc) {
  checkVector(kTestShaAbc);
}

TEST(Ed25519Test, FlippedMessageBitIsRejected) {
  for (const auto& v : {kTest2, kTest3, kTestShaAbc}) {
    const Bytes message = fromHex(v.message);
    for (std::size_t bit = 0; bit < message.size() * 8; bit += 3) {
      Bytes tampered = message;
      tampered[bit / 8] = static_cast<char>(tampered[bit / 8] ^ (1 << (bit % 8)));
      EXPECT_FALSE(ed25519Verify(fromHex(v.publicKey), tampered, fromHex(v.signature)))
          << "bit " << bit;
    }
  }
  // Appending a byte to the empty message of TEST 1 must also fail.
  EXPECT_FALSE(
      ed25519Verify(fromHex(kTest1.publicKey), std::string(1, '\0'), fromHex(kTest1.signature)));
}

TEST(Ed25519Test, FlippedSignatureBitIsRejected) {
  const Bytes signature = fromHex(kTest2.signature);
  // Every byte of R (first half) and S (second half).
  for (std::size_t i = 0; i < signature.size(); ++i) {
    Bytes tampered = signature;
    tampered[i] = static_cast<char>(tampered[i] ^ 0x01);
    EXPECT_FALSE(ed25519Verify(fromHex(kTest2.publicKey), fromHex(kTest2.message), tampered))
        << "byte " << i;
  }
}

TEST(Ed25519Test, WrongPublicKeyIsRejected) {
  EXPECT_FALSE(
      ed25519Verify(fromHex(kTest1.publicKey), fromHex(kTest2.message), fromHex(kTest2.signature)));
}

TEST(Ed25519Test, WrongSizeKeyOrSignatureIsRejectedWithoutThrowing) {
  const Bytes pub = fromHex(kTest2.publicKey);
  const Bytes msg = fromHex(kTest2.message);
  const Bytes sig = fromHex(kTest2.signature);
  EXPECT_FALSE(ed25519Verify(pub.substr(0, 31), msg, sig));
  EXPECT_FALSE(ed25519Verify(pub + '\0', msg, sig));
  EXPECT_FALSE(ed25519Verify("", msg, sig));
  EXPECT_FALSE(ed25519Verify(pub, msg, sig.substr(0, 63)));
  EXPECT_FALSE(ed25519Verify(pub, msg, sig + '\0'));
  EXPECT_FALSE(ed25519Verify(pub, msg, ""));
  // The untouched triple still verifies, so the failures above are about size alone.
  EXPECT_TRUE(ed25519Verify(pub, msg, sig));
}

TEST(Ed25519Test, SeedOfWrongSizeThrowsInvalidInput) {
  EXPECT_THROW(Ed25519PrivateKey::fromSeed(std::string(31, 'x')), InvalidInput);
  EXPECT_THROW(Ed25519PrivateKey::fromSeed(std::string(33, 'x')), InvalidInput);
  EXPECT_THROW(Ed25519PrivateKey::fromSeed(""), InvalidInput);
}

TEST(Ed25519Test, GeneratedKeySignsAndRestoresFromSeed) {
  const auto key = Ed25519PrivateKey::generate();
  const Bytes sig = key.sign("hello appliance");
  EXPECT_EQ(sig.size(), 64u);
  EXPECT_TRUE(ed25519Verify(key.publicKey(), "hello appliance", sig));

  const auto restored = Ed25519PrivateKey::fromSeed(key.seed());
  EXPECT_EQ(restored.publicKey(), key.publicKey());
  // Ed25519 is deterministic: the same key signs the same message identically.
  EXPECT_EQ(restored.sign("hello appliance"), sig);

  const auto other = Ed25519PrivateKey::generate();
  EXPECT_NE(other.publicKey(), key.publicKey());
}

TEST(Ed25519Test, MovedKeyKeepsWorking) {
  auto key = Ed25519PrivateKey::fromSeed(fromHex(kTest1.seed));
  Ed25519PrivateKey moved(std::move(key));
  EXPECT_EQ(toHex(moved.publicKey()), kTest1.publicKey);
  auto assigned = Ed25519PrivateKey::generate();
  assigned = std::move(moved);
  EXPECT_EQ(toHex(assigned.sign("")), kTest1.signature);
}

// ------------------------------------------------------------------------------- AES-256-GCM

class AesGcmTest : public ::testing::Test {
 protected:
  const Bytes key_ = randomBytes(32);
};

TEST_F(AesGcmTest, RoundTrip) {
  for (const std::string& plain :
       {std::string(), std::string("x"), std::string(1 << 20, 'p'), std::string("bin\0ary", 7)}) {
    const Bytes sealed = aes256GcmSeal(key_, plain, "room-42");
    EXPECT_EQ(aes256GcmOpen(key_, sealed, "room-42"), plain);
  }
  EXPECT_EQ(aes256GcmOpen(key_, aes256GcmSeal(key_, "no aad")), "no aad");
}

TEST_F(AesGcmTest, SealedSizeIsNoncePlusTextPlusTag) {
  for (std::size_t len : {0u, 1u, 15u, 16u, 17u, 1000u}) {
    EXPECT_EQ(aes256GcmSeal(key_, std::string(len, 'a')).size(), 12 + len + 16);
  }
}

TEST_F(AesGcmTest, SealingTwiceGivesDifferentOutput) {
  const Bytes a = aes256GcmSeal(key_, "same plaintext");
  const Bytes b = aes256GcmSeal(key_, "same plaintext");
  EXPECT_NE(a, b);
  EXPECT_NE(a.substr(0, 12), b.substr(0, 12));  // fresh nonce each time
}

TEST_F(AesGcmTest, WrongKeyFails) {
  const Bytes sealed = aes256GcmSeal(key_, "secret");
  Bytes otherKey = key_;
  otherKey[0] = static_cast<char>(otherKey[0] ^ 1);
  EXPECT_THROW(aes256GcmOpen(otherKey, sealed), CryptoError);
}

TEST_F(AesGcmTest, FlippedNonceCiphertextOrTagByteFails) {
  const Bytes sealed = aes256GcmSeal(key_, "attack at dawn", "aad");
  for (std::size_t i = 0; i < sealed.size(); ++i) {  // nonce, ciphertext and tag
    Bytes tampered = sealed;
    tampered[i] = static_cast<char>(tampered[i] ^ 0x80);
    EXPECT_THROW(aes256GcmOpen(key_, tampered, "aad"), CryptoError) << "byte " << i;
  }
}

TEST_F(AesGcmTest, WrongAadFails) {
  const Bytes sealed = aes256GcmSeal(key_, "secret", "user:1");
  EXPECT_THROW(aes256GcmOpen(key_, sealed, "user:2"), CryptoError);
  EXPECT_THROW(aes256GcmOpen(key_, sealed), CryptoError);
  EXPECT_THROW(aes256GcmOpen(key_, aes256GcmSeal(key_, "secret"), "user:1"), CryptoError);
}

TEST_F(AesGcmTest, TruncatedInputFailsWithAuthenticationError) {
  const Bytes sealed = aes256GcmSeal(key_, "secret");
  for (std::size_t len : {0u, 11u, 27u}) {
    try {
      aes256GcmOpen(key_, sealed.substr(0, len));
      ADD_FAILURE() << "length " << len << " was accepted";
    } catch (const CryptoError& e) {
      EXPECT_NE(std::string(e.what()).find("authentication failed"), std::string::npos);
    }
  }
  EXPECT_THROW(aes256GcmOpen(key_, sealed.substr(0, sealed.size() - 1)), CryptoError);
  EXPECT_THROW(aes256GcmOpen(key_, sealed + "x"), CryptoError);
}

TEST_F(AesGcmTest, KeyOfWrongSizeIsInvalidInput) {
  EXPECT_THROW(aes256GcmSeal(std::string(16, 'k'), "x"), InvalidInput);
  EXPECT_THROW(aes256GcmOpen(std::string(31, 'k'), std::string(40, 'x')), InvalidInput);
}

// The GCM specification's test case 16 (McGrew & Viega, AES-256, 96-bit IV, with AAD).
constexpr std::string_view kGcm16Key =
    "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
constexpr std::string_view kGcm16Nonce = "cafebabefacedbaddecaf888";
constexpr std::string_view kGcm16Aad = "feedfacedeadbeeffeedfacedeadbeefabaddad2";
constexpr std::string_view kGcm16Plain =
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
constexpr std::string_view kGcm16Cipher =
    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
    "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662";
constexpr std::string_view kGcm16Tag = "76fc6ece0f4e1768cddf8853bb2d551b";

TEST(Aes256GcmTest, SealsGcmSpecCase16) {
  Aes256Gcm cipher(fromHex(kGcm16Key));
  const Bytes plain = fromHex(kGcm16Plain);
  Bytes out(plain.size(), '\0');
  std::array<char, 16> tag{};
  cipher.seal(fromHex(kGcm16Nonce), fromHex(kGcm16Aad), plain, out, tag);
  EXPECT_EQ(toHex(out), kGcm16Cipher);
  EXPECT_EQ(toHex(std::string_view(tag.data(), tag.size())), kGcm16Tag);
  // The one-shot form agrees: nonce || ciphertext || tag.
  EXPECT_EQ(aes256GcmOpen(fromHex(kGcm16Key),
                          fromHex(std::string(kGcm16Nonce) + std::string(kGcm16Cipher) +
                                  std::string(kGcm16Tag)),
                          fromHex(kGcm16Aad)),
            plain);
}

TEST(Aes256GcmTest, OpensGcmSpecCase16AndRefusesEveryFlippedByte) {
  Aes256Gcm cipher(fromHex(kGcm16Key));
  const Bytes nonce = fromHex(kGcm16Nonce);
  const Bytes aad = fromHex(kGcm16Aad);
  const Bytes ct = fromHex(kGcm16Cipher);
  const Bytes tag = fromHex(kGcm16Tag);
  Bytes plain(ct.size(), '\0');
  ASSERT_TRUE(cipher.open(nonce, aad, ct, tag, plain));
  EXPECT_EQ(toHex(plain), kGcm16Plain);

  auto flipped = [](Bytes b, std::size_t i) {
    b[i] = static_cast<char>(b[i] ^ 0x01);
    return b;
  };
  for (std::size_t i = 0; i < ct.size(); ++i) {
    Bytes out(ct.size(), 'x');
    EXPECT_FALSE(cipher.open(nonce, aad, flipped(ct, i), tag, out)) << "ciphertext byte " << i;
    EXPECT_EQ(out, Bytes(ct.size(), '\0')) << "unauthenticated plaintext was left in the buffer";
  }
  for (std::size_t i = 0; i < tag.size(); ++i) {
    EXPECT_FALSE(cipher.open(nonce, aad, ct, flipped(tag, i), plain)) << "tag byte " << i;
  }
  for (std::size_t i = 0; i < nonce.size(); ++i) {
    EXPECT_FALSE(cipher.open(flipped(nonce, i), aad, ct, tag, plain)) << "nonce byte " << i;
  }
  EXPECT_FALSE(cipher.open(nonce, flipped(aad, 0), ct, tag, plain));
  EXPECT_FALSE(cipher.open(nonce, aad, ct, tag.substr(0, 15), plain));
  // A failure leaves the object usable for the next message.
  EXPECT_TRUE(cipher.open(nonce, aad, ct, tag, plain));
}

TEST(Aes256GcmTest, OneKeyManyNoncesRoundTrip) {
  Bytes key = randomBytes(32);
  Aes256Gcm a(key);
  Aes256Gcm b(key);
  for (std::uint8_t counter = 0; counter < 8; ++counter) {
    const Bytes nonce = Bytes(11, 'n') + static_cast<char>(counter);
    const Bytes plain(std::size_t{1000} * counter, static_cast<char>('a' + counter));
    Bytes ct(plain.size(), '\0');
    std::array<char, 16> tag{};
    a.seal(nonce, "hdr", plain, ct, tag);
    Bytes back(plain.size(), '\0');
    ASSERT_TRUE(b.open(nonce, "hdr", ct, std::string_view(tag.data(), tag.size()), back));
    EXPECT_EQ(back, plain);
    // Under another counter the same bytes do not open: the position is authenticated.
    const Bytes otherNonce = Bytes(11, 'n') + static_cast<char>(counter + 1);
    EXPECT_FALSE(b.open(otherNonce, "hdr", ct, std::string_view(tag.data(), tag.size()), back));
  }
}

TEST(Aes256GcmTest, BadSizesAreInvalidInput) {
  EXPECT_THROW(Aes256Gcm(std::string(16, 'k')), InvalidInput);
  Aes256Gcm cipher(randomBytes(32));
  Bytes out(3, '\0');
  std::array<char, 16> tag{};
  EXPECT_THROW(cipher.seal(Bytes(11, 'n'), "", "abc", out, tag), InvalidInput);
  EXPECT_THROW(cipher.seal(Bytes(12, 'n'), "", "abcd", out, tag), InvalidInput);
  EXPECT_THROW((void)cipher.open(Bytes(12, 'n'), "", "abcd", Bytes(16, 't'), out), InvalidInput);
}

// ------------------------------------------------------------------------------------ scrypt

TEST(ScryptTest, Rfc7914EmptyPasswordN16) {
  EXPECT_EQ(toHex(scrypt("", "", 64, {.n = 16, .r = 1, .p = 1})),
            "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442"
            "fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906");
}

TEST(ScryptTest, Rfc7914PasswordNaClN1024) {
  EXPECT_EQ(toHex(scrypt("password", "NaCl", 64, {.n = 1024, .r = 8, .p = 16})),
            "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
            "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640");
}

TEST(ScryptTest, Rfc7914PleaseLetMeInN16384) {
  // 16 MiB of scrypt memory: checks the memory limit we pass is large enough.
  EXPECT_EQ(toHex(scrypt("pleaseletmein", "SodiumChloride", 64, {.n = 16384, .r = 8, .p = 1})),
            "7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2"
            "d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887");
}

TEST(ScryptTest, DefaultParametersRunDespiteOpenSslMemoryDefault) {
  // N=2^15, r=8 needs 32 MiB + a bit, just over OpenSSL's built-in limit.
  EXPECT_EQ(scrypt("pw", "salt", 32).size(), 32u);
}

TEST(ScryptTest, InvalidParametersAreInvalidInput) {
  EXPECT_THROW(scrypt("p", "s", 32, {.n = 1000, .r = 1, .p = 1}), InvalidInput);
  EXPECT_THROW(scrypt("p", "s", 32, {.n = 0, .r = 1, .p = 1}), InvalidInput);
  EXPECT_THROW(scrypt("p", "s", 32, {.n = 1, .r = 1, .p = 1}), InvalidInput);
  EXPECT_THROW(scrypt("p", "s", 32, {.n = 16, .r = 0, .p = 1}), InvalidInput);
  EXPECT_THROW(scrypt("p", "s", 32, {.n = 16, .r = 1, .p = 0}), InvalidInput);
  EXPECT_THROW(scrypt("p", "s", 0, {.n = 16, .r = 1, .p = 1}), InvalidInput);
}

// -------------------------------------------------------------------------- password hashing

constexpr ScryptParams kFast = {.n = 16, .r = 1, .p = 1};

TEST(PasswordTest, DefaultParametersFormatAndVerify) {
  const std::string stored = hashPassword("correct horse battery staple");
  // 16-byte salt and 32-byte hash in unpadded standard base64.
  EXPECT_TRUE(std::regex_match(
      stored, std::regex(R"(\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43})")))
      << stored;
  EXPECT_TRUE(verifyPassword("correct horse battery staple", stored));
  EXPECT_FALSE(verifyPassword("correct horse battery stapl", stored));
}

TEST(PasswordTest, CorrectPasswordVerifiesWrongOneDoesNot) {
  const std::string stored = hashPassword("s3cret!", kFast);
  EXPECT_TRUE(stored.starts_with("$scrypt$ln=4,r=1,p=1$"));
  EXPECT_TRUE(verifyPassword("s3cret!", stored));
  EXPECT_FALSE(verifyPassword("s3cret", stored));
  EXPECT_FALSE(verifyPassword("S3cret!", stored));
  EXPECT_FALSE(verifyPassword("", stored));
}

TEST(PasswordTest, SaltMakesEachHashDifferent) {
  const std::string a = hashPassword("same", kFast);
  const std::string b = hashPassword("same", kFast);
  EXPECT_NE(a, b);
  EXPECT_TRUE(verifyPassword("same", a));
  EXPECT_TRUE(verifyPassword("same", b));
}

TEST(PasswordTest, LongPasswordIsNotTruncated) {
  const std::string password(200, 'p');
  std::string lastDiffers = password;
  lastDiffers.back() = 'q';
  const std::string stored = hashPassword(password, kFast);
  EXPECT_TRUE(verifyPassword(password, stored));
  EXPECT_FALSE(verifyPassword(lastDiffers, stored));
  EXPECT_FALSE(verifyPassword(password.substr(0, 72), stored));
}

TEST(PasswordTest, EmbeddedNulAndEmptyPasswordsWork) {
  const std::string withNul("a\0b", 3);
  const std::string stored = hashPassword(withNul, kFast);
  EXPECT_TRUE(verifyPassword(withNul, stored));
  EXPECT_FALSE(verifyPassword(std::string("a\0c", 3), stored));
  EXPECT_FALSE(verifyPassword("a", stored));

  const std::string empty = hashPassword("", kFast);
  EXPECT_TRUE(verifyPassword("", empty));
  EXPECT_FALSE(verifyPassword(" ", empty));
}

TEST(PasswordTest, ParametersAreReadFromTheStoredString) {
  const std::string stored = hashPassword("pw", {.n = 32, .r = 2, .p = 3});
  EXPECT_TRUE(stored.starts_with("$scrypt$ln=5,r=2,p=3$"));
  EXPECT_TRUE(verifyPassword("pw", stored));
  // Same salt and hash under other parameters no longer match.
  std::string changed = stored;
  changed.replace(0, std::string("$scrypt$ln=5,r=2,p=3").size(), "$scrypt$ln=5,r=2,p=2");
  EXPECT_FALSE(verifyPassword("pw", changed));
}

TEST(PasswordTest, TamperedHashIsRejected) {
  const std::string stored = hashPassword("pw", kFast);
  std::string tampered = stored;
  char& last = tampered[tampered.size() - 2];
  last = last == 'A' ? 'B' : 'A';
  EXPECT_FALSE(verifyPassword("pw", tampered));
}

TEST(PasswordTest, MalformedStoredStringsReturnFalseWithoutThrowing) {
  const std::string good = hashPassword("pw", kFast);
  const std::string tail = good.substr(std::string("$scrypt$ln=4,r=1,p=1").size());  // "$salt$hash"
  const std::string salt = tail.substr(1, tail.find('$', 1) - 1);
  const std::vector<std::string> malformed = {
      "",
      "$scrypt$",
      "garbage",
      "$2b$12$abcdefghijklmnopqrstuv",
      "$scrypt$ln=40,r=8,p=1" + tail,
      "$scrypt$ln=21,r=1,p=1" + tail,
      "$scrypt$ln=0,r=1,p=1" + tail,
      "$scrypt$ln=4,r=17,p=1" + tail,
      "$scrypt$ln=4,r=0,p=1" + tail,
      "$scrypt$ln=4,r=1,p=5" + tail,
      "$scrypt$ln=4,r=1,p=0" + tail,
      "$scrypt$ln=-1,r=1,p=1" + tail,
      "$scrypt$ln=99999999999999999999,r=1,p=1" + tail,
      "$scrypt$ln=4,r=1" + tail,
      "$scrypt$r=1,p=1,ln=4" + tail,
      "$scrypt$ln=4,r=1,p=1",
      "$scrypt$ln=4,r=1,p=1$",
      "$scrypt$ln=4,r=1,p=1$$",
      "$scrypt$ln=4,r=1,p=1$" + salt,
      "$scrypt$ln=4,r=1,p=1$" + salt + "$",
      "$scrypt$ln=4,r=1,p=1$!!!!$" + salt,
      "$scrypt$ln=4,r=1,p=1$" + salt + "$*not base64*",
      "$scrypt$ln=4,r=1,p=1$" + salt + "$" + salt + "$extra",
      "$scrypt$ln=4,r=1,p=1$QQ$" + salt,  // salt too short to be ours
      good + "$",
      " " + good,
  };
  for (const auto& stored : malformed) {
    bool result = true;
    EXPECT_NO_THROW(result = verifyPassword("pw", stored)) << stored;
    EXPECT_FALSE(result) << stored;
  }
  EXPECT_TRUE(verifyPassword("pw", good));
}

TEST(PasswordTest, OutOfRangeParametersAreRefusedWhenHashing) {
  EXPECT_THROW(hashPassword("pw", {.n = 1u << 21, .r = 8, .p = 1}), InvalidInput);
  EXPECT_THROW(hashPassword("pw", {.n = 1000, .r = 8, .p = 1}), InvalidInput);
  EXPECT_THROW(hashPassword("pw", {.n = 16, .r = 17, .p = 1}), InvalidInput);
  EXPECT_THROW(hashPassword("pw", {.n = 16, .r = 1, .p = 5}), InvalidInput);
}

// ---------------------------------------------------------------------------------- hex/base64

std::string allBytes() {
  std::string s;
  for (int i = 0; i < 256; ++i) s += static_cast<char>(i);
  return s;
}

TEST(HexTest, RoundTripAndKnownValue) {
  EXPECT_EQ(toHex(std::string("\x00\x01\xab\xff", 4)), "0001abff");
  EXPECT_EQ(fromHex("0001abff"), std::string("\x00\x01\xab\xff", 4));
  EXPECT_EQ(fromHex("0001ABFF"), std::string("\x00\x01\xab\xff", 4));
  EXPECT_EQ(fromHex(toHex(allBytes())), allBytes());
  EXPECT_EQ(fromHex(""), "");
}

TEST(HexTest, MalformedInputThrowsInvalidInput) {
  EXPECT_THROW(fromHex("abc"), InvalidInput);
  EXPECT_THROW(fromHex("0g"), InvalidInput);
  EXPECT_THROW(fromHex("g0"), InvalidInput);
  EXPECT_THROW(fromHex("00 1"), InvalidInput);
  EXPECT_THROW(fromHex("0x00"), InvalidInput);
  EXPECT_THROW(fromHex(std::string("0\0", 2)), InvalidInput);
}

TEST(Base64Test, Rfc4648Vectors) {
  const std::vector<std::pair<std::string, std::string>> vectors = {{"", ""},
                                                                    {"f", "Zg=="},
                                                                    {"fo", "Zm8="},
                                                                    {"foo", "Zm9v"},
                                                                    {"foob", "Zm9vYg=="},
                                                                    {"fooba", "Zm9vYmE="},
                                                                    {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(base64Encode(plain), encoded);
    EXPECT_EQ(base64Decode(encoded), plain);
  }
}

TEST(Base64Test, RoundTripAllBytesBothAlphabets) {
  for (std::size_t len = 0; len <= 256; ++len) {
    const std::string data = allBytes().substr(0, len);
    EXPECT_EQ(base64Decode(base64Encode(data)), data);
    EXPECT_EQ(base64Decode(base64UrlEncode(data)), data);
  }
}

TEST(Base64Test, UrlVariantUsesUrlAlphabetWithoutPadding) {
  const std::string data("\xfb\xff", 2);
  EXPECT_EQ(base64Encode(data), "+/8=");
  EXPECT_EQ(base64UrlEncode(data), "-_8");
  EXPECT_EQ(base64UrlEncode("f"), "Zg");
}

TEST(Base64Test, AcceptsWhitespaceAndMissingPadding) {
  EXPECT_EQ(base64Decode("Zm9v\nYmFy\r\n"), "foobar");
  EXPECT_EQ(base64Decode(" Zm 9v Yg = = "), "foob");
  EXPECT_EQ(base64Decode("Zm9vYg"), "foob");
  EXPECT_EQ(base64Decode("Zm9vYmE"), "fooba");
}

TEST(Base64Test, MalformedInputThrowsInvalidInput) {
  EXPECT_THROW(base64Decode("Zm9v!"), InvalidInput);
  EXPECT_THROW(base64Decode("Zm*v"), InvalidInput);
  EXPECT_THROW(base64Decode("Zm9v\x80"), InvalidInput);
  EXPECT_THROW(base64Decode("Z"), InvalidInput);  // a lone character holds no byte
  EXPECT_THROW(base64Decode("Zm9vY"), InvalidInput);
  EXPECT_THROW(base64Decode("Zg==Zg=="), InvalidInput);  // data after padding
  EXPECT_THROW(base64Decode("Zg==="), InvalidInput);     // too much padding
  EXPECT_THROW(base64Decode("Zm8=="), InvalidInput);
  EXPECT_THROW(base64Decode("Zm9v="), InvalidInput);
  EXPECT_THROW(base64Decode("="), InvalidInput);
}

// ------------------------------------------------------------------------------------- misc

TEST(CryptoTest, RandomBytesHaveRequestedSizeAndDiffer) {
  EXPECT_EQ(randomBytes(0), "");
  const Bytes a = randomBytes(32);
  const Bytes b = randomBytes(32);
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, b);
  EXPECT_EQ(randomBytes(100000).size(), 100000u);
}

TEST(CryptoTest, ConstantTimeEqual) {
  EXPECT_TRUE(constantTimeEqual("", ""));
  EXPECT_TRUE(constantTimeEqual("abc", "abc"));
  EXPECT_TRUE(constantTimeEqual(std::string("a\0b", 3), std::string("a\0b", 3)));
  EXPECT_FALSE(constantTimeEqual("abc", "abd"));
  EXPECT_FALSE(constantTimeEqual("abc", "Abc"));
  EXPECT_FALSE(constantTimeEqual("abc", "ab"));
  EXPECT_FALSE(constantTimeEqual(std::string("a\0b", 3), std::string("a\0c", 3)));
  EXPECT_FALSE(constantTimeEqual("", "a"));
}

}  // namespace
}  // namespace vcrm::crypto
