// Where a backend request is answered: see route_dispatch.hpp.
#include "backend/route_dispatch.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>

#include "userkey/core/query_string.hpp"

namespace userkey::detail {

namespace asio = boost::asio;
using error_code = boost::system::error_code;
using SteadyClock = std::chrono::steady_clock;

namespace {
auto nothrow(error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }
}  // namespace

Route route_of(std::string_view method, std::string_view target, Listener listener, bool admin_address) {
  const bool get = method == "GET" || method == "HEAD";
  const auto path = split_target(target).path;
  // Non-GET methods: the router's 405, on either address.
  if (!get) return Route::on_loop;
  if (path == "/metrics" && (listener == Listener::admin || !admin_address)) return Route::metrics;
  // Probes answer on both addresses (a kubelet or an lb may use either).
  if (path == "/readyz") return Route::readiness;
  if (listener == Listener::admin) return path == "/healthz" ? Route::on_loop : Route::admin_not_found;
  if (path == "/") return Route::lookup;
  return Route::on_loop;
}

// A lookup on a worker; the waiting connection gives up at the deadline.
struct Dispatcher::PendingLookup {
  explicit PendingLookup(asio::io_context& ioc) : wake(ioc) {}
  asio::steady_timer wake;  // the deadline; cancelled when `result` is set
  std::optional<HttpResponse> result;
  std::atomic<bool> abandoned{false};  // the client had its 503: skip the work
};

// A readiness check on the probe thread, shared by the probes that arrive
// while it runs. Loop thread only.
struct Dispatcher::ReadyCheck {
  explicit ReadyCheck(asio::io_context& ioc) : done(ioc, asio::steady_timer::time_point::max()) {}
  asio::steady_timer done;  // cancelled when `result` is set
  std::optional<HttpResponse> result;
};

Dispatcher::Dispatcher(asio::io_context& ioc, const BackendServerConfig& cfg, BackendMetrics& metrics)
    : ioc_(ioc), cfg_(cfg), metrics_(metrics) {}

void Dispatcher::start(std::shared_ptr<const Router> router) {
  router_ = std::move(router);
  lookups_.emplace(cfg_.threads == 0 ? 1 : cfg_.threads);
  probes_.emplace(1);
}

void Dispatcher::join() {
  if (lookups_) lookups_->join();
  if (probes_) probes_->join();
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

asio::awaitable<HttpResponse> Dispatcher::respond(const RequestLine& line, Route route) {
  switch (route) {
    case Route::lookup: co_return co_await lookup(line);
    case Route::readiness: co_return co_await readiness();
    case Route::metrics: co_return metrics_page();
    case Route::admin_not_found: co_return router_->protocol_error(404);
    case Route::on_loop: break;
  }
  co_return router_->handle(line.view());
}

// On a worker, within cfg_.lookup_timeout when there is one: a lookup
// queued behind workers all stuck on a hung store is a 503 at the deadline
// (and is then skipped), not a wait of several store timeouts.
asio::awaitable<HttpResponse> Dispatcher::lookup(const RequestLine& line) {
  auto pending = std::make_shared<PendingLookup>(ioc_);
  pending->wake.expires_at(cfg_.lookup_timeout.count() > 0 ? SteadyClock::now() + cfg_.lookup_timeout
                                                           : asio::steady_timer::time_point::max());
  asio::post(*lookups_, [this, pending, router = router_, line] {
    if (pending->abandoned.load()) return;
    HttpResponse res;
    try {
      res = router->handle(line.view());
    } catch (...) {
      res = router->protocol_error(503);
    }
    asio::post(ioc_, [pending, res = std::move(res)]() mutable {
      pending->result = std::move(res);
      pending->wake.cancel();
    });
  });
  error_code ec;
  co_await pending->wake.async_wait(nothrow(ec));
  if (pending->result) co_return std::move(*pending->result);
  pending->abandoned = true;
  metrics_.count_lookup_timeout();
  HttpResponse late = router_->protocol_error(503);
  late.headers.emplace_back("Retry-After", std::to_string(kRetryAfterSeconds));
  co_return late;
}

asio::awaitable<HttpResponse> Dispatcher::readiness() {
  auto check = ready_check_;
  if (!check) {
    check = ready_check_ = std::make_shared<ReadyCheck>(ioc_);
    asio::post(*probes_, [this, check, router = router_] {
      HttpResponse res;
      try {
        res = router->handle({"GET", "/readyz", ""});
      } catch (...) {
        res = router->protocol_error(503);
      }
      asio::post(ioc_, [this, check, res = std::move(res)]() mutable {
        check->result = std::move(res);
        if (ready_check_ == check) ready_check_.reset();
        check->done.cancel();
      });
    });
  }
  if (!check->result) {
    error_code ec;
    co_await check->done.async_wait(nothrow(ec));
  }
  co_return *check->result;
}

#pragma GCC diagnostic pop

// The Prometheus page: this server's counters and the repository's own.
HttpResponse Dispatcher::metrics_page() const {
  RepositoryStats repo;
  router_->repository().collect_stats(repo);
  HttpResponse res;
  res.content_type = std::string(kMetricsContentType);
  res.body = render_backend_metrics(metrics_, repo);
  return res;
}

}  // namespace userkey::detail
