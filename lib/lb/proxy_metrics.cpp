// The proxy's counters (proxy_metrics.hpp) and how the admin endpoint
// renders them with a cluster snapshot (proxy_metrics_render.hpp).
#include "userkey/lb/proxy_metrics.hpp"

#include <fmt/format.h>

#include "core/escape.hpp"
#include "proxy_metrics_render.hpp"
#include "userkey/core/build_info.hpp"

namespace userkey::lb {

using detail::json_string;

namespace {

// The _bucket, _sum and _count lines of `h` as metric `name` with `labels`
// ("" or `key="value",...` without braces).
template <class Histogram, class Line>
void render_histogram(const Line& line, const std::string& name, const std::string& labels, const Histogram& h) {
  const std::string sep = labels.empty() ? "" : ",";
  std::uint64_t cum = 0;
  for (std::size_t b = 0; b < h.buckets.size(); ++b) {
    cum += h.buckets[b].load();
    const std::string le = b < Histogram::bounds.size() ? fmt::format("{}", Histogram::bounds[b]) : "+Inf";
    line(name + "_bucket{" + labels + sep + "le=\"" + le + "\"} " + std::to_string(cum));
  }
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  line(name + "_sum" + braces + " " + fmt::format("{:.6f}", static_cast<double>(h.sum_us.load()) / 1e6));
  line(name + "_count" + braces + " " + std::to_string(h.count.load()));
}

}  // namespace

void UpstreamStats::count_status(unsigned status) {
  auto& c = status < 300 ? responses_2xx : status < 400 ? responses_3xx : status < 500 ? responses_4xx : responses_5xx;
  c.fetch_add(1, std::memory_order_relaxed);
}

std::string_view to_string(Rejection r) {
  switch (r) {
    case Rejection::rate_limited: return "rate_limited";
    case Rejection::denied: return "denied";
    case Rejection::too_many_conns: return "too_many_connections";
    case Rejection::header_too_large: return "header_too_large";
    case Rejection::body_too_large: return "body_too_large";
    case Rejection::bad_request: return "bad_request";
    case Rejection::header_timeout: return "header_timeout";
    case Rejection::no_upstream: return "no_upstream";
    case Rejection::queue_full: return "queue_full";
    case Rejection::bad_gateway: return "bad_gateway";
    case Rejection::body_timeout: return "body_timeout";
    case Rejection::max_connections: return "max_connections";
    case Rejection::local_resources: return "local_resources";
    case Rejection::body_memory: return "body_memory";
    case Rejection::count_: break;
  }
  return "unknown";
}

std::string_view to_string(TlsFailure f) {
  switch (f) {
    case TlsFailure::timeout: return "timeout";
    case TlsFailure::plain_http: return "plain_http";
    case TlsFailure::protocol: return "protocol";
    case TlsFailure::closed: return "closed";
    case TlsFailure::count_: break;
  }
  return "unknown";
}

std::string_view to_string(ProxyHeaderFailure f) {
  switch (f) {
    case ProxyHeaderFailure::invalid: return "invalid";
    case ProxyHeaderFailure::truncated: return "truncated";
    case ProxyHeaderFailure::timeout: return "timeout";
    case ProxyHeaderFailure::untrusted: return "untrusted";
    case ProxyHeaderFailure::count_: break;
  }
  return "unknown";
}

std::string_view to_string(TunnelEnd e) {
  switch (e) {
    case TunnelEnd::client: return "client";
    case TunnelEnd::upstream: return "upstream";
    case TunnelEnd::idle_timeout: return "idle_timeout";
    case TunnelEnd::drain: return "drain";
    case TunnelEnd::count_: break;
  }
  return "unknown";
}

// ---------------------------------------------------------------------------
// Rendering

std::string render_metrics_text(const ProxyStats& stats, const engine::Snapshot& snap, TimePoint now) {
  std::string o;
  o.reserve(8192);
  auto line = [&o](std::string_view s) { o.append(s).push_back('\n'); };
  auto num = [](auto v) { return std::to_string(v); };

  o += build_info_metrics();
  line("# HELP userkey_lb_requests_total Requests received from clients.");
  line("# TYPE userkey_lb_requests_total counter");
  line("userkey_lb_requests_total " + num(stats.requests.load()));
  line("# HELP userkey_lb_retries_total Requests retried on another upstream.");
  line("# TYPE userkey_lb_retries_total counter");
  line("userkey_lb_retries_total " + num(stats.retries.load()));
  line("# HELP userkey_lb_panic_requests_total Requests routed ignoring passive health: too few upstreams available.");
  line("# TYPE userkey_lb_panic_requests_total counter");
  line("userkey_lb_panic_requests_total " + num(stats.panic_requests.load()));
  line("# HELP userkey_lb_ejections_refused_total Passive take-downs refused by max_ejection_percent.");
  line("# TYPE userkey_lb_ejections_refused_total counter");
  line("userkey_lb_ejections_refused_total " + num(stats.ejections_refused.load()));
  line("# HELP userkey_lb_connections_accepted_total Client connections accepted.");
  line("# TYPE userkey_lb_connections_accepted_total counter");
  line("userkey_lb_connections_accepted_total " + num(stats.connections_accepted.load()));
  line("# HELP userkey_lb_connections_open Client connections open now.");
  line("# TYPE userkey_lb_connections_open gauge");
  line("userkey_lb_connections_open " + num(stats.connections_open.load()));
  line("# HELP userkey_lb_client_responses_total Answers to clients by status class, the lb's own included.");
  line("# TYPE userkey_lb_client_responses_total counter");
  for (std::size_t i = 0; i < stats.client_responses.size(); ++i)
    line("userkey_lb_client_responses_total{code=\"" + std::to_string(i + 1) + "xx\"} " +
         num(stats.client_responses[i].load()));
  line("# HELP userkey_lb_client_request_duration_seconds Routed requests: from the head in to the answer's "
       "last byte out (retries, queueing and the upstream included).");
  line("# TYPE userkey_lb_client_request_duration_seconds histogram");
  render_histogram(line, "userkey_lb_client_request_duration_seconds", "", stats.client_latency);
  line("# HELP userkey_lb_request_body_bytes_reserved Request-body bytes held or reserved now (bounded by "
       "limits.max_buffered_body_bytes).");
  line("# TYPE userkey_lb_request_body_bytes_reserved gauge");
  line("userkey_lb_request_body_bytes_reserved " + num(stats.body_bytes_reserved.load()));
  line("# HELP userkey_lb_rejections_total Requests the lb answered itself, by reason (rate_limited = 429).");
  line("# TYPE userkey_lb_rejections_total counter");
  for (std::size_t i = 0; i < stats.rejections.size(); ++i)
    line("userkey_lb_rejections_total{reason=\"" + std::string(to_string(static_cast<Rejection>(i))) + "\"} " +
         num(stats.rejections[i].load()));
  line("# HELP userkey_lb_tls_handshakes_total TLS handshakes completed on the TLS listener.");
  line("# TYPE userkey_lb_tls_handshakes_total counter");
  line("userkey_lb_tls_handshakes_total " + num(stats.tls_handshakes.load()));
  line("# HELP userkey_lb_tls_handshake_failures_total TLS handshakes that did not complete, by reason; the "
       "connection was closed.");
  line("# TYPE userkey_lb_tls_handshake_failures_total counter");
  for (std::size_t i = 0; i < stats.tls_handshake_failures.size(); ++i)
    line("userkey_lb_tls_handshake_failures_total{reason=\"" + std::string(to_string(static_cast<TlsFailure>(i))) +
         "\"} " + num(stats.tls_handshake_failures[i].load()));
  line("# HELP userkey_lb_tls_reloads_total Certificate and key reloads (SIGHUP) by result; failed keeps the "
       "running certificate.");
  line("# TYPE userkey_lb_tls_reloads_total counter");
  line("userkey_lb_tls_reloads_total{result=\"ok\"} " + num(stats.tls_reloads.load()));
  line("userkey_lb_tls_reloads_total{result=\"failed\"} " + num(stats.tls_reload_failures.load()));
  if (const auto expiry = stats.tls_certificate_expiry.load(); expiry != 0) {
    line("# HELP userkey_lb_tls_certificate_expiry_seconds When the served certificate expires (Unix time).");
    line("# TYPE userkey_lb_tls_certificate_expiry_seconds gauge");
    line("userkey_lb_tls_certificate_expiry_seconds " + num(expiry));
  }
  line("# HELP userkey_lb_proxy_header_failures_total Connections closed unanswered for want of a valid PROXY "
       "protocol header, by reason.");
  line("# TYPE userkey_lb_proxy_header_failures_total counter");
  for (std::size_t i = 0; i < stats.proxy_header_failures.size(); ++i)
    line("userkey_lb_proxy_header_failures_total{reason=\"" +
         std::string(to_string(static_cast<ProxyHeaderFailure>(i))) + "\"} " +
         num(stats.proxy_header_failures[i].load()));
  line("# HELP userkey_lb_tunnels_open WebSocket tunnels open now (an Upgrade: websocket the upstream switched).");
  line("# TYPE userkey_lb_tunnels_open gauge");
  line("userkey_lb_tunnels_open " + num(stats.tunnels_open.load()));
  line("# HELP userkey_lb_tunnels_total WebSocket tunnels opened.");
  line("# TYPE userkey_lb_tunnels_total counter");
  line("userkey_lb_tunnels_total " + num(stats.tunnels.load()));
  line("# HELP userkey_lb_tunnel_bytes_total Bytes relayed through tunnels past the 101, by direction.");
  line("# TYPE userkey_lb_tunnel_bytes_total counter");
  line("userkey_lb_tunnel_bytes_total{direction=\"to_upstream\"} " + num(stats.tunnel_bytes_to_upstream.load()));
  line("userkey_lb_tunnel_bytes_total{direction=\"to_client\"} " + num(stats.tunnel_bytes_to_client.load()));
  line("# HELP userkey_lb_tunnels_closed_total WebSocket tunnels closed, by what ended them.");
  line("# TYPE userkey_lb_tunnels_closed_total counter");
  for (std::size_t i = 0; i < stats.tunnels_closed.size(); ++i)
    line("userkey_lb_tunnels_closed_total{by=\"" + std::string(to_string(static_cast<TunnelEnd>(i))) + "\"} " +
         num(stats.tunnels_closed[i].load()));

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
    for (const auto& e : snap.entries) {
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
      else
        render_histogram(line, n, lbl, st.latency);
    }
  }
  return o;
}

std::string render_status_json(const ProxyStats& stats, const engine::Snapshot& snap, bool draining, TimePoint now) {
  std::string o = "{\"policy\":" + json_string(snap.policy->name()) + ",\"hash_key\":" +
                  json_string(snap.hash_key.to_string()) + ",\"retries\":" + std::to_string(snap.retries) +
                  ",\"draining\":" + (draining ? "true" : "false") + ",\"requests\":" +
                  std::to_string(stats.requests.load()) + ",\"connections_open\":" +
                  std::to_string(stats.connections_open.load()) + ",\"tunnels_open\":" +
                  std::to_string(stats.tunnels_open.load()) + ",\"upstreams\":[";
  bool first = true;
  for (const auto& e : snap.entries) {
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

}  // namespace userkey::lb
