// Every row of every table of a vcrm database as text in a fixed order, so a test can say that
// requests changed no stored data by comparing two snapshots byte for byte. A table added by a
// migration is in the snapshot without anyone listing it; what changes by itself (the audit
// log, session clocks, bridge health) is left out by name.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "vcrm/common/db.h"

namespace vcrm::test {

struct SnapshotExclusions {
  std::set<std::string> tables;                             // left out whole
  std::map<std::string, std::vector<std::string>> columns;  // table -> columns left out
};

std::string databaseSnapshot(db::Connection& c, const SnapshotExclusions& leaveOut = {});

}  // namespace vcrm::test
