#!/usr/bin/env bash
# Sets everything up (idempotent) and runs every test: the pure crates, the
# loader, and the integration tests against the real PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
scripts/setup.sh
export DATABASE_URL="${DATABASE_URL:-host=/var/run/postgresql dbname=postgres}"
scripts/check-doc-refs.sh   # every cited design decision and contract section exists in docs/
cargo test --workspace --exclude xray_pg --no-fail-fast
# Fuzz every decoder of untrusted input for a bounded time (scripts/fuzz.sh).
FUZZ_SECONDS="${FUZZ_SECONDS:-20}" scripts/fuzz.sh
