//! The program's error codes (Anchor's custom codes, `6000 +` the variant's
//! index in `programs/paychan/src/error.rs`, append-only), with their names
//! and messages, and the errors Anchor itself raises that clients meet.

/// Anchor's first custom error code.
pub const ERROR_CODE_OFFSET: u32 = 6000;

macro_rules! errors {
    ($($name:ident = $msg:literal,)+) => {
        /// An error the paychan program returns (`InstructionError::Custom(code)`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u32)]
        pub enum PaychanError {
            $(
                #[doc = $msg]
                $name,
            )+
        }

        impl PaychanError {
            /// Every error, in code order.
            pub const ALL: &'static [PaychanError] = &[$(PaychanError::$name),+];

            /// The variant's name, as in the program and the IDL.
            pub const fn name(self) -> &'static str {
                match self {
                    $(PaychanError::$name => stringify!($name),)+
                }
            }

            /// The program's message for it.
            pub const fn message(self) -> &'static str {
                match self {
                    $(PaychanError::$name => $msg,)+
                }
            }
        }
    };
}

errors! {
    Overflow = "arithmetic overflow",
    ZeroAmount = "deposit and top-up amounts must be greater than zero",
    InvalidGracePeriod = "grace period outside the allowed range",
    OpenSlotInFuture = "open_slot is in the future",
    OpenSlotExpired = "open_slot is older than the open-slot window",
    InvalidAuthorizedSigner = "the authorized signer must not be the default key",
    MintExtensionNotAllowed = "the mint carries a Token-2022 extension that is not allowed",
    VaultMismatch = "the vault does not belong to this channel's payee and mint",
    NotPayer = "only the channel's payer may do this",
    NotPayee = "only the channel's payee may do this",
    ChannelNotOpen = "the channel is not open",
    ChannelNotClosing = "the channel is not closing",
    ChannelClosed = "the channel is closed",
    ChannelNotClosed = "the channel is not closed",
    GracePeriodEnded = "the grace period has ended",
    GracePeriodActive = "the grace period is still running",
    ReclaimTooEarly = "the open-slot window has not passed yet",
    InvalidInstructionsSysvar = "the account passed as the Instructions sysvar is not the sysvar",
    MissingEd25519Instruction = "the preceding instruction is not an Ed25519 precompile instruction",
    InvalidEd25519Layout = "the Ed25519 instruction layout is not canonical",
    SignatureCountMismatch = "the number of Ed25519 signatures does not match the channels",
    InvalidChannelCount = "no channels, or more than allowed in one instruction",
    InvalidVoucher = "the voucher bytes are malformed",
    VoucherChannelMismatch = "the voucher is for another channel",
    WrongSigner = "the voucher was not signed by the channel's authorized signer",
    VoucherExpired = "the voucher has expired",
    CumulativeNotIncreasing = "the cumulative amount does not exceed what is already settled",
    CumulativeExceedsDeposit = "the cumulative amount exceeds the deposit",
    DuplicateChannel = "the same channel appears twice",
    ChannelsHashMismatch = "the batch voucher's channels hash does not match the channels",
    ChannelNotWritable = "the channel account is not writable",
    WrongTokenAccount = "the token account does not belong to the expected owner and mint",
    WrongRentPayer = "the rent payer does not match the channel",
    InvariantViolated = "an account invariant does not hold",
    VaultUnderfunded = "the vault holds fewer tokens than it owes",
    InvalidPayee = "the payee must be a key that can sign (not the all-zero default key)",
    UnsupportedVersion = "the account was written in a layout version this program does not accept",
    InvalidSignature = "the voucher's Ed25519 signature does not verify (verify_strict rules)",
}

impl PaychanError {
    /// The custom code the program returns for this error.
    pub const fn code(self) -> u32 {
        ERROR_CODE_OFFSET + self as u32
    }

    /// The error behind a custom code, if it is one of the program's.
    pub fn from_code(code: u32) -> Option<Self> {
        let index = code.checked_sub(ERROR_CODE_OFFSET)?;
        Self::ALL.get(usize::try_from(index).ok()?).copied()
    }
}

impl core::fmt::Display for PaychanError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({}): {}", self.name(), self.code(), self.message())
    }
}

impl std::error::Error for PaychanError {}

/// Anchor's own errors a paychan instruction raises in its account checks:
/// `(code, name, message)`.
pub const ANCHOR_ERRORS: &[(u32, &str, &str)] = &[
    (2000, "ConstraintMut", "a mut constraint was violated"),
    (2002, "ConstraintSigner", "a signer constraint was violated"),
    (2003, "ConstraintRaw", "a raw constraint was violated"),
    (2004, "ConstraintOwner", "an owner constraint was violated"),
    (2006, "ConstraintSeeds", "a seeds constraint was violated"),
    (
        2012,
        "ConstraintAddress",
        "an address constraint was violated",
    ),
    (
        2014,
        "ConstraintTokenMint",
        "a token mint constraint was violated",
    ),
    (
        2015,
        "ConstraintTokenOwner",
        "a token owner constraint was violated",
    ),
    (
        3001,
        "AccountDiscriminatorNotFound",
        "no account discriminator",
    ),
    (
        3002,
        "AccountDiscriminatorMismatch",
        "the account is of another type",
    ),
    (
        3003,
        "AccountDidNotDeserialize",
        "the account did not deserialize",
    ),
    (3006, "AccountNotMutable", "the account is not writable"),
    (
        3007,
        "AccountOwnedByWrongProgram",
        "the account is owned by another program",
    ),
    (3010, "AccountNotSigner", "the account did not sign"),
    (
        3012,
        "AccountNotInitialized",
        "the account is not initialized",
    ),
];

/// `Name (code): message` for any custom code a paychan transaction can
/// fail with: the program's own errors and Anchor's account checks.
pub fn describe(code: u32) -> Option<String> {
    if let Some(e) = PaychanError::from_code(code) {
        return Some(e.to_string());
    }
    ANCHOR_ERRORS
        .iter()
        .find(|(c, ..)| *c == code)
        .map(|(code, name, message)| format!("{name} ({code}): {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_stop_at_the_last_error() {
        for (i, e) in PaychanError::ALL.iter().enumerate() {
            assert_eq!(e.code(), 6000 + i as u32);
            assert_eq!(PaychanError::from_code(e.code()), Some(*e));
        }
        let past = 6000 + PaychanError::ALL.len() as u32;
        assert_eq!(PaychanError::from_code(past), None);
        assert_eq!(PaychanError::from_code(5999), None);
        assert_eq!(PaychanError::from_code(u32::MAX), None);
        assert_eq!(
            describe(6027).as_deref(),
            Some("CumulativeExceedsDeposit (6027): the cumulative amount exceeds the deposit")
        );
        assert_eq!(
            describe(3002)
                .as_deref()
                .map(|s| s.starts_with("AccountDiscriminatorMismatch (3002)")),
            Some(true)
        );
        assert_eq!(describe(1), None);
    }
}
