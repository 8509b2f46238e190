#!/usr/bin/env bash
# docker/compose.yaml + docker/compose.podman.yaml with Debian 12's
# docker-compose (1.29) through podman's Docker-compatible API:
#
#   docker/podman/compose.sh up -d --build
#   docker/podman/compose.sh ps            (logs, exec backend-1 userkey-admin list, ...)
#   docker/podman/compose.sh down --volumes
#
# docker-compose 1.29 predates the top-level `name:` of docker/compose.yaml and
# refuses a file that has it, so this hands it a copy without that line and
# passes the name as -p instead (COMPOSE_PROJECT_NAME, when set, wins, as with
# Docker). Paths still resolve from docker/, so containers, the network and the
# volume get the names Docker gives them (userkey_mongo-data, ...).
# USERKEY_COMPOSE_EXTRA names one more override file (the tests use it).
# DOCKER_HOST defaults to podman's system socket, unix:///run/podman/podman.sock
# (`podman system service --time=0 unix:///run/podman/podman.sock &` starts it
# where systemd does not).
set -euo pipefail
docker_dir=$(cd "$(dirname "$0")/.." && pwd)
name=$(sed -n 's/^name:[[:space:]]*\([A-Za-z0-9_.-]*\).*/\1/p' "$docker_dir/compose.yaml" | head -1)
project=${COMPOSE_PROJECT_NAME:-${name:-userkey}}
copy=$(mktemp "${TMPDIR:-/tmp}/userkey-compose.XXXXXX.yaml")
trap 'rm -f "$copy"' EXIT
sed '/^name:/d' "$docker_dir/compose.yaml" > "$copy"
files=(-f "$copy" -f "$docker_dir/compose.podman.yaml")
[ -n "${USERKEY_COMPOSE_EXTRA:-}" ] && files+=(-f "$USERKEY_COMPOSE_EXTRA")
export DOCKER_HOST=${DOCKER_HOST:-unix:///run/podman/podman.sock}
rc=0
docker-compose --project-directory "$docker_dir" -p "$project" "${files[@]}" "$@" || rc=$?
exit $rc
