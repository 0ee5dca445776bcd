// The routes a running vcrmd serves, read from its own table (GET /api/v1/routes), and concrete
// paths for their patterns: what the suites that walk every route share, so a route a module
// adds is covered without anyone copying it into a test.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "https_client.h"

namespace vcrm::test {

struct ServedRoute {
  std::string method;
  std::string pattern;  // "/api/v1/users/{name}"
  std::string access;   // public | any_user | roles
  std::vector<std::string> roles;
  std::string key() const { return method + " " + pattern; }
  // The names of the pattern's parameters, in order ("id", "pid").
  std::vector<std::string> params() const;
};

// `admin` must be signed in as an admin. Throws std::runtime_error when the table cannot be read.
std::vector<ServedRoute> servedRoutes(HttpsClient& admin);

// A concrete path for a pattern: each parameter takes its value from `values`, else one that
// names nothing ("no-such-user" for a name, "987654321" for an id), so a caller gets the
// route's own answer (404, 400) and nothing existing is changed.
std::string pathFor(const std::string& pattern,
                    const std::map<std::string, std::string>& values = {});

// Whether the method may change state (everything but GET and HEAD).
bool changesState(const std::string& method);

}  // namespace vcrm::test
