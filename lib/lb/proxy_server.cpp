// ProxyServer, the facade: builds the engine's parts from a ProxyConfig, wires
// them together and runs their lifecycle (start, reload, drain, stop). See
// proxy_server.hpp for what it promises.
//
// Owns the parts' lifetimes and their order. Leaves all request work to them:
//   listener            accept on the first loop, hand connections to each loop in turn
//                       (the plain one and the TLS one, alike)
//   tls_context         the TLS server context of the TLS listener's connections
//   worker              one event loop: its sessions, router and upstream pools
//   downstream_session  one client connection (admission steps, deadlines, keep-alive, replies)
//   admission           IP filter, per-IP connection cap, rate limit
//   upstream_router     choose -> attempt -> retry or answer, per request
//   upstream_pool       keep-alive connections and max_conns slots, per loop and upstream
//   http1_codec         HTTP/1.1 rules as pure functions
//   cluster             configuration snapshots, reload, background re-resolution
//   health_checker      active health probes
//   admin_server        /metrics, /status (rendered by proxy_metrics_render)
#include <utility>  // Boost 1.74: before asio/awaitable.hpp under GCC 12

#include "userkey/lb/proxy_server.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <atomic>
#include <random>
#include <thread>

#include "net/open_files.hpp"
#include "admin_server.hpp"
#include "userkey/core/logging.hpp"
#include "admission.hpp"
#include "cluster.hpp"
#include "health_checker.hpp"
#include "listener.hpp"
#include "proxy_metrics_render.hpp"
#include "tls_context.hpp"
#include "upstream_tls.hpp"
#include "worker.hpp"

namespace userkey::lb {

namespace asio = boost::asio;
using engine::error_code;
using engine::tcp;

std::vector<std::string> system_resolve(const std::string& host, std::uint16_t port) {
  asio::io_context ctx;
  tcp::resolver r(ctx);
  error_code ec;
  const auto results = r.resolve(host, std::to_string(port), ec);
  std::vector<std::string> out;
  if (ec) return out;
  for (const auto& entry : results) out.push_back(entry.endpoint().address().to_string());
  return out;
}

// Members are destroyed in reverse: the loops (and the coroutines they end)
// before what they use.
struct ProxyServer::Impl {
  ProxyConfig cfg;
  // Built first: unusable certificate or key files fail the constructor.
  std::unique_ptr<engine::TlsContextStore> tls =
      cfg.tls.listen_host.empty() ? nullptr
                                  : std::make_unique<engine::TlsContextStore>(cfg.tls.cert_file, cfg.tls.key_file,
                                                                              cfg.tls.ticket_rotate);
  std::shared_ptr<spdlog::logger> log;
  // JSON access log lines, as they are: standard output or access_log_file.
  std::shared_ptr<spdlog::logger> json_access_log =
      cfg.access_log && cfg.access_log_format == AccessLogFormat::json
          ? make_line_logger("access", LogDelivery::async, cfg.access_log_file)
          : nullptr;
  // Text access log lines in a file of their own; null: in `log`.
  std::shared_ptr<spdlog::logger> text_access_log =
      cfg.access_log && cfg.access_log_format == AccessLogFormat::text && !cfg.access_log_file.empty()
          ? make_logger("lb", "info", LogDelivery::async, cfg.access_log_file)
          : nullptr;
  SplitMixRandom random{std::random_device{}() ^ (static_cast<std::uint64_t>(std::random_device{}()) << 32)};
  SystemTimeSource clock;
  ProxyStats stats;
  engine::Admission admission;  // throws for a bad CIDR, before the cluster's checks
  engine::Cluster cluster;
  std::atomic<bool> draining{false};
  std::atomic<bool> stopped{false};
  // The client side of TLS to upstreams with tls=on; built for every
  // configuration, so a reload may turn tls on for an upstream.
  std::unique_ptr<engine::UpstreamTlsContext> upstream_tls =
      std::make_unique<engine::UpstreamTlsContext>(cfg.tls.upstream_ca_file);
  engine::HealthChecker health{cluster, stopped, *log, upstream_tls->get()};

  std::vector<std::unique_ptr<engine::Worker>> workers;
  std::unique_ptr<engine::Listener> listener;      // plain HTTP; null when off
  std::unique_ptr<engine::Listener> tls_listener;  // null without TLS
  std::vector<std::thread> threads;
  std::unique_ptr<engine::AdminServer> admin;
  std::uint16_t bound_port = 0;
  std::uint16_t bound_tls_port = 0;

