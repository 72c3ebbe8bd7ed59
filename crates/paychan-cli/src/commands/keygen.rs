//! `paychan keygen`: a new Solana CLI-compatible keypair file.
use std::path::PathBuf;

use clap::Args;
use solana_keypair::Keypair;
use solana_signer::Signer;

use super::Context;
use crate::{
    error::CliError,
    keys::write_keypair,
    output::{Report, Table},
};

/// Arguments of `paychan keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write it [default: the configured --keypair path]
    #[arg(short, long, value_name = "FILE")]
    pub outfile: Option<PathBuf>,
    /// Overwrite an existing file
    #[arg(long)]
    pub force: bool,
}

/// Writes a fresh keypair (mode 0600) and reports its pubkey.
pub fn run(ctx: &Context, args: &KeygenArgs) -> Result<Report, CliError> {
    let path = args
        .outfile
        .clone()
        .unwrap_or_else(|| ctx.settings.keypair.value.clone());
    let keypair = Keypair::new();
    write_keypair(&keypair, &path, args.force)?;
    let pubkey = keypair.pubkey().to_string();
    let mut table = Table::key_value();
    table.kv("pubkey", &pubkey).kv("outfile", path.display());
    Ok(Report::table(
        &table,
        serde_json::json!({ "pubkey": pubkey, "outfile": path }),
    ))
}
