#include "vcrm/upgrade/bundle_policy.h"

#include "vcrm/upgrade/backup_archive.h"

namespace vcrm::upgrade {

void checkUpgradePolicy(const BundleRelease& bundle, const InstalledFacts& installed) {
  if (bundle.compatible != installed.compatible) {
    throw BundleRefused(BundleReason::Incompatible,
                        "this bundle is for \"" + bundle.compatible +
                            "\" systems and this one is \"" + installed.compatible +
                            "\"; upload the bundle made for \"" + installed.compatible + "\"");
  }
  if (compareVersions(installed.version, bundle.minVersion) < 0) {
    throw BundleRefused(BundleReason::BelowVersionFloor,
                        "version " + bundle.version + " upgrades only from " + bundle.minVersion +
                            " or later and this system runs " + installed.version +
                            "; upgrade to " + bundle.minVersion + " first");
  }
  const int order = compareVersions(bundle.version, installed.version);
  if (order <= 0 && !installed.allowDowngrade) {
    throw BundleRefused(
        BundleReason::Downgrade,
        "this bundle is version " + bundle.version +
            (order == 0 ? ", the version" : ", older than the version") + " this system runs (" +
            installed.version +
            "); install it only if you mean to, by allowing a downgrade explicitly");
  }
  if (installed.licenceUpgradesUntil && bundle.releaseDate > *installed.licenceUpgradesUntil) {
    throw BundleRefused(BundleReason::NotEntitled,
                        "version " + bundle.version + " was released on " + bundle.releaseDate +
                            ", after the licence's upgrade entitlement ended (" +
                            *installed.licenceUpgradesUntil +
                            "); request a software licence upgrade file from your vendor and "
                            "apply it first");
  }
}

}  // namespace vcrm::upgrade
