//! Settings and where they come from.
//!
//! Precedence, highest first: command-line flags, environment variables, the
//! TOML file (`--config`, `$PAYCHAN_CONFIG`, else `./paychan.toml` when it
//! exists), built-in defaults. Every key of the file is documented in
//! `paychan.example.toml` at the crate root.
use std::{
    fmt,
    path::{Path, PathBuf},
    str::FromStr,
};

use paychan_sdk::Pubkey;
use serde::{Deserialize, Serialize};
use solana_commitment_config::CommitmentConfig;

use crate::error::CliError;

/// Environment variable naming the config file.
pub const ENV_CONFIG: &str = "PAYCHAN_CONFIG";
/// Environment variable for the JSON-RPC URL.
pub const ENV_RPC_URL: &str = "PAYCHAN_RPC_URL";
/// Environment variable for the keypair file.
pub const ENV_KEYPAIR: &str = "PAYCHAN_KEYPAIR";
/// Environment variable for the program id.
pub const ENV_PROGRAM_ID: &str = "PAYCHAN_PROGRAM_ID";
/// Environment variable for the commitment level.
pub const ENV_COMMITMENT: &str = "PAYCHAN_COMMITMENT";
/// The config file used when none is named and it exists.
pub const DEFAULT_CONFIG_FILE: &str = "paychan.toml";
/// Default JSON-RPC endpoint (Solana devnet).
pub const DEFAULT_RPC_URL: &str = "https://api.devnet.solana.com";
/// Default keypair file, relative to the home directory.
pub const DEFAULT_KEYPAIR: &str = ".config/solana/id.json";
/// Largest config file read.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Where a setting's value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A command-line flag.
    Flag,
    /// An environment variable.
    Env,
    /// The config file.
    File,
    /// The built-in default.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Flag => "flag",
            Self::Env => "env",
            Self::File => "file",
            Self::Default => "default",
        })
    }
}

/// A resolved value and its origin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Setting<T> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub source: Source,
}

/// Commitment level for reads and confirmations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Commitment {
    /// `processed`.
    Processed,
    /// `confirmed` (the default).
    #[default]
    Confirmed,
    /// `finalized`.
    Finalized,
}

impl Commitment {
    /// As the RPC client's type.
    pub fn config(self) -> CommitmentConfig {
        match self {
            Self::Processed => CommitmentConfig::processed(),
            Self::Confirmed => CommitmentConfig::confirmed(),
            Self::Finalized => CommitmentConfig::finalized(),
        }
    }
}

impl FromStr for Commitment {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "processed" => Ok(Self::Processed),
            "confirmed" => Ok(Self::Confirmed),
            "finalized" => Ok(Self::Finalized),
            other => Err(format!(
                "unknown commitment {other:?} (processed, confirmed, finalized)"
            )),
        }
    }
}

impl fmt::Display for Commitment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Processed => "processed",
            Self::Confirmed => "confirmed",
            Self::Finalized => "finalized",
        })
    }
}

/// The config file's contents. Unknown keys are an error (typos should not
/// silently fall back to defaults).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// JSON-RPC endpoint.
    pub rpc_url: Option<String>,
    /// Keypair file (Solana CLI JSON); `~/` is expanded; relative paths are
    /// relative to the config file's directory.
    pub keypair: Option<PathBuf>,
    /// The paychan program id (base58).
    pub program_id: Option<String>,
    /// `processed`, `confirmed` or `finalized`.
    pub commitment: Option<Commitment>,
    /// `paychan serve` / `facilitator` / `settle` settings (the keys of
    /// `serve.example.toml`); not a global setting.
    pub serve: Option<crate::commands::server::ServeConfig>,
}

