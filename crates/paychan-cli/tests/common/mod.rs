//! What the CLI test binaries share: running `paychan` (once, with fixed
//! leading arguments, or as a server until SIGTERM), the outcome of one run,
//! keypair files and an embedded chain with a scratch home.
#![allow(dead_code)] // each test binary uses its own part

use std::{
    path::{Path, PathBuf},
    process::{Output, Stdio},
    time::Duration,
};

use paychan_localnet::{LocalChain, LocalChainConfig};
use serde_json::Value;
use solana_keypair::Keypair;

pub const BIN: &str = env!("CARGO_BIN_EXE_paychan");
pub const SOL: u64 = 1_000_000_000;

/// Environment variables the binary reads; cleared so the caller's shell
/// cannot leak into a test.
const PAYCHAN_VARS: [&str; 6] = [
    "PAYCHAN_CONFIG",
    "PAYCHAN_RPC_URL",
    "PAYCHAN_KEYPAIR",
    "PAYCHAN_PROGRAM_ID",
    "PAYCHAN_COMMITMENT",
    "RUST_LOG",
];

/// Exit code and output of one run of the `paychan` binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout as the one JSON object `--json` prints.
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {self:?}"))
    }

    /// Asserts a zero exit code.
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "{self:?}");
        self
    }
}

impl From<Output> for Run {
    fn from(out: Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// `paychan args` with `HOME` and the working directory at `home`, the
/// variables of `env` set and the caller's `PAYCHAN_*` and `RUST_LOG` cleared.
pub fn command<S: AsRef<std::ffi::OsStr>>(
    home: &Path,
    env: &[(&str, &str)],
    args: &[S],
) -> std::process::Command {
    let mut cmd = std::process::Command::new(BIN);
    for var in PAYCHAN_VARS {
        cmd.env_remove(var);
    }
    cmd.env("HOME", home)
        .current_dir(home)
        .envs(env.iter().copied())
        .args(args);
    cmd
}

/// Runs [`command`] to the end.
pub fn paychan<S: AsRef<std::ffi::OsStr>>(home: &Path, env: &[(&str, &str)], args: &[S]) -> Run {
    command(home, env, args).output().unwrap().into()
}

/// Runs [`command`] (no extra environment) to the end, asynchronously.
pub async fn paychan_async<S: AsRef<std::ffi::OsStr>>(home: &Path, args: &[S]) -> Run {
    tokio::process::Command::from(command(home, &[], args))
        .output()
        .await
        .unwrap()
        .into()
}

/// The words of `template`, each `{}` replaced by the next of `values` as
/// one argument (a value with a space in it stays one).
pub fn argv(template: &str, values: &[&str]) -> Vec<String> {
    let mut values = values.iter();
    let args = template
        .split_whitespace()
        .map(|word| match word {
            "{}" => values
                .next()
                .unwrap_or_else(|| panic!("too few values for {template:?}"))
                .to_string(),
            _ => word.to_string(),
        })
        .collect();
    assert!(values.next().is_none(), "too many values for {template:?}");
    args
}

/// `paychan` run in `home` with the same leading arguments every time
/// (`--rpc-url …`, `--keypair …`, `--json`).
pub struct Paychan {
    home: PathBuf,
    leading: Vec<String>,
}

impl Paychan {
    pub fn new(home: &Path, leading: &[&str]) -> Self {
        Self {
            home: home.to_path_buf(),
            leading: leading.iter().map(|a| a.to_string()).collect(),
        }
    }

    /// The leading arguments, then [`argv`]`(template, values)`.
    pub async fn run(&self, template: &str, values: &[&str]) -> Run {
        let mut args = self.leading.clone();
        args.extend(argv(template, values));
        paychan_async(&self.home, &args).await
    }

    /// [`Self::run`], which must exit 0; its JSON output.
    pub async fn json(&self, template: &str, values: &[&str]) -> Value {
        self.run(template, values).await.ok().json()
    }
}

/// Spawns `paychan` and waits (60 s at most) for a stderr line with `marker`
/// followed by a URL; returns the child and the URL. Its stderr keeps being
/// drained.
pub async fn spawn_until<S: AsRef<std::ffi::OsStr>>(
    home: &Path,
    env: &[(&str, &str)],
    args: &[S],
    marker: &str,
) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut cmd = tokio::process::Command::from(command(home, env, args));
    cmd.stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            eprintln!("server: {line}");
            if let Some(rest) = line.split(marker).nth(1) {
                return rest.split_whitespace().next().unwrap().to_string();
            }
        }
        panic!("the server exited before listening")
    })
    .await
    .expect("the server listens within 60 s");
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("server: {line}");
        }
    });
    (child, url)
}

/// SIGTERM, then the process must exit 0 (graceful shutdown).
pub async fn terminate(mut child: tokio::process::Child) {
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("stops within 30 s")
        .unwrap();
    assert!(status.success(), "{status:?}");
}

/// The keypair in a Solana keypair file (a JSON array of 64 bytes).
pub fn read_keypair(path: &Path) -> Keypair {
    let bytes: Vec<u8> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    Keypair::try_from(bytes.as_slice()).unwrap()
}

/// Writes `keypair` as a Solana keypair file.
pub fn write_keypair(path: &Path, keypair: &Keypair) {
    std::fs::write(
        path,
        serde_json::to_string(&keypair.to_bytes().to_vec()).unwrap(),
    )
    .unwrap();
}

/// An embedded chain (the default config) and a scratch home directory.
pub async fn chain_and_home() -> (LocalChain, tempfile::TempDir) {
    let chain = LocalChain::start(LocalChainConfig::default())
        .await
        .expect("the chain starts");
    (chain, tempfile::tempdir().unwrap())
}
