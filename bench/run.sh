#!/usr/bin/env bash
# Side-by-side benchmark: userkey-lb vs HAProxy vs nginx in front of the same
# three userkey-backend processes, driven by wrk on loopback, in one run.
# Prints requests/s, p50/p99 latency, errors per front and connection count,
# and each front's ratio to HAProxy.
#
#   bench/run.sh [--duration 10s] [--conns "16 64 256 1024"] [--rounds 3] [--threads N]
#                [--policy round_robin] [--max-conns 64] [--settle 6]
#                [--baseline-lb PATH] [--idle N [--idle-load SECONDS]] [--json FILE]
#
# --threads N gives every front the same resources: userkey-lb --threads N,
# HAProxy nbthread N, nginx worker_processes N.
# HAProxy's and nginx's configurations are written by bench/fronts.sh
# (shared with bench/tls.sh).
#
# --idle N first measures each front's memory per idle keep-alive client
# connection (bench/idle.py: N connections, one request each, then idle; the
# front's RSS delta / N) and, with --idle-load, the front's peak RSS while
# those N stay open and wrk loads it for that many seconds.
#
# --json FILE also writes every round, the medians, the idle figures and the
# fronts' exact configurations as JSON (bench/report.py reads it).
#
# --baseline-lb adds a fourth front, "lb-baseline": another userkey-lb binary
# (e.g. one built from an older commit) with the same flags, so a change to
# the lb is compared with its predecessor in the same run.
#
# Each point is measured --rounds times, the fronts interleaved (a different
# one first in each round), and the table gives each front's median round;
# the ratios are of those medians. Per-round figures go to stderr.
#
# Needs wrk, haproxy and nginx (scripts in this folder install them from
# Debian when missing). Ports are taken from the kernel, so a running demo is
# never disturbed. The machine is shared: compare ratios within one run.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/fronts.sh
duration=10s
conns="16 64 256 1024"
lb_threads=1
policy=round_robin
upstream_cap=64
settle=6
rounds=3
baseline_lb=""
idle=0
idle_load=0
json_out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --conns) conns=$2; shift 2 ;;
    --threads) lb_threads=$2; shift 2 ;;
    --policy) policy=$2; shift 2 ;;
    --max-conns) upstream_cap=$2; shift 2 ;;
    --settle) settle=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --baseline-lb) baseline_lb=$2; shift 2 ;;
    --idle) idle=$2; shift 2 ;;
    --idle-load) idle_load=$2; shift 2 ;;
    --json) json_out=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
bin=${USERKEY_BIN:-build/apps}
for tool in wrk haproxy nginx; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || {
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get install -y -qq --no-install-recommends wrk haproxy nginx-light >/dev/null; break; }
done
export PATH=$PATH:/usr/sbin

# Every front (and bench/idle.py) may hold --idle client connections at once.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)
# Client connections each front admits: the idle ones, wrk's and some room.
# HAProxy reserves two descriptors per connection (maxsock = 2 x maxconn +
# a few) and will not start beyond `ulimit -n`, so --idle must stay below
# about nofile / 2 - 256 (9,700 with the 20,000 of this machine).
front_max=$((idle + 256)); [ "$front_max" -lt 4096 ] && front_max=4096
if [ $((2 * front_max + 100)) -gt "$nofile" ]; then
  echo "run.sh: --idle $idle needs more than the $nofile file descriptors allowed (ulimit -Hn): HAProxy takes 2 per connection" >&2; exit 1
fi
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
[ -n "${BENCH_KEEP:-}" ] && trap "kill \"\${pids[@]}\" 2>/dev/null; echo logs in $work" EXIT


start_backends "$bin" "$work"

# userkey-lb
lb_port=$(free_port)
lb_args=()
for p in "${backends[@]}"; do lb_args+=(--upstream "127.0.0.1:$p,max_conns=$upstream_cap"); done
lb_cmd=("$bin/userkey-lb" --listen "127.0.0.1:$lb_port" --admin off --threads "$lb_threads" --policy "$policy"
        --access-log false --max-connections "$front_max" "${lb_args[@]}")
