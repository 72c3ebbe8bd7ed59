//! What runs behind a server: the voucher store, channel snapshots over
//! RPC, the verifier and the offer's `extra`, the in-process settler and
//! its metrics endpoint ([`Backend`], started by [`start_backend`] with
//! [`BackendOptions`]; `paychan serve`, `paychan facilitator` and
//! `paychan demo` all start theirs here), the paywall over it, and the
//! x402 `exact` settlement ([`start_exact`]).
use std::{net::SocketAddr, sync::Arc};

use paychan_sdk::Pubkey;
use paychan_settler::{MintAccounts, SettleHandle, Settler};
use paychan_verifier::{Terms, Verifier, rpc::RpcChannels};
use paychan_x402::{
    scheme::PaychanExtra,
    server::{
        Paywall, PaywallConfig,
        exact::{ExactConfig, ExactSettler},
    },
};
use solana_commitment_config::CommitmentConfig;
use solana_keypair::Keypair;
use solana_signer::Signer;

use super::{
    config::ServerArgs,
    http::{serve_metrics, shutdown_signal},
    settler::{build_settler, settler_lease, spawn_settler},
    setup::{ServerSetup, ensure_payee_tokens},
    store::{AnyStore, open_store},
};
use crate::{chain::Chain, commands::Context, error::CliError};

/// The `exact` settlement of a server: the payee's associated token
/// account must exist (the in-process settler creates it; with
/// `--no-settler` it is a startup error), and `fee_payer` (the `--keypair`)
/// must hold at least one worst-case fee.
pub async fn start_exact(
    chain: &Chain,
    setup: &ServerSetup,
    fee_payer: &Keypair,
) -> Result<Arc<ExactSettler>, CliError> {
    let config = ExactConfig {
        network: setup.network.clone(),
        pay_to: setup.payee,
        mint: setup.mint,
        fee_payer: fee_payer.insecure_clone(),
        memo: setup.file.exact.memo.clone(),
        limits: setup.file.exact.limits(),
    };
    let settler = ExactSettler::connect(chain.url(), config)
        .await
        .map_err(|e| CliError::Usage(format!("exact: {e}")))?;
    Ok(Arc::new(settler))
}

/// What [`start_backend`] needs besides the [`ServerSetup`].
pub struct BackendOptions<'a> {
    /// The program whose channels are read and settled.
    pub program_id: Pubkey,
    /// Commitment of the settler's reads and confirmations.
    pub commitment: CommitmentConfig,
    /// The payee's keypair: the settler runs in this process and signs with
    /// it; `None` (`--no-settler`) runs no settler and needs no key.
    pub settler_key: Option<&'a Keypair>,
    /// Where to serve the settler's `/metrics`, if anywhere.
    pub metrics_addr: Option<&'a str>,
    /// The cheapest priced route: the verifier's least payment.
    pub min_price: u64,
    /// The dearest priced route: the default minimum deposit is 100 of it.
    pub max_price: u64,
}

impl std::fmt::Debug for BackendOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendOptions")
            .field("program_id", &self.program_id)
            .field("commitment", &self.commitment)
            .field("settler_key", &self.settler_key.map(Signer::pubkey))
            .field("metrics_addr", &self.metrics_addr)
            .field("min_price", &self.min_price)
            .field("max_price", &self.max_price)
            .finish()
    }
}

impl<'a> BackendOptions<'a> {
    /// The options of `paychan serve` and `paychan facilitator`: the
    /// configured program and commitment, the settler signing with
    /// `keypair` unless `--no-settler`, `--metrics-addr`.
    pub fn for_server(
        ctx: &Context,
        keypair: Option<&'a Keypair>,
        args: &'a ServerArgs,
        min_price: u64,
        max_price: u64,
    ) -> Self {
        Self {
            program_id: ctx.settings.program_id.value,
            commitment: ctx.settings.commitment.value.config(),
            settler_key: keypair.filter(|_| !args.no_settler),
            metrics_addr: args.metrics_addr.as_deref(),
            min_price,
            max_price,
        }
    }
}

