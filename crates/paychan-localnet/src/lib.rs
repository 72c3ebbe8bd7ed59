//! # paychan-localnet
//!
//! An embedded Solana chain for end-to-end tests and demos: [`surfpool_core`]
//! runs in-process with real JSON-RPC and websocket servers bound to free
//! ports on 127.0.0.1, in offline mode (no datasource, nothing leaves the
//! machine), with the real paychan program binary deployed through the
//! upgradeable loader (buffer writes and `Upgrade` transactions: see
//! [`deploy`] for how, at the `declare_id!` address whose key nobody here
//! has) and a 6-decimal USDC-like SPL Token mint created.
//!
//! ```no_run
//! # async fn demo() -> Result<(), paychan_localnet::LocalnetError> {
//! use paychan_localnet::{LocalChain, LocalChainConfig};
//! use solana_keypair::Keypair;
//! use solana_signer::Signer;
//!
//! let chain = LocalChain::start(LocalChainConfig::default()).await?;
//! let payer = Keypair::new();
//! chain.fund_sol(&payer.pubkey(), 1_000_000_000).await?;
//! let tokens = chain.create_token_account(&payer.pubkey(), 5_000_000).await?;
//! assert_eq!(chain.token_balance(&tokens).await?, 5_000_000);
//! println!("JSON-RPC at {}", chain.rpc_url());
//! chain.shutdown()?;
//! # Ok(()) }
//! ```
//!
//! Setup writes (funding, token accounts, raw accounts, and the program's
//! placeholder accounts) go straight to the SVM through surfpool's locker;
//! everything a test asserts should be read back over JSON-RPC
//! ([`LocalChain::rpc_client`] and the helpers built on it).
#![warn(missing_docs)]

pub mod deploy;
mod error;

use std::{
    net::TcpListener,
    path::PathBuf,
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anchor_lang::solana_program::program_pack::Pack;
use anchor_spl::token::spl_token;
use crossbeam_channel::{Receiver, Sender};
use paychan_sdk::{
    Instruction, Pubkey,
    state::{Channel, PayeeVault},
};
use solana_keypair::Keypair;
use solana_signature::Signature;
use solana_signer::Signer;
use solana_transaction::Transaction;
use surfpool_core::{
    solana_commitment_config::CommitmentConfig,
    surfnet::{
        locker::SurfnetSvmLocker,
        svm::{SurfnetSvm, SurfnetSvmConfig},
    },
};
use surfpool_types::{RpcConfig, SimnetCommand, SimnetConfig, SimnetEvent, SurfpoolConfig};

pub use deploy::ProgramDeploy;
pub use error::LocalnetError;
pub use solana_signer::SignerError;
pub use surfpool_core::solana_account::Account;
pub use surfpool_core::solana_rpc_client::nonblocking::rpc_client::RpcClient;
pub use surfpool_types::BlockProductionMode;

/// Decimals of the mint every chain is created with (like USDC).
pub const MINT_DECIMALS: u8 = 6;
/// Default wait for `SimnetEvent::CoreStarted`.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long [`LocalChain::shutdown`] waits for the runloop after `Terminate`.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);
/// How often [`LocalChain::send_transaction`] asks for the signature status.
pub const CONFIRM_POLL_INTERVAL: Duration = Duration::from_millis(5);
/// How long [`LocalChain::send_transaction`] waits for `confirmed`.
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);
/// Environment variable overriding the program binary's path.
pub const PROGRAM_SO_ENV: &str = "PAYCHAN_SO";
/// Environment variable that, when set, prints surfpool's log events to stderr.
pub const LOG_ENV: &str = "PAYCHAN_LOCALNET_LOG";

/// `$PAYCHAN_SO`, else `target/deploy/paychan.so` under the workspace root
/// (where `scripts/build-sbf.sh` puts it).
pub fn default_program_path() -> PathBuf {
    match std::env::var_os(PROGRAM_SO_ENV) {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/deploy/paychan.so"),
    }
}

