#!/usr/bin/env bash
# Where a front's time per proxied request goes, userkey-lb beside HAProxy:
# system calls per request by name (perf's syscall tracepoints), CPU per
# request and context switches per request (perf stat), and, with --record,
# a `perf record -g` of each front for `perf report`.
#
#   bench/syscalls-per-request.sh [--bin DIR] [--conns 64] [--threads 1]
#                                 [--duration 5] [--rounds 2] [--record DIR]
#
# Same set-up as bench/run.sh (three embedded-dump backends, 64 connections
# per upstream, access logs off; HAProxy's configuration from
# bench/fronts.sh), on free loopback ports. wrk -t2 drives one front at a
# time, rounds alternate the fronts. The tracepoints slow the traced process
# down, so the per-name counts come from a separate pass from the CPU
# figures. Needs perf, wrk and haproxy. A profile, not a scoreboard: `make
# bench` is that.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${USERKEY_BIN:-build-release/apps}
conns=64 threads=1 duration=5 rounds=2 record=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin=$2; shift 2 ;;
    --conns) conns=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --record) record=$2; shift 2 ;;
    *) echo "usage: $0 [--bin DIR] [--conns N] [--threads N] [--duration S] [--rounds N] [--record DIR]" >&2; exit 2 ;;
  esac
done
export PATH=$PATH:/usr/sbin
for tool in perf wrk haproxy; do
  command -v "$tool" >/dev/null || { echo "$0: needs $tool" >&2; exit 1; }
done
# shellcheck source=bench/fronts.sh
. bench/fronts.sh
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

start_backends "$bin" "$work"
lb_port=$(free_port)
ups=()
for p in "${backends[@]}"; do ups+=(--upstream "127.0.0.1:$p,max_conns=64"); done
"$bin/userkey-lb" --listen "127.0.0.1:$lb_port" --admin off --threads "$threads" --access-log false \
  --max-connections 4096 "${ups[@]}" >"$work/lb.log" 2>&1 &
lb_pid=$!
pids+=($lb_pid)
ha_port=$(free_port)
haproxy_config "$ha_port" "$threads" 4096 64 "${backends[@]}" >"$work/haproxy.cfg"
haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 &
ha_pid=$!
pids+=($ha_pid)
wait_port "$lb_port"
wait_port "$ha_port"

pid_of() { [ "$1" = userkey-lb ] && echo "$lb_pid" || echo "$ha_pid"; }
port_of() { [ "$1" = userkey-lb ] && echo "$lb_port" || echo "$ha_port"; }
url() { echo "http://127.0.0.1:$(port_of "$1")/?user_id=1"; }
requests() { awk '/requests in/ {print $1}' <<<"$1"; }
# A counter's value in perf stat's output ("5,012.34 msec task-clock").
counter() { awk -v name="$2" '{ for (i = 2; i <= 3; ++i) if ($i == name) { gsub(",", "", $1); print $1; exit } }' "$1"; }

echo "# CPU per request ($conns connections, --threads/nbthread $threads, wrk -t2 ${duration}s per round)"
printf '%-12s %6s %10s %12s %14s %10s\n' front round req/s "CPU us/req" "syscalls/req" "cs/req"
for round in $(seq 1 "$rounds"); do
  order=(userkey-lb haproxy)
  [ $((round % 2)) -eq 0 ] && order=(haproxy userkey-lb)
  for f in "${order[@]}"; do
    wrk -t2 -c"$conns" -d1s "$(url "$f")" >/dev/null  # warm: pools, first-use paths
    perf stat -e raw_syscalls:sys_enter,task-clock,context-switches -p "$(pid_of "$f")" -o "$work/stat" \
      -- sleep "$duration" &
    sp=$!
    out=$(wrk -t2 -c"$conns" -d"${duration}s" "$(url "$f")")
    wait "$sp"
    n=$(requests "$out")
    awk -v f="$f" -v r="$round" -v n="$n" -v d="$duration" -v sc="$(counter "$work/stat" raw_syscalls:sys_enter)" \
      -v tc="$(counter "$work/stat" task-clock)" -v cs="$(counter "$work/stat" context-switches)" \
      'BEGIN { printf "%-12s %6d %10.0f %12.1f %14.2f %10.3f\n", f, r, n / d, tc * 1000 / n, sc / n, cs / n }'
  done
done

echo
echo "# System calls per request, by name (traced: slower, so counted apart)"
for f in userkey-lb haproxy; do
  wrk -t2 -c"$conns" -d1s "$(url "$f")" >/dev/null
  perf stat -e 'syscalls:sys_enter_*' -p "$(pid_of "$f")" -o "$work/sc" -- sleep "$duration" &
  sp=$!
  out=$(wrk -t2 -c"$conns" -d"${duration}s" "$(url "$f")")
  wait "$sp"
  n=$(requests "$out")
  echo "## $f"
  awk -v n="$n" '/syscalls:sys_enter_/ {gsub(",", "", $1); if ($1 / n >= 0.005) printf "  %-24s %.3f\n", substr($2, 20), $1 / n}' \
    "$work/sc" | sort -k2 -nr
done

if [ -n "$record" ]; then
  mkdir -p "$record"
  for f in userkey-lb haproxy; do
    perf record -F 2000 -g -p "$(pid_of "$f")" -o "$record/$f.perf.data" -- sleep "$duration" >/dev/null 2>&1 &
    sp=$!
    wrk -t2 -c"$conns" -d"${duration}s" "$(url "$f")" >/dev/null
    wait "$sp"
  done
  echo
  echo "# Share of samples by object (perf record -g, then perf report --sort dso)"
  for f in userkey-lb haproxy; do
    echo "## $f"
    perf report -i "$record/$f.perf.data" --no-children --sort dso -g none 2>/dev/null | awk '/%/ && !/^#/ {print "  " $0}' | head -5
  done
  echo "(profiles: $record/*.perf.data)"
fi
