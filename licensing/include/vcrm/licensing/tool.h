// vcrm-license, the vendor's tool: keygen, issue, show, verify. main.cc only calls runTool.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace vcrm::licensing {

// Runs one command; returns the exit status (0 ok, 1 refused or failed, 2 usage).
int runTool(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace vcrm::licensing
