// vcrm-license: issue and inspect vcrm licence files (see `vcrm-license --help`).
#include <iostream>

#include "vcrm/licensing/tool.h"

int main(int argc, char** argv) {
  return vcrm::licensing::runTool(std::vector<std::string>(argv + 1, argv + argc), std::cout,
                                  std::cerr);
}
