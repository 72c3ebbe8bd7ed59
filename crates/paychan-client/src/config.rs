//! Client configuration.
use std::{path::PathBuf, time::Duration};

use paychan_sdk::Pubkey;
use solana_commitment_config::CommitmentConfig;
use solana_keypair::Keypair;

/// Default [`ClientConfig::max_grace_period`]: one day.
pub const DEFAULT_MAX_GRACE_PERIOD_SECS: i64 = 24 * 60 * 60;

/// Everything the paying agent needs. Build it with [`ClientConfig::new`] and
/// adjust the public fields.
#[derive(Debug)]
pub struct ClientConfig {
    /// JSON-RPC endpoint of the cluster.
    pub rpc_url: String,
    /// Funds deposits and pays transaction fees and rent.
    pub payer: Keypair,
    /// The payer's token account in `mint`; `None` = the payer's associated
    /// token account (which must exist and hold the tokens).
    pub payer_tokens: Option<Pubkey>,
    /// The accepted network, CAIP-2 (`solana:<genesis hash prefix>`).
    pub network: String,
    /// The mint the agent pays in.
    pub mint: Pubkey,
    /// The mint's token program.
    pub token_program: Pubkey,
    /// The paychan program (the one this crate's instruction builders target).
    pub program_id: Pubkey,
    /// Highest price paid for one request, base units.
    pub max_price: u64,
    /// Total value the agent may pay across all channels of this state
    /// directory, base units. Never exceeded: deposits plus top-ups of live
    /// channels and the final amounts of closed ones stay within it.
    pub budget: u64,
    /// Deposit of a new channel (less when the budget has less left).
    pub deposit: u64,
    /// Top a channel up when `deposit − cumulative` falls below this.
    pub top_up_threshold: u64,
    /// Amount of a top-up (less when the budget has less left).
    pub top_up_amount: u64,
    /// Most channels opened to one payee (one request at a time per channel).
    pub max_channels_per_payee: usize,
    /// Where channel states and session keys live.
    pub state_dir: PathBuf,
    /// Vouchers expire this long after signing; `None`: they never expire.
    /// Servers require a settlement margin (10 minutes by default).
    pub voucher_ttl: Option<Duration>,
    /// Commitment of RPC reads and confirmations.
    pub commitment: CommitmentConfig,
    /// How long to wait for a transaction to confirm.
    pub confirm_timeout: Duration,
    /// Longest grace period of an offer this client accepts, seconds: how
    /// long a refund may take when the payee stops answering.
    pub max_grace_period: i64,
    /// Refuse payees that cannot sign (program-derived addresses and other
    /// keys off the Ed25519 curve, small-order keys). The all-zero key is
    /// refused either way.
    pub payee_must_sign: bool,
}

impl ClientConfig {
    /// A configuration with defaults: the paychan program, SPL Token, a price
    /// cap of 10,000 base units, a budget of 1,000,000, channels of 1,000,000
    /// topped up by the same when under 100,000 left, 4 channels per payee,
    /// non-expiring vouchers, `confirmed` commitment, 30 s confirmation
    /// timeout, grace periods up to one day, payees that can sign.
    #[must_use]
    pub fn new(
        rpc_url: impl Into<String>,
        payer: Keypair,
        network: impl Into<String>,
        mint: Pubkey,
        state_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            rpc_url: rpc_url.into(),
            payer,
            payer_tokens: None,
            network: network.into(),
            mint,
            token_program: paychan_sdk::TOKEN_PROGRAM_ID,
            program_id: paychan_sdk::ID,
            max_price: 10_000,
            budget: 1_000_000,
            deposit: 1_000_000,
            top_up_threshold: 100_000,
            top_up_amount: 1_000_000,
            max_channels_per_payee: 4,
            state_dir: state_dir.into(),
            voucher_ttl: None,
            commitment: CommitmentConfig::confirmed(),
            confirm_timeout: Duration::from_secs(30),
            max_grace_period: DEFAULT_MAX_GRACE_PERIOD_SECS,
            payee_must_sign: true,
        }
    }
}
