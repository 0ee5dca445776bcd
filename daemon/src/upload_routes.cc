#include "upload_routes.h"

#include <Poco/DateTimeFormat.h>
#include <Poco/DateTimeFormatter.h>
#include <Poco/Timestamp.h>

#include <charconv>
#include <sstream>

#include "vcrm/common/crypto.h"
#include "vcrm/common/error.h"

namespace vcrm {

namespace {

constexpr const char* kTusVersion = "1.0.0";

void requireTus(const http::Request& r) {
  const std::string v = r.header("tus-resumable");
  if (v != kTusVersion) {
    throw PreconditionFailed(v.empty() ? "send the Tus-Resumable: 1.0.0 header: uploads speak tus 1.0.0"
                                       : "Tus-Resumable " + v + " is not supported; this server speaks tus 1.0.0",
                             "tus_version");
  }
}

std::optional<std::uint64_t> uintHeader(const http::Request& r, const std::string& lowerName,
                                        const std::string& shownName) {
  const std::string v = r.header(lowerName);
  if (v.empty()) return std::nullopt;
  std::uint64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || n > (1ull << 62)) {
    throw InvalidInput(shownName + " must be a whole number of bytes, got \"" + v + "\"", "bad_header");
  }
  return n;
}

// "name dmFsdWU=,other" -> {name: "value", other: ""}
std::map<std::string, std::string> parseMetadata(const std::string& header) {
  std::map<std::string, std::string> out;
  if (header.empty()) return out;
  if (header.size() > 4096) throw InvalidInput("Upload-Metadata is longer than 4096 characters", "bad_metadata");
  std::stringstream in(header);
  std::string pair;
  while (std::getline(in, pair, ',')) {
    const auto b = pair.find_first_not_of(' ');
    if (b == std::string::npos) throw InvalidInput("Upload-Metadata has an empty entry", "bad_metadata");
    pair = pair.substr(b);
    const auto space = pair.find(' ');
    const std::string key = pair.substr(0, space);
    for (char c : key) {
      if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
        throw InvalidInput("Upload-Metadata key \"" + key + "\" must be printable ASCII without spaces", "bad_metadata");
      }
    }
    if (out.count(key)) throw InvalidInput("Upload-Metadata names \"" + key + "\" twice", "bad_metadata");
    out[key] = space == std::string::npos ? std::string() : crypto::base64Decode(pair.substr(space + 1));
  }
  return out;
}

std::string httpDate(UploadStore::Clock::time_point t) {
  return Poco::DateTimeFormatter::format(Poco::Timestamp::fromEpochTime(UploadStore::Clock::to_time_t(t)),
                                         Poco::DateTimeFormat::HTTP_FORMAT);
}

void offsetHeaders(http::Response& r, const UploadStore::State& s, std::chrono::minutes expire) {
  r.headers.emplace_back("Upload-Offset", std::to_string(s.offset));
  if (!s.complete()) r.headers.emplace_back("Upload-Expires", httpDate(s.expiresAt(expire)));
}

json::ObjectPtr stateJson(const UploadStore::State& s, const std::string& location, std::chrono::minutes expire) {
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("id", s.id);
  o->set("location", location);
  o->set("purpose", s.purpose);
  o->set("upload_length", static_cast<Poco::UInt64>(s.length));
  o->set("upload_offset", static_cast<Poco::UInt64>(s.offset));
  o->set("complete", s.complete());
  o->set("expires_at", httpDate(s.expiresAt(expire)));
  if (s.complete()) o->set("sha256", s.sha256SoFar);
  return o;
}

const std::string& user(const RequestContext& ctx) { return ctx.session->user.username; }

}  // namespace

