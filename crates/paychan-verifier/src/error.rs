//! Typed rejections (the request is not paid) and faults (the verifier could
//! not decide).
use paychan_sdk::Pubkey;

/// Why a voucher does not pay for a request. Each maps to an x402
/// `invalidReason` and says whether the client can fix it by resending.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// No such channel of this program on chain.
    #[error("unknown channel {0}")]
    UnknownChannel(Pubkey),
    /// The channel belongs to another program.
    #[error("channel belongs to another program")]
    WrongProgram,
    /// The channel pays someone else.
    #[error("channel pays another payee")]
    WrongPayee,
    /// The channel escrows another mint.
    #[error("channel escrows another mint")]
    WrongMint,
    /// The channel is closing: the payer asked for its money back.
    #[error("channel is closing")]
    ChannelClosing,
    /// The channel is closed.
    #[error("channel is closed")]
    ChannelClosed,
    /// The channel's grace period is shorter than the server requires (the
    /// offer's `gracePeriodSeconds`): the payer could take its deposit back
    /// before the server settles.
    #[error("channel grace period {grace_period} s is below the required {required} s")]
    GracePeriodTooShort {
        /// The channel's grace period.
        grace_period: i64,
        /// What the server requires.
        required: i64,
    },
    /// The channel's deposit is below the server's minimum (the offer's
    /// `minimumDeposit`); a top-up fixes it.
    #[error("channel deposit {deposit} is below the required minimum {required}")]
    DepositTooSmall {
        /// The channel's deposit.
        deposit: u64,
        /// The server's minimum.
        required: u64,
    },
    /// The voucher has expired, or expires before the server could settle it.
    #[error("voucher expires at {expires_at}, settlement needs it valid until {needed_until}")]
    Expired {
        /// Its expiry.
        expires_at: i64,
        /// The latest time the server may still need to settle it.
        needed_until: i64,
    },
    /// The voucher does not add at least the price to the last accepted one.
    #[error(
        "cumulative {cumulative} must be at least {required} (last accepted {last_accepted} + price)"
    )]
    InsufficientIncrement {
        /// The voucher's cumulative amount.
        cumulative: u64,
        /// The smallest cumulative that pays for this request.
        required: u64,
        /// The last accepted cumulative: the client resynchronises from it.
        last_accepted: u64,
    },
    /// The voucher does not add the price to the last accepted one. Its
    /// signature was not checked (the channel received forged vouchers just
    /// now), so the last accepted amount is not disclosed.
    #[error("cumulative {cumulative} does not pay for this request")]
    Stale {
        /// The voucher's cumulative amount.
        cumulative: u64,
    },
    /// The cumulative amount exceeds the deposit.
    #[error("cumulative {cumulative} exceeds the deposit {deposit}")]
    ExceedsDeposit {
        /// The voucher's cumulative amount.
        cumulative: u64,
        /// The channel's deposit.
        deposit: u64,
    },
    /// The signer is not the channel's authorized signer.
    #[error("voucher signer is not the channel's authorized signer")]
    WrongSigner,
    /// The signature does not verify (`verify_strict`).
    #[error("bad signature")]
    BadSignature,
    /// A different voucher with the same cumulative amount was accepted already.
    #[error("a different voucher for cumulative {cumulative} was already accepted")]
    Conflict {
        /// The contested cumulative amount.
        cumulative: u64,
    },
}

impl Rejection {
    /// The x402 `invalidReason` string.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::UnknownChannel(_)
            | Rejection::WrongProgram
            | Rejection::WrongPayee
            | Rejection::WrongMint => "invalid_scheme",
            Rejection::ChannelClosing | Rejection::ChannelClosed => "invalid_transaction_state",
            Rejection::GracePeriodTooShort { .. } => "invalid_scheme",
            Rejection::Expired { .. } => "payment_expired",
            Rejection::InsufficientIncrement { .. }
            | Rejection::Stale { .. }
            | Rejection::Conflict { .. } => "invalid_payment_amount",
            Rejection::ExceedsDeposit { .. } | Rejection::DepositTooSmall { .. } => {
                "insufficient_funds"
            }
            Rejection::WrongSigner | Rejection::BadSignature => "invalid_signature",
        }
    }

    /// A code naming exactly what is wrong (`extensions.paychan.code` of a
    /// 402, `invalidReason` details of `/verify`), one per variant.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::UnknownChannel(_) => "unknown_channel",
            Rejection::WrongProgram => "wrong_program",
            Rejection::WrongPayee => "wrong_payee",
            Rejection::WrongMint => "wrong_mint",
            Rejection::ChannelClosing => "channel_closing",
            Rejection::ChannelClosed => "channel_closed",
            Rejection::GracePeriodTooShort { .. } => "grace_period_too_short",
            Rejection::DepositTooSmall { .. } => "deposit_too_small",
            Rejection::Expired { .. } => "voucher_expires_too_soon",
            Rejection::InsufficientIncrement { .. } | Rejection::Stale { .. } => {
                "cumulative_too_low"
            }
            Rejection::ExceedsDeposit { .. } => "cumulative_exceeds_deposit",
            Rejection::WrongSigner => "wrong_signer",
            Rejection::BadSignature => "bad_signature",
            Rejection::Conflict { .. } => "cumulative_conflict",
        }
    }

    /// The field of the `paychan` payment payload (or of the channel it
    /// names) that is wrong, as a JSON path: `voucher.cumulativeAmount`,
    /// `signature`, `channel.deposit`, …
    #[must_use]
    pub fn field(&self) -> &'static str {
        match self {
            Rejection::UnknownChannel(_) => "voucher.channelId",
            Rejection::WrongProgram => "channel.owner",
            Rejection::WrongPayee => "channel.payee",
            Rejection::WrongMint => "channel.mint",
            Rejection::ChannelClosing | Rejection::ChannelClosed => "channel.status",
            Rejection::GracePeriodTooShort { .. } => "channel.gracePeriod",
            Rejection::DepositTooSmall { .. } => "channel.deposit",
            Rejection::Expired { .. } => "voucher.expiresAt",
            Rejection::InsufficientIncrement { .. }
            | Rejection::Stale { .. }
            | Rejection::ExceedsDeposit { .. }
            | Rejection::Conflict { .. } => "voucher.cumulativeAmount",
            Rejection::WrongSigner => "signer",
            Rejection::BadSignature => "signature",
        }
    }

    /// The last accepted cumulative amount, when the client should resynchronise.
    #[must_use]
    pub fn last_accepted(&self) -> Option<u64> {
        match self {
            Rejection::InsufficientIncrement { last_accepted, .. } => Some(*last_accepted),
            _ => None,
        }
    }
}

/// The verifier could not decide (store or chain unavailable): answer 5xx,
/// never 200.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifierError {
    /// The voucher store failed.
    #[error("voucher store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// Loading the channel failed.
    #[error("channel source: {0}")]
    Source(String),
    /// Too many channel loads are in flight: answer 503 with `Retry-After`.
    #[error("too many channel loads in flight")]
    Overloaded,
}

/// Outcome of a check: a rejection, or a fault.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The request is not paid.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The verifier could not decide.
    #[error(transparent)]
    Fault(#[from] VerifierError),
}
