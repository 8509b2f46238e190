#!/usr/bin/env bash
# Finds or installs a Go toolchain new enough to build FerretDB v1.24.2 and
# prints the path of its `go` binary on stdout (messages go to stderr).
#
# FerretDB v1.24.2's go.mod says `go 1.24` (and `toolchain go1.24.3`), so Go
# >= 1.24 is needed; Debian 12's `golang` is 1.19. In order:
#   1. `go` on PATH, when it is Go >= 1.24;
#   2. the pinned toolchain below, already unpacked in the cache directory;
#   3. that toolchain fetched and unpacked there: the Go project's own
#      toolchain module, golang.org/toolchain@v0.0.1-go<version>.<os>-<arch>,
#      the zip `GOTOOLCHAIN=go<version>` makes a Go >= 1.21 download, taken
#      from the Go module proxy and checked against its pinned go.sum hash
#      (h1:, the record sum.golang.org holds for it) before anything in it
#      runs.
# Cache directory: $USERKEY_GO_DIR, else /opt/userkey-go as root, else
# ${XDG_CACHE_HOME:-~/.cache}/userkey-go; the toolchain lives in
# <cache>/go<version>/ (about 230 MB; the download is 83 MB). A second run
# takes well under a second. Proxy: the first URL in $GOPROXY, else
# https://proxy.golang.org. Needs curl and python3 (hash and unzip).
#   scripts/install-go.sh          prints e.g. /opt/userkey-go/go1.24.13/bin/go
set -euo pipefail

GO_MIN=1.24          # FerretDB v1.24.2's go.mod `go` line
GO_VERSION=1.24.13   # the pinned toolchain (latest 1.24 patch release when pinned)
declare -A GO_SUM=(  # go.sum hashes of golang.org/toolchain@v0.0.1-go${GO_VERSION}.linux-<arch>
  [amd64]=h1:5sgfUhn9QCgVl4UYj32GrIYFHI3bi2UX55tNfupXwxc=
  [arm64]=h1:l0oOtQpOBay3IDfyGSF3ZLivy3x5c1byllrr/QfyDeM=
)

log() { echo "install-go: $*" >&2; }

# The Go version a `go` binary reports (go1.24.13 -> 1.24.13), empty if it
# does not run. GOTOOLCHAIN=local: never let it switch to another toolchain.
go_version() {
  local v
  v=$(GOTOOLCHAIN=local "$1" env GOVERSION 2>/dev/null) || return 0
  echo "${v#go}"
}
at_least() {  # VERSION MIN
  [ -n "$1" ] && [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]
}

if path_go=$(command -v go 2>/dev/null); then
  v=$(go_version "$path_go")
  if at_least "$v" "$GO_MIN"; then
    echo "$path_go"
    exit 0
  fi
  log "$path_go is Go ${v:-?}, older than $GO_MIN: using go$GO_VERSION"
fi

if [ -n "${USERKEY_GO_DIR:-}" ]; then
  cache=$USERKEY_GO_DIR
elif [ "$(id -u)" -eq 0 ]; then
  cache=/opt/userkey-go
else
  cache=${XDG_CACHE_HOME:-$HOME/.cache}/userkey-go
fi
root=$cache/go$GO_VERSION
if [ "$(go_version "$root/bin/go" 2>/dev/null)" = "$GO_VERSION" ]; then
  echo "$root/bin/go"
  exit 0
fi

case "$(uname -m)" in
  x86_64) arch=amd64 ;;
  aarch64) arch=arm64 ;;
  *) log "no pinned Go toolchain for $(uname -m): install Go >= $GO_MIN on PATH"; exit 1 ;;
esac
command -v curl >/dev/null || { log "curl is needed to fetch Go"; exit 1; }
command -v python3 >/dev/null || { log "python3 is needed to check and unpack Go"; exit 1; }

mkdir -p "$cache"
# One installer at a time (two test runs, two worktrees); the second finds
# the first one's result.
exec 9>"$cache/.lock"
flock 9
if [ "$(go_version "$root/bin/go" 2>/dev/null)" = "$GO_VERSION" ]; then
  echo "$root/bin/go"
  exit 0
fi

proxy=https://proxy.golang.org
IFS=',|' read -r -a proxies <<<"${GOPROXY:-}"
for p in "${proxies[@]}"; do
  case "$p" in direct | off | "") ;; *) proxy=${p%/}; break ;; esac
done
module=golang.org/toolchain
mod_version=v0.0.1-go$GO_VERSION.linux-$arch
url="$proxy/$module/@v/$mod_version.zip"

work=$(mktemp -d "$cache/.install.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
log "fetching go$GO_VERSION ($url, about 80 MB)"
curl -fsSL --retry 2 --connect-timeout 20 -o "$work/go.zip" "$url" || { log "download failed: $url"; exit 1; }

# Checks the zip's go.sum hash (the "h1" directory hash of golang.org/x/mod:
# SHA-256 over the sorted lines "<sha256 hex>  <name>\n" of every file), then
# unpacks it without the module path prefix, with executable bits on bin/,
# pkg/tool/ and lib/ (module zips carry no file modes; `go` sets the same
# bits after its own toolchain download).
python3 - "$work/go.zip" "$module@$mod_version/" "${GO_SUM[$arch]}" "$work/go" <<'PY'
import base64, hashlib, os, sys, zipfile

zip_path, prefix, want, dest = sys.argv[1:]
with zipfile.ZipFile(zip_path) as z:
    files = [i for i in z.infolist() if not i.is_dir()]
    summary = hashlib.sha256()
    for info in sorted(files, key=lambda i: i.filename):
        if "\n" in info.filename or not info.filename.startswith(prefix):
            sys.exit(f"install-go: unexpected file in the zip: {info.filename!r}")
        summary.update(f"{hashlib.sha256(z.read(info)).hexdigest()}  {info.filename}\n".encode())
    got = "h1:" + base64.b64encode(summary.digest()).decode()
    if got != want:
        sys.exit(f"install-go: checksum mismatch: the zip is {got}, go.sum says {want}")
    for info in files:
        rel = info.filename[len(prefix):]
        parts = rel.split("/")
        if not rel or rel.startswith("/") or ".." in parts:
            sys.exit(f"install-go: unsafe path in the zip: {info.filename!r}")
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as out:
            out.write(z.read(info))
        executable = parts[0] in ("bin", "lib") or parts[:2] == ["pkg", "tool"]
        os.chmod(target, 0o755 if executable else 0o644)
PY
v=$(go_version "$work/go/bin/go")
[ "$v" = "$GO_VERSION" ] || { log "the unpacked toolchain reports Go '${v}', not $GO_VERSION"; exit 1; }
rm -rf "$root"
mv "$work/go" "$root"
log "installed go$GO_VERSION in $root"
echo "$root/bin/go"
