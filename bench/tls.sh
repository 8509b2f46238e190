#!/usr/bin/env bash
# TLS termination side by side: userkey-lb vs HAProxy vs nginx, each
# terminating TLS with the same certificate in front of the same three
# userkey-backend processes, driven by wrk over https on loopback, in one run.
#
#   bench/tls.sh [--duration 10s] [--rounds 3] [--threads N] [--conns 64] [--hs-conns 16]
#                [--max-conns 64] [--settle 6] [--json FILE]
#
# Two measurements per front:
#   keep-alive  wrk -t2 -c${conns} https://.../?user_id=1: requests/s and p99
#               over established TLS connections (bulk AES-GCM records);
#   handshake   the same with -H 'Connection: close' at ${hs-conns}
#               connections: every request on a new TCP + TLS connection, a full
#               handshake each time. wrk alone would resume: it reconnects
#               with the same SSL object, which offers the previous session.
#               bench/wrk-no-resume.c (built here with cc, LD_PRELOADed into
#               wrk) drops that session before each handshake; a 1 s run
#               against a logging nginx at start counts resumed connections
#               (0 expected) and records it.
#
# A throwaway EC P-256 CA and leaf certificate for 127.0.0.1 are made with the
# openssl CLI in a temporary folder; every front serves the same leaf (no
# chain beyond it) and key. The clients (wrk and openssl s_client) run with an
# OpenSSL configuration that offers TLS 1.3 with TLS_AES_128_GCM_SHA256 and
# the X25519 group only, so every front negotiates the same; the servers keep
# TLS 1.2 + 1.3 and userkey-lb's suites and groups (HAProxy and nginx are
# configured with the same lists: bench/fronts.sh writes their configurations,
# run.sh's with the ssl lines added). At start, openssl s_client checks each front
# once (protocol, suite, key exchange group, ALPN, certificate verified) and a
# 1 s wrk run against a logging nginx shows what wrk itself negotiates.
#
# --threads N: userkey-lb --threads N, HAProxy nbthread N, nginx
# worker_processes N; each front with the same cap of --max-conns connections
# per upstream (as bench/run.sh).
#
# Each point is measured --rounds times, the fronts interleaved (a different
# one first in each round), and the table gives each front's median round;
# ratios are of those medians, errors summed over the rounds. CPU per request
# is the front's (user + system from /proc); "wrk CPU" is the client's own,
# which shows how much of the 2 shared cores the client needs for handshakes.
#
# --json FILE writes every round, the medians, the negotiated parameters and
# the exact configurations as JSON (bench/report.py reads it).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/fronts.sh
duration=10s
rounds=3
lb_threads=1
ka_conns=64
hs_conns=16
upstream_cap=64
settle=6
json_out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --threads) lb_threads=$2; shift 2 ;;
    --conns) ka_conns=$2; shift 2 ;;
    --hs-conns) hs_conns=$2; shift 2 ;;
    --max-conns) upstream_cap=$2; shift 2 ;;
    --settle) settle=$2; shift 2 ;;
    --json) json_out=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
bin=${USERKEY_BIN:-build/apps}
export PATH=$PATH:/usr/sbin
for tool in wrk haproxy nginx openssl cc; do
  command -v "$tool" >/dev/null || { echo "tls.sh: $tool is missing (bench/all.sh installs it)" >&2; exit 1; }
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)
front_max=4096
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
[ -n "${BENCH_KEEP:-}" ] && trap "kill \"\${pids[@]}\" 2>/dev/null; echo logs in $work" EXIT


# --- the certificate: a throwaway CA and a leaf for 127.0.0.1, EC P-256 --------
pki=$work/pki
mkdir -p "$pki"
{
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/ca.key"
  openssl req -x509 -new -key "$pki/ca.key" -sha256 -days 2 -subj "/CN=userkey bench throwaway CA" -out "$pki/ca.pem"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/leaf.key"
  openssl req -new -key "$pki/leaf.key" -subj "/CN=127.0.0.1" -out "$pki/leaf.csr"
  printf '%s\n' "subjectAltName=IP:127.0.0.1" "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >"$pki/leaf.ext"
  openssl x509 -req -in "$pki/leaf.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial -days 2 -sha256 \
    -extfile "$pki/leaf.ext" -out "$pki/leaf.pem"
} >"$work/pki.log" 2>&1 || { cat "$work/pki.log" >&2; exit 1; }
cat "$pki/leaf.pem" "$pki/leaf.key" >"$pki/combined.pem"  # HAProxy's crt: certificate + key in one file

