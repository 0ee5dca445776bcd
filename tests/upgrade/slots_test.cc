// The installed layout: slots A and B under <root>/opt/vcrm and the atomic `current` pointer;
// a crash between writing current.new and the rename; links the layout did not create.
#include "vcrm/upgrade/slots.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "temp_dir.h"
#include "vcrm/common/error.h"
#include "vcrm/common/files.h"

namespace vcrm::upgrade {
namespace {

namespace fs = std::filesystem;

// An installation tree as cmake --install makes it, with `marker` in share/vcrm/marker.
fs::path makeTree(const fs::path& dir, const std::string& marker) {
  fs::create_directories(dir / "bin");
  fs::create_directories(dir / "share/vcrm/webui");
  std::ofstream(dir / "bin/vcrmd") << "#!/bin/sh\n";
  fs::permissions(dir / "bin/vcrmd", fs::perms(0755));
  std::ofstream(dir / "share/vcrm/marker") << marker;
  std::ofstream(dir / "share/vcrm/webui/index.html") << "<html>";
  return dir;
}

std::string slurp(const fs::path& p) {
  return files::readFile(p);
}

class SlotsTest : public ::testing::Test {
 protected:
  test::TempDir tmp_{"vcrm-slots"};
  fs::path root_ = tmp_.path() / "root";
  fs::path victim_ = tmp_.path() / "victim";
  void SetUp() override {
    fs::create_directories(root_);
    fs::create_directories(victim_);
    std::ofstream(victim_ / "precious") << "keep";
  }
  void expectVictimUntouched() {
    EXPECT_EQ(slurp(victim_ / "precious"), "keep");
    EXPECT_EQ(std::distance(fs::directory_iterator(victim_), fs::directory_iterator()), 1);
  }
};

TEST_F(SlotsTest, AFreshRootInstallsIntoSlotAAndPointsCurrentAtIt) {
  SlotLayout layout(root_);
  EXPECT_FALSE(layout.current());
  EXPECT_EQ(layout.inactive(), Slot::A);
  layout.install(makeTree(tmp_.path() / "tree", "one"), Slot::A);
  EXPECT_FALSE(layout.current()) << "installing does not switch";
  layout.switchTo(Slot::A);
  EXPECT_EQ(layout.current(), Slot::A);
  EXPECT_EQ(layout.inactive(), Slot::B);
  EXPECT_EQ(fs::read_symlink(root_ / "opt/vcrm/current"), "slots/a");
  EXPECT_EQ(slurp(root_ / "opt/vcrm/current/share/vcrm/marker"), "one");
  EXPECT_EQ(layout.currentBinDir(), root_ / "opt/vcrm/slots/a/bin");
  EXPECT_EQ(fs::status(root_ / "opt/vcrm/slots/a/bin/vcrmd").permissions() & fs::perms::mask,
            fs::perms(0755));
}

TEST_F(SlotsTest, AnUpgradeWritesTheOtherSlotAndNeverTheRunningOne) {
  SlotLayout layout(root_);
  layout.install(makeTree(tmp_.path() / "one", "one"), Slot::A);
  layout.switchTo(Slot::A);
  EXPECT_THROW(layout.install(makeTree(tmp_.path() / "two", "two"), Slot::A), Conflict);
  EXPECT_EQ(slurp(root_ / "opt/vcrm/slots/a/share/vcrm/marker"), "one");
  layout.install(tmp_.path() / "two", layout.inactive());
  layout.switchTo(Slot::B);
  EXPECT_EQ(layout.current(), Slot::B);
  EXPECT_EQ(slurp(root_ / "opt/vcrm/current/share/vcrm/marker"), "two");
  // The old slot is kept for going back; reinstalling it replaces every file it held.
  EXPECT_EQ(slurp(root_ / "opt/vcrm/slots/a/share/vcrm/marker"), "one");
  std::ofstream(root_ / "opt/vcrm/slots/a/stale") << "x";
  layout.install(tmp_.path() / "one", Slot::A);
  EXPECT_FALSE(fs::exists(root_ / "opt/vcrm/slots/a/stale"));
  EXPECT_FALSE(fs::exists(root_ / "opt/vcrm/slots/a.new"));
  // The demo reinstalling the same version into the running slot says so explicitly.
  layout.install(tmp_.path() / "one", Slot::B, /*allowCurrent=*/true);
  EXPECT_EQ(slurp(root_ / "opt/vcrm/current/share/vcrm/marker"), "one");
}

TEST_F(SlotsTest, ACrashBeforeTheRenameLeavesTheOldPointerAndTheLeftoverIsCleanedOnNextUse) {
  SlotLayout layout(root_);
  layout.install(makeTree(tmp_.path() / "one", "one"), Slot::A);
  layout.install(tmp_.path() / "one", Slot::B);
  layout.switchTo(Slot::A);
  // What a crash after symlink("slots/b", "current.new") and before the rename leaves.
  ASSERT_EQ(symlink("slots/b", (root_ / "opt/vcrm/current.new").c_str()), 0);
  EXPECT_EQ(layout.current(), Slot::A) << "the old pointer stays valid";
  layout.switchTo(Slot::B);
  EXPECT_EQ(layout.current(), Slot::B);
  EXPECT_FALSE(fs::exists(fs::symlink_status(root_ / "opt/vcrm/current.new")));
  // A leftover pointing anywhere is removed without being followed.
  ASSERT_EQ(symlink(victim_.c_str(), (root_ / "opt/vcrm/current.new").c_str()), 0);
  layout.install(tmp_.path() / "one", Slot::A);
  EXPECT_FALSE(fs::exists(fs::symlink_status(root_ / "opt/vcrm/current.new")));
  expectVictimUntouched();
}

TEST_F(SlotsTest, LinksTheLayoutDidNotCreateAreRefusedAndNotFollowed) {
  SlotLayout layout(root_);
  makeTree(tmp_.path() / "tree", "one");
  // opt/ itself a link.
  fs::create_directory_symlink(victim_, root_ / "opt");
  EXPECT_THROW(layout.install(tmp_.path() / "tree", Slot::A), IoError);
  EXPECT_THROW(layout.switchTo(Slot::A), IoError);
  fs::remove(root_ / "opt");
  expectVictimUntouched();
  // slots/ a link.
  fs::create_directories(root_ / "opt/vcrm");
  fs::create_directory_symlink(victim_, root_ / "opt/vcrm/slots");
  EXPECT_THROW(layout.install(tmp_.path() / "tree", Slot::A), IoError);
  fs::remove(root_ / "opt/vcrm/slots");
  expectVictimUntouched();
  // A slot a link.
  fs::create_directories(root_ / "opt/vcrm/slots");
  fs::create_directory_symlink(victim_, root_ / "opt/vcrm/slots/b");
  EXPECT_THROW(layout.install(tmp_.path() / "tree", Slot::B), IoError);
  expectVictimUntouched();
  layout.install(tmp_.path() / "tree", Slot::A);
  layout.switchTo(Slot::A);
  // `current` replaced by a link elsewhere, or by a directory: refused, nothing followed.
  fs::remove(root_ / "opt/vcrm/current");
  fs::create_directory_symlink(victim_, root_ / "opt/vcrm/current");
  EXPECT_THROW(layout.current(), IoError);
  EXPECT_THROW(layout.inactive(), IoError);
  fs::remove(root_ / "opt/vcrm/current");
  fs::create_directory_symlink("slots/b", root_ / "opt/vcrm/current");
  EXPECT_THROW(layout.current(), IoError) << "slots/b is a link the layout did not create";
  fs::remove(root_ / "opt/vcrm/current");
  fs::create_directory(root_ / "opt/vcrm/current");
  EXPECT_THROW(layout.current(), IoError);
  EXPECT_THROW(layout.switchTo(Slot::A), IoError);
  expectVictimUntouched();
}

TEST_F(SlotsTest, ATreeWithAnythingButFilesAndDirectoriesIsRefused) {
  SlotLayout layout(root_);
  makeTree(tmp_.path() / "tree", "one");
  fs::create_symlink(victim_ / "precious", tmp_.path() / "tree/share/link");
  EXPECT_THROW(layout.install(tmp_.path() / "tree", Slot::A), IoError);
  EXPECT_FALSE(fs::exists(root_ / "opt/vcrm/slots/a"));
  EXPECT_THROW(layout.install(tmp_.path() / "nothing", Slot::A), InvalidInput);
  EXPECT_THROW(layout.switchTo(Slot::B), Conflict) << "an empty slot is never made current";
}

}  // namespace
}  // namespace vcrm::upgrade
