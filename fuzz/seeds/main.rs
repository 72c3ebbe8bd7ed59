//! Writes the committed seed corpora (`corpus/<target>/`) and dictionaries
//! (`dict/<target>.dict`) of every fuzz target, with the project's own
//! encoders (see `paychan_fuzz::seeds`). Run from `fuzz/` after
//! `cargo fuzz build` (it is built with the targets):
//!
//! ```sh
//! "$CARGO_TARGET_DIR"/x86_64-unknown-linux-gnu/release/seeds [OUT_DIR]
//! ```
//!
//! `OUT_DIR` defaults to the current directory, which must then be `fuzz/`
//! (scripts/fuzz-smoke.sh writes to a temporary directory and compares).
//! Each target's corpus directory is emptied first: it holds seeds only
//! (fuzz runs work on a copy).
use std::{fs, path::PathBuf};

use paychan_fuzz::seeds::{self, Error, TARGETS};

fn main() -> Result<(), Error> {
    let root = match std::env::args().nth(1) {
        Some(dir) => PathBuf::from(dir),
        None if PathBuf::from("fuzz_targets").is_dir() => PathBuf::from("."),
        None => return Err("run from fuzz/, or name the output directory".into()),
    };
    fs::create_dir_all(root.join("dict"))?;
    for target in TARGETS {
        let dir = root.join("corpus").join(target);
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        fs::create_dir_all(&dir)?;
        let seeds = seeds::seeds(target)?;
        for (name, bytes) in &seeds {
            fs::write(dir.join(name), bytes)?;
        }
        let dict = root.join("dict").join(format!("{target}.dict"));
        fs::write(&dict, seeds::dictionary_text(target))?;
        println!("{target}: {} seeds, {}", seeds.len(), dict.display());
    }
    Ok(())
}
