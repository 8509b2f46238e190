// The proxy engine. See proxy_server.hpp for what it promises; this file is
// how. Boost 1.74's asio/awaitable.hpp needs <utility> first under GCC 12.
#include <utility>

#include "userkey/lb/proxy_server.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <condition_variable>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <unordered_map>

#include "escape.hpp"
#include "http1_codec.hpp"
#include "io_types.hpp"
#include "upstream_pool.hpp"
#include "admin_server.hpp"
#include "cluster.hpp"
#include "health_checker.hpp"
#include "proxy_metrics_render.hpp"
#include "userkey/lb/hash_key.hpp"
#include "userkey/query_string.hpp"
#include "userkey/lb/ip_filter.hpp"
#include "userkey/lb/proxy_metrics.hpp"
#include "userkey/lb/token_bucket.hpp"

namespace userkey::lb {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using engine::Acceptor;
using engine::awaitable;
using engine::error_code;
using engine::Executor;
using engine::nothrow;
using engine::Socket;
using engine::Stream;
using engine::tcp;
using engine::Timer;
using http1::Request;
using http1::Response;
using http1::format_request_id;
using http1::idempotent;
using http1::serialize_client_response;
using http1::serialize_upstream_request;

using engine::Snapshot;
using engine::UpstreamEntry;

struct ProxyServer::Impl {
  ProxyConfig cfg;
  std::shared_ptr<spdlog::logger> log;
  SplitMixRandom random{std::random_device{}() ^ (static_cast<std::uint64_t>(std::random_device{}()) << 32)};
  SystemTimeSource clock;
  ProxyStats stats;
  IpFilter filter;
  RateLimiter limiter;
  ConnectionLimiter conn_limiter;
  engine::Cluster cluster;

  std::atomic<bool> draining{false};
  std::atomic<bool> stopped{false};
  std::uint16_t bound_port = 0;

  engine::HealthChecker health{cluster, stopped, *log};
  struct Worker;
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<std::thread> threads;
  std::unique_ptr<engine::AdminServer> admin;

  Impl(ProxyConfig c, PolicyRegistry r, std::shared_ptr<spdlog::logger> l, HostResolver res)
      : cfg(std::move(c)),
        log(l ? std::move(l) : std::make_shared<spdlog::logger>("lb")),
        filter(make_filter(cfg.limits)),
        limiter(cfg.limits.rate, cfg.limits.burst),
        conn_limiter(cfg.limits.max_conns_per_ip),
        cluster(cfg, std::move(r), PolicyContext{&random, &clock}, std::move(res), log) {
    cluster.set_listener([this](const std::shared_ptr<const Snapshot>& snap) { health.start(snap); });
  }

  static IpFilter make_filter(const LimitsConfig& limits) {
    IpFilter filter;
    for (auto& a : limits.allow) filter.add_allow(parse_cidr(a));
    for (auto& d : limits.deny) filter.add_deny(parse_cidr(d));
    return filter;
  }

  static Cidr parse_cidr(const std::string& s) {
    std::string err;
    auto c = Cidr::parse(s, &err);
    if (!c) throw std::invalid_argument("bad CIDR '" + s + "': " + err);
    return *c;
  }

