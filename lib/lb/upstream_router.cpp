// One request's way to an upstream and back: see upstream_router.hpp.
#include "upstream_router.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <optional>
#include <span>

#include "http1_codec.hpp"
#include "upgrade.hpp"
#include "upstream_exchange.hpp"
#include "userkey/core/query_string.hpp"

namespace userkey::lb::engine {

// (See downstream_session.cpp: GCC 12's false -Wmismatched-new-delete on
// Asio's coroutine frames.)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

const Snapshot& UpstreamRouter::refresh() {
  if (!snap_ || snap_->generation != cluster_.generation()) {
    snap_ = cluster_.snapshot();
    // Drop the pools of upstreams that are gone (a request still using one
    // keeps it alive through its shared_ptr).
    pools_.retire_absent(snap_->ptrs);
  }
  return *snap_;
}

awaitable<UpstreamRouter::Attempt> UpstreamRouter::attempt(const UpstreamEntry& e, const Request& req,
                                                           RequestBody& body, const std::string& head) {
  Attempt a;
  const bool idempotent = http1::idempotent(req.method());
  const auto pool = pools_.get(e.upstream, e.stats, e.endpoint);
  for (int fresh_try = 0; fresh_try < 2; ++fresh_try) {
    auto failure = UpstreamPool::Failure::none;
    ConnPtr conn = fresh_try == 0 ? pool->take_idle() : nullptr;
    bool reused = conn != nullptr;
    if (!conn) {
      auto got = co_await pool->acquire(/*fresh_only=*/fresh_try > 0, failure);
      conn = std::move(got.conn);
      reused = got.reused;
    }
    if (!conn) {
      if (failure == UpstreamPool::Failure::tls_failed)
        log_.warn("TLS handshake with upstream {} failed: {}", e.upstream->address(), pool->last_tls_error());
      a.outcome = failure == UpstreamPool::Failure::queue_timeout ? Outcome::queue_timeout
                  : failure == UpstreamPool::Failure::local_error ? Outcome::local_error
                                                                  : Outcome::connect_failed;
      co_return a;
    }
    Exchange x = co_await exchange(*conn, head, body, req.method() == http::verb::head, upstream_timeout_);
    if (x.client_failed) {
      // The client's doing (its body stalled, ended early or was
      // malformed): no verdict on the upstream, no retry.
      a.outcome = Outcome::client_failed;
      co_return a;
    }
    if (x.response) {
      conn->stream.expires_never();
      a.response = std::move(*x.response);
      if (x.body && a.response.result_int() != 101) {
        // Streamed: the connection goes with the body (finish_body()).
        a.body = std::make_unique<UpstreamBody>();
        a.body->reusable = x.request_complete() && a.response.keep_alive();
        a.body->pool = pool;
        a.body->conn = std::move(conn);
        a.body->parser = std::move(x.body);
        a.outcome = Outcome::ok;
        co_return a;
      }
      // 101 to a WebSocket upgrade the lb forwarded (upgrade.hpp): the
      // connection goes back for a tunnel (tunnel_session.hpp), with the
      // upstream in flight while it lasts; never pooled again.
      if (http1::websocket_accepted(a.response.base()) && http1::websocket_requested(req.base())) {
        a.body = std::make_unique<UpstreamBody>();
        a.body->upgraded = true;
        a.body->pool = pool;
        a.body->conn = std::move(conn);
        a.outcome = Outcome::ok;
        co_return a;
      }
      // Any other 101: the connection now speaks a protocol the lb did not
      // ask for (it forwards no other Upgrade). Never pooled; a failure.
      if (a.response.result_int() == 101) {
        conn.reset();
        a.outcome = Outcome::no_response;
        co_return a;
      }
      // Any final response is the answer, also one that came before the
      // whole request went (a 413 to a body the upstream refuses as soon as
      // the head is in): relayed, never a failure. Reusable only if the
      // whole request went, the upstream keeps it open and sent nothing
      // extra.
      if (x.request_complete() && a.response.keep_alive() && conn->buffer.size() == 0 &&
          !stopped_.load(std::memory_order_relaxed))
        pool->release(std::move(conn));
      else
        conn.reset();  // closes it; its slot goes on
      a.outcome = Outcome::ok;
      co_return a;
    }
    const error_code ec = x.error;
    const std::size_t written = x.written;
    const bool nothing_back = !x.got_some;
    conn.reset();
    if (is_local_error(ec)) {
      a.outcome = Outcome::local_error;
      co_return a;
    }
    // A pooled connection the upstream closed while idle is not the
    // upstream's fault: try once more, on a new connection. Any request when
    // not a byte of it was written; an idempotent one also when it was
    // written but nothing came back.
    if (reused && nothing_back && ec != beast::error::timeout && (written == 0 || idempotent) && body.replayable())
      continue;
    if (ec == http::error::body_limit || ec == http::error::header_limit)
      a.outcome = Outcome::too_large;  // the response's doing, not the upstream's health
    else if (written == 0 && ec != beast::error::timeout)
      a.outcome = Outcome::connect_failed;  // reset before a byte of the request reached it
    else
      a.outcome = ec == beast::error::timeout ? Outcome::timeout : Outcome::no_response;
    co_return a;
  }
  a.outcome = Outcome::no_response;
  co_return a;
}

bool select_eligible(const Snapshot& s, const std::vector<bool>& tried, bool* elig, std::size_t& count,
                     TimePoint now) {
  const std::size_t n = s.ptrs.size();
  std::size_t healthy = 0;
  for (std::size_t i = 0; i < n; ++i) {
    elig[i] = s.ptrs[i]->available(now);
    healthy += elig[i] ? 1 : 0;
  }
  const bool panic = healthy * 100 < std::size_t{s.outlier.panic_threshold_percent} * n;
  bool widened = false;
  count = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const bool e = !tried[i] && (elig[i] || (panic && s.ptrs[i]->active_up()));
    widened = widened || (e && !elig[i]);
    elig[i] = e;
    count += e ? 1 : 0;
  }
  return widened;
}

