// The lb's admin HTTP endpoint: /metrics (Prometheus text), /status (JSON)
// and /healthz, served by cpp-httplib on a thread of its own.
//
// Owns: the server, its thread, its bound port. Leaves what the pages say to
// the functions it is given (proxy_metrics_render), and the proxy's own
// traffic to the event loops.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

namespace httplib {
class Server;
}

namespace userkey::lb::engine {

class AdminServer {
public:
  using Page = std::function<std::string()>;

  /// `metrics` and `status` are called on the admin thread for each request.
  AdminServer(Page metrics, Page status);
  ~AdminServer();  // stops
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  /// Binds host:port (port 0: any free port) without SO_REUSEPORT and starts
  /// serving. False with a message when it cannot bind.
  bool start(const std::string& host, std::uint16_t port, std::string* error);
  std::uint16_t port() const { return port_; }
  void stop();

private:
  Page metrics_;
  Page status_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::uint16_t port_ = 0;
};

}  // namespace userkey::lb::engine
