//! `paychan settle`: settling stored vouchers on chain (paychan-settler).
//!
//! NOT YET WIRED: the lead fills this module in once its crate lands. Until
//! then the command fails with [`CliError::NotWired`] (exit code 1); it
//! never pretends to work.
use clap::Args;

use super::Context;
use crate::{error::CliError, output::Report};

/// Arguments of `paychan settle` (to be defined when it is wired).
#[derive(Debug, Args)]
pub struct SettleArgs {}

/// Runs `paychan settle`.
pub async fn run(_ctx: &Context, _args: &SettleArgs) -> Result<Report, CliError> {
    Err(CliError::NotWired("settle"))
}
