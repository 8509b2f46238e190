// The proxy engine. See proxy_server.hpp for what it promises; this file is
// how. Boost 1.74's asio/awaitable.hpp needs <utility> first under GCC 12.
#include <utility>

#include "userkey/lb/proxy_server.hpp"

#include <httplib.h>
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

#include "core/escape.hpp"
#include "http1_codec.hpp"
#include "io_types.hpp"
#include "upstream_pool.hpp"
#include "core/httplib_socket.hpp"
#include "userkey/lb/hash_key.hpp"
#include "userkey/core/query_string.hpp"
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

namespace {

// One upstream in a configuration snapshot, with what outlives reloads.
struct UpstreamEntry {
  std::shared_ptr<Upstream> upstream;
  std::shared_ptr<UpstreamStats> stats;
  tcp::endpoint endpoint;
};

// An immutable configuration; workers hold it by shared_ptr while they use it.
struct Snapshot {
  std::uint64_t generation = 0;
  std::vector<UpstreamEntry> entries;
  std::vector<Upstream*> ptrs;
  std::shared_ptr<BalancingPolicy> policy;
  HashKeySpec hash_key = *HashKeySpec::parse("ip");
  std::uint32_t retries = 0;
  ActiveHealthConfig active;
};

using detail::json_string;

}  // namespace

struct ProxyServer::Impl {
  ProxyConfig cfg;
  PolicyRegistry registry;
  std::shared_ptr<spdlog::logger> log;
  SplitMixRandom random{std::random_device{}() ^ (static_cast<std::uint64_t>(std::random_device{}()) << 32)};
  SystemTimeSource clock;
  ProxyStats stats;
  IpFilter filter;
  RateLimiter limiter;
  ConnectionLimiter conn_limiter;

  // Configuration snapshot: swapped under mu, read by workers only when the
  // generation they cached is out of date.
  mutable std::mutex mu;
  std::shared_ptr<const Snapshot> current;
  std::atomic<std::uint64_t> generation{0};
  // Per-address state kept across reloads.
  std::map<std::string, std::pair<std::shared_ptr<Upstream>, std::shared_ptr<UpstreamStats>>> known;

  std::atomic<bool> draining{false};
  std::atomic<bool> stopped{false};
  std::uint16_t bound_port = 0;
  std::uint16_t bound_admin_port = 0;

  struct Worker;
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<std::thread> threads;
  std::unique_ptr<httplib::Server> admin;
  std::thread admin_thread;

  // Upstream name resolution. `applied` is the configuration the current
  // snapshot was built from; reload() and the re-resolution thread both
  // rebuild from it, one at a time (reload_mu).
  HostResolver resolver;
  std::mutex reload_mu;
  ProxyConfig applied;
  bool resolve_failing = false;  // under reload_mu: log a failing lookup once, not every interval
  std::atomic<std::int64_t> resolve_every_ms{0};
  std::mutex resolver_mu;
  std::condition_variable resolver_cv;
  bool resolver_stop = false;  // under resolver_mu
  bool resolver_kick = false;  // under resolver_mu: the interval changed
  std::thread resolver_thread;

  Impl(ProxyConfig c, PolicyRegistry r, std::shared_ptr<spdlog::logger> l, HostResolver res)
      : cfg(std::move(c)),
        registry(std::move(r)),
        log(l ? std::move(l) : std::make_shared<spdlog::logger>("lb")),
        limiter(cfg.limits.rate, cfg.limits.burst),
        conn_limiter(cfg.limits.max_conns_per_ip),
        resolver(res ? std::move(res) : HostResolver(system_resolve)),
        applied(cfg),
        resolve_every_ms(cfg.resolve_interval.count()) {
    for (auto& a : cfg.limits.allow) filter.add_allow(parse_cidr(a));
    for (auto& d : cfg.limits.deny) filter.add_deny(parse_cidr(d));
    install(build_snapshot(cfg), cfg);
  }

