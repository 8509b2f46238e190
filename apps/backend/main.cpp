// userkey-backend: serves the `/` contract for one backend.
// Every setting is declared once, in userkey::backend_settings(); this file
// only wires: command line (flags win over USERKEY_* environment; --version,
// and --check-config: userkey::check_backend_config()) ->
// repository -> Router -> BackendServer, with the library's signal loop on a
// thread of its own: SIGINT / SIGTERM / SIGQUIT stop the server gracefully,
// SIGUSR1 reopens the log file, SIGHUP, SIGUSR2, SIGWINCH, SIGTTIN and
// SIGTTOU are logged and ignored.
#include <spdlog/spdlog.h>

#include <iostream>

#include <userkey/backend/backend_server.hpp>
#include <userkey/backend/backend_settings.hpp>
#include <userkey/backend/config_check.hpp>
#include <userkey/core/build_info.hpp>
#include <userkey/core/command_line.hpp>
#include <userkey/core/config_check.hpp>
#include <userkey/core/signal_loop.hpp>
#include <userkey/core/logging.hpp>
#include <userkey/backend/repository_factory.hpp>
#include <userkey/core/signal_watcher.hpp>

int main(int argc, char** argv) {
  userkey::SignalWatcher signals;
  const auto& settings = userkey::backend_settings();
  userkey::CommandLine cli(
      "userkey-backend: answers GET /?user_id=N with that user's key, from a mongodump file or MongoDB.", 34);
  cli.add_version(userkey::version_line("userkey-backend"));
  cli.add_action("--check-config",
                 "Load the configuration as a start does (flags, environment, the dump or the MongoDB URI, without "
                 "contacting the server), print a summary and exit 0, or the first error and exit 2; nothing listens");
  cli.add_settings(settings);
  if (auto rc = cli.parse(argc, argv)) return *rc;
  if (cli.action("--check-config"))
    return userkey::report_config_check(
        "userkey-backend", [&] { return userkey::check_backend_config(cli.given()); }, std::cout, std::cerr);

  userkey::BackendConfig cfg;
  std::shared_ptr<spdlog::logger> log;
  try {
    settings.apply(cfg, cli.given());
    log = userkey::make_logger("backend", cfg.log_level, userkey::LogDelivery::async, cfg.log_file);
  } catch (const std::exception& e) {
    std::cerr << "userkey-backend: " << e.what() << "\n";
    return userkey::kInvalidConfigurationExit;
  }

  // Every keep-alive client holds a descriptor: run with the hard limit.
  std::string nofile_error;
  const auto nofile = userkey::raise_open_file_limit(&nofile_error);
  if (nofile_error.empty()) log->info("open files limit {}", nofile);
  else log->warn("open files limit stays {}: {}", nofile, nofile_error);

  std::shared_ptr<userkey::UserRepository> repo;
  try {
    repo = userkey::make_repository(userkey::repository_options(cfg));
  } catch (const std::exception& e) {
    log->critical("cannot start: {}", e.what());
    return 1;
  }

  userkey::BackendServer server(userkey::server_config(cfg), log);
  std::string err;
  if (!server.bind(&err)) {
    log->critical("{}", err);
    return 1;
  }
  const std::string name = cfg.name.empty() ? "backend-" + std::to_string(server.port()) : cfg.name;
  auto router = std::make_shared<userkey::Router>(repo, userkey::BackendIdentity{name, server.port()}, log);
  log->info("{} serving http://{}:{}/ from {}", name, cfg.server.host, server.port(), repo->describe());
  if (cfg.server.admin) log->info("metrics on http://{}:{}/metrics", cfg.server.admin->host, server.admin_port());

  userkey::SignalLoopThread signal_loop(
      signals, {.reload = [&] { log->info("SIGHUP ignored (nothing to reload)"); },
                .reopen_logs =
                    [&] {
                      std::string reopen_error;
                      if (userkey::reopen_log_files(*log, &reopen_error)) log->info("SIGUSR1: log file reopened");
                      else log->error("SIGUSR1: {}; writing on to the old file", reopen_error);
                    },
                .stop =
                    [&](int sig) {
                      log->info("{} received, finishing in-flight requests", userkey::signal_name(sig));
                      server.stop();
                    },
                .ignored =
                    [&](int sig) {
                      log->warn("{} ignored: userkey-backend gives it no meaning (SIGTERM, SIGINT or SIGQUIT stop)",
                                userkey::signal_name(sig));
                    }});
  const bool served = server.run(router);
  signal_loop.cancel();  // run() failed: no signal will come to end the loop
  if (!served) {
    log->critical("{} stopped: the server failed", name);
    return 1;
  }
  log->info("{} stopped", name);
  return 0;
}
