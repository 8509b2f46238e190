// Counters the proxy keeps, exposed as Prometheus text and JSON.
//
// Every field is a relaxed atomic: the request path only ever adds, and a
// scrape reads a slightly torn but monotonic view, which is what Prometheus
// expects. Per-upstream stats are keyed by address and survive reloads.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace userkey::lb {

/// Upper bounds (seconds) of the latency histogram buckets; +Inf is implied.
inline constexpr std::array<double, 12> kLatencyBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                           0.05,   0.1,   0.25,   0.5,   1.0,  2.5};

/// Upper bounds (seconds) of the client-facing latency histogram: the
/// upstream ones, then on to a minute, past the default upstream_timeout
/// (10 s) and its retries; +Inf is implied.
inline constexpr std::array<double, 16> kClientLatencyBuckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0};

/// A Prometheus histogram over `Bounds` (seconds), updated with relaxed atomics.
template <const auto& Bounds>
struct BucketHistogram {
  static constexpr const auto& bounds = Bounds;
  std::array<std::atomic<std::uint64_t>, Bounds.size() + 1> buckets{};  // last = +Inf
  std::atomic<std::uint64_t> count{0};
  std::atomic<std::uint64_t> sum_us{0};

  void observe(std::chrono::microseconds d) {
    const double s = static_cast<double>(d.count()) / 1e6;
    std::size_t i = 0;
    while (i < Bounds.size() && s > Bounds[i]) ++i;
    buckets[i].fetch_add(1, std::memory_order_relaxed);
    count.fetch_add(1, std::memory_order_relaxed);
    sum_us.fetch_add(static_cast<std::uint64_t>(d.count()), std::memory_order_relaxed);
  }
};
using LatencyHistogram = BucketHistogram<kLatencyBuckets>;
using ClientLatencyHistogram = BucketHistogram<kClientLatencyBuckets>;

struct UpstreamStats {
  std::atomic<std::uint64_t> requests{0};       ///< attempts sent to this upstream
  std::atomic<std::uint64_t> responses_2xx{0}, responses_3xx{0}, responses_4xx{0}, responses_5xx{0};
  std::atomic<std::uint64_t> connect_errors{0};  ///< could not connect
  std::atomic<std::uint64_t> response_errors{0}; ///< reset/closed/invalid before a full response
  std::atomic<std::uint64_t> timeouts{0};
  std::atomic<std::uint64_t> queue_timeouts{0};  ///< waited for a max_conns slot too long
  std::atomic<std::uint64_t> open_connections{0};
  LatencyHistogram latency;

  void count_status(unsigned status);
};

/// Why the proxy answered a request itself instead of relaying one.
enum class Rejection : std::size_t {
  rate_limited,      // 429
  denied,            // 403, IP filter
  too_many_conns,    // per-IP connection cap
  header_too_large,  // 431
  body_too_large,    // 413
  bad_request,       // 400, malformed or ambiguous framing
  header_timeout,    // 408 / closed, slow client
  no_upstream,       // 503, all down
  queue_full,        // 503, max_conns queue full or timed out
  bad_gateway,       // 502/504 after retries
  body_timeout,      // 408, request body not received in time
  max_connections,   // 503, the lb's connection cap (limits.max_connections)
  local_resources,   // 503, the lb itself ran out of descriptors, buffers or memory
  body_memory,       // 503, request bodies held reach limits.max_buffered_body_bytes
  count_
};
std::string_view to_string(Rejection r);

/// Why a client's TLS handshake did not complete.
enum class TlsFailure : std::size_t {
  timeout,     // not done within the header timeout (from accept)
  plain_http,  // the client spoke plain HTTP to the TLS port
  protocol,    // not TLS, or no version / suite / group in common, or an alert
  closed,      // the client closed or reset the connection mid-handshake
  count_
};
std::string_view to_string(TlsFailure f);
/// Why a connection was closed, unanswered, for want of a valid PROXY
/// protocol header (--proxy-protocol).
enum class ProxyHeaderFailure : std::size_t {
  invalid,    // not a header (no signature) or a malformed one
  truncated,  // the client closed in the middle of it
  timeout,    // not complete within header_timeout of accept
  untrusted,  // the TCP peer is not a trusted proxy: closed before anything is read
  count_
};
std::string_view to_string(ProxyHeaderFailure f);
/// Why a tunnel (a connection upgraded to WebSocket) ended.
enum class TunnelEnd : std::size_t {
  client,        // the client closed its connection (or it failed)
  upstream,      // the upstream closed its connection (or it failed)
  idle_timeout,  // no byte either way for limits.tunnel_idle_timeout
  drain,         // still open at the end of a drain (SIGTERM)
  count_
};
std::string_view to_string(TunnelEnd e);

struct ProxyStats {
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> retries{0};
  /// Requests routed in panic (passive verdicts ignored: too few available).
  std::atomic<std::uint64_t> panic_requests{0};
  /// Take-downs passive health wanted but max_ejection_percent refused.
  std::atomic<std::uint64_t> ejections_refused{0};
  std::atomic<std::uint64_t> connections_accepted{0};
  std::atomic<std::int64_t> connections_open{0};
  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(Rejection::count_)> rejections{};
  /// Request-body bytes reserved now by requests being read or forwarded
  /// (bounded by limits.max_buffered_body_bytes).
  std::atomic<std::uint64_t> body_bytes_reserved{0};
  /// What clients got: every answer by status class (1xx-5xx; the lb's own
  /// refusals and errors included), and for each routed request the time
  /// from its head to its answer's last byte.
  std::array<std::atomic<std::uint64_t>, 5> client_responses{};
  ClientLatencyHistogram client_latency;

  /// TLS listener: handshakes completed, and those that failed by why.
  std::atomic<std::uint64_t> tls_handshakes{0};
  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(TlsFailure::count_)> tls_handshake_failures{};
  /// Certificate and key reloads (SIGHUP): applied, and refused (the
  /// running certificate stays).
  std::atomic<std::uint64_t> tls_reloads{0};
  std::atomic<std::uint64_t> tls_reload_failures{0};
  /// When the certificate new connections get expires (Unix seconds); 0:
  /// no TLS listener.
  std::atomic<std::int64_t> tls_certificate_expiry{0};
  /// --proxy-protocol: connections closed for want of a valid header.
  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(ProxyHeaderFailure::count_)> proxy_header_failures{};
  /// WebSocket tunnels: open now, opened in all, the bytes relayed each way
  /// (past the 101), and the closed ones by why.
  std::atomic<std::int64_t> tunnels_open{0};
  std::atomic<std::uint64_t> tunnels{0};
  std::atomic<std::uint64_t> tunnel_bytes_to_upstream{0};
  std::atomic<std::uint64_t> tunnel_bytes_to_client{0};
  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(TunnelEnd::count_)> tunnels_closed{};

  void reject(Rejection r) { rejections[static_cast<std::size_t>(r)].fetch_add(1, std::memory_order_relaxed); }
  void answered(unsigned status) {
    if (status >= 100 && status < 600) client_responses[status / 100 - 1].fetch_add(1, std::memory_order_relaxed);
  }
  void tls_failed(TlsFailure f) {
    tls_handshake_failures[static_cast<std::size_t>(f)].fetch_add(1, std::memory_order_relaxed);
  }
  void reject(ProxyHeaderFailure f) {
    proxy_header_failures[static_cast<std::size_t>(f)].fetch_add(1, std::memory_order_relaxed);
  }
  void tunnel_closed(TunnelEnd e) { tunnels_closed[static_cast<std::size_t>(e)].fetch_add(1, std::memory_order_relaxed); }
};

}  // namespace userkey::lb
