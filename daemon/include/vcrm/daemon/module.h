// The module seam: what a part of vcrmd (bridges, conferences, CDRs, users, audit, system, and
// later licences, backups, upgrades, redundancy) declares in one place — its routes with their
// access, its background workers and on which nodes they run. App composes a list of modules.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <typeinfo>
#include <vector>

#include "vcrm/common/config.h"
#include "vcrm/common/db.h"
#include "vcrm/common/error.h"
#include "vcrm/common/guarded.h"
#include "vcrm/common/log.h"
#include "vcrm/daemon/route.h"

namespace vcrm {

class AuthService;
class AuditLog;
class EventBus;

// Where each listener ended up, known once they are bound (a route that writes the bridges'
// Janus configuration needs the events port).
struct Listeners {
  std::string eventsListen;
  std::atomic<int> eventsPort{-1};
};

// A background task of a module. Workers are started when the node may run them and stopped in
// reverse order; both calls may be repeated (a node that becomes standby stops its
// active-only workers, and starts them again when it becomes active).
class Worker {
 public:
  enum class RunsOn {
    EveryNode,   // e.g. serving reads, pruning local files
    ActiveNode,  // anything that writes shared state or drives bridges
  };
  virtual ~Worker() = default;
  virtual const std::string& name() const = 0;
  virtual RunsOn runsOn() const = 0;
  virtual void start() = 0;
  virtual void stop() = 0;
  virtual bool running() const = 0;
};

// A worker that runs `pass` every `period` on its own thread, and once more at once on wake().
// A pass that throws is logged (`<NAME>_FAILED`) and the next pass runs on time. `onStart`, when
// given, runs synchronously in start() before the first pass (e.g. re-attaching live rooms).
class PeriodicWorker : public Worker {
 public:
  struct Spec {
    std::string name;  // stable, lower-case: "scheduler", "bridge-prober"
    RunsOn runsOn = RunsOn::ActiveNode;
    std::chrono::milliseconds period{1000};
    std::function<void()> pass;
    std::function<void()> onStart;
  };
  PeriodicWorker(Spec spec, Logger& log);
  ~PeriodicWorker() override;
  const std::string& name() const override { return spec_.name; }
  RunsOn runsOn() const override { return spec_.runsOn; }
  void start() override;
  void stop() override;
  bool running() const override { return running_; }
  // Requests a pass now (the thread wakes up early); a no-op when stopped.
  void wake();

 private:
  void loop();
  Spec spec_;
  Logger& log_;
  std::atomic<bool> running_{false};
  Guarded<bool> wake_{false};
  std::condition_variable wakeCv_;
  std::thread thread_;
};

class Module;

// What the daemon hands every module: the configuration, the shared services of the core, and
// the modules registered before this one (a module may depend only on earlier ones).
struct ModuleContext {
  const Config& config;
  Logger& log;
  db::Pool& pool;
  EventBus& bus;
  AuthService& auth;
  AuditLog& audit;
  Listeners& listeners;
  std::string version;
  int schema = 0;
  // The libpq connection string of the pool's database (pg_dump of a backup connects with it).
  std::string dbDsn;
  const std::vector<std::unique_ptr<Module>>& earlier;
  // Asks the process to restart vcrmd in place (stop, restore recovery, start with the
  // configuration read again); empty when this vcrmd cannot (an App embedded in a test).
  std::function<void(std::string reason)> requestRestart{};
  // Asks the process to stop and exit with upgrade::kRestartFromCurrent (75), so that its
  // supervisor starts <root>/opt/vcrm/current (an upgrade that passed its commit point); empty
  // when this vcrmd cannot.
  std::function<void(std::string reason)> requestRestartFromCurrent{};
  // Stops serving for the rest of this process's life: event streams end, every worker stops,
  // the listeners close, the pool's connections are closed (waiting 10 s at most for leases;
  // false when one was kept). What must follow is one of the two requests above. An upgrade
  // calls it from its own thread before it snapshots the database, which needs no other
  // session on it; the caller must hold no lease. Empty where this App cannot.
  std::function<bool(std::string reason)> stopServing{};

  // The earlier module of type M; StartupError when it is not registered before the caller.
  template <typename M>
  M& require() const {
    for (const auto& m : earlier) {
      if (auto* found = dynamic_cast<M*>(m.get())) return *found;
    }
    throw StartupError(std::string("module dependency missing: ") + typeid(M).name() +
                       " must be registered before the module that needs it");
  }
};

class Module {
 public:
  virtual ~Module() = default;
  // Stable, lower-case: "bridges", "conferences". Names the module in logs and errors.
  virtual const std::string& name() const = 0;
  // The routes this module serves; each declares its access (see Route).
  virtual std::vector<Route> routes() { return {}; }
  // Its background workers; owned by the module, started and stopped by App.
  virtual std::vector<Worker*> workers() { return {}; }
};

// Keeps the name in one place for the simple modules.
class NamedModule : public Module {
 public:
  explicit NamedModule(std::string name) : name_(std::move(name)) {}
  const std::string& name() const override { return name_; }

 private:
  std::string name_;
};

// The modules of one daemon, in registration order. add<M>() constructs M(ctx) where ctx lists
// the modules added before it.
class ModuleList {
 public:
  using ContextFactory = std::function<ModuleContext(const std::vector<std::unique_ptr<Module>>&)>;
  explicit ModuleList(ContextFactory context) : context_(std::move(context)) {}

  template <typename M>
  M& add() {
    auto m = std::make_unique<M>(context_(modules_));
    M& ref = *m;
    modules_.push_back(std::move(m));
    return ref;
  }
  // A module built elsewhere (tests add modules of their own this way).
  void add(std::unique_ptr<Module> m) { modules_.push_back(std::move(m)); }
  ModuleContext context() const { return context_(modules_); }

  std::vector<Route> routes() const;
  std::vector<Worker*> workers() const;
  const std::vector<std::unique_ptr<Module>>& all() const { return modules_; }
  // Destroys the modules last-added first (a module may use the ones before it until then).
  void clear();

 private:
  ContextFactory context_;
  std::vector<std::unique_ptr<Module>> modules_;
};

// The modules vcrmd is made of, in order: the one registration list.
void registerModules(ModuleList& modules);

}  // namespace vcrm
