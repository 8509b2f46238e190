#!/usr/bin/env bash
# Builds the libFuzzer targets (the fuzz preset: clang 14, ASan + UBSan) and
# runs each for SECONDS (default 60), one after another.
#   scripts/run-fuzzers.sh [SECONDS] [TARGET...]
# Each fuzzer starts from tests/fuzz/corpus/<target> plus what earlier runs
# found (kept in build-fuzz/corpus/, never committed). A crash fails the run
# and leaves its input in build-fuzz/crashes/: fix it and add that file to
# tests/fuzz/regressions/<target>/, where CTest replays it in every build.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=()
  for f in build-fuzz/tests/fuzz/fuzz_*; do [ -x "$f" ] && targets+=("${f##*/fuzz_}"); done
fi
mkdir -p build-fuzz/crashes
failed=()
for t in "${targets[@]}"; do
  corpus=build-fuzz/corpus/$t
  mkdir -p "$corpus"
  echo "== fuzz_$t for ${seconds}s"
  if ! build-fuzz/tests/fuzz/fuzz_"$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
       -print_final_stats=1 -artifact_prefix="build-fuzz/crashes/$t-" \
       "$corpus" tests/fuzz/corpus/"$t" 2>build-fuzz/fuzz_"$t".log; then
    failed+=("$t")
    tail -40 build-fuzz/fuzz_"$t".log
  else
    grep -E "^stat::(number_of_executed_units|new_units_added)|cov: " build-fuzz/fuzz_"$t".log | tail -3
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzers that found a crash: ${failed[*]} (inputs in build-fuzz/crashes/)" >&2
  exit 1
fi
echo "fuzzers: ${#targets[@]} targets, ${seconds}s each, no crash"
