// userkey-lb: the HTTP load balancer in front of the userkey backends.
// Every setting is declared once, in lb::proxy_settings(); this file only
// wires: the command line made from that table (with --version and
// --check-config, lb::check_proxy_config()), build_proxy_config()
// (defaults < --config TOML file < USERKEY_LB_* environment < flags), the
// ProxyServer, and the library's signal loop (SIGHUP re-reads the file, flags
// still on top, and reloads what reload() applies; SIGUSR1 reopens the log
// files; SIGTERM / SIGINT / SIGQUIT drain; SIGUSR2, SIGWINCH, SIGTTIN and
// SIGTTOU are logged and ignored).
#include <spdlog/spdlog.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <userkey/core/build_info.hpp>
#include <userkey/core/command_line.hpp>
#include <userkey/core/config_check.hpp>
#include <userkey/core/signal_loop.hpp>
#include <userkey/lb/balancing_policy.hpp>
#include <userkey/lb/config_check.hpp>
#include <userkey/lb/proxy_config_loader.hpp>
#include <userkey/lb/proxy_server.hpp>
#include <userkey/core/logging.hpp>
#include <userkey/core/signal_watcher.hpp>

namespace lb = userkey::lb;

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
  const auto settings = lb::proxy_settings(registry.names());

  userkey::CommandLine cli(
      "userkey-lb: HTTP load balancer in front of the userkey backends.\n"
      "Settings: built-in defaults < --config FILE (TOML, see docker/lb.example.toml) < USERKEY_LB_* "
      "environment < flags. SIGHUP reloads the file; SIGUSR1 reopens the log files; SIGTERM, SIGINT or SIGQUIT "
      "drains and exits.",
      40);
  cli.add_version(userkey::version_line("userkey-lb"));
  cli.add_action("--check-config",
                 "Load the configuration as a start does (file, environment, flags, TLS files, upstream names), "
                 "print a summary and exit 0, or the first error and exit 2; nothing listens");
  cli.add_file_option("--config", settings.settings().env_for("--config"), "TOML config file; reread on SIGHUP");
  cli.add_settings(settings);
  if (auto rc = cli.parse(argc, argv)) return *rc;
  const userkey::SettingValues given = cli.given();
  const auto config_file = cli.value("--config");
  const std::optional<std::filesystem::path> file =
      config_file ? std::optional<std::filesystem::path>(*config_file) : std::nullopt;
  if (cli.action("--check-config"))
    return userkey::report_config_check(
        "userkey-lb", [&] { return lb::check_proxy_config(file, given, registry); }, std::cout, std::cerr);

  lb::ProxyConfig cfg;
  std::shared_ptr<spdlog::logger> log;
  std::unique_ptr<lb::ProxyServer> server;
  try {
    cfg = lb::build_proxy_config(file, given);
    log = userkey::make_logger("lb", cfg.log_level, userkey::LogDelivery::async, cfg.log_file);
    server = std::make_unique<lb::ProxyServer>(cfg, registry, log);
  } catch (const std::exception& e) {  // ConfigError (also unusable TLS files), ProxyServer's invalid_argument,
                                       // or a log file that cannot be opened (system_error)
    std::cerr << "userkey-lb: invalid configuration: " << e.what() << "\n";
    return userkey::kInvalidConfigurationExit;
  }
  std::string err;
  if (!server->start(&err)) {
    log->critical("cannot start: {}", err);
    return 1;
  }
  std::vector<std::string> addresses;
  for (const auto& u : cfg.upstreams) addresses.push_back(u.address());
  if (!cfg.listen_host.empty())
    log->info("listening on http://{}:{}/ -> {} ({})", url_host(cfg.listen_host), server->port(), join(addresses),
              cfg.policy);
  if (!cfg.tls.listen_host.empty())
    log->info("listening on https://{}:{}/ (certificate {}) -> {} ({})", url_host(cfg.tls.listen_host),
              server->tls_port(), cfg.tls.cert_file, join(addresses), cfg.policy);
  if (!cfg.admin_host.empty())
    log->info("admin on http://{}:{}/metrics and /status", url_host(cfg.admin_host), server->admin_port());

  const lb::ProxyConfig started = cfg;  // what a reload cannot change stays as started
  userkey::run_signal_loop(
      signals,
      {.reload =
           [&] {
             try {
               lb::ProxyConfig next = lb::build_proxy_config(file, given);
               server->reload(next);
               cfg = std::move(next);
               log->info("SIGHUP: reloaded {}", file ? file->string() : std::string("(no config file; flags only)"));
               if (const auto pending = lb::settings_needing_restart(started, cfg); !pending.empty())
                 log->warn("changed but applied only after a restart: {}", join(pending));
             } catch (const std::exception& e) {
               log->error("reload failed, keeping the running configuration: {}", e.what());
             }
           },
       .reopen_logs =
           [&] {
             std::string reopen_error;
             if (server->reopen_logs(&reopen_error)) log->info("SIGUSR1: log files reopened");
             else log->error("SIGUSR1: {}; writing on to the old file", reopen_error);
           },
       .stop =
           [&](int sig) {
             log->info("{} received, draining in-flight requests (up to {} ms)", userkey::signal_name(sig),
                       started.drain_timeout.count());
             server->drain();
             log->info("stopped");
           },
       .ignored =
           [&](int sig) {
             log->warn("{} ignored: userkey-lb gives it no meaning (SIGTERM, SIGINT or SIGQUIT drain and stop)",
                       userkey::signal_name(sig));
           }});
  return 0;
}
