#!/usr/bin/env bash
# Deploys (or upgrades) paychan with `paychan program`: the SBPF v3
# target/deploy/paychan.so that scripts/build-sbf.sh builds and every test
# runs, through the upgradeable loader. No Agave CLI or Anchor needed.
#
#   migrations/deploy.sh devnet           # or mainnet-beta, localnet, an RPC URL
#   migrations/deploy.sh --help
#
# The program keypair (target/deploy/paychan-keypair.json) is yours and is
# never committed; its public key must be the declare_id! in
# programs/paychan/src/lib.rs. The wallet (PAYCHAN_KEYPAIR, else
# ~/.config/solana/id.json) pays and becomes the upgrade authority.
# An interrupted upload resumes: the buffer keypair
# (target/deploy/paychan-buffer.json) is kept until the deploy succeeds.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: migrations/deploy.sh CLUSTER

CLUSTER: devnet, mainnet-beta, localnet (http://127.0.0.1:8899) or an http(s) RPC URL.

Builds target/deploy/paychan.so (scripts/build-sbf.sh; SKIP_BUILD=1 skips it),
then `paychan program deploy` when the program does not exist yet, else
`paychan program upgrade`, then `paychan program show --so` to compare the
deployed bytes' SHA-256 with the local file.

Environment: PAYCHAN_KEYPAIR (wallet: fee payer and upgrade authority),
PROGRAM_KEYPAIR (default target/deploy/paychan-keypair.json), SKIP_BUILD.
EOF
}

case "${1:-}" in
  -h|--help|help) usage; exit 0 ;;
  "") usage >&2; exit 2 ;;
  -*) echo "deploy: unknown option $1" >&2; usage >&2; exit 2 ;;
esac
[ $# -eq 1 ] || { usage >&2; exit 2; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
die() { echo "deploy: $*" >&2; exit 1; }

case "$1" in
  devnet) url=https://api.devnet.solana.com ;;
  mainnet-beta) url=https://api.mainnet-beta.solana.com ;;
  localnet) url=http://127.0.0.1:8899 ;;
  http://*|https://*) url=$1 ;;
  *) die "unknown cluster $1 (devnet, mainnet-beta, localnet or an RPC URL; --help)" ;;
esac

so=target/deploy/paychan.so
program_keypair=${PROGRAM_KEYPAIR:-target/deploy/paychan-keypair.json}
buffer=target/deploy/paychan-buffer.json

[ -f "$program_keypair" ] || die "no program keypair at $program_keypair: the key of the declare_id! in programs/paychan/src/lib.rs"
# A Solana keypair file is 64 bytes: the secret key, then the public key.
program_id=$(python3 - "$program_keypair" <<'EOF'
import json, sys
key = bytes(json.load(open(sys.argv[1])))[32:64]
alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
n, out = int.from_bytes(key, "big"), ""
while n:
    n, r = divmod(n, 58)
    out = alphabet[r] + out
print("1" * (len(key) - len(key.lstrip(b"\0"))) + out)
EOF
)
declared=$(grep -o 'declare_id!("[^"]*")' programs/paychan/src/lib.rs | cut -d'"' -f2)
[ "$program_id" = "$declared" ] || die "$program_keypair is $program_id but lib.rs declares $declared"

if [ -z "${SKIP_BUILD:-}" ]; then
  scripts/build-sbf.sh
fi
cargo build --quiet --release -p paychan-cli --bin paychan
paychan="${CARGO_TARGET_DIR:-$root/target}/release/paychan"

if [ ! -f "$buffer" ]; then
  "$paychan" keygen --outfile "$buffer" >/dev/null
fi
echo "deploy: $so to $url as $program_id (buffer $buffer)"
set +e
"$paychan" --rpc-url "$url" program show "$program_id" >/dev/null 2>&1
exists=$?
set -e
case "$exists" in
  0) "$paychan" --rpc-url "$url" program upgrade "$so" --program "$program_id" --buffer "$buffer" ;;
  4) "$paychan" --rpc-url "$url" program deploy "$so" --program-keypair "$program_keypair" --buffer "$buffer" ;;
  *) die "cannot tell whether $program_id exists on $url (paychan program show exited $exists)" ;;
esac
# The buffer was consumed: the next deploy starts a new one.
rm -f "$buffer"
"$paychan" --rpc-url "$url" program show "$program_id" --so "$so"