/// Reads a TOML config file of at most [`MAX_CONFIG_BYTES`] and parses it
/// with `parse`; every failure names the file.
pub fn load_toml<T>(path: &Path, parse: fn(&str) -> Result<T, String>) -> Result<T, CliError> {
    let error = |reason: String| CliError::Config {
        path: path.to_path_buf(),
        reason,
    };
    let len = std::fs::metadata(path)
        .map_err(|e| error(e.to_string()))?
        .len();
    if len > MAX_CONFIG_BYTES {
        return Err(error(format!("larger than {MAX_CONFIG_BYTES} bytes")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
    parse(&text).map_err(error)
}

impl FileConfig {
    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Reads and parses `path` (at most [`MAX_CONFIG_BYTES`]); relative
    /// `keypair` paths are made relative to the file's directory.
    pub fn load(path: &Path) -> Result<Self, CliError> {
        let mut config = load_toml(path, Self::parse)?;
        if let Some(keypair) = &config.keypair
            && keypair.is_relative()
            && !keypair.starts_with("~")
            && let Some(dir) = path.parent()
        {
            config.keypair = Some(dir.join(keypair));
        }
        Ok(config)
    }

    /// As a [`Layer`].
    pub fn layer(&self) -> Layer {
        Layer {
            rpc_url: self.rpc_url.clone(),
            keypair: self.keypair.clone(),
            program_id: self.program_id.clone(),
            commitment: self.commitment.map(|c| c.to_string()),
        }
    }
}

/// The settings one source provides (unparsed text, so every source is
/// validated the same way and errors can name the source).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layer {
    /// JSON-RPC endpoint.
    pub rpc_url: Option<String>,
    /// Keypair file.
    pub keypair: Option<PathBuf>,
    /// Program id (base58).
    pub program_id: Option<String>,
    /// Commitment level.
    pub commitment: Option<String>,
}

impl Layer {
    /// The layer of environment variables, read through `var` (tests pass a map).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| var(name).filter(|v| !v.is_empty());
        Self {
            rpc_url: var(ENV_RPC_URL),
            keypair: var(ENV_KEYPAIR).map(PathBuf::from),
            program_id: var(ENV_PROGRAM_ID),
            commitment: var(ENV_COMMITMENT),
        }
    }
}

/// Every setting, resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Settings {
    /// The config file that was read, if any.
    pub config_file: Option<PathBuf>,
    /// JSON-RPC endpoint.
    pub rpc_url: Setting<String>,
    /// Keypair file (home-expanded).
    pub keypair: Setting<PathBuf>,
    /// The paychan program id.
    #[serde(serialize_with = "serialize_pubkey_setting")]
    pub program_id: Setting<Pubkey>,
    /// Commitment level.
    pub commitment: Setting<Commitment>,
}

fn serialize_pubkey_setting<S: serde::Serializer>(
    s: &Setting<Pubkey>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    Setting {
        value: s.value.to_string(),
        source: s.source,
    }
    .serialize(serializer)
}

/// The first of `(source, value)` that is set, else the default.
fn pick<T>(layers: [(Source, Option<T>); 3], default: T) -> Setting<T> {
    layers
        .into_iter()
        .find_map(|(source, value)| value.map(|value| Setting { value, source }))
        .unwrap_or(Setting {
            value: default,
            source: Source::Default,
        })
}

/// `~` or `~/rest` under `home`; other paths unchanged.
pub fn expand_home(path: &Path, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~"), home) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path.to_path_buf(),
    }
}

/// The user's home directory (`$HOME`).
pub fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

