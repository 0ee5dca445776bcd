// Whether this system may install a verified bundle: the rules an operator meets before
// confirming an upgrade. Pure: it takes the facts (the bundle's signed release fields and what is
// installed) and throws BundleRefused naming the rule and what to do; no I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "vcrm/upgrade/bundle.h"

namespace vcrm::upgrade {

// The kind of system a vcrm appliance is, as its bundles name it (`--compatible` of
// vcrm-bundle create; packaging/build-bundle's default).
inline constexpr std::string_view kApplianceCompatible = "vcrm-appliance";

struct InstalledFacts {
  std::string compatible;  // the kind of system this is, as bundles name it
  std::string version;     // the running version
  // The licence's "upgrades until" date (YYYY-MM-DD); nullopt when the licence sets none.
  std::optional<std::string> licenceUpgradesUntil;
  bool allowDowngrade = false;  // an admin asked explicitly for an older or the same version
};

// In this order: compatible string (Incompatible), version floor (BelowVersionFloor), newer
// than installed (Downgrade, unless allowed), release date against the licence (NotEntitled).
void checkUpgradePolicy(const BundleRelease& bundle, const InstalledFacts& installed);

}  // namespace vcrm::upgrade
