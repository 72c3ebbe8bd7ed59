//! # paychan-sdk
//!
//! The paychan program's interface for Rust clients, servers and tools: its
//! id, program-derived addresses, account layouts and decoding, error codes
//! with their names, events, limits and instruction builders. It does not
//! depend on `anchor-lang` or on the program crate; its test
//! `tests/program_interface.rs` checks every definition here against the
//! program's own (and against the committed IDL), so the two cannot drift.
//!
//! ```
//! use paychan_sdk::{pda, state::Channel, Pubkey};
//!
//! let (payee, mint) = (Pubkey::new_unique(), Pubkey::new_unique());
//! let vault = pda::vault(&payee, &mint);
//! assert_eq!(pda::vault_tokens(&vault), pda::vault_tokens(&pda::vault(&payee, &mint)));
//!
//! // An account that is not a channel is refused, whatever its bytes.
//! assert!(Channel::decode(&[0u8; 232]).is_err());
//! ```
#![warn(missing_docs)]

pub mod constants;
pub mod error;
pub mod events;
pub mod ix;
pub mod pda;
pub mod state;

pub use error::PaychanError;
pub use solana_instruction::{AccountMeta, Instruction};
pub use solana_pubkey::{Pubkey, pubkey};

/// The paychan program id (its `declare_id!`).
pub const ID: Pubkey = pubkey!("5AtZWbugM3nhSLAXqJtAX2aLMHb6LCNbCjdEHXzhRi5Y");

/// Program ids and sysvars the program's instructions name.
pub mod ids {
    use super::{Pubkey, pubkey};

    /// The System Program.
    pub const SYSTEM_PROGRAM: Pubkey = pubkey!("11111111111111111111111111111111");
    /// SPL Token.
    pub const TOKEN_PROGRAM: Pubkey = pubkey!("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA");
    /// SPL Token-2022.
    pub const TOKEN_2022_PROGRAM: Pubkey = pubkey!("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb");
    /// The Associated Token Account program.
    pub const ASSOCIATED_TOKEN_PROGRAM: Pubkey =
        pubkey!("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL");
    /// The Instructions sysvar (read by `settle` and `close`).
    pub const INSTRUCTIONS_SYSVAR: Pubkey = pubkey!("Sysvar1nstructions1111111111111111111111111");
    /// The Ed25519 signature-verification precompile.
    pub const ED25519_PROGRAM: Pubkey = Pubkey::new_from_array(paychan_voucher::ED25519_PROGRAM_ID);
}

/// The Instructions sysvar id.
pub const INSTRUCTIONS_SYSVAR_ID: Pubkey = ids::INSTRUCTIONS_SYSVAR;
/// The SPL Token program id.
pub const TOKEN_PROGRAM_ID: Pubkey = ids::TOKEN_PROGRAM;
