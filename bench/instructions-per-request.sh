#!/usr/bin/env bash
# Instructions a front executes per proxied request, counted by callgrind: a
# figure that does not move with the load of a shared machine, so two builds,
# or userkey-lb and HAProxy, can be compared without interleaved rounds. It
# counts user-space instructions only (the lb's code, libc, OpenSSL); the
# kernel's share is what bench/syscalls-per-request.sh looks at.
#
#   bench/instructions-per-request.sh [--front lb|haproxy] [--tls] [--conns N]
#                                     [--lb PATH] [BIN_DIR] [SECONDS]
#
# Starts the three embedded-dump backends of bench/fronts.sh and the front
# (userkey-lb at 1 thread, or HAProxy with nbthread 1, the configuration
# bench/run.sh uses; 64 connections per upstream) under callgrind, with
# instrumentation switched on only while the load runs, on free loopback
# ports. wrk drives it (N keep-alive connections, default 16, GET
# /?user_id=1) for SECONDS (default 10), and the script prints the
# instructions per request wrk got answered. --tls terminates TLS with a
# throwaway self-signed EC P-256 certificate (the servers' policy of
# bench/fronts.sh); --lb runs another userkey-lb binary (an A/B of two
# builds). Needs valgrind, wrk and, for --front haproxy, haproxy.
#
# Under callgrind a front runs some 50 times slower, so at 16 connections the
# next request of a connection is usually waiting when its answer has gone
# out; --conns 1 measures the other case, a connection that goes idle
# between requests.
set -euo pipefail
front=lb tls=0 conns=16 lb_bin=""
while [ $# -gt 0 ]; do
  case $1 in
    --front) front=$2; shift 2 ;;
    --tls) tls=1; shift ;;
    --conns) conns=$2; shift 2 ;;
    --lb) lb_bin=$2; shift 2 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
case $front in lb | haproxy) ;; *) echo "--front: lb or haproxy" >&2; exit 2 ;; esac
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-build/apps}")
seconds=${2:-10}
lb_bin=${lb_bin:-$bin/userkey-lb}
. bench/fronts.sh
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; [ -n "${KEEP_WORK:-}" ] && echo "kept $work" >&2 || rm -rf "$work"; }
trap cleanup EXIT

start_backends "$bin" "$work"
scheme=http
if [ "$tls" = 1 ]; then
  scheme=https
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$work/key.pem" -out "$work/cert.pem" >"$work/pki.log" 2>&1 ||
    { cat "$work/pki.log" >&2; exit 1; }
  cat "$work/cert.pem" "$work/key.pem" >"$work/combined.pem"
fi
port=$(free_port)
cg=(valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/cg.out")
if [ "$front" = lb ]; then
  listen=(--listen "127.0.0.1:$port")
  [ "$tls" = 1 ] && listen=(--listen off --tls-listen "127.0.0.1:$port" --tls-cert "$work/cert.pem" --tls-key "$work/key.pem")
  ups=()
  for p in "${backends[@]}"; do ups+=(--upstream "127.0.0.1:$p,max_conns=64"); done
  "${cg[@]}" "$lb_bin" "${listen[@]}" --admin off --threads 1 --access-log false --log-level warn \
    --max-connections 4096 "${ups[@]}" >"$work/front.log" 2>&1 &
else
  crt=()
  [ "$tls" = 1 ] && crt=(--tls "$work/combined.pem")
  haproxy_config "${crt[@]}" "$port" 1 4096 64 "${backends[@]}" >"$work/haproxy.cfg"
  "${cg[@]}" haproxy -f "$work/haproxy.cfg" -db >"$work/front.log" 2>&1 &
fi
front_pid=$!
pids+=($front_pid)
# (callgrind starts a front slowly: up to 60 s)
for _ in $(seq 1 600); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
url="$scheme://127.0.0.1:$port/?user_id=1"
curl -kfsS "$url" >/dev/null   # warm: pools, first-use paths
callgrind_control -i on "$front_pid" >/dev/null
out=$(wrk -t1 -c"$conns" -d"${seconds}s" "$url" 2>&1)
callgrind_control -i off "$front_pid" >/dev/null
done_requests=$(awk '/requests in/ {print $1}' <<<"$out")
kill -TERM "$front_pid"; wait "$front_pid" 2>/dev/null || true
total=$(awk '/^totals:/ {print $2; exit}' "$work/cg.out")
[ -n "$total" ] && [ "$total" -gt 0 ] || { echo "no instruction count in callgrind's output" >&2; exit 1; }
echo "front $front$([ "$tls" = 1 ] && echo ' (TLS)') conns $conns"
echo "requests $done_requests"
echo "instructions_total $total"
echo "instructions_per_request $(( total / done_requests ))"
