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

/// Most v1 vouchers per `settle` transaction carrying a compute-unit price
/// (a priority fee: `[compute budget ×2, ed25519 ×3, settle]`, legacy).
pub const MAX_VOUCHERS_PER_TX_PRICED: usize = 3;

/// Most v1 vouchers per `settle` transaction carrying a compute-unit price,
/// with an address lookup table.
pub const MAX_VOUCHERS_PER_TX_PRICED_WITH_TABLE: usize = 4;

/// Most v1 vouchers per `settle_signed` transaction the settler sends: a
/// legacy `[compute budget, (compute-unit price,) settle_signed ×7]` fits
/// 1,232 bytes (eight would not). The program's cap,
/// `MAX_SETTLE_SIGNED_VOUCHERS` (11), needs the channels in a lookup table.
pub const MAX_SIGNED_VOUCHERS_PER_TX: usize = 7;

/// Most v1 vouchers per `settle_signed` transaction with the settler's
/// address lookup table (the accounts shared by every settle, not the
/// channels): eight fit, nine would not.
pub const MAX_SIGNED_VOUCHERS_PER_TX_WITH_TABLE: usize = 8;

const _: () = assert!(
    MAX_SIGNED_VOUCHERS_PER_TX_WITH_TABLE
        <= paychan_sdk::constants::MAX_SETTLE_SIGNED_VOUCHERS as usize
);

/// Compute-unit limit of a `[ed25519, settle]` transaction that sets a
/// compute-unit price (10,240 CU measured for five vouchers): a base plus
/// this per voucher. Without a price the transaction carries no
/// compute-budget instruction (it fits the default limit).
pub const SETTLE_BASE_CU: u32 = 8_000;
/// See [`SETTLE_BASE_CU`].
pub const SETTLE_CU_PER_VOUCHER: u32 = 1_500;
/// Compute-unit limit of `[ed25519, close (final voucher)]` with a price
/// (11,468 CU measured).
pub const CLOSE_WITH_VOUCHER_CU: u32 = 16_000;

/// How the signatures of a transaction's vouchers are verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VoucherPath {
    /// By the Ed25519 precompile: `[ed25519 (N records), settle]` (or
    /// `[ed25519, close]`). Each record is billed like a transaction
    /// signature: `lamports_per_signature × (1 + N)`.
    Precompile,
    /// By the program itself (`settle_signed`: SHA-512 and the curve25519
    /// syscalls, ≈ 21,000 CU per voucher): `[compute budget,
    /// settle_signed]` (or `[compute budget, settle_signed, close]`). One
    /// signature whatever N, plus the compute-unit price times the limit.
    Program,
}

