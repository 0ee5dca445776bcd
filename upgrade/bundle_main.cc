// vcrm-bundle: make, inspect and verify signed upgrade bundles (see `vcrm-bundle --help`).
#include <iostream>

#include "vcrm/upgrade/bundle_tool.h"

int main(int argc, char** argv) {
  return vcrm::upgrade::runBundleTool(std::vector<std::string>(argv + 1, argv + argc), std::cout,
                                      std::cerr);
}
