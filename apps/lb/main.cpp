// userkey-lb: the HTTP load balancer in front of the userkey backends.
// Settings: built-in defaults < --config TOML file < USERKEY_LB_* environment
// < flags, merged by lb::build_proxy_config(). SIGHUP re-reads the file
// (flags still on top) and reloads upstreams, policy, health and retries;
// SIGTERM / SIGINT drain in-flight requests and exit.
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <userkey/lb/balancing_policy.hpp>
#include <userkey/lb/proxy_config_loader.hpp>
#include <userkey/lb/proxy_server.hpp>
#include <userkey/logging.hpp>
#include <userkey/signal_watcher.hpp>

#include "../cli_support.hpp"

namespace lb = userkey::lb;
namespace cli = userkey::apps;

namespace {

std::string url_host(const std::string& host) { return host.find(':') != std::string::npos ? "[" + host + "]" : host; }

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  userkey::SignalWatcher signals;  // first: every thread started later inherits the blocked signals
  const auto registry = lb::PolicyRegistry::with_builtins();
  const lb::ProxyConfig d;  // the defaults shown in --help

  CLI::App app{
      "userkey-lb: HTTP load balancer in front of the userkey backends.\n"
      "Settings: built-in defaults < --config FILE (TOML, see docker/lb.example.toml) < USERKEY_LB_* "
      "environment < flags. SIGHUP reloads the file; SIGTERM drains and exits."};
  app.get_formatter()->column_width(40);
  const std::string env = "USERKEY_LB_";
  auto add = [&](const std::string& name, auto& var, const std::string& help) {
    return cli::env_from_name(app.add_option(name, var, help), env);
  };

  std::string config, listen, admin, policy, hash_key, health_path, log_level;
  std::vector<std::string> upstreams, allow, deny;
  std::uint32_t retries = 0, threads = 0, max_fails = 0, rise = 0, fall = 0, max_conns_per_ip = 0, max_header_bytes = 0,
                queue_size = 0;
  std::uint64_t max_body_bytes = 0;
  double rate = 0, burst = 0;
  bool no_active_health = false, access_log = true;
  std::string fail_timeout, health_interval, health_timeout, header_timeout, idle_timeout, connect_timeout,
      upstream_timeout, upstream_idle_timeout, queue_timeout, drain_timeout, resolve_interval;