  Impl(ProxyConfig c, PolicyRegistry r, std::shared_ptr<spdlog::logger> l, HostResolver res)
      : cfg(std::move(c)),
        log(l ? std::move(l) : std::make_shared<spdlog::logger>("lb")),
        admission(cfg.limits, cfg.trusted_proxies, cfg.real_ip_header),
        cluster(cfg, std::move(r), PolicyContext{&random, &clock}, std::move(res), log) {
    cluster.set_listener([this](const std::shared_ptr<const engine::Snapshot>& snap) { health.start(snap); });
    if (tls) stats.tls_certificate_expiry.store(tls->current()->expires(), std::memory_order_relaxed);
  }

  std::string metrics_text() const { return render_metrics_text(stats, *cluster.snapshot(), SteadyClock::now()); }
  std::string status_json() const {
    return render_status_json(stats, *cluster.snapshot(), draining.load(), SteadyClock::now());
  }
  // The loops go last: the listener accepts on the first.
  void drop_loops() {
    health.detach();
    listener.reset();
    tls_listener.reset();
    workers.clear();
  }
};

ProxyServer::ProxyServer(ProxyConfig config, PolicyRegistry registry, std::shared_ptr<spdlog::logger> log,
                         HostResolver resolver)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(registry), std::move(log), std::move(resolver))) {}

ProxyServer::~ProxyServer() { stop(); }

bool ProxyServer::start(std::string* error) {
  auto& im = *impl_;
  auto fail = [&](std::string msg) {
    if (error) *error = std::move(msg);
    im.drop_loops();
    return false;
  };
  // Every proxied request holds two descriptors: run with the hard limit.
  std::string nofile_error;
  const auto nofile = net::raise_open_file_limit(&nofile_error);
  if (nofile_error.empty()) im.log->info("open files limit {}", nofile);
  else im.log->warn("open files limit stays {}: {}", nofile, nofile_error);
  if (im.cfg.proxy_protocol && im.cfg.trusted_proxies.empty())
    im.log->warn("--proxy-protocol without --trusted-proxies: any peer that reaches the port may name its own "
                 "client address in a PROXY header; list the proxies that send one");
  std::uint32_t n = im.cfg.threads;
  if (n == 0) n = std::clamp<std::uint32_t>(std::thread::hardware_concurrency(), 1, 4);
  const engine::EngineContext ctx{im.cfg,
                                  im.stats,
                                  im.admission,
                                  im.cluster,
                                  *im.log,
                                  im.json_access_log.get(),
                                  im.text_access_log.get(),
                                  im.draining,
                                  im.stopped,
                                  im.tls.get(),
                                  im.upstream_tls->get()};
  for (std::uint32_t i = 0; i < n; ++i) im.workers.push_back(std::make_unique<engine::Worker>(ctx, i, n));
  auto& first = *im.workers.front();
  // Each listener accepts on the first loop; they differ only in how their
  // connections are served.
  auto open_listener = [&](const std::string& host, std::uint16_t port, engine::ClientTransport transport,
                           std::unique_ptr<engine::Listener>& out, std::uint16_t& bound) -> std::string {
    error_code ec;
    auto addr = asio::ip::make_address(host, ec);
    if (ec) return "listen address '" + host + "' is not an IP address";
    out = std::make_unique<engine::Listener>(first.io(), engine::hand_to_loops(im.workers, transport), im.stats,
                                             *im.log);
    if (auto listen_ec = out->listen(tcp::endpoint(addr, port)))
      return "cannot listen on " + host + ":" + std::to_string(port) + ": " + listen_ec.message();
    bound = out->port();
    return {};
  };
  if (!im.cfg.listen_host.empty()) {
    auto msg = open_listener(im.cfg.listen_host, im.cfg.listen_port, engine::ClientTransport::plain, im.listener,
                             im.bound_port);
    if (!msg.empty()) return fail(std::move(msg));
  }
  if (im.tls) {
    auto msg = open_listener(im.cfg.tls.listen_host, im.cfg.tls.listen_port, engine::ClientTransport::tls,
                             im.tls_listener, im.bound_tls_port);
    if (!msg.empty()) return fail(std::move(msg));
  }

  if (!im.cfg.admin_host.empty()) {
    im.admin = std::make_unique<engine::AdminServer>([&im] { return im.metrics_text(); },
                                                     [&im] { return im.status_json(); },
                                                     [&im] { return !im.draining.load(); });
    std::string admin_error;
    if (!im.admin->start(im.cfg.admin_host, im.cfg.admin_port, &admin_error)) return fail(admin_error);
  }

  if (im.listener) im.listener->start();
  if (im.tls_listener) im.tls_listener->start();
  for (auto& w : im.workers) w->start_housekeeping(/*sweep_rate_limits=*/w.get() == &first && im.admission.rate_limited());
  im.health.attach(first.io());
  im.health.start(im.cluster.snapshot());
  for (auto& w : im.workers) im.threads.emplace_back([wp = w.get()] { wp->run(); });
  im.cluster.start_reresolving();
  return true;
}

