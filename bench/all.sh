#!/usr/bin/env bash
# `make bench`: the project's scoreboard in one run, from a clean clone.
#
#   bench/all.sh            the full run (about 15-20 minutes on 2 cores):
#                           writes bench/results/DATE.json, docs/benchmarks.md,
#                           docs/benchmarks/*.svg and the README's headline
#   bench/all.sh --quick    a smoke test of the whole pipeline (~3 minutes:
#                           1 s per point, 1 round, fewer connection counts,
#                           1,000 idle connections); writes into bench/out/
#                           only, never into docs/ or bench/results/
#   bench/all.sh --out DIR  write everything into DIR instead
#
# Steps: install what is missing (Debian packages: wrk, nginx-light, haproxy, openssl,
# uWSGI + its python3 plugin, Flask, pymongo; the build deps and FerretDB via
# scripts/install-deps.sh), build the release binaries (cmake --preset
# release; USERKEY_BIN=DIR uses binaries already built there), then
#   1. bench/run.sh --threads 1 --idle N: userkey-lb, HAProxy, nginx at one
#      thread / worker each, memory per idle client connection first;
#   2. bench/run.sh --threads 2: the same at two each;
#   3. bench/tls.sh --threads 1: the three fronts terminating TLS with the same
#      certificate: full handshakes/s and keep-alive requests/s over TLS;
#   4. bench/stack.py: the whole stack against the seed's on one FerretDB,
#      and the backend alone (dump, MongoDB + cache, no cache, logs on/off,
#      a constant cpp-httplib server as the yardstick);
#   5. bench/streams.py: a 1 GiB download, 300 stalled uploads and WebSocket
#      echo through each front (time to first byte, RSS, messages/s);
# and bench/report.py collects the parts into one JSON and renders the report.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; shift ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--quick] [--out DIR]" >&2; exit 2 ;;
  esac
done
[ "${BENCH_QUICK:-0}" = 1 ] && quick=1
export PATH=$PATH:/usr/sbin:/usr/local/go/bin
started=$(date +%s)
log() { echo "bench: [$(($(date +%s) - started)) s] $*" >&2; }
stamp=$(date -u +%Y-%m-%dT%H%MZ)

if [ $quick -eq 1 ]; then
  duration=1s rounds=1 settle=0.2 front_conns="16 256" stack_conns="64" backend_conns="64" idle=1000 idle_load=1
  out=${out:-bench/out}
  results=$out/results-$stamp-quick.json
  md=$out/benchmarks.md
  svg=$out/benchmarks
  readme=""
else
  duration=5s rounds=3 settle=1 front_conns="16 64 256 1024" stack_conns="16 64 256" backend_conns="64"
  idle=10000 idle_load=5
  if [ -n "$out" ]; then
    results=$out/results-$stamp.json md=$out/benchmarks.md svg=$out/benchmarks readme=""
  else
    results=bench/results/$stamp.json md=docs/benchmarks.md svg=docs/benchmarks readme=README.md
  fi
fi
# BENCH_DURATION / BENCH_ROUNDS override the per-point time and rounds (the
# report records what was used).
# 10,000 idle connections, or as many as the file-descriptor limit lets
# HAProxy hold (it takes two per connection; 9,500 with a hard limit of 20,000).
fd_cap=$(( ($(ulimit -Hn) / 2 - 300) / 500 * 500 ))
if [ "$idle" -gt "$fd_cap" ]; then
  log "idle connections: $fd_cap, not $idle (ulimit -Hn $(ulimit -Hn); HAProxy needs 2 descriptors per connection)"
  idle=$fd_cap
fi
duration=${BENCH_DURATION:-$duration}
rounds=${BENCH_ROUNDS:-$rounds}
mkdir -p "$(dirname "$results")" "$svg"
parts=$(mktemp -d)
trap 'rm -rf "$parts"' EXIT

# --- what the run needs ------------------------------------------------------
if [ -z "${BENCH_NO_INSTALL:-}" ]; then
  USERKEY_NEED_FERRETDB=1 scripts/install-deps.sh
  want=(wrk haproxy openssl uwsgi-core uwsgi-plugin-python3 python3-flask python3-pymongo)
  command -v nginx >/dev/null || want+=(nginx-light)
  missing=()
  for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    log "installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

# --- the binaries --------------------------------------------------------------
if [ -n "${USERKEY_BIN:-}" ]; then
  bin=$USERKEY_BIN
else
  log "building the release binaries (cmake --preset release)"
  cmake --preset release >/dev/null
  cmake --build --preset release --target userkey-backend userkey-lb userkey-admin
  bin=build-release/apps
fi
export USERKEY_BIN=$bin

# --- the measurements ------------------------------------------------------------
commands=()
failed=()
run() {  # the command is recorded for the report, then run; a failed part is
         # reported at the end, the other parts still run and are rendered
  local shown="$*"
  commands+=("${shown//$parts/\$PARTS}")
  log "$*"
  "$@" || { log "FAILED: $*"; failed+=("$1 $2 $3"); }
}
run bench/run.sh --threads 1 --duration "$duration" --rounds "$rounds" --settle "$settle" --conns "$front_conns" \
  --idle "$idle" --idle-load "$idle_load" --json "$parts/fronts-1.json" >"$parts/fronts-1.md"
cat "$parts/fronts-1.md" >&2
run bench/run.sh --threads 2 --duration "$duration" --rounds "$rounds" --settle "$settle" --conns "$front_conns" \
  --json "$parts/fronts-2.json" >"$parts/fronts-2.md"
cat "$parts/fronts-2.md" >&2
run bench/tls.sh --threads 1 --duration "$duration" --rounds "$rounds" --settle "$settle" \
  --json "$parts/tls-1.json" >"$parts/tls-1.md"
cat "$parts/tls-1.md" >&2
run python3 bench/stack.py --bin "$bin" --duration "$duration" --rounds "$rounds" --settle "$settle" \
  --stack-conns "$stack_conns" --backend-conns "$backend_conns" --json "$parts/stack.json"
quick_streams=()
[ $quick -eq 1 ] && quick_streams=(--quick)
run python3 bench/streams.py --bin "$bin" "${quick_streams[@]}" --json "$parts/streams.json"

# --- the report ----------------------------------------------------------------------
elapsed=$(($(date +%s) - started))
report_cmd=(python3 bench/report.py collect --out "$results" --bin "$bin" --elapsed "$elapsed" --quick "$quick"
            --fronts)
for f in "$parts/fronts-1.json" "$parts/fronts-2.json"; do [ -f "$f" ] && report_cmd+=("$f"); done
[ -f "$parts/tls-1.json" ] && report_cmd+=(--tls "$parts/tls-1.json")
[ -f "$parts/stack.json" ] && report_cmd+=(--stack "$parts/stack.json")
[ -f "$parts/streams.json" ] && report_cmd+=(--streams "$parts/streams.json")
for c in "${commands[@]}"; do report_cmd+=(--command "$c"); done
"${report_cmd[@]}"
render=(python3 bench/report.py render "$results" --md "$md" --svg-dir "$svg")
[ -n "$readme" ] && [ ${#failed[@]} -eq 0 ] && render+=(--readme "$readme")
"${render[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  log "these parts failed (their sections are missing from the report): ${failed[*]}"
  exit 1
fi
log "done in $(($(date +%s) - started)) s: $results, $md"