std::vector<Route> tusRoutes(const Route& declaring, UploadStore& store) {
  const std::string collection = declaring.pattern;
  const std::string item = collection + "/{upload_id}";
  const UploadSpec spec = *declaring.upload;
  const auto expire = store.options().expireAfter;
  auto make = [&](std::string method, std::string pattern, std::string action, Handler h) {
    Route r = declaring;
    r.method = std::move(method);
    r.pattern = std::move(pattern);
    r.action = declaring.action + "." + action;
    r.handler = std::move(h);
    return r;
  };
  std::vector<Route> out;

  out.push_back(make("POST", collection, "create", [&store, spec, collection, expire](RequestContext& ctx) {
    requireTus(ctx.request);
    if (!ctx.request.header("upload-defer-length").empty()) {
      throw InvalidInput("Upload-Defer-Length is not supported: declare Upload-Length", "bad_header");
    }
    auto length = uintHeader(ctx.request, "upload-length", "Upload-Length");
    if (!length) throw InvalidInput("Upload-Length is required: the size of the whole upload in bytes", "bad_header");
    auto s = store.create(spec.purpose, user(ctx), *length, spec.maxBytes,
                          parseMetadata(ctx.request.header("upload-metadata")));
    ctx.auditTarget = s.id;
    const std::string location = collection + "/" + s.id;
    auto r = http::Response::json(201, stateJson(s, location, expire));
    r.headers.emplace_back("Location", location);
    offsetHeaders(r, s, expire);
    return r;
  }));

  out.push_back(make("OPTIONS", collection, "options", [spec](RequestContext&) {
    auto r = http::Response::noContent();
    r.headers.emplace_back("Tus-Version", kTusVersion);
    r.headers.emplace_back("Tus-Max-Size", std::to_string(spec.maxBytes));
    r.headers.emplace_back("Tus-Extension", "creation,termination,expiration");
    return r;
  }));

  // Listed before GET so that HEAD is not answered by the GET route.
  out.push_back(make("HEAD", item, "status", [&store, expire](RequestContext& ctx) {
    requireTus(ctx.request);
    auto s = store.status(ctx.param("upload_id"), user(ctx));
    http::Response r;
    r.status = 200;
    r.contentType.clear();
    r.headers.emplace_back("Upload-Length", std::to_string(s.length));
    r.headers.emplace_back("Cache-Control", "no-store");
    offsetHeaders(r, s, expire);
    return r;
  }));

  Route patch = make("PATCH", item, "append", [&store, spec, expire](RequestContext& ctx) {
    requireTus(ctx.request);
    const std::string id = ctx.param("upload_id");
    ctx.auditTarget = id;
    const std::string type = ctx.request.header("content-type");
    if (type != "application/offset+octet-stream") {
      throw UnsupportedMediaType("send upload bytes with Content-Type: application/offset+octet-stream");
    }
    auto offset = uintHeader(ctx.request, "upload-offset", "Upload-Offset");
    if (!offset) throw InvalidInput("Upload-Offset is required: HEAD the upload for it", "bad_header");
    std::optional<std::uint64_t> length;
    if (ctx.request.header("transfer-encoding").empty()) {
      length = uintHeader(ctx.request, "content-length", "Content-Length").value_or(0);
    }
    std::istringstream buffered(ctx.request.body);
    std::istream& body = ctx.request.bodyStream ? *ctx.request.bodyStream : buffered;
    auto result = store.append(id, user(ctx), *offset, body, length);
    http::Response r = http::Response::noContent();
    if (result.finished) {
      if (spec.onComplete) r = spec.onComplete(ctx, *result.finished);
      store.storeResult(id, r);
    }
    offsetHeaders(r, result.state, expire);
    return r;
  });
  patch.streamsBody = true;
  out.push_back(std::move(patch));

  out.push_back(make("DELETE", item, "terminate", [&store](RequestContext& ctx) {
    requireTus(ctx.request);
    ctx.auditTarget = ctx.param("upload_id");
    store.remove(ctx.param("upload_id"), user(ctx));
    return http::Response::noContent();
  }));

  out.push_back(make("GET", item, "get", [&store, collection, expire](RequestContext& ctx) {
    const std::string id = ctx.param("upload_id");
    if (auto stored = store.result(id, user(ctx))) return *stored;
    auto s = store.status(id, user(ctx));
    return http::Response::json(200, stateJson(s, collection + "/" + id, expire));
  }));
  return out;
}

}  // namespace vcrm
