// One request's way to an upstream and back: see upstream_router.hpp.
#include "upstream_router.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>

#include <array>
#include <optional>
#include <span>

#include "http1_codec.hpp"
#include "userkey/core/query_string.hpp"

namespace userkey::lb::engine {

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
                                                           const std::string& head) {
  Attempt a;
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
      a.outcome = failure == UpstreamPool::Failure::queue_timeout ? Outcome::queue_timeout : Outcome::connect_failed;
      co_return a;
    }
    error_code ec;
    conn->stream.expires_after(upstream_timeout_);
    const std::array<asio::const_buffer, 2> wire{asio::buffer(head), asio::buffer(req.body())};
    co_await asio::async_write(conn->stream, wire, nothrow(ec));
    conn->buffer.clear();
    // Interim 1xx responses (other than 101) are skipped: the final response
    // follows on the same connection.
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
      if (a.response.keep_alive() && conn->buffer.size() == 0 && !stopped_.load(std::memory_order_relaxed))
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
    if (reused && nothing_back && ec != beast::error::timeout && http1::idempotent(req.method())) continue;
    a.outcome = ec == beast::error::timeout ? Outcome::timeout : Outcome::no_response;
    co_return a;
  }
  a.outcome = Outcome::no_response;
  co_return a;
}

awaitable<Response> UpstreamRouter::forward(Request req, const std::string& client_ip, std::vector<bool>& tried,
                                            std::string& upstream_name, std::string& wire) {
  refresh();
  const auto snap_ref = snap_;  // keeps this configuration alive for the request
  const Snapshot& s = *snap_ref;
  const unsigned version = req.version();

  char request_id[33];
  http1::format_request_id(request_id, id_prefix_, ++request_counter_ + (static_cast<std::uint64_t>(index_) << 56));
  http1::serialize_upstream_request(wire, req, client_ip, request_id);

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

  const bool can_retry = http1::idempotent(req.method());
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
    if (attempts > 0) stats_.retries.fetch_add(1, std::memory_order_relaxed);
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
      if (log_.should_log(spdlog::level::warn))
        log_.warn("upstream {} failed ({}), {}", up.address(),
                  a.outcome == Outcome::connect_failed ? "connect"
                  : a.outcome == Outcome::timeout      ? "timeout"
                                                       : "no response",
                  can_retry && attempts < s.retries ? "will retry on another upstream if one is eligible"
                                                    : "not retrying");
    }
    tried[*choice] = true;
    if (!can_retry || attempts >= s.retries) break;
    ++attempts;  // counted in retries_total once another upstream is actually tried
  }
  co_return give_up(last, version);
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
  } else if (last == Outcome::timeout) {
    status = 504;
    msg = "upstream timed out";
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
