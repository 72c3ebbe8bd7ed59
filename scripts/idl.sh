#!/usr/bin/env bash
# Regenerates idl/paychan.json from the program (no anchor CLI needed);
# `scripts/idl.sh --check` fails when the committed IDL is stale.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
cargo build --quiet -p paychan-idl
target_dir=${CARGO_TARGET_DIR:-$root/target}
# IdlBuilder turns RUSTUP_TOOLCHAIN into a literal "+{toolchain}" argument.
env -u RUSTUP_TOOLCHAIN "$target_dir/debug/paychan-idl" "$@"
