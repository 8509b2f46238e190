// Active health checking: see health_checker.hpp.
#include "health_checker.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <optional>

#include "upstream_pool.hpp"  // is_local_error
#include "upstream_tls.hpp"

namespace userkey::lb::engine {

namespace {

// The GET and its answer, over the connection or its TLS layer.
template <class S>
awaitable<bool> exchange(S& s, const ActiveHealthConfig& cfg, const std::string& host_header,
                         http::response<http::string_body>& res) {
  http::request<http::empty_body> req{http::verb::get, cfg.path, 11};
  req.set(http::field::host, host_header);
  req.set(http::field::user_agent, "userkey-lb-health");
  req.keep_alive(false);
  error_code ec;
  co_await http::async_write(s, req, nothrow(ec));
  if (ec) co_return false;
  beast::flat_buffer buf;
  co_await http::async_read(s, buf, res, nothrow(ec));
  co_return !ec;
}

// One probe on a connection of its own: true for a 2xx within cfg.timeout;
// nullopt when our side ran short (no descriptor, buffer or port for it),
// which says nothing about the upstream. An upstream with tls=on is probed
// over TLS (a handshake that fails, a certificate that does not verify:
// the probe fails).
awaitable<std::optional<bool>> probe(asio::io_context& ioc, const tcp::endpoint& ep, const ActiveHealthConfig& cfg,
                                     const UpstreamConfig& upstream, asio::ssl::context& tls) {
  Stream stream(ioc);
  stream.expires_after(cfg.timeout);
  error_code ec;
  co_await stream.async_connect(ep, nothrow(ec));
  if (ec && is_local_error(ec)) co_return std::nullopt;
  if (ec) co_return false;
  const std::string host_header = upstream.address();
  http::response<http::string_body> res;
  bool answered = false;
  if (upstream.tls) {
    auto layer = make_upstream_tls(stream, tls, upstream.host);
    co_await layer->async_handshake(asio::ssl::stream_base::client, nothrow(ec));
    if (ec) co_return false;
    answered = co_await exchange(*layer, cfg, host_header, res);
  } else {
    answered = co_await exchange(stream, cfg, host_header, res);
  }
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);  // result irrelevant
  if (!answered) co_return false;
  const bool good = res.result_int() >= 200 && res.result_int() < 300;
  co_return good;
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
    const std::optional<bool> result = co_await probe(ioc, ep, active, up->config(), tls_);
    const bool ok = result.value_or(false);
    const bool was_out = up->passively_down(SteadyClock::now());
    if (result && ok && was_out && up->active_up())
      log_.info("upstream {} is back: health check {} passed (passive take-down cleared)", up->address(), active.path);
    if (result && up->report_probe(ok, active)) {
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