impl Settings {
    /// Resolves flags > env > file > defaults. `home` expands `~` and
    /// anchors the default keypair path.
    pub fn resolve(
        flags: Layer,
        env: Layer,
        file: Option<(PathBuf, FileConfig)>,
        home: Option<&Path>,
    ) -> Result<Self, CliError> {
        let (config_file, file) = match file {
            Some((path, config)) => (Some(path), config.layer()),
            None => (None, Layer::default()),
        };
        let rpc_url = pick(
            [
                (Source::Flag, flags.rpc_url),
                (Source::Env, env.rpc_url),
                (Source::File, file.rpc_url),
            ],
            DEFAULT_RPC_URL.to_string(),
        );
        validate_rpc_url(&rpc_url)?;
        let default_keypair = match home {
            Some(home) => home.join(DEFAULT_KEYPAIR),
            None => PathBuf::from("~").join(DEFAULT_KEYPAIR),
        };
        let mut keypair = pick(
            [
                (Source::Flag, flags.keypair),
                (Source::Env, env.keypair),
                (Source::File, file.keypair),
            ],
            default_keypair,
        );
        keypair.value = expand_home(&keypair.value, home);
        let program_id = pick(
            [
                (Source::Flag, flags.program_id),
                (Source::Env, env.program_id),
                (Source::File, file.program_id),
            ],
            paychan_sdk::ID.to_string(),
        );
        let program_id = Setting {
            value: program_id.value.parse::<Pubkey>().map_err(|e| {
                CliError::Usage(format!(
                    "program id {:?} (from {}): {e}",
                    program_id.value, program_id.source
                ))
            })?,
            source: program_id.source,
        };
        let commitment = pick(
            [
                (Source::Flag, flags.commitment),
                (Source::Env, env.commitment),
                (Source::File, file.commitment),
            ],
            Commitment::default().to_string(),
        );
        let commitment = Setting {
            value: commitment.value.parse::<Commitment>().map_err(|e| {
                CliError::Usage(format!("commitment (from {}): {e}", commitment.source))
            })?,
            source: commitment.source,
        };
        Ok(Self {
            config_file,
            rpc_url,
            keypair,
            program_id,
            commitment,
        })
    }
}

fn validate_rpc_url(url: &Setting<String>) -> Result<(), CliError> {
    let ok = ["http://", "https://"]
        .iter()
        .any(|scheme| url.value.starts_with(scheme) && url.value.len() > scheme.len());
    if ok {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "RPC URL {:?} (from {}) must start with http:// or https://",
            url.value, url.source
        )))
    }
}

