#!/usr/bin/env bash
# One idempotent setup for a fresh Debian bookworm machine, run as root:
# Debian packages, cargo-pgrx, pgrx init against the system PG15, a running
# cluster with a role for the invoking user, and the extension built and installed.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_MAJOR=15
PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
PGRX_VERSION=0.18.1
export PATH="$HOME/.cargo/bin:$PATH"

log() { printf '[setup] %s\n' "$*" >&2; }

need_pkgs=()
for p in postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR libclang-dev clang sudo nmap masscan pkg-config libssl-dev nginx dnsmasq-base openssl chromium chromium-driver; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing Debian packages: ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# naabu, httpx, tlsx and nuclei at the pinned versions (loader/tests/e2e_pd.rs).
scripts/install-pd-tools.sh

# Kubo (ipfs) at the pinned version, the real IPFS node of loader/tests/kubo.rs.
scripts/install-kubo.sh

if ! cargo pgrx --version 2>/dev/null | grep -q "$PGRX_VERSION"; then
  log "installing cargo-pgrx $PGRX_VERSION (takes a few minutes)"
  cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
fi

if ! grep -qs "pg$PG_MAJOR" "${PGRX_HOME:-$HOME/.pgrx}/config.toml"; then
  log "cargo pgrx init against the system PostgreSQL $PG_MAJOR"
  cargo pgrx init --pg$PG_MAJOR "$PG_CONFIG"
fi

if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -q "^$PG_MAJOR main$"; then
  log "creating cluster $PG_MAJOR/main"
  pg_createcluster $PG_MAJOR main >/dev/null
fi
if ! pg_lsclusters -h | awk '$1=='$PG_MAJOR' && $2=="main" {print $4}' | grep -q online; then
  log "starting cluster $PG_MAJOR/main"
  pg_ctlcluster $PG_MAJOR main start
fi

me=$(id -un)
if ! su postgres -c "psql -tAc \"select 1 from pg_roles where rolname='$me'\"" | grep -q 1; then
  log "creating superuser role $me"
  su postgres -c "createuser -s $me"
fi

# The nweb chain tests (loader/tests/chain): solcjs, Foundry's anvil and the EAS contracts
# from npm. Nothing is downloaded at test time: solcjs bundles the compiler, anvil's binary
# comes in its platform package (usable without the install scripts), EAS ships artifacts.
if ! command -v npm >/dev/null 2>&1; then
  log "installing Debian packages: nodejs npm"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
if ! cmp -s contracts/package-lock.json contracts/node_modules/.xray-installed-lock 2>/dev/null; then
  log "installing the contracts' npm tooling (solc, anvil, eas-contracts)"
  npm ci --prefix contracts --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
  cp contracts/package-lock.json contracts/node_modules/.xray-installed-lock
fi

log "building and installing the extension"
(cd xray_pg && cargo pgrx install --release --pg-config "$PG_CONFIG" >/dev/null)
# Earlier releases' install scripts, for the upgrade tests.
install -m 0644 sql/archive/xray_pg--*.sql "$("$PG_CONFIG" --sharedir)/extension/"
log "ready"
