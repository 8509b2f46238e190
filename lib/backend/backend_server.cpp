// BackendServer on an Asio event loop; see backend_server.hpp for what it
// promises. Boost 1.74's asio/awaitable.hpp needs <utility> first under GCC 12.
#include <utility>

#include "userkey/backend/backend_server.hpp"

#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <boost/asio.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <list>
#include <optional>

#include "backend/http_wire.hpp"
#include "userkey/core/query_string.hpp"

namespace userkey {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using SteadyClock = std::chrono::steady_clock;

namespace {

auto nothrow(error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

// What a request needs to be answered, owned (it crosses to worker threads).
struct RequestLine {
  std::string method;
  std::string target;
  std::string accept;
  HttpRequest view() const { return {method, target, accept}; }
};

}  // namespace

class BackendServer::Server {
public:
  Server(const BackendServerConfig& cfg, std::shared_ptr<spdlog::logger> log, BackendMetrics& metrics)
      : cfg_(cfg), log_(std::move(log)), metrics_(metrics) {}

  /// The listen address; 0 with a message in `error` when it cannot be bound.
  std::uint16_t bind(std::string* error) { return bind_acceptor(acceptor_, cfg_.host, cfg_.port, "", error); }

  /// The admin address (cfg_.admin set); 0 with a message when it cannot be bound.
  std::uint16_t bind_admin(std::string* error) {
    return bind_acceptor(admin_acceptor_, cfg_.admin->host, cfg_.admin->port, "admin address ", error);
  }

  bool run(std::shared_ptr<const Router> router) {
    router_ = std::move(router);
    lookups_.emplace(cfg_.threads == 0 ? 1 : cfg_.threads);
    probes_.emplace(1);
    asio::co_spawn(ioc_, accept_loop(acceptor_, Listener::main), asio::detached);
    if (admin_acceptor_.is_open()) asio::co_spawn(ioc_, accept_loop(admin_acceptor_, Listener::admin), asio::detached);
    ioc_.run();  // until the acceptor is closed and every connection has ended
    lookups_->join();
    probes_->join();
    return !failed_;
  }

  /// From any thread.
  void stop() {
    asio::post(ioc_, [this] { begin_stop(); });
  }

private:
  // Which address a connection came in on: the admin one serves /metrics
  // and /healthz only.
  enum class Listener { main, admin };
  // How a request is answered, decided from its method and path.
  enum class Route { lookup, readiness, metrics, on_loop, admin_not_found };

  std::uint16_t bind_acceptor(tcp::acceptor& acceptor, const std::string& host, std::uint16_t port,
                              std::string_view what, std::string* error) {
    error_code ec;
    tcp::resolver resolver(ioc_);
    const auto endpoints =
        resolver.resolve(host, std::to_string(port), tcp::resolver::passive | tcp::resolver::numeric_service, ec);
    for (const auto& entry : endpoints) {
      if (ec) break;
      const auto ep = entry.endpoint();
      acceptor.open(ep.protocol(), ec);
      if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);  // not SO_REUSEPORT
      if (!ec) acceptor.bind(ep, ec);
      if (!ec) acceptor.listen(cfg_.backlog, ec);
      if (!ec) return acceptor.local_endpoint().port();
      error_code ignored;
      acceptor.close(ignored);
    }
    if (error)
      *error = "cannot listen on " + std::string(what) + host + ":" + std::to_string(port) + " (" +
               (ec ? ec.message() : std::string("address not found")) + ")";
    return 0;
  }

  // A connection, as stop() sees it: idle ones are closed, busy ones finish.
  struct Session {
    beast::tcp_stream* stream;
    bool busy = false;
  };
  // A lookup on a worker; the waiting connection gives up at the deadline.
  struct PendingLookup {
    explicit PendingLookup(asio::io_context& ioc) : wake(ioc) {}
    asio::steady_timer wake;  // the deadline; cancelled when `result` is set
    std::optional<HttpResponse> result;
    std::atomic<bool> abandoned{false};  // the client had its 503: skip the work
  };
  // A readiness check on the probe thread, shared by the probes that arrive
  // while it runs. Loop thread only.
  struct ReadyCheck {
    explicit ReadyCheck(asio::io_context& ioc) : done(ioc, asio::steady_timer::time_point::max()) {}
    asio::steady_timer done;  // cancelled when `result` is set
    std::optional<HttpResponse> result;
  };

  void begin_stop() {
    if (stopping_) return;
    stopping_ = true;
    error_code ec;
    acceptor_.close(ec);
    admin_acceptor_.close(ec);
    for (auto& s : sessions_)
      if (!s.busy) s.stream->socket().cancel(ec);
  }

  asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, Listener listener) {
    for (;;) {
      tcp::socket sock(ioc_);
      error_code ec;
      co_await acceptor.async_accept(sock, nothrow(ec));
      if (!ec) {
        asio::co_spawn(ioc_, session(std::move(sock), listener), asio::detached);
        continue;
      }
      if (stopping_ || ec == asio::error::operation_aborted) co_return;
      if (ec == asio::error::bad_descriptor || ec == asio::error::invalid_argument ||
          ec == asio::error::not_socket) {
        if (log_) log_->error("accepting connections failed: {}", ec.message());
        failed_ = true;
        co_return;
      }
      // Out of descriptors (EMFILE) or memory, or a connection that died in
      // the backlog: pause instead of spinning, then accept again.
      if (log_ && SteadyClock::now() - last_accept_warning_ > std::chrono::seconds(10)) {
        last_accept_warning_ = SteadyClock::now();
        log_->warn("cannot accept a connection: {} (retrying)", ec.message());
      }
      asio::steady_timer pause(ioc_, std::chrono::milliseconds(50));
      co_await pause.async_wait(nothrow(ec));
    }
  }

  asio::awaitable<void> session(tcp::socket sock, Listener listener) {
    error_code ec;
    // Without it, Nagle holds a response's second segment until the client's
    // delayed ACK (~40 ms).
    sock.set_option(tcp::no_delay(true), ec);
    const auto remote = sock.remote_endpoint(ec);
    const std::string peer = ec ? std::string("-") : remote.address().to_string();
    beast::tcp_stream stream(std::move(sock));
    sessions_.push_front({&stream});
    const auto self = sessions_.begin();
    try {
      co_await serve(stream, peer, *self, listener);
    } catch (const std::exception& e) {
      if (log_) log_->error("connection from {} ended by an internal error: {}", peer, e.what());
    }
    sessions_.erase(self);
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream.socket().close(ec);
  }

