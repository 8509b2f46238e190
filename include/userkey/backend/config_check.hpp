// `userkey-backend --check-config`: everything a start does with a
// configuration, short of listening and serving.
//
// Checked: the settings (flags and environment, as CommandLine gives them)
// applied and each one's rule; the log file can be opened for appending
// (check_log_file(): nothing is created or written); the store: the
// embedded dump's .bson file is found, opened and parsed whole (the users
// counted), or the MongoDB URI parses, with the credentials from
// mongo_user / mongo_pass when it has none. The MongoDB server is not
// contacted (the summary says so): a check passes while the database is
// down, as a start does (/readyz tells when it is up). Nothing listens, no
// thread is started, nothing is written.
//
// Errors: ConfigError naming the setting key ("dump: dump file X does not
// exist", "mongo_uri: invalid MongoDB URI (...)"). No message or summary
// holds a password: the URI is shown with it replaced by "****", and a URI
// that does not parse is never quoted.
//
// Thread-safety: plain functions (they read the environment through `env`).
#pragma once

#include <string>

#include "userkey/backend/backend_settings.hpp"
#include "userkey/backend/mongo_repository.hpp"
#include "userkey/core/settings.hpp"

namespace userkey {

/// Checks `config` (see above); returns the summary line's text, e.g.
/// "listen 127.0.0.1:5001, metrics on listen, store bson-file:dump/myusers/users.bson (7 users)".
std::string check_backend_config(const BackendConfig& config, const EnvLookup& env = {});

/// The whole check of the app: `given` (CommandLine::given()) applied to a
/// default BackendConfig, then the above.
std::string check_backend_config(const SettingValues& given, const EnvLookup& env = {});

}  // namespace userkey
