#include "userkey/backend/backend_server.hpp"

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <chrono>
#include <thread>

#include "core/httplib_socket.hpp"

namespace userkey {

// cpp-httplib's listening socket is protected; a subclass may re-listen() it
// with a real backlog (Linux applies the new backlog to a listening socket).
class BackendServer::Server : public httplib::Server {
public:
  bool raise_backlog(int backlog) { return ::listen(svr_sock_, backlog) == 0; }
};

BackendServer::BackendServer(BackendServerConfig config, std::shared_ptr<spdlog::logger> log)
    : config_(std::move(config)), log_(std::move(log)), server_(std::make_unique<Server>()) {
  auto& s = *server_;
  const std::size_t threads = config_.threads == 0 ? 1 : config_.threads;
  s.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };  // owned by httplib
  // Without it, Nagle holds the body segment until the client's delayed ACK
  // (~40 ms) whenever a response goes out in two writes.
  s.set_tcp_nodelay(true);
  s.set_socket_options(detail::exclusive_socket_options);
  s.set_keep_alive_max_count(config_.keep_alive_max_requests);
  s.set_keep_alive_timeout(config_.keep_alive_timeout_s);
  s.set_read_timeout(config_.read_timeout_s, 0);
  s.set_payload_max_length(64 * 1024);

  auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    const auto start = std::chrono::steady_clock::now();
    const std::string accept = req.get_header_value("Accept");
    HttpResponse out = router_->handle({req.method, req.target, accept});
    res.status = out.status;
    for (auto& [k, v] : out.headers) res.set_header(k.c_str(), v);
    res.set_content(std::move(out.body), out.content_type.c_str());
    if (config_.access_log && log_) {
      const auto us =
          std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count();
      log_->info("{} {} {} {}us {}", req.method, req.target, out.status, us, req.remote_addr);
    }
  };
  // cpp-httplib answers some requests itself (400 for a malformed request,
  // 413, 414): give them the router's JSON error shape. Every answer of the
  // router has a body, so an empty one is httplib's.
  s.set_error_handler(httplib::Server::HandlerWithResponse(
      [this](const httplib::Request&, httplib::Response& res) {
        if (!res.body.empty() || !router_) return httplib::Server::HandlerResponse::Unhandled;
        HttpResponse out = router_->protocol_error(res.status);
        res.set_content(std::move(out.body), out.content_type.c_str());
        return httplib::Server::HandlerResponse::Handled;
      }));
  s.Get(".*", handler);
  s.Post(".*", handler);
  s.Put(".*", handler);
  s.Patch(".*", handler);
  s.Delete(".*", handler);
  s.Options(".*", handler);
}

BackendServer::~BackendServer() { stop(); }

bool BackendServer::bind(std::string* error) {
  int port = config_.port;
  if (port == 0) {
    port = server_->bind_to_any_port(config_.host);
    if (port < 0) port = 0;
  } else if (!server_->bind_to_port(config_.host, port)) {
    port = 0;
  }
  if (port == 0) {
    if (error) *error = "cannot listen on " + config_.host + ":" + std::to_string(config_.port) +
                        " (address in use or not local)";
    return false;
  }
  if (!server_->raise_backlog(config_.backlog) && log_) log_->warn("could not raise the listen backlog");
  bound_port_ = static_cast<std::uint16_t>(port);
  return true;
}

bool BackendServer::run(std::shared_ptr<const Router> router) {
  router_ = std::move(router);  // before any request can arrive: the loop starts below
  if (stop_requested_.load()) return true;
  running_.store(true);
  const bool ok = server_->listen_after_bind();
  running_.store(false);
  return ok || stop_requested_.load();
}

void BackendServer::stop() {
  stop_requested_.store(true);
  // cpp-httplib's stop() is a no-op until its accept loop runs: if run() has
  // started, wait (briefly) for the loop so the stop is not lost.
  for (int i = 0; i < 400 && running_.load() && !server_->is_running(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  server_->stop();
}

}  // namespace userkey
