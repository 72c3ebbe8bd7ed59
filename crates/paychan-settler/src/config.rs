//! The settler's configuration.
use std::time::Duration;

use paychan_sdk::Pubkey;
use solana_commitment_config::CommitmentConfig;
use solana_keypair::Keypair;
use solana_signer::Signer;

/// Most v1 vouchers per `settle` transaction the settler sends: a legacy
/// transaction must fit 1,232 bytes, and `[ed25519 ×4, settle]` measures
/// 1,185 bytes (five would not fit).
pub const MAX_VOUCHERS_PER_TX: usize = 4;

/// Most v1 vouchers per `settle` transaction with an address lookup table:
/// a v0 `[ed25519 ×5, settle]` loading the shared accounts from the table
/// fits 1,232 bytes (six would not). It is the program's own cap,
/// `MAX_SETTLE_VOUCHERS`, which its capacity test ties to the same figure.
pub const MAX_VOUCHERS_PER_TX_WITH_TABLE: usize =
    paychan_sdk::constants::MAX_SETTLE_VOUCHERS as usize;

/// Most channels the urgent throttle remembers at once (each for
/// [`SettlerConfig::urgent_interval`]); while it is full, channels it does
/// not remember are not settled urgently.
pub const URGENT_THROTTLE_CAPACITY: usize = 16_384;

/// Whether settle transactions load the accounts every settle of a
/// (payee, mint) shares from an address lookup table (v0 transactions),
/// which fits [`MAX_VOUCHERS_PER_TX_WITH_TABLE`] vouchers instead of
/// [`MAX_VOUCHERS_PER_TX`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LookupTableMode {
    /// Legacy transactions, no table.
    #[default]
    Off,
    /// On first need, create one table per (payee, mint) — the payee pays
    /// its rent and is its authority — holding the shared accounts, wait
    /// until it is usable and keep its address for the settler's lifetime
    /// (nothing is persisted: a restart creates a new one).
    Create,
    /// An existing table, fetched on first need and verified to hold the
    /// shared accounts of every configured mint and not to be deactivated.
    Use(Pubkey),
}

/// A mint the settler settles (payouts go to the payee's payout account,
/// `paychan_sdk::pda::payout`), and when a settlement is worth a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MintAccounts {
    /// The mint.
    pub mint: Pubkey,
    /// The mint's token program (SPL Token or Token-2022).
    pub token_program: Pubkey,
    /// Settle a channel once `voucher cumulative − on-chain settled` reaches
    /// this (base units); smaller amounts wait for a sweep, a close or an expiry.
    pub threshold: u64,
    /// The urgent queue ([`crate::Settler::handle`]) settles a channel ahead
    /// of its threshold only when `voucher cumulative − on-chain settled`
    /// is at least this (base units); below it the channel waits for the
    /// threshold, a sweep, a close or an expiry like any other. Anyone who
    /// can reach the facilitator's `/settle` or the paywall can enqueue a
    /// channel, and each urgent settlement costs the payee a transaction
    /// fee: this floor (with [`SettlerConfig::urgent_interval`]) bounds
    /// what they can make the payee spend per unit of value settled.
    /// [`MintAccounts::new`] sets it to a tenth of the threshold
    /// ([`MintAccounts::default_urgent_min_value`]).
    pub urgent_min_value: u64,
}

impl MintAccounts {
    /// A mint settled from `threshold` (base units), urgently from a tenth
    /// of it.
    pub fn new(mint: Pubkey, token_program: Pubkey, threshold: u64) -> Self {
        Self {
            mint,
            token_program,
            threshold,
            urgent_min_value: Self::default_urgent_min_value(threshold),
        }
    }

    /// The default [`MintAccounts::urgent_min_value`]: `threshold / 10`
    /// (rounded down, at least 1). At the CLI's default threshold of one
    /// token this is 0.1 token per urgent settlement, so a flood of
    /// urgent requests costs the payee at most one fee (10,000 lamports
    /// for `[ed25519, settle]`) per 0.1 token it is paid, and per channel
    /// at most one fee per [`SettlerConfig::urgent_interval`].
    pub fn default_urgent_min_value(threshold: u64) -> u64 {
        (threshold / 10).max(1)
    }
}