# What the clients offer (wrk and s_client read it through OPENSSL_CONF; the
# servers never see it): TLS 1.3, one suite, one group.
cat >"$work/client-openssl.cnf" <<'CNF'
openssl_conf = client_conf
[client_conf]
ssl_conf = client_ssl
[client_ssl]
system_default = client_tls
[client_tls]
MinProtocol = TLSv1.3
Ciphersuites = TLS_AES_128_GCM_SHA256
Groups = X25519
CNF
cc -shared -fPIC -O2 -o "$work/wrk-no-resume.so" bench/wrk-no-resume.c -ldl -lssl ||
  { echo "tls.sh: cannot build bench/wrk-no-resume.c (cc, libssl-dev)" >&2; exit 1; }
client_env=(env OPENSSL_CONF="$work/client-openssl.cnf" LD_PRELOAD="$work/wrk-no-resume.so")

# --- backends, as bench/run.sh -----------------------------------------------------
start_backends "$bin" "$work"

# --- userkey-lb: TLS only -----------------------------------------------------------
lb_port=$(free_port)
lb_args=()
for p in "${backends[@]}"; do lb_args+=(--upstream "127.0.0.1:$p,max_conns=$upstream_cap"); done
lb_cmd=("$bin/userkey-lb" --listen off --tls-listen "127.0.0.1:$lb_port" --tls-cert "$pki/leaf.pem"
        --tls-key "$pki/leaf.key" --admin off --threads "$lb_threads" --policy round_robin
        --access-log false --max-connections "$front_max" "${lb_args[@]}")
"${lb_cmd[@]}" >"$work/lb.log" 2>&1 &
pids+=($!)
lb_pid=$!

# --- HAProxy and nginx: bench/fronts.sh's configurations (as run.sh) with --tls --------
# HAProxy: ssl on the bind line, the servers' suites and groups, client
# preference; nginx: listen ... ssl, the same. Both with run.sh's caps and
# upstream keep-alive.
ha_port=$(free_port)
haproxy_config --tls "$pki/combined.pem" "$ha_port" "$lb_threads" "$front_max" "$upstream_cap" "${backends[@]}" \
  >"$work/haproxy.cfg"
haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 &
pids+=($!)
ha_pid=$!

ng_port=$(free_port)
mkdir -p "$work/nginx"
nginx_config --tls "$pki/leaf.pem" "$pki/leaf.key" "$work" "$ng_port" "$lb_threads" "$nofile" "$front_max" \
  "$upstream_cap" "${backends[@]}" >"$work/nginx.conf"
nginx -c "$work/nginx.conf" -g "daemon off;" >"$work/nginx.log" 2>&1 &
pids+=($!)
ng_pid=$!

for p in "$lb_port" "$ha_port" "$ng_port"; do wait_port "$p"; done

fronts=(haproxy userkey-lb nginx)
front_port() { case $1 in haproxy) echo "$ha_port" ;; userkey-lb) echo "$lb_port" ;; nginx) echo "$ng_port" ;; esac; }
front_pid() { case $1 in haproxy) echo "$ha_pid" ;; userkey-lb) echo "$lb_pid" ;; nginx) echo "$ng_pid" ;; esac; }