  // Resolves every name in `applied` again; installs a new snapshot only
  // when an address changed. A lookup that fails keeps what is known.
  void refresh_addresses() {
    std::lock_guard rl(reload_mu);
    if (resolve_every_ms.load() == 0) return;  // a reload turned lookups off meanwhile
    std::shared_ptr<Snapshot> next;
    try {
      next = build_snapshot(applied);
    } catch (const std::exception& e) {
      if (!resolve_failing) log->warn("re-resolving upstream names failed, keeping the known addresses: {}", e.what());
      resolve_failing = true;
      return;
    }
    if (resolve_failing) log->info("upstream names resolve again");
    resolve_failing = false;
    const auto now = snapshot();
    bool changed = next->entries.size() != now->entries.size();
    for (std::size_t i = 0; !changed && i < next->entries.size(); ++i)
      changed = next->entries[i].endpoint != now->entries[i].endpoint;
    if (!changed) return;
    install(std::move(next), applied);
    start_health_checks(snapshot());
  }

  void resolver_loop() {
    std::unique_lock lk(resolver_mu);
    for (;;) {
      const std::chrono::milliseconds every(resolve_every_ms.load());
      const auto wait = every.count() > 0 ? every : std::chrono::milliseconds(3'600'000);
      if (resolver_cv.wait_for(lk, wait, [&] { return resolver_stop || resolver_kick; })) {
        if (resolver_stop) return;
        resolver_kick = false;
        continue;
      }
      if (every.count() == 0) continue;
      lk.unlock();
      refresh_addresses();
      lk.lock();
    }
  }

  void stop_resolver() {
    {
      std::lock_guard lk(resolver_mu);
      resolver_stop = true;
    }
    resolver_cv.notify_all();
    if (resolver_thread.joinable()) resolver_thread.join();
  }

  static Cidr parse_cidr(const std::string& s) {
    std::string err;
    auto c = Cidr::parse(s, &err);
    if (!c) throw std::invalid_argument("bad CIDR '" + s + "': " + err);
    return *c;
  }

  std::shared_ptr<Snapshot> build_snapshot(const ProxyConfig& c) {
    if (c.upstreams.empty()) throw std::invalid_argument("no upstream configured");
    auto snap = std::make_shared<Snapshot>();
    std::string err;
    auto key = HashKeySpec::parse(c.hash_key, &err);
    if (!key) throw std::invalid_argument("bad hash key '" + c.hash_key + "': " + err);
    snap->hash_key = *key;
    PolicyContext ctx{&random, &clock};
    std::shared_ptr<BalancingPolicy> policy = registry.create(c.policy, ctx);
    if (!policy) {
      std::string names;
      for (auto& n : registry.names()) names += (names.empty() ? "" : ", ") + n;
      throw std::invalid_argument("unknown policy '" + c.policy + "' (known: " + names + ")");
    }
    snap->policy = std::move(policy);
    snap->retries = c.retries;
    snap->active = c.active;
    for (const auto& u : c.upstreams) {
      UpstreamEntry e;
      error_code ec;
      auto addr = asio::ip::make_address(u.host, ec);
      if (ec) {
        std::vector<std::string> found;
        try {
          found = resolver(u.host, u.port);
        } catch (...) {  // a resolver that throws is one that did not resolve
          found.clear();
        }
        if (!found.empty()) addr = asio::ip::make_address(found.front(), ec);
        if (found.empty() || ec) throw std::invalid_argument("cannot resolve upstream " + u.address());
      }
      e.endpoint = tcp::endpoint(addr, u.port);
      snap->entries.push_back(std::move(e));
    }
    return snap;
  }