  std::shared_ptr<const Snapshot> snapshot() const { return cluster.snapshot(); }
};

// ---------------------------------------------------------------------------
// A worker: one event loop, its listener, its sessions and its upstream pools.
struct ProxyServer::Impl::Worker {
  Impl& impl;
  std::size_t index;
  // Settings and queue count of this loop's pools; declared before the loop
  // so that it outlives the coroutines the loop's destruction ends.
  engine::PoolShared pool_shared;
  // One thread runs this loop and only it touches the loop's sockets and
  // timers, so the reactor needs no I/O locking; posts from other threads
  // (drain, stop) still go through the locked scheduler queue.
  asio::io_context ioc{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  Acceptor acceptor{ioc};
  std::shared_ptr<const Snapshot> snap;  // cached; refreshed on generation change
  engine::LoopPools pools{ioc, pool_shared};

  // Sessions, so drain can close idle keep-alive connections.
  struct SessionRef {
    Stream* stream;
    bool busy;
  };
  std::list<SessionRef> sessions;
  // Read deadline for a request head, one per session, re-armed for each
  // request. Shared with its timer handler, which may run after the read
  // finished: the generation tells it that its deadline is no longer current.
  struct HeadDeadline {
    HeadDeadline(asio::io_context& io, Stream* s) : timer(io), stream(s) {}
    Timer timer;
    Stream* stream;
    std::uint64_t generation = 0;
    bool fired = false;
  };
  std::uint64_t request_counter = 0;
  std::uint64_t id_prefix;

  Worker(Impl& i, std::size_t idx, std::size_t loops) : impl(i), index(idx), id_prefix(i.random.next()) {
    auto& ps = pool_shared.settings;
    ps.connect_timeout = i.cfg.connect_timeout;
    ps.idle_timeout = i.cfg.upstream_idle_timeout;
    ps.queue_timeout = i.cfg.queue_timeout;
    ps.queue_size = i.cfg.queue_size;
    ps.several_loops = loops > 1;
  }

  const Snapshot& refresh() {
    if (!snap || snap->generation != impl.cluster.generation()) {
      snap = impl.snapshot();
      // Drop the pools of upstreams that are gone (a request still using one
      // keeps it alive through its shared_ptr).
      pools.retire_absent(snap->ptrs);
    }
    return *snap;
  }

  // -------------------------------------------------------------------------
  // Accepting
  // Only the first worker accepts (in batches); each connection goes to the
  // next worker's loop in turn. (One listening socket, no SO_REUSEPORT: a
  // second process can never silently share the port.)
  awaitable<void> accept_loop() {
    std::size_t next = 0;
    const auto protocol = acceptor.local_endpoint().protocol();
    error_code ec;
    acceptor.non_blocking(true, ec);
    for (;;) {
      Socket sock(ioc);
      co_await acceptor.async_accept(sock, nothrow(ec));
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
        // Out of descriptors or similar: back off instead of spinning.
        Timer pause(ioc);
        pause.expires_after(std::chrono::milliseconds(50));
        co_await pause.async_wait(nothrow(ec));
        continue;
      }
      dispatch(std::move(sock), next, protocol);
      // Then take what else is waiting in the backlog, up to a batch, without
      // going back through the event queue for each: under load a burst of
      // new connections would otherwise be accepted one per loop turn.
      for (int batch = 1; batch < kAcceptBatch; ++batch) {
        Socket more(ioc);
        acceptor.accept(more, ec);
        if (ec) break;  // would_block: the backlog is empty
        dispatch(std::move(more), next, protocol);
      }
    }
  }

  static constexpr int kAcceptBatch = 64;

  // Starts a session for an accepted connection on the next loop in turn.
  void dispatch(Socket sock, std::size_t& next, const tcp& protocol) {
    impl.stats.connections_accepted.fetch_add(1, std::memory_order_relaxed);
    auto& target = *impl.workers[next];
    next = (next + 1) % impl.workers.size();
    if (&target == this) {
      asio::co_spawn(ioc, session(std::move(sock)), asio::detached);
      return;
    }
    // Each loop touches only its own reactor (which lets it run without
    // I/O locking): hand the descriptor over and let the target adopt it.
    error_code ec;
    const auto fd = sock.release(ec);
    if (ec) return;
    asio::post(target.ioc, [&target, fd, protocol] {
      Socket adopted(target.ioc);
      error_code e;
      adopted.assign(protocol, fd, e);
      if (e) {
        ::close(fd);
        return;
      }
      asio::co_spawn(target.ioc, target.session(std::move(adopted)), asio::detached);
    });
  }

  // Closes pooled connections that idled past upstream_idle_timeout, so
  // their slots (counted across loops against max_conns) come back even
  // when this loop gets no more traffic for that upstream.
  awaitable<void> sweep_idle_loop() {
    Timer timer(ioc);
    for (;;) {
      timer.expires_after(std::max<std::chrono::milliseconds>(impl.cfg.upstream_idle_timeout / 2,
                                                              std::chrono::milliseconds(100)));
      error_code ec;
      co_await timer.async_wait(nothrow(ec));
      if (ec || impl.stopped.load(std::memory_order_relaxed)) co_return;
      pools.sweep(SteadyClock::now());
    }
  }