  asio::awaitable<void> serve(beast::tcp_stream& stream, const std::string& peer, Session& self, Listener listener) {
    beast::flat_buffer buffer;
    std::string head;
    for (std::size_t served = 0;;) {
      if (stopping_) co_return;
      self.busy = false;
      http::request_parser<http::string_body> parser;
      parser.header_limit(detail::kMaxRequestHead);
      parser.body_limit(detail::kMaxRequestBody);
      stream.expires_after(std::chrono::seconds(served == 0 ? cfg_.read_timeout_s : cfg_.keep_alive_timeout_s));
      error_code ec;
      co_await http::async_read_header(stream, buffer, parser, nothrow(ec));
      self.busy = true;
      if (!ec) ec = co_await read_body(stream, buffer, parser);
      if (ec) {
        const auto target = parser.get().target();
        if (const int status = detail::status_for_read_error(ec, {target.data(), target.size()})) {
          const HttpResponse refusal = router_->protocol_error(status);
          metrics_.count_response(status);
          co_await answer_and_close(stream, refusal, head);
        }
        co_return;
      }
      const auto& req = parser.get();
      if (req.target().size() > detail::kMaxRequestTarget) {
        const HttpResponse refusal = router_->protocol_error(414);
        metrics_.count_response(414);
        co_await answer_and_close(stream, refusal, head);
        co_return;
      }
      ++served;
      const auto started = SteadyClock::now();
      RequestLine line{std::string(req.method_string()), std::string(req.target()),
                       std::string(req[http::field::accept])};
      const Route route = route_of(line, listener);
      HttpResponse out = co_await respond(line, route);
      metrics_.count_response(out.status);
      if (route == Route::lookup)
        metrics_.observe_lookup(std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - started));
      const bool keep_alive = req.keep_alive() && served < cfg_.keep_alive_max_requests && !stopping_;
      const bool head_only = req.method() == http::verb::head;
      head.clear();
      detail::append_response_head(head, out, out.body.size(), keep_alive, req.version() == 10);
      const std::array<asio::const_buffer, 2> wire{asio::buffer(head),
                                                   asio::buffer(head_only ? std::string_view{} : out.body)};
      stream.expires_after(std::chrono::seconds(cfg_.read_timeout_s));
      co_await asio::async_write(stream, wire, nothrow(ec));
      if (cfg_.access_log && log_) {
        const auto us = std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - started).count();
        log_->info("{} {} {} {}us {}", line.method, line.target, out.status, us, peer);
      }
      if (ec || !keep_alive) co_return;
    }
  }

  // The rest of a request whose head is in: framing checks, 100 Continue,
  // the body (read and dropped: no route takes one).
  asio::awaitable<error_code> read_body(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                        http::request_parser<http::string_body>& parser) {
    const auto& h = parser.get();
    const auto lengths = h.count(http::field::content_length);
    // Ambiguous framing (request smuggling): RFC 9112 6.3 says 400.
    if (lengths > 1 || (lengths == 1 && h.count(http::field::transfer_encoding) > 0))
      co_return http::error::bad_content_length;
    error_code ec;
    if (parser.is_done()) co_return ec;
    if (auto expect = h.find(http::field::expect);
        expect != h.end() && beast::iequals(expect->value(), "100-continue")) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      co_await asio::async_write(stream, asio::buffer(kContinue), nothrow(ec));
      if (ec) co_return ec;
    }
    stream.expires_after(std::chrono::seconds(cfg_.read_timeout_s));
    co_await http::async_read(stream, buffer, parser, nothrow(ec));
    co_return ec;
  }

  Route route_of(const RequestLine& line, Listener listener) const {
    const bool get = line.method == "GET" || line.method == "HEAD";
    const auto path = split_target(line.target).path;
    // Non-GET methods: the router's 405, on either address.
    if (!get) return Route::on_loop;
    if (path == "/metrics" && (listener == Listener::admin || !cfg_.admin)) return Route::metrics;
    if (listener == Listener::admin) return path == "/healthz" ? Route::on_loop : Route::admin_not_found;
    if (path == "/readyz") return Route::readiness;
    if (path == "/") return Route::lookup;
    return Route::on_loop;
  }

  // Answers a request: lookups on the workers, /readyz on the probe thread,
  // the rest (no repository work) right here on the loop.
  asio::awaitable<HttpResponse> respond(const RequestLine& line, Route route) {
    switch (route) {
      case Route::lookup: co_return co_await lookup(line);
      case Route::readiness: co_return co_await readiness();
      case Route::metrics: co_return metrics_page();
      case Route::admin_not_found: co_return router_->protocol_error(404);
      case Route::on_loop: break;
    }
    co_return router_->handle(line.view());
  }

  // The Prometheus page: this server's counters and the repository's own.
  HttpResponse metrics_page() const {
    RepositoryStats repo;
    router_->repository().collect_stats(repo);
    HttpResponse res;
    res.content_type = std::string(kMetricsContentType);
    res.body = render_backend_metrics(metrics_, repo);
    return res;
  }

  // On a worker, within cfg_.lookup_timeout when there is one: a lookup
  // queued behind workers all stuck on a hung store is a 503 at the deadline
  // (and is then skipped), not a wait of several store timeouts.
  asio::awaitable<HttpResponse> lookup(const RequestLine& line) {
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

  asio::awaitable<HttpResponse> readiness() {
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

  // An answer to a request that cannot go on (malformed, too large), then a
  // lingering close: the client may still be sending what was refused, and
  // closing with unread data would reset the connection and could destroy
  // the answer before the client reads it.
  asio::awaitable<void> answer_and_close(beast::tcp_stream& stream, const HttpResponse& res, std::string& head) {
    head.clear();
    detail::append_response_head(head, res, res.body.size(), false, false);
    const std::array<asio::const_buffer, 2> wire{asio::buffer(head), asio::buffer(res.body)};
    error_code ec;
    stream.expires_after(std::chrono::seconds(cfg_.read_timeout_s));
    co_await asio::async_write(stream, wire, nothrow(ec));
    if (ec) co_return;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream.expires_after(std::chrono::seconds(1));
    std::array<char, 4096> discard;
    for (std::size_t total = 0; total < 256 * 1024 && !ec;)
      total += co_await stream.async_read_some(asio::buffer(discard), nothrow(ec));
  }

  const BackendServerConfig cfg_;
  std::shared_ptr<spdlog::logger> log_;
  asio::io_context ioc_;
  BackendMetrics& metrics_;
  tcp::acceptor acceptor_{ioc_};
  tcp::acceptor admin_acceptor_{ioc_};
  std::optional<asio::thread_pool> lookups_, probes_;
  std::shared_ptr<const Router> router_;
  // Loop thread only:
  std::list<Session> sessions_;
  std::shared_ptr<ReadyCheck> ready_check_;
  bool stopping_ = false;
  bool failed_ = false;
  SteadyClock::time_point last_accept_warning_{};
};

BackendServer::BackendServer(BackendServerConfig config, std::shared_ptr<spdlog::logger> log)
    : config_(std::move(config)), log_(std::move(log)), server_(std::make_unique<Server>(config_, log_, metrics_)) {}

BackendServer::~BackendServer() { stop(); }

bool BackendServer::bind(std::string* error) {
  bound_port_ = server_->bind(error);
  if (bound_port_ != 0 && config_.admin) admin_port_ = server_->bind_admin(error);
  return bound_port_ != 0 && (!config_.admin || admin_port_ != 0);
}

bool BackendServer::run(std::shared_ptr<const Router> router) {
  router_ = std::move(router);
  if (stop_requested_.load()) return true;
  running_.store(true);
  const bool ok = server_->run(router_);
  running_.store(false);
  return ok || stop_requested_.load();
}

void BackendServer::stop() {
  stop_requested_.store(true);
  server_->stop();  // queued for the loop: takes effect when (or if) run() runs it
}

std::uint64_t raise_open_file_limit(std::string* error) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    if (error) *error = std::string("getrlimit: ") + std::strerror(errno);
    return 0;
  }
  if (rl.rlim_cur < rl.rlim_max) {
    const rlim_t was = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) {
      if (error) *error = std::string("setrlimit: ") + std::strerror(errno);
      return was;
    }
  }
  return rl.rlim_cur;
}

}  // namespace userkey