"${lb_cmd[@]}" >"$work/lb.log" 2>&1 &
pids+=($!)
lb_pid=$!
bl_port="" bl_pid=""
if [ -n "$baseline_lb" ]; then
  bl_port=$(free_port)
  "$baseline_lb" --listen "127.0.0.1:$bl_port" --admin off --threads "$lb_threads" --policy "$policy" \
    --access-log false --max-connections "$front_max" "${lb_args[@]}" >"$work/lb-baseline.log" 2>&1 &
  pids+=($!)
  bl_pid=$!
fi

# HAProxy and nginx: their configurations are bench/fronts.sh's (shared with
# bench/tls.sh): the same caps, keep-alive to the upstreams.
ha_port=$(free_port)
haproxy_config "$ha_port" "$lb_threads" "$front_max" "$upstream_cap" "${backends[@]}" >"$work/haproxy.cfg"
haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 &
pids+=($!)
ha_pid=$!

ng_port=$(free_port)
mkdir -p "$work/nginx"
nginx_config "$work" "$ng_port" "$lb_threads" "$nofile" "$front_max" "$upstream_cap" "${backends[@]}" >"$work/nginx.conf"
nginx -c "$work/nginx.conf" -g "daemon off;" >"$work/nginx.log" 2>&1 &
pids+=($!)
ng_pid=$!

for p in "$lb_port" "$ha_port" "$ng_port" $bl_port; do wait_port "$p"; done

run_wrk() {  # port conns pid -> "rps p50_ms p99_ms errors cpu_us_per_request timeouts"
  # (CPU: user+system of the front's processes, children included, per request)
  python3 bench/benchlib.py wrk "http://127.0.0.1:$1/?user_id=1" "$2" "$duration" "$3"
}

# One point's rounds -> medians per front (errors: the median round's count
# is not meaningful, so the sum over rounds). "fronts": a table row per front
# with ratios to HAProxy's medians; "baseline": userkey-lb's medians as
# ratios to lb-baseline's.
cat >"$work/summary.py" <<'PY'
import statistics, sys
mode, conns, path = sys.argv[1:4]
rows = {}
for line in open(path):
    name, *vals = line.split()
    rows.setdefault(name, []).append([float(v) for v in vals])
def med(name, i): return statistics.median(r[i] for r in rows[name])
def ratio(a, b, unit=""): return f"{a / b:.2f}{unit}" if b > 0 else "n/a"
if mode == "baseline":
    r = [ratio(med("userkey-lb", i), med("lb-baseline", i), "x") for i in (0, 2, 4)]
    print(f"| {conns} | {r[0]} | {r[1]} | {r[2]} |")
    sys.exit()
ha = {i: med("haproxy", i) for i in range(5)}
for name in ("haproxy", "userkey-lb", "lb-baseline", "nginx"):
    if name not in rows: continue
    rps, p50, p99, cpu = med(name, 0), med(name, 1), med(name, 2), med(name, 4)
    errs = int(sum(r[3] for r in rows[name]))
    print(f"| {conns} | {name} | {rps:.0f} | {p50:.2f} | {p99:.2f} | {errs} | {cpu:.1f} | "
          f"{ratio(rps, ha[0])} | {ratio(p99, ha[2])} | {ratio(cpu, ha[4])} |")
PY

# Memory per idle client connection, on the fronts as started (before any
# load), one after the other; each front's idle connections are closed before
# the next is measured.
fronts=(haproxy userkey-lb nginx)
[ -n "$baseline_lb" ] && fronts+=(lb-baseline)
front_port() { case $1 in haproxy) echo "$ha_port" ;; userkey-lb) echo "$lb_port" ;; nginx) echo "$ng_port" ;; lb-baseline) echo "$bl_port" ;; esac; }
front_pid() { case $1 in haproxy) echo "$ha_pid" ;; userkey-lb) echo "$lb_pid" ;; nginx) echo "$ng_pid" ;; lb-baseline) echo "$bl_pid" ;; esac; }
if [ "$idle" -gt 0 ]; then
  echo "## Memory per idle keep-alive client connection ($idle connections, one request each, then idle)"
  echo
  echo "| front | RSS before | RSS with $idle idle | per connection | answered | RSS peak, idle + wrk -c64 ${idle_load}s | req/s under load |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for name in "${fronts[@]}"; do
    python3 bench/idle.py --port "$(front_port "$name")" --pid "$(front_pid "$name")" --conns "$idle" \
      --load "$idle_load" --json "$work/idle-$name.json" || { echo "run.sh: idle.py failed on $name" >&2; continue; }
    python3 - "$name" "$work/idle-$name.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[2]))
