// userkey-backend --check-config. See userkey/backend/config_check.hpp.
#include "userkey/backend/config_check.hpp"

#include <stdexcept>

#include "userkey/backend/repository_factory.hpp"
#include "userkey/core/config_check.hpp"
#include "userkey/core/config_values.hpp"

namespace userkey {

std::string check_backend_config(const BackendConfig& config, const EnvLookup& env) {
  backend_settings().check(config);
  check_log_file("log_file", config.log_file);

  const RepositoryOptions options = repository_options(config, env);
  const char* key = options.mongo ? "mongo_uri" : "dump";
  std::shared_ptr<UserRepository> store;
  try {
    store = make_repository(options);  // the dump read whole; MongoDB: the URI parsed, no connection
  } catch (const LoadError& e) {
    throw ConfigError(std::string(key) + ": " + e.what());
  } catch (const std::invalid_argument& e) {  // a URI that does not parse; the message never quotes it
    throw ConfigError(std::string(key) + ": " + e.what());
  }

  std::string out = "listen " + format_host_port({config.server.host, config.server.port});
  out += config.server.admin ? ", metrics on admin " + format_host_port(*config.server.admin) : ", metrics on listen";
  if (!config.name.empty()) out += ", name " + config.name;
  out += ", store " + store->describe();
  if (options.mongo) out += " (URI parsed; the server is not contacted by a check)";
  return out;
}

std::string check_backend_config(const SettingValues& given, const EnvLookup& env) {
  BackendConfig config;
  backend_settings().apply(config, given);
  return check_backend_config(config, env);
}

}  // namespace userkey
