//! The CLI's error type and its exit codes.
use std::path::PathBuf;

use paychan_sdk::Pubkey;
use paychan_sdk::error::{ANCHOR_ERRORS, PaychanError};
use solana_instruction_error::InstructionError;
use solana_rpc_client::api::client_error::{Error as ClientError, ErrorKind as ClientErrorKind};
use solana_transaction_error::TransactionError;

use crate::amount::AmountError;

/// Exit code of failures not covered by the others (I/O, a failed demo).
pub const EXIT_OTHER: u8 = 1;
/// Exit code of usage, configuration and input errors (also clap's own).
pub const EXIT_USAGE: u8 = 2;
/// Exit code of RPC and network failures.
pub const EXIT_RPC: u8 = 3;
/// Exit code of on-chain failures: program errors, failed transactions,
/// missing or malformed accounts.
pub const EXIT_ON_CHAIN: u8 = 4;

/// The exit codes as shown at the end of `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  other failure (I/O, command not wired yet)
  2  usage, configuration or input error (bad amount, pubkey, keypair file, config file)
  3  RPC or network failure
  4  on-chain failure (program error such as GracePeriodActive, failed transaction, missing account)";

/// Everything a command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad command-line arguments (clap's own error, printed as clap formats it).
    #[error("{0}")]
    Clap(#[from] clap::Error),
    /// Bad input or configuration.
    #[error("{0}")]
    Usage(String),
    /// An amount that does not parse.
    #[error("invalid amount {input:?}: {source}")]
    Amount {
        /// What was given.
        input: String,
        /// Why it was rejected.
        #[source]
        source: AmountError,
    },
    /// The configuration file cannot be read or parsed.
    #[error("config file {path}: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A keypair file cannot be read, parsed or written.
    #[error("keypair file {path}: {reason}")]
    Keypair {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A JSON-RPC call failed for a reason other than the transaction itself.
    #[error("RPC error ({url}): {reason}")]
    Rpc {
        /// The endpoint.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The paychan program (or another program of the transaction) returned an error.
    #[error("{}", program_error_message(*instruction, *code, name.as_deref(), message.as_deref(), program))]
    Program {
        /// Index of the failing instruction in its transaction.
        instruction: u8,
        /// The custom error code.
        code: u32,
        /// The error's name (`GracePeriodActive`) when the code is known.
        name: Option<String>,
        /// Its message, when known.
        message: Option<String>,
        /// The program that failed.
        program: Pubkey,
    },
    /// The transaction failed (not a custom program error).
    #[error("transaction failed: {0}")]
    Transaction(TransactionError),
    /// An account is missing or does not hold what was expected.
    #[error("{0}")]
    Account(String),
    /// `paychan demo` failed or found the flow inconsistent.
    #[error("demo: {0}")]
    Demo(String),
    /// Local I/O.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

fn program_error_message(
    instruction: u8,
    code: u32,
    name: Option<&str>,
    message: Option<&str>,
    program: &Pubkey,
) -> String {
    match (name, message) {
        (Some(name), Some(message)) => format!(
            "program error {name} ({code}, {code:#x}) in instruction {instruction}: {message}"
        ),
        (Some(name), None) => {
            format!("program error {name} ({code}, {code:#x}) in instruction {instruction}")
        }
        _ => format!(
            "program {program} failed instruction {instruction} with custom error {code} ({code:#x})"
        ),
    }
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Clap(e) if !e.use_stderr() => 0,
            Self::Clap(_)
            | Self::Usage(_)
            | Self::Amount { .. }
            | Self::Config { .. }
            | Self::Keypair { .. } => EXIT_USAGE,
            Self::Rpc { .. } => EXIT_RPC,
            Self::Program { .. } | Self::Transaction(_) | Self::Account(_) => EXIT_ON_CHAIN,
            Self::Demo(_) | Self::Io { .. } => EXIT_OTHER,
        }
    }

    /// A short machine-readable kind, used in `--json` error objects.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Clap(_) | Self::Usage(_) => "usage",
            Self::Amount { .. } => "amount",
            Self::Config { .. } => "config",
            Self::Keypair { .. } => "keypair",
            Self::Rpc { .. } => "rpc",
            Self::Program { .. } => "program",
            Self::Transaction(_) => "transaction",
            Self::Account(_) => "account",
            Self::Demo(_) => "demo",
            Self::Io { .. } => "io",
        }
    }

    /// The `--json` error object: `{"error": {"kind", "message", "exit_code", ...}}`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut error = serde_json::json!({
            "kind": self.kind(),
            "message": self.to_string(),
            "exit_code": self.exit_code(),
        });
        if let Self::Program {
            instruction,
            code,
            name,
            program,
            ..
        } = self
        {
            error["code"] = (*code).into();
            error["name"] = name.clone().into();
            error["instruction"] = (*instruction).into();
            error["program"] = program.to_string().into();
        }
        serde_json::json!({ "error": error })
    }

    /// Maps a failed RPC call. `programs` are the program ids of the
    /// transaction's instructions (empty for calls that send none), used to
    /// tell which program a custom error code belongs to; `paychan_program`
    /// is the paychan program's id.
    pub fn from_client(
        err: ClientError,
        url: &str,
        programs: &[Pubkey],
        paychan_program: &Pubkey,
    ) -> Self {
        if let Some(tx_err) = err.get_transaction_error() {
            return Self::from_transaction_error(tx_err, programs, paychan_program);
        }
        let reason = match err.kind() {
            ClientErrorKind::Io(e) => format!("I/O: {e}"),
            ClientErrorKind::Reqwest(e) => format!("HTTP: {e}"),
            _ => err.to_string(),
        };
        // RPC URLs often carry an API key: only scheme, host and port are shown.
        Self::Rpc {
            url: paychan_verifier::redact::url(url),
            reason: paychan_verifier::redact::text(&reason),
        }
    }

    /// Maps a transaction's failure.
    pub fn from_transaction_error(
        err: TransactionError,
        programs: &[Pubkey],
        paychan_program: &Pubkey,
    ) -> Self {
        match err {
            TransactionError::InstructionError(index, InstructionError::Custom(code)) => {
                let program = programs
                    .get(usize::from(index))
                    .copied()
                    .unwrap_or_default();
                let (name, message) = if program == *paychan_program {
                    program_error_name(code).unzip()
                } else {
                    (None, None)
                };
                Self::Program {
                    instruction: index,
                    code,
                    name,
                    message,
                    program,
                }
            }
            other => Self::Transaction(other),
        }
    }
}

