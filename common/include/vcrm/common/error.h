// The one exception hierarchy of vcrm. Each class names a kind of failure; the HTTP status
// for each kind is chosen in one place at the API boundary (daemon/src/http_errors.cc); a bridge's failure
// (janus::BridgeError) is a 502 there.
#pragma once

#include <stdexcept>
#include <string>

namespace vcrm {

// Base of every vcrm exception. `code()` is a stable machine-readable identifier
// (e.g. "invalid_input"); `what()` is a sentence for a person: what was wrong and what to do.
class Error : public std::runtime_error {
 public:
  Error(std::string code, const std::string& message)
      : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const noexcept { return code_; }

 private:
  std::string code_;
};

// The caller sent something malformed (bad JSON, missing field, value out of range).
class InvalidInput : public Error {
 public:
  explicit InvalidInput(const std::string& message, std::string code = "invalid_input")
      : Error(std::move(code), message) {}
};

// Well-formed input that cannot be acted on (e.g. a weak password, a bad state transition).
class Unprocessable : public Error {
 public:
  explicit Unprocessable(const std::string& message, std::string code = "unprocessable")
      : Error(std::move(code), message) {}
};

class NotFound : public Error {
 public:
  explicit NotFound(const std::string& message, std::string code = "not_found")
      : Error(std::move(code), message) {}
};

class Conflict : public Error {
 public:
  explicit Conflict(const std::string& message, std::string code = "conflict")
      : Error(std::move(code), message) {}
};

// No valid session or credentials. `challenge`, when set, is the WWW-Authenticate value
// (machine clients with their own credentials, such as bridges posting events).
class Unauthenticated : public Error {
 public:
  explicit Unauthenticated(const std::string& message, std::string code = "unauthenticated",
                           std::string challenge = {})
      : Error(std::move(code), message), challenge_(std::move(challenge)) {}
  const std::string& challenge() const noexcept { return challenge_; }

 private:
  std::string challenge_;
};

class Forbidden : public Error {
 public:
  explicit Forbidden(const std::string& message, std::string code = "forbidden")
      : Error(std::move(code), message) {}
};

class TooLarge : public Error {
 public:
  explicit TooLarge(const std::string& message, std::string code = "too_large")
      : Error(std::move(code), message) {}
};

// The path exists but not with this method; `allow()` lists the methods it takes.
class MethodNotAllowed : public Error {
 public:
  MethodNotAllowed(const std::string& message, std::string allow)
      : Error("method_not_allowed", message), allow_(std::move(allow)) {}
  const std::string& allow() const noexcept { return allow_; }

 private:
  std::string allow_;
};

// The body is not in a form the route reads (e.g. not JSON).
class UnsupportedMediaType : public Error {
 public:
  explicit UnsupportedMediaType(const std::string& message)
      : Error("unsupported_media_type", message) {}
};

// The resource is busy with another request (e.g. another client is appending to the same
// upload); the caller may retry once that request is over.
class Locked : public Error {
 public:
  explicit Locked(const std::string& message, std::string code = "locked")
      : Error(std::move(code), message) {}
};

// A protocol precondition does not hold (e.g. a Tus-Resumable version we do not speak).
class PreconditionFailed : public Error {
 public:
  explicit PreconditionFailed(const std::string& message, std::string code = "precondition_failed")
      : Error(std::move(code), message) {}
};

// No room to store what was asked: the disk is full or read-only, or the uploads quota is
// used up. The message says how much was needed and how much is free.
class InsufficientStorage : public Error {
 public:
  explicit InsufficientStorage(const std::string& message,
                               std::string code = "insufficient_storage")
      : Error(std::move(code), message) {}
};

// Too many attempts, or too many of something held open (live event streams);
// `retryAfterSeconds()` says when to try again.
class RateLimited : public Error {
 public:
  RateLimited(const std::string& message, int retryAfterSeconds, std::string code = "rate_limited")
      : Error(std::move(code), message), retryAfter_(retryAfterSeconds) {}
  int retryAfterSeconds() const noexcept { return retryAfter_; }

 private:
  int retryAfter_;
};

// Configuration file or override that cannot be used.
class ConfigError : public Error {
 public:
  explicit ConfigError(const std::string& message) : Error("config_error", message) {}
};

// The database refused or failed. `sqlState()` carries PostgreSQL's SQLSTATE when known.
class DbError : public Error {
 public:
  DbError(const std::string& message, std::string sqlState = {})
      : Error("database_error", message), sqlState_(std::move(sqlState)) {}
  const std::string& sqlState() const noexcept { return sqlState_; }

 private:
  std::string sqlState_;
};

class CryptoError : public Error {
 public:
  explicit CryptoError(const std::string& message) : Error("crypto_error", message) {}
};

// A file or system call failed; the message names the path and the OS error.
class IoError : public Error {
 public:
  explicit IoError(const std::string& message) : Error("io_error", message) {}
};

// The service cannot run in its current state (e.g. schema newer than this binary).
class StartupError : public Error {
 public:
  explicit StartupError(const std::string& message) : Error("startup_error", message) {}
};

// "open /x: No such file or directory" style text for errno values.
std::string errnoText(int err);

}  // namespace vcrm