/// The settler's loop while it runs: its stop signal and its task.
struct SettlerRun {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl SettlerRun {
    fn spawn(settler: Arc<Settler<Arc<AnyStore>>>) -> Self {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        Self {
            stop,
            task: spawn_settler(settler, stopped),
        }
    }
}

/// The verifier over RPC, the store and (optionally) the settler of a server.
pub struct Backend {
    /// The voucher store.
    pub store: Arc<AnyStore>,
    /// Channel snapshots over RPC.
    pub channels: Arc<RpcChannels>,
    /// The verifier.
    pub verifier: Arc<Verifier<Arc<RpcChannels>, Arc<AnyStore>>>,
    /// The offer's `extra`.
    pub extra: PaychanExtra,
    /// The settler, when it runs in this process.
    pub settler: Option<Arc<Settler<Arc<AnyStore>>>>,
    /// Where `/metrics` is served, if anywhere.
    pub metrics_addr: Option<SocketAddr>,
    stop: tokio::sync::watch::Sender<bool>,
    settler_run: Option<SettlerRun>,
    updater: tokio::task::JoinHandle<()>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("store", &self.store)
            .field("channels", &self.channels)
            .field("extra", &self.extra)
            .field("settler", &self.settler.is_some())
            .field("settler_running", &self.settler_run.is_some())
            .field("metrics_addr", &self.metrics_addr)
            .finish_non_exhaustive()
    }
}

impl Backend {
    /// The settler's urgent queue, if it runs here.
    pub fn settle_handle(&self) -> Option<SettleHandle> {
        self.settler.as_ref().map(|s| s.handle())
    }

    /// The paywall over this backend's verifier: offers on `setup`'s
    /// network with this backend's `extra`, the config's default
    /// description and public URL.
    pub fn paywall(&self, setup: &ServerSetup) -> Paywall<Arc<RpcChannels>, Arc<AnyStore>> {
        let mut config = PaywallConfig::new(setup.network.clone(), self.extra.clone());
        config.description = setup.file.description.clone();
        config.public_url = setup.file.public_url.clone();
        Paywall::new(self.verifier.clone(), config)
    }

    /// Starts the `exact` settlement ([`start_exact`]) when `wanted`, with
    /// `fee_payer`; without one (`missing` says why it is needed) or when it
    /// fails to start, shuts this backend down and returns the error.
    pub async fn with_exact(
        self,
        wanted: bool,
        chain: &Chain,
        setup: &ServerSetup,
        fee_payer: Option<&Keypair>,
        missing: &str,
    ) -> Result<(Self, Option<Arc<ExactSettler>>), CliError> {
        if !wanted {
            return Ok((self, None));
        }
        let started = match fee_payer {
            Some(fee_payer) => start_exact(chain, setup, fee_payer).await,
            None => Err(CliError::Usage(missing.to_string())),
        };
        match started {
            Ok(settler) => Ok((self, Some(settler))),
            Err(e) => {
                self.shutdown().await;
                Err(e)
            }
        }
    }

    /// Prints `paychan {command}: listening on http://{addr} (network …,
    /// payee …, mint …{details}, settler on|off)` and where `/metrics` is
    /// served, if anywhere.
    pub fn announce(&self, command: &str, addr: SocketAddr, setup: &ServerSetup, details: &str) {
        eprintln!(
            "paychan {command}: listening on http://{addr} (network {}, payee {}, mint {}{details}, settler {})",
            setup.network,
            setup.payee,
            setup.mint,
            if self.settler.is_some() { "on" } else { "off" }
        );
        if let Some(m) = self.metrics_addr {
            eprintln!("paychan {command}: metrics on http://{m}/metrics");
        }
    }

