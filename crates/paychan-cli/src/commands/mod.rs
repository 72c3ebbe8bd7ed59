//! The commands and what they share.
use solana_keypair::Keypair;

use crate::{
    chain::Chain, config::Settings, error::CliError, keys::read_keypair, progress::Progress,
};

pub mod channel;
pub mod config;
pub mod demo;
#[cfg(feature = "demo")]
mod demo_chain;
pub mod facilitator;
pub mod keygen;
pub mod program;
pub mod serve;
pub mod server;
pub mod settle;

/// What every command gets: the resolved settings and the output mode.
#[derive(Debug)]
pub struct Context {
    /// Resolved settings.
    pub settings: Settings,
    /// `--json`: one JSON object on stdout, no progress bars.
    pub json: bool,
    /// Progress bars and spinners on stderr.
    pub progress: Progress,
}

impl Context {
    /// A JSON-RPC client for the configured endpoint.
    pub fn chain(&self) -> Chain {
        Chain::new(
            &self.settings.rpc_url.value,
            self.settings.commitment.value,
            self.settings.program_id.value,
        )
    }

    /// A client for commands that send transactions: these are built by
    /// `paychan-sdk` for the program id this binary was compiled with, and
    /// the program itself refuses to run at any other address (Anchor's
    /// declared-program-id check), so another `--program-id` is an error.
    pub fn chain_for_transactions(&self) -> Result<Chain, CliError> {
        let configured = self.settings.program_id.value;
        if configured != paychan_sdk::ID {
            return Err(CliError::Usage(format!(
                "program id {configured} (from {}) differs from {}, the id this binary and the \
                 program were built for; transactions can only be sent to that deployment",
                self.settings.program_id.source,
                paychan_sdk::ID
            )));
        }
        Ok(self.chain())
    }

    /// The configured keypair.
    pub fn keypair(&self) -> Result<Keypair, CliError> {
        read_keypair(&self.settings.keypair.value)
    }
}
