#!/bin/bash
# FerretDB with mongo:7's first-start behaviour (see Dockerfile). Settings
# reach ferretdb through its FERRETDB_* environment, so no password is on a
# command line.
set -euo pipefail

: "${MONGO_INITDB_ROOT_USERNAME:?MONGO_INITDB_ROOT_USERNAME must be set}"
: "${MONGO_INITDB_ROOT_PASSWORD:?MONGO_INITDB_ROOT_PASSWORD must be set}"
data=/data/db
marker=$data/.userkey-initialised

export FERRETDB_HANDLER=sqlite FERRETDB_SQLITE_URL="file:$data/" FERRETDB_STATE_DIR="$data" \
       FERRETDB_TELEMETRY=disable FERRETDB_DEBUG_ADDR=- FERRETDB_TEST_ENABLE_NEW_AUTH=true \
       FERRETDB_SETUP_DATABASE=admin FERRETDB_SETUP_USERNAME="$MONGO_INITDB_ROOT_USERNAME" \
       FERRETDB_SETUP_PASSWORD="$MONGO_INITDB_ROOT_PASSWORD"

if [ ! -e "$marker" ]; then
  echo "entrypoint: first start: initialising on 127.0.0.1 only"
  FERRETDB_LISTEN_ADDR=127.0.0.1:27017 FERRETDB_LOG_LEVEL=warn /usr/local/bin/ferretdb &
  pid=$!
  if ! python3 /usr/local/lib/userkey-ferretdb/initdb.py; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" || true
    echo "entrypoint: initialisation failed" >&2
    exit 1
  fi
  kill -TERM "$pid"
  wait "$pid" || true
  touch "$marker"
fi

export FERRETDB_LISTEN_ADDR=:27017
exec /usr/local/bin/ferretdb
