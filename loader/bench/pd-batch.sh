#!/usr/bin/env bash
# Per-address against batched ProjectDiscovery runs (BENCHMARKS.md).
#
# demo-services listens on 127.0.1.1 .. 127.0.1.N (N=64 by default): nginx
# with TLS on 18443 and the SSH-like banner on 2222 at every address. One
# `xray-loader scan --out` of the N addresses as one CIDR asset runs each
# tool once over all of them (batched); the per-address run is N loader
# scans of one `--target` each, two at a time (the default
# `limits.parallel_endpoints`), which is how the chain ran before: one naabu,
# httpx, tlsx and nuclei process per address. Loopback only; no database.
#
#   loader/bench/pd-batch.sh [N]
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-64}
cargo build -q -p xray_loader --bin xray-loader --bin demo-services
BIN="${CARGO_TARGET_DIR:-target}/debug"

work=$(mktemp -d /tmp/xray-pd-bench.XXXXXX)
extra=()
for i in $(seq 1 "$n"); do extra+=(--extra-ip "127.0.1.$i"); done
coproc SVC { exec "$BIN/demo-services" --dir "$work" --toolchain projectdiscovery "${extra[@]}"; }
svc_pid=$SVC_PID
cleanup() {
  exec {SVC[1]}>&- 2>/dev/null || true
  wait "$svc_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
read -r -t 120 -u "${SVC[0]}" ready || { echo "demo-services did not start" >&2; exit 1; }

# N addresses as one CIDR asset (127.0.1.0/25 holds 1..126), only the two
# service ports; a silent port would cost tlsx's timeouts in both runs alike.
net=127.0.1.0/25
sed -e 's/^ports = .*/ports = [2222, 18443]/' \
    -e '/^\[\[assets\]\]/,$d' "$work/assets.toml" > "$work/bench.toml"
cat >> "$work/bench.toml" <<EOF
[[assets]]
id = "0a7c0000-0000-4000-8000-0000000000b1"
type = "cidr"
value = "$net"
EOF
targets=()
for i in $(seq 1 "$n"); do targets+=(--target "127.0.1.$i"); done

t0=$(date +%s.%N)
"$BIN/xray-loader" scan --assets "$work/bench.toml" "${targets[@]}" --out "$work/batched.json"
t_batched=$(date +%s.%N)
# One scan per address; each has its own lock directory, since a tenant's
# scans are serialised by a lock file.
for i in $(seq 1 "$n"); do
  mkdir -p "$work/lock-$i"
  sed "s|^lock_dir = .*|lock_dir = \"$work/lock-$i\"|" "$work/bench.toml" > "$work/one-$i.toml"
done
t1=$(date +%s.%N)
seq 1 "$n" | xargs -P 2 -I{} "$BIN/xray-loader" scan --assets "$work/one-{}.toml" --target 127.0.1.{} --out "$work/one-{}.json"
t2=$(date +%s.%N)

open() { python3 -c 'import json,sys
t=0
for f in sys.argv[1:]:
    p=json.load(open(f)); t+=p["summary"]["ports_open_total"]
print(t)' "$@"; }
python3 -c 'import sys; n,a,b,c,d=sys.argv[1:]; a,b,c,d=map(float,(a,b,c,d))
print(f"addresses={n} batched_s={b-a:.1f} per_address_s={c-d:.1f} ratio={(c-d)/(b-a):.1f}")' "$n" "$t0" "$t_batched" "$t2" "$t1"
echo "open ports: batched=$(open "$work/batched.json") per_address=$(open "$work"/one-*.json)"
