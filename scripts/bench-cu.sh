#!/usr/bin/env bash
# Compute units per instruction of the real paychan.so: prints a table and
# writes target/bench/cu.json. Builds the .so first.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/build-sbf.sh
cargo run --quiet -p paychan-tests --example cu
