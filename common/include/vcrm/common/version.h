// The product version every binary reports (set at configure time by -DVCRM_VERSION).
#pragma once

namespace vcrm {

// "x.y.z"; defined in the one generated source common/version.cc.
const char* productVersion();

}  // namespace vcrm