load = r.get("load") or {}
per = r["per_connection_kib"] if r["per_connection_kib"] is not None else float("nan")
print(f"| {sys.argv[1]} | {r['rss_before_kib']} KiB | {r['rss_idle_kib']} KiB | "
      f"{per:.2f} KiB | {r['answered_200']} | {load.get('rss_peak_kib', '-')} KiB | {load.get('rps', 0):.0f} |")
PY
    sleep "$settle"
  done
  echo
fi

echo "# userkey-lb vs HAProxy vs nginx — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, wrk -t2 -d$duration, median of $rounds interleaved rounds, lb/haproxy/nginx threads=$lb_threads, max_conns=$upstream_cap per upstream"
echo
echo "| conns | front | req/s | p50 ms | p99 ms | errors | CPU µs/req | req/s vs HAProxy | p99 vs HAProxy | CPU vs HAProxy |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
nf=${#fronts[@]}
turn=0
for c in $conns; do
  results="$work/results-$c"
  : >"$results"
  for round in $(seq 1 "$rounds"); do
    # The order rotates from one round (and connection count) to the next
    # so no front always goes first.
    order=("${fronts[@]:$((turn % nf))}" "${fronts[@]:0:$((turn % nf))}")
    turn=$((turn + 1))
    for name in "${order[@]}"; do
      p=$(front_port "$name"); pid=$(front_pid "$name")
      # Let the backends close the idle keep-alive connections the previous
      # front left (their keep-alive timeout is 5 s): thread-per-connection
      # backends spend CPU polling idle connections, which would be charged
      # to whichever front runs next. (Backends get 1024 threads so those
      # connections never starve the next front.)
      sleep "$settle"
      wrk -t2 -c"$c" -d1s "http://127.0.0.1:$p/?user_id=1" >/dev/null 2>&1 || true
      line="$name $(run_wrk "$p" "$c" "$pid")"
      echo "$line" >>"$results"
      echo "$c $round $line" >>"$work/rounds"
      echo "conns=$c round=$round $line" >&2
    done
  done
  python3 "$work/summary.py" fronts "$c" "$work/results-$c"
done

if [ -n "$baseline_lb" ]; then
  echo
  echo "userkey-lb against lb-baseline ($baseline_lb), medians of the same rounds:"
  echo
  echo "| conns | req/s | p99 | CPU per request |"
  echo "|---:|---:|---:|---:|"
  for c in $conns; do
    python3 "$work/summary.py" baseline "$c" "$work/results-$c"
  done
fi

if [ -n "$json_out" ]; then
  idle_args=()
  for name in "${fronts[@]}"; do
    [ -f "$work/idle-$name.json" ] && idle_args+=("idle_$name""_file=$work/idle-$name.json")
  done
  python3 bench/benchlib.py fronts-json "$work/rounds" "$json_out" threads="$lb_threads" duration="$duration" \
    rounds="$rounds" max_conns="$upstream_cap" settle="$settle" policy="$policy" idle_connections="$idle" \
    idle_load_seconds="$idle_load" haproxy_cfg_file="$work/haproxy.cfg" nginx_conf_file="$work/nginx.conf" \
    lb_command="${lb_cmd[*]}" backend_command="$bin/userkey-backend --listen 127.0.0.1:PORT --name backend-N --dump dump --access-log false --threads 1024" \
    wrk_command="wrk -t2 -cCONNS -d$duration --timeout 5s --latency http://127.0.0.1:PORT/?user_id=1" \
    "${idle_args[@]}"
  echo "results: $json_out" >&2
fi