  // -------------------------------------------------------------------------
  // Client side
  // The lb's own answer. `head_request`: headers only (a HEAD response has
  // no body, whatever its Content-Length says).
  awaitable<void> write_error(Stream& client, unsigned status, std::string_view message, bool keep_alive,
                              unsigned version = 11, std::chrono::seconds retry_after = std::chrono::seconds(0),
                              bool head_request = false) {
    const Response res = http1::make_error_response(status, message, version, retry_after);
    std::string head;
    serialize_client_response(head, res, version, keep_alive, false);
    const std::array<asio::const_buffer, 2> out{
        asio::buffer(head), asio::buffer(head_request ? std::string_view{} : std::string_view(res.body()))};
    client.expires_after(std::chrono::seconds(5));
    error_code ec;
    co_await asio::async_write(client, out, nothrow(ec));
    if (!keep_alive && !ec) {
      // Lingering close: the client may still be sending what we refused
      // (a huge header or body). Closing with unread data would reset the
      // connection and could destroy this answer before the client reads
      // it, so stop sending, then read and discard for a moment.
      client.socket().shutdown(tcp::socket::shutdown_send, ec);
      client.expires_after(std::chrono::seconds(1));
      std::array<char, 4096> discard;
      for (std::size_t total = 0; total < 256 * 1024;) {
        const std::size_t n = co_await client.async_read_some(asio::buffer(discard), nothrow(ec));
        if (ec) break;
        total += n;
      }
    }
    client.expires_never();
  }

  // A request the lb answers itself (or drops), counted.
  awaitable<void> answer(Stream& client, const http1::RequestDecision& d) {
    if (d.reason) impl.stats.reject(*d.reason);
    if (d.action == http1::RequestDecision::Action::reject) co_await write_error(client, d.status, d.message, false);
  }

  awaitable<void> session(Socket sock) {
    error_code ec;
    const auto remote = sock.remote_endpoint(ec);
    if (ec) co_return;
    auto ip_addr = remote.address();
    if (ip_addr.is_v6() && ip_addr.to_v6().is_v4_mapped()) ip_addr = ip_addr.to_v6().to_v4();
    const std::string client_ip = ip_addr.to_string();
    sock.set_option(tcp::no_delay(true), ec);
    Stream client(std::move(sock));

    if (!impl.filter.empty() && !impl.filter.allowed(client_ip)) {
      impl.stats.reject(Rejection::denied);
      co_await write_error(client, 403, "forbidden", false);
      co_return;
    }
    const bool limited = impl.conn_limiter.cap() > 0;
    if (limited && !impl.conn_limiter.try_acquire(client_ip)) {
      impl.stats.reject(Rejection::too_many_conns);
      co_await write_error(client, 429, "too many connections from this address", false, 11, std::chrono::seconds(1));
      co_return;
    }
    impl.stats.connections_open.fetch_add(1, std::memory_order_relaxed);
    sessions.push_front({&client, false});
    auto self = sessions.begin();

    try {
      co_await serve(client, client_ip, *self);
    } catch (const std::exception& e) {
      // Nothing in a request should throw; if something does, this
      // connection ends but its accounting below still runs.
      impl.log->error("connection from {} ended by an internal error: {}", client_ip, e.what());
    }

    sessions.erase(self);
    impl.stats.connections_open.fetch_sub(1, std::memory_order_relaxed);
    if (limited) impl.conn_limiter.release(client_ip);
    client.socket().shutdown(tcp::socket::shutdown_send, ec);
    client.socket().close(ec);
  }

