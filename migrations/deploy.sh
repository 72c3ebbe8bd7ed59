#!/usr/bin/env bash
# Deploys paychan with the standard Solana toolchain (Agave CLI + anchor 1.2.2).
#
#   migrations/deploy.sh devnet      # or mainnet-beta / localnet
#
# The program keypair (target/deploy/paychan-keypair.json) is yours and is
# never committed; its public key must be the id in lib.rs and Anchor.toml
# (`anchor keys sync` writes it there).
set -euo pipefail
cluster=${1:?usage: migrations/deploy.sh devnet|mainnet-beta|localnet}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
die() { echo "deploy: $*" >&2; exit 1; }

command -v solana >/dev/null || die "the solana CLI (Agave) is required"
command -v anchor >/dev/null || die "anchor 1.2.2 is required: cargo install anchor-cli --version 1.2.2"
anchor --version | grep -q "1.2.2" || die "anchor 1.2.2 is required, found $(anchor --version)"

keypair=target/deploy/paychan-keypair.json
if [ ! -f "$keypair" ]; then
  die "no program keypair at $keypair: create one with 'solana-keygen new -o $keypair' and run 'anchor keys sync'"
fi
program_id=$(solana address -k "$keypair")
declared=$(grep -o 'declare_id!("[^"]*")' programs/paychan/src/lib.rs | cut -d'"' -f2)
[ "$program_id" = "$declared" ] || die "keypair is $program_id but lib.rs declares $declared: run 'anchor keys sync'"

case "$cluster" in
  devnet|mainnet-beta|localnet) ;;
  *) die "unknown cluster $cluster" ;;
esac
wallet=$(solana config get keypair | awk '{print $NF}')
echo "deploy: program $program_id to $cluster, paid by $(solana address -k "$wallet")"
solana balance --url "$cluster" -k "$wallet"

anchor build
anchor deploy --provider.cluster "$cluster"
solana program show --url "$cluster" "$program_id"
