#!/usr/bin/env bash
# The test command: builds the real program binary (scripts/build-sbf.sh),
# checks the committed IDL, then runs the whole test suite on that binary.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

# The Redis voucher-store tests start their own redis-server on 127.0.0.1.
if ! command -v redis-server >/dev/null; then
  echo "[test] installing redis-server (Debian package)" >&2
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server; } \
    || { echo "[test] error: cannot install redis-server; install it and re-run" >&2; exit 1; }
fi
# The x402 interop test (crates/paychan-x402/tests/interop_node.rs) runs tests/interop/validate.mjs
# on Node.js with the pinned @x402/core.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "[test] installing nodejs and npm (Debian packages)" >&2
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm; } \
    || { echo "[test] error: cannot install nodejs and npm; install them and re-run" >&2; exit 1; }
fi
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)' \
  || { echo "[test] error: Node.js >= 18 is needed (found $(node --version))" >&2; exit 1; }
npm ci --prefix "$root/tests/interop" --no-audit --no-fund --loglevel=error >/dev/null \
  || { echo "[test] error: npm ci --prefix tests/interop failed" >&2; exit 1; }
npm ci --prefix "$root/clients/ts" --no-audit --no-fund --loglevel=error >/dev/null \
  || { echo "[test] error: npm ci --prefix clients/ts failed" >&2; exit 1; }
"$root/scripts/build-sbf.sh"
"$root/scripts/idl.sh" --check
cargo test --workspace --features paychan-cli/demo
# The voucher crate's signing and JSON forms are behind features no other crate enables yet.
cargo test -p paychan-voucher --all-features