  awaitable<void> serve(Stream& client, const std::string& client_ip, SessionRef& ref) {
    const auto& lim = impl.cfg.limits;
    beast::flat_buffer buffer;
    std::vector<bool> tried;
    std::string wire;  // serialized heads, reused for every request on this connection
    bool first = true;
    const auto deadline = std::make_shared<HeadDeadline>(ioc, &client);
    for (;;) {
      if (impl.draining.load(std::memory_order_relaxed)) co_return;
      ref.busy = false;
      http::request_parser<http::string_body> parser;
      parser.header_limit(lim.max_header_bytes);
      parser.body_limit(lim.max_body_bytes);
      // A new connection must send its head within header_timeout; between
      // keep-alive requests it may idle for idle_timeout. The deadline cancels
      // the read instead of closing the socket, so a slow client still gets
      // its 408.
      error_code ec;
      {
        const std::uint64_t gen = ++deadline->generation;
        deadline->fired = false;
        deadline->timer.expires_after(first ? lim.header_timeout : lim.idle_timeout);
        deadline->timer.async_wait([deadline, gen](const error_code& e) {
          if (e || deadline->generation != gen) return;  // cancelled, or a later request's deadline
          deadline->fired = true;
          error_code ignored;
          deadline->stream->socket().cancel(ignored);
        });
        first = false;
        co_await http::async_read_header(client, buffer, parser, nothrow(ec));
        ++deadline->generation;  // disarm
        deadline->timer.cancel();
        if (deadline->fired) ec = beast::error::timeout;
      }
      ref.busy = true;
      if (ec) {
        co_await answer(client, http1::classify_head_error(ec, parser.got_some()));
        co_return;
      }
      if (auto framing = http1::check_framing(parser, lim.max_body_bytes); !framing.forwards()) {
        co_await answer(client, framing);
        co_return;
      }
      // The whole body is read here before anything goes upstream, so a
      // client waiting for 100 Continue gets it from the lb.
      if (auto expect = parser.get().find(http::field::expect);
          expect != parser.get().end() && beast::iequals(expect->value(), "100-continue") && !parser.is_done()) {
        client.expires_after(lim.header_timeout);
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        co_await asio::async_write(client, asio::buffer(kContinue), nothrow(ec));
        if (ec) co_return;
      }
      client.expires_after(lim.header_timeout);
      co_await http::async_read(client, buffer, parser, nothrow(ec));
      if (ec) {
        co_await answer(client, http1::classify_body_error(ec));
        co_return;
      }
      client.expires_never();
      Request req = parser.release();
      // Only kept for the access log line.
      std::string log_method, log_target;
      if (impl.cfg.access_log) {
        log_method = std::string(req.method_string());
        log_target = std::string(req.target());
      }
      const bool keep_alive = req.keep_alive() && !impl.draining.load(std::memory_order_relaxed);
      const unsigned version = req.version();
      impl.stats.requests.fetch_add(1, std::memory_order_relaxed);

      if (impl.limiter.enabled()) {
        auto d = impl.limiter.try_acquire(client_ip, SteadyClock::now());
        if (!d.allowed) {
          impl.stats.reject(Rejection::rate_limited);
          auto secs = std::chrono::ceil<std::chrono::seconds>(d.retry_after);
          if (secs.count() < 1) secs = std::chrono::seconds(1);
          co_await write_error(client, 429, "rate limit exceeded", keep_alive, version, secs);
          if (!keep_alive) co_return;
          continue;
        }
      }

      const auto started = SteadyClock::now();
      std::string upstream_name;
      const bool head_request = req.method() == http::verb::head;
      Response res = co_await forward(std::move(req), client_ip, tried, upstream_name, wire);
      serialize_client_response(wire, res, version, keep_alive, head_request);
      client.expires_after(impl.cfg.upstream_timeout);
      const std::array<asio::const_buffer, 2> out{asio::buffer(wire),
                                                  asio::buffer(head_request ? std::string_view{} : std::string_view(res.body()))};
      co_await asio::async_write(client, out, nothrow(ec));
      client.expires_never();
      if (impl.cfg.access_log) {
        const auto us = std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - started).count();
        impl.log->info("{} {} {} {} {}us upstream={}", client_ip, log_method, log_target, res.result_int(), us,
                       upstream_name.empty() ? "-" : upstream_name);
      }
      if (ec || !keep_alive) co_return;
    }
  }

  // -------------------------------------------------------------------------
  // Upstream side
  enum class Outcome { ok, connect_failed, no_response, timeout, queue_timeout };

  struct Attempt {
    Outcome outcome = Outcome::ok;
    Response response;
  };