// A request the policy sends to an upstream that is full on this loop (it
// would queue) goes to the next eligible one with room instead, as nginx and
// HAProxy pass over a server at its maxconn; when every one is full, to the
// shortest queue (the policy's choice on a tie). One queue per upstream then
// drains about as fast as the others, instead of a request waiting behind a
// long one while another upstream's queue is short.
std::size_t UpstreamRouter::spill_over(const Snapshot& s, const bool* elig, std::size_t chosen) {
  const auto pool_of = [&](std::size_t i) {
    const auto& e = s.entries[i];
    return pools_.get(e.upstream, e.stats, e.endpoint);
  };
  const auto first = pool_of(chosen);
  if (!first->full()) return chosen;
  std::size_t best = chosen;
  std::size_t best_queue = first->queued();
  const std::size_t n = s.ptrs.size();
  for (std::size_t k = 1; k < n; ++k) {
    const std::size_t i = (chosen + k) % n;  // from the choice on, so no upstream is everyone's fallback
    if (!elig[i]) continue;
    const auto p = pool_of(i);
    if (!p->full()) return i;
    if (p->queued() < best_queue) {
      best = i;
      best_queue = p->queued();
    }
  }
  return best;
}

// Counters, passive health and the log line for a failed attempt.
void UpstreamRouter::report(const Snapshot& s, const UpstreamEntry& e, Outcome outcome, bool counts,
                            bool will_retry) {
  switch (outcome) {
    case Outcome::connect_failed: e.stats->connect_errors.fetch_add(1, std::memory_order_relaxed); break;
    case Outcome::timeout: e.stats->timeouts.fetch_add(1, std::memory_order_relaxed); break;
    case Outcome::queue_timeout: e.stats->queue_timeouts.fetch_add(1, std::memory_order_relaxed); break;
    case Outcome::local_error: break;  // ours, not the upstream's
    default: e.stats->response_errors.fetch_add(1, std::memory_order_relaxed); break;
  }
  Upstream& up = *e.upstream;
  if (outcome == Outcome::local_error) {
    log_.error("no resources left for a connection to upstream {} (descriptors, buffers or memory): answering 503",
               up.address());
    return;
  }
  if (outcome == Outcome::queue_timeout) return;
  const auto verdict = counts ? cluster_.report_failure(s, up, SteadyClock::now()) : FailureVerdict::counted;
  if (verdict == FailureVerdict::kept_in) stats_.ejections_refused.fetch_add(1, std::memory_order_relaxed);
  if (!log_.should_log(spdlog::level::warn)) return;
  const std::string_view what = outcome == Outcome::connect_failed ? "connect"
                                : outcome == Outcome::timeout      ? "timeout"
                                : outcome == Outcome::too_large    ? "response too large"
                                                                   : "no response";
  const std::string_view health = verdict == FailureVerdict::taken_out ? ", taken out by passive health"
                                  : verdict == FailureVerdict::kept_in
                                      ? ", kept in: max_ejection_percent of the upstreams are out already"
                                  : counts ? ""
                                           : " (not counted against it)";
  log_.warn("upstream {} failed ({}){}, {}", up.address(), what, health,
            will_retry ? "will retry on another upstream if one is eligible" : "not retrying");
}

