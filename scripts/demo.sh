#!/usr/bin/env bash
# Runs the demo topology natively: three backends on 127.0.0.1:5001-5003
# (their /metrics on 9101-9103) and the lb on 127.0.0.1:8080 (admin on 9100).
#   scripts/demo.sh embedded      backends read the committed dump
#   scripts/demo.sh mongo         a local FerretDB (auth on, 127.0.0.1:27017) seeded from dump/ by userkey-admin
#   scripts/demo.sh --check-ports embedded|mongo
#                                 only checks that those ports are free (make demo does, before it builds)
# Ctrl-C stops every process it started.
#
# Ports: these variables move them (`make demo USERKEY_DEMO_LB_PORT=18080`
# passes one through); the number of backends is the number of their ports.
#   USERKEY_DEMO_BACKEND_PORTS        "5001 5002 5003"   the backends
#   USERKEY_DEMO_BACKEND_ADMIN_PORTS  "9101 9102 9103"   each backend's /metrics
#   USERKEY_DEMO_LB_PORT              8080               the lb
#   USERKEY_DEMO_LB_ADMIN_PORT        9100               the lb's /metrics and /status
#   USERKEY_DEMO_MONGO_PORT           27017              FerretDB (mongo mode)
# Exit status: 0 after Ctrl-C; 3 when a port is taken (each taken one named,
# with the variable that moves it); 2 for bad arguments or port settings; 1
# when a process does not start or exits.
set -euo pipefail
cd "$(dirname "$0")/.."
check_only=0
if [ "${1:-}" = "--check-ports" ]; then
  check_only=1
  shift
fi
mode=${1:-embedded}
case "$mode" in
  embedded | mongo) ;;
  *) echo "usage: $0 [--check-ports] embedded|mongo" >&2; exit 2 ;;
esac
bin=${USERKEY_BIN:-build/apps}
state=${USERKEY_DEMO_STATE:-.demo}  # logs and FerretDB's files

read -r -a backend_ports <<<"${USERKEY_DEMO_BACKEND_PORTS:-5001 5002 5003}"
read -r -a backend_admin_ports <<<"${USERKEY_DEMO_BACKEND_ADMIN_PORTS:-9101 9102 9103}"
lb_port=${USERKEY_DEMO_LB_PORT:-8080}
lb_admin_port=${USERKEY_DEMO_LB_ADMIN_PORT:-9100}
mongo_port=${USERKEY_DEMO_MONGO_PORT:-27017}
# The lb runs when it was built (a build may leave it out); --check-ports,
# which runs before the build, checks its ports always.
with_lb=0
{ [ -x "$bin/userkey-lb" ] || [ $check_only -eq 1 ]; } && with_lb=1