/// How the settler works.
pub struct SettlerConfig {
    /// The payee: signs every settle transaction and pays its fee.
    pub payee: Keypair,
    /// The paychan program (the instruction builders of `paychan-sdk` are
    /// fixed to `paychan_sdk::ID`; another id is refused).
    pub program_id: Pubkey,
    /// The mints settled, one transaction group per (mint, token program).
    pub mints: Vec<MintAccounts>,
    /// A closing channel is settled regardless of its threshold once its
    /// grace period ends within this margin. The default (6 h) settles a
    /// closing channel with a short grace period on sight. Only used when
    /// `close_on_request` is off.
    pub grace_margin: Duration,
    /// When the payer asks for its money back (`request_close`), close the
    /// channel at once with the payee's `close` and the latest voucher:
    /// the payee is paid and the payer refunded without waiting for the
    /// grace period. Default on.
    pub close_on_request: bool,
    /// A voucher with an expiry is settled regardless of the threshold once
    /// it expires within this margin.
    pub expiry_margin: Duration,
    /// Vouchers per transaction: `1..=MAX_VOUCHERS_PER_TX`, or
    /// `1..=MAX_VOUCHERS_PER_TX_WITH_TABLE` with a lookup table.
    pub max_vouchers_per_tx: usize,
    /// Address lookup table for settle transactions; default off.
    pub lookup_table: LookupTableMode,
    /// [`crate::Settler::run`]: how often due channels are looked for.
    pub interval: Duration,
    /// [`crate::Settler::run`]: how often a full sweep settles everything ahead.
    pub sweep_interval: Duration,
    /// [`crate::Settler::run`]: sweep at start-up (catching up after a restart).
    pub sweep_on_start: bool,
    /// At most one urgent settlement per channel per this interval: a
    /// channel asked for again sooner waits for the normal schedule
    /// (threshold, sweep, close, expiry — deadlines are never throttled).
    /// Default 60 s. The memory this takes is bounded
    /// ([`URGENT_THROTTLE_CAPACITY`] channels).
    pub urgent_interval: Duration,
    /// Commitment for reads and confirmations.
    pub commitment: CommitmentConfig,
    /// How often a sent transaction's status is polled.
    pub confirm_poll: Duration,
    /// How long a sent transaction is waited for before it is rebuilt.
    pub confirm_timeout: Duration,
    /// Attempts per transaction (each with a fresh blockhash).
    pub max_attempts: u32,
    /// First back-off after a transient RPC error; doubles per attempt.
    pub backoff: Duration,
    /// Longest back-off.
    pub max_backoff: Duration,
    /// Lamports per signature, for fees `getTransaction` does not report.
    pub lamports_per_signature: u64,
}

impl std::fmt::Debug for SettlerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SettlerConfig")
            .field("payee", &self.payee.pubkey())
            .field("program_id", &self.program_id)
            .field("mints", &self.mints)
            .field("grace_margin", &self.grace_margin)
            .field("close_on_request", &self.close_on_request)
            .field("expiry_margin", &self.expiry_margin)
            .field("max_vouchers_per_tx", &self.max_vouchers_per_tx)
            .field("lookup_table", &self.lookup_table)
            .field("interval", &self.interval)
            .field("sweep_interval", &self.sweep_interval)
            .field("urgent_interval", &self.urgent_interval)
            .field("commitment", &self.commitment)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl SettlerConfig {
    /// A configuration for one mint with the defaults: closes on request, 6 h grace margin,
    /// 5 min expiry margin, 4 vouchers per transaction, a due-check every
    /// 30 s, a sweep at start-up and every hour, at most one urgent
    /// settlement per channel per minute, `confirmed` commitment, 5 attempts.
    pub fn new(payee: Keypair, mint: MintAccounts) -> Self {
        Self {
            payee,
            program_id: paychan_sdk::ID,
            mints: vec![mint],
            grace_margin: Duration::from_secs(6 * 3600),
            close_on_request: true,
            expiry_margin: Duration::from_secs(300),
            max_vouchers_per_tx: MAX_VOUCHERS_PER_TX,
            lookup_table: LookupTableMode::Off,
            interval: Duration::from_secs(30),
            sweep_interval: Duration::from_secs(3600),
            sweep_on_start: true,
            urgent_interval: Duration::from_secs(60),
            commitment: CommitmentConfig::confirmed(),
            confirm_poll: Duration::from_millis(400),
            confirm_timeout: Duration::from_secs(60),
            max_attempts: 5,
            backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            lamports_per_signature: 5_000,
        }
    }

    /// The mint's settings.
    pub fn mint(&self, mint: &Pubkey) -> Option<&MintAccounts> {
        self.mints.iter().find(|m| m.mint == *mint)
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.program_id != paychan_sdk::ID {
            return Err(format!(
                "program id {} is not paychan_sdk::ID {} (the instruction builders are fixed to it)",
                self.program_id,
                paychan_sdk::ID
            ));
        }
        if self.mints.is_empty() {
            return Err("no mint configured".into());
        }
        for (i, m) in self.mints.iter().enumerate() {
            if self.mints.iter().take(i).any(|o| o.mint == m.mint) {
                return Err(format!("mint {} is configured twice", m.mint));
            }
        }
        let max = match self.lookup_table {
            LookupTableMode::Off => MAX_VOUCHERS_PER_TX,
            LookupTableMode::Create | LookupTableMode::Use(_) => MAX_VOUCHERS_PER_TX_WITH_TABLE,
        };
        if !(1..=max).contains(&self.max_vouchers_per_tx) {
            let table = if self.lookup_table == LookupTableMode::Off {
                " without a lookup table"
            } else {
                ""
            };
            return Err(format!("max_vouchers_per_tx must be 1..={max}{table}"));
        }
        if self.max_attempts == 0 {
            return Err("max_attempts must be at least 1".into());
        }
        if self.interval.is_zero() || self.sweep_interval.is_zero() || self.confirm_poll.is_zero() {
            return Err("intervals must be positive".into());
        }
        Ok(())
    }

    pub(crate) fn backoff_for(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX);
        self.backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }
}

/// Saturating seconds of a duration as a Unix-time offset.
pub(crate) fn secs_i64(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}
