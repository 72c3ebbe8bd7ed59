//! `paychan program deploy | upgrade | show`: the program binary through
//! the upgradeable loader (loader v3) on any JSON-RPC endpoint, with the
//! loader's own instruction builders (`solana-loader-v3-interface`).
//!
//! * `deploy SO --program-keypair FILE`: a buffer is created (or a
//!   `--buffer` reused), the `.so` is written into it in chunks (each
//!   `Write` transaction fits one 1,232-byte packet; `--parallel` in
//!   flight, a fresh blockhash per group), then `DeployWithMaxDataLen`
//!   signed by the payer, the program keypair and the upgrade authority.
//! * `upgrade SO [--program ID]`: the same buffer writes, then `Upgrade`
//!   signed by the upgrade authority (the buffer's rent goes back to the
//!   fee payer).
//! * `show [ID] [--so FILE]`: the program account, its ProgramData, the
//!   upgrade authority and the SHA-256 of the deployed bytes.
//!
//! **Resumable buffers.** Writes go in rounds: each round reads the buffer
//! back over RPC and (re)writes only the chunks whose bytes differ, so a
//! run that died, or writes that were dropped, are finished by running the
//! same command with the same `--buffer` keypair. Chunks already right on
//! chain are never sent again.
//!
//! **What is hashed.** The deployed bytes are the ProgramData account's
//! data after its 45-byte header (`ProgramData { slot, upgrade_authority
//! }`) with trailing zero bytes removed (ProgramData is sized for
//! `--max-len` and zero-padded); a local `.so` is hashed the same way (its
//! bytes, trailing zeros removed). This is `solana-verify
//! get-executable-hash` / `get-program-hash`'s convention; for a `.so`
//! that does not end in zero bytes (`paychan.so` does not) it equals
//! `sha256sum paychan.so`.
//!
//! **What is refused before anything is sent.** A file that is not an
//! ELF64 little-endian SBF object (`e_machine` EM_BPF, 247), one whose
//! `e_flags` is not 3 (SBPF v3: how `solana-sbpf` reads the version;
//! v0–v2 binaries are `anchor build`'s), one larger than the loader's
//! maximum (10 MiB account minus the 45-byte header) or than `--max-len`,
//! and an upgrade that does not fit the existing ProgramData.
use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use clap::{Args, Subcommand};
use futures_util::StreamExt;
use paychan_sdk::Pubkey;
use serde_json::json;
use sha2::{Digest, Sha256};
use solana_keypair::Keypair;
use solana_loader_v3_interface::{
    get_program_data_address,
    instruction::{create_buffer, deploy_with_max_program_len, upgrade, write},
};
use solana_rpc_client::nonblocking::rpc_client::RpcClient;
use solana_rpc_client_api::config::RpcSendTransactionConfig;
use solana_signature::Signature;
use solana_signer::Signer;
use solana_transaction::Transaction;

use super::Context;
use crate::{
    cli::parse_pubkey,
    error::CliError,
    keys::read_keypair,
    output::{Report, Table},
};

/// The upgradeable loader (loader v3).
pub const LOADER_V3_ID: Pubkey =
    Pubkey::from_str_const("BPFLoaderUpgradeab1e11111111111111111111111");
/// The original non-upgradeable loaders, whose program accounts hold the ELF.
const BPF_LOADER_2_ID: Pubkey =
    Pubkey::from_str_const("BPFLoader2111111111111111111111111111111111");
const BPF_LOADER_1_ID: Pubkey =
    Pubkey::from_str_const("BPFLoader1111111111111111111111111111111111");
/// The largest account (the runtime's `MAX_PERMITTED_DATA_LENGTH`).
pub const MAX_ACCOUNT_LEN: usize = 10 * 1024 * 1024;
/// `Buffer { authority }` header length.
pub const BUFFER_HEADER_LEN: usize = 37;
/// `ProgramData { slot, upgrade_authority }` header length.
pub const PROGRAMDATA_HEADER_LEN: usize = 45;
/// `Program { programdata_address }` account length.
pub const PROGRAM_ACCOUNT_LEN: usize = 36;
/// The largest program the loader can hold: a full-size ProgramData account.
pub const MAX_PROGRAM_LEN: usize = MAX_ACCOUNT_LEN - PROGRAMDATA_HEADER_LEN;
/// Largest transaction on the wire.
pub const PACKET_DATA_SIZE: usize = 1232;
/// `e_machine` of SBF ELFs that `solana-sbpf` loads as SBPF v3 (EM_BPF).
pub const EM_BPF: u16 = 247;
/// `e_machine` of older SBF toolchains (EM_SBF), v0–v2 only.
pub const EM_SBF: u16 = 263;
/// The `e_flags` value of an SBPF v3 ELF.
pub const SBPF_V3_FLAGS: u32 = 3;
/// What the printed hash covers.
pub const HASHED: &str = "SHA-256 of the ProgramData account's data after its 45-byte header, \
                          trailing zero bytes removed (a local .so: its bytes, trailing zero bytes removed)";
/// Write transactions signed with one blockhash before their confirmations
/// are awaited (a Surfpool chain in `Transaction` mode makes one block per
/// transaction and refuses a blockhash ~45 blocks old).
const WRITE_GROUP: usize = 32;
/// How long a group's confirmations are awaited at most.
const GROUP_CONFIRM_TIMEOUT: Duration = Duration::from_secs(90);
/// Poll interval for signature statuses.
const STATUS_POLL: Duration = Duration::from_millis(50);
/// Attempts of the buffer creation, deploy and upgrade transactions.
const FINAL_ATTEMPTS: usize = 3;

/// `paychan program …`.
#[derive(Debug, Subcommand)]
pub enum ProgramCommand {
    /// Deploy a new program (SBPF v3 `.so`) through the upgradeable loader
    Deploy(DeployArgs),
    /// Replace a deployed program's bytes (signed by its upgrade authority)
    Upgrade(UpgradeArgs),
    /// Show a program: ProgramData, upgrade authority, SHA-256 of the deployed bytes
    Show(ShowArgs),
}