  // Binds upstream state to a snapshot (reusing state of known addresses)
  // and publishes it.
  void install(std::shared_ptr<Snapshot> snap, const ProxyConfig& c) {
    std::lock_guard lock(mu);
    std::map<std::string, std::pair<std::shared_ptr<Upstream>, std::shared_ptr<UpstreamStats>>> next;
    for (std::size_t i = 0; i < snap->entries.size(); ++i) {
      const auto& ucfg = c.upstreams[i];
      auto it = known.find(ucfg.address());
      std::shared_ptr<Upstream> up;
      std::shared_ptr<UpstreamStats> st;
      // Same settings: keep the live object (health state, in-flight count).
      // Changed weight, max_conns or passive health: a fresh one (its
      // passive state starts clean; metrics carry on).
      const auto* old = it != known.end() ? it->second.first.get() : nullptr;
      // Where the live object was reached until now: a name that resolves
      // elsewhere is a different server (its pools and health start anew).
      bool moved = false;
      if (old && current) {
        for (const auto& was : current->entries)
          if (was.upstream.get() == old) moved = was.endpoint != snap->entries[i].endpoint;
      }
      if (old && moved) {
        log->info("upstream {} now resolves to {} (was another address)", ucfg.address(),
                  snap->entries[i].endpoint.address().to_string());
      }
      if (old && !moved && old->config().weight == ucfg.weight && old->config().max_conns == ucfg.max_conns &&
          old->passive().max_fails == c.passive.max_fails && old->passive().fail_timeout == c.passive.fail_timeout) {
        up = it->second.first;
        st = it->second.second;
      } else {
        up = std::make_shared<Upstream>(ucfg, c.passive);
        st = it != known.end() ? it->second.second : std::make_shared<UpstreamStats>();
      }
      if (!c.active.enabled) up->set_active_up(true);  // no checks will ever bring it back otherwise
      snap->entries[i].upstream = up;
      snap->entries[i].stats = st;
      snap->ptrs.push_back(up.get());
      next[ucfg.address()] = {up, st};
    }
    snap->policy->rebuild(snap->ptrs);
    snap->generation = generation.load() + 1;
    known = std::move(next);
    current = std::move(snap);
    generation.store(current->generation, std::memory_order_release);
  }

  std::shared_ptr<const Snapshot> snapshot() const {
    std::lock_guard lock(mu);
    return current;
  }

