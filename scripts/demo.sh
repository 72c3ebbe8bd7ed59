#!/usr/bin/env bash
# The demo command: builds the program binary (scripts/build-sbf.sh) and the
# `paychan` CLI, then runs `paychan demo` — an embedded local chain with the
# program, a paywalled API, an agent making paid calls, the settler, and a
# summary. Arguments go to `paychan demo` (e.g. `--requests 200 --json`,
# `--keep-serving --port 8402`).
#
# Needs only rustup, a C compiler and python3; the first run compiles the
# Solana and Surfpool crates (~20 minutes on 2 cores), later runs start in
# seconds. Set CARGO_TARGET_DIR to share a build cache.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
"$root/scripts/build-sbf.sh"
cargo build --quiet -p paychan-cli --bin paychan --features demo
exec "${CARGO_TARGET_DIR:-$root/target}/debug/paychan" demo --program "$root/target/deploy/paychan.so" "$@"
