//! `paychan serve`: the paywalled HTTP server (paychan-x402 feature `server`).
//!
//! NOT YET WIRED: the lead fills this module in once its crate lands. Until
//! then the command fails with [`CliError::NotWired`] (exit code 1); it
//! never pretends to work.
use clap::Args;

use super::Context;
use crate::{error::CliError, output::Report};

/// Arguments of `paychan serve` (to be defined when it is wired).
#[derive(Debug, Args)]
pub struct ServeArgs {}

/// Runs `paychan serve`.
pub async fn run(_ctx: &Context, _args: &ServeArgs) -> Result<Report, CliError> {
    Err(CliError::NotWired("serve"))
}