awaitable<Response> UpstreamRouter::forward(Request req, const std::string& client_ip, http1::UpstreamIds ids,
                                            std::vector<bool>& tried, ForwardReport& summary, std::string& wire,
                                            std::string_view forwarded_proto, http1::ForwardedFor xff) {
  HeldBody body(std::move(req.body()));
  co_return co_await forward(req, body, client_ip, ids, tried, summary, wire, forwarded_proto, xff);
}

awaitable<Response> UpstreamRouter::forward(const Request& req, RequestBody& body, const std::string& client_ip,
                                            http1::UpstreamIds ids, std::vector<bool>& tried,
                                            ForwardReport& summary, std::string& wire,
                                            std::string_view forwarded_proto, http1::ForwardedFor xff) {
  refresh();
  const auto snap_ref = snap_;  // keeps this configuration alive for the request
  const Snapshot& s = *snap_ref;
  const unsigned version = req.version();
  summary.upstream.clear();
  summary.upstream_time = std::chrono::microseconds(-1);
  summary.retries = 0;
  summary.body.reset();
  summary.client_failed = false;

  // A streamed body goes as the client framed it (its length, or chunks);
  // one held whole by its length.
  http1::BodyFrame frame;
  if (!body.complete())
    frame = body.length() ? http1::BodyFrame{http1::BodyFrame::Kind::length, *body.length()}
                          : http1::BodyFrame{http1::BodyFrame::Kind::chunked, 0};
  else if (!body.held().empty() || req.has_content_length())
    frame = http1::BodyFrame{http1::BodyFrame::Kind::length, body.held().size()};
  http1::serialize_upstream_request(wire, req, client_ip, ids, forwarded_proto, xff, frame);

  auto header = [&req](std::string_view name) -> std::string_view {
    auto it = req.find(beast::string_view(name.data(), name.size()));
    return it == req.end() ? std::string_view{} : std::string_view(it->value().data(), it->value().size());
  };
  const std::string_view target(req.target().data(), req.target().size());
  std::string_view key = s.hash_key.extract(target, header, client_ip);
  // "%31" and "1" are the same user: hash the decoded value (decoding only
  // allocates when there is something to decode).
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

  // Retries: a request that reached no upstream (connect failed, queue
  // timeout) may go to another whatever its method; after a response went
  // missing only an idempotent one may. A timeout says as much about the
  // request (a slow path) as about the upstream: a request is tried on at
  // most two upstreams once one timed out, and only its first timeout
  // counts against an upstream's passive health, so one slow request cannot
  // take several upstreams out.
  const bool idempotent = http1::idempotent(req.method());
  std::uint32_t attempts = 0;
  bool timed_out = false;
  bool panic_counted = false;
  Outcome last = Outcome::ok;
  std::uint32_t tries = 0;
  TimePoint first_try{};
  // Sets the summary's upstream time and retries once an attempt ends.
  auto account = [&](TimePoint end) {
    summary.upstream_time = std::chrono::duration_cast<std::chrono::microseconds>(end - first_try);
    summary.retries = tries - 1;
  };
  for (;;) {
    std::size_t count = 0;
    const bool panic = select_eligible(s, tried, elig, count, SteadyClock::now());
    if (count == 0) break;
    Candidates cands(s.ptrs, std::span<const bool>(elig, n));
    auto choice = s.policy->choose(cands, info);
    if (!choice || *choice >= n || !elig[*choice]) break;
    choice = spill_over(s, elig, *choice);
    if (panic && !panic_counted) {
      panic_counted = true;
      stats_.panic_requests.fetch_add(1, std::memory_order_relaxed);
    }
    if (attempts > 0) stats_.retries.fetch_add(1, std::memory_order_relaxed);
    const auto& e = s.entries[*choice];
    Upstream& up = *e.upstream;
    e.stats->requests.fetch_add(1, std::memory_order_relaxed);
    const auto t0 = SteadyClock::now();
    if (tries++ == 0) first_try = t0;
    Attempt a;
    {
      const Upstream::InFlight counted(up);
      a = co_await attempt(e, req, body, wire);
    }
    const auto t1 = SteadyClock::now();
    account(t1);
    if (a.outcome == Outcome::ok) {
      up.report_success(t1);
      e.stats->latency.observe(std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0));
      e.stats->count_status(a.response.result_int());
      summary.upstream = up.address();
      if (a.body) {
        a.body->snapshot = snap_ref;
        a.body->entry = &e;
        a.body->in_flight.emplace(up);  // in flight until its body ends
        summary.body = std::move(a.body);
      }
      co_return std::move(a.response);
    }
    if (a.outcome == Outcome::client_failed) {
      summary.client_failed = true;
      co_return Response{};
    }
    last = a.outcome;
    const bool reached = a.outcome != Outcome::connect_failed && a.outcome != Outcome::queue_timeout;
    bool retry = (idempotent || !reached) && attempts < s.retries && body.replayable();
    if (a.outcome == Outcome::too_large || a.outcome == Outcome::local_error) retry = false;
    const bool counts = a.outcome != Outcome::too_large && !(a.outcome == Outcome::timeout && timed_out);
    if (a.outcome == Outcome::timeout) {
      retry = retry && !timed_out;
      timed_out = true;
    }
    report(s, e, a.outcome, counts, retry);
    tried[*choice] = true;
    if (!retry) break;
    ++attempts;  // counted in retries_total once another upstream is actually tried
  }
  co_return give_up(last, version);
}

