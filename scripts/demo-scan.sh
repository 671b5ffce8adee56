#!/usr/bin/env bash
# The main job on real services: a deliberately weak attack surface is started
# on 127.0.0.1 (demo-services: nginx with a self-signed certificate, TLS 1.0
# and no security headers; an SSH-like listener on 2222; a port that never
# answers on 9200; dnsmasq serving watchtower.test with SPF ~all and DMARC
# p=none; an admin login page at /admin/), `xray-loader scan` scans it into a
# fresh database `xray_scan_demo`, the services are partly fixed (two headers
# added, the admin page and SSH gone, SPF -all) and scanned again. Then the
# events and the open exposures are printed and the services stopped.
# Loopback only; about two minutes with nmap, less with ProjectDiscovery.
#
#   scripts/demo-scan.sh [--toolchain auto|projectdiscovery|nmap]
#
# auto (the default) takes ProjectDiscovery (naabu, httpx, tlsx, nuclei) when
# all four are installed, as scripts/setup.sh does, else nmap.
set -euo pipefail
cd "$(dirname "$0")/.."

toolchain=auto
while [ $# -gt 0 ]; do
  case $1 in
    --toolchain) toolchain=${2:-}; shift 2 ;;
    --toolchain=*) toolchain=${1#*=}; shift ;;
    *) echo "usage: $0 [--toolchain auto|projectdiscovery|nmap]" >&2; exit 2 ;;
  esac
done
case $toolchain in
  auto|projectdiscovery|nmap) ;;
  *) echo "--toolchain: must be auto, projectdiscovery or nmap, got '$toolchain'" >&2; exit 2 ;;
esac
export PATH="$HOME/.cargo/bin:$PATH"
scripts/setup.sh

log() { printf '\n== %s ==\n' "$*"; }

cargo build -q -p xray_loader --bin xray-loader --bin demo-services
BIN="${CARGO_TARGET_DIR:-target}/debug"

DB=xray_scan_demo
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h /var/run/postgresql)
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
"${PSQL[@]}" -d "$DB" -c "CREATE EXTENSION xray_pg"
export DATABASE_URL="host=/var/run/postgresql dbname=$DB"

work=$(mktemp -d /tmp/xray-demo-scan.XXXXXX)
coproc SVC { exec "$BIN/demo-services" --dir "$work" --toolchain "$toolchain"; }
svc_pid=$SVC_PID
svc_in=${SVC[1]}
svc_out=${SVC[0]}
cleanup() {
  # End of input stops every service; they die with demo-services anyway.
  exec {svc_in}>&- 2>/dev/null || true
  wait "$svc_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

svc() {
  echo "$1" >&"$svc_in"
  local reply
  read -r -t 60 -u "$svc_out" reply || { echo "demo-services did not answer '$1'" >&2; exit 1; }
  [ "$reply" = "ok $1" ] || { echo "demo-services: $reply" >&2; exit 1; }
}

ready=
read -r -t 60 -u "$svc_out" ready || true
case $ready in
  "ready "*) ;;
  *) echo "demo-services did not start (see the message above)" >&2; exit 1 ;;
esac
assets="$work/assets.toml"

log "Demo services on 127.0.0.1: ${ready#ready }"
log "Scan 1: everything weak (xray-loader scan --assets $assets)"
"$BIN/xray-loader" scan --assets "$assets"

log "Remediation: X-Frame-Options and X-Content-Type-Options added, admin page and SSH gone, SPF -all"
svc remediate
log "Scan 2"
"$BIN/xray-loader" scan --assets "$assets"

log "Events (xray-loader events)"
"$BIN/xray-loader" events

log "Open exposures"
"${PSQL[@]}" -d "$DB" -P pager=off <<'SQL'
SELECT risk_bucket, observed_host, proto, port, detail, evidence->>'tool' AS tool, first_seen, last_seen
  FROM xray.exposures
 WHERE status = 'open'
 ORDER BY risk_bucket, observed_host, port;
SQL
