// Config files for settings tables: TOML whose keys are the settings' keys,
// a dotted key being a key of a nested table ("health.rise" = `rise` under
// `[health]`). Each value is written in its kind's FileShape: strings,
// booleans, integers, numbers, durations as "250ms" or whole seconds, lists
// as arrays.
//
// Values are checked as they are read, with the kind's own parser, so a file
// and a flag reject the same values with the same words. Unknown keys, values
// of the wrong type and two settings that exclude each other are errors.
//
// Errors: ConfigError naming the source, the line when known and the key:
//   lb.toml:7: health.rise: must be between 1 and 1000, got 0
//   lb.toml:3: unknown key 'helth' (did you mean 'health'?)
//
// Thread-safety: plain functions over values.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "userkey/core/settings.hpp"

namespace userkey {

/// The settings `toml_text` gives, as text (apply them with
/// SettingsTable::apply()). `source` names the text in error messages.
SettingValues read_settings_toml(std::string_view toml_text, std::string_view source, const SettingList& settings);

/// The whole content of a config file; ConfigError "FILE: cannot open config
/// file" when it cannot be read.
std::string read_config_file(const std::filesystem::path& file);

}  // namespace userkey
