//! `paychan-idl [--check]`: builds the Anchor IDL of `programs/paychan` the
//! way `anchor idl build` does (anchor-lang-idl's `IdlBuilder`), writes it to
//! `idl/paychan.json`, or with `--check` fails when the committed file differs.
//!
//! Run it through `scripts/idl.sh`, which clears `RUSTUP_TOOLCHAIN` (the
//! builder would pass it on as a literal `+{toolchain}` argument).
use std::{path::PathBuf, process::ExitCode};

use anchor_lang_idl::build::IdlBuilder;
use anyhow::Context;

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("paychan-idl: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let check = std::env::args().skip(1).any(|a| a == "--check");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let program = root.join("programs/paychan");
    let out = root.join("idl/paychan.json");

    let idl = IdlBuilder::new()
        .program_path(program)
        .resolution(true)
        .skip_lint(false)
        .build()
        .context("building the IDL")?;
    let mut json = serde_json::to_string_pretty(&idl).context("serialising the IDL")?;
    json.push('\n');

    if check {
        let committed =
            std::fs::read_to_string(&out).with_context(|| format!("reading {}", out.display()))?;
        if committed != json {
            eprintln!(
                "paychan-idl: {} is stale; run scripts/idl.sh and commit the result",
                out.display()
            );
            return Ok(ExitCode::from(1));
        }
        eprintln!("paychan-idl: {} is current", out.display());
    } else {
        std::fs::write(&out, json).with_context(|| format!("writing {}", out.display()))?;
        eprintln!("paychan-idl: wrote {}", out.display());
    }
    Ok(ExitCode::SUCCESS)
}
