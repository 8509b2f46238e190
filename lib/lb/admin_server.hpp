// The lb's admin HTTP endpoint: /metrics (Prometheus text), /status (JSON),
// /healthz (liveness: always 200 while it serves) and /readyz (readiness:
// 200, or 503 once the proxy drains, so an orchestrator stops sending).
//
// Owns: an io_context of its own and the one thread that runs it (so a
// scrape that renders metrics never delays proxying, and a busy proxy loop
// never delays a probe), the listening socket (SO_REUSEADDR only, never
// SO_REUSEPORT: a second lb on the same admin port fails to start), and one
// coroutine per admin connection.
//
// Bounds (AdminLimits), so no client can stall it:
//   - the whole request head must arrive within `head_deadline` (2 s) of
//     accept: one deadline for the head, not one per read, so a client that
//     trickles header lines is closed when it runs out, unanswered;
//   - a head over `max_head_bytes` (8 KiB) is 431, a malformed one 400;
//   - at most `max_connections` (64) admin connections at once: a new one
//     beyond it gets 503 at once and is closed;
//   - the answer must be written within `write_deadline` (5 s);
//   - one request per connection, answered with Connection: close;
//   - GET and HEAD only (405 with Allow otherwise); the admin takes no body:
//     a request that announces one is 413 and its body is never read.
//
// Leaves to others: what the pages say (the functions it is given,
// proxy_metrics_render), and the proxy's own traffic (the event loops).
#pragma once

#include "io_types.hpp"

#include <boost/beast/http/empty_body.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

namespace userkey::lb::engine {

struct AdminLimits {
  std::chrono::milliseconds head_deadline{2000};
  std::chrono::milliseconds write_deadline{5000};
  std::size_t max_head_bytes = 8 * 1024;
  int max_connections = 64;
};

/// What the pages say; each is called on the admin thread, per request.
struct AdminPages {
  std::function<std::string()> metrics;
  std::function<std::string()> status;
  std::function<bool()> ready;
};

using AdminRequest = http::request<http::empty_body>;

/// The answer to one request head (pure but for the page functions it
/// calls): 405 + Allow for a method other than GET / HEAD, 413 when it
/// announces a body (Content-Length other than 0, or Transfer-Encoding), 404
/// for a path other than the four (a query is ignored), else the page. JSON
/// error bodies as the rest of the lb; Connection: close; a HEAD answer keeps
/// the page's Content-Length and drops its body.
Response admin_response(const AdminRequest& req, const AdminPages& pages);

/// The answer to a head that could not be read: 431 when it outgrew the
/// head limit, 400 when malformed; nothing (false) when the client left or
/// ran out of time.
bool admin_head_error_response(const error_code& ec, Response& out);

class AdminServer {
public:
  using Page = std::function<std::string()>;
  using Check = std::function<bool()>;

  /// `metrics`, `status` and `ready` are called on the admin thread for each
  /// request.
  AdminServer(Page metrics, Page status, Check ready, AdminLimits limits = {});
  ~AdminServer();  // stops
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  /// Binds host:port (port 0: any free port) without SO_REUSEPORT and starts
  /// serving. False with a message when it cannot bind.
  bool start(const std::string& host, std::uint16_t port, std::string* error);
  std::uint16_t port() const { return port_; }
  /// Stops serving and joins the admin thread; open admin connections are
  /// closed. Idempotent.
  void stop();

private:
  awaitable<void> accept_loop();
  awaitable<void> serve(Stream stream);
  void refuse_busy(Socket& sock) const;

  AdminPages pages_;
  AdminLimits limits_;
  std::unique_ptr<asio::io_context> io_;
  std::unique_ptr<Acceptor> acceptor_;
  std::thread thread_;
  std::uint16_t port_ = 0;
  int open_ = 0;  // admin connections being served (admin thread only)
};

}  // namespace userkey::lb::engine
