// The lb's admin HTTP endpoint: see admin_server.hpp.
#include "admin_server.hpp"

#include <httplib.h>

#include <chrono>

#include "core/httplib_socket.hpp"

namespace userkey::lb::engine {

AdminServer::AdminServer(Page metrics, Page status) : metrics_(std::move(metrics)), status_(std::move(status)) {}

AdminServer::~AdminServer() { stop(); }

bool AdminServer::start(const std::string& host, std::uint16_t port, std::string* error) {
  server_ = std::make_unique<httplib::Server>();
  server_->new_task_queue = [] { return new httplib::ThreadPool(2); };  // owned by httplib
  server_->set_socket_options(detail::exclusive_socket_options);
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_(), "text/plain; version=0.0.4");
  });
  server_->Get("/status", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(status_(), "application/json");
  });
  server_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("{\"status\":\"ok\"}\n", "application/json");
  });
  int bound = port;
  if (bound == 0) bound = server_->bind_to_any_port(host);
  else if (!server_->bind_to_port(host, bound)) bound = -1;
  if (bound <= 0) {
    if (error) *error = "cannot listen on admin address " + host + ":" + std::to_string(port);
    server_.reset();
    return false;
  }
  port_ = static_cast<std::uint16_t>(bound);
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // cpp-httplib's stop() is a no-op until the server runs: wait for it, so a
  // stop right after start cannot leave the admin thread serving.
  for (int i = 0; i < 400 && !server_->is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return true;
}

void AdminServer::stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace userkey::lb::engine
