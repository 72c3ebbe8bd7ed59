//! `paychan demo`: the end-to-end demo: a local chain (paychan-localnet), a paywalled server, a paying client (paychan-client) and the settler, with a progress bar (crate::progress).
//!
//! NOT YET WIRED: the lead fills this module in once its crate lands. Until
//! then the command fails with [`CliError::NotWired`] (exit code 1); it
//! never pretends to work.
use clap::Args;

use super::Context;
use crate::{error::CliError, output::Report};

/// Arguments of `paychan demo` (to be defined when it is wired).
#[derive(Debug, Args)]
pub struct DemoArgs {}

/// Runs `paychan demo`.
pub async fn run(_ctx: &Context, _args: &DemoArgs) -> Result<Report, CliError> {
    Err(CliError::NotWired("demo"))
}
