#!/usr/bin/env bash
# Fuzzes every target in fuzz for FUZZ_SECONDS each (default 60) and
# fails on the first crash, leak, timeout or oversized allocation.
#
#   scripts/fuzz.sh                  every target
#   scripts/fuzz.sh car unixfs_dag   only these
#   FUZZ_SECONDS=600 scripts/fuzz.sh car
#
# cargo-fuzz needs nightly-only rustc flags (-Zsanitizer=address). CI machines
# reach crates.io but not a guaranteed toolchain server, so instead of a
# nightly we run the project's stable toolchain with RUSTC_BOOTSTRAP=1, which
# unlocks those flags on the compiler we already test with.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
export PATH="$HOME/.cargo/bin:$PATH"
export RUSTC_BOOTSTRAP=1

CARGO_FUZZ_VERSION=0.13.2
if [[ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

seconds="${FUZZ_SECONDS:-60}"
# Every input that ever crashed, and the seeds, first: cheap, and a crash
# there is a regression rather than news.
cargo test --locked

mapfile -t listed < <(grep -v '^#' targets.txt | awk 'NF { print $1 }')
targets=("${@:-${listed[@]}}")

# One build for all targets; 16 codegen units halve the build time for a few
# percent of fuzzing speed, which a one-minute run does not notice.
cargo fuzz build --codegen-units 16

failed=()
for t in "${targets[@]}"; do
    read -r -a seeds < <(awk -v t="$t" '$1 == t { $1 = ""; print }' targets.txt)
    mkdir -p "corpus/$t"
    echo "== fuzz $t for ${seconds}s"
    # Limits: a target that needs more than 64 MB in one allocation or 1 GB in
    # all, or 10 s for one input, is a bug (our inputs are kilobytes).
    # One fuzzing process, as the machines have two cores shared with other
    # work; that is libFuzzer's default (-jobs=1 would only add a supervising
    # parent that moves the output to fuzz-0.log).
    if ! cargo fuzz run --codegen-units 16 "$t" "corpus/$t" "${seeds[@]}" -- \
        -max_total_time="$seconds" \
        -rss_limit_mb=1024 -malloc_limit_mb=64 -timeout=10 \
        -print_final_stats=1 >"corpus/$t.log" 2>&1; then
        tail -n 60 "corpus/$t.log" >&2
        failed+=("$t")
    else
        grep -E '^(stat::number_of_executed_units|stat::new_units_added)' "corpus/$t.log" || true
    fi
done

if ((${#failed[@]})); then
    echo "fuzz: crashes in ${failed[*]}; inputs are in fuzz/artifacts/<target>/" >&2
    exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${seconds}s each, no crash"
