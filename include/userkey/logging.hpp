// The one logger set-up of the apps: a named spdlog logger writing to stderr.
#pragma once

#include <memory>
#include <string>

namespace spdlog {
class logger;
}

namespace userkey {

/// A logger called `name` writing to stderr at `level` ("trace", "debug",
/// "info", "warn", "error", "off"). Throws std::invalid_argument for an
/// unknown level. Not registered globally.
std::shared_ptr<spdlog::logger> make_logger(const std::string& name, const std::string& level = "info");

}  // namespace userkey
