#include "route_table.h"

#include <Poco/JSON/Array.h>

#include <stdexcept>

namespace vcrm::test {

std::vector<std::string> ServedRoute::params() const {
  std::vector<std::string> out;
  for (auto open = pattern.find('{'); open != std::string::npos;
       open = pattern.find('{', open + 1)) {
    out.push_back(pattern.substr(open + 1, pattern.find('}', open) - open - 1));
  }
  return out;
}

std::vector<ServedRoute> servedRoutes(HttpsClient& admin) {
  auto r = admin.get("/api/v1/routes");
  if (r.status != 200)
    throw std::runtime_error("GET /api/v1/routes answered " + std::to_string(r.status) + ": " +
                             r.body);
  std::vector<ServedRoute> out;
  auto arr = r.json()->getArray("routes");
  for (std::size_t i = 0; i < arr->size(); ++i) {
    auto o = arr->getObject(static_cast<unsigned>(i));
    ServedRoute s{o->getValue<std::string>("method"),
                  o->getValue<std::string>("pattern"),
                  o->getValue<std::string>("access"),
                  {}};
    auto roles = o->getArray("roles");
    for (std::size_t j = 0; j < roles->size(); ++j)
      s.roles.push_back(roles->getElement<std::string>(static_cast<unsigned>(j)));
    out.push_back(s);
  }
  return out;
}

std::string pathFor(const std::string& pattern, const std::map<std::string, std::string>& values) {
  std::string out;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] != '{') {
      out += pattern[i];
      continue;
    }
    const auto close = pattern.find('}', i);
    const std::string name = pattern.substr(i + 1, close - i - 1);
    const auto given = values.find(name);
    out += given != values.end() ? given->second : name == "name" ? "no-such-user" : "987654321";
    i = close;
  }
  return out;
}

bool changesState(const std::string& method) {
  return method != "GET" && method != "HEAD" && method != "OPTIONS";  // as the Api decides
}

}  // namespace vcrm::test
