#!/usr/bin/env bash
# Verifiable bytes: builds the program from a second, fresh clone of this
# commit at another path with another target dir and checks the .so is
# byte-identical to this clone's target/deploy/paychan.so (build it first with
# scripts/build-sbf.sh). Prints both SHA-256s. Run by CI.
#
# Anyone can check a deployed program the same way: build the commit with
# scripts/build-sbf.sh, then compare the SHA-256 of target/deploy/paychan.so
# with `paychan program show <program id>` (or with the program data dumped by
# `solana program dump`, trailing zero padding removed).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
mine=$root/target/deploy/paychan.so
[ -f "$mine" ] || { echo "[verify-build] error: build $mine first (scripts/build-sbf.sh)" >&2; exit 1; }
other_target=${PAYCHAN_VERIFY_TARGET_DIR:-$HOME/.cache/paychan/target-verify}
clone=$(mktemp -d /tmp/paychan-verify.XXXXXX)
trap 'rm -rf "$clone"' EXIT
git clone --quiet --no-hardlinks "$root" "$clone/paychan"
git -C "$clone/paychan" checkout --quiet "$(git rev-parse HEAD)"
CARGO_TARGET_DIR=$other_target "$clone/paychan/scripts/build-sbf.sh"
theirs=$clone/paychan/target/deploy/paychan.so
a=$(sha256sum "$mine" | cut -d' ' -f1)
b=$(sha256sum "$theirs" | cut -d' ' -f1)
echo "[verify-build] $root (${CARGO_TARGET_DIR:-$root/target}):   $a"
echo "[verify-build] $clone/paychan ($other_target): $b"
if [ "$a" != "$b" ]; then
  echo "[verify-build] error: the two builds differ" >&2
  cmp "$mine" "$theirs" | head -n 5 >&2 || true
  exit 1
fi
echo "[verify-build] identical: $(stat -c %s "$mine") bytes"
