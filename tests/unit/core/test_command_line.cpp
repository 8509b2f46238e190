// Unit tests for CommandLine: options made from a settings table, their
// environment fallbacks, --help, "was it given", and usage errors.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "userkey/core/command_line.hpp"
#include "unit/core/toy_settings.hpp"

using userkey::CommandLine;
using userkey::SettingValues;
using userkey::test::toy_table;

namespace {

// Sets (or, with nullptr, removes) an environment variable for one scope.
class ScopedEnv {
public:
  ScopedEnv(std::string name, const char* value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str())) old_ = old;
    if (value != nullptr) ::setenv(name_.c_str(), value, 1);
    else ::unsetenv(name_.c_str());
  }
  ~ScopedEnv() {
    if (old_) ::setenv(name_.c_str(), old_->c_str(), 1);
    else ::unsetenv(name_.c_str());
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

private:
  std::string name_;
  std::optional<std::string> old_;
};

struct Run {
  std::optional<int> rc;
  std::string out, err;
  SettingValues given;
  std::optional<std::string> file;
};

Run run(std::vector<std::string> args) {
  CommandLine cli("toy: a test program", 30);
  cli.add_file_option("--config", "TOY_CONFIG", "Config file");
  cli.add_settings(toy_table());
  args.insert(args.begin(), "toy");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  std::ostringstream out, err;
  Run r;
  r.rc = cli.parse(static_cast<int>(argv.size()), argv.data(), out, err);
  r.out = out.str();
  r.err = err.str();
  if (!r.rc) r.given = cli.given();
  r.file = cli.value("--config");
  return r;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("--help lists every flag with its type, default from the config struct, and environment name") {
  const auto r = run({"--help"});
  REQUIRE(r.rc == 0);
  for (const char* line : {"--config TEXT:FILE (Env:TOY_CONFIG)", "--name TEXT=toy (Env:TOY_NAME)",
                           "--listen TEXT:HOST:PORT=127.0.0.1:80 (Env:TOY_LISTEN)",
                           "--timeout TEXT:DURATION=1500ms (Env:TOY_TIMEOUT)", "--rate FLOAT=0.5 (Env:TOY_RATE)",
                           "--tag TEXT:{a,b,c} ... (Env:TOY_TAG)", "--rise UINT:INT in [1 - 10]=2 (Env:TOY_RISE)",
                           "--no-inner (Env:TOY_NO_INNER)", "--dump TEXT=dump (Env:TOY_DUMP) Excludes: --uri",
                           "--uri TEXT (Env:TOY_URI) Excludes: --dump", "Rise"}) {
    CAPTURE(line);
    CHECK(contains(r.out, line));
  }
}

TEST_CASE("given() holds what the command line set, as text by key") {
  const auto r = run({"--rise", "4", "--tag", "a", "--tag", "b c", "--no-inner", "--timeout=2s"});
  REQUIRE_FALSE(r.rc);
  SettingValues expected;
  expected.set("inner.rise", "4").set("inner.enabled", "false").set("timeout", "2s").set_list("tags", {"a", "b", "c"});
  CHECK(r.given == expected);
  CHECK_FALSE(r.file);
  CHECK(run({}).given.empty());
}

TEST_CASE("environment variables stand in for missing flags; a flag wins") {
  ScopedEnv rise("TOY_RISE", "3");
  ScopedEnv tags("TOY_TAG", "c a");
  ScopedEnv inner("TOY_NO_INNER", "false");
  ScopedEnv name("TOY_NAME", "from-env");
  const auto r = run({"--name", "from-flag"});
  REQUIRE_FALSE(r.rc);
  CHECK(*r.given.find("inner.rise") == std::vector<std::string>{"3"});
  CHECK(*r.given.find("tags") == std::vector<std::string>{"c", "a"});
  CHECK(*r.given.find("inner.enabled") == std::vector<std::string>{"true"});
  CHECK(*r.given.find("name") == std::vector<std::string>{"from-flag"});
  {
    ScopedEnv bad("TOY_RATE", "-2");
    const auto e = run({});
    CHECK(e.rc == 2);
    CHECK(contains(e.err, "TOY_RATE (--rate): must be a finite number >= 0"));
    // The flag given: its value is the one checked, the environment's ignored.
    CHECK_FALSE(run({"--rate", "1"}).rc);
    const auto f = run({"--rate=-3"});
    CHECK(f.rc == 2);
    CHECK(contains(f.err, "--rate: must be a finite number >= 0"));
    CHECK_FALSE(contains(f.err, "TOY_RATE"));
  }
}

TEST_CASE("a bad value from the environment names the variable, a list item or a file option's too") {
  {
    ScopedEnv bad("TOY_TAG", "a z");
    const auto r = run({});
    CHECK(r.rc == 2);
    CHECK(contains(r.err, "TOY_TAG (--tag): must be one of a, b, c; got 'z'"));
  }
  {
    ScopedEnv bad("TOY_CONFIG", "/no/such/file.toml");
    const auto r = run({});
    CHECK(r.rc == 2);
    CHECK(contains(r.err, "TOY_CONFIG (--config): "));
    CHECK(contains(r.err, "/no/such/file.toml"));
  }
}

TEST_CASE("--version prints its line and exits 0; an action flag is read with action()") {
  auto parse = [](std::vector<std::string> args, std::string& out) {
    CommandLine cli("toy: a test program", 30);
    cli.add_version("toy 1.2.3 (commit abc1234)");
    cli.add_action("--check-config", "Check and exit");
    cli.add_settings(toy_table());
    args.insert(args.begin(), "toy");
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    std::ostringstream o, e;
    const auto rc = cli.parse(static_cast<int>(argv.size()), argv.data(), o, e);
    out = o.str() + e.str();
    return std::pair{rc, rc ? false : cli.action("--check-config")};
  };
  std::string out;
  CHECK(parse({"--version"}, out).first == 0);
  CHECK(out == "toy 1.2.3 (commit abc1234)\n");
  CHECK(parse({"--check-config", "--rise", "3"}, out) == std::pair{std::optional<int>{}, true});
  CHECK(parse({"--rise", "3"}, out) == std::pair{std::optional<int>{}, false});
  CHECK(parse({"--help"}, out).first == 0);
  CHECK(contains(out, "--version"));
  CHECK(contains(out, "--check-config"));
  {
    ScopedEnv no_env("TOY_CHECK_CONFIG", "1");  // an action comes from the command line only
    CHECK(parse({}, out).second == false);
  }
}

TEST_CASE("bad values and usage errors exit 2 with the setting's own message") {
  auto r = run({"--rise", "0"});
  CHECK(r.rc == 2);
  CHECK(contains(r.err, "--rise: must be between 1 and 10, got 0"));
  r = run({"--listen", "nohost"});
  CHECK(r.rc == 2);
  CHECK(contains(r.err, "HOST:PORT"));
  r = run({"--tag", "a", "--tag", "z"});
  CHECK(r.rc == 2);
  CHECK(contains(r.err, "must be one of a, b, c; got 'z'"));
  CHECK(run({"--dump", "d", "--uri", "u"}).rc == 2);
  CHECK(run({"--bogus"}).rc == 2);
  CHECK(run({"--config", "/no/such/file.toml"}).rc == 2);
  const auto here = std::filesystem::temp_directory_path().string();
  CHECK(run({"--config", here}).rc == 2);  // a directory is not a file
}

TEST_CASE("a file option gives its value when given") {
  const auto self = std::filesystem::canonical("/proc/self/exe").string();
  const auto r = run({"--config", self});
  REQUIRE_FALSE(r.rc);
  CHECK(r.file == self);
  CHECK(r.given.empty());
}
