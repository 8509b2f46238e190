#!/usr/bin/env bash
# Runs the demo topology natively: three backends on 127.0.0.1:5001-5003 and
# the lb on 127.0.0.1:8080 (admin on 127.0.0.1:9100).
#   scripts/demo.sh embedded   backends read the committed dump
#   scripts/demo.sh mongo      a local FerretDB (auth on) seeded from dump/ by userkey-admin
# Ctrl-C stops every process it started.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-embedded}
bin=${USERKEY_BIN:-build/apps}
state=.demo
mkdir -p "$state"

pids=()
cleanup() {
  trap - INT TERM EXIT
  if [ ${#pids[@]} -gt 0 ]; then
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
  echo "demo stopped"
  exit 0
}
trap cleanup INT TERM EXIT

wait_port() {  # host port
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "demo: nothing listens on $1:$2; see $state/*.log" >&2
  exit 1
}

backend_args=()
if [ "$mode" = mongo ]; then
  # Documented demo defaults; export your own to override.
  export mongo_user=${mongo_user:-userkey}
  export mongo_pass=${mongo_pass:-userkey-demo}
  mongo_port=${USERKEY_DEMO_MONGO_PORT:-27017}
  ferretdb=$(command -v ferretdb || echo "$HOME/.local/bin/ferretdb")
  mkdir -p "$state/ferretdb"
  "$ferretdb" --handler=sqlite --sqlite-url="file:$PWD/$state/ferretdb/" --state-dir="$state/ferretdb" \
    --listen-addr="127.0.0.1:$mongo_port" \
    --telemetry=disable --debug-addr=- --log-level=warn --test-enable-new-auth --setup-database=admin \
    --setup-username="$mongo_user" --setup-password="$mongo_pass" >"$state/ferretdb.log" 2>&1 &
  pids+=($!)
  wait_port 127.0.0.1 "$mongo_port"
  uri="mongodb://127.0.0.1:$mongo_port/"
  "$bin/userkey-admin" --mongo-uri "$uri" restore dump
  backend_args=(--mongo-uri "$uri" --cache-ttl 5s)
elif [ "$mode" = embedded ]; then
  backend_args=(--dump dump)
else
  echo "usage: $0 embedded|mongo" >&2
  exit 2
fi

for i in 1 2 3; do
  # Each backend's /metrics is on its own admin address, which the lb never
  # forwards to (its main port answers /metrics with 404).
  "$bin/userkey-backend" --listen "127.0.0.1:500$i" --admin "127.0.0.1:910$i" --name "backend-$i" "${backend_args[@]}" \
    >"$state/backend-$i.log" 2>&1 &
  pids+=($!)
done
for i in 1 2 3; do wait_port 127.0.0.1 "500$i"; done

if [ -x "$bin/userkey-lb" ]; then
  "$bin/userkey-lb" --listen 127.0.0.1:8080 --admin 127.0.0.1:9100 \
    --upstream 127.0.0.1:5001 --upstream 127.0.0.1:5002 --upstream 127.0.0.1:5003 >"$state/lb.log" 2>&1 &
  pids+=($!)
  wait_port 127.0.0.1 8080
  echo "lb:       http://127.0.0.1:8080/   (try http://127.0.0.1:8080/?user_id=1 and reload)"
  echo "metrics:  http://127.0.0.1:9100/metrics   status: http://127.0.0.1:9100/status"
fi
echo "backends: http://127.0.0.1:5001/ http://127.0.0.1:5002/ http://127.0.0.1:5003/"
echo "          backend metrics: http://127.0.0.1:9101/metrics (9102, 9103)"
echo "          curl 'http://127.0.0.1:5001/?user_id=1'"
echo "logs in $state/; Ctrl-C stops everything"
wait -n "${pids[@]}" || true
echo "demo: a process exited; stopping the rest (see $state/*.log)" >&2
