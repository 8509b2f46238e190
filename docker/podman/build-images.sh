#!/usr/bin/env bash
# Builds the two local images docker/compose.podman.yaml uses in the place of
# images this machine cannot pull:
#   localhost/userkey-ferretdb:1.24.2       for mongo:7 (docker/podman/ferretdb/)
#   localhost/userkey-mongo-express:1.0.0   for mongo-express:1.0 (docker/podman/mongo-express/)
# both FROM localhost/debian:12-local (scripts/install-containers.sh makes it).
# Each build context is staged in a temporary directory: this directory's
# files plus the ferretdb binary (scripts/install-ferretdb.sh builds it), or
# the node_modules `npm ci` installs from the committed package-lock.json.
# An image whose inputs did not change is kept (label userkey.inputs), so a
# second run takes seconds.
#   docker/podman/build-images.sh [--force]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BASE=${USERKEY_BASE_IMAGE:-localhost/debian:12-local}
FERRETDB_IMAGE=localhost/userkey-ferretdb:1.24.2
ME_IMAGE=localhost/userkey-mongo-express:1.0.0
force=0
[ "${1:-}" = "--force" ] && force=1

command -v podman >/dev/null || { echo "build-images: podman is missing (scripts/install-containers.sh)" >&2; exit 1; }
podman image exists "$BASE" || {
  echo "build-images: $BASE is missing (scripts/install-containers.sh makes it)" >&2; exit 1; }
ferretdb=${FERRETDB:-$(command -v ferretdb || true)}
[ -n "$ferretdb" ] || ferretdb=/usr/local/bin/ferretdb
[ -x "$ferretdb" ] || { echo "build-images: no ferretdb binary (scripts/install-ferretdb.sh)" >&2; exit 1; }
command -v npm >/dev/null || { echo "build-images: npm is missing (apt-get install npm)" >&2; exit 1; }

stage=$(mktemp -d /var/tmp/userkey-images.XXXXXX)
trap 'rm -rf "$stage"' EXIT
base_id=$(podman image inspect --format '{{.Id}}' "$BASE")

# The digest of an image's inputs: the base image and the named files.
digest() {  # DIR FILE...
  local dir=$1; shift
  (echo "$base_id"; cd "$dir" && sha256sum "$@") | sha256sum | cut -c1-32
}
up_to_date() {  # IMAGE DIGEST
  [ $force -eq 0 ] && [ "$(podman image inspect --format '{{index .Labels "userkey.inputs"}}' "$1" 2>/dev/null)" = "$2" ]
}
build() {  # IMAGE CONTEXT DIGEST
  echo "build-images: building $1"
  podman build -q --build-arg DEBIAN_IMAGE="$BASE" --label userkey.inputs="$3" -t "$1" "$2" >/dev/null
  podman image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$1"
}

mkdir "$stage/ferretdb"
cp "$here"/ferretdb/Dockerfile "$here"/ferretdb/*.sh "$here"/ferretdb/*.py "$stage/ferretdb/"
cp "$ferretdb" "$stage/ferretdb/ferretdb"
d=$(digest "$stage/ferretdb" Dockerfile entrypoint.sh initdb.py ping.py ferretdb)
if up_to_date "$FERRETDB_IMAGE" "$d"; then
  echo "build-images: $FERRETDB_IMAGE is up to date"
else
  build "$FERRETDB_IMAGE" "$stage/ferretdb" "$d"
fi

mkdir "$stage/mongo-express"
cp "$here"/mongo-express/Dockerfile "$here"/mongo-express/package.json "$here"/mongo-express/package-lock.json \
   "$stage/mongo-express/"
d=$(digest "$stage/mongo-express" Dockerfile package.json package-lock.json)
if up_to_date "$ME_IMAGE" "$d"; then
  echo "build-images: $ME_IMAGE is up to date"
else
  (cd "$stage/mongo-express" && npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
  build "$ME_IMAGE" "$stage/mongo-express" "$d"
fi
