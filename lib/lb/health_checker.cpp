// Active health checking: see health_checker.hpp.
#include "health_checker.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

namespace userkey::lb::engine {

namespace {

// One probe on a connection of its own: true for a 2xx within cfg.timeout.
awaitable<bool> probe(asio::io_context& ioc, const tcp::endpoint& ep, const ActiveHealthConfig& cfg,
                      const std::string& host_header) {
  Stream stream(ioc);
  stream.expires_after(cfg.timeout);
  error_code ec;
  co_await stream.async_connect(ep, nothrow(ec));
  if (ec) co_return false;
  http::request<http::empty_body> req{http::verb::get, cfg.path, 11};
  req.set(http::field::host, host_header);
  req.set(http::field::user_agent, "userkey-lb-health");
  req.keep_alive(false);
  co_await http::async_write(stream, req, nothrow(ec));
  if (ec) co_return false;
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  error_code read_ec;
  co_await http::async_read(stream, buf, res, nothrow(read_ec));
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);  // result irrelevant
  if (read_ec) co_return false;
  co_return res.result_int() >= 200 && res.result_int() < 300;
}

}  // namespace

void HealthChecker::start(const std::shared_ptr<const Snapshot>& snap) {
  if (!snap->active.enabled || !loop_) return;
  for (const auto& e : snap->entries)
    asio::co_spawn(*loop_, watch(*loop_, e.upstream, e.endpoint, snap->active, snap->generation), asio::detached);
}

awaitable<void> HealthChecker::watch(asio::io_context& ioc, std::weak_ptr<Upstream> weak, tcp::endpoint ep,
                                     ActiveHealthConfig active, std::uint64_t gen) {
  Timer timer(ioc);
  for (;;) {
    if (stopped_.load() || cluster_.generation() != gen) co_return;  // a newer snapshot started its own
    auto up = weak.lock();
    if (!up) co_return;
    const bool ok = co_await probe(ioc, ep, active, up->address());
    if (up->report_probe(ok, active)) {
      if (up->active_up())
        log_.info("upstream {} is UP (health check {} passed {} times)", up->address(), active.path, active.rise);
      else
        log_.warn("upstream {} is DOWN (health check {} failed {} times)", up->address(), active.path, active.fall);
    }
    timer.expires_after(active.interval);
    error_code ec;
    co_await timer.async_wait(nothrow(ec));
  }
}

}  // namespace userkey::lb::engine
