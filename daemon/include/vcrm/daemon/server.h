// Poco glue: the HTTPS listener that feeds requests to the Api, and the plain-HTTP listener
// that only redirects to HTTPS.
#pragma once

#include <Poco/Net/HTTPServer.h>
#include <Poco/ThreadPool.h>

#include <memory>
#include <string>

#include "vcrm/common/log.h"
#include "vcrm/daemon/api.h"

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
  std::unique_ptr<Poco::ThreadPool> threads_;  // Poco's default pool holds only 16
  std::unique_ptr<Poco::Net::HTTPServer> https_;
  std::unique_ptr<Poco::Net::HTTPServer> http_;
  std::unique_ptr<Poco::Net::HTTPServer> events_;
  int httpsPort_ = 0;
  int httpPort_ = -1;
  int eventsPort_ = -1;
};

}  // namespace vcrm
