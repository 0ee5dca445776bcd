// The appliance's listeners: HTTPS feeding requests to the Api, plain HTTP that only redirects to
// HTTPS, and plain HTTP on loopback for bridge event posts. Each is an httpd::HttpListener, so a
// slow or idle client holds a descriptor, never a worker.
#pragma once

#include <memory>
#include <string>

#include "vcrm/common/log.h"
#include "vcrm/daemon/api.h"
#include "vcrm/daemon/http_listener.h"

namespace vcrm {

class WebServer {
 public:
  struct Options {
    std::string listen = "0.0.0.0";
    int httpsPort = 8443;
    int httpPort = 8080;  // -1: no redirect listener
    std::string eventsListen = "127.0.0.1";
    int eventsPort = 8090;  // -1: no plain-HTTP listener for bridge events
    std::string certFile;
    std::string keyFile;
    int threads = 16;
    httpd::Limits limits;
  };
  WebServer(Options options, Api& api, Logger& log);
  ~WebServer();
  void start();
  void stop();
  int httpsPort() const { return httpsPort_; }
  int httpPort() const { return httpPort_; }
  int eventsPort() const { return eventsPort_; }

 private:
  Options options_;
  Api& api_;
  Logger& log_;
  std::unique_ptr<httpd::HttpListener> https_;
  std::unique_ptr<httpd::HttpListener> http_;
  std::unique_ptr<httpd::HttpListener> events_;
  int httpsPort_ = 0;
  int httpPort_ = -1;
  int eventsPort_ = -1;
};

}  // namespace vcrm
