#!/usr/bin/env bash
# Installs what the real compose test (tests/compose-real/) and the podman path
# of docs/operations.md need on Debian 12, and nothing that is already there:
#   1. podman (runc, netavark + aardvark-dns so containers resolve each other by
#      name, and iptables, which netavark runs to set up every network: Debian
#      only suggests it, and without it a build stops with "netavark: No such
#      file or directory"), docker-compose 1.29 (it drives podman's Docker-compatible API;
#      see docker/compose.podman.yaml for why not podman-compose),
#      debootstrap, and npm when there is none;
#   2. a containers.conf drop-in: runc instead of crun (crun stops with
#      "cgroups in hybrid mode not supported" on these machines) and no default
#      ulimits (container start otherwise fails with "setrlimit ... operation
#      not permitted"), and netavark as the network backend (its DNS lets
#      containers reach each other by service name);
#   3. localhost/debian:12-local, a Debian 12 base image made with debootstrap
#      from the mirror apt already uses, since no image registry is reachable
#      here (about 2 minutes, once; `podman rmi localhost/debian:12-local`
#      forces a new one).
# Needs root (apt-get, /etc/containers, rootful podman).
set -euo pipefail

BASE_IMAGE=localhost/debian:12-local
CONF=/etc/containers/containers.conf.d/50-userkey.conf

if [ "$(id -u)" -ne 0 ]; then
  echo "install-containers: needs root (apt-get, /etc/containers, rootful podman)" >&2
  exit 1
fi

packages=(podman runc netavark aardvark-dns iptables docker-compose debootstrap)
missing=()
# npm: docker/podman/build-images.sh installs mongo-express's npm package with it.
command -v npm >/dev/null 2>&1 || missing+=(npm)
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-containers: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

want_conf=$'# Written by userkey scripts/install-containers.sh\n[containers]\ndefault_ulimits = []\n\n[network]\nnetwork_backend = "netavark"\n\n[engine]\nruntime = "runc"\n'
if [ ! -f "$CONF" ] || [ "$(cat "$CONF")"$'\n' != "$want_conf" ]; then
  mkdir -p "$(dirname "$CONF")"
  printf '%s' "$want_conf" > "$CONF"
  echo "install-containers: wrote $CONF (runc, no default ulimits, netavark)"
fi

if podman image exists "$BASE_IMAGE"; then
  exit 0
fi

# The mirror apt uses (deb822 debian.sources, else the one-line sources.list).
mirror=${USERKEY_DEBIAN_MIRROR:-}
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list.d/debian.sources ]; then
  mirror=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
fi
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
  mirror=$(awk '$1 == "deb" && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list)
fi
mirror=${mirror:-http://deb.debian.org/debian}

echo "install-containers: building $BASE_IMAGE with debootstrap from $mirror (about 2 minutes)"
root=$(mktemp -d /var/tmp/userkey-debian12.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 || {
  tail -20 "$root.log" >&2; rm -f "$root.log"; echo "install-containers: debootstrap failed" >&2; exit 1; }
rm -f "$root.log"

# apt inside containers uses the same mirrors as this machine's apt, with the
# point-release and security suites debian:12 images have.
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/debian.sources"
  : > "$root/etc/apt/sources.list"
fi
# Like debian:12-slim: no documentation, man pages or translations in images.
cat > "$root/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/*.log "$root"/tmp/* \
       "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete

tar --numeric-owner -C "$root" -c . | podman import --quiet --change 'CMD ["bash"]' - "$BASE_IMAGE" >/dev/null
podman image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$BASE_IMAGE"