/// Buffer options shared by `deploy` and `upgrade`.
#[derive(Debug, Args)]
pub struct UploadArgs {
    /// Buffer keypair, created if its account does not exist and reused
    /// otherwise: chunks already on chain with the right bytes are skipped,
    /// so rerunning the same command resumes [default: a new buffer]
    #[arg(long, value_name = "FILE")]
    pub buffer: Option<PathBuf>,
    /// Upgrade authority keypair (also the buffer's authority) [default: --keypair]
    #[arg(long, value_name = "FILE")]
    pub upgrade_authority: Option<PathBuf>,
    /// Write transactions in flight at once
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// Write rounds: each reads the buffer back and rewrites the chunks that differ
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u8).range(1..=50))]
    pub rounds: u8,
}

/// Arguments of `paychan program deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The program binary (an SBPF v3 ELF; scripts/build-sbf.sh writes target/deploy/paychan.so)
    #[arg(value_name = "SO")]
    pub so: PathBuf,
    /// The program's keypair: its public key is the program id (for paychan,
    /// the `declare_id!` the binary was built with)
    #[arg(long, value_name = "FILE")]
    pub program_keypair: PathBuf,
    /// ProgramData capacity in bytes: the largest future upgrade [default: the .so's length]
    #[arg(long, value_name = "BYTES")]
    pub max_len: Option<usize>,
    /// Buffer and authority options.
    #[command(flatten)]
    pub upload: UploadArgs,
}

/// Arguments of `paychan program upgrade`.
#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// The new program binary (an SBPF v3 ELF)
    #[arg(value_name = "SO")]
    pub so: PathBuf,
    /// The program to upgrade [default: the configured program id]
    #[arg(long, value_name = "PUBKEY", value_parser = parse_pubkey)]
    pub program: Option<Pubkey>,
    /// Buffer and authority options.
    #[command(flatten)]
    pub upload: UploadArgs,
}

/// Arguments of `paychan program show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The program [default: the configured program id]
    #[arg(value_name = "PROGRAM_ID", value_parser = parse_pubkey)]
    pub program: Option<Pubkey>,
    /// A local .so to compare with: its hash is printed and a mismatch is an error (exit 4)
    #[arg(long, value_name = "FILE")]
    pub so: Option<PathBuf>,
}

/// Runs `paychan program …`.
pub async fn run(ctx: &Context, command: &ProgramCommand) -> Result<Report, CliError> {
    match command {
        ProgramCommand::Deploy(args) => deploy(ctx, args).await,
        ProgramCommand::Upgrade(args) => upgrade_program(ctx, args).await,
        ProgramCommand::Show(args) => show(ctx, args).await,
    }
}

// ---------------------------------------------------------------- the ELF

/// Why a file cannot be deployed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElfProblem {
    /// Not an ELF at all.
    #[error("not an ELF file ({0})")]
    NotElf(String),
    /// An ELF, but not a 64-bit little-endian SBF object.
    #[error("not an SBF program: {0}")]
    NotSbf(String),
    /// An SBF program of another SBPF version.
    #[error(
        "an SBPF {version} program (e_flags {flags}); only SBPF v3 is deployed here (active on \
         devnet and mainnet-beta; what scripts/build-sbf.sh builds)"
    )]
    WrongVersion {
        /// `v0`, `v1`, … as `solana-sbpf` names them.
        version: String,
        /// The raw `e_flags`.
        flags: u32,
    },
    /// Too large for the loader or for the given capacity.
    #[error("{len} bytes is larger than {limit}")]
    TooLarge {
        /// The file's length.
        len: usize,
        /// What it was compared with.
        limit: String,
    },
}

/// Checks that `bytes` is an SBPF v3 ELF of at most `max_len` bytes (and
/// at most [`MAX_PROGRAM_LEN`]): the ELF64 header's magic, class, data
/// encoding, `e_machine` (EM_BPF, which `solana-sbpf`'s strict v3 parser
/// requires) and `e_flags` (the SBPF version, as `solana_sbpf::elf::
/// get_sbpf_version` reads it: 0–4, anything else reserved).
pub fn check_elf(bytes: &[u8], max_len: Option<usize>) -> Result<(), ElfProblem> {
    let u16_at = |at: usize| {
        bytes
            .get(at..at + 2)
            .and_then(|b| b.try_into().ok())
            .map(u16::from_le_bytes)
    };
    let u32_at = |at: usize| {
        bytes
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    };
    if bytes.len() < 64 {
        return Err(ElfProblem::NotElf(format!(
            "{} bytes, shorter than an ELF64 header",
            bytes.len()
        )));
    }
    if bytes.get(..4) != Some(b"\x7fELF") {
        return Err(ElfProblem::NotElf("no \\x7fELF magic".into()));
    }
    match (bytes.get(4), bytes.get(5)) {
        (Some(2), Some(1)) => {}
        (Some(2), _) => return Err(ElfProblem::NotSbf("a big-endian ELF".into())),
        _ => return Err(ElfProblem::NotSbf("a 32-bit ELF (SBF is ELF64)".into())),
    }
    let machine = u16_at(18).unwrap_or_default();
    if machine != EM_BPF && machine != EM_SBF {
        return Err(ElfProblem::NotSbf(format!(
            "e_machine {machine} (SBF is {EM_BPF}, or {EM_SBF} for older toolchains)"
        )));
    }
    let flags = u32_at(48).unwrap_or(u32::MAX);
    if flags != SBPF_V3_FLAGS {
        let version = match flags {
            0..=4 => format!("v{flags}"),
            _ => "(reserved)".to_string(),
        };
        return Err(ElfProblem::WrongVersion { version, flags });
    }
    if machine != EM_BPF {
        return Err(ElfProblem::NotSbf(format!(
            "an SBPF v3 ELF must have e_machine {EM_BPF} (EM_BPF), this one has {machine}"
        )));
    }
    if bytes.len() > MAX_PROGRAM_LEN {
        return Err(ElfProblem::TooLarge {
            len: bytes.len(),
            limit: format!(
                "the loader's maximum program of {MAX_PROGRAM_LEN} bytes (a 10 MiB ProgramData \
                 account minus its {PROGRAMDATA_HEADER_LEN}-byte header)"
            ),
        });
    }
    if let Some(max) = max_len
        && bytes.len() > max
    {
        return Err(ElfProblem::TooLarge {
            len: bytes.len(),
            limit: format!("--max-len {max}"),
        });
    }
    Ok(())
}

