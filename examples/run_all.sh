#!/usr/bin/env bash
# Runs every example in its self-checking mode against a build of examples/
# (cmake -S examples -B BUILD_DIR ...; cmake --build BUILD_DIR).
# Exits non-zero when any example fails or takes longer than 30 s.
# The examples only use 127.0.0.1 and kernel-chosen ports, and each one stops
# every server and thread it starts before it exits.
set -uo pipefail

if [[ $# -ne 1 || ! -d "$1" ]]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
build_dir=$1
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

failed=()
run() {
  local name=$1
  shift
  echo "=== $name $*"
  if timeout --kill-after=5 30 "$build_dir/$name" "$@"; then
    echo "=== $name: ok"
  else
    echo "=== $name: FAILED (exit $?)"
    failed+=("$name")
  fi
}

run embed_router --self-test
run custom_policy --self-test
run policy_lab --self-test
# The full report path too: default workload, CSV and SVG written.
run policy_lab --requests 5000 --csv "$scratch/lab.csv" --svg "$scratch/lab.svg"
if [[ ! -s "$scratch/lab.csv" || ! -s "$scratch/lab.svg" ]]; then
  echo "=== policy_lab: CSV or SVG missing"
  failed+=("policy_lab outputs")
fi

if ((${#failed[@]})); then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "all examples passed"