/// Lamports the chain's upgrade authority gets to pay for the deploy
/// (buffer rent, fees) and later upgrades.
const DEPLOYER_LAMPORTS: u64 = 100_000_000_000;

/// How to start a [`LocalChain`].
#[derive(Clone, Debug)]
pub struct LocalChainConfig {
    /// The program binary (SBF `.so`) deployed at [`Self::program_id`].
    pub program_so: PathBuf,
    /// Where the program is deployed; `paychan_sdk::ID` by default.
    pub program_id: Pubkey,
    /// How long to wait for the chain to announce `CoreStarted`.
    pub startup_timeout: Duration,
    /// When blocks are produced. The default, `Transaction`, closes a block
    /// right after every transaction, so `confirmed` comes without waiting
    /// for a slot tick; `Clock` produces one every [`Self::slot_time_ms`].
    pub block_production_mode: BlockProductionMode,
    /// Slot duration of surfpool's clock, in milliseconds.
    pub slot_time_ms: u64,
}

impl Default for LocalChainConfig {
    fn default() -> Self {
        Self {
            program_so: default_program_path(),
            program_id: paychan_sdk::ID,
            startup_timeout: DEFAULT_STARTUP_TIMEOUT,
            block_production_mode: BlockProductionMode::Transaction,
            slot_time_ms: surfpool_types::DEFAULT_SLOT_TIME_MS,
        }
    }
}

/// A transaction confirmed by [`LocalChain::send_transaction`].
#[derive(Clone, Copy, Debug)]
pub struct Confirmed {
    /// Its signature.
    pub signature: Signature,
    /// Wall time from sending it to seeing it confirmed.
    pub elapsed: Duration,
}

/// What the background threads report while the chain starts.
enum Startup {
    Ready,
    Failed(String),
}

/// A running embedded chain. Dropping it stops the runloop (as
/// [`LocalChain::shutdown`] does, reporting failures on stderr instead).
pub struct LocalChain {
    rpc_url: String,
    ws_url: String,
    program_id: Pubkey,
    mint: Pubkey,
    mint_authority: Keypair,
    upgrade_authority: Keypair,
    program_deploy: Option<ProgramDeploy>,
    client: RpcClient,
    locker: SurfnetSvmLocker,
    runtime: tokio::runtime::Handle,
    commands: Sender<SimnetCommand>,
    runloop: Option<JoinHandle<Result<(), String>>>,
    drain_stop: Option<Sender<()>>,
    drain: Option<JoinHandle<()>>,
    startup_time: Duration,
}

impl std::fmt::Debug for LocalChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalChain")
            .field("rpc_url", &self.rpc_url)
            .field("ws_url", &self.ws_url)
            .field("program_id", &self.program_id)
            .field("mint", &self.mint)
            .field("running", &self.runloop.is_some())
            .finish_non_exhaustive()
    }
}

