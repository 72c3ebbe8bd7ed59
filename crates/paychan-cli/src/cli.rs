//! The command line (clap derive).
use std::path::PathBuf;

use clap::{ArgMatches, Args, Parser, Subcommand, parser::ValueSource};
use paychan_sdk::Pubkey;

use crate::{
    commands::{
        channel::ChannelCommand, demo, facilitator, keygen::KeygenArgs, program::ProgramCommand,
        serve, settle,
    },
    config::{ENV_COMMITMENT, ENV_CONFIG, ENV_KEYPAIR, ENV_PROGRAM_ID, ENV_RPC_URL, Layer},
    error::EXIT_CODES_HELP,
};

/// Prepaid escrow payment channels on Solana for x402 micropayments.
#[derive(Debug, Parser)]
#[command(name = "paychan", version, about, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// Options every command accepts.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts. Precedence: flag > environment > config
/// file > default.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// TOML config file [default: ./paychan.toml if it exists]
    #[arg(long, global = true, env = ENV_CONFIG, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// JSON-RPC URL [default: https://api.devnet.solana.com]
    #[arg(long, global = true, env = ENV_RPC_URL, value_name = "URL")]
    pub rpc_url: Option<String>,
    /// Keypair file (Solana CLI JSON) that pays fees and signs [default: ~/.config/solana/id.json]
    #[arg(long, global = true, env = ENV_KEYPAIR, value_name = "FILE")]
    pub keypair: Option<PathBuf>,
    /// The paychan program id [default: the id this binary was built for]
    #[arg(long, global = true, env = ENV_PROGRAM_ID, value_name = "PUBKEY")]
    pub program_id: Option<String>,
    /// Commitment for reads and confirmations [default: confirmed]
    #[arg(long, global = true, env = ENV_COMMITMENT, value_name = "LEVEL",
          value_parser = ["processed", "confirmed", "finalized"])]
    pub commitment: Option<String>,
    /// Print one JSON object on stdout instead of tables (errors too)
    #[arg(long, global = true)]
    pub json: bool,
    /// Log to stderr (-v info, -vv debug, -vvv trace; RUST_LOG overrides)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a new keypair file (Solana CLI format, mode 0600) and print its pubkey
    Keygen(KeygenArgs),
    /// Show the resolved settings and where each one came from
    Config,
    /// Open, fund, close and inspect payment channels
    #[command(subcommand)]
    Channel(ChannelCommand),
    /// Run the whole flow on an embedded local chain: paywalled API, paying agent, settler, summary
    Demo(demo::DemoArgs),
    /// Serve a paywalled example API from a config file (routes, prices, responses)
    Serve(serve::ServeArgs),
    /// Run an x402 facilitator (/verify, /settle, /supported) for a payee and mint
    Facilitator(facilitator::FacilitatorArgs),
    /// Settle stored vouchers on chain: once, or as a daemon with Prometheus metrics
    Settle(settle::SettleArgs),
    /// Deploy, upgrade and show the program (SBPF v3 .so) through the upgradeable loader
    #[command(subcommand)]
    Program(ProgramCommand),
}

impl Command {
    /// The command's name as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Keygen(_) => "keygen",
            Self::Config => "config",
            Self::Channel(_) => "channel",
            Self::Demo(_) => "demo",
            Self::Serve(_) => "serve",
            Self::Facilitator(_) => "facilitator",
            Self::Settle(_) => "settle",
            Self::Program(_) => "program",
        }
    }
}

/// Parses a base58 pubkey (for clap).
pub fn parse_pubkey(s: &str) -> Result<Pubkey, String> {
    s.trim()
        .parse::<Pubkey>()
        .map_err(|e| format!("not a base58 public key: {e}"))
}

/// The global options split by where clap found them: (flags, environment).
pub fn layers(global: &GlobalArgs, matches: &ArgMatches) -> (Layer, Layer) {
    let mut flags = Layer::default();
    let mut env = Layer::default();
    let target = |id: &str| match matches.value_source(id) {
        Some(ValueSource::CommandLine) => Some(true),
        Some(ValueSource::EnvVariable) => Some(false),
        _ => None,
    };
    let mut put = |id: &str, apply: &mut dyn FnMut(&mut Layer)| match target(id) {
        Some(true) => apply(&mut flags),
        Some(false) => apply(&mut env),
        None => {}
    };
    put("rpc_url", &mut |l| l.rpc_url = global.rpc_url.clone());
    put("keypair", &mut |l| l.keypair = global.keypair.clone());
    put("program_id", &mut |l| {
        l.program_id = global.program_id.clone()
    });
    put("commitment", &mut |l| {
        l.commitment = global.commitment.clone()
    });
    (flags, env)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use clap::{CommandFactory, FromArgMatches};

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_work_before_and_after_the_subcommand() {
        for args in [
            &["paychan", "--rpc-url", "http://a", "config"][..],
            &["paychan", "config", "--rpc-url", "http://a"][..],
        ] {
            let matches = Cli::command().try_get_matches_from(args).unwrap();
            let cli = Cli::from_arg_matches(&matches).unwrap();
            let (flags, env) = layers(&cli.global, &matches);
            assert_eq!(flags.rpc_url.as_deref(), Some("http://a"), "{args:?}");
            assert_eq!(env, Layer::default());
        }
    }

    #[test]
    fn bad_pubkeys_and_amounts_are_usage_errors() {
        let err =
            Cli::try_parse_from(["paychan", "channel", "status", "--channel", "nope"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let payee = Pubkey::new_unique().to_string();
        let err = Cli::try_parse_from([
            "paychan",
            "channel",
            "open",
            "--payee",
            &payee,
            "--mint",
            &payee,
            "--deposit",
            "1.",
        ])
        .unwrap_err();
        assert!(err.to_string().contains("decimal amount"), "{err}");
    }
}
