//! The program's errors. Append only: codes must stay stable for clients.
use anchor_lang::prelude::*;

#[error_code]
pub enum PaychanError {
    #[msg("arithmetic overflow")]
    Overflow,
    #[msg("deposit and top-up amounts must be greater than zero")]
    ZeroAmount,
    #[msg("grace period outside the allowed range")]
    InvalidGracePeriod,
    #[msg("open_slot is in the future")]
    OpenSlotInFuture,
    #[msg("open_slot is older than the open-slot window")]
    OpenSlotExpired,
    #[msg("the authorized signer must not be the default key")]
    InvalidAuthorizedSigner,
    #[msg("the mint carries a Token-2022 extension that is not allowed")]
    MintExtensionNotAllowed,
    #[msg("the vault does not belong to this channel's payee and mint")]
    VaultMismatch,
    #[msg("only the channel's payer may do this")]
    NotPayer,
    #[msg("only the channel's payee may do this")]
    NotPayee,
    #[msg("the channel is not open")]
    ChannelNotOpen,
    #[msg("the channel is not closing")]
    ChannelNotClosing,
    #[msg("the channel is closed")]
    ChannelClosed,
    #[msg("the channel is not closed")]
    ChannelNotClosed,
    #[msg("the grace period has ended")]
    GracePeriodEnded,
    #[msg("the grace period is still running")]
    GracePeriodActive,
    #[msg("the open-slot window has not passed yet")]
    ReclaimTooEarly,
    #[msg("the account passed as the Instructions sysvar is not the sysvar")]
    InvalidInstructionsSysvar,
    #[msg("the preceding instruction is not an Ed25519 precompile instruction")]
    MissingEd25519Instruction,
    #[msg("the Ed25519 instruction layout is not canonical")]
    InvalidEd25519Layout,
    #[msg("the number of Ed25519 signatures does not match the channels")]
    SignatureCountMismatch,
    #[msg("no channels, or more than allowed in one instruction")]
    InvalidChannelCount,
    #[msg("the voucher bytes are malformed")]
    InvalidVoucher,
    #[msg("the voucher is for another channel")]
    VoucherChannelMismatch,
    #[msg("the voucher was not signed by the channel's authorized signer")]
    WrongSigner,
    #[msg("the voucher has expired")]
    VoucherExpired,
    #[msg("the cumulative amount does not exceed what is already settled")]
    CumulativeNotIncreasing,
    #[msg("the cumulative amount exceeds the deposit")]
    CumulativeExceedsDeposit,
    #[msg("the same channel appears twice")]
    DuplicateChannel,
    #[msg("the batch voucher's channels hash does not match the channels")]
    ChannelsHashMismatch,
    #[msg("the channel account is not writable")]
    ChannelNotWritable,
    #[msg("the token account does not belong to the expected owner and mint")]
    WrongTokenAccount,
    #[msg("the rent payer does not match the channel")]
    WrongRentPayer,
    #[msg("an account invariant does not hold")]
    InvariantViolated,
    #[msg("the vault holds fewer tokens than it owes")]
    VaultUnderfunded,
    #[msg("the payee must be a key that can sign (not the all-zero default key)")]
    InvalidPayee,
    #[msg("the account was written in a layout version this program does not accept")]
    UnsupportedVersion,
    #[msg("the voucher's Ed25519 signature does not verify (verify_strict rules)")]
    InvalidSignature,
}
