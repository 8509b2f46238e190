#!/usr/bin/env bash
# Installs what userkey needs on Debian 12, and nothing that is already there.
#   scripts/install-deps.sh          build + run (make demo)
#   scripts/install-deps.sh --test   also what the tests need (make test), incl. the
#                                    container tooling and local images of the
#                                    real compose test (as root; see below)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(g++ cmake ninja-build make pkg-config libcpp-httplib-dev libmongoc-dev libbson-dev libspdlog-dev
          libboost-dev libssl-dev libcli11-dev nlohmann-json3-dev libtomlplusplus-dev curl ca-certificates)
want_test=0
if [ "${1:-}" = "--test" ]; then
  want_test=1
  packages+=(doctest-dev python3 python3-yaml python3-websockets clang-14 libfuzzer-14-dev libclang-rt-14-dev openssl
            ccache)
elif [ "${USERKEY_NEED_FERRETDB:-0}" = 1 ]; then
  packages+=(python3)  # scripts/install-go.sh checks and unpacks a Go toolchain with it
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "install-deps: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ $want_test -eq 1 ] || [ "${USERKEY_NEED_FERRETDB:-0}" = 1 ]; then
  # A Go >= 1.24 on PATH builds FerretDB when it is missing; without one,
  # scripts/install-go.sh installs its pinned toolchain (see there).
  if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then export PATH=$PATH:/usr/local/go/bin; fi
  if [ "$(id -u)" -eq 0 ]; then
    scripts/install-ferretdb.sh
  else
    FERRETDB_PREFIX="$HOME/.local/bin" scripts/install-ferretdb.sh
  fi
fi

# The real compose test (tests/compose-real/, label compose): podman,
# docker-compose, the local Debian base image and the images that stand in for
# mongo:7 and mongo-express (they need the FerretDB binary above). Rootful
# podman: as root only; the test skips itself otherwise.
if [ $want_test -eq 1 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    scripts/install-containers.sh
    docker/podman/build-images.sh
  else
    echo "install-deps: not root, so no container tooling: the compose test will be skipped"
  fi
fi
