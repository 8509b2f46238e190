// The backend's counters and its /metrics page: see backend_metrics.hpp.
#include "userkey/backend/backend_metrics.hpp"

#include <algorithm>

#include "userkey/core/build_info.hpp"

namespace userkey {

std::string_view to_string(DatabaseError e) {
  switch (e) {
    case DatabaseError::unreachable: return "unreachable";
    case DatabaseError::network: return "network";
    case DatabaseError::unauthorized: return "unauthorized";
    case DatabaseError::pool_timeout: return "pool_timeout";
    case DatabaseError::other: return "other";
    case DatabaseError::count_: break;
  }
  return "unknown";
}

void LookupLatencyHistogram::observe(std::chrono::microseconds d) noexcept {
  const auto us = static_cast<std::uint64_t>(std::max<std::chrono::microseconds::rep>(d.count(), 0));
  std::size_t i = 0;
  while (i < kLookupLatencyBucketsUs.size() && us > kLookupLatencyBucketsUs[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_us_.fetch_add(us, std::memory_order_relaxed);
}

LookupLatencyHistogram::Counts LookupLatencyHistogram::counts() const {
  Counts c;
  for (std::size_t i = 0; i < buckets_.size(); ++i) c.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
  c.count = count_.load(std::memory_order_relaxed);
  c.sum_us = sum_us_.load(std::memory_order_relaxed);
  return c;
}

std::uint64_t BackendMetrics::responses(int status) const {
  if (status < 100 || status > 599) return 0;
  return responses_[static_cast<std::size_t>(status - 100)].load(std::memory_order_relaxed);
}

namespace {

// Microseconds as decimal seconds: 250 -> "0.00025", 2500000 -> "2.5".
std::string seconds_text(std::uint64_t us, bool keep_trailing_zeros) {
  std::string frac = std::to_string(us % 1'000'000);
  frac.insert(0, 6 - frac.size(), '0');
  if (!keep_trailing_zeros) {
    while (!frac.empty() && frac.back() == '0') frac.pop_back();
  }
  std::string out = std::to_string(us / 1'000'000);
  if (!frac.empty()) out += '.' + frac;
  return out;
}

class Page {
public:
  Page() { out_.reserve(4096); }

  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  void sample(std::string_view name, std::string_view labels, std::string_view value) {
    out_ += name;
    if (!labels.empty()) {
      out_ += '{';
      out_ += labels;
      out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }
  void sample(std::string_view name, std::string_view labels, std::uint64_t value) {
    sample(name, labels, std::to_string(value));
  }
  /// A family with a single unlabelled sample.
  void single(std::string_view name, std::string_view type, std::string_view help, std::uint64_t value) {
    family(name, type, help);
    sample(name, {}, value);
  }
  /// Lines already in the format (each ending with a newline).
  void raw(std::string_view lines) { out_ += lines; }
  std::string take() { return std::move(out_); }

private:
  std::string out_;
};

void render_requests(Page& p, const BackendMetrics& m) {
  p.family("userkey_backend_requests_total", "counter",
           "Requests answered, by status code (including requests refused before routing).");
  for (int status = 100; status <= 599; ++status) {
    const auto n = m.responses(status);
    const bool listed = std::find(BackendMetrics::kListedStatuses.begin(), BackendMetrics::kListedStatuses.end(),
                                  status) != BackendMetrics::kListedStatuses.end();
    if (n > 0 || listed) p.sample("userkey_backend_requests_total", "code=\"" + std::to_string(status) + "\"", n);
  }
}

void render_lookups(Page& p, const BackendMetrics& m) {
  constexpr std::string_view name = "userkey_backend_lookup_latency_seconds";
  p.family(name, "histogram", "Time to answer a lookup (GET /), from its request read to its answer ready.");
  const auto c = m.lookup_latency().counts();
  const std::string bucket = std::string(name) + "_bucket";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < c.buckets.size(); ++i) {
    cumulative += c.buckets[i];
    const std::string le = i < kLookupLatencyBucketsUs.size() ? seconds_text(kLookupLatencyBucketsUs[i], false) : "+Inf";
    p.sample(bucket, "le=\"" + le + "\"", cumulative);
  }
  p.sample(std::string(name) + "_sum", {}, seconds_text(c.sum_us, true));
  // The +Inf bucket and _count come from the same copied buckets, so they
  // agree even while lookups are counted during the scrape.
  p.sample(std::string(name) + "_count", {}, cumulative);
  p.single("userkey_backend_lookup_timeouts_total", "counter",
           "Lookups answered 503 at the lookup deadline (every worker busy on a hung database).",
           m.lookup_timeouts());
}

void render_cache(Page& p, const CacheStats& c) {
  p.single("userkey_backend_cache_hits_total", "counter", "Lookups answered from the cache.", c.hits);
  p.single("userkey_backend_cache_misses_total", "counter",
           "Lookups not answered from the cache (absent or expired): asked the database or waited for a query "
           "already asking it.",
           c.misses);
  p.single("userkey_backend_cache_coalesced_total", "counter",
           "Cache misses answered by another lookup's database query for the same id.", c.coalesced);
  p.single("userkey_backend_cache_stale_total", "counter",
           "Expired keys answered because the database failed (stale-if-error).", c.stale);
  p.single("userkey_backend_cache_evictions_total", "counter", "Entries evicted to make room.", c.evictions);
  p.single("userkey_backend_cache_entries", "gauge", "Entries in the cache now.", c.size);
  p.single("userkey_backend_cache_capacity", "gauge", "Entries the cache holds at most.", c.capacity);
}

void render_database(Page& p, const DatabaseStats& d) {
  p.family("userkey_backend_db_errors_total", "counter", "Failed database operations, by kind.");
  for (std::size_t i = 0; i < d.errors.size(); ++i)
    p.sample("userkey_backend_db_errors_total",
             "kind=\"" + std::string(to_string(static_cast<DatabaseError>(i))) + "\"", d.errors[i]);
  p.single("userkey_backend_db_pool_in_use", "gauge", "Database clients checked out of the pool now.",
           d.pool_in_use);
  p.single("userkey_backend_db_pool_size", "gauge", "Database clients that can be checked out at once.",
           d.pool_size);
}

}  // namespace

std::string render_backend_metrics(const BackendMetrics& metrics, const RepositoryStats& repo) {
  Page p;
  p.raw(build_info_metrics());
  render_requests(p, metrics);
  render_lookups(p, metrics);
  if (repo.cache) render_cache(p, *repo.cache);
  if (repo.database) render_database(p, *repo.database);
  return p.take();
}

}  // namespace userkey
