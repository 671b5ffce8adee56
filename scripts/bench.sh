#!/usr/bin/env bash
# The benchmark suite in one command (see BENCHMARKS.md):
#   1. scripts/setup.sh: packages, PostgreSQL 15, the extension built and installed
#   2. criterion benchmarks of the pure crates: xray_engine (parse, normalise,
#      diff, identity) and nweb (Merkle root)
#   3. xray-bench: ingest inside PostgreSQL (trigger vs bare INSERT, 1k and 10k
#      endpoints, first scan / no-change rescan / 10 % churn, 3 repetitions),
#      the scale run at 100k endpoints, the engine alone at every size, and
#      Merkle roots over 100 MB of scanprint JSONL against sha256sum
# and prints the summary. Results: target/xray-bench/results.md and criterion.txt.
#
# Extra arguments go to xray-bench, e.g. `scripts/bench.sh --profile` (perf
# profiles of the 10k rescan) or `scripts/bench.sh --reps 1 --scale-sizes ""`.
# SKIP_SETUP=1 skips step 1 (the extension must already be installed).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export DATABASE_URL="${DATABASE_URL:-host=/var/run/postgresql dbname=postgres}"
out=target/xray-bench
mkdir -p "$out"
t0=$(date +%s)
log() { printf '[bench %4ss] %s\n' "$(( $(date +%s) - t0 ))" "$*" >&2; }

if [ "${SKIP_SETUP:-0}" != 1 ]; then
  log "scripts/setup.sh"
  scripts/setup.sh
fi

log "building (release)"
cargo build --release -p xray_bench
cargo bench -p xray_engine --bench engine --no-run
cargo bench -p nweb --bench merkle --no-run

log "criterion: cargo bench -p xray_engine --bench engine; cargo bench -p nweb --bench merkle"
{ cargo bench -p xray_engine --bench engine; cargo bench -p nweb --bench merkle; } 2>&1 | tee "$out/criterion-raw.txt" >&2
# One line per benchmark: name, median time, median throughput.
awk '
  /^[a-z]/ { name = $0; sub(/ +time:.*$/, "", name); t = "" }
  /time:/ && name != "" && t == "" { for (i = 1; i <= NF; i++) if ($i == "time:") t = $(i + 3) " " $(i + 4) }
  /thrpt:/ && name != "" {
    for (i = 1; i <= NF; i++) if ($i == "thrpt:") r = $(i + 3) " " $(i + 4)
    printf "| %s | %s | %s |\n", name, t, r; name = ""
  }
' "$out/criterion-raw.txt" >"$out/criterion.txt"

log "xray-bench (database, scale, engine, Merkle)"
XRAY_BENCH_COMMAND="scripts/bench.sh${*:+ $*}" target/release/xray-bench "$@" >/dev/null

{
  cat "$out/results.md"
  echo "### The pure crates alone (criterion, median)"
  echo
  echo "| benchmark | time | throughput |"
  echo "|---|---:|---:|"
  cat "$out/criterion.txt"
  echo
} | tee "$out/summary.md"
log "done: $out/summary.md"
