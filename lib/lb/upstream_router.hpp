// One request's way to an upstream and back, on one event loop.
//
// Owns: the loop's cached configuration snapshot (refreshed when the cluster's
// generation moves, retiring the pools of upstreams that left), the upstream
// request head, the hash key a policy sees, and the retry
// loop: choose among eligible, untried upstreams (in panic, when too few are
// available, passive verdicts are ignored; one full on this loop passes the
// request to one with room, or the shortest queue) -> attempt (the exchange:
// upstream_exchange; a final response that came before the whole request
// went is the answer, never a failure, and its connection is not reused;
// a 101 to a WebSocket upgrade hands the connection back for a tunnel)
// -> outcome -> retry on another upstream (any
// request that never reached an upstream; idempotent ones also after no or a
// timed-out response, at most once after a timeout; up to `retries`) or
// answer 502 / 503 / 504. Reports passive health (through the cluster's
// ejection budget; a request's timeouts count once, local failures and
// oversized responses never) and per-upstream counters as it goes.
//
// Leaves to others: connections, reuse and queuing (upstream_pool), the
// write and read on a connection (upstream_exchange), message rules
// (http1_codec), the client connection (downstream_session), which
// upstreams exist (cluster).
#pragma once

#include "io_types.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cluster.hpp"
#include "http1_codec.hpp"
#include "request_body.hpp"
#include "upstream_body.hpp"
#include "upstream_pool.hpp"
#include "userkey/lb/proxy_metrics.hpp"

namespace spdlog {
class logger;
}

namespace userkey::lb::engine {

/// Which of `s`'s upstreams a request that already tried `tried` may go to at
/// `now`: sets `elig[i]` (s.ptrs.size() flags) and `count`. Untried and
/// available; in panic (fewer than panic_threshold_percent of the upstreams
/// available) every untried one that active health has not taken out,
/// whatever passive health says. True when panic let in one that passive
/// health had taken out.
bool select_eligible(const Snapshot& s, const std::vector<bool>& tried, bool* elig, std::size_t& count,
                     TimePoint now);

/// How forward() went, for the access log. Reused from request to request
/// (forward() resets it).
struct ForwardReport {
  std::string upstream;  ///< the upstream that answered; empty: none did (the lb's own reply)
  /// From the first attempt's start to the last one's end (pool wait,
  /// connect, exchange, retries); negative when no upstream was tried.
  std::chrono::microseconds upstream_time{-1};
  std::uint32_t retries = 0;  ///< attempts after the first
  /// Set when the answer's body is streamed: forward()'s Response is then
  /// the head only, the body is still on the upstream connection; the
  /// caller relays it and hands it to finish_body(). With `upgraded` set,
  /// no body: the connection a WebSocket upgrade switched, for a tunnel.
  std::unique_ptr<UpstreamBody> body;
  /// Reading the client's streamed body failed (RequestBody::client_error):
  /// forward()'s Response is then meaningless; the caller answers the
  /// client's failure.
  bool client_failed = false;
};

class UpstreamRouter {
public:
  UpstreamRouter(const Cluster& cluster, LoopPools& pools, ProxyStats& stats, spdlog::logger& log,
                 std::chrono::milliseconds upstream_timeout, const std::atomic<bool>& stopped)
      : cluster_(cluster),
        pools_(pools),
        stats_(stats),
        log_(log),
        upstream_timeout_(upstream_timeout),
        stopped_(stopped) {}

  /// The upstream's response to `req` with `body`, or the lb's own 502 /
  /// 503 / 504. An attempt is retried only while body.replayable() (a body
  /// longer than the replay buffer cannot be sent twice once streaming
  /// began). `ids`: the X-Request-Id and traceparent that go upstream in place
  /// of the client's (empty: the client's fields go as they are; see
  /// http1::serialize_upstream_request). `tried` and `wire` are the
  /// session's reusable buffers; `summary` says how it went;
  /// `forwarded_proto` is the X-Forwarded-Proto sent ("https" for a client
  /// of the TLS listener); `xff` what X-Forwarded-For says (`client_ip`,
  /// the real client, goes in X-Real-IP and is what ip_hash hashes).
  /// Everything passed by reference or view must outlive the coroutine.
  awaitable<Response> forward(const Request& req, RequestBody& body, const std::string& client_ip,
                              http1::UpstreamIds ids, std::vector<bool>& tried, ForwardReport& summary,
                              std::string& wire, std::string_view forwarded_proto = "http",
                              http1::ForwardedFor xff = {});
  /// forward() with the body `req` holds.
  awaitable<Response> forward(Request req, const std::string& client_ip, http1::UpstreamIds ids,
                              std::vector<bool>& tried, ForwardReport& summary, std::string& wire,
                              std::string_view forwarded_proto = "http", http1::ForwardedFor xff = {});

  /// A streamed body (ForwardReport::body) has ended as `end` says: after a
  /// clean end its connection goes back to the pool when it can carry
  /// another request; else it is closed, and an upstream that failed or
  /// stalled mid-body is counted as failed (response error or timeout,
  /// passive health) though its head was counted a success.
  void finish_body(std::unique_ptr<UpstreamBody> body, BodyEnd end);

private:
  enum class Outcome { ok, connect_failed, no_response, timeout, queue_timeout, too_large, local_error, client_failed };
  struct Attempt {
    Outcome outcome = Outcome::ok;
    Response response;
    std::unique_ptr<UpstreamBody> body;  // a streamed body (the response is its head)
  };

  const Snapshot& refresh();
  void report(const Snapshot& s, const UpstreamEntry& e, Outcome outcome, bool counts, bool will_retry);
  awaitable<Attempt> attempt(const UpstreamEntry& e, const Request& req, RequestBody& body, const std::string& head);
  std::size_t spill_over(const Snapshot& s, const bool* elig, std::size_t chosen);
  Response give_up(Outcome last, unsigned version);

  const Cluster& cluster_;
  LoopPools& pools_;
  ProxyStats& stats_;
  spdlog::logger& log_;
  std::chrono::milliseconds upstream_timeout_;
  const std::atomic<bool>& stopped_;
  std::shared_ptr<const Snapshot> snap_;  // cached; refreshed on a new generation
};

}  // namespace userkey::lb::engine
