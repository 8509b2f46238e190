// SettingValues, SettingList and the table's untyped helpers. See
// userkey/core/settings.hpp.
#include "userkey/core/settings.hpp"

#include <algorithm>
#include <cctype>

namespace userkey {

SettingValues& SettingValues::set(std::string key, std::string text) {
  map_[std::move(key)] = {std::move(text)};
  return *this;
}

SettingValues& SettingValues::set_list(std::string key, std::vector<std::string> items) {
  map_[std::move(key)] = std::move(items);
  return *this;
}

const std::vector<std::string>* SettingValues::find(std::string_view key) const {
  auto it = map_.find(key);
  return it == map_.end() ? nullptr : &it->second;
}

void SettingValues::update(const SettingValues& top) {
  for (const auto& [key, texts] : top) map_[key] = texts;
}

std::string SettingList::env_for(std::string_view flag) const {
  while (!flag.empty() && flag.front() == '-') flag.remove_prefix(1);
  std::string name = env_prefix_;
  for (char c : flag) name += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

const Setting* SettingList::find(std::string_view key) const {
  auto it = std::find_if(items_.begin(), items_.end(), [&](const Setting& s) { return s.key() == key; });
  return it == items_.end() ? nullptr : &*it;
}

namespace detail {

void throw_keyed(const std::string& key, const ValueError& e) { throw ConfigError(key + ": " + e.what()); }

void check_new_setting(const SettingList& list, const SettingInfo& info) {
  auto fail = [&](const std::string& what) { throw std::logic_error("setting '" + info.key + "': " + what); };
  if (info.key.empty()) fail("empty key");
  if (!info.flag.empty() && info.flag.rfind("--", 0) != 0) fail("flag must start with --");
  const std::string env = info.flag.empty() ? std::string() : list.env_for(info.flag);
  for (const auto& s : list) {
    if (s.key() == info.key) fail("declared twice");
    if (!info.flag.empty() && s.flag() == info.flag) fail("flag " + info.flag + " is also " + s.key() + "'s");
    if (!env.empty() && s.env() == env) fail("environment name " + env + " is also " + s.key() + "'s");
  }
}

}  // namespace detail

}  // namespace userkey
