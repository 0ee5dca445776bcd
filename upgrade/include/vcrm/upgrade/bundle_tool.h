// vcrm-bundle, the vendor's and the operator's bundle tool: keygen, create, inspect, verify.
// upgrade/bundle_main.cc only calls runBundleTool.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace vcrm::upgrade {

// Runs one command; returns the exit status (0 ok, 1 refused or failed, 2 usage).
int runBundleTool(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace vcrm::upgrade
