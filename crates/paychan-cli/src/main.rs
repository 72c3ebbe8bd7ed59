//! The `paychan` binary: see the `paychan_cli` library.
use std::process::ExitCode;

use paychan_cli::CliError;

fn main() -> ExitCode {
    match paychan_cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Clap(e)) => {
            // Help and version are "errors" that print to stdout and succeed.
            let _ = e.print();
            ExitCode::from(if e.use_stderr() { 2 } else { 0 })
        }
        Err(e) => {
            // Every message already includes its cause.
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
