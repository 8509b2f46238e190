// Unit tests for lib/core/build_info.cpp: the version and commit of the
// build, the --version line and the userkey_build_info gauge.
#include <doctest/doctest.h>

#include <regex>
#include <string>

#include "support/prometheus_text.hpp"
#include "userkey/core/build_info.hpp"

TEST_CASE("the version is CMake's project version; the commit a git abbreviation or unknown") {
  CHECK(std::regex_match(std::string(userkey::build_version()), std::regex(R"(\d+\.\d+\.\d+)")));
  const std::string commit(userkey::build_commit());
  CAPTURE(commit);
  CHECK(std::regex_match(commit, std::regex(R"([A-Za-z0-9._+-]+)")));
}

TEST_CASE("--version's line: program, version, commit") {
  const std::string expected = "userkey-lb " + std::string(userkey::build_version()) + " (commit " +
                               std::string(userkey::build_commit()) + ")";
  CHECK(userkey::version_line("userkey-lb") == expected);
}

TEST_CASE("userkey_build_info: one gauge sample of 1 with version and commit labels, valid exposition") {
  const std::string text = userkey::build_info_metrics();
  const auto e = userkey::test::parse_exposition(text);
  CHECK_MESSAGE(e.errors.empty(), e.error_text());
  CHECK(e.types.at("userkey_build_info") == "gauge");
  const std::string labels = "version=\"" + std::string(userkey::build_version()) + "\",commit=\"" +
                             std::string(userkey::build_commit()) + "\"";
  CHECK(e.value("userkey_build_info", labels) == 1.0);
  CHECK(e.samples.size() == 1);
  CHECK(text.find("# HELP userkey_build_info ") == 0);
}