impl VoucherPath {
    /// A short label (logs).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Precompile => "precompile",
            Self::Program => "program",
        }
    }
}

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
    /// Lamports per signature: prices the two paths
    /// ([`SettlerConfig::estimated_fee`]) and estimates fees
    /// `getTransaction` does not report.
    pub lamports_per_signature: u64,
    /// Compute-unit price (micro-lamports per compute unit, a priority fee)
    /// set on every settle and close transaction with a voucher; 0 (the
    /// default) sets none. It prices the paths: a `settle_signed`
    /// transaction asks for ≈ 21,500 CU per voucher, a `settle` for
    /// ≈ 1,500 (see [`SettlerConfig::estimated_fee`]).
    pub compute_unit_price: u64,
    /// Which path verifies the vouchers' signatures: `None` (the default)
    /// picks the cheaper by [`SettlerConfig::estimated_fee`] for each
    /// transaction; `Some` forces one (e.g. a program deployed before
    /// `settle_signed` needs [`VoucherPath::Precompile`]).
    pub path: Option<VoucherPath>,
    /// Vouchers per `settle_signed` transaction:
    /// `1..=MAX_SIGNED_VOUCHERS_PER_TX`, or
    /// `1..=MAX_SIGNED_VOUCHERS_PER_TX_WITH_TABLE` with a lookup table.
    pub max_signed_vouchers_per_tx: usize,
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
            .field(
                "max_signed_vouchers_per_tx",
                &self.max_signed_vouchers_per_tx,
            )
            .field("path", &self.path)
            .field("compute_unit_price", &self.compute_unit_price)
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
    /// 5 min expiry margin, the cheaper verification path per transaction
    /// (no compute-unit price: `settle_signed`, 7 vouchers per
    /// transaction; 4 per `settle`), a due-check every
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
            compute_unit_price: 0,
            path: None,
            max_signed_vouchers_per_tx: MAX_SIGNED_VOUCHERS_PER_TX,
        }
    }

    /// Vouchers per transaction on `path` (with a lookup table or not):
    /// the configured maximum, within what fits one packet with the
    /// compute-budget instructions the transaction carries.
    pub fn vouchers_per_tx(&self, path: VoucherPath, with_table: bool) -> usize {
        match path {
            VoucherPath::Precompile if self.compute_unit_price > 0 => {
                let fits = if with_table {
                    MAX_VOUCHERS_PER_TX_PRICED_WITH_TABLE
                } else {
                    MAX_VOUCHERS_PER_TX_PRICED
                };
                self.max_vouchers_per_tx.min(fits)
            }
            VoucherPath::Precompile => self.max_vouchers_per_tx,
            VoucherPath::Program => self.max_signed_vouchers_per_tx,
        }
    }

    /// The compute-unit limit a transaction on `path` with `vouchers`
    /// vouchers asks for (`with_close`: the final voucher of a close), or
    /// `None` when it carries no compute-budget instruction (`settle` and
    /// `close` through the precompile without a compute-unit price).
    pub fn compute_unit_limit(
        &self,
        path: VoucherPath,
        vouchers: usize,
        with_close: bool,
    ) -> Option<u32> {
        match path {
            VoucherPath::Program => {
                let settle = paychan_sdk::ix::settle_signed_compute_units(vouchers);
                Some(if with_close {
                    settle.saturating_add(paychan_sdk::ix::CLOSE_CU)
                } else {
                    settle
                })
            }
            VoucherPath::Precompile if self.compute_unit_price == 0 => None,
            VoucherPath::Precompile if with_close => Some(CLOSE_WITH_VOUCHER_CU),
            VoucherPath::Precompile => {
                let n = u32::try_from(vouchers).unwrap_or(u32::MAX);
                Some(
                    SETTLE_CU_PER_VOUCHER
                        .saturating_mul(n)
                        .saturating_add(SETTLE_BASE_CU),
                )
            }
        }
    }

    /// The fee of a transaction on `path` settling `vouchers` vouchers
    /// (`with_close`: a close's final voucher): `lamports_per_signature ×
    /// signatures` — the payee's, plus one per precompile record — plus the
    /// priority fee `⌈compute_unit_price × limit / 10^6⌉` when a price is
    /// set (charged on the requested limit, not on what is used).
    pub fn estimated_fee(&self, path: VoucherPath, vouchers: usize, with_close: bool) -> u64 {
        let signatures = match path {
            VoucherPath::Precompile => (vouchers as u64).saturating_add(1),
            VoucherPath::Program => 1,
        };
        let base = self.lamports_per_signature.saturating_mul(signatures);
        let priority = self
            .compute_unit_limit(path, vouchers, with_close)
            .filter(|_| self.compute_unit_price > 0)
            .map_or(0, |limit| {
                let micro = u128::from(self.compute_unit_price) * u128::from(limit);
                u64::try_from(micro.div_ceil(1_000_000)).unwrap_or(u64::MAX)
            });
        base.saturating_add(priority)
    }

    /// The path for the next transaction, and how many of `remaining`
    /// vouchers it takes: the configured path, else the one with the lower
    /// estimated fee per voucher for a full transaction of each (the
    /// precompile path on a tie).
    pub fn choose_path(&self, remaining: usize, with_table: bool) -> (VoucherPath, usize) {
        let take = |path| self.vouchers_per_tx(path, with_table).min(remaining).max(1);
        if let Some(path) = self.path {
            return (path, take(path));
        }
        let per_voucher = |path| {
            let n = take(path);
            // Compare fee_a / n_a with fee_b / n_b without rounding.
            (u128::from(self.estimated_fee(path, n, false)), n as u128)
        };
        let (fee_p, n_p) = per_voucher(VoucherPath::Precompile);
        let (fee_s, n_s) = per_voucher(VoucherPath::Program);
        if fee_s * n_p < fee_p * n_s {
            (VoucherPath::Program, take(VoucherPath::Program))
        } else {
            (VoucherPath::Precompile, take(VoucherPath::Precompile))
        }
    }

    /// The path for a close's final voucher (one voucher, with the close in
    /// the same transaction): the configured one, else the cheaper.
    pub fn choose_close_path(&self) -> VoucherPath {
        if let Some(path) = self.path {
            return path;
        }
        let program = self.estimated_fee(VoucherPath::Program, 1, true);
        let precompile = self.estimated_fee(VoucherPath::Precompile, 1, true);
        if program < precompile {
            VoucherPath::Program
        } else {
            VoucherPath::Precompile
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
        let table = if self.lookup_table == LookupTableMode::Off {
            " without a lookup table"
        } else {
            ""
        };
        if !(1..=max).contains(&self.max_vouchers_per_tx) {
            return Err(format!("max_vouchers_per_tx must be 1..={max}{table}"));
        }
        let max_signed = match self.lookup_table {
            LookupTableMode::Off => MAX_SIGNED_VOUCHERS_PER_TX,
            LookupTableMode::Create | LookupTableMode::Use(_) => {
                MAX_SIGNED_VOUCHERS_PER_TX_WITH_TABLE
            }
        };
        if !(1..=max_signed).contains(&self.max_signed_vouchers_per_tx) {
            return Err(format!(
                "max_signed_vouchers_per_tx must be 1..={max_signed}{table}"
            ));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(price: u64) -> SettlerConfig {
        let mut c = SettlerConfig::new(
            Keypair::new(),
            MintAccounts::new(Pubkey::new_unique(), Pubkey::new_unique(), 1),
        );
        c.compute_unit_price = price;
        c
    }

    #[test]
    fn fees_per_path() {
        let c = config(0);
        // One signature per precompile record plus the payee's; one in all
        // for settle_signed.
        assert_eq!(c.estimated_fee(VoucherPath::Precompile, 4, false), 25_000);
        assert_eq!(c.estimated_fee(VoucherPath::Program, 7, false), 5_000);
        assert_eq!(c.estimated_fee(VoucherPath::Precompile, 1, true), 10_000);
        assert_eq!(c.estimated_fee(VoucherPath::Program, 1, true), 5_000);
        assert_eq!(
            c.compute_unit_limit(VoucherPath::Precompile, 4, false),
            None
        );
        // A price is charged on the requested limit, rounded up.
        let c = config(1_000); // 0.001 lamport per CU
        let limit = paychan_sdk::ix::settle_signed_compute_units(7);
        assert_eq!(
            c.compute_unit_limit(VoucherPath::Program, 7, false),
            Some(limit)
        );
        assert_eq!(
            c.estimated_fee(VoucherPath::Program, 7, false),
            5_000 + u64::from(limit).div_ceil(1_000)
        );
        assert_eq!(
            c.estimated_fee(VoucherPath::Precompile, 3, false),
            20_000 + u64::from(SETTLE_BASE_CU + 3 * SETTLE_CU_PER_VOUCHER).div_ceil(1_000)
        );
        assert_eq!(
            c.estimated_fee(VoucherPath::Program, 1, true),
            5_000
                + u64::from(
                    paychan_sdk::ix::settle_signed_compute_units(1) + paychan_sdk::ix::CLOSE_CU
                )
                .div_ceil(1_000)
        );
    }

    #[test]
    fn the_cheaper_path_is_chosen_per_transaction() {
        // No priority fee: settle_signed, 7 per legacy transaction, 8 with a table.
        let c = config(0);
        assert_eq!(c.choose_path(20, false), (VoucherPath::Program, 7));
        assert_eq!(c.choose_path(20, true), (VoucherPath::Program, 7));
        assert_eq!(c.choose_path(3, false), (VoucherPath::Program, 3));
        assert_eq!(c.choose_path(1, false), (VoucherPath::Program, 1));
        assert_eq!(c.choose_close_path(), VoucherPath::Program);
        // A modest price (1,000 micro-lamports per CU, ~160 lamports for
        // seven vouchers) keeps settle_signed far ahead.
        assert_eq!(
            config(1_000).choose_path(20, false),
            (VoucherPath::Program, 7)
        );
        // Break-even for full transactions (7 signed vouchers against 3
        // precompile records, which a priced transaction fits): 714 +
        // 22,643·p = 6,667 + 4,167·p lamports per voucher, p ≈ 0.32
        // lamport (322,000 micro-lamports) per CU.
        assert_eq!(
            config(300_000).choose_path(20, false),
            (VoucherPath::Program, 7)
        );
        assert_eq!(
            config(350_000).choose_path(20, false),
            (VoucherPath::Precompile, 3)
        );
        assert_eq!(config(350_000).choose_close_path(), VoucherPath::Precompile);
        // A forced path is kept whatever the fees.
        let mut forced = config(0);
        forced.path = Some(VoucherPath::Precompile);
        assert_eq!(forced.choose_path(20, false), (VoucherPath::Precompile, 4));
        assert_eq!(forced.choose_close_path(), VoucherPath::Precompile);
        forced.path = Some(VoucherPath::Program);
        assert_eq!(
            config(1_000_000).choose_path(2, false).0,
            VoucherPath::Precompile
        );
        forced.compute_unit_price = 1_000_000;
        assert_eq!(forced.choose_path(2, false), (VoucherPath::Program, 2));
    }

    #[test]
    fn signed_vouchers_per_transaction_are_validated() {
        let mut c = config(0);
        assert!(c.validate().is_ok());
        c.max_signed_vouchers_per_tx = 8;
        assert!(
            matches!(c.validate(), Err(e) if e.contains("max_signed_vouchers_per_tx must be 1..=7"))
        );
        c.lookup_table = LookupTableMode::Create;
        assert!(c.validate().is_ok());
        c.max_signed_vouchers_per_tx = 9;
        assert!(c.validate().is_err());
        c.max_signed_vouchers_per_tx = 0;
        assert!(c.validate().is_err());
    }
}
