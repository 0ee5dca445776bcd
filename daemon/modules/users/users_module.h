// Users and sign-in: sessions (login, logout, the current session, changing one's password) and the admin's user management.
#pragma once

#include "vcrm/daemon/module.h"
#include "vcrm/daemon/auth.h"

namespace vcrm {

class UsersModule : public NamedModule {
 public:
  explicit UsersModule(const ModuleContext& ctx);
  std::vector<Route> routes() override;

 private:
  AuthService& auth_;
  int sessionMaxHours_;
};

}  // namespace vcrm