/// Which config file to read: the named one (flag or `$PAYCHAN_CONFIG`, it
/// must exist), else `./paychan.toml` in `cwd` when it exists.
pub fn config_path(named: Option<PathBuf>, cwd: &Path) -> Option<PathBuf> {
    named.or_else(|| {
        let default = cwd.join(DEFAULT_CONFIG_FILE);
        default.is_file().then_some(default)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn layer(rpc: &str, keypair: &str) -> Layer {
        Layer {
            rpc_url: Some(rpc.into()),
            keypair: Some(keypair.into()),
            ..Layer::default()
        }
    }

    fn file(rpc: &str, keypair: &str) -> Option<(PathBuf, FileConfig)> {
        Some((
            PathBuf::from("/etc/paychan.toml"),
            FileConfig {
                rpc_url: Some(rpc.into()),
                keypair: Some(keypair.into()),
                program_id: None,
                commitment: Some(Commitment::Finalized),
                serve: None,
            },
        ))
    }

    const HOME: &str = "/home/u";

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let s = Settings::resolve(
            Layer::default(),
            Layer::default(),
            None,
            Some(Path::new(HOME)),
        )
        .unwrap();
        assert_eq!(s.rpc_url.value, DEFAULT_RPC_URL);
        assert_eq!(s.rpc_url.source, Source::Default);
        assert_eq!(
            s.keypair.value,
            PathBuf::from("/home/u/.config/solana/id.json")
        );
        assert_eq!(s.program_id.value, paychan_sdk::ID);
        assert_eq!(s.commitment.value, Commitment::Confirmed);
        assert_eq!(s.config_file, None);
    }

    #[test]
    fn file_beats_defaults_env_beats_file_flag_beats_env() {
        let home = Some(Path::new(HOME));
        let resolve = |flags: Layer, env: Layer| {
            Settings::resolve(flags, env, file("http://file", "~/file.json"), home).unwrap()
        };
        let rpc = |s: &Settings| (s.rpc_url.value.clone(), s.rpc_url.source);
        let keypair = |s: &Settings| (s.keypair.value.clone(), s.keypair.source);

        let s = resolve(Layer::default(), Layer::default());
        assert_eq!(rpc(&s), (String::from("http://file"), Source::File));
        assert_eq!(s.keypair.value, PathBuf::from("/home/u/file.json"));
        assert_eq!(s.commitment.value, Commitment::Finalized);
        assert_eq!(s.commitment.source, Source::File);
        assert_eq!(s.config_file, Some(PathBuf::from("/etc/paychan.toml")));

        let s = resolve(Layer::default(), layer("http://env", "/env.json"));
        assert_eq!(rpc(&s), (String::from("http://env"), Source::Env));
        assert_eq!(keypair(&s), (PathBuf::from("/env.json"), Source::Env));
        assert_eq!(s.commitment.source, Source::File, "env did not set it");

        let flags = layer("https://flag", "~/flag.json");
        let s = resolve(flags, layer("http://env", "/env.json"));
        assert_eq!(rpc(&s), (String::from("https://flag"), Source::Flag));
        assert_eq!(
            keypair(&s),
            (PathBuf::from("/home/u/flag.json"), Source::Flag)
        );
    }

    #[test]
    fn env_layer_reads_the_documented_variables() {
        let vars: HashMap<&str, &str> = [
            (ENV_RPC_URL, "http://127.0.0.1:8899"),
            (ENV_KEYPAIR, "/k.json"),
            (ENV_PROGRAM_ID, ""),
            (ENV_COMMITMENT, "processed"),
        ]
        .into();
        let env = Layer::from_env(|k| vars.get(k).map(|v| v.to_string()));
        assert_eq!(env.rpc_url.as_deref(), Some("http://127.0.0.1:8899"));
        assert_eq!(env.keypair, Some(PathBuf::from("/k.json")));
        assert_eq!(env.program_id, None, "empty variables are unset");
        assert_eq!(env.commitment.as_deref(), Some("processed"));
    }

    #[test]
    fn invalid_values_name_their_source() {
        let bad = Layer {
            program_id: Some("not-a-key".into()),
            ..Layer::default()
        };
        let err = Settings::resolve(Layer::default(), bad, None, None).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::EXIT_USAGE);
        assert!(err.to_string().contains("from env"), "{err}");

        let err =
            Settings::resolve(layer("ftp://x", "/k"), Layer::default(), None, None).unwrap_err();
        assert!(err.to_string().contains("from flag"), "{err}");

        let bad = Layer {
            commitment: Some("max".into()),
            ..Layer::default()
        };
        assert!(Settings::resolve(bad, Layer::default(), None, None).is_err());
    }

    #[test]
    fn file_parsing() {
        let config = FileConfig::parse(
            r#"
            rpc_url = "http://localhost:8899"
            keypair = "keys/payer.json"
            program_id = "11111111111111111111111111111111"
            commitment = "finalized"
            "#,
        )
        .unwrap();
        assert_eq!(config.rpc_url.as_deref(), Some("http://localhost:8899"));
        assert_eq!(config.commitment, Some(Commitment::Finalized));
        assert!(FileConfig::parse("rpc_ulr = \"typo\"").is_err());
        assert!(FileConfig::parse("commitment = \"max\"").is_err());
        assert_eq!(FileConfig::parse("").unwrap(), FileConfig::default());
    }

    #[test]
    fn the_example_file_parses_and_documents_every_key() {
        let text = include_str!("../paychan.example.toml");
        // Every key is present but commented out; uncommented it must parse.
        let uncommented: String = text
            .lines()
            .filter_map(|l| l.strip_prefix("# ").filter(|l| l.contains(" = ")))
            .collect::<Vec<_>>()
            .join("\n");
        let config = FileConfig::parse(&uncommented).unwrap();
        assert!(config.rpc_url.is_some());
        assert!(config.keypair.is_some());
        assert!(config.program_id.is_some());
        assert!(config.commitment.is_some());
    }

    #[test]
    fn load_makes_relative_keypairs_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("paychan.toml");
        std::fs::write(&path, "keypair = \"payer.json\"\n").unwrap();
        let config = FileConfig::load(&path).unwrap();
        assert_eq!(config.keypair, Some(dir.path().join("payer.json")));
        assert_eq!(config_path(None, dir.path()), Some(path.clone()));
        assert_eq!(
            config_path(Some("/x.toml".into()), dir.path()),
            Some(PathBuf::from("/x.toml"))
        );
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(config_path(None, empty.path()), None);
        let err = FileConfig::load(&empty.path().join("missing.toml")).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::EXIT_USAGE);
    }
}
