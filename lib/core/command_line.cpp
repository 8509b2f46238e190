// CommandLine on CLI11. See userkey/core/command_line.hpp.
#include "userkey/core/command_line.hpp"

#include <CLI/CLI.hpp>

#include <deque>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <string_view>

namespace userkey {

namespace {

// One option made from a setting, and where CLI11 puts its value.
struct Bound {
  explicit Bound(const Setting& s) : setting(s) {}
  Setting setting;
  CLI::Option* option = nullptr;
  std::string scalar;
  std::vector<std::string> list;
  bool flag_value = false;
};

std::string joined(const std::vector<std::string>& items, char delimiter) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : std::string(1, delimiter)) + item;
  return out;
}

// Whether argv names `flag` ("--flag VALUE" or "--flag=VALUE"): CLI11 takes
// neither abbreviations nor positionals here, so a value it rejected that
// argv does not name came from the environment.
bool named_in(int argc, const char* const* argv, const std::string& flag) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg(argv[i]);
    if (arg == flag || (arg.size() > flag.size() && arg.starts_with(flag) && arg[flag.size()] == '=')) return true;
  }
  return false;
}

}  // namespace

struct CommandLine::Impl {
  explicit Impl(std::string description) : app(std::move(description)) {}
  CLI::App app;
  std::deque<Bound> bound;  // a deque: CLI11 keeps pointers into the entries
  std::map<std::string, std::pair<CLI::Option*, std::string>> files;
  std::map<std::string, CLI::Option*> actions;

  // The value a validator rejected last (CLI11 stops at the first), so the
  // message can name the environment variable it came from.
  struct Rejected {
    std::string flag, env, what;
  };
  std::optional<Rejected> rejected;

  // `check` with the rejection remembered.
  CLI::Validator remembering(std::string flag, std::string env, std::function<std::string(std::string&)> check,
                             std::string description) {
    return CLI::Validator(
        [this, flag = std::move(flag), env = std::move(env), check = std::move(check)](std::string& text) {
          std::string what = check(text);
          if (!what.empty()) rejected = Rejected{flag, env, what};
          return what;
        },
        std::move(description));
  }

  CLI::Option* option_of(const std::string& key) {
    for (auto& b : bound)
      if (b.setting.key() == key) return b.option;
    return nullptr;
  }
};

CommandLine::CommandLine(std::string description, std::size_t column_width)
    : impl_(std::make_unique<Impl>(std::move(description))) {
  impl_->app.get_formatter()->column_width(column_width);
}

CommandLine::~CommandLine() = default;

void CommandLine::add_file_option(const std::string& flag, const std::string& env, const std::string& help) {
  auto& [option, value] = impl_->files[flag];
  option = impl_->app.add_option(flag, value, help)->check(
      impl_->remembering(flag, env, [](std::string& text) { return CLI::ExistingFile(text); }, "FILE"));
  if (!env.empty()) option->envname(env);
}

void CommandLine::add_version(std::string line) {
  impl_->app.set_version_flag("--version", std::move(line), "Print the version and the commit built from, and exit");
}

void CommandLine::add_action(const std::string& flag, const std::string& help) {
  impl_->actions[flag] = impl_->app.add_flag(flag, help);
}

void CommandLine::add_settings(const SettingList& settings, const SettingValues& defaults) {
  auto& app = impl_->app;
  for (const auto& s : settings) {
    if (s.flag().empty()) continue;
    Bound& b = impl_->bound.emplace_back(s);
    const Setting* setting = &b.setting;
    if (s.info().negating_flag) {
      b.option = app.add_flag(s.flag(), b.flag_value, s.help());
    } else {
      b.option = s.is_list() ? app.add_option(s.flag(), b.list, s.help())->delimiter(s.info().delimiter)
                             : app.add_option(s.flag(), b.scalar, s.help());
      b.option->type_name(s.type_name());
      b.option->check(impl_->remembering(
          s.flag(), s.env(),
          [setting](std::string& text) -> std::string {
            try {
              setting->check_text(text);
              return {};
            } catch (const ValueError& e) {
              return e.what();
            }
          },
          ""));
      if (const auto* d = defaults.find(s.key()); d != nullptr && !d->empty())
        b.option->default_str(joined(*d, s.info().delimiter));
    }
    if (!s.env().empty()) b.option->envname(s.env());
  }
  for (auto& b : impl_->bound)
    for (const auto& other : b.setting.info().excludes)
      if (CLI::Option* o = impl_->option_of(other); o != nullptr && !b.option->get_excludes().count(o))
        b.option->excludes(o);
}

std::optional<int> CommandLine::parse(int argc, const char* const* argv) { return parse(argc, argv, std::cout, std::cerr); }

std::optional<int> CommandLine::parse(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  impl_->rejected.reset();
  try {
    impl_->app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const auto& r = impl_->rejected;
    if (dynamic_cast<const CLI::ValidationError*>(&e) != nullptr && r && !r->env.empty() &&
        !named_in(argc, argv, r->flag)) {
      err << r->env << " (" << r->flag << "): " << r->what << "\nRun with --help for more information.\n";
      return 2;
    }
    return impl_->app.exit(e, out, err) == 0 ? 0 : 2;
  }
  return std::nullopt;
}

SettingValues CommandLine::given() const {
  SettingValues out;
  for (const auto& b : impl_->bound) {
    if (b.option->count() == 0) continue;
    if (b.setting.info().negating_flag) out.set(b.setting.key(), b.flag_value ? "false" : "true");
    else if (b.setting.is_list()) out.set_list(b.setting.key(), b.list);
    else out.set(b.setting.key(), b.scalar);
  }
  return out;
}

bool CommandLine::action(const std::string& flag) const {
  auto it = impl_->actions.find(flag);
  return it != impl_->actions.end() && it->second->count() > 0;
}

std::optional<std::string> CommandLine::value(const std::string& flag) const {
  auto it = impl_->files.find(flag);
  if (it == impl_->files.end() || it->second.first->count() == 0) return std::nullopt;
  return it->second.second;
}

std::string CommandLine::help() const { return impl_->app.help(); }

}  // namespace userkey
