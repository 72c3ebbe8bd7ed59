//! The crate's error type and the classification of RPC / program failures.
use paychan_sdk::error::PaychanError;
use paychan_verifier::store::StoreError;
use paychan_voucher::Ed25519LayoutError;
use solana_instruction_error::InstructionError;
use solana_rpc_client_api::{
    client_error::{Error as ClientError, ErrorKind},
    request::{RpcError, RpcResponseErrorData},
};
use solana_signature::Signature;
use solana_transaction_error::TransactionError;

/// What can go wrong in the settler.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettleError {
    /// The configuration cannot work.
    #[error("configuration: {0}")]
    Config(String),
    /// The voucher store failed.
    #[error("voucher store: {0}")]
    Store(#[from] StoreError),
    /// A JSON-RPC call failed (after retries where they apply).
    #[error("RPC: {0}")]
    Rpc(#[source] Box<ClientError>),
    /// The payee keypair could not sign.
    #[error("signing: {0}")]
    Signing(#[from] solana_signer::SignerError),
    /// The Ed25519 precompile instruction could not be built.
    #[error("ed25519 instruction: {0}")]
    Ed25519(#[from] Ed25519LayoutError),
    /// The transaction would exceed the packet size.
    #[error("transaction of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// Serialized size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A transaction failed (in preflight or on chain) with a program or
    /// runtime error that retrying does not fix.
    #[error("transaction failed: {error}{}", program_error_suffix(.error))]
    Transaction {
        /// Its signature, when it landed (and paid its fee).
        signature: Option<Signature>,
        /// The error.
        error: TransactionError,
    },
    /// The attempts ran out on transient errors.
    #[error("gave up after {attempts} attempts: {last}")]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last error seen.
        last: String,
    },
    /// The address lookup table cannot be used (missing, deactivated,
    /// lacking the shared accounts) or a v0 message cannot be compiled.
    #[error("address lookup table: {0}")]
    LookupTable(String),
    /// An amount overflowed.
    #[error("arithmetic overflow")]
    Overflow,
}

impl From<ClientError> for SettleError {
    fn from(e: ClientError) -> Self {
        Self::Rpc(Box::new(e))
    }
}

fn program_error_suffix(error: &TransactionError) -> String {
    match custom_code(error) {
        Some(code) => match paychan_sdk::error::describe(code) {
            Some(name) => format!(" ({name})"),
            None => String::new(),
        },
        None => String::new(),
    }
}

/// The custom code of an instruction error, if any.
pub fn custom_code(error: &TransactionError) -> Option<u32> {
    match error {
        TransactionError::InstructionError(_, InstructionError::Custom(code)) => Some(*code),
        _ => None,
    }
}

/// How the settler reacts to a failure.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The node or the network hiccuped: back off and retry.
    Transient(String),
    /// The blockhash is unknown or expired: retry at once with a fresh one.
    Blockhash,
    /// The transaction was already processed: wait for its status.
    AlreadyProcessed,
    /// `CumulativeNotIncreasing`: someone settled first; re-read and retry
    /// with what is still ahead.
    AlreadySettled,
    /// A voucher in the transaction cannot settle (expired, closed, wrong
    /// signer...). Which one is unknown in a multi-voucher transaction.
    Voucher(TransactionError),
    /// Retrying will not help (fee payer broke, account in use forever...).
    Fatal(SettleError),
}

/// Classifies a transaction error (from preflight or from the landed transaction).
pub(crate) fn classify_transaction_error(
    error: TransactionError,
    signature: Option<Signature>,
) -> Failure {
    match &error {
        TransactionError::BlockhashNotFound => Failure::Blockhash,
        TransactionError::AlreadyProcessed => Failure::AlreadyProcessed,
        TransactionError::AccountInUse
        | TransactionError::WouldExceedMaxBlockCostLimit
        | TransactionError::WouldExceedMaxAccountCostLimit
        | TransactionError::WouldExceedMaxVoteCostLimit
        | TransactionError::WouldExceedAccountDataBlockLimit
        | TransactionError::TooManyAccountLocks
        | TransactionError::ClusterMaintenance => Failure::Transient(error.to_string()),
        TransactionError::InstructionError(index, inner) => {
            match (inner, custom_code(&error).and_then(PaychanError::from_code)) {
                (_, Some(PaychanError::CumulativeNotIncreasing)) => Failure::AlreadySettled,
                // Per-voucher program errors, or the precompile (index 0) refusing a record.
                (
                    _,
                    Some(
                        PaychanError::VoucherExpired
                        | PaychanError::GracePeriodEnded
                        | PaychanError::ChannelClosed
                        | PaychanError::CumulativeExceedsDeposit
                        | PaychanError::WrongSigner
                        | PaychanError::InvalidSignature
                        | PaychanError::VoucherChannelMismatch
                        | PaychanError::InvalidVoucher
                        | PaychanError::VaultMismatch
                        | PaychanError::InvariantViolated,
                    ),
                ) => Failure::Voucher(error),
                _ if *index == 0 => Failure::Voucher(error),
                // Anchor's account checks (owner, discriminator) on a channel.
                (InstructionError::Custom(code), None) if (3000..4000).contains(code) => {
                    Failure::Voucher(error)
                }
                _ => Failure::Fatal(SettleError::Transaction { signature, error }),
            }
        }
        _ => Failure::Fatal(SettleError::Transaction { signature, error }),
    }
}

/// Classifies a failed JSON-RPC call.
pub(crate) fn classify_client_error(error: ClientError) -> Failure {
    if let Some(tx_error) = error.get_transaction_error() {
        return classify_transaction_error(tx_error, None);
    }
    match error.kind() {
        ErrorKind::Io(_) | ErrorKind::Reqwest(_) | ErrorKind::Middleware(_) => {
            Failure::Transient(error.to_string())
        }
        ErrorKind::RpcError(RpcError::RpcRequestError(_) | RpcError::ParseError(_)) => {
            Failure::Transient(error.to_string())
        }
        ErrorKind::RpcError(RpcError::RpcResponseError { code, data, .. }) => {
            // -32003 / -32006: signature or precompile verification refused a record.
            if matches!(code, -32003 | -32006) {
                return Failure::Voucher(TransactionError::InstructionError(
                    0,
                    InstructionError::InvalidArgument,
                ));
            }
            let server_error = (-32099..=-32000).contains(code) && *code != -32002;
            if matches!(data, RpcResponseErrorData::NodeUnhealthy { .. })
                || server_error
                || *code == -32603
            {
                Failure::Transient(error.to_string())
            } else {
                Failure::Fatal(SettleError::from(error))
            }
        }
        _ => Failure::Fatal(SettleError::from(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let ix = |code| TransactionError::InstructionError(1, InstructionError::Custom(code));
        assert!(matches!(
            classify_transaction_error(ix(6026), None),
            Failure::AlreadySettled
        ));
        assert!(matches!(
            classify_transaction_error(ix(6025), None),
            Failure::Voucher(_)
        ));
        assert!(matches!(
            classify_transaction_error(ix(6007), None),
            Failure::Voucher(_)
        ));
        assert!(matches!(
            classify_transaction_error(ix(6031), None),
            Failure::Fatal(_)
        ));
        assert!(matches!(
            classify_transaction_error(TransactionError::BlockhashNotFound, None),
            Failure::Blockhash
        ));
        assert!(matches!(
            classify_transaction_error(TransactionError::InsufficientFundsForFee, None),
            Failure::Fatal(_)
        ));
        let io = ClientError::from(std::io::Error::other("reset"));
        assert!(matches!(classify_client_error(io), Failure::Transient(_)));
    }
}
