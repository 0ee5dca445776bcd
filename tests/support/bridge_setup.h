// Registers a Janus bridge with a running vcrmd and starts the Janus it names, configured with
// the event-handler fragment vcrmd prints for that bridge (as an operator would paste it).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "https_client.h"
#include "janus_process.h"

namespace vcrm::test {

struct RegisteredBridge {
  std::int64_t id = 0;
  std::string eventsUrl;  // the backend vcrmd told Janus to post to
  std::unique_ptr<JanusProcess> janus;
};

// `admin` must be signed in as an admin. `janusOptions` says where Janus runs (ip, netns);
// its events settings are filled in from vcrmd's janus-config answer. Throws on any failure.
RegisteredBridge registerJanusBridge(HttpsClient& admin, const std::string& name, int capacity,
                                     const std::string& pool = "default",
                                     JanusProcess::Options janusOptions = {});

}  // namespace vcrm::test