impl LocalChain {
    /// Starts the chain: binds JSON-RPC and websocket on free 127.0.0.1 ports,
    /// writes the program's placeholder accounts and the mint, waits for
    /// `CoreStarted`, then deploys the program binary through the loader
    /// ([`deploy`]; [`Self::program_deploy`] tells what it took).
    ///
    /// Await it (and the other async methods) on a tokio runtime with the
    /// time driver enabled (`#[tokio::test]` of either flavour); surfpool
    /// itself runs on a runtime and threads of the chain's own.
    pub async fn start(config: LocalChainConfig) -> Result<Self, LocalnetError> {
        let started = Instant::now();
        let program =
            std::fs::read(&config.program_so).map_err(|source| LocalnetError::ProgramBinary {
                path: config.program_so.clone(),
                source,
            })?;
        let (bind_port, ws_port) = free_port_pair()?;
        let host = "127.0.0.1";

        let simnet = SimnetConfig {
            // The default points at mainnet; this chain never leaves the machine.
            offline_mode: true,
            remote_rpc_url: None,
            slot_time: config.slot_time_ms,
            block_production_mode: config.block_production_mode.clone(),
            instruction_profiling_enabled: false,
            ..SimnetConfig::default()
        };
        let surfpool_config = SurfpoolConfig {
            simnets: vec![simnet],
            rpc: RpcConfig {
                bind_host: host.to_string(),
                bind_port,
                ws_port,
                ..RpcConfig::default()
            },
            ..SurfpoolConfig::default()
        };
        let (svm, events, geyser_events) = SurfnetSvm::new(SurfnetSvmConfig {
            slot_time: config.slot_time_ms,
            instruction_profiling_enabled: false,
            ..SurfnetSvmConfig::default()
        })
        .map_err(|e| LocalnetError::Surfpool(e.to_string()))?;
        let locker = SurfnetSvmLocker::new(svm);

        let mint_authority = Keypair::new();
        let upgrade_authority = Keypair::new();
        let mint = Keypair::new().pubkey();

        let (startup_tx, mut startup_rx) = tokio::sync::mpsc::unbounded_channel();
        let (drain_stop, drain_stop_rx) = crossbeam_channel::bounded::<()>(0);
        let drain = spawn_event_drain(events, drain_stop_rx, startup_tx.clone())?;

        // The runloop gets its own multi-thread runtime: surfpool's locker uses
        // `block_in_place`, which a current-thread runtime (the caller's,
        // perhaps) does not allow.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("paychan-localnet-rt")
            .enable_all()
            .build()
            .map_err(|source| LocalnetError::Spawn {
                what: "tokio runtime",
                source,
            })?;
        let handle = runtime.handle().clone();
        let (commands, commands_rx) = crossbeam_channel::unbounded();
        let runloop = {
            let locker = locker.clone();
            let commands = commands.clone();
            let program_id = config.program_id;
            let program_len = program.len();
            let authority = upgrade_authority.pubkey();
            let mint_authority = mint_authority.pubkey();
            std::thread::Builder::new()
                .name("paychan-localnet-runloop".into())
                .spawn(move || {
                    let result = runtime.block_on(async move {
                        deploy::create_placeholder(&locker, program_id, authority, program_len)?;
                        create_mint(&locker, mint, mint_authority)?;
                        surfpool_core::runloops::start_local_surfnet_runloop(
                            locker,
                            surfpool_config,
                            commands,
                            commands_rx,
                            geyser_events,
                        )
                        .await
                        .map_err(|e| format!("runloop: {e}"))
                    });
                    let _ = startup_tx.send(Startup::Failed(match &result {
                        Ok(()) => "the runloop ended".to_string(),
                        Err(e) => e.clone(),
                    }));
                    runtime.shutdown_timeout(Duration::from_secs(5));
                    result
                })
                .map_err(|source| LocalnetError::Spawn {
                    what: "runloop thread",
                    source,
                })?
        };

        let mut chain = Self {
            rpc_url: format!("http://{host}:{bind_port}"),
            ws_url: format!("ws://{host}:{ws_port}"),
            program_id: config.program_id,
            mint,
            mint_authority,
            upgrade_authority,
            program_deploy: None,
            client: RpcClient::new_with_commitment(
                format!("http://{host}:{bind_port}"),
                CommitmentConfig::confirmed(),
            ),
            locker,
            runtime: handle,
            commands,
            runloop: Some(runloop),
            drain_stop: Some(drain_stop),
            drain: Some(drain),
            startup_time: Duration::ZERO,
        };
        // On failure `chain` is dropped here, which stops whatever did start.
        match tokio::time::timeout(config.startup_timeout, startup_rx.recv()).await {
            Ok(Some(Startup::Ready)) => {}
            Ok(Some(Startup::Failed(reason))) => return Err(LocalnetError::Surfpool(reason)),
            Ok(None) => {
                return Err(LocalnetError::Stopped(
                    "the chain's threads ended before it started".into(),
                ));
            }
            Err(_) => return Err(LocalnetError::StartupTimeout(config.startup_timeout)),
        }
        chain
            .fund_sol(&chain.upgrade_authority.pubkey(), DEPLOYER_LAMPORTS)
            .await?;
        chain.program_deploy = Some(
            deploy::deploy_through_loader(
                &chain.client,
                chain.program_id,
                &chain.upgrade_authority,
                &program,
            )
            .await?,
        );
        chain.startup_time = started.elapsed();
        Ok(chain)
    }

