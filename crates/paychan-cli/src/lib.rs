//! # paychan-cli
//!
//! The `paychan` command line: keypairs, payment channels (open, top up,
//! request close, finalize, close, status) and, once wired, the demo, the
//! paywalled server, the facilitator and the settler.
//!
//! `main.rs` only calls [`run`] and turns its error into an exit code
//! ([`CliError::exit_code`]; the codes are listed at the end of `--help`).
//! Settings resolve flags > environment > TOML file > defaults
//! ([`config::Settings::resolve`]); `paychan.example.toml` documents the file.
#![warn(missing_docs)]

pub mod amount;
pub mod chain;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod keys;
pub mod output;
pub mod progress;

use std::ffi::OsString;

use clap::{CommandFactory, FromArgMatches};

pub use error::CliError;

use crate::{
    cli::{Cli, Command},
    commands::Context,
    config::{FileConfig, Settings},
    output::Report,
    progress::Progress,
};

/// Runs the command line of this process.
pub fn run() -> Result<(), CliError> {
    run_from(std::env::args_os())
}

/// Runs a command line (`args[0]` is the program name). Prints the report on
/// stdout; with `--json`, a failure is also printed there as
/// `{"error": {...}}` ([`CliError::to_json`]). The caller prints the error
/// itself on stderr.
pub fn run_from<I, T>(args: I) -> Result<(), CliError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = Cli::command().try_get_matches_from(args)?;
    let cli = Cli::from_arg_matches(&matches)?;
    init_tracing(cli.global.verbose);
    let json = cli.global.json;
    let result = settings(&cli, &matches).and_then(|settings| {
        let ctx = Context {
            settings,
            json,
            progress: Progress::new(json),
        };
        dispatch(&ctx, &cli.command)
    });
    match result {
        Ok(report) => {
            report.print(json);
            Ok(())
        }
        Err(e) => {
            if json {
                println!("{}", e.to_json());
            }
            Err(e)
        }
    }
}

fn settings(cli: &Cli, matches: &clap::ArgMatches) -> Result<Settings, CliError> {
    let (flags, env) = cli::layers(&cli.global, matches);
    let cwd = std::env::current_dir().map_err(|source| CliError::Io {
        what: "reading the current directory".into(),
        source,
    })?;
    let file = match config::config_path(cli.global.config.clone(), &cwd) {
        Some(path) => {
            let config = FileConfig::load(&path)?;
            tracing::debug!(path = %path.display(), "config file");
            Some((path, config))
        }
        None => None,
    };
    let home = config::home_dir();
    Settings::resolve(flags, env, file, home.as_deref())
}

fn dispatch(ctx: &Context, command: &Command) -> Result<Report, CliError> {
    tracing::debug!(command = command.name(), settings = ?ctx.settings, "running");
    match command {
        Command::Keygen(args) => commands::keygen::run(ctx, args),
        Command::Config => commands::config::run(ctx),
        other => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|source| CliError::Io {
                    what: "starting the async runtime".into(),
                    source,
                })?;
            runtime.block_on(async {
                match other {
                    Command::Channel(c) => commands::channel::run(ctx, c).await,
                    Command::Demo(a) => commands::demo::run(ctx, a).await,
                    Command::Serve(a) => commands::serve::run(ctx, a).await,
                    Command::Facilitator(a) => commands::facilitator::run(ctx, a).await,
                    Command::Settle(a) => commands::settle::run(ctx, a).await,
                    Command::Program(c) => commands::program::run(ctx, c).await,
                    Command::Keygen(_) | Command::Config => {
                        Err(CliError::Usage("internal: synchronous command".into()))
                    }
                }
            })
        }
    }
}

/// Logs to stderr: `RUST_LOG` when set, else by verbosity (0 warn, 1 info
/// with this crate at debug, 2 debug, 3+ trace).
fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info,paychan_cli=debug",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
