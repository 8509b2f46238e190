// Where a backend request is answered (internal to BackendServer).
//
// Owns: choosing the route from the method, the path and the address the
// request came in on (route_of), and answering it there: lookups (`/`) on
// the `threads` workers within `lookup_timeout` (at the deadline a 503 +
// Retry-After, and the lookup is then skipped), /readyz on a probe thread
// of its own where the probes that arrive while a check runs share it, the
// Prometheus page and everything else the router answers without
// repository work on the event loop.
//
// Leaves to others: reading the request, writing the answer, counting it.
#pragma once

#include <utility>  // Boost 1.74: before asio/awaitable.hpp under GCC 12

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "userkey/backend/backend_server.hpp"

namespace userkey::detail {

/// Which address a connection came in on: the admin one serves /metrics,
/// /healthz and /readyz only.
enum class Listener { main, admin };
/// How a request is answered.
enum class Route { lookup, readiness, metrics, on_loop, admin_not_found };

/// The route of a request; `admin_address`: whether the server has a
/// separate admin address (then /metrics is served there only).
Route route_of(std::string_view method, std::string_view target, Listener listener, bool admin_address);

/// What a request needs to be answered, owned (it crosses to worker threads).
struct RequestLine {
  std::string method;
  std::string target;
  std::string accept;
  HttpRequest view() const { return {method, target, accept}; }
};

class Dispatcher {
public:
  /// All three outlive the dispatcher; `ioc` is the event loop.
  Dispatcher(boost::asio::io_context& ioc, const BackendServerConfig& cfg, BackendMetrics& metrics);

  /// Starts the worker and probe threads; answers with `router` from now on.
  void start(std::shared_ptr<const Router> router);
  /// Waits for the threads (after the loop has ended).
  void join();
  const Router& router() const { return *router_; }

  /// Answers `line` by `route`. Loop thread only.
  boost::asio::awaitable<HttpResponse> respond(const RequestLine& line, Route route);

private:
  struct PendingLookup;
  struct ReadyCheck;

  boost::asio::awaitable<HttpResponse> lookup(const RequestLine& line);
  boost::asio::awaitable<HttpResponse> readiness();
  HttpResponse metrics_page() const;

  boost::asio::io_context& ioc_;
  const BackendServerConfig& cfg_;
  BackendMetrics& metrics_;
  std::optional<boost::asio::thread_pool> lookups_, probes_;
  std::shared_ptr<const Router> router_;
  std::shared_ptr<ReadyCheck> ready_check_;  // loop thread only
};

}  // namespace userkey::detail
