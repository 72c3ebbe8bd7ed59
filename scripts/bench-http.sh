#!/usr/bin/env bash
# HTTP load benchmark of the paywall (crates/paychan-loadgen): a server
# process with /free and the paywalled /paid (real vouchers, redb store),
# load from this process over loopback. Prints JSON and writes
# target/bench/http.json. Arguments go to `paychan-loadgen bench`
# (--connections, --seconds, --store memory|redb-batched|redb-sync).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
cargo build --release --quiet -p paychan-loadgen
exec "${CARGO_TARGET_DIR:-$root/target}/release/paychan-loadgen" bench --out "$root/target/bench/http.json" "$@"
