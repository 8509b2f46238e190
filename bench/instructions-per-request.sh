#!/usr/bin/env bash
# Instructions the lb executes per proxied request, counted by callgrind: a
# figure that does not move with the load of a shared machine, so two builds
# can be compared on the same day without interleaved rounds.
#
#   bench/instructions-per-request.sh [BIN_DIR] [SECONDS]
#
# Starts three embedded-dump backends and userkey-lb (under callgrind, with
# instrumentation switched on only while the load runs) on free loopback
# ports, drives it with wrk (16 keep-alive connections, GET /?user_id=1) for
# SECONDS, and prints the instructions per request wrk got answered. Needs
# valgrind and wrk.
set -euo pipefail
bin=${1:-build/apps}
seconds=${2:-10}
cd "$(dirname "$0")/.."
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; [ -n "${KEEP_WORK:-}" ] && echo "kept $work" >&2 || rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 300); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }

ups=()
for i in 1 2 3; do
  p=$(free_port)
  "$bin/userkey-backend" --listen "127.0.0.1:$p" --dump dump --access-log false --log-level warn >"$work/b$i.log" 2>&1 &
  pids+=($!)
  ups+=(--upstream "127.0.0.1:$p")
  wait_port "$p"
done
lb_port=$(free_port)
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/cg.out" \
  "$bin/userkey-lb" --listen "127.0.0.1:$lb_port" --admin off --access-log false --log-level warn \
  --no-active-health "${ups[@]}" >"$work/lb.log" 2>&1 &
lb=$!
pids+=($lb)
wait_port "$lb_port"
curl -fsS "http://127.0.0.1:$lb_port/?user_id=1" >/dev/null   # warm: pools, first-use paths
callgrind_control -i on "$lb" >/dev/null
out=$(wrk -t1 -c16 -d"${seconds}s" "http://127.0.0.1:$lb_port/?user_id=1" 2>&1)
callgrind_control -i off "$lb" >/dev/null
done_requests=$(awk '/requests in/ {print $1}' <<<"$out")
kill -TERM "$lb"; wait "$lb" 2>/dev/null || true
total=$(awk '/^totals:/ {print $2; exit}' "$work/cg.out")
[ -n "$total" ] && [ "$total" -gt 0 ] || { echo "no instruction count in callgrind's output" >&2; exit 1; }
echo "requests $done_requests"
echo "instructions_total $total"
echo "instructions_per_request $(( total / done_requests ))"