std::uint16_t ProxyServer::port() const { return impl_->bound_port; }
std::uint16_t ProxyServer::tls_port() const { return impl_->bound_tls_port; }
std::uint16_t ProxyServer::admin_port() const { return impl_->admin ? impl_->admin->port() : 0; }

void ProxyServer::reload(const ProxyConfig& config) {
  auto& im = *impl_;
  // The certificate and key are read again (files replaced in place, or new
  // paths); new connections get them, open ones keep what they have. Files
  // that do not load leave the running pair serving.
  if (im.tls && !config.tls.listen_host.empty()) {
    try {
      im.tls->reload(config.tls.cert_file, config.tls.key_file);
      im.stats.tls_certificate_expiry.store(im.tls->current()->expires(), std::memory_order_relaxed);
      im.stats.tls_reloads.fetch_add(1, std::memory_order_relaxed);
      im.log->info("TLS certificate reloaded from {}", config.tls.cert_file);
    } catch (const std::exception& e) {
      im.stats.tls_reload_failures.fetch_add(1, std::memory_order_relaxed);
      im.log->error("TLS certificate reload failed, keeping the running one: {}", e.what());
    }
  }
  impl_->cluster.reload(config);
  impl_->log->info("configuration reloaded: {} upstreams, policy {}", config.upstreams.size(), config.policy);
}

bool ProxyServer::reopen_logs(std::string* error) {
  auto& im = *impl_;
  bool ok = reopen_log_files(*im.log, error);
  for (auto* access : {im.json_access_log.get(), im.text_access_log.get()})
    if (access != nullptr) ok = reopen_log_files(*access, ok ? error : nullptr) && ok;
  return ok;
}

void ProxyServer::drain() {
  auto& im = *impl_;
  if (im.workers.empty() || im.stopped.load()) return;
  im.draining.store(true);
  asio::post(im.workers.front()->io(), [plain = im.listener.get(), tls = im.tls_listener.get()] {
    if (plain) plain->close();
    if (tls) tls->close();
  });
  // Keep-alive connections that stay idle are closed; one whose client has
  // just had an answer gets a moment, so a request it is sending right now
  // is served (with Connection: close) rather than cut.
  const auto deadline = SteadyClock::now() + im.cfg.drain_timeout;
  constexpr std::chrono::milliseconds kGrace{250};
  do {
    for (auto& w : im.workers) asio::post(w->io(), [wp = w.get()] { wp->close_idle_sessions(kGrace); });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  } while (im.stats.connections_open.load() > 0 && SteadyClock::now() < deadline);
  // WebSocket tunnels are busy for as long as they last: those still open
  // are closed now, each as any tunnel ends (both sides shut, its access
  // line written), with a moment for that before the loops stop.
  if (im.stats.tunnels_open.load() > 0) {
    for (auto& w : im.workers) asio::post(w->io(), [wp = w.get()] { wp->close_tunnels(); });
    const auto grace = SteadyClock::now() + std::chrono::seconds(1);
    while (im.stats.tunnels_open.load() > 0 && SteadyClock::now() < grace)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stop();
}

void ProxyServer::stop() {
  auto& im = *impl_;
  if (im.stopped.exchange(true)) return;
  im.cluster.stop_reresolving();  // it may start health checks on the first loop
  for (auto& w : im.workers) w->io().stop();
  for (auto& t : im.threads)
    if (t.joinable()) t.join();
  if (im.admin) im.admin->stop();
  im.threads.clear();
  im.drop_loops();
}

std::string ProxyServer::metrics_text() const { return impl_->metrics_text(); }
std::string ProxyServer::status_json() const { return impl_->status_json(); }

}  // namespace userkey::lb
