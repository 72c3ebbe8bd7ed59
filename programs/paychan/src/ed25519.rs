//! Ed25519 precompile introspection through the Instructions sysvar.
//!
//! The checks of PROTOCOL.md §3 live here and in `paychan_voucher`'s strict
//! parser: the sysvar address, the precompile program id of the instruction
//! immediately before this one, the signature count, the canonical layout
//! (exact length, every instruction index = "this instruction", canonical
//! offsets, exact message size). Pubkeys and messages are then compared with
//! channel state by the caller.
use anchor_lang::{
    compat::solana_instructions_sysvar::{self as ix_sysvar},
    prelude::*,
};
use paychan_voucher::{ED25519_PROGRAM_ID, Ed25519Records, parse_ed25519_instruction_data};

use crate::error::PaychanError;

/// The data of the Ed25519 precompile instruction that immediately precedes
/// the current one. The precompile has verified every signature in it by the
/// time this program runs.
pub fn preceding_ed25519_data(instructions: &AccountInfo) -> Result<Vec<u8>> {
    require_keys_eq!(
        *instructions.key,
        ix_sysvar::ID,
        PaychanError::InvalidInstructionsSysvar
    );
    let current = ix_sysvar::load_current_index_checked(instructions)
        .map_err(|_| PaychanError::InvalidInstructionsSysvar)?;
    let index = current
        .checked_sub(1)
        .ok_or(PaychanError::MissingEd25519Instruction)?;
    let ix = ix_sysvar::load_instruction_at_checked(usize::from(index), instructions)
        .map_err(|_| PaychanError::MissingEd25519Instruction)?;
    require!(
        ix.program_id.to_bytes() == ED25519_PROGRAM_ID,
        PaychanError::MissingEd25519Instruction
    );
    Ok(ix.data)
}

/// Parses precompile data strictly, expecting exactly `expected` records of
/// `message_len`-byte messages.
pub fn parse_records(
    data: &[u8],
    expected: usize,
    message_len: usize,
) -> Result<Ed25519Records<'_>> {
    let count = data.first().copied().map(usize::from);
    require!(
        count == Some(expected),
        PaychanError::SignatureCountMismatch
    );
    parse_ed25519_instruction_data(data, expected, message_len)
        .map_err(|_| error!(PaychanError::InvalidEd25519Layout))
}
