//! What runs behind a server: the voucher store, channel snapshots over
//! RPC, the verifier and the offer's `extra`, the in-process settler and
//! its metrics endpoint ([`Backend`], started by [`start_backend`]), and
//! the x402 `exact` settlement ([`start_exact`]).
use std::{net::SocketAddr, sync::Arc};

use paychan_settler::{MintAccounts, SettleHandle, Settler};
use paychan_verifier::{Terms, Verifier, rpc::RpcChannels};
use paychan_x402::{
    scheme::PaychanExtra,
    server::exact::{ExactConfig, ExactSettler},
};
use solana_keypair::Keypair;
use solana_signer::Signer;

use super::{
    config::ServerArgs,
    http::serve_metrics,
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
            .field("metrics_addr", &self.metrics_addr)
            .finish_non_exhaustive()
    }
}

impl Backend {
    /// The settler's urgent queue, if it runs here.
    pub fn settle_handle(&self) -> Option<SettleHandle> {
        self.settler.as_ref().map(|s| s.handle())
    }

    /// Stops the settler (a run in progress finishes first), the metrics
    /// endpoint and the channel updater, then closes the store.
    pub async fn shutdown(self) {
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
/// `extra`, and (with `keypair`, the payee's) starts the settler of the
/// payee and its metrics endpoint; without a keypair (`--no-settler`) no
/// settler runs and nothing needs the payee's key.
pub async fn start_backend(
    ctx: &Context,
    chain: &Chain,
    setup: &ServerSetup,
    keypair: Option<&Keypair>,
    args: &ServerArgs,
    min_price: u64,
    max_price: u64,
) -> Result<Backend, CliError> {
    let settler_key = match keypair {
        Some(k) if !args.no_settler => {
            if setup.payee != k.pubkey() {
                return Err(CliError::Usage(format!(
                    "the settler signs as the payee {}, but the keypair is {}: use the payee's keypair or --no-settler",
                    setup.payee,
                    k.pubkey()
                )));
            }
            Some(k)
        }
        _ => None,
    };
    let minimum_deposit = match &setup.file.minimum_deposit {
        Some(s) => crate::amount::parse_amount(s, setup.mint_info.decimals).map_err(|source| {
            CliError::Amount {
                input: s.clone(),
                source,
            }
        })?,
        None => max_price.saturating_mul(100).max(1),
    };
    let store = Arc::new(open_store(&setup.store, setup.durability)?);
    let program_id = ctx.settings.program_id.value;
    let channels = Arc::new(RpcChannels::with_limits(
        chain.url(),
        program_id,
        setup.payee,
        setup.file.limits.rpc(),
    ));
    let updater = channels.spawn_updater(setup.ws_url.clone(), setup.poll_interval);
    // What the offers advertise is what the verifier enforces.
    let mut terms = Terms::new(program_id, setup.payee, setup.mint, min_price.max(1));
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
    let mut metrics_addr = None;
    if let Some(keypair) = settler_key {
        ensure_payee_tokens(chain, keypair, &setup.mint, &setup.mint_info).await?;
        let lease = settler_lease(&setup.store, &setup.payee).await?;
        let built = build_settler(
            chain.url(),
            ctx.settings.commitment.value.config(),
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
        tasks.push(spawn_settler(s.clone(), stopped.clone()));
        if let Some(addr) = &args.metrics_addr {
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
        updater,
        tasks,
    })
}