# --- what each front negotiates: openssl s_client once per front ----------------------
: >"$work/negotiated"
for name in "${fronts[@]}"; do
  p=$(front_port "$name")
  out=$(printf 'GET /?user_id=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' |
        "${client_env[@]}" timeout 10 openssl s_client -connect "127.0.0.1:$p" -alpn http/1.1 \
          -CAfile "$pki/ca.pem" -verify_ip 127.0.0.1 -verify_return_error -ign_eof 2>&1 || true)
  proto=$(sed -n 's/^ *Protocol *: *//p' <<<"$out" | head -1)
  cipher=$(sed -n 's/^New, [^,]*, Cipher is //p' <<<"$out" | head -1)
  group=$(sed -n 's/^Server Temp Key: \([^,]*\).*/\1/p' <<<"$out" | head -1)
  alpn=$(sed -n 's/^ALPN protocol: //p' <<<"$out" | head -1)
  verify=$(sed -n 's/^ *Verify return code: \([0-9]*\).*/\1/p' <<<"$out" | tail -1)
  status=$(grep -m1 -o '^HTTP/1\.1 [0-9]*' <<<"$out" | cut -d' ' -f2 || true)
  echo "$name protocol=${proto:-?} cipher=${cipher:-?} group=${group:-?} alpn=${alpn:-none} verify=${verify:-?} status=${status:-?}" >>"$work/negotiated"
done

# --- what wrk itself negotiates, and that it never resumes: a 1 s handshake run ----------
# against a separate nginx that logs each connection's parameters.
probe_port=$(free_port)
mkdir -p "$work/probe"
{
  echo "worker_processes 1; pid $work/probe.pid; error_log $work/probe-error.log;"
  echo "events { worker_connections 1024; }"
  echo "http { log_format tls '\$ssl_protocol \$ssl_cipher \$ssl_curve \$ssl_session_reused \$connection';"
  echo "  access_log $work/probe-access.log tls;"
  echo "  client_body_temp_path $work/probe; proxy_temp_path $work/probe; fastcgi_temp_path $work/probe;"
  echo "  uwsgi_temp_path $work/probe; scgi_temp_path $work/probe;"
  echo "  server { listen 127.0.0.1:$probe_port ssl; ssl_certificate $pki/leaf.pem; ssl_certificate_key $pki/leaf.key;"
  echo "    ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:probe:1m;"
  echo "    location / { return 200 'probe'; } } }"
} >"$work/probe.conf"
nginx -c "$work/probe.conf" -g "daemon off;" >"$work/probe.log" 2>&1 &
probe_pid=$!
pids+=($probe_pid)
wait_port "$probe_port"
"${client_env[@]}" wrk -t2 -c"$hs_conns" -d1s -H 'Connection: close' "https://127.0.0.1:$probe_port/" >/dev/null 2>&1 || true
kill "$probe_pid" 2>/dev/null || true
sleep 0.3
wrk_seen=$(python3 - "$work/probe-access.log" <<'PY'
import collections, sys
params, resumed, conns = collections.Counter(), 0, set()
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) < 5:
        continue
    params[" ".join(f[:3])] += 1
    resumed += f[3] == "r"
    conns.add(f[4])
top = params.most_common(1)[0][0] if params else "- - -"
proto, cipher, group = top.split()
print(f"wrk protocol={proto} cipher={cipher} group={group} requests={sum(params.values())} "
      f"connections={len(conns)} resumed={resumed}")
PY
)
echo "$wrk_seen" >>"$work/negotiated"

echo "# TLS termination: userkey-lb vs HAProxy vs nginx — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, wrk -t2 -d$duration, median of $rounds interleaved rounds, threads=$lb_threads, max_conns=$upstream_cap per upstream"
echo
echo "Negotiated (openssl s_client, client offering TLS 1.3 / TLS_AES_128_GCM_SHA256 / X25519; verify 0 = chain verified):"
echo
sed 's/^/    /' "$work/negotiated"
echo

