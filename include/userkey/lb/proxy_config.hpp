// ProxyConfig: every setting of the L7 proxy, as plain data. The lb app fills
// it from flags or a TOML file (load_proxy_config); a program embedding
// ProxyServer fills it in code.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "userkey/lb/upstream.hpp"

namespace userkey::lb {

/// How an access log line is written: `text`, the space-separated line of
/// the main log (client, method, target, status, time, upstream, request
/// id); `json`, one JSON object per line on standard output.
enum class AccessLogFormat { text, json };

struct LimitsConfig {
  /// Per-client-IP token bucket: requests per second and burst; rate 0 = off.
  double rate = 0;
  double burst = 0;
  /// Concurrent connections per client IP; 0 = unlimited.
  std::uint32_t max_conns_per_ip = 0;
  /// IPv6 clients are one client per /ipv6_prefix network for the rate
  /// limit and the connection cap (an allocation is a /64, and its owner can
  /// use every address in it); IPv4 clients per address.
  std::uint32_t ipv6_prefix = 64;
  /// CIDR lists; deny wins; a non-empty allow list admits only its members.
  std::vector<std::string> allow;
  std::vector<std::string> deny;
  /// Request line + headers, bytes (431 beyond); body bytes (413 beyond,
  /// from the lb, before anything goes upstream). The body default is the
  /// backend's own limit (userkey-backend refuses a larger body with 413 as
  /// soon as its head is in; its routes take none), so the lb neither holds
  /// nor forwards bodies the backends would refuse.
  std::uint32_t max_header_bytes = 8 * 1024;
  std::uint64_t max_body_bytes = 64 * 1024;
  /// Time allowed to receive a complete request head (slowloris guard),
  /// from the connection's start or, between keep-alive requests, from the
  /// next request's first byte; how long an idle keep-alive client
  /// connection waits for that byte; and the time allowed to receive a
  /// request body once its head is in (408 beyond).
  std::chrono::milliseconds header_timeout{5'000};
  std::chrono::milliseconds idle_timeout{30'000};
  std::chrono::milliseconds body_timeout{30'000};
  /// Request-body bytes held at once, all connections together (503
  /// beyond, counted as body_memory): a body up to 64 KiB is held whole and
  /// reserves its length; a longer one is streamed upstream and reserves
  /// 64 KiB (its replay buffer) plus one read buffer. 0 = unbounded.
  std::uint64_t max_buffered_body_bytes = 32 * 1024 * 1024;
  /// Client connections open at once, all event loops together; beyond, a
  /// new connection gets 503 with Connection: close. 0 = unlimited.
  std::uint32_t max_connections = 10'000;
  /// A WebSocket tunnel with no byte either way for this long is closed. An
  /// hour, as HAProxy's documented `timeout tunnel`: WebSocket applications
  /// ping far more often than that, so only a dead or abandoned tunnel
  /// (whose peer vanished without a close) reaches it.
  std::chrono::milliseconds tunnel_idle_timeout{std::chrono::hours(1)};
};

/// TLS termination: a second listener whose clients speak HTTP/1.1 over TLS
/// (1.2 or 1.3), served like the plain listener's, with
/// X-Forwarded-Proto: https on what goes upstream.
struct TlsConfig {
  /// Where the TLS listener listens; empty host = no TLS listener.
  std::string listen_host;
  std::uint16_t listen_port = 0;
  /// PEM files: the certificate chain (the server's certificate first, then
  /// its intermediates) and its private key (unencrypted). Both are required
  /// with a TLS listener; they are read at start and again on reload.
  std::string cert_file;
  std::string key_file;
  /// Session tickets are sealed with a key made every ticket_rotate; a
  /// ticket under the key before resumes too (and is renewed), one under an
  /// older key gets a full handshake, so a ticket is good for one to two
  /// periods. Rotation is checked at each handshake. 0 = one key for the
  /// process's life. The keys are the process's own (never shared with
  /// another lb process) and survive certificate reloads.
  std::chrono::milliseconds ticket_rotate{3'600'000};
  /// PEM CA certificates that upstreams with tls=on are verified against;
  /// empty = the system's trust store.
  std::string upstream_ca_file;
};

/// Which request header names the client behind a trusted proxy:
/// X-Forwarded-For (a plain comma list) or Forwarded (RFC 7239 `for=`).
enum class RealIpHeader { x_forwarded_for, forwarded };

struct ProxyConfig {
  /// The plain HTTP listener; empty host = none (then tls.listen is required).
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 8080;
  TlsConfig tls;
  std::vector<UpstreamConfig> upstreams;
  std::string policy = "round_robin";
  std::string hash_key = "query:user_id";

  PassiveHealthConfig passive;
  ActiveHealthConfig active;
  /// How much of the cluster passive health may take out, and when to
  /// ignore its verdicts rather than answer 503 (see OutlierLimits).
  OutlierLimits outlier;

  /// Extra attempts on a different upstream for an idempotent request that
  /// could not connect or got no response.
  std::uint32_t retries = 2;
  std::chrono::milliseconds connect_timeout{1'000};
  /// Time for each step of an exchange with an upstream: from the request
  /// (or a streamed request body's end) to the response head, and each
  /// write of a streamed request body and each read of a streamed response
  /// body (a response up to 64 KiB is read whole within it).
  std::chrono::milliseconds upstream_timeout{10'000};
  /// Pooled upstream connections idle longer than this are closed rather
  /// than reused (keep it below the backends' keep-alive timeout, 5 s).
  std::chrono::milliseconds upstream_idle_timeout{2'000};
  /// Upstream host names are resolved again this often, in the background,
  /// so a backend that comes back at a new address (a recreated container)
  /// is followed without a reload; 0 = only at start and on reload. IP
  /// literals are never resolved. A failed lookup keeps the known address.
  std::chrono::milliseconds resolve_interval{5'000};
  /// Requests waiting for a connection slot when an upstream is at
  /// max_conns (per event-loop thread); beyond, or after queue_timeout, 503.
  std::uint32_t queue_size = 1024;
  std::chrono::milliseconds queue_timeout{2'000};

  LimitsConfig limits;

  /// Every client connection (both listeners) starts with a PROXY protocol
  /// v1 or v2 header, whose source address is the client's (the lb sits
  /// behind HAProxy, an AWS NLB, ...). A connection without a valid one is
  /// closed unanswered. Needs restart.
  bool proxy_protocol = false;
  /// CIDR blocks of proxies whose `real_ip_header` is believed: a request
  /// from one of them is from the first untrusted address of that header,
  /// read right to left. Empty: none believed. With proxy_protocol, also the
  /// only peers whose PROXY header is believed (a connection from any other
  /// peer is closed before anything is read from it).
  std::vector<std::string> trusted_proxies;
  /// The header a trusted proxy names the client in (nginx's real_ip_header).
  RealIpHeader real_ip_header = RealIpHeader::x_forwarded_for;

  /// Event-loop threads; 0 = one per core, at most 4 (on 2 cores one loop
  /// measured as fast as two).
  std::uint32_t threads = 1;
  /// SIGTERM: how long in-flight requests get to finish.
  std::chrono::milliseconds drain_timeout{10'000};

  /// Admin endpoint (/metrics, /status); empty host = disabled.
  std::string admin_host = "127.0.0.1";
  std::uint16_t admin_port = 9100;

  /// One line per request, in `access_log_format`.
  bool access_log = true;
  AccessLogFormat access_log_format = AccessLogFormat::text;
  /// Request ids: a client's X-Request-Id is kept when it is well-formed
  /// (one field, 1-128 characters of [A-Za-z0-9._:-]) and replaced by a
  /// fresh one otherwise; the id goes upstream, back to the client (the
  /// lb's own error replies included) and into the access log. Off: the
  /// client's X-Request-Id fields pass through untouched and none is added.
  bool request_id = true;
  std::string log_level = "info";
  /// The process log: this file (appended to, reopened on SIGUSR1) instead
  /// of stderr. Read by the app, which makes the logger. Needs restart.
  std::string log_file;
  /// Access log lines (text or JSON): this file (appended to, reopened on
  /// SIGUSR1) instead of the process log (text) or stdout (JSON). Needs
  /// restart.
  std::string access_log_file;
};

}  // namespace userkey::lb