    /// The JSON-RPC endpoint, `http://127.0.0.1:<port>`.
    pub fn rpc_url(&self) -> &str {
        &self.rpc_url
    }

    /// The websocket (pubsub) endpoint, `ws://127.0.0.1:<port>`.
    pub fn ws_url(&self) -> &str {
        &self.ws_url
    }

    /// A nonblocking RPC client for [`Self::rpc_url`] with `confirmed` commitment.
    pub fn rpc_client(&self) -> &RpcClient {
        &self.client
    }

    /// Where the program binary is deployed.
    pub fn program_id(&self) -> Pubkey {
        self.program_id
    }

    /// The program's upgrade authority (a key of this chain's own, funded;
    /// the ProgramData records it): `paychan program upgrade` with it puts
    /// another build in place through the loader.
    pub fn program_upgrade_authority(&self) -> &Keypair {
        &self.upgrade_authority
    }

    /// What deploying the program through the loader took (transactions,
    /// time, the deployed bytes' hash).
    pub fn program_deploy(&self) -> Option<&ProgramDeploy> {
        self.program_deploy.as_ref()
    }

    /// The chain's SPL Token mint ([`MINT_DECIMALS`] decimals).
    pub fn mint(&self) -> Pubkey {
        self.mint
    }

    /// The mint's authority (for tests that mint with real instructions).
    pub fn mint_authority(&self) -> &Keypair {
        &self.mint_authority
    }

    /// Wall time [`Self::start`] took, from reading the binary to the
    /// program's deploy through the loader.
    pub fn startup_time(&self) -> Duration {
        self.startup_time
    }

    /// Runs `write` on the SVM under surfpool's write lock, on the chain's own
    /// runtime (so any caller runtime flavour works).
    async fn with_svm_writer<T, F>(&self, write: F) -> Result<T, LocalnetError>
    where
        F: FnOnce(&mut SurfnetSvm) -> Result<T, String> + Send + Sync + 'static,
        T: Send + 'static,
    {
        if self.runloop.as_ref().is_none_or(|t| t.is_finished()) {
            return Err(LocalnetError::Stopped("the runloop has ended".into()));
        }
        let locker = self.locker.clone();
        self.runtime
            .spawn(async move { locker.with_svm_writer(write) })
            .await
            .map_err(|e| LocalnetError::Stopped(e.to_string()))?
            .map_err(LocalnetError::Surfpool)
    }

    /// Writes a raw account (any owner, any data).
    pub async fn set_account(
        &self,
        address: &Pubkey,
        account: Account,
    ) -> Result<(), LocalnetError> {
        let address = *address;
        self.with_svm_writer(move |svm| {
            svm.set_account(&address, account)
                .map_err(|e| e.to_string())
        })
        .await
    }

    /// Adds `lamports` to `address` (creating a system account if needed).
    pub async fn fund_sol(&self, address: &Pubkey, lamports: u64) -> Result<(), LocalnetError> {
        let address = *address;
        self.with_svm_writer(move |svm| {
            let mut account = svm
                .get_account(&address)
                .map_err(|e| e.to_string())?
                .unwrap_or_else(|| Account {
                    owner: paychan_sdk::ids::SYSTEM_PROGRAM,
                    ..Account::default()
                });
            account.lamports = account
                .lamports
                .checked_add(lamports)
                .ok_or_else(|| format!("lamports of {address} overflow"))?;
            svm.set_account(&address, account)
                .map_err(|e| e.to_string())
        })
        .await
    }

