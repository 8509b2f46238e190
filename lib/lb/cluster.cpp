// The set of upstreams the loops route over: see cluster.hpp.
#include "cluster.hpp"

#include <spdlog/spdlog.h>

#include <stdexcept>

namespace userkey::lb::engine {

Cluster::Cluster(const ProxyConfig& config, PolicyRegistry registry, PolicyContext policy_context,
                 HostResolver resolver, std::shared_ptr<spdlog::logger> log)
    : registry_(std::move(registry)),
      policy_context_(policy_context),
      resolver_(resolver ? std::move(resolver) : HostResolver(system_resolve)),
      log_(std::move(log)),
      applied_(config),
      resolve_every_ms_(config.resolve_interval.count()) {
  install(build(config), config);
}

Cluster::~Cluster() { stop_reresolving(); }

std::shared_ptr<const Snapshot> Cluster::snapshot() const {
  std::lock_guard lock(mu_);
  return current_;
}

void Cluster::set_listener(SnapshotListener listener) {
  std::lock_guard rl(reload_mu_);
  listener_ = std::move(listener);
}

// ---------------------------------------------------------------------------
// Building and installing snapshots

std::shared_ptr<Snapshot> Cluster::build(const ProxyConfig& c) {
  if (c.upstreams.empty()) throw std::invalid_argument("no upstream configured");
  auto snap = std::make_shared<Snapshot>();
  std::string err;
  auto key = HashKeySpec::parse(c.hash_key, &err);
  if (!key) throw std::invalid_argument("bad hash key '" + c.hash_key + "': " + err);
  snap->hash_key = *key;
  std::shared_ptr<BalancingPolicy> policy = registry_.create(c.policy, policy_context_);
  if (!policy) {
    std::string names;
    for (auto& n : registry_.names()) names += (names.empty() ? "" : ", ") + n;
    throw std::invalid_argument("unknown policy '" + c.policy + "' (known: " + names + ")");
  }
  snap->policy = std::move(policy);
  snap->retries = c.retries;
  snap->active = c.active;
  snap->outlier = c.outlier;
  for (const auto& u : c.upstreams) {
    UpstreamEntry e;
    error_code ec;
    auto addr = asio::ip::make_address(u.host, ec);
    if (ec) {
      std::vector<std::string> found;
      try {
        found = resolver_(u.host, u.port);
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

// Binds upstream state to a snapshot (reusing the state of known addresses)
// and publishes it.
void Cluster::install(std::shared_ptr<Snapshot> snap, const ProxyConfig& c) {
  std::lock_guard lock(mu_);
  std::map<std::string, std::pair<std::shared_ptr<Upstream>, std::shared_ptr<UpstreamStats>>> next;
  for (std::size_t i = 0; i < snap->entries.size(); ++i) {
    const auto& ucfg = c.upstreams[i];
    auto it = known_.find(ucfg.address());
    std::shared_ptr<Upstream> up;
    std::shared_ptr<UpstreamStats> st;
    // Same settings: keep the live object (health state, in-flight count).
    // Changed weight, max_conns or passive health: a fresh one (its passive
    // state starts clean; metrics carry on).
    const auto* old = it != known_.end() ? it->second.first.get() : nullptr;
    // Where the live object was reached until now: a name that resolves
    // elsewhere is a different server (its pools and health start anew).
    bool moved = false;
    if (old && current_) {
      for (const auto& was : current_->entries)
        if (was.upstream.get() == old) moved = was.endpoint != snap->entries[i].endpoint;
    }
    if (old && moved) {
      log_->info("upstream {} now resolves to {} (was another address)", ucfg.address(),
                 snap->entries[i].endpoint.address().to_string());
    }
    if (old && !moved && old->config().weight == ucfg.weight && old->config().max_conns == ucfg.max_conns &&
        old->config().tls == ucfg.tls &&
        old->passive().max_fails == c.passive.max_fails && old->passive().fail_timeout == c.passive.fail_timeout) {
      up = it->second.first;
      st = it->second.second;
    } else {
      up = std::make_shared<Upstream>(ucfg, c.passive);
      st = it != known_.end() ? it->second.second : std::make_shared<UpstreamStats>();
    }
    if (!c.active.enabled) up->set_active_up(true);  // no checks will ever bring it back otherwise
    snap->entries[i].upstream = up;
    snap->entries[i].stats = st;
    snap->ptrs.push_back(up.get());
    next[ucfg.address()] = {up, st};
  }
  snap->policy->rebuild(snap->ptrs);
  snap->generation = generation_.load() + 1;
  known_ = std::move(next);
  current_ = std::move(snap);
  generation_.store(current_->generation, std::memory_order_release);
}

void Cluster::reload(const ProxyConfig& config) {
  bool changed_interval = false;
  {
    std::lock_guard rl(reload_mu_);
    auto snap = build(config);  // throws, leaving the old one in place
    install(std::move(snap), config);
    applied_ = config;
    if (listener_) listener_(snapshot());
    changed_interval = resolve_every_ms_.exchange(config.resolve_interval.count()) != config.resolve_interval.count();
  }
  if (changed_interval) {
    {
      std::lock_guard lk(resolver_mu_);
      resolver_kick_ = true;
    }
    resolver_cv_.notify_all();
  }
}

// ---------------------------------------------------------------------------
// Passive health under the ejection budget

FailureVerdict Cluster::report_failure(const Snapshot& snap, Upstream& up, TimePoint now) const {
  std::lock_guard lock(ejection_mu_);
  std::size_t out = 0;
  for (const Upstream* u : snap.ptrs) out += u != &up && u->passively_down(now) ? 1 : 0;
  return up.report_failure(now, out < max_ejections(snap.ptrs.size(), snap.outlier.max_ejection_percent));
}

// ---------------------------------------------------------------------------
// Re-resolution

// Resolves every name in `applied_` again; installs a new snapshot only when
// an address changed. A lookup that fails keeps what is known.
void Cluster::refresh_addresses() {
  std::lock_guard rl(reload_mu_);
  if (resolve_every_ms_.load() == 0) return;  // a reload turned lookups off meanwhile
  std::shared_ptr<Snapshot> next;
  try {
    next = build(applied_);
  } catch (const std::exception& e) {
    if (!resolve_failing_) log_->warn("re-resolving upstream names failed, keeping the known addresses: {}", e.what());
    resolve_failing_ = true;
    return;
  }
  if (resolve_failing_) log_->info("upstream names resolve again");
  resolve_failing_ = false;
  const auto now = snapshot();
  bool changed = next->entries.size() != now->entries.size();
  for (std::size_t i = 0; !changed && i < next->entries.size(); ++i)
    changed = next->entries[i].endpoint != now->entries[i].endpoint;
  if (!changed) return;
  install(std::move(next), applied_);
  if (listener_) listener_(snapshot());
}

void Cluster::resolver_loop() {
  std::unique_lock lk(resolver_mu_);
  for (;;) {
    const std::chrono::milliseconds every(resolve_every_ms_.load());
    const auto wait = every.count() > 0 ? every : std::chrono::milliseconds(3'600'000);
    if (resolver_cv_.wait_for(lk, wait, [&] { return resolver_stop_ || resolver_kick_; })) {
      if (resolver_stop_) return;
      resolver_kick_ = false;
      continue;
    }
    if (every.count() == 0) continue;
    lk.unlock();
    refresh_addresses();
    lk.lock();
  }
}

void Cluster::start_reresolving() { resolver_thread_ = std::thread([this] { resolver_loop(); }); }

void Cluster::stop_reresolving() {
  {
    std::lock_guard lk(resolver_mu_);
    resolver_stop_ = true;
  }
  resolver_cv_.notify_all();
  if (resolver_thread_.joinable()) resolver_thread_.join();
}

}  // namespace userkey::lb::engine
