#!/usr/bin/env bash
# The test command: builds the real program binary (scripts/build-sbf.sh),
# checks the committed IDL, then runs the whole test suite on that binary.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
"$root/scripts/build-sbf.sh"
"$root/scripts/idl.sh" --check
cargo test --workspace
# The voucher crate's signing and JSON forms are behind features no other crate enables yet.
cargo test -p paychan-voucher --all-features
