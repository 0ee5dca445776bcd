// Transport-neutral request and response used by the API; the Poco server glue converts.
#pragma once

#include <functional>
#include <istream>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "vcrm/common/json.h"

namespace vcrm::http {

struct Request {
  std::string method;
  std::string path;  // decoded path without query
  std::map<std::string, std::string> query;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  // For a route that streams its body (an upload's PATCH) the server leaves `body` empty and
  // hands over the connection's body stream instead; the handler reads it in bounded chunks.
  std::istream* bodyStream = nullptr;
  std::string remoteAddr;
  std::map<std::string, std::string> pathParams;  // filled by the router

  std::string header(const std::string& lowerName) const;
  std::optional<std::string> cookie(const std::string& name) const;
  std::optional<std::string> queryParam(const std::string& name) const;
};

struct Response {
  int status = 200;
  std::string contentType = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, the body is produced by writing to the stream (chunked transfer encoding):
  // CSV exports of any size, server-sent events. It returns when done or the client is gone.
  std::function<void(std::ostream&)> stream;
  // The stream's length when it is known up front (a file): sent as Content-Length rather than
  // chunked, so a browser shows the download's size and progress.
  std::optional<std::uint64_t> streamLength;

  static Response json(int status, const Poco::Dynamic::Var& value);
  static Response noContent();
  static Response error(int status, const std::string& code, const std::string& message);
};

// "a%20b" -> "a b"; nullopt for malformed escapes or an encoded NUL. '+' is a space only in
// query strings.
std::optional<std::string> percentDecode(const std::string& text, bool plusIsSpace = false);
// The parameters of a query string; InvalidInput (`bad_query`, naming the parameter) for a
// malformed escape or an encoded NUL rather than dropping the parameter.
std::map<std::string, std::string> parseQuery(const std::string& query);

}  // namespace vcrm::http
