//! Typed errors of the paying client.
use paychan_sdk::Pubkey;

/// Why the client could not pay (or manage a channel).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The configuration is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// No offer of the 402 fits this client (network, asset, program, price, budget).
    #[error("no acceptable paychan offer: {0}")]
    NoAcceptableOffer(String),
    /// The `PAYMENT-REQUIRED` header is missing or malformed.
    #[error("malformed PAYMENT-REQUIRED: {0}")]
    MalformedOffer(String),
    /// Paying would exceed the budget.
    #[error("budget exhausted: {needed} more needed, {remaining} remaining")]
    BudgetExhausted {
        /// Value the operation needs.
        needed: u64,
        /// Value still available.
        remaining: u64,
    },
    /// The server's resynchronisation hint is outside what this client ever
    /// signed or below what it already confirmed; it is not followed.
    #[error("untrusted resync hint {hint} (confirmed {accepted}, signed {signed})")]
    UntrustedResync {
        /// The server's `lastAccepted`.
        hint: u64,
        /// What the client knows the server accepted.
        accepted: u64,
        /// The highest cumulative amount the client signed.
        signed: u64,
    },
    /// No such channel in the client's state.
    #[error("unknown channel {0}")]
    UnknownChannel(Pubkey),
    /// The channel cannot pay (closing, closed or not yet open).
    #[error("channel {0} is not open")]
    ChannelNotOpen(Pubkey),
    /// An amount overflowed.
    #[error("amount overflow")]
    Overflow,
    /// A JSON-RPC call failed.
    #[error("rpc: {0}")]
    Rpc(#[from] Box<solana_rpc_client_api::client_error::Error>),
    /// A transaction did not confirm in time.
    #[error("transaction {signature} not confirmed after {waited_ms} ms")]
    ConfirmationTimeout {
        /// Its signature.
        signature: String,
        /// How long the client waited.
        waited_ms: u128,
    },
    /// A transaction failed on chain.
    #[error("transaction {signature} failed: {reason}")]
    TransactionFailed {
        /// Its signature.
        signature: String,
        /// The transaction error.
        reason: String,
    },
    /// Signing a transaction failed.
    #[error("signing: {0}")]
    Signer(#[from] solana_signer::SignerError),
    /// An on-chain account could not be decoded.
    #[error("account {address}: {reason}")]
    Account {
        /// The account.
        address: Pubkey,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading or writing the state directory failed.
    #[error("state {path}: {source}")]
    State {
        /// The file or directory.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A state file is corrupt.
    #[error("corrupt state {path}: {reason}")]
    CorruptState {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A voucher could not be encoded.
    #[error("voucher: {0}")]
    Voucher(#[from] paychan_voucher::VoucherError),
    /// A header could not be encoded.
    #[error("header: {0}")]
    Codec(#[from] paychan_x402::codec::CodecError),
    /// The HTTP client could not be built.
    #[error("http client: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// A background task failed.
    #[error("task: {0}")]
    Task(String),
}

impl From<solana_rpc_client_api::client_error::Error> for ClientError {
    fn from(e: solana_rpc_client_api::client_error::Error) -> Self {
        ClientError::Rpc(Box::new(e))
    }
}