# --- the measurements ---------------------------------------------------------------------
: >"$work/rounds"
nf=${#fronts[@]}
turn=0
for mode in handshake keepalive; do
  if [ "$mode" = handshake ]; then c=$hs_conns hdr=(--header "Connection: close"); else c=$ka_conns hdr=(); fi
  for round in $(seq 1 "$rounds"); do
    order=("${fronts[@]:$((turn % nf))}" "${fronts[@]:0:$((turn % nf))}")
    turn=$((turn + 1))
    for name in "${order[@]}"; do
      p=$(front_port "$name"); pid=$(front_pid "$name")
      sleep "$settle"  # the backends close the previous front's idle connections (see run.sh)
      "${client_env[@]}" wrk -t2 -c"$c" -d1s "${hdr[@]/--header/-H}" "https://127.0.0.1:$p/?user_id=1" >/dev/null 2>&1 || true
      line="$mode $c $round $name $("${client_env[@]}" python3 bench/benchlib.py wrk-tls "${hdr[@]}" \
        "https://127.0.0.1:$p/?user_id=1" "$c" "$duration" "$pid")"
      echo "$line" >>"$work/rounds"
      echo "$line" >&2
    done
  done
done

cat >"$work/summary.py" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    mode, conns, rnd, name, *vals = line.split()
    rows.setdefault((mode, name), []).append([float(v) for v in vals])
def med(mode, name, i):
    r = rows.get((mode, name))
    return statistics.median(x[i] for x in r) if r else float("nan")
def errs(mode, name): return int(sum(x[3] + 0 for x in rows.get((mode, name), [])))
def ratio(a, b): return f"{a / b:.2f}x" if b > 0 and a == a else "n/a"
print("| front | handshakes/s | p99 ms | errors | CPU µs/handshake | wrk CPU µs/handshake | "
      "keep-alive req/s | p99 ms | errors | CPU µs/req | handshakes vs HAProxy | keep-alive vs HAProxy | "
      "keep-alive p99 vs HAProxy |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for name in ("haproxy", "userkey-lb", "nginx"):
    h, k = ("handshake", name), ("keepalive", name)
    print(f"| {name} | {med(*h, 0):.0f} | {med(*h, 2):.2f} | {errs(*h)} | {med(*h, 4):.1f} | {med(*h, 6):.1f} | "
          f"{med(*k, 0):.0f} | {med(*k, 2):.2f} | {errs(*k)} | {med(*k, 4):.1f} | "
          f"{ratio(med(*h, 0), med('handshake', 'haproxy', 0))} | {ratio(med(*k, 0), med('keepalive', 'haproxy', 0))} | "
          f"{ratio(med(*k, 2), med('keepalive', 'haproxy', 2))} |")
PY
echo "Handshakes: wrk -t2 -c$hs_conns -H 'Connection: close' (a new TCP + TLS connection per request, no resumption); keep-alive: wrk -t2 -c$ka_conns."
echo
python3 "$work/summary.py" "$work/rounds"
echo

if [ -n "$json_out" ]; then
  python3 bench/benchlib.py tls-json "$work/rounds" "$work/negotiated" "$json_out" threads="$lb_threads" \
    duration="$duration" rounds="$rounds" max_conns="$upstream_cap" settle="$settle" \
    keepalive_conns="$ka_conns" handshake_conns="$hs_conns" \
    client="wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}') (OpenSSL $(openssl version | awk '{print $2}')), 2 threads, on the same 2 cores; offers TLS 1.3, TLS_AES_128_GCM_SHA256, X25519 (OPENSSL_CONF); no certificate chain verification; handshakes: -H 'Connection: close' with bench/wrk-no-resume.c preloaded, so no session resumption" \
    certificate="EC P-256 leaf for IP 127.0.0.1 signed by a throwaway EC P-256 CA (openssl CLI); the leaf alone is sent" \
    haproxy_cfg_file="$work/haproxy.cfg" nginx_conf_file="$work/nginx.conf" client_openssl_cnf_file="$work/client-openssl.cnf" \
    lb_command="${lb_cmd[*]//$work/\$WORK}" \
    backend_command="$bin/userkey-backend --listen 127.0.0.1:PORT --name backend-N --dump dump --access-log false --threads 1024" \
    keepalive_command="wrk -t2 -c$ka_conns -d$duration --timeout 5s --latency https://127.0.0.1:PORT/?user_id=1" \
    handshake_command="wrk -t2 -c$hs_conns -d$duration --timeout 5s --latency -H 'Connection: close' https://127.0.0.1:PORT/?user_id=1"
  echo "results: $json_out" >&2
fi