void UpstreamRouter::finish_body(std::unique_ptr<UpstreamBody> body, BodyEnd end) {
  if (!body || !body->conn) return;
  if (end == BodyEnd::complete) {
    if (body->reusable && body->conn->buffer.size() == 0 && !stopped_.load(std::memory_order_relaxed)) {
      body->conn->buffer.shrink_to_fit();  // (an idle pooled connection holds no piece buffer)
      body->pool->release(std::move(body->conn));
    }
    return;  // (else the connection closes with `body`)
  }
  body->conn.reset();  // mid-body: out of step with the upstream
  if (end == BodyEnd::client_gone || body->entry == nullptr) return;
  const UpstreamEntry& e = *body->entry;
  const bool timeout = end == BodyEnd::upstream_timeout;
  (timeout ? e.stats->timeouts : e.stats->response_errors).fetch_add(1, std::memory_order_relaxed);
  const auto verdict = cluster_.report_failure(*body->snapshot, *e.upstream, SteadyClock::now());
  if (verdict == FailureVerdict::kept_in) stats_.ejections_refused.fetch_add(1, std::memory_order_relaxed);
  log_.warn("upstream {} failed mid-body ({}){}: the client's connection is closed", e.upstream->address(),
            timeout ? "timeout" : "cut short",
            verdict == FailureVerdict::taken_out ? ", taken out by passive health" : "");
}

// No upstream answered: the lb's own 503 (none eligible, or the queue for a
// connection timed out), 504 (timed out) or 502 (failed), counted.
Response UpstreamRouter::give_up(Outcome last, unsigned version) {
  unsigned status = 503;
  std::string_view msg = "no healthy upstream";
  Rejection why = Rejection::no_upstream;
  if (last == Outcome::queue_timeout) {
    msg = "upstream busy: queue timeout";
    why = Rejection::queue_full;
  } else if (last == Outcome::local_error) {
    msg = "proxy out of local resources";
    why = Rejection::local_resources;
  } else if (last == Outcome::timeout) {
    status = 504;
    msg = "upstream timed out";
    why = Rejection::bad_gateway;
  } else if (last == Outcome::too_large) {
    status = 502;
    msg = "upstream response too large";
    why = Rejection::bad_gateway;
  } else if (last != Outcome::ok) {
    status = 502;
    msg = "upstream failed";
    why = Rejection::bad_gateway;
  }
  stats_.reject(why);
  return http1::make_error_response(status, msg, version, std::chrono::seconds(status == 503 ? 1 : 0));
}

}  // namespace userkey::lb::engine