  void start_health_checks(const std::shared_ptr<const Snapshot>& snap);
  std::string metrics_text() const;
  std::string status_json() const;
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
    if (!snap || snap->generation != impl.generation.load(std::memory_order_acquire)) {
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
// Active health checks: one coroutine per upstream on the first loop; it ends
// when its upstream leaves the configuration.
namespace {

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

void ProxyServer::Impl::start_health_checks(const std::shared_ptr<const Snapshot>& snap) {
  if (!snap->active.enabled || workers.empty()) return;
  auto& ioc = workers.front()->ioc;
  for (const auto& e : snap->entries) {
    std::weak_ptr<Upstream> weak = e.upstream;
    const tcp::endpoint ep = e.endpoint;
    const ActiveHealthConfig active = snap->active;
    const std::uint64_t gen = snap->generation;
    asio::co_spawn(
        ioc,
        [this, weak, ep, active, gen, &ioc]() -> awaitable<void> {
          Timer timer(ioc);
          for (;;) {
            if (stopped.load() || generation.load() != gen) co_return;  // a reload started new checkers
            auto up = weak.lock();
            if (!up) co_return;
            const bool ok = co_await probe(ioc, ep, active, up->address());
            if (up->report_probe(ok, active)) {
              if (up->active_up()) log->info("upstream {} is UP (health check {} passed {} times)", up->address(), active.path, active.rise);
              else log->warn("upstream {} is DOWN (health check {} failed {} times)", up->address(), active.path, active.fall);
            }
            timer.expires_after(active.interval);
            error_code ec;
            co_await timer.async_wait(nothrow(ec));
          }
        },
        asio::detached);
  }
}

// ---------------------------------------------------------------------------
// Metrics and status.
std::string ProxyServer::Impl::metrics_text() const {
  auto snap = snapshot();
  const auto now = SteadyClock::now();
  std::string o;
  o.reserve(8192);
  auto line = [&o](std::string_view s) { o.append(s).push_back('\n'); };
  auto num = [](auto v) { return std::to_string(v); };

  line("# HELP userkey_lb_requests_total Requests received from clients.");
  line("# TYPE userkey_lb_requests_total counter");
  line("userkey_lb_requests_total " + num(stats.requests.load()));
  line("# HELP userkey_lb_retries_total Requests retried on another upstream.");
  line("# TYPE userkey_lb_retries_total counter");
  line("userkey_lb_retries_total " + num(stats.retries.load()));
  line("# HELP userkey_lb_connections_accepted_total Client connections accepted.");
  line("# TYPE userkey_lb_connections_accepted_total counter");
  line("userkey_lb_connections_accepted_total " + num(stats.connections_accepted.load()));
  line("# HELP userkey_lb_connections_open Client connections open now.");
  line("# TYPE userkey_lb_connections_open gauge");
  line("userkey_lb_connections_open " + num(stats.connections_open.load()));
  line("# HELP userkey_lb_rejections_total Requests the lb answered itself, by reason (rate_limited = 429).");
  line("# TYPE userkey_lb_rejections_total counter");
  for (std::size_t i = 0; i < stats.rejections.size(); ++i)
    line("userkey_lb_rejections_total{reason=\"" + std::string(to_string(static_cast<Rejection>(i))) + "\"} " +
         num(stats.rejections[i].load()));

  struct Family {
    const char* name;
    const char* type;
    const char* help;
  };
  const Family fams[] = {
      {"userkey_lb_upstream_requests_total", "counter", "Requests sent to the upstream (attempts)."},
      {"userkey_lb_upstream_responses_total", "counter", "Responses from the upstream by status class."},
      {"userkey_lb_upstream_errors_total", "counter", "Failed attempts by kind."},
      {"userkey_lb_upstream_up", "gauge", "1 when the upstream is eligible (active and passive health)."},
      {"userkey_lb_upstream_in_flight", "gauge", "Requests in flight to the upstream."},
      {"userkey_lb_upstream_connections", "gauge", "Open connections to the upstream (pooled and busy)."},
      {"userkey_lb_upstream_latency_seconds", "histogram", "Time from sending a request to a complete response."},
  };
  for (const auto& f : fams) {
    o += "# HELP ";
    o += f.name;
    o += ' ';
    line(f.help);
    o += "# TYPE ";
    o += f.name;
    o += ' ';
    line(f.type);
    for (const auto& e : snap->entries) {
      const std::string lbl = "upstream=\"" + e.upstream->address() + "\"";
      const auto& st = *e.stats;
      const std::string n = f.name;
      if (n == "userkey_lb_upstream_requests_total") line(n + "{" + lbl + "} " + num(st.requests.load()));
      else if (n == "userkey_lb_upstream_responses_total") {
        line(n + "{" + lbl + ",code=\"2xx\"} " + num(st.responses_2xx.load()));
        line(n + "{" + lbl + ",code=\"3xx\"} " + num(st.responses_3xx.load()));
        line(n + "{" + lbl + ",code=\"4xx\"} " + num(st.responses_4xx.load()));
        line(n + "{" + lbl + ",code=\"5xx\"} " + num(st.responses_5xx.load()));
      } else if (n == "userkey_lb_upstream_errors_total") {
        line(n + "{" + lbl + ",kind=\"connect\"} " + num(st.connect_errors.load()));
        line(n + "{" + lbl + ",kind=\"response\"} " + num(st.response_errors.load()));
        line(n + "{" + lbl + ",kind=\"timeout\"} " + num(st.timeouts.load()));
        line(n + "{" + lbl + ",kind=\"queue_timeout\"} " + num(st.queue_timeouts.load()));
      } else if (n == "userkey_lb_upstream_up") line(n + "{" + lbl + "} " + (e.upstream->available(now) ? "1" : "0"));
      else if (n == "userkey_lb_upstream_in_flight") line(n + "{" + lbl + "} " + num(e.upstream->in_flight()));
      else if (n == "userkey_lb_upstream_connections") line(n + "{" + lbl + "} " + num(st.open_connections.load()));
      else {
        std::uint64_t cum = 0;
        for (std::size_t b = 0; b < st.latency.buckets.size(); ++b) {
          cum += st.latency.buckets[b].load();
          std::string le = b < kLatencyBuckets.size() ? fmt::format("{}", kLatencyBuckets[b]) : "+Inf";
          line(n + "_bucket{" + lbl + ",le=\"" + le + "\"} " + num(cum));
        }
        line(n + "_sum{" + lbl + "} " + fmt::format("{:.6f}", static_cast<double>(st.latency.sum_us.load()) / 1e6));
        line(n + "_count{" + lbl + "} " + num(st.latency.count.load()));
      }
    }
  }
  return o;
}

std::string ProxyServer::Impl::status_json() const {
  auto snap = snapshot();
  const auto now = SteadyClock::now();
  std::string o = "{\"policy\":" + json_string(snap->policy->name()) + ",\"hash_key\":" +
                  json_string(snap->hash_key.to_string()) + ",\"retries\":" + std::to_string(snap->retries) +
                  ",\"draining\":" + (draining.load() ? "true" : "false") + ",\"requests\":" +
                  std::to_string(stats.requests.load()) + ",\"connections_open\":" +
                  std::to_string(stats.connections_open.load()) + ",\"upstreams\":[";
  bool first = true;
  for (const auto& e : snap->entries) {
    const auto& u = *e.upstream;
    if (!first) o += ',';
    first = false;
    o += "{\"address\":" + json_string(u.address()) + ",\"resolved\":" +
         json_string(e.endpoint.address().to_string()) + ",\"weight\":" + std::to_string(u.weight()) +
         ",\"max_conns\":" + std::to_string(u.config().max_conns) + ",\"up\":" + (u.available(now) ? "true" : "false") +
         ",\"active_up\":" + (u.active_up() ? "true" : "false") +
         ",\"passively_down\":" + (u.passively_down(now) ? "true" : "false") +
         ",\"in_flight\":" + std::to_string(u.in_flight()) + ",\"requests\":" + std::to_string(e.stats->requests.load()) +
         ",\"errors\":" +
         std::to_string(e.stats->connect_errors.load() + e.stats->response_errors.load() + e.stats->timeouts.load()) +
         ",\"connections\":" + std::to_string(e.stats->open_connections.load()) + "}";
  }
  o += "]}\n";
  return o;
}

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
    im.admin = std::make_unique<httplib::Server>();
    im.admin->new_task_queue = [] { return new httplib::ThreadPool(2); };  // owned by httplib
    im.admin->set_socket_options(detail::exclusive_socket_options);
    im.admin->Get("/metrics", [&im](const httplib::Request&, httplib::Response& res) {
      res.set_content(im.metrics_text(), "text/plain; version=0.0.4");
    });
    im.admin->Get("/status", [&im](const httplib::Request&, httplib::Response& res) {
      res.set_content(im.status_json(), "application/json");
    });
    im.admin->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("{\"status\":\"ok\"}\n", "application/json");
    });
    int admin_port = im.cfg.admin_port;
    if (admin_port == 0) admin_port = im.admin->bind_to_any_port(im.cfg.admin_host);
    else if (!im.admin->bind_to_port(im.cfg.admin_host, admin_port)) admin_port = -1;
    if (admin_port <= 0)
      return fail("cannot listen on admin address " + im.cfg.admin_host + ":" + std::to_string(im.cfg.admin_port));
    im.bound_admin_port = static_cast<std::uint16_t>(admin_port);
    im.admin_thread = std::thread([&im] { im.admin->listen_after_bind(); });
    // cpp-httplib's stop() is a no-op until the server runs: wait for it, so
    // a stop right after start cannot leave the admin thread serving.
    for (int i = 0; i < 400 && !im.admin->is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }

