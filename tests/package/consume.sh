#!/usr/bin/env bash
# Install-and-consume test: installs the build into a temporary prefix, then
#  1. builds examples/ as a separate CMake project with
#     find_package(userkey CONFIG REQUIRED) and runs every example;
#  2. builds a tiny project that pulls userkey in with add_subdirectory, to
#     show userkey::userkey names the same target both ways.
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
#include <userkey/user_id.hpp>
int main() { return userkey::parse_user_id("42") == 42 ? 0 : 1; }
CPP
cmake -S "$work/subdir" -B "$work/subdir/build" "${gen[@]}" >/dev/null
cmake --build "$work/subdir/build" --target consumer
"$work/subdir/build/consumer"
echo "package consume: ok"
