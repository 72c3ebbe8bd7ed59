//! Solana networks: CAIP-2 ids (v2) and v1 names.

/// A Solana cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Network {
    /// Mainnet beta.
    Mainnet,
    /// Devnet.
    Devnet,
    /// Testnet.
    Testnet,
}

impl Network {
    /// The CAIP-2 id used by x402 v2.
    #[must_use]
    pub fn caip2(self) -> &'static str {
        match self {
            Network::Mainnet => "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
            Network::Devnet => "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
            Network::Testnet => "solana:4uhcVJyU9pJkvQyS88uRDiswHXSCkY3z",
        }
    }

    /// The name used by x402 v1.
    #[must_use]
    pub fn v1_name(self) -> &'static str {
        match self {
            Network::Mainnet => "solana",
            Network::Devnet => "solana-devnet",
            Network::Testnet => "solana-testnet",
        }
    }

    /// Circle's USDC mint on this cluster, if any.
    #[must_use]
    pub fn usdc_mint(self) -> Option<&'static str> {
        match self {
            Network::Mainnet => Some("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"),
            Network::Devnet => Some("4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"),
            Network::Testnet => None,
        }
    }

    /// Parses a CAIP-2 id or a v1 name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [Network::Mainnet, Network::Devnet, Network::Testnet]
            .into_iter()
            .find(|n| n.caip2() == s || n.v1_name() == s)
    }
}

/// A CAIP-2 id for a local or custom cluster: `solana:<genesis hash prefix>`.
#[must_use]
pub fn caip2_for_genesis(genesis_hash: &str) -> String {
    let prefix: String = genesis_hash.chars().take(32).collect();
    format!("solana:{prefix}")
}