  auto* o_config = add("--config", config, "TOML config file; reread on SIGHUP")->check(CLI::ExistingFile);
  auto* o_listen = add("--listen", listen, "Address to serve on")
                       ->check(cli::host_port_validator())
                       ->default_str(d.listen_host + ":" + std::to_string(d.listen_port));
  auto* o_upstream = add("--upstream", upstreams,
                         "Backend, repeatable (space-separated in the environment); replaces the file's list")
                         ->check(cli::upstream_validator())
                         ->delimiter(' ');
  auto* o_policy = add("--policy", policy, "Balancing policy")
                       ->check(CLI::IsMember(registry.names()))
                       ->default_str(d.policy);
  auto* o_hash_key = add("--hash-key", hash_key, "What consistent_hash keys on")
                         ->check(cli::hash_key_validator())
                         ->default_str(d.hash_key);
  auto* o_retries = add("--retries", retries, "Extra attempts on another upstream for idempotent requests (0..10)")
                        ->default_str(std::to_string(d.retries));
  auto* o_threads = add("--threads", threads, "Event-loop threads; 0 = one per core, at most 4")
                        ->default_str(std::to_string(d.threads));
  auto* o_admin = add("--admin", admin, "Admin endpoint (/metrics, /status), or off")
                      ->check(cli::host_port_or_off_validator())
                      ->default_str(d.admin_host + ":" + std::to_string(d.admin_port));
  auto* o_max_fails = add("--max-fails", max_fails, "Passive health: failures within --fail-timeout that take an upstream out; 0 = off")
                          ->default_str(std::to_string(d.passive.max_fails));
  auto* o_fail_timeout = add("--fail-timeout", fail_timeout, "Passive health window and time out")
                             ->check(cli::duration_validator())
                             ->default_str(cli::duration_text(d.passive.fail_timeout));
  auto* o_health_path = add("--health-path", health_path, "Active health probe path")->default_str(d.active.path);
  auto* o_health_interval = add("--health-interval", health_interval, "Time between probes")
                                ->check(cli::duration_validator())
                                ->default_str(cli::duration_text(d.active.interval));
  auto* o_health_timeout = add("--health-timeout", health_timeout, "Probe timeout")
                               ->check(cli::duration_validator())
                               ->default_str(cli::duration_text(d.active.timeout));
  auto* o_rise = add("--rise", rise, "Good probes that bring an upstream back")->default_str(std::to_string(d.active.rise));
  auto* o_fall = add("--fall", fall, "Failed probes that take an upstream out")->default_str(std::to_string(d.active.fall));
  auto* o_no_active = cli::env_from_name(app.add_flag("--no-active-health", no_active_health, "Disable active health probes"), env);
  auto* o_rate = add("--rate", rate, "Requests per second per client IP; 0 = unlimited")->default_str(fmt::format("{}", d.limits.rate));
  auto* o_burst = add("--burst", burst, "Rate-limit burst; 0 = same as --rate")->default_str(fmt::format("{}", d.limits.burst));
  auto* o_max_conns_per_ip = add("--max-conns-per-ip", max_conns_per_ip, "Concurrent connections per client IP; 0 = unlimited")
                                 ->default_str(std::to_string(d.limits.max_conns_per_ip));
  auto* o_allow = add("--allow", allow, "Admit only these clients, repeatable; replaces the file's list")
                      ->check(cli::cidr_validator())
                      ->delimiter(',');
  auto* o_deny = add("--deny", deny, "Reject these clients (wins over --allow), repeatable; replaces the file's list")
                     ->check(cli::cidr_validator())
                     ->delimiter(',');
  auto* o_max_header_bytes = add("--max-header-bytes", max_header_bytes, "Request line + headers limit (431 beyond)")
                                 ->default_str(std::to_string(d.limits.max_header_bytes));
  auto* o_max_body_bytes = add("--max-body-bytes", max_body_bytes, "Request body limit (413 beyond)")
                               ->check(cli::non_negative_integer_validator())
                               ->default_str(std::to_string(d.limits.max_body_bytes));
  auto* o_header_timeout = add("--header-timeout", header_timeout, "Time to receive a request head")
                               ->check(cli::duration_validator())
                               ->default_str(cli::duration_text(d.limits.header_timeout));
  auto* o_idle_timeout = add("--idle-timeout", idle_timeout, "Idle keep-alive client connections are closed after")
                             ->check(cli::duration_validator())
                             ->default_str(cli::duration_text(d.limits.idle_timeout));
  auto* o_connect_timeout = add("--connect-timeout", connect_timeout, "Upstream connect timeout")
                                ->check(cli::duration_validator())
                                ->default_str(cli::duration_text(d.connect_timeout));
  auto* o_upstream_timeout = add("--upstream-timeout", upstream_timeout, "Time for an upstream to answer completely")
                                 ->check(cli::duration_validator())
                                 ->default_str(cli::duration_text(d.upstream_timeout));
  auto* o_upstream_idle_timeout =
      add("--upstream-idle-timeout", upstream_idle_timeout, "Pooled upstream connections idle longer are closed")
          ->check(cli::duration_validator())
          ->default_str(cli::duration_text(d.upstream_idle_timeout));
  auto* o_queue_size = add("--queue-size", queue_size, "Requests waiting for a slot at a max_conns upstream (per thread)")
                           ->default_str(std::to_string(d.queue_size));
  auto* o_queue_timeout = add("--queue-timeout", queue_timeout, "Longest wait in that queue (503 after)")
                              ->check(cli::duration_validator())
                              ->default_str(cli::duration_text(d.queue_timeout));
  auto* o_drain_timeout = add("--drain-timeout", drain_timeout, "SIGTERM: time in-flight requests get to finish")
                              ->check(cli::duration_validator())
                              ->default_str(cli::duration_text(d.drain_timeout));
  auto* o_resolve_interval =
      add("--resolve-interval", resolve_interval, "Upstream names are resolved again this often; 0 = at start and reload")
          ->check(cli::duration_validator())
          ->default_str(cli::duration_text(d.resolve_interval));
  auto* o_access_log = add("--access-log", access_log, "One log line per request (true/false)")
                           ->default_str(d.access_log ? "true" : "false");
  auto* o_log_level = add("--log-level", log_level, "Log level")
                          ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
                          ->default_str(d.log_level);
  if (auto rc = cli::parse_command_line(app, argc, argv)) return *rc;