    /// Creates a token account of `owner` in [`Self::mint`] holding `amount`
    /// (the mint's supply grows by `amount`) at a fresh address, returned.
    pub async fn create_token_account(
        &self,
        owner: &Pubkey,
        amount: u64,
    ) -> Result<Pubkey, LocalnetError> {
        self.create_token_account_at(Keypair::new().pubkey(), owner, amount)
            .await
    }

    /// Creates `owner`'s associated token account in [`Self::mint`] holding
    /// `amount` (where wallets, and the settler's refunds, look for it).
    pub async fn create_associated_token_account(
        &self,
        owner: &Pubkey,
        amount: u64,
    ) -> Result<Pubkey, LocalnetError> {
        let address = paychan_sdk::pda::associated_token_account(owner, &self.mint, &spl_token::ID);
        self.create_token_account_at(address, owner, amount).await
    }

    async fn create_token_account_at(
        &self,
        address: Pubkey,
        owner: &Pubkey,
        amount: u64,
    ) -> Result<Pubkey, LocalnetError> {
        let (owner, mint) = (*owner, self.mint);
        self.with_svm_writer(move |svm| {
            let mut mint_account = svm
                .get_account(&mint)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("mint {mint} does not exist"))?;
            let mut mint_state = spl_token::state::Mint::unpack(&mint_account.data)
                .map_err(|e| format!("mint {mint}: {e}"))?;
            mint_state.supply = mint_state
                .supply
                .checked_add(amount)
                .ok_or_else(|| format!("supply of {mint} overflows"))?;
            spl_token::state::Mint::pack(mint_state, &mut mint_account.data)
                .map_err(|e| format!("mint {mint}: {e}"))?;

            let mut data = vec![0u8; spl_token::state::Account::LEN];
            let state = spl_token::state::Account {
                mint,
                owner,
                amount,
                delegate: None.into(),
                state: spl_token::state::AccountState::Initialized,
                is_native: None.into(),
                delegated_amount: 0,
                close_authority: None.into(),
            };
            spl_token::state::Account::pack(state, &mut data)
                .map_err(|e| format!("token account: {e}"))?;
            let account = Account {
                lamports: svm.inner.minimum_balance_for_rent_exemption(data.len()),
                data,
                owner: spl_token::ID,
                executable: false,
                rent_epoch: 0,
            };
            svm.set_account(&mint, mint_account)
                .map_err(|e| e.to_string())?;
            svm.set_account(&address, account)
                .map_err(|e| e.to_string())
        })
        .await?;
        Ok(address)
    }

    /// Signs `instructions` (fee paid by `payer`, further `signers` as
    /// needed) with the latest `confirmed` blockhash fetched over JSON-RPC.
    pub async fn sign(
        &self,
        instructions: &[Instruction],
        payer: &Keypair,
        signers: &[&Keypair],
    ) -> Result<Transaction, LocalnetError> {
        let blockhash = self.client.get_latest_blockhash().await?;
        let mut tx = Transaction::new_with_payer(instructions, Some(&payer.pubkey()));
        let mut all: Vec<&Keypair> = Vec::with_capacity(signers.len() + 1);
        all.push(payer);
        all.extend(signers.iter().filter(|k| k.pubkey() != payer.pubkey()));
        tx.try_sign(&all, blockhash)?;
        Ok(tx)
    }

    /// Sends a signed transaction over JSON-RPC (`sendTransaction` with a
    /// `confirmed` preflight) and polls `getSignatureStatuses` every
    /// [`CONFIRM_POLL_INTERVAL`] until it is confirmed.
    ///
    /// The same protocol as `RpcClient::send_and_confirm_transaction`, whose
    /// fixed 500 ms poll dominates on this chain: surfpool answers a
    /// processed-but-unconfirmed signature with `null`, so that call takes
    /// either ≈ 40 ms or ≈ 550 ms depending on who wins the race with the
    /// block that confirms it. A failed preflight or execution is a
    /// [`LocalnetError::Rpc`]; see [`LocalnetError::custom_error_code`].
    pub async fn send_transaction(&self, tx: &Transaction) -> Result<Confirmed, LocalnetError> {
        let sent = Instant::now();
        let signature = self.client.send_transaction(tx).await?;
        loop {
            match self
                .client
                .get_signature_status_with_commitment(&signature, self.client.commitment())
                .await?
            {
                Some(Ok(())) => {
                    return Ok(Confirmed {
                        signature,
                        elapsed: sent.elapsed(),
                    });
                }
                Some(Err(e)) => return Err(LocalnetError::Rpc(e.into())),
                None if sent.elapsed() >= CONFIRM_TIMEOUT => {
                    return Err(LocalnetError::ConfirmationTimeout {
                        signature,
                        waited: CONFIRM_TIMEOUT,
                    });
                }
                None => tokio::time::sleep(CONFIRM_POLL_INTERVAL).await,
            }
        }
    }

    /// [`Self::sign`] then [`Self::send_transaction`].
    pub async fn send(
        &self,
        instructions: &[Instruction],
        payer: &Keypair,
        signers: &[&Keypair],
    ) -> Result<Confirmed, LocalnetError> {
        let tx = self.sign(instructions, payer, signers).await?;
        self.send_transaction(&tx).await
    }

    /// Moves the chain's clock forward to `unix_secs` (the Clock sysvar's
    /// `unix_timestamp` programs see) with surfpool's `surfnet_timeTravel`
    /// cheatcode over JSON-RPC; the slot advances by the elapsed slot times.
    /// A target before the chain's current time is refused.
    pub async fn time_travel_to(&self, unix_secs: i64) -> Result<(), LocalnetError> {
        // serde_json through surfpool's jsonrpc-core re-export (no new dependency).
        use surfpool_core::{
            jsonrpc_core::serde_json, solana_rpc_client::api::request::RpcRequest,
        };
        let millis = u64::try_from(unix_secs)
            .ok()
            .and_then(|s| s.checked_mul(1_000))
            .ok_or_else(|| LocalnetError::Surfpool(format!("bad timestamp {unix_secs}")))?;
        let _epoch_info: serde_json::Value = self
            .client
            .send(
                RpcRequest::Custom {
                    method: "surfnet_timeTravel",
                },
                serde_json::json!([{ "absoluteTimestamp": millis }]),
            )
            .await?;
        Ok(())
    }

    /// Switches surfpool's block production: `Clock` produces a block every
    /// [`LocalChainConfig::slot_time_ms`] of wall time (so the chain's clock
    /// runs by itself, without transactions), `Transaction` one after every
    /// transaction.
    pub fn set_block_production_mode(
        &self,
        mode: BlockProductionMode,
    ) -> Result<(), LocalnetError> {
        if self.runloop.as_ref().is_none_or(|t| t.is_finished()) {
            return Err(LocalnetError::Stopped("the runloop has ended".into()));
        }
        self.commands
            .send(SimnetCommand::UpdateBlockProductionMode(mode))
            .map_err(|_| LocalnetError::Stopped("the runloop's command channel is closed".into()))
    }

    /// How far the chain's clock (the Clock sysvar's `unix_timestamp`)
    /// moves per block, in milliseconds. Blocks still come every
    /// [`LocalChainConfig::slot_time_ms`] of wall time in `Clock` mode, so
    /// `chain_ms_per_slot / slot_time_ms` is how many times faster than the
    /// wall clock chain time passes (grace periods end sooner; slots, and
    /// so blockhash lifetimes, keep their wall-clock pace).
    pub async fn set_chain_time_per_slot(
        &self,
        chain_ms_per_slot: u64,
    ) -> Result<(), LocalnetError> {
        if chain_ms_per_slot == 0 {
            return Err(LocalnetError::Surfpool("a slot must move the clock".into()));
        }
        self.with_svm_writer(move |svm| {
            svm.slot_time = chain_ms_per_slot;
            Ok(())
        })
        .await
    }

    /// The chain's current Unix time (the Clock sysvar, read over JSON-RPC).
    pub async fn unix_timestamp(&self) -> Result<i64, LocalnetError> {
        let clock = Pubkey::from_str_const("SysvarC1ock11111111111111111111111111111111");
        let account = self.account(&clock).await?;
        account
            .data
            .get(32..40)
            .and_then(|b| b.try_into().ok())
            .map(i64::from_le_bytes)
            .ok_or_else(|| LocalnetError::Decode {
                address: clock,
                expected: "clock sysvar",
                reason: format!("{} bytes", account.data.len()),
            })
    }

    /// An account read over JSON-RPC (`confirmed`).
    pub async fn account(&self, address: &Pubkey) -> Result<Account, LocalnetError> {
        self.client
            .get_account_with_commitment(address, self.client.commitment())
            .await?
            .value
            .ok_or(LocalnetError::AccountNotFound(*address))
    }

    /// Whether an account exists (read over JSON-RPC).
    pub async fn exists(&self, address: &Pubkey) -> Result<bool, LocalnetError> {
        Ok(self
            .client
            .get_account_with_commitment(address, self.client.commitment())
            .await?
            .value
            .is_some())
    }

    /// Lamports of an account (0 when it does not exist), over JSON-RPC.
    pub async fn lamports(&self, address: &Pubkey) -> Result<u64, LocalnetError> {
        Ok(self.client.get_balance(address).await?)
    }

    /// Balance of a token account in base units, over JSON-RPC
    /// (`getTokenAccountBalance`).
    pub async fn token_balance(&self, address: &Pubkey) -> Result<u64, LocalnetError> {
        let amount = self.client.get_token_account_balance(address).await?;
        amount.amount.parse().map_err(|e| LocalnetError::Decode {
            address: *address,
            expected: "token account",
            reason: format!("amount {:?}: {e}", amount.amount),
        })
    }

    /// A paychan [`Channel`] account read over JSON-RPC and decoded (owner,
    /// size and discriminator checked).
    pub async fn channel(&self, address: &Pubkey) -> Result<Channel, LocalnetError> {
        let data = self.program_account(address, "channel").await?;
        Channel::decode(&data).map_err(|e| LocalnetError::Decode {
            address: *address,
            expected: "channel",
            reason: e.to_string(),
        })
    }

    /// A paychan [`PayeeVault`] account read over JSON-RPC and decoded.
    pub async fn vault(&self, address: &Pubkey) -> Result<PayeeVault, LocalnetError> {
        let data = self.program_account(address, "vault").await?;
        PayeeVault::decode(&data).map_err(|e| LocalnetError::Decode {
            address: *address,
            expected: "vault",
            reason: e.to_string(),
        })
    }

    /// The data of an account owned by the program.
    async fn program_account(
        &self,
        address: &Pubkey,
        expected: &'static str,
    ) -> Result<Vec<u8>, LocalnetError> {
        let account = self.account(address).await?;
        if account.owner != self.program_id {
            return Err(LocalnetError::Decode {
                address: *address,
                expected,
                reason: format!("owned by {}", account.owner),
            });
        }
        Ok(account.data)
    }

    /// Stops the runloop (surfpool's `Terminate` command, which also closes
    /// the RPC servers) and waits up to [`SHUTDOWN_TIMEOUT`] for it to end.
    ///
    /// One thread outlives it: surfpool 1.6.1's clock thread (`clock`), an
    /// endless sleep/tick loop with no stop command, waking every slot time.
    pub fn shutdown(mut self) -> Result<(), LocalnetError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), LocalnetError> {
        let result = match self.runloop.take() {
            None => Ok(()),
            Some(thread) => {
                // A closed channel means the runloop is gone already.
                let _ = self.commands.send(SimnetCommand::Terminate(None));
                let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
                loop {
                    if thread.is_finished() {
                        break match thread.join() {
                            Err(_) => Err(LocalnetError::Panicked),
                            Ok(Err(e)) => Err(LocalnetError::Surfpool(e)),
                            Ok(Ok(())) => Ok(()),
                        };
                    }
                    if Instant::now() >= deadline {
                        break Err(LocalnetError::ShutdownTimeout(SHUTDOWN_TIMEOUT));
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        };
        // Dropping the stop sender wakes the drain thread, which then ends.
        self.drain_stop.take();
        if let Some(drain) = self.drain.take() {
            let _ = drain.join();
        }
        result
    }
}

impl Drop for LocalChain {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("paychan-localnet: stopping the chain: {e}");
        }
    }
}