  awaitable<Attempt> attempt(const UpstreamEntry& e, const Request& req, const std::string& head) {
    Attempt a;
    const auto pool = pools.get(e.upstream, e.stats, e.endpoint);
    for (int fresh_try = 0; fresh_try < 2; ++fresh_try) {
      auto failure = engine::UpstreamPool::Failure::none;
      engine::ConnPtr conn = fresh_try == 0 ? pool->take_idle() : nullptr;
      bool reused = conn != nullptr;
      if (!conn) {
        auto got = co_await pool->acquire(/*fresh_only=*/fresh_try > 0, failure);
        conn = std::move(got.conn);
        reused = got.reused;
      }
      if (!conn) {
        a.outcome = failure == engine::UpstreamPool::Failure::queue_timeout ? Outcome::queue_timeout
                                                                            : Outcome::connect_failed;
        co_return a;
      }
      error_code ec;
      conn->stream.expires_after(impl.cfg.upstream_timeout);
      const std::array<asio::const_buffer, 2> wire{asio::buffer(head), asio::buffer(req.body())};
      co_await asio::async_write(conn->stream, wire, nothrow(ec));
      conn->buffer.clear();
      // Interim 1xx responses (other than 101) are skipped: the final
      // response follows on the same connection.
      std::optional<http::response_parser<http::string_body>> rp;
      bool got_some = false;
      while (!ec) {
        rp.emplace();
        rp->body_limit(64 * 1024 * 1024);
        if (req.method() == http::verb::head) rp->skip(true);
        co_await http::async_read(conn->stream, conn->buffer, *rp, nothrow(ec));
        got_some = got_some || rp->got_some();
        const unsigned code = rp->get().result_int();
        if (ec || code / 100 != 1 || code == 101) break;
      }
      if (!ec) {
        conn->stream.expires_never();
        a.response = rp->release();
        // Reusable only if the upstream keeps it open and sent nothing extra.
        if (a.response.keep_alive() && conn->buffer.size() == 0 && !impl.stopped.load(std::memory_order_relaxed))
          pool->release(std::move(conn));
        else
          conn.reset();  // closes it; its slot goes on
        a.outcome = Outcome::ok;
        co_return a;
      }
      const bool nothing_back = !got_some;
      conn.reset();
      // A pooled connection the upstream closed while idle is not the
      // upstream's fault: an idempotent request tries once more, on a new
      // connection.
      if (reused && nothing_back && ec != beast::error::timeout && idempotent(req.method())) continue;
      a.outcome = ec == beast::error::timeout ? Outcome::timeout : Outcome::no_response;
      co_return a;
    }
    a.outcome = Outcome::no_response;
    co_return a;
  }