/// Name and message of a custom error code of the paychan program: its own
/// errors and the Anchor account checks it raises (`paychan-sdk`'s tables,
/// checked against the program); other Anchor codes get their class.
pub fn program_error_name(code: u32) -> Option<(String, String)> {
    if let Some(e) = PaychanError::from_code(code) {
        return Some((e.name().to_string(), e.message().to_string()));
    }
    if let Some((_, name, message)) = ANCHOR_ERRORS.iter().find(|(c, ..)| *c == code) {
        return Some((name.to_string(), message.to_string()));
    }
    let class = match code {
        100..=999 => "Anchor instruction error",
        1000..=1999 => "Anchor IDL error",
        2000..=2999 => "Anchor constraint error",
        3000..=3999 => "Anchor account error",
        4000..=4999 => "Anchor error",
        _ => return None,
    };
    Some((format!("Anchor{code}"), format!("{class} {code}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn the_error_table_matches_the_codes() {
        let (name, message) = program_error_name(6015).unwrap();
        assert_eq!(name, "GracePeriodActive");
        assert_eq!(message, "the grace period is still running");
        // The last code, appended with settle_signed; none after it.
        let (name, _) = program_error_name(6037).unwrap();
        assert_eq!(name, "InvalidSignature");
        assert_eq!(program_error_name(6038), None);
    }

    #[test]
    fn custom_errors_of_the_program_get_names_and_exit_code_4() {
        let paychan = paychan_sdk::ID;
        let other = Pubkey::new_unique();
        let err = CliError::from_transaction_error(
            TransactionError::InstructionError(1, InstructionError::Custom(6026)),
            &[other, paychan],
            &paychan,
        );
        assert_eq!(err.exit_code(), EXIT_ON_CHAIN);
        let text = err.to_string();
        assert!(text.contains("CumulativeNotIncreasing"), "{text}");
        assert!(text.contains("6026"), "{text}");
        let json = err.to_json();
        assert_eq!(json["error"]["name"], "CumulativeNotIncreasing");
        assert_eq!(json["error"]["code"], 6026);
        assert_eq!(json["error"]["exit_code"], 4);

        // The same code from another program is not given a paychan name.
        let err = CliError::from_transaction_error(
            TransactionError::InstructionError(0, InstructionError::Custom(6026)),
            &[other, paychan],
            &paychan,
        );
        assert!(!err.to_string().contains("CumulativeNotIncreasing"));
        assert!(err.to_string().contains(&other.to_string()));
        assert_eq!(err.exit_code(), EXIT_ON_CHAIN);

        let err = CliError::from_transaction_error(
            TransactionError::InsufficientFundsForFee,
            &[],
            &paychan,
        );
        assert_eq!(err.exit_code(), EXIT_ON_CHAIN);
    }

    #[test]
    fn exit_codes_are_distinct_per_class() {
        assert_eq!(CliError::Usage("x".into()).exit_code(), 2);
        assert_eq!(
            CliError::Rpc {
                url: "u".into(),
                reason: "r".into()
            }
            .exit_code(),
            3
        );
        assert_eq!(CliError::Account("gone".into()).exit_code(), 4);
        assert_eq!(CliError::Demo("x".into()).exit_code(), 1);
    }
}
