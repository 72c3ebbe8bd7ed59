//! The crate's error type.
use std::{path::PathBuf, time::Duration};

use paychan_sdk::Pubkey;
use solana_instruction_error::InstructionError;
use solana_transaction_error::TransactionError;
use surfpool_core::solana_rpc_client::api::client_error::Error as ClientError;

/// Everything that can go wrong starting, driving or stopping a [`crate::LocalChain`].
#[derive(Debug, thiserror::Error)]
pub enum LocalnetError {
    /// The program binary could not be read.
    #[error(
        "cannot read the program binary {path}: {source} \
         (build it with scripts/build-sbf.sh or point PAYCHAN_SO at it)"
    )]
    ProgramBinary {
        /// The path that was tried.
        path: PathBuf,
        /// Why reading it failed.
        #[source]
        source: std::io::Error,
    },
    /// No free port could be reserved on 127.0.0.1.
    #[error("no free port on 127.0.0.1: {0}")]
    NoFreePort(#[source] std::io::Error),
    /// The OS refused a thread or the chain's tokio runtime.
    #[error("cannot start the chain's {what}: {source}")]
    Spawn {
        /// What was being started.
        what: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Surfpool reported an error (setup, an account write, the runloop).
    #[error("surfpool: {0}")]
    Surfpool(String),
    /// The chain did not announce `CoreStarted` in time.
    #[error("the chain did not start within {0:?}")]
    StartupTimeout(Duration),
    /// The chain stopped (or was never running) when it was needed.
    #[error("the chain is not running: {0}")]
    Stopped(String),
    /// The runloop was still running after `Terminate` and the grace period.
    #[error("the runloop was still running {0:?} after Terminate")]
    ShutdownTimeout(Duration),
    /// The runloop thread ended by panicking.
    #[error("the runloop thread panicked")]
    Panicked,
    /// The transaction could not be signed (a missing or superfluous signer).
    #[error("signing: {0}")]
    Signing(#[from] solana_signer::SignerError),
    /// A JSON-RPC call failed (transport, preflight or execution failure).
    #[error("RPC: {0}")]
    Rpc(#[from] ClientError),
    /// A sent transaction was not confirmed in time.
    #[error("transaction {signature} not confirmed within {waited:?}")]
    ConfirmationTimeout {
        /// The transaction's signature.
        signature: solana_signature::Signature,
        /// How long it was waited for.
        waited: Duration,
    },
    /// Deploying the program through the loader failed.
    #[error("deploying the program through the loader: {0}")]
    Deploy(String),
    /// An account read back over RPC does not exist.
    #[error("account {0} does not exist")]
    AccountNotFound(Pubkey),
    /// An account read back over RPC does not hold what was expected.
    #[error("account {address} is not a valid {expected}: {reason}")]
    Decode {
        /// The account.
        address: Pubkey,
        /// What it should have been.
        expected: &'static str,
        /// Why decoding failed.
        reason: String,
    },
}

impl LocalnetError {
    /// The transaction error behind a failed `sendTransaction` (the preflight
    /// simulation's error, which surfpool always runs) or a failed confirmation.
    pub fn transaction_error(&self) -> Option<TransactionError> {
        match self {
            Self::Rpc(e) => e.get_transaction_error(),
            _ => None,
        }
    }

    /// `(instruction index, error)` of a transaction that failed in an instruction.
    pub fn instruction_error(&self) -> Option<(u8, InstructionError)> {
        match self.transaction_error()? {
            TransactionError::InstructionError(index, err) => Some((index, err)),
            _ => None,
        }
    }

    /// The custom program error code (Anchor: 6000 + the variant's index for
    /// `#[error_code]` enums) a transaction failed with, if any.
    pub fn custom_error_code(&self) -> Option<u32> {
        match self.instruction_error()? {
            (_, InstructionError::Custom(code)) => Some(code),
            _ => None,
        }
    }
}
