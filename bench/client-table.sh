#!/usr/bin/env bash
# The cost of a new client in the rate limiter's full table, before and after:
# builds bench/client-table.cpp twice, against the rate limiter and client
# table of git revision BASE (default b60f6dc, before their LRU order) and
# against the working tree, then runs the two alternately for ROUNDS rounds
# (default 3) and prints each run and the median of each side.
#
#   bench/client-table.sh [--base REV] [--rounds N] [-- ARGS for client-table]
#
# Both builds are g++ -O2 -DNDEBUG of the same four files (the bench,
# token_bucket.cpp, client_table.cpp, ip_filter.cpp) in a temporary folder;
# nothing else of the project is built. CPU-heavy: on the shared machine run it
# under `flock /tmp/userkey-build.lock`.
set -euo pipefail
base=b60f6dc rounds=3
while [ $# -gt 0 ]; do
  case $1 in
    --base) base=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

build() {  # build TREE OUT
  local tree=$1 out=$2
  g++ -std=c++20 -O2 -DNDEBUG -Wall -Wextra -Werror -pthread -I"$tree/include" -I"$tree/lib/lb" \
    bench/client-table.cpp "$tree/lib/lb/token_bucket.cpp" "$tree/lib/lb/client_table.cpp" \
    "$tree/lib/lb/ip_filter.cpp" -o "$out"
}

mkdir "$work/base"
git archive "$base" include lib/lb | tar -x -C "$work/base"
build "$work/base" "$work/before"
build . "$work/after"

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
: >"$work/before.ns"
: >"$work/after.ns"
for ((r = 1; r <= rounds; r++)); do
  for side in before after; do
    line=$("$work/$side" "$@")
    printf '%-6s round %d: %s\n' "$side" "$r" "$line"
    awk '{ print $2 }' <<<"$line" >>"$work/$side.ns"
  done
done
echo "median ns per new key: before ($base) $(median <"$work/before.ns"), after (working tree) $(median <"$work/after.ns")"
