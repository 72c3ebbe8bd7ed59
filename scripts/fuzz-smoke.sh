#!/usr/bin/env bash
# Fuzz smoke run (CI): cargo fmt and clippy on the fuzz workspace, the
# committed seeds still what the `seeds` program writes, then every target
# for SECONDS (default 20) from a copy of its committed corpus with its
# dictionary. Fails on any crash, and on a target none of whose inputs
# reached its accepting path. Prints per target the runs, the inputs
# accepted, and the corpus before and after.
#
#   scripts/fuzz-smoke.sh [SECONDS]
#
# Installs what it needs when missing: the pinned nightly (rustup) and the
# pinned cargo-fuzz (into $HOME/.cache/paychan/tools). Builds into
# $PAYCHAN_FUZZ_TARGET_DIR (default $HOME/.cache/paychan/fuzz-target: the
# sanitizer build cannot share the main target dir). Never writes into the
# clone: runs work on a temporary copy of the corpus, crashes are kept
# there (the path is printed).
set -euo pipefail

seconds=${1:-20}
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [SECONDS per target, default 20]" >&2
    exit 2
fi

NIGHTLY=nightly-2026-09-15
CARGO_FUZZ_VERSION=0.13.2
TARGETS=(voucher_v1 voucher_v2 ed25519_layout voucher_json payment_header
    channel_account stored_voucher paywall facilitator)

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools=${PAYCHAN_TOOLS_DIR:-$HOME/.cache/paychan/tools}
export CARGO_TARGET_DIR=${PAYCHAN_FUZZ_TARGET_DIR:-$HOME/.cache/paychan/fuzz-target}
export CARGO_TERM_COLOR=never
export PATH="$tools/bin:$PATH"
started=$(date +%s)
step() { printf '\n=== fuzz: %s (%ss)\n' "$*" "$(($(date +%s) - started))"; }

step "toolchains and cargo-fuzz $CARGO_FUZZ_VERSION"
if ! rustup run "$NIGHTLY" rustc --version >/dev/null 2>&1; then
    rustup toolchain install "$NIGHTLY" --profile minimal
fi
if ! "$tools/bin/cargo-fuzz" --version 2>/dev/null | grep -qx "cargo-fuzz $CARGO_FUZZ_VERSION"; then
    nice -n 10 cargo +"$NIGHTLY" install cargo-fuzz --version "$CARGO_FUZZ_VERSION" \
        --locked --root "$tools"
fi
cargo-fuzz --version
rustup run "$NIGHTLY" rustc --version

cd "$root/fuzz"
step "cargo fmt --check (fuzz/)"
cargo fmt --check

step "cargo clippy --all-targets -- -D warnings (fuzz/)"
nice -n 10 cargo clippy --all-targets --locked -- -D warnings

step "cargo fuzz build -a (all targets, ASan, debug assertions)"
# cargo fuzz does not pass --locked: check the lock file first.
cargo +"$NIGHTLY" metadata --locked --format-version 1 >/dev/null
nice -n 10 cargo +"$NIGHTLY" fuzz build -a

work=$(mktemp -d "${TMPDIR:-/tmp}/paychan-fuzz.XXXXXX")
keep=
cleanup() { if [[ -z $keep ]]; then rm -rf "$work"; fi; }
trap cleanup EXIT

step "seeds are current (the seeds program writes the committed corpus/ and dict/)"
mkdir -p "$work/fresh"
"$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/seeds" "$work/fresh" >/dev/null
if ! diff -r corpus "$work/fresh/corpus" || ! diff -r dict "$work/fresh/dict"; then
    echo "fuzz/corpus or fuzz/dict differ from what the seeds program writes:" >&2
    echo "run it from fuzz/ (see fuzz/README.md) and commit the result" >&2
    exit 1
fi

step "each target for ${seconds}s from its seeds"
failed=()
summary=()
for t in "${TARGETS[@]}"; do
    corpus="$work/corpus/$t"
    mkdir -p "$corpus" "$work/artifacts/$t"
    cp corpus/"$t"/* "$corpus"/
    seeds=$(find "$corpus" -type f | wc -l)
    log="$work/$t.log"
    status=ok
    if ! nice -n 10 cargo +"$NIGHTLY" fuzz run -a "$t" "$corpus" -- \
        -max_total_time="$seconds" -timeout=10 -dict="$root/fuzz/dict/$t.dict" \
        -print_final_stats=1 -artifact_prefix="$work/artifacts/$t/" >"$log" 2>&1; then
        status=CRASH
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    accepted=$(sed -n "s/^paychan-fuzz: $t: accepted \([0-9]*\) of .*/\1/p" "$log" | tail -n1)
    responses=$(sed -n "s/^paychan-fuzz: $t: .*; responses //p" "$log" | tail -n1)
    after=$(find "$corpus" -type f | wc -l)
    if [[ $status == ok && ${accepted:-0} == 0 ]]; then
        status="NOTHING ACCEPTED"
    fi
    # The grown corpus replayed once: how many of its inputs are accepted.
    replayed=$(cargo +"$NIGHTLY" fuzz run -a "$t" "$corpus" -- -runs=0 2>&1 |
        sed -n "s/^paychan-fuzz: $t: accepted \([0-9]* of [0-9]*\) inputs.*/\1/p" | tail -n1)
    line=$(printf '%-16s %-8s runs %10s  accepted %10s  corpus %4s -> %5s (replayed: %s accepted)' \
        "$t" "$status" "${runs:-?}" "${accepted:-?}" "$seeds" "$after" "${replayed:-?}")
    [[ -n $responses ]] && line+="  responses: $responses"
    summary+=("$line")
    echo "$line"
    if [[ $status != ok ]]; then
        failed+=("$t")
        echo "--- $t: last lines of $log" >&2
        tail -n 60 "$log" >&2
    fi
done

step "summary"
printf '%s\n' "${summary[@]}"
if ((${#failed[@]})); then
    keep=1
    echo "fuzz smoke FAILED: ${failed[*]}; logs and crash inputs under $work" >&2
    exit 1
fi
echo "fuzz smoke ok: ${#TARGETS[@]} targets, ${seconds}s each"
