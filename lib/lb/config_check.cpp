// userkey-lb --check-config. See userkey/lb/config_check.hpp.
//
// The checks that read files and resolve names are ProxyServer's own: its
// constructor is what a start runs them with, so a check builds one (with
// the access log off, since opening that file would create it, and a logger
// without sinks) and destroys it unstarted.
#include <utility>  // Boost 1.74: before asio headers under GCC 12

#include "userkey/lb/config_check.hpp"

#include <spdlog/logger.h>

#include <boost/asio/ip/address.hpp>

#include <memory>

#include "userkey/core/config_check.hpp"
#include "userkey/core/config_values.hpp"
#include "userkey/lb/proxy_config_loader.hpp"
#include "userkey/lb/proxy_settings.hpp"

namespace userkey::lb {

namespace {

bool is_ip(const std::string& host) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  return !ec;
}

std::string address_or_off(const std::string& host, std::uint16_t port) {
  return host.empty() ? std::string("off") : format_host_port({host, port});
}

}  // namespace

std::string check_proxy_config(const ProxyConfig& config, const PolicyRegistry& registry, HostResolver resolver) {
  if (!resolver) resolver = system_resolve;
  validate(config);  // again: a config built in code has not been through build_proxy_config()
  check_log_file("log_file", config.log_file);
  if (config.access_log) check_log_file("access_log_file", config.access_log_file);

  ProxyConfig quiet = config;
  quiet.access_log = false;
  quiet.access_log_file.clear();
  {
    const ProxyServer unstarted(std::move(quiet), registry, std::make_shared<spdlog::logger>("lb-check"), resolver);
  }

  if (!config.listen_host.empty() && !is_ip(config.listen_host))
    throw ConfigError("listen: '" + config.listen_host + "' is not an IP address");
  if (!config.tls.listen_host.empty() && !is_ip(config.tls.listen_host))
    throw ConfigError("tls.listen: '" + config.tls.listen_host + "' is not an IP address");
  if (!config.admin_host.empty() && !is_ip(config.admin_host)) {
    std::vector<std::string> found;
    try {
      found = resolver(config.admin_host, config.admin_port);
    } catch (...) {  // as the cluster does: a throwing resolver did not resolve
      found.clear();
    }
    if (found.empty()) throw ConfigError("admin: cannot resolve '" + config.admin_host + "'");
  }

  const auto n = config.upstreams.size();
  std::string out = std::to_string(n) + (n == 1 ? " upstream" : " upstreams");
  out += ", policy " + config.policy;
  out += ", listen " + address_or_off(config.listen_host, config.listen_port);
  out += config.tls.listen_host.empty() ? ", TLS off" : ", TLS on " + address_or_off(config.tls.listen_host,
                                                                                        config.tls.listen_port);
  out += ", admin " + address_or_off(config.admin_host, config.admin_port);
  return out;
}

std::string check_proxy_config(const std::optional<std::filesystem::path>& file, const SettingValues& overrides,
                               const PolicyRegistry& registry, HostResolver resolver) {
  return check_proxy_config(build_proxy_config(file, overrides), registry, std::move(resolver));
}

}  // namespace userkey::lb
