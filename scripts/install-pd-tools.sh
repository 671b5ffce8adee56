#!/usr/bin/env bash
# Builds the pinned ProjectDiscovery tools into /usr/local/bin, idempotently:
# a tool whose `-version` already reports the pinned version is not rebuilt.
# The versions are the ones docs/toolchain.md documents and the loader's
# end-to-end test (loader/tests/e2e_pd.rs) runs.
#
# `go install module@version` cannot be used: it asks the module proxy for the
# module's version list to check deprecation, and the proxy this project
# reaches refuses list requests while it serves the exact versions. So each
# module is fetched with `go mod download` and built inside its own module
# directory, which uses the tool's own go.mod and go.sum exactly as
# `go install` would.
set -euo pipefail

BIN_DIR=${PD_BIN_DIR:-/usr/local/bin}
GO=$(command -v go || echo /usr/local/go/bin/go)

# name  module  version  package
TOOLS=(
  "naabu  github.com/projectdiscovery/naabu/v2   v2.6.1  ./cmd/naabu"
  "httpx  github.com/projectdiscovery/httpx      v1.10.0 ./cmd/httpx"
  "tlsx   github.com/projectdiscovery/tlsx       v1.2.2  ./cmd/tlsx"
  "nuclei github.com/projectdiscovery/nuclei/v3  v3.11.1 ./cmd/nuclei"
)

log() { printf '[pd-tools] %s\n' "$*" >&2; }

installed_version() {
  # "Current Version: vX.Y.Z" (tlsx "version", naabu without the v; nuclei "Engine Version").
  "$BIN_DIR/$1" -version 2>&1 | sed -n 's/.*[Vv]ersion: v\{0,1\}\([0-9][0-9.]*\).*/\1/p' | head -1
}

# naabu links libpcap even for the connect scan the loader asks for.
if ! dpkg-query -W -f='${Status}' libpcap-dev 2>/dev/null | grep -q "install ok installed"; then
  log "installing Debian package libpcap-dev"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends libpcap-dev >/dev/null
fi

if [ ! -x "$GO" ]; then
  log "no Go toolchain found (go on PATH or /usr/local/go/bin/go)"
  exit 1
fi

for spec in "${TOOLS[@]}"; do
  read -r name module version pkg <<<"$spec"
  if [ -x "$BIN_DIR/$name" ] && [ "$(installed_version "$name")" = "${version#v}" ]; then
    continue
  fi
  log "building $name $version (the first build of all four took 16 minutes on 2 busy cores, nuclei 11 of them)"
  started=$(date +%s)
  dir=$("$GO" mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  if [ -z "$dir" ]; then
    log "go mod download $module@$version failed"
    exit 1
  fi
  (cd "$dir" && GOFLAGS=-mod=readonly "$GO" build -trimpath -o "$BIN_DIR/$name.new" "$pkg")
  mv "$BIN_DIR/$name.new" "$BIN_DIR/$name"
  got=$(installed_version "$name")
  if [ "$got" != "${version#v}" ]; then
    log "$name reports version '$got' after building $version"
    exit 1
  fi
  log "$name $version built in $(( $(date +%s) - started ))s"
done