  asio::co_spawn(im.workers.front()->ioc, im.workers.front()->accept_loop(), asio::detached);
  for (auto& w : im.workers) asio::co_spawn(w->ioc, w->sweep_idle_loop(), asio::detached);
  im.start_health_checks(im.snapshot());
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
  im.resolver_thread = std::thread([&im] { im.resolver_loop(); });
  return true;
}

std::uint16_t ProxyServer::port() const { return impl_->bound_port; }
std::uint16_t ProxyServer::admin_port() const { return impl_->bound_admin_port; }

void ProxyServer::reload(const ProxyConfig& config) {
  auto& im = *impl_;
  bool changed_interval = false;
  {
    std::lock_guard rl(im.reload_mu);
    auto snap = im.build_snapshot(config);  // throws, leaving the old one in place
    im.install(std::move(snap), config);
    im.applied = config;
    im.start_health_checks(im.snapshot());
    changed_interval = im.resolve_every_ms.exchange(config.resolve_interval.count()) != config.resolve_interval.count();
  }
  if (changed_interval) {
    {
      std::lock_guard lk(im.resolver_mu);
      im.resolver_kick = true;
    }
    im.resolver_cv.notify_all();
  }
  im.log->info("configuration reloaded: {} upstreams, policy {}", config.upstreams.size(), config.policy);
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
  im.stop_resolver();  // it may start health checks on the first loop
  for (auto& w : im.workers) w->ioc.stop();
  for (auto& t : im.threads)
    if (t.joinable()) t.join();
  if (im.admin) im.admin->stop();
  if (im.admin_thread.joinable()) im.admin_thread.join();
  im.threads.clear();
  im.workers.clear();
}

std::string ProxyServer::metrics_text() const { return impl_->metrics_text(); }
std::string ProxyServer::status_json() const { return impl_->status_json(); }

}  // namespace userkey::lb