  awaitable<Response> forward(Request req, const std::string& client_ip, std::vector<bool>& tried,
                              std::string& upstream_name, std::string& wire) {
    refresh();
    const auto snap_ref = snap;  // keeps this configuration alive for the request
    const Snapshot& s = *snap_ref;
    const unsigned version = req.version();

    // Proxy headers.
    char request_id[33];
    format_request_id(request_id, id_prefix, ++request_counter + (static_cast<std::uint64_t>(index) << 56));
    serialize_upstream_request(wire, req, client_ip, request_id);

    auto header = [&req](std::string_view name) -> std::string_view {
      auto it = req.find(beast::string_view(name.data(), name.size()));
      return it == req.end() ? std::string_view{} : std::string_view(it->value().data(), it->value().size());
    };
    const std::string_view target(req.target().data(), req.target().size());
    std::string_view key = s.hash_key.extract(target, header, client_ip);
    // "%31" and "1" are the same user: hash the decoded value (decoding
    // only allocates when there is something to decode).
    std::string decoded_key;
    if (key.find_first_of("%+") != std::string_view::npos) {
      if (auto d = percent_decode(key)) {
        decoded_key = std::move(*d);
        key = decoded_key;
      }
    }
    RequestInfo info{client_ip, target, key};

    const std::size_t n = s.ptrs.size();
    tried.assign(n, false);
    // Eligibility flags: on the stack for any realistic upstream count.
    std::array<bool, 256> stack_flags{};
    std::unique_ptr<bool[]> heap_flags;
    if (n > stack_flags.size()) heap_flags = std::make_unique<bool[]>(n);
    bool* elig = heap_flags ? heap_flags.get() : stack_flags.data();

    const bool can_retry = idempotent(req.method());
    std::uint32_t attempts = 0;
    Outcome last = Outcome::ok;
    for (;;) {
      const auto now = SteadyClock::now();
      std::size_t count = 0;
      for (std::size_t i = 0; i < n; ++i) {
        elig[i] = !tried[i] && s.ptrs[i]->available(now);
        count += elig[i] ? 1 : 0;
      }
      if (count == 0) break;
      Candidates cands(s.ptrs, std::span<const bool>(elig, n));
      auto choice = s.policy->choose(cands, info);
      if (!choice || *choice >= n || !elig[*choice]) break;
      if (attempts > 0) impl.stats.retries.fetch_add(1, std::memory_order_relaxed);
      const auto& e = s.entries[*choice];
      Upstream& up = *e.upstream;
      up.begin_request();
      e.stats->requests.fetch_add(1, std::memory_order_relaxed);
      const auto t0 = SteadyClock::now();
      Attempt a = co_await attempt(e, req, wire);
      up.end_request();
      if (a.outcome == Outcome::ok) {
        up.report_success(SteadyClock::now());
        e.stats->latency.observe(std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - t0));
        e.stats->count_status(a.response.result_int());
        upstream_name = up.address();
        co_return std::move(a.response);
      }
      last = a.outcome;
      switch (a.outcome) {
        case Outcome::connect_failed: e.stats->connect_errors.fetch_add(1, std::memory_order_relaxed); break;
        case Outcome::timeout: e.stats->timeouts.fetch_add(1, std::memory_order_relaxed); break;
        case Outcome::queue_timeout: e.stats->queue_timeouts.fetch_add(1, std::memory_order_relaxed); break;
        default: e.stats->response_errors.fetch_add(1, std::memory_order_relaxed); break;
      }
      if (a.outcome != Outcome::queue_timeout) {
        up.report_failure(SteadyClock::now());
        if (impl.log->should_log(spdlog::level::warn))
          impl.log->warn("upstream {} failed ({}), {}", up.address(),
                         a.outcome == Outcome::connect_failed ? "connect" : a.outcome == Outcome::timeout ? "timeout" : "no response",
                         can_retry && attempts < s.retries ? "will retry on another upstream if one is eligible"
                                                           : "not retrying");
      }
      tried[*choice] = true;
      if (!can_retry || attempts >= s.retries) break;
      ++attempts;  // counted in retries_total once another upstream is actually tried
    }

    unsigned status = 503;
    std::string_view msg = "no healthy upstream";
    Rejection why = Rejection::no_upstream;
    if (last == Outcome::queue_timeout) {
      msg = "upstream busy: queue timeout";
      why = Rejection::queue_full;
    } else if (last == Outcome::timeout) {
      status = 504;
      msg = "upstream timed out";
      why = Rejection::bad_gateway;
    } else if (last != Outcome::ok) {
      status = 502;
      msg = "upstream failed";
      why = Rejection::bad_gateway;
    }
    impl.stats.reject(why);
    co_return http1::make_error_response(status, msg, version,
                                         std::chrono::seconds(status == 503 ? 1 : 0));
  }

  // Closes idle client connections (drain); busy ones close after their response.
  void close_idle_sessions() {
    for (auto& s : sessions) {
      if (!s.busy) {
        error_code ec;
        s.stream->socket().cancel(ec);
      }
    }
  }
};


// ---------------------------------------------------------------------------
// ProxyServer

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

ProxyServer::ProxyServer(ProxyConfig config, PolicyRegistry registry, std::shared_ptr<spdlog::logger> log,
                         HostResolver resolver)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(registry), std::move(log), std::move(resolver))) {}

ProxyServer::~ProxyServer() { stop(); }

