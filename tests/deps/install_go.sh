#!/usr/bin/env bash
# scripts/install-go.sh and scripts/install-ferretdb.sh on a machine view
# with no Go on PATH (label deps):
#   1. a Go older than 1.24 on PATH (Debian's 1.19) is passed over;
#   2. with no go on PATH, the pinned toolchain is found in (or, the first
#      time, fetched into) the same cache `make test` uses, and a second run
#      fetches nothing;
#   3. a Go >= 1.24 on PATH is taken as it is;
#   4. a toolchain zip whose hash is not the pinned go.sum hash is refused and
#      nothing is installed (a fake proxy on file://, nothing downloaded);
#   5. that Go builds and runs a program;
#   6. install-ferretdb.sh --check reports FerretDB installed, and with it
#      hidden says it would build it with that Go (no FerretDB build here).
# Skips (77) when the toolchain is not cached yet and the proxy is unreachable.
#   tests/deps/install_go.sh SOURCE_DIR
set -euo pipefail
src=$(cd "$1" && pwd)
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# PATH without any directory holding a `go` (nor one holding ferretdb, for 6).
without() {  # NAME
  local out="" d
  IFS=: read -r -a dirs <<<"$PATH"
  for d in "${dirs[@]}"; do
    [ -n "$d" ] && [ ! -x "$d/$1" ] && out=${out:+$out:}$d
  done
  echo "$out"
}
nogo=$(without go)
if PATH=$nogo command -v go >/dev/null; then fail "go still on PATH=$nogo"; fi
echo "PATH without go: $nogo"

fake_go() {  # DIR VERSION: a `go` that only answers `go env GOVERSION`
  mkdir -p "$1"
  printf '#!/bin/sh\n[ "$1 $2" = "env GOVERSION" ] && echo go%s && exit 0\nexit 2\n' "$2" >"$1/go"
  chmod +x "$1/go"
}

echo "== 1. Debian's Go 1.19 on PATH is too old"
fake_go "$work/old" 1.19.8
if ! go=$(PATH=$work/old:$nogo timeout 300 "$src/scripts/install-go.sh" 2>"$work/err1"); then
  cat "$work/err1" >&2
  proxy=${GOPROXY:-https://proxy.golang.org}; proxy=${proxy%%[,|]*}
  if grep -q "download failed" "$work/err1" && ! curl -fsS -m 10 -o /dev/null "$proxy/golang.org/toolchain/@v/list"; then
    echo "the Go toolchain is not cached and $proxy is unreachable: skipped"
    exit 77
  fi
  fail "install-go.sh failed"
fi
cat "$work/err1"
grep -q "older than 1.24" "$work/err1" || fail "no word about the old Go"
[ "$go" != "$work/old/go" ] || fail "took the old Go"
version=$(GOTOOLCHAIN=local "$go" env GOVERSION)
echo "-> $go ($version)"
[ "$(printf '%s\n%s\n' 1.24 "${version#go}" | sort -V | head -1)" = 1.24 ] || fail "$go is $version, not >= 1.24"

echo "== 2. no go on PATH: the cached toolchain, nothing fetched"
go2=$(PATH=$nogo "$src/scripts/install-go.sh" 2>"$work/err2")
[ "$go2" = "$go" ] || fail "second run gave $go2, first $go"
[ ! -s "$work/err2" ] || { cat "$work/err2" >&2; fail "second run said something (fetched again?)"; }
echo "-> $go2"

echo "== 3. a new enough Go on PATH is used as it is"
fake_go "$work/new" 1.25.0
go3=$(PATH=$work/new:$nogo "$src/scripts/install-go.sh")
[ "$go3" = "$work/new/go" ] || fail "Go 1.25 on PATH not taken (got $go3)"
echo "-> $go3"

echo "== 4. a zip with the wrong hash is refused"
pinned=$(sed -n 's/^GO_VERSION=\([0-9.]*\).*/\1/p' "$src/scripts/install-go.sh")
case "$(uname -m)" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) arch=unknown ;; esac
if [ "$arch" != unknown ]; then
  mkdir -p "$work/proxy/golang.org/toolchain/@v"
  python3 - "$work/proxy/golang.org/toolchain/@v/v0.0.1-go$pinned.linux-$arch.zip" \
    "golang.org/toolchain@v0.0.1-go$pinned.linux-$arch/" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr(sys.argv[2] + "bin/go", "#!/bin/sh\necho not go\n")
PY
  if PATH=$nogo USERKEY_GO_DIR=$work/cache GOPROXY="file://$work/proxy" \
     "$src/scripts/install-go.sh" >/dev/null 2>"$work/err4"; then
    fail "a zip with the wrong hash was accepted"
  fi
  cat "$work/err4"
  grep -q "checksum mismatch" "$work/err4" || fail "refused, but not for its checksum"
  [ ! -e "$work/cache/go$pinned" ] || fail "something was installed from the bad zip"
  [ -z "$(find "$work/cache" -mindepth 1 -maxdepth 1 ! -name .lock)" ] || fail "scratch files left in the cache"
fi

echo "== 5. that Go builds a program"
mkdir "$work/hello"
printf 'package main\n\nfunc main() { println("hello from", "go") }\n' >"$work/hello/hello.go"
(cd "$work/hello" && PATH=$nogo GOTOOLCHAIN=local GOFLAGS= timeout 300 "$go" build -o hello hello.go)
[ "$("$work/hello/hello" 2>&1)" = "hello from go" ] || fail "the built program did not run"

echo "== 6. install-ferretdb.sh --check"
PATH=$nogo "$src/scripts/install-ferretdb.sh" --check | tee "$work/out6"
grep -q -e "is installed:" -e "would build it with" "$work/out6" || fail "unexpected --check answer"
PATH=$(PATH=$nogo without ferretdb) FERRETDB_PREFIX=$work/prefix \
  "$src/scripts/install-ferretdb.sh" --check | tee "$work/out6b"
grep -qF "is missing: would build it with $go " "$work/out6b" || fail "expected: would build it with $go"
[ ! -e "$work/prefix" ] || fail "--check created the prefix"
echo "install go: ok"
