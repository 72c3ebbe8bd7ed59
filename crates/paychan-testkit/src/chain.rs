//! Funded parties and RPC clients on the embedded chain.

use paychan_localnet::{LocalChain, RpcClient};
use paychan_sdk::Pubkey;
use solana_commitment_config::CommitmentConfig;
use solana_keypair::Keypair;
use solana_signer::Signer;

/// Lamports per SOL.
pub const SOL: u64 = 1_000_000_000;

/// A key with lamports and a token account in the chain's mint.
pub struct Party {
    pub key: Keypair,
    pub tokens: Pubkey,
}

/// Where a [`Party`]'s tokens are, and how many.
#[derive(Clone, Copy, Debug)]
pub enum Tokens {
    /// A token account at a fresh address (not the associated one).
    Fresh(u64),
    /// The key's associated token account.
    Associated(u64),
}

/// A new key funded with `lamports` (none when 0) holding `tokens`.
pub async fn party(chain: &LocalChain, lamports: u64, tokens: Tokens) -> Party {
    let key = Keypair::new();
    if lamports > 0 {
        chain.fund_sol(&key.pubkey(), lamports).await.unwrap();
    }
    let tokens = match tokens {
        Tokens::Fresh(amount) => chain.create_token_account(&key.pubkey(), amount).await,
        Tokens::Associated(amount) => {
            chain
                .create_associated_token_account(&key.pubkey(), amount)
                .await
        }
    }
    .unwrap();
    Party { key, tokens }
}

/// A new RPC client of the chain with `confirmed` commitment (to hand over,
/// where [`LocalChain::rpc_client`] lends one).
pub fn confirmed_rpc(chain: &LocalChain) -> RpcClient {
    RpcClient::new_with_commitment(chain.rpc_url().to_string(), CommitmentConfig::confirmed())
}