  userkey::SettingValues ov;  // by the settings' file keys, parsed by the loader
  const std::pair<const char*, CLI::Option*> given[] = {
      {"listen", o_listen}, {"admin", o_admin}, {"upstreams", o_upstream}, {"policy", o_policy},
      {"hash_key", o_hash_key}, {"retries", o_retries}, {"threads", o_threads}, {"access_log", o_access_log},
      {"log_level", o_log_level}, {"connect_timeout", o_connect_timeout}, {"upstream_timeout", o_upstream_timeout},
      {"upstream_idle_timeout", o_upstream_idle_timeout}, {"queue_size", o_queue_size},
      {"queue_timeout", o_queue_timeout}, {"drain_timeout", o_drain_timeout}, {"resolve_interval", o_resolve_interval},
      {"health.max_fails", o_max_fails}, {"health.fail_timeout", o_fail_timeout}, {"health.path", o_health_path},
      {"health.interval", o_health_interval}, {"health.timeout", o_health_timeout}, {"health.rise", o_rise},
      {"health.fall", o_fall}, {"limits.rate", o_rate}, {"limits.burst", o_burst},
      {"limits.max_conns_per_ip", o_max_conns_per_ip}, {"limits.allow", o_allow}, {"limits.deny", o_deny},
      {"limits.max_header_bytes", o_max_header_bytes}, {"limits.max_body_bytes", o_max_body_bytes},
      {"limits.header_timeout", o_header_timeout}, {"limits.idle_timeout", o_idle_timeout}};
  for (const auto& [key, opt] : given)
    if (opt->count() > 0) ov.set_list(key, opt->results());
  if (o_no_active->count() > 0) ov.set("health.active", no_active_health ? "false" : "true");
  const std::optional<std::filesystem::path> file =
      o_config->count() > 0 ? std::optional<std::filesystem::path>(config) : std::nullopt;

  lb::ProxyConfig cfg;
  std::shared_ptr<spdlog::logger> log;
  std::unique_ptr<lb::ProxyServer> server;
  try {
    cfg = lb::build_proxy_config(file, ov);
    log = userkey::make_logger("lb", cfg.log_level, userkey::LogDelivery::async);
    server = std::make_unique<lb::ProxyServer>(cfg, registry, log);
  } catch (const std::exception& e) {  // ConfigError, or ProxyServer's invalid_argument (unknown policy)
    std::cerr << "userkey-lb: invalid configuration: " << e.what() << "\n";
    return 2;
  }
  std::string err;
  if (!server->start(&err)) {
    log->critical("cannot start: {}", err);
    return 1;
  }
  std::vector<std::string> addresses;
  for (const auto& u : cfg.upstreams) addresses.push_back(u.address());
  log->info("listening on http://{}:{}/ -> {} ({})", url_host(cfg.listen_host), server->port(), join(addresses),
            cfg.policy);
  if (!cfg.admin_host.empty())
    log->info("admin on http://{}:{}/metrics and /status", url_host(cfg.admin_host), server->admin_port());

  const lb::ProxyConfig started = cfg;  // what a reload cannot change stays as started
  for (;;) {
    const int sig = signals.wait();
    if (sig != SIGHUP) {
      log->info("signal {} received, draining in-flight requests (up to {} ms)", sig, started.drain_timeout.count());
      server->drain();
      log->info("stopped");
      return 0;
    }
    try {
      lb::ProxyConfig next = lb::build_proxy_config(file, ov);
      server->reload(next);
      cfg = std::move(next);
      log->info("SIGHUP: reloaded {}", file ? file->string() : std::string("(no config file; flags only)"));
      if (const auto pending = lb::settings_needing_restart(started, cfg); !pending.empty())
        log->warn("changed but applied only after a restart: {}", join(pending));
    } catch (const std::exception& e) {
      log->error("reload failed, keeping the running configuration: {}", e.what());
    }
  }
}