/// `bytes` without trailing zero bytes.
pub fn trim_trailing_zeros(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    bytes.get(..end).unwrap_or_default()
}

/// Lower-case hex of [`HASHED`]'s SHA-256 of `bytes`.
pub fn executable_sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(trim_trailing_zeros(bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads and checks a `.so`.
fn read_so(path: &Path, max_len: Option<usize>) -> Result<Vec<u8>, CliError> {
    let meta = std::fs::metadata(path).map_err(|source| CliError::Io {
        what: format!("reading {}", path.display()),
        source,
    })?;
    // Bounded before reading: a huge file is refused, not loaded.
    if meta.len() > MAX_PROGRAM_LEN as u64 {
        return Err(CliError::Usage(format!(
            "{}: {}",
            path.display(),
            ElfProblem::TooLarge {
                len: usize::try_from(meta.len()).unwrap_or(usize::MAX),
                limit: format!("the loader's maximum program of {MAX_PROGRAM_LEN} bytes"),
            }
        )));
    }
    let bytes = std::fs::read(path).map_err(|source| CliError::Io {
        what: format!("reading {}", path.display()),
        source,
    })?;
    check_elf(&bytes, max_len)
        .map_err(|problem| CliError::Usage(format!("{}: {problem}", path.display())))?;
    Ok(bytes)
}

// ------------------------------------------------------ on-chain accounts

/// A loader-v3 program as read over RPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployedProgram {
    /// The program id.
    pub program_id: Pubkey,
    /// Its owner (loader).
    pub loader: Pubkey,
    /// The ProgramData account (loader v3 only).
    pub programdata: Option<Pubkey>,
    /// The ProgramData's `slot` (loader v3 only).
    pub slot: Option<u64>,
    /// The upgrade authority; `None` when immutable (or not loader v3).
    pub upgrade_authority: Option<Pubkey>,
    /// Bytes after the header available to the program (loader v3).
    pub capacity: usize,
    /// The deployed bytes, trailing zeros removed.
    pub executable: Vec<u8>,
}

/// The `Program { programdata_address }` account's ProgramData address.
pub fn parse_program_account(data: &[u8]) -> Option<Pubkey> {
    if data.len() != PROGRAM_ACCOUNT_LEN || data.get(..4)? != 2u32.to_le_bytes() {
        return None;
    }
    Pubkey::try_from(data.get(4..36)?).ok()
}

/// `(slot, upgrade authority, bytes after the header)` of a ProgramData account.
pub fn parse_programdata(data: &[u8]) -> Option<(u64, Option<Pubkey>, &[u8])> {
    if data.get(..4)? != 3u32.to_le_bytes() {
        return None;
    }
    let slot = u64::from_le_bytes(data.get(4..12)?.try_into().ok()?);
    let authority = match data.get(12)? {
        0 => None,
        1 => Some(Pubkey::try_from(data.get(13..45)?).ok()?),
        _ => return None,
    };
    Some((slot, authority, data.get(PROGRAMDATA_HEADER_LEN..)?))
}

/// `(authority, bytes after the header)` of a Buffer account.
pub fn parse_buffer(data: &[u8]) -> Option<(Option<Pubkey>, &[u8])> {
    if data.get(..4)? != 1u32.to_le_bytes() {
        return None;
    }
    let authority = match data.get(4)? {
        0 => None,
        1 => Some(Pubkey::try_from(data.get(5..37)?).ok()?),
        _ => return None,
    };
    Some((authority, data.get(BUFFER_HEADER_LEN..)?))
}

/// Everything a command needs to talk to the endpoint.
struct Rpc {
    client: Arc<RpcClient>,
    url: String,
}

impl Rpc {
    fn new(ctx: &Context) -> Self {
        let url = ctx.settings.rpc_url.value.clone();
        Self {
            client: Arc::new(RpcClient::new_with_commitment(
                url.clone(),
                ctx.settings.commitment.value.config(),
            )),
            url,
        }
    }

    fn error(&self, e: solana_rpc_client::api::client_error::Error) -> CliError {
        CliError::from_client(e, &self.url, &[LOADER_V3_ID], &paychan_sdk::ID)
    }

    /// An account's `(owner, lamports, data)`; `None` when it does not exist.
    /// Accounts larger than the runtime allows are refused.
    async fn account(&self, address: &Pubkey) -> Result<Option<(Pubkey, Vec<u8>)>, CliError> {
        let account = self
            .client
            .get_account_with_commitment(address, self.client.commitment())
            .await
            .map_err(|e| self.error(e))?
            .value;
        match account {
            Some(a) if a.data.len() > MAX_ACCOUNT_LEN => Err(CliError::Account(format!(
                "{address}: the RPC returned {} bytes, more than an account can hold",
                a.data.len()
            ))),
            Some(a) => Ok(Some((a.owner, a.data))),
            None => Ok(None),
        }
    }

    async fn program(&self, program_id: &Pubkey) -> Result<DeployedProgram, CliError> {
        let (owner, data) = self
            .account(program_id)
            .await?
            .ok_or_else(|| CliError::Account(format!("program {program_id} does not exist")))?;
        if owner == BPF_LOADER_2_ID || owner == BPF_LOADER_1_ID {
            return Ok(DeployedProgram {
                program_id: *program_id,
                loader: owner,
                programdata: None,
                slot: None,
                upgrade_authority: None,
                capacity: data.len(),
                executable: trim_trailing_zeros(&data).to_vec(),
            });
        }
        if owner != LOADER_V3_ID {
            return Err(CliError::Account(format!(
                "{program_id} is not a program of the upgradeable loader (owned by {owner})"
            )));
        }
        let programdata = parse_program_account(&data).ok_or_else(|| {
            CliError::Account(format!(
                "{program_id} is a loader-v3 account but not a Program ({} bytes; a buffer?)",
                data.len()
            ))
        })?;
        let expected = get_program_data_address(program_id);
        if programdata != expected {
            return Err(CliError::Account(format!(
                "{program_id} points at ProgramData {programdata}, not its derived {expected}"
            )));
        }
        let (pd_owner, pd) = self.account(&programdata).await?.ok_or_else(|| {
            CliError::Account(format!(
                "{program_id}'s ProgramData {programdata} does not exist (closed program)"
            ))
        })?;
        if pd_owner != LOADER_V3_ID {
            return Err(CliError::Account(format!(
                "ProgramData {programdata} is owned by {pd_owner}"
            )));
        }
        let (slot, authority, bytes) = parse_programdata(&pd).ok_or_else(|| {
            CliError::Account(format!(
                "{programdata} is not a ProgramData account ({} bytes)",
                pd.len()
            ))
        })?;
        Ok(DeployedProgram {
            program_id: *program_id,
            loader: owner,
            programdata: Some(programdata),
            slot: Some(slot),
            upgrade_authority: authority,
            capacity: bytes.len(),
            executable: trim_trailing_zeros(bytes).to_vec(),
        })
    }

    async fn rent(&self, len: usize) -> Result<u64, CliError> {
        self.client
            .get_minimum_balance_for_rent_exemption(len)
            .await
            .map_err(|e| self.error(e))
    }

    async fn blockhash(&self) -> Result<(solana_transaction::Hash, u64), CliError> {
        self.client
            .get_latest_blockhash_with_commitment(self.client.commitment())
            .await
            .map_err(|e| self.error(e))
    }

    /// Signs with a fresh blockhash and sends with preflight, up to
    /// [`FINAL_ATTEMPTS`] times on transport failures and expired
    /// blockhashes; `landed` is asked before each retry (a transaction whose
    /// confirmation was lost may have landed).
    async fn send_final<F, Fut>(
        &self,
        what: &str,
        instructions: &[solana_transaction::Instruction],
        payer: &Keypair,
        signers: &[&Keypair],
        landed: F,
    ) -> Result<Option<Signature>, CliError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<bool, CliError>>,
    {
        let mut last = None;
        for attempt in 1..=FINAL_ATTEMPTS {
            if attempt > 1 && landed().await? {
                return Ok(None);
            }
            let (blockhash, _) = self.blockhash().await?;
            let mut tx = Transaction::new_with_payer(instructions, Some(&payer.pubkey()));
            let mut all: Vec<&Keypair> = vec![payer];
            all.extend(signers.iter().filter(|k| k.pubkey() != payer.pubkey()));
            tx.try_sign(&all, blockhash)
                .map_err(|e| CliError::Usage(format!("signing the {what} transaction: {e}")))?;
            match self.client.send_and_confirm_transaction(&tx).await {
                Ok(signature) => return Ok(Some(signature)),
                Err(e) => {
                    let transient = match e.get_transaction_error() {
                        Some(solana_transaction_error::TransactionError::BlockhashNotFound) => true,
                        Some(_) => false,
                        None => true,
                    };
                    tracing::warn!(attempt, what, error = %e, "the transaction failed");
                    if !transient {
                        return Err(self.error(e));
                    }
                    last = Some(self.error(e));
                }
            }
        }
        Err(last.unwrap_or_else(|| CliError::Usage(format!("{what}: no attempt made"))))
    }
}

// ------------------------------------------------------------ the upload

/// What writing the buffer took.
#[derive(Debug, Default)]
struct Upload {
    created: bool,
    chunk_len: usize,
    chunks: usize,
    written: usize,
    skipped: usize,
    rounds: usize,
    write_transactions: usize,
}

/// Bytes of program data one `Write` transaction carries (fee payer plus,
/// when different, the buffer authority signing).
pub fn write_chunk_len(payer: &Pubkey, buffer: &Pubkey, authority: &Pubkey) -> usize {
    let size = |n: usize| {
        let ix = write(buffer, authority, 0, vec![0u8; n]);
        let tx = Transaction::new_with_payer(&[ix], Some(payer));
        let signatures = usize::from(tx.message.header.num_required_signatures);
        1 + 64 * signatures + tx.message.serialize().len()
    };
    let mut n = PACKET_DATA_SIZE.saturating_sub(size(0));
    while n > 0 && size(n) > PACKET_DATA_SIZE {
        n -= 1;
    }
    n
}

/// Offsets of the chunks of `elf` whose bytes in `on_chain` (the buffer's
/// data after its header) differ.
pub fn differing_chunks(elf: &[u8], on_chain: &[u8], chunk_len: usize) -> Vec<usize> {
    if chunk_len == 0 {
        return Vec::new();
    }
    elf.chunks(chunk_len)
        .enumerate()
        .filter(|(i, chunk)| {
            let start = i * chunk_len;
            on_chain.get(start..start + chunk.len()) != Some(*chunk)
        })
        .map(|(i, _)| i * chunk_len)
        .collect()
}

/// Makes `buffer` hold exactly `elf`: creates it if needed, then writes
/// the differing chunks in rounds until none differ.
async fn upload(
    ctx: &Context,
    rpc: &Rpc,
    payer: &Keypair,
    authority: &Keypair,
    buffer: &Keypair,
    elf: &[u8],
    args: &UploadArgs,
) -> Result<Upload, CliError> {
    let address = buffer.pubkey();
    let mut report = Upload {
        chunk_len: write_chunk_len(&payer.pubkey(), &address, &authority.pubkey()),
        ..Upload::default()
    };
    if report.chunk_len == 0 {
        return Err(CliError::Usage(
            "no room for program bytes in a write transaction".into(),
        ));
    }
    report.chunks = elf.len().div_ceil(report.chunk_len);
    let buffer_len = BUFFER_HEADER_LEN + elf.len();
    match rpc.account(&address).await? {
        None => {
            let lamports = rpc.rent(buffer_len).await?;
            let ixs = create_buffer(
                &payer.pubkey(),
                &address,
                &authority.pubkey(),
                lamports,
                elf.len(),
            )
            .map_err(|e| CliError::Usage(format!("building the buffer's creation: {e}")))?;
            rpc.send_final("create buffer", &ixs, payer, &[buffer], || async {
                Ok(rpc.account(&address).await?.is_some())
            })
            .await?;
            report.created = true;
        }
        Some((owner, data)) => {
            if owner != LOADER_V3_ID {
                return Err(CliError::Account(format!(
                    "buffer {address} exists but is owned by {owner}, not the upgradeable loader"
                )));
            }
            let (buffer_authority, _) = parse_buffer(&data)
                .ok_or_else(|| CliError::Account(format!("{address} is not a loader buffer")))?;
            if buffer_authority != Some(authority.pubkey()) {
                return Err(CliError::Account(format!(
                    "buffer {address}'s authority is {}, not the upgrade authority {}",
                    buffer_authority.map_or("none (immutable)".into(), |a| a.to_string()),
                    authority.pubkey()
                )));
            }
            if data.len() != buffer_len {
                return Err(CliError::Account(format!(
                    "buffer {address} holds {} program bytes, this .so has {}: use another --buffer \
                     (and close this one to get its rent back: `solana program close {address}`)",
                    data.len().saturating_sub(BUFFER_HEADER_LEN),
                    elf.len()
                )));
            }
        }
    }

    let mut first_round = true;
    let mut last_error: Option<String> = None;
    let bar = ctx.progress.bar(report.chunks as u64, "writing the buffer");
    for round in 1..=usize::from(args.rounds) {
        // The buffer as it is now: what is right is not sent again.
        let on_chain = match rpc.account(&address).await? {
            Some((_, data)) if data.len() == buffer_len => data,
            Some((_, data)) => {
                return Err(CliError::Account(format!(
                    "buffer {address} changed size to {} bytes while writing",
                    data.len()
                )));
            }
            None => return Err(CliError::Account(format!("buffer {address} disappeared"))),
        };
        let body = on_chain.get(BUFFER_HEADER_LEN..).unwrap_or_default();
        let pending = differing_chunks(elf, body, report.chunk_len);
        if first_round {
            report.skipped = report.chunks - pending.len();
            bar.inc(report.skipped as u64);
            first_round = false;
        }
        if pending.is_empty() {
            bar.finish_and_clear();
            return Ok(report);
        }
        report.rounds = round;
        tracing::info!(round, pending = pending.len(), "writing chunks");
        for group in pending.chunks(WRITE_GROUP) {
            let (blockhash, last_valid) = rpc.blockhash().await?;
            let mut txs = Vec::with_capacity(group.len());
            for &offset in group {
                let end = (offset + report.chunk_len).min(elf.len());
                let bytes = elf.get(offset..end).unwrap_or_default().to_vec();
                let offset32 = u32::try_from(offset)
                    .map_err(|_| CliError::Usage(format!("offset {offset} overflows u32")))?;
                let ix = write(&address, &authority.pubkey(), offset32, bytes);
                let mut tx = Transaction::new_with_payer(&[ix], Some(&payer.pubkey()));
                let mut signers: Vec<&Keypair> = vec![payer];
                if authority.pubkey() != payer.pubkey() {
                    signers.push(authority);
                }
                tx.try_sign(&signers, blockhash)
                    .map_err(|e| CliError::Usage(format!("signing a write: {e}")))?;
                txs.push(tx);
            }
            report.write_transactions += txs.len();
            let outcome = send_group(rpc, txs, usize::from(args.parallel), last_valid).await?;
            report.written += outcome.confirmed;
            bar.inc(outcome.confirmed as u64);
            if let Some(e) = outcome.error {
                last_error = Some(e);
            }
        }
    }
    bar.finish_and_clear();
    // One last look: the final round's writes may all have landed.
    let body = rpc
        .account(&address)
        .await?
        .map(|(_, d)| d)
        .unwrap_or_default();
    let pending = differing_chunks(
        elf,
        body.get(BUFFER_HEADER_LEN..).unwrap_or_default(),
        report.chunk_len,
    );
    if pending.is_empty() {
        return Ok(report);
    }
    Err(CliError::Rpc {
        url: paychan_verifier::redact::url(&rpc.url),
        reason: format!(
            "{} of {} chunks of buffer {address} still differ after {} rounds{}; run the same \
             command again with --buffer to resume",
            pending.len(),
            report.chunks,
            args.rounds,
            last_error.map_or(String::new(), |e| format!(" (last error: {e})"))
        ),
    })
}

struct GroupOutcome {
    confirmed: usize,
    error: Option<String>,
}

/// Sends `txs` (preflight skipped: the statuses tell) with `parallel` in
/// flight, then waits for their confirmations until all are final, the
/// blockhash expires or [`GROUP_CONFIRM_TIMEOUT`] passes. Failures are
/// counted, not fatal: the next round rewrites what is still wrong.
async fn send_group(
    rpc: &Rpc,
    txs: Vec<Transaction>,
    parallel: usize,
    last_valid_block_height: u64,
) -> Result<GroupOutcome, CliError> {
    let config = RpcSendTransactionConfig {
        skip_preflight: true,
        ..RpcSendTransactionConfig::default()
    };
    let mut error = None;
    let sent: Vec<Result<Signature, String>> = futures_util::stream::iter(txs)
        .map(|tx| {
            let client = rpc.client.clone();
            async move {
                client
                    .send_transaction_with_config(&tx, config)
                    .await
                    .map_err(|e| paychan_verifier::redact::text(&e.to_string()))
            }
        })
        .buffer_unordered(parallel.max(1))
        .collect()
        .await;
    let mut pending: Vec<Signature> = Vec::with_capacity(sent.len());
    for s in sent {
        match s {
            Ok(signature) => pending.push(signature),
            Err(e) => error = Some(e),
        }
    }
    let started = Instant::now();
    let mut confirmed = 0;
    while !pending.is_empty() {
        let mut still = Vec::new();
        for slice in pending.chunks(256) {
            let statuses = rpc
                .client
                .get_signature_statuses(slice)
                .await
                .map_err(|e| rpc.error(e))?
                .value;
            if statuses.len() != slice.len() {
                return Err(CliError::Rpc {
                    url: paychan_verifier::redact::url(&rpc.url),
                    reason: format!(
                        "getSignatureStatuses answered {} statuses for {} signatures",
                        statuses.len(),
                        slice.len()
                    ),
                });
            }
            for (signature, status) in slice.iter().zip(statuses) {
                match status {
                    Some(s) if s.err.is_some() => {
                        error = Some(format!("write {signature} failed: {:?}", s.err));
                    }
                    Some(s) if s.satisfies_commitment(rpc.client.commitment()) => confirmed += 1,
                    _ => still.push(*signature),
                }
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        let expired = match rpc.client.get_block_height().await {
            Ok(height) => height > last_valid_block_height,
            Err(_) => false,
        };
        if expired || started.elapsed() >= GROUP_CONFIRM_TIMEOUT {
            error = Some(format!(
                "{} writes not confirmed before their blockhash expired",
                pending.len()
            ));
            break;
        }
        tokio::time::sleep(STATUS_POLL).await;
    }
    Ok(GroupOutcome { confirmed, error })
}

// -------------------------------------------------------------- commands

fn authority_and_buffer(
    args: &UploadArgs,
    payer: &Keypair,
) -> Result<(Keypair, Keypair, bool), CliError> {
    let authority = match &args.upgrade_authority {
        Some(path) => read_keypair(path)?,
        None => payer.insecure_clone(),
    };
    let (buffer, named) = match &args.buffer {
        Some(path) => (read_keypair(path)?, true),
        None => (Keypair::new(), false),
    };
    Ok((authority, buffer, named))
}

async fn deploy(ctx: &Context, args: &DeployArgs) -> Result<Report, CliError> {
    let started = Instant::now();
    let max_len = args.max_len;
    let elf = read_so(&args.so, max_len)?;
    let max_len = max_len.unwrap_or(elf.len());
    if max_len > MAX_PROGRAM_LEN {
        return Err(CliError::Usage(format!(
            "--max-len {max_len} is larger than the loader's maximum of {MAX_PROGRAM_LEN} bytes"
        )));
    }
    let payer = ctx.keypair()?;
    let program = read_keypair(&args.program_keypair)?;
    let (authority, buffer, named) = authority_and_buffer(&args.upload, &payer)?;
    let rpc = Rpc::new(ctx);
    let program_id = program.pubkey();
    if rpc.account(&program_id).await?.is_some() {
        return Err(CliError::Account(format!(
            "an account exists at {program_id} already: a deployed program is replaced with \
             `paychan program upgrade`"
        )));
    }
    let upload = upload(ctx, &rpc, &payer, &authority, &buffer, &elf, &args.upload).await;
    let upload = upload.map_err(|e| with_buffer_hint(e, &buffer, named))?;
    let lamports = rpc.rent(PROGRAM_ACCOUNT_LEN).await?;
    let ixs = deploy_with_max_program_len(
        &payer.pubkey(),
        &program_id,
        &buffer.pubkey(),
        &authority.pubkey(),
        lamports,
        max_len,
    )
    .map_err(|e| CliError::Usage(format!("building the deploy: {e}")))?;
    let spinner = ctx.progress.spinner("deploying");
    let signature = rpc
        .send_final("deploy", &ixs, &payer, &[&program, &authority], || async {
            Ok(rpc.account(&program_id).await?.is_some())
        })
        .await?;
    spinner.finish_and_clear();
    let deployed = rpc.program(&program_id).await?;
    finish(
        "deploy", &deployed, &elf, &args.so, &buffer, upload, signature, started,
    )
}

async fn upgrade_program(ctx: &Context, args: &UpgradeArgs) -> Result<Report, CliError> {
    let started = Instant::now();
    let elf = read_so(&args.so, None)?;
    let program_id = args.program.unwrap_or(ctx.settings.program_id.value);
    let payer = ctx.keypair()?;
    let (authority, buffer, named) = authority_and_buffer(&args.upload, &payer)?;
    let rpc = Rpc::new(ctx);
    let before = rpc.program(&program_id).await?;
    if before.loader != LOADER_V3_ID {
        return Err(CliError::Account(format!(
            "{program_id} belongs to {}, which has no upgrades",
            before.loader
        )));
    }
    match before.upgrade_authority {
        None => {
            return Err(CliError::Account(format!(
                "{program_id} is immutable (no upgrade authority)"
            )));
        }
        Some(a) if a != authority.pubkey() => {
            return Err(CliError::Usage(format!(
                "{program_id}'s upgrade authority is {a}, not {} (pass --upgrade-authority)",
                authority.pubkey()
            )));
        }
        Some(_) => {}
    }
    if elf.len() > before.capacity {
        return Err(CliError::Usage(format!(
            "{}: {}",
            args.so.display(),
            ElfProblem::TooLarge {
                len: elf.len(),
                limit: format!(
                    "the {} bytes {program_id}'s ProgramData holds (extend it first: \
                     `solana program extend {program_id} <BYTES>`)",
                    before.capacity
                ),
            }
        )));
    }
    let upload = upload(ctx, &rpc, &payer, &authority, &buffer, &elf, &args.upload).await;
    let upload = upload.map_err(|e| with_buffer_hint(e, &buffer, named))?;
    let ix = upgrade(
        &program_id,
        &buffer.pubkey(),
        &authority.pubkey(),
        &payer.pubkey(),
    );
    let spinner = ctx.progress.spinner("upgrading");
    let slot_before = before.slot;
    let signature = rpc
        .send_final("upgrade", &[ix], &payer, &[&authority], || async {
            // Landed when the ProgramData's slot moved (the buffer is then closed).
            Ok(rpc.program(&program_id).await?.slot != slot_before)
        })
        .await?;
    spinner.finish_and_clear();
    let deployed = rpc.program(&program_id).await?;
    finish(
        "upgrade", &deployed, &elf, &args.so, &buffer, upload, signature, started,
    )
}

fn with_buffer_hint(e: CliError, buffer: &Keypair, named: bool) -> CliError {
    if named {
        return e;
    }
    tracing::warn!(
        buffer = %buffer.pubkey(),
        "the buffer's keypair was not saved: pass --buffer FILE to be able to resume"
    );
    e
}

#[allow(clippy::too_many_arguments)]
fn finish(
    action: &str,
    deployed: &DeployedProgram,
    elf: &[u8],
    so: &Path,
    buffer: &Keypair,
    upload: Upload,
    signature: Option<Signature>,
    started: Instant,
) -> Result<Report, CliError> {
    let local = executable_sha256(elf);
    let on_chain = executable_sha256(&deployed.executable);
    if local != on_chain {
        return Err(CliError::Account(format!(
            "after the {action}, {} holds {} bytes with sha256 {on_chain}, not the {} bytes of {} \
             (sha256 {local})",
            deployed.program_id,
            deployed.executable.len(),
            elf.len(),
            so.display()
        )));
    }
    let transactions = usize::from(upload.created) + upload.write_transactions + 1;
    let mut json = program_json(deployed);
    json["action"] = action.into();
    json["local"] = json!({
        "path": so.display().to_string(),
        "len": elf.len(),
        "sha256": local,
        "matches": true,
    });
    json["buffer"] = buffer.pubkey().to_string().into();
    json["signature"] = signature.map(|s| s.to_string()).into();
    json["chunks"] = json!({
        "total": upload.chunks,
        "bytes_each": upload.chunk_len,
        "written": upload.written,
        "already_on_chain": upload.skipped,
        "rounds": upload.rounds,
    });
    json["transactions"] = json!({
        "create_buffer": usize::from(upload.created),
        "write": upload.write_transactions,
        action: 1,
        "total": transactions,
    });
    json["seconds"] = started.elapsed().as_secs_f64().into();
    let mut table = program_table(deployed);
    table
        .kv(
            "local .so",
            format!("{} ({} bytes, same sha256)", so.display(), elf.len()),
        )
        .kv("buffer", buffer.pubkey())
        .kv(
            "chunks",
            format!(
                "{} of {} bytes: {} written, {} already on chain, {} round(s)",
                upload.chunks, upload.chunk_len, upload.written, upload.skipped, upload.rounds
            ),
        )
        .kv(
            "transactions",
            format!(
                "{transactions} ({} buffer creation, {} writes, 1 {action})",
                usize::from(upload.created),
                upload.write_transactions
            ),
        )
        .kv("time", format!("{:.1} s", started.elapsed().as_secs_f64()));
    Ok(Report::table(&table, json))
}

fn program_json(p: &DeployedProgram) -> serde_json::Value {
    json!({
        "program_id": p.program_id.to_string(),
        "loader": p.loader.to_string(),
        "programdata": p.programdata.map(|a| a.to_string()),
        "last_deployed_slot": p.slot,
        "upgrade_authority": p.upgrade_authority.map(|a| a.to_string()),
        "executable_len": p.executable.len(),
        "programdata_capacity": p.capacity,
        "sha256": executable_sha256(&p.executable),
        "hashed": HASHED,
    })
}

fn program_table(p: &DeployedProgram) -> Table {
    let mut table = Table::key_value();
    table.kv("program id", p.program_id).kv("loader", p.loader);
    if let Some(pd) = p.programdata {
        table.kv("programdata", pd);
    }
    if let Some(slot) = p.slot {
        table.kv("last deployed slot", slot);
    }
    table
        .kv(
            "upgrade authority",
            p.upgrade_authority
                .map_or("none (immutable)".to_string(), |a| a.to_string()),
        )
        .kv(
            "deployed bytes",
            format!("{} (capacity {})", p.executable.len(), p.capacity),
        )
        .kv("sha256", executable_sha256(&p.executable))
        .kv(
            "hashed",
            "ProgramData after its 45-byte header, trailing zeros removed",
        );
    table
}

async fn show(ctx: &Context, args: &ShowArgs) -> Result<Report, CliError> {
    let program_id = args.program.unwrap_or(ctx.settings.program_id.value);
    let rpc = Rpc::new(ctx);
    let deployed = rpc.program(&program_id).await?;
    let mut json = program_json(&deployed);
    let mut table = program_table(&deployed);
    if let Some(path) = &args.so {
        let elf = read_so(path, None)?;
        let local = executable_sha256(&elf);
        let on_chain = executable_sha256(&deployed.executable);
        if local != on_chain {
            return Err(CliError::Account(format!(
                "{program_id}'s deployed bytes (sha256 {on_chain}, {} bytes) differ from {} \
                 (sha256 {local}, {} bytes)",
                deployed.executable.len(),
                path.display(),
                trim_trailing_zeros(&elf).len()
            )));
        }
        json["local"] = json!({
            "path": path.display().to_string(),
            "len": elf.len(),
            "sha256": local,
            "matches": true,
        });
        table.kv("local .so", format!("{} matches", path.display()));
    }
    Ok(Report::table(&table, json))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn elf(machine: u16, flags: u32, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len.max(64)];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[18..20].copy_from_slice(&machine.to_le_bytes());
        b[48..52].copy_from_slice(&flags.to_le_bytes());
        b
    }

    #[test]
    fn only_sbpf_v3_elfs_within_the_limits_pass() {
        assert_eq!(check_elf(&elf(EM_BPF, 3, 1000), None), Ok(()));
        let err = check_elf(&elf(EM_BPF, 0, 1000), None).unwrap_err();
        assert!(err.to_string().contains("SBPF v0"), "{err}");
        let err = check_elf(&elf(EM_SBF, 2, 1000), None).unwrap_err();
        assert!(err.to_string().contains("SBPF v2"), "{err}");
        let err = check_elf(&elf(EM_BPF, 9, 1000), None).unwrap_err();
        assert!(err.to_string().contains("reserved"), "{err}");
        let err = check_elf(&elf(EM_SBF, 3, 1000), None).unwrap_err();
        assert!(err.to_string().contains("EM_BPF"), "{err}");
        let err = check_elf(&elf(62, 3, 1000), None).unwrap_err();
        assert!(err.to_string().contains("e_machine 62"), "{err}");
        assert!(matches!(
            check_elf(b"#!/bin/sh\n", None),
            Err(ElfProblem::NotElf(_))
        ));
        // EI_DATA 2 (big-endian), EI_CLASS 1 (32-bit).
        for (index, byte, needle) in [(5, 2, "big-endian"), (4, 1, "32-bit")] {
            let mut bytes = elf(EM_BPF, 3, 100);
            bytes[index] = byte;
            let err = check_elf(&bytes, None).unwrap_err();
            assert!(err.to_string().contains(needle), "{needle}: {err}");
        }
        // Oversized: --max-len, then the loader's own maximum.
        let err = check_elf(&elf(EM_BPF, 3, 1000), Some(999)).unwrap_err();
        assert!(err.to_string().contains("--max-len 999"), "{err}");
        assert_eq!(check_elf(&elf(EM_BPF, 3, 1000), Some(1000)), Ok(()));
        let err = check_elf(&elf(EM_BPF, 3, MAX_PROGRAM_LEN + 1), None).unwrap_err();
        assert!(err.to_string().contains("loader's maximum"), "{err}");
        assert_eq!(check_elf(&elf(EM_BPF, 3, MAX_PROGRAM_LEN), None), Ok(()));
    }

    #[test]
    fn the_built_program_is_sbpf_v3() {
        let so = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/deploy/paychan.so");
        let Ok(bytes) = std::fs::read(&so) else {
            panic!("{} missing: run scripts/build-sbf.sh", so.display())
        };
        assert_eq!(check_elf(&bytes, None), Ok(()));
    }

    #[test]
    fn loader_accounts_parse_and_bad_ones_do_not() {
        let pd = Pubkey::new_unique();
        let mut program = 2u32.to_le_bytes().to_vec();
        program.extend_from_slice(pd.as_ref());
        assert_eq!(parse_program_account(&program), Some(pd));
        assert_eq!(parse_program_account(&program[..35]), None);
        program[0] = 3;
        assert_eq!(parse_program_account(&program), None);

        let authority = Pubkey::new_unique();
        let mut data = 3u32.to_le_bytes().to_vec();
        data.extend_from_slice(&77u64.to_le_bytes());
        data.push(1);
        data.extend_from_slice(authority.as_ref());
        data.extend_from_slice(&[9, 8, 0, 0]);
        let (slot, a, bytes) = parse_programdata(&data).unwrap();
        assert_eq!((slot, a, bytes), (77, Some(authority), &[9u8, 8, 0, 0][..]));
        assert_eq!(trim_trailing_zeros(bytes), &[9, 8]);
        data[12] = 0;
        assert_eq!(parse_programdata(&data).unwrap().1, None);
        data[12] = 2;
        assert_eq!(parse_programdata(&data), None);
        assert_eq!(parse_programdata(&data[..44]), None);

        let mut buffer = 1u32.to_le_bytes().to_vec();
        buffer.push(1);
        buffer.extend_from_slice(authority.as_ref());
        buffer.extend_from_slice(&[1, 2, 3]);
        assert_eq!(
            parse_buffer(&buffer),
            Some((Some(authority), &[1u8, 2, 3][..]))
        );
        buffer[0] = 2;
        assert_eq!(parse_buffer(&buffer), None);
    }

    #[test]
    fn hashes_ignore_trailing_zero_padding_only() {
        assert_eq!(executable_sha256(b"abc\0\0"), executable_sha256(b"abc"));
        assert_ne!(executable_sha256(b"a\0bc"), executable_sha256(b"abc"));
        // The well-known SHA-256 of "abc".
        assert_eq!(
            executable_sha256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn only_differing_chunks_are_rewritten() {
        let elf: Vec<u8> = (0..=250u8).collect();
        assert_eq!(differing_chunks(&elf, &elf, 100), Vec::<usize>::new());
        let mut on_chain = elf.clone();
        on_chain[150] ^= 1;
        assert_eq!(differing_chunks(&elf, &on_chain, 100), vec![100]);
        assert_eq!(
            differing_chunks(&elf, &vec![0; 251], 100),
            vec![0, 100, 200]
        );
        // A short buffer: the chunks past its end differ.
        assert_eq!(differing_chunks(&elf, &elf[..120], 100), vec![100, 200]);
    }

    #[test]
    fn write_transactions_fit_one_packet_with_one_or_two_signers() {
        let (payer, buffer, authority) = (
            Pubkey::new_unique(),
            Pubkey::new_unique(),
            Pubkey::new_unique(),
        );
        for auth in [payer, authority] {
            let n = write_chunk_len(&payer, &buffer, &auth);
            let size = |n: usize| {
                let ix = write(&buffer, &auth, 0, vec![0u8; n]);
                let tx = Transaction::new_with_payer(&[ix], Some(&payer));
                1 + 64 * usize::from(tx.message.header.num_required_signatures)
                    + tx.message.serialize().len()
            };
            assert!(
                size(n) <= PACKET_DATA_SIZE && size(n + 1) > PACKET_DATA_SIZE,
                "{n}"
            );
        }
        assert!(
            write_chunk_len(&payer, &buffer, &payer) > write_chunk_len(&payer, &buffer, &authority)
        );
    }
}
