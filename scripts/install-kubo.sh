#!/usr/bin/env bash
# Builds the pinned Kubo (the IPFS node the nweb tests compare our CIDs, CARs
# and pins against, loader/tests/chain/kubo.rs) into /usr/local/bin, idempotently:
# when `ipfs version` already reports the pin nothing is rebuilt.
#
# Like scripts/install-pd-tools.sh, and for the same reason, the module is
# fetched with `go mod download` and built in its own module directory instead
# of `go install module@version`: the module proxy this project reaches serves
# exact versions but refuses the version-list request `go install` makes.
#
# v0.43.0, not v0.43.1: v0.43.1's go.mod replaces go-libp2p with a fork
# (github.com/lidel/go-libp2p) that the module proxy does not serve, so it
# cannot be built here; v0.43.0 builds from released modules only.
set -euo pipefail

BIN_DIR=${KUBO_BIN_DIR:-/usr/local/bin}
GO=$(command -v go || echo /usr/local/go/bin/go)
MODULE=github.com/ipfs/kubo
VERSION=v0.43.0

log() { printf '[kubo] %s\n' "$*" >&2; }

installed_version() {
  # Prints "ipfs version 0.43.1".
  "$BIN_DIR/ipfs" version 2>/dev/null | sed -n 's/^ipfs version \([0-9][0-9.]*\).*/\1/p' | head -1
}

if [ -x "$BIN_DIR/ipfs" ] && [ "$(installed_version)" = "${VERSION#v}" ]; then
  exit 0
fi
if [ ! -x "$GO" ]; then
  log "no Go toolchain found (go on PATH or /usr/local/go/bin/go)"
  exit 1
fi

log "building ipfs (Kubo) $VERSION (takes many minutes on 2 cores)"
started=$(date +%s)
dir=$("$GO" mod download -json "$MODULE@$VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [ -z "$dir" ]; then
  log "go mod download $MODULE@$VERSION failed"
  exit 1
fi
(cd "$dir" && GOFLAGS=-mod=readonly "$GO" build -trimpath -o "$BIN_DIR/ipfs.new" ./cmd/ipfs)
mv "$BIN_DIR/ipfs.new" "$BIN_DIR/ipfs"
got=$(installed_version)
if [ "$got" != "${VERSION#v}" ]; then
  log "ipfs reports version '$got' after building $VERSION"
  exit 1
fi
log "ipfs $VERSION built in $(( $(date +%s) - started ))s"