/// Two distinct free ports on 127.0.0.1 (JSON-RPC, websocket).
fn free_port_pair() -> Result<(u16, u16), LocalnetError> {
    // Both listeners are held until both ports are known, so they differ.
    let a = TcpListener::bind("127.0.0.1:0").map_err(LocalnetError::NoFreePort)?;
    let b = TcpListener::bind("127.0.0.1:0").map_err(LocalnetError::NoFreePort)?;
    let pa = a.local_addr().map_err(LocalnetError::NoFreePort)?.port();
    let pb = b.local_addr().map_err(LocalnetError::NoFreePort)?.port();
    Ok((pa, pb))
}

/// Drains surfpool's bounded event channel for the chain's whole life (a full
/// channel would stall lifecycle events), reporting `CoreStarted`/`Aborted`.
fn spawn_event_drain(
    events: Receiver<SimnetEvent>,
    stop: Receiver<()>,
    startup: tokio::sync::mpsc::UnboundedSender<Startup>,
) -> Result<JoinHandle<()>, LocalnetError> {
    let verbose = std::env::var_os(LOG_ENV).is_some();
    std::thread::Builder::new()
        .name("paychan-localnet-events".into())
        .spawn(move || {
            loop {
                crossbeam_channel::select! {
                    recv(events) -> event => match event {
                        Ok(SimnetEvent::CoreStarted(_)) => {
                            let _ = startup.send(Startup::Ready);
                        }
                        Ok(SimnetEvent::Aborted(reason)) => {
                            let _ = startup.send(Startup::Failed(format!("aborted: {reason}")));
                        }
                        Ok(event) if verbose => log_event(&event),
                        Ok(_) => {}
                        Err(_) => break,
                    },
                    recv(stop) -> _ => break,
                }
            }
        })
        .map_err(|source| LocalnetError::Spawn {
            what: "event drain thread",
            source,
        })
}

