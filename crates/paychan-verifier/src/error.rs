//! Typed rejections (the request is not paid) and faults (the verifier could
//! not decide).
use anchor_lang::prelude::Pubkey;

/// Why a voucher does not pay for a request. Each maps to an x402
/// `invalidReason` and says whether the client can fix it by resending.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The header or voucher could not be decoded.
    #[error("malformed payment: {0}")]
    Malformed(&'static str),
    /// The header is longer than [`crate::MAX_HEADER_LEN`].
    #[error("payment header of {len} bytes exceeds the limit")]
    TooLarge {
        /// Its length.
        len: usize,
    },
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
            Rejection::Malformed(_) | Rejection::TooLarge { .. } => "invalid_payload",
            Rejection::UnknownChannel(_)
            | Rejection::WrongProgram
            | Rejection::WrongPayee
            | Rejection::WrongMint => "invalid_scheme",
            Rejection::ChannelClosing | Rejection::ChannelClosed => "invalid_transaction_state",
            Rejection::Expired { .. } => "payment_expired",
            Rejection::InsufficientIncrement { .. } | Rejection::Conflict { .. } => {
                "invalid_payment_amount"
            }
            Rejection::ExceedsDeposit { .. } => "insufficient_funds",
            Rejection::WrongSigner | Rejection::BadSignature => "invalid_signature",
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

    /// Whether the input was malformed (HTTP 400) rather than unpaid (402).
    #[must_use]
    pub fn is_malformed(&self) -> bool {
        matches!(self, Rejection::Malformed(_) | Rejection::TooLarge { .. })
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
