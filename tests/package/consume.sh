#!/usr/bin/env bash
# Install-and-consume test: installs the build into a temporary prefix, then
#  1. builds examples/ as a separate CMake project with
#     find_package(userkey CONFIG REQUIRED) and runs every example;
#  2. builds a program that embeds only a balancing policy with
#     find_package(userkey COMPONENTS lb) on a machine view where
#     mongo-c-driver cannot be found, and checks it links no libmongoc;
#  3. builds the README's embedding snippets (the blocks marked
#     `<!-- snippet: NAME -->`: a CMakeLists.txt and the programs it builds)
#     exactly as they stand, warnings as errors;
#  4. builds and runs tests/package/lb_only, a ProxyServer serving one
#     request through to a tiny upstream, linking userkey::lb alone with
#     cpp-httplib (no pkg-config file) and mongo-c-driver unfindable, and checks that
#     no installed header includes Boost, cpp-httplib, mongo-c-driver or
#     OpenSSL;
#  5. builds a tiny project that pulls userkey in with add_subdirectory, to
#     show userkey::userkey names the same target both ways (through a core
#     header, <userkey/core/user_id.hpp>).
#   tests/package/consume.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)

echo "== install into $work/prefix"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
test -f "$work/prefix/lib/cmake/userkey/userkeyConfig.cmake"
test -f "$work/prefix/lib/cmake/userkey/userkeyConfigVersion.cmake"
test -x "$work/prefix/bin/userkey-backend"
test -x "$work/prefix/bin/userkey-lb"
test -x "$work/prefix/bin/userkey-admin"
test -f "$work/prefix/share/userkey/dump/myusers/users.bson"

echo "== examples/ against the installed package"
cmake -S "$src/examples" -B "$work/examples" "${gen[@]}" -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/examples"
"$src/examples/run_all.sh" "$work/examples"

echo "== userkey::lb alone: no mongo-c-driver in its link interface"
if grep -qi mongoc "$work/prefix/lib/cmake/userkey/userkey-lb-targets.cmake" \
   "$work/prefix/lib/cmake/userkey/userkey-core-targets.cmake"; then
  echo "userkey::lb or userkey::core names mongo-c-driver in its link interface" >&2
  exit 1
fi
mkdir -p "$work/policy_only"
cat >"$work/policy_only/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.22)
project(policy_only CXX)
set(CMAKE_CXX_STANDARD 20)
find_package(userkey CONFIG REQUIRED COMPONENTS lb)
if(TARGET userkey::backend)
  message(FATAL_ERROR "COMPONENTS lb loaded userkey::backend too")
endif()
add_executable(policy_only main.cpp)
target_link_libraries(policy_only PRIVATE userkey::lb)
CMAKE
cat >"$work/policy_only/main.cpp" <<'CPP'
// Embeds only a balancing policy: three upstreams, round_robin, six choices.
#include <userkey/lb/balancing_policy.hpp>

#include <array>
#include <cstdio>
#include <memory>
#include <vector>

int main() {
  namespace lb = userkey::lb;
  lb::SplitMixRandom random;
  lb::SystemTimeSource clock;
  auto policy = lb::PolicyRegistry::with_builtins().create("round_robin", {&random, &clock});
  std::vector<std::unique_ptr<lb::Upstream>> owned;
  std::vector<lb::Upstream*> all;
  for (const char* spec : {"127.0.0.1:5001", "127.0.0.1:5002", "127.0.0.1:5003"}) {
    owned.push_back(std::make_unique<lb::Upstream>(*lb::parse_upstream(spec), lb::PassiveHealthConfig{}));
    all.push_back(owned.back().get());
  }
  policy->rebuild(all);
  const std::array<bool, 3> eligible{true, true, true};
  std::array<int, 3> hits{};
  for (int i = 0; i < 6; ++i) ++hits[*policy->choose(lb::Candidates(all, eligible), lb::RequestInfo{})];
  std::printf("%d %d %d\n", hits[0], hits[1], hits[2]);
  return hits == std::array<int, 3>{2, 2, 2} ? 0 : 1;
}
CPP
# mongo-c-driver made unfindable: the lb part must not ask for it.
cmake -S "$work/policy_only" -B "$work/policy_only/build" "${gen[@]}" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_DISABLE_FIND_PACKAGE_mongoc-1.0=ON -DCMAKE_DISABLE_FIND_PACKAGE_bson-1.0=ON --no-warn-unused-cli >/dev/null
cmake --build "$work/policy_only/build"
"$work/policy_only/build/policy_only"
if ldd "$work/policy_only/build/policy_only" | grep -q mongoc; then
  echo "policy_only links libmongoc" >&2
  exit 1
fi

echo "== the README's embedding snippets against the installed package"
python3 "$src/tests/package/readme_snippets.py" "$src/README.md" "$work/readme" \
  --require CMakeLists.txt my_router.cpp my_proxy.cpp
cmake -S "$work/readme" -B "$work/readme/build" "${gen[@]}" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_CXX_FLAGS="-Wall -Wextra -Werror" >/dev/null
cmake --build "$work/readme/build"
if ldd "$work/readme/build/my_proxy" | grep -E -q 'mongoc|httplib'; then
  echo "the README's my_proxy (userkey::lb alone) links mongo-c-driver or cpp-httplib" >&2
  exit 1
fi

echo "== userkey::lb alone runs a ProxyServer, without cpp-httplib or mongo-c-driver"
if grep -rE '^#\s*include\s*<(boost/|httplib|mongoc|bson|openssl/)' "$work/prefix/include/userkey"; then
  echo "an installed header includes a dependency a consumer would then need" >&2
  exit 1
fi
# pkg-config sees no .pc file at all (so no cpp-httplib; FindOpenSSL falls
# back to its own search), and mongo-c-driver's CMake packages are disabled.
mkdir -p "$work/no-pc"
PKG_CONFIG_LIBDIR="$work/no-pc" PKG_CONFIG_PATH="" \
  cmake -S "$src/tests/package/lb_only" -B "$work/lb_only" "${gen[@]}" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_DISABLE_FIND_PACKAGE_mongoc-1.0=ON -DCMAKE_DISABLE_FIND_PACKAGE_bson-1.0=ON --no-warn-unused-cli >/dev/null
cmake --build "$work/lb_only"
timeout --kill-after=5 30 "$work/lb_only/lb_only"
if ldd "$work/lb_only/lb_only" | grep -E -q 'mongoc|httplib'; then
  echo "lb_only links mongo-c-driver or cpp-httplib" >&2
  exit 1
fi

echo "== add_subdirectory consumer"
mkdir -p "$work/subdir"
cat >"$work/subdir/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.22)
project(subdir_consumer CXX)
set(USERKEY_BUILD_APPS OFF CACHE BOOL "" FORCE)
set(USERKEY_BUILD_TESTS OFF CACHE BOOL "" FORCE)
add_subdirectory("$src" userkey)
add_executable(consumer main.cpp)
target_link_libraries(consumer PRIVATE userkey::userkey)
CMAKE
cat >"$work/subdir/main.cpp" <<'CPP'
#include <userkey/core/user_id.hpp>
int main() { return userkey::parse_user_id("42") == 42 ? 0 : 1; }
CPP
cmake -S "$work/subdir" -B "$work/subdir/build" "${gen[@]}" >/dev/null
cmake --build "$work/subdir/build" --target consumer
"$work/subdir/build/consumer"
echo "package consume: ok"