bool ProxyServer::start(std::string* error) {
  auto& im = *impl_;
  auto fail = [&](std::string msg) {
    if (error) *error = std::move(msg);
    im.workers.clear();
    return false;
  };
  std::uint32_t n = im.cfg.threads;
  if (n == 0) n = std::clamp<std::uint32_t>(std::thread::hardware_concurrency(), 1, 4);
  error_code ec;
  auto addr = asio::ip::make_address(im.cfg.listen_host, ec);
  if (ec) return fail("listen address '" + im.cfg.listen_host + "' is not an IP address");
  for (std::uint32_t i = 0; i < n; ++i) im.workers.push_back(std::make_unique<Impl::Worker>(im, i, n));
  auto& acceptor = im.workers.front()->acceptor;
  const tcp::endpoint ep(addr, im.cfg.listen_port);
  acceptor.open(ep.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(ep, ec);
  if (!ec) acceptor.listen(4096, ec);
  if (ec) return fail("cannot listen on " + im.cfg.listen_host + ":" + std::to_string(im.cfg.listen_port) + ": " + ec.message());
  const std::uint16_t port = acceptor.local_endpoint().port();
  im.bound_port = port;

  if (!im.cfg.admin_host.empty()) {
    im.admin = std::make_unique<engine::AdminServer>(
        [&im] { return render_metrics_text(im.stats, *im.snapshot(), SteadyClock::now()); },
        [&im] { return render_status_json(im.stats, *im.snapshot(), im.draining.load(), SteadyClock::now()); });
    std::string admin_error;
    if (!im.admin->start(im.cfg.admin_host, im.cfg.admin_port, &admin_error)) return fail(admin_error);
  }

  asio::co_spawn(im.workers.front()->ioc, im.workers.front()->accept_loop(), asio::detached);
  for (auto& w : im.workers) asio::co_spawn(w->ioc, w->sweep_idle_loop(), asio::detached);
  im.health.attach(im.workers.front()->ioc);
  im.health.start(im.snapshot());
  // Sweep idle rate-limit buckets now and then, on the first loop.
  if (im.limiter.enabled()) {
    asio::co_spawn(
        im.workers.front()->ioc,
        [&im]() -> awaitable<void> {
          Timer t(im.workers.front()->ioc);
          while (!im.stopped.load()) {
            t.expires_after(std::chrono::seconds(10));
            error_code e;
            co_await t.async_wait(nothrow(e));
            im.limiter.sweep(SteadyClock::now());
          }
        },
        asio::detached);
  }
  for (auto& w : im.workers) {
    im.threads.emplace_back([wp = w.get()] {
      auto guard = asio::make_work_guard(wp->ioc);
      wp->ioc.run();
    });
  }
  im.cluster.start_reresolving();
  return true;
}

std::uint16_t ProxyServer::port() const { return impl_->bound_port; }
std::uint16_t ProxyServer::admin_port() const { return impl_->admin ? impl_->admin->port() : 0; }

void ProxyServer::reload(const ProxyConfig& config) {
  impl_->cluster.reload(config);
  impl_->log->info("configuration reloaded: {} upstreams, policy {}", config.upstreams.size(), config.policy);
}

void ProxyServer::drain() {
  auto& im = *impl_;
  if (im.workers.empty() || im.stopped.load()) return;
  im.draining.store(true);
  for (auto& w : im.workers) {
    asio::post(w->ioc, [wp = w.get()] {
      error_code ec;
      if (wp->acceptor.is_open()) wp->acceptor.close(ec);
      wp->close_idle_sessions();
    });
  }
  const auto deadline = SteadyClock::now() + im.cfg.drain_timeout;
  while (im.stats.connections_open.load() > 0 && SteadyClock::now() < deadline) {
    for (auto& w : im.workers) asio::post(w->ioc, [wp = w.get()] { wp->close_idle_sessions(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  stop();
}

void ProxyServer::stop() {
  auto& im = *impl_;
  if (im.stopped.exchange(true)) return;
  im.cluster.stop_reresolving();  // it may start health checks on the first loop
  for (auto& w : im.workers) w->ioc.stop();
  for (auto& t : im.threads)
    if (t.joinable()) t.join();
  if (im.admin) im.admin->stop();
  im.threads.clear();
  im.health.detach();
  im.workers.clear();
}

std::string ProxyServer::metrics_text() const {
  return render_metrics_text(impl_->stats, *impl_->snapshot(), SteadyClock::now());
}
std::string ProxyServer::status_json() const {
  return render_status_json(impl_->stats, *impl_->snapshot(), impl_->draining.load(), SteadyClock::now());
}

}  // namespace userkey::lb