    /// Serves `app` on `listener` (at `addr`) within the config's HTTP
    /// limits until Ctrl-C / SIGTERM, then shuts this backend down.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        addr: SocketAddr,
        app: axum::Router,
        setup: &ServerSetup,
    ) -> Result<(), CliError> {
        let served =
            paychan_x402::server::serve(listener, app, setup.file.limits.http(), shutdown_signal())
                .await;
        self.shutdown().await;
        served.map_err(|source| CliError::Io {
            what: format!("serving on {addr}"),
            source,
        })
    }

    /// Stops the settler's loop (a run in progress finishes first); the
    /// settler stays, for [`Settler::run_once`] and [`Self::resume_settler`].
    /// Nothing to do when no settler loop runs; the error is its task's.
    pub async fn pause_settler(&mut self) -> Result<(), tokio::task::JoinError> {
        match self.settler_run.take() {
            Some(run) => {
                let _ = run.stop.send(true);
                run.task.await
            }
            None => Ok(()),
        }
    }

    /// Runs the settler's loop again after [`Self::pause_settler`]; nothing
    /// when there is no settler or its loop runs.
    pub fn resume_settler(&mut self) {
        if self.settler_run.is_none()
            && let Some(settler) = &self.settler
        {
            self.settler_run = Some(SettlerRun::spawn(settler.clone()));
        }
    }

    /// Stops the settler (a run in progress finishes first), the metrics
    /// endpoint and the channel updater, then closes the store.
    pub async fn shutdown(mut self) {
        let _ = self.pause_settler().await;
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        self.updater.abort();
        match &*self.store {
            AnyStore::Redb(s) => s.close(),
            AnyStore::Redis(s) => s.close(),
        }
    }
}

/// Opens the store, starts the channel updater, builds the verifier and
/// `extra`, and (with [`BackendOptions::settler_key`], the payee's) starts
/// the settler of the payee and its metrics endpoint; without a key
/// (`--no-settler`) no settler runs and nothing needs the payee's key.
pub async fn start_backend(
    chain: &Chain,
    setup: &ServerSetup,
    options: BackendOptions<'_>,
) -> Result<Backend, CliError> {
    if let Some(k) = options.settler_key
        && setup.payee != k.pubkey()
    {
        return Err(CliError::Usage(format!(
            "the settler signs as the payee {}, but the keypair is {}: use the payee's keypair or --no-settler",
            setup.payee,
            k.pubkey()
        )));
    }
    let minimum_deposit = match &setup.file.minimum_deposit {
        Some(s) => crate::amount::parse_amount(s, setup.mint_info.decimals).map_err(|source| {
            CliError::Amount {
                input: s.clone(),
                source,
            }
        })?,
        None => options.max_price.saturating_mul(100).max(1),
    };
    let store = Arc::new(open_store(&setup.store, setup.durability)?);
    let program_id = options.program_id;
    let channels = Arc::new(RpcChannels::with_limits(
        chain.url(),
        program_id,
        setup.payee,
        setup.file.limits.rpc(),
    ));
    let updater = channels.spawn_updater(setup.ws_url.clone(), setup.poll_interval);
    // What the offers advertise is what the verifier enforces.
    let mut terms = Terms::new(
        program_id,
        setup.payee,
        setup.mint,
        options.min_price.max(1),
    );
    terms.min_grace_period = setup.grace_period;
    terms.min_deposit = minimum_deposit;
    let verifier = Arc::new(Verifier::new(channels.clone(), store.clone(), terms));
    let extra = PaychanExtra {
        program_id: program_id.to_string(),
        token_program: setup.mint_info.token_program.to_string(),
        decimals: setup.mint_info.decimals,
        grace_period_seconds: setup.grace_period,
        minimum_deposit: minimum_deposit.to_string(),
        fee_payer: Some(setup.payee.to_string()),
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    let mut settler = None;
    let mut settler_run = None;
    let mut metrics_addr = None;
    if let Some(keypair) = options.settler_key {
        ensure_payee_tokens(chain, keypair, &setup.mint, &setup.mint_info).await?;
        let lease = settler_lease(&setup.store, &setup.payee).await?;
        let built = build_settler(
            chain.url(),
            options.commitment,
            keypair.insecure_clone(),
            MintAccounts::new(
                setup.mint,
                setup.mint_info.token_program,
                setup.settler.threshold,
            ),
            &setup.settler,
            store.clone(),
        )?;
        let s = Arc::new(built.with_lease(lease));
        settler_run = Some(SettlerRun::spawn(s.clone()));
        if let Some(addr) = options.metrics_addr {
            let (bound, task) = serve_metrics(addr, s.clone(), stopped.clone()).await?;
            metrics_addr = Some(bound);
            tasks.push(task);
        }
        settler = Some(s);
    }
    Ok(Backend {
        store,
        channels,
        verifier,
        extra,
        settler,
        metrics_addr,
        stop,
        settler_run,
        updater,
        tasks,
    })
}
