// --check-config, the parts both apps share: checking a file a start would
// open for appending (a log file) without creating or changing it, and
// reporting the outcome the way every app does.
//
// A check loads the configuration as a start does and builds what a start
// builds from it, short of listening, starting threads or writing anything;
// each app's own check (lb::check_proxy_config, check_backend_config) says
// what it covers and returns a one-line summary.
//
// Thread-safety: plain functions.
#pragma once

#include <functional>
#include <iosfwd>
#include <string>
#include <string_view>

namespace userkey {

/// The exit code of a configuration a start (or --check-config) rejects.
inline constexpr int kInvalidConfigurationExit = 2;

/// Throws ConfigError "KEY: cannot open log file PATH: REASON" when a start
/// could not open `path` for appending: an existing file must open for
/// writing (it is opened and closed again, never written, not truncated);
/// a missing one needs a writable directory to be created in (nothing is
/// created). An empty path (stderr or stdout) is fine.
void check_log_file(std::string_view key, const std::string& path);

/// Runs `check`, which returns a summary or throws: prints
/// "PROGRAM: configuration OK (SUMMARY)" to `out` and returns 0, or
/// "PROGRAM: invalid configuration: WHAT" (the exception's message) to `err`
/// and returns kInvalidConfigurationExit.
int report_config_check(std::string_view program, const std::function<std::string()>& check, std::ostream& out,
                        std::ostream& err);

}  // namespace userkey