bad_setting() {
  echo "demo: $*" >&2
  exit 2
}
[ ${#backend_ports[@]} -ge 1 ] || bad_setting "USERKEY_DEMO_BACKEND_PORTS names no port"
[ ${#backend_admin_ports[@]} -eq ${#backend_ports[@]} ] ||
  bad_setting "USERKEY_DEMO_BACKEND_ADMIN_PORTS needs one port per backend (${#backend_ports[@]}), it has ${#backend_admin_ports[@]}"

# Every port the demo listens on, as "PORT|what|variable".
planned=()
[ "$mode" = mongo ] && planned+=("$mongo_port|FerretDB|USERKEY_DEMO_MONGO_PORT")
for i in "${!backend_ports[@]}"; do
  planned+=("${backend_ports[$i]}|backend-$((i + 1))|USERKEY_DEMO_BACKEND_PORTS")
  planned+=("${backend_admin_ports[$i]}|backend-$((i + 1)) admin|USERKEY_DEMO_BACKEND_ADMIN_PORTS")
done
if [ $with_lb -eq 1 ]; then
  planned+=("$lb_port|lb|USERKEY_DEMO_LB_PORT" "$lb_admin_port|lb admin|USERKEY_DEMO_LB_ADMIN_PORT")
fi

seen=" "
for entry in "${planned[@]}"; do
  IFS='|' read -r port what var <<<"$entry"
  { [[ "$port" =~ ^[0-9]{1,5}$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ]; } ||
    bad_setting "$var: '$port' (for $what) is not a port number"
  [[ "$seen" != *" $port "* ]] || bad_setting "port $port is given twice (the second time for $what, by $var)"
  seen+="$port "
done

# Something accepts connections on 127.0.0.1:PORT: a listener on 127.0.0.1,
# 0.0.0.0 or [::], each of which makes our bind fail.
port_taken() {  # PORT
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}
# Who listens there, when ss can tell ("nginx, pid 123"; ss shows the
# process to root or to its owner).
port_holder() {  # PORT
  command -v ss >/dev/null || return 0
  ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'users:(("[^"]*",pid=[0-9]*' | head -1 |
    sed 's/users:(("\([^"]*\)",pid=\([0-9]*\)/\1, pid \2/' || true
}

taken=0
for entry in "${planned[@]}"; do
  IFS='|' read -r port what var <<<"$entry"
  if port_taken "$port"; then
    holder=$(port_holder "$port")
    echo "demo: port $port ($what) is taken on 127.0.0.1${holder:+ (by $holder)}; $var sets another" >&2
    taken=1
  fi
done
if [ $taken -eq 1 ]; then
  cat >&2 <<'EOF'
demo: pick free ports with these variables (defaults shown), e.g. `make demo USERKEY_DEMO_LB_PORT=18080`:
  USERKEY_DEMO_BACKEND_PORTS="5001 5002 5003"  USERKEY_DEMO_BACKEND_ADMIN_PORTS="9101 9102 9103"
  USERKEY_DEMO_LB_PORT=8080  USERKEY_DEMO_LB_ADMIN_PORT=9100  USERKEY_DEMO_MONGO_PORT=27017 (make demo-mongo)
EOF
  exit 3
fi
[ $check_only -eq 1 ] && exit 0

mkdir -p "$state"
pids=()
cleanup() {  # EXIT_STATUS
  trap - INT TERM EXIT
  if [ ${#pids[@]} -gt 0 ]; then
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
  echo "demo stopped"
  exit "$1"
}
trap 'cleanup 0' INT TERM
trap 'cleanup $?' EXIT

# Waits until PID (NAME, logging to LOG) listens on 127.0.0.1:PORT. Fails
# when it exits first, showing the end of its log (a port taken since the
# check above, a bad dump), or when it does not listen within 10 s.
wait_started() {  # PID NAME PORT LOG
  for _ in $(seq 1 100); do
    if ! kill -0 "$1" 2>/dev/null; then
      echo "demo: $2 exited before listening on 127.0.0.1:$3; the end of $4:" >&2
      tail -n 5 "$4" >&2
      exit 1
    fi
    (exec 3<>"/dev/tcp/127.0.0.1/$3") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "demo: $2 does not listen on 127.0.0.1:$3 after 10 s; see $4" >&2
  exit 1
}

backend_args=(--dump dump)
if [ "$mode" = mongo ]; then
  # Documented demo defaults; export your own to override.
  export mongo_user=${mongo_user:-userkey}
  export mongo_pass=${mongo_pass:-userkey-demo}
  ferretdb=$(command -v ferretdb || echo "$HOME/.local/bin/ferretdb")
  mkdir -p "$state/ferretdb"
  "$ferretdb" --handler=sqlite --sqlite-url="file:$(cd "$state/ferretdb" && pwd)/" --state-dir="$state/ferretdb" \
    --listen-addr="127.0.0.1:$mongo_port" \
    --telemetry=disable --debug-addr=- --log-level=warn --test-enable-new-auth --setup-database=admin \
    --setup-username="$mongo_user" --setup-password="$mongo_pass" >"$state/ferretdb.log" 2>&1 &
  pids+=($!)
  wait_started $! FerretDB "$mongo_port" "$state/ferretdb.log"
  uri="mongodb://127.0.0.1:$mongo_port/"
  "$bin/userkey-admin" --mongo-uri "$uri" restore dump
  backend_args=(--mongo-uri "$uri" --cache-ttl 5s)
fi

backend_pids=()
upstreams=()
for i in "${!backend_ports[@]}"; do
  # Each backend's /metrics is on its own admin address, which the lb never
  # forwards to (its main port answers /metrics with 404).
  n=$((i + 1))
  "$bin/userkey-backend" --listen "127.0.0.1:${backend_ports[$i]}" --admin "127.0.0.1:${backend_admin_ports[$i]}" \
    --name "backend-$n" "${backend_args[@]}" >"$state/backend-$n.log" 2>&1 &
  pids+=($!)
  backend_pids+=($!)
  upstreams+=(--upstream "127.0.0.1:${backend_ports[$i]}")
done
for i in "${!backend_ports[@]}"; do
  wait_started "${backend_pids[$i]}" "backend-$((i + 1))" "${backend_ports[$i]}" "$state/backend-$((i + 1)).log"
done

if [ $with_lb -eq 1 ]; then
  "$bin/userkey-lb" --listen "127.0.0.1:$lb_port" --admin "127.0.0.1:$lb_admin_port" "${upstreams[@]}" \
    >"$state/lb.log" 2>&1 &
  pids+=($!)
  wait_started $! lb "$lb_port" "$state/lb.log"
  echo "lb:       http://127.0.0.1:$lb_port/   (try http://127.0.0.1:$lb_port/?user_id=1 and reload)"
  echo "metrics:  http://127.0.0.1:$lb_admin_port/metrics   status: http://127.0.0.1:$lb_admin_port/status"
fi
echo "backends: $(printf 'http://127.0.0.1:%s/ ' "${backend_ports[@]}")"
echo "          backend metrics: $(printf 'http://127.0.0.1:%s/metrics ' "${backend_admin_ports[@]}")"
echo "          curl 'http://127.0.0.1:${backend_ports[0]}/?user_id=1'"
echo "logs in $state/; Ctrl-C stops everything"
status=0
wait -n "${pids[@]}" || status=$?
# The apps exit 0 only when a signal stopped them: Ctrl-C reaches them too
# (same process group), and may do so before this script's own trap runs.
[ $status -eq 0 ] && exit 0
echo "demo: a process exited with status $status; stopping the rest (see $state/*.log)" >&2
exit 1