fn log_event(event: &SimnetEvent) {
    match event {
        SimnetEvent::InfoLog(_, msg) => eprintln!("[surfpool info] {msg}"),
        SimnetEvent::WarnLog(_, msg) => eprintln!("[surfpool warn] {msg}"),
        SimnetEvent::ErrorLog(_, msg) => eprintln!("[surfpool error] {msg}"),
        SimnetEvent::TransactionProcessed(_, meta, err) => eprintln!(
            "[surfpool tx] {} err={err:?}\n  {}",
            meta.signature,
            meta.logs.join("\n  ")
        ),
        _ => {}
    }
}

/// Writes an initialized SPL Token mint with [`MINT_DECIMALS`] decimals.
fn create_mint(locker: &SurfnetSvmLocker, mint: Pubkey, authority: Pubkey) -> Result<(), String> {
    let mut data = vec![0u8; spl_token::state::Mint::LEN];
    let state = spl_token::state::Mint {
        mint_authority: Some(authority).into(),
        supply: 0,
        decimals: MINT_DECIMALS,
        is_initialized: true,
        freeze_authority: None.into(),
    };
    spl_token::state::Mint::pack(state, &mut data).map_err(|e| format!("mint: {e}"))?;
    locker.with_svm_writer(move |svm| {
        let account = Account {
            lamports: svm.inner.minimum_balance_for_rent_exemption(data.len()),
            data,
            owner: spl_token::ID,
            executable: false,
            rent_epoch: 0,
        };
        svm.set_account(&mint, account).map_err(|e| e.to_string())
    })
}
