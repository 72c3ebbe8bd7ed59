//! The body of `paychan demo` (feature `demo`): the embedded chain and the
//! whole flow; see `commands::demo`. [`run`] is a list of named steps. The
//! server side is `paychan serve`'s: a [`ServerSetup`] of one route, the
//! backend from [`start_backend`] (redb store, verifier over RPC, settler),
//! its paywall and [`paywall_router`].
use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::Response,
};
use paychan_client::{ClientConfig, PaychanClient};
use paychan_localnet::{LocalChain, LocalChainConfig, MINT_DECIMALS};
use paychan_sdk::Pubkey;
use paychan_sdk::state::ChannelStatus;
use paychan_settler::RunMode;
use paychan_verifier::VoucherStore;
use serde_json::json;
use solana_keypair::Keypair;
use solana_signer::Signer;

use super::{
    Context,
    demo::DemoArgs,
    server::{
        Backend, BackendOptions, PricedRoute, RouteConfig, ServeConfig, ServerSetup,
        SettlerOptions, StoreSpec, bind, network_for, parse_durability, paywall_router,
        shutdown_signal, start_backend,
    },
};
use crate::{
    chain::Chain,
    config::Commitment,
    error::CliError,
    output::{Report, Table},
};

const LAMPORTS_PER_SOL: u64 = 1_000_000_000;
/// Base fee of a transaction with one signature: what paying each request
/// with its own SPL transfer would cost (before priority fees).
const LAMPORTS_PER_TRANSFER_TX: u64 = 5_000;
const GRACE_PERIOD_SECS: i64 = 900;

fn fail(what: &str, e: impl std::fmt::Display) -> CliError {
    CliError::Demo(format!("{what}: {e}"))
}

/// Server-side time of each paid request (decode, rules, `verify_strict`,
/// durable accept, and the trivial handler), microseconds.
#[derive(Clone, Default)]
struct Latencies(Arc<std::sync::Mutex<Vec<u32>>>);

async fn time_paid(State(lat): State<Latencies>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let response = next.run(request).await;
    if response.headers().contains_key("payment-response") {
        let micros = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
        if let Ok(mut v) = lat.0.lock() {
            v.push(micros);
        }
    }
    response
}

fn percentile(sorted: &[u32], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (sorted.len() as f64 * p).ceil() as usize;
    let idx = rank.clamp(1, sorted.len()) - 1;
    sorted.get(idx).map_or(0, |v| u64::from(*v))
}

fn usdc(base_units: u64) -> String {
    let scale = 10u64.pow(u32::from(MINT_DECIMALS));
    format!(
        "{}.{:0width$}",
        base_units / scale,
        base_units % scale,
        width = usize::from(MINT_DECIMALS)
    )
}

/// One paychan transaction seen on chain.
struct ChainTx {
    kind: &'static str,
    fee: u64,
}

fn instruction_kind(data: &[u8]) -> &'static str {
    paychan_sdk::ix::instruction_name(data).unwrap_or("other")
}

/// Every transaction that called the program, with its kind and fee (the
/// loader's transactions that deployed it mention its id too: they are not
/// paychan's and are left out). A transaction is named by its last paychan
/// instruction: the settler's close `[compute budget, settle_signed, close]`
/// is a close.
async fn program_transactions(
    rpc: &solana_rpc_client::nonblocking::rpc_client::RpcClient,
) -> Result<Vec<ChainTx>, CliError> {
    use solana_rpc_client_api::config::RpcTransactionConfig;
    use solana_transaction_status_client_types::UiTransactionEncoding;
    let signatures = rpc
        .get_signatures_for_address(&paychan_sdk::ID)
        .await
        .map_err(|e| fail("listing the program's transactions", e))?;
    let mut out = Vec::with_capacity(signatures.len());
    for s in signatures {
        let signature = s
            .signature
            .parse()
            .map_err(|e| fail("signature from getSignaturesForAddress", e))?;
        let config = RpcTransactionConfig {
            encoding: Some(UiTransactionEncoding::Base64),
            commitment: Some(solana_commitment_config::CommitmentConfig::confirmed()),
            max_supported_transaction_version: Some(0),
        };
        let tx = rpc
            .get_transaction_with_config(&signature, config)
            .await
            .map_err(|e| fail("getTransaction", e))?;
        let fee = tx.transaction.meta.as_ref().map_or(0, |m| m.fee);
        let decoded = tx.transaction.transaction.decode();
        let Some(t) = decoded else {
            out.push(ChainTx { kind: "other", fee });
            continue;
        };
        let keys = t.message.static_account_keys().to_vec();
        let called = t
            .message
            .instructions()
            .iter()
            .rev()
            .find(|i| keys.get(usize::from(i.program_id_index)) == Some(&paychan_sdk::ID))
            .map(|i| instruction_kind(&i.data));
        if let Some(kind) = called {
            out.push(ChainTx { kind, fee });
        }
    }
    Ok(out)
}

/// Lamports and tokens (base units) the faucet keypair of `--keep-serving` gets.
const FAUCET_LAMPORTS: u64 = 10 * LAMPORTS_PER_SOL;
const FAUCET_TOKENS: u64 = 100_000_000;
/// The demo's one paywalled route.
const QUOTE_PATH: &str = "/api/quote";

/// Runs `paychan demo`, step by step: `start_chain`, `fund_parties`,
/// `start_server` (`paychan serve`'s backend), then the [`Demo`] steps
/// `start_agent`, `pay_requests`, `settle_and_close`, `read_outcome` and
/// its checks, `report`, `keep_serving` with `--keep-serving`, and
/// `shut_down`.
pub async fn run(ctx: &Context, args: &DemoArgs) -> Result<Report, CliError> {
    let started = Instant::now();
    let plan = Plan::new(args)?;
    let (chain, slot_time_ms) = start_chain(ctx, args).await?;
    let parties = fund_parties(&chain, &plan).await?;
    let dir = tempfile::tempdir().map_err(|source| CliError::Io {
        what: "creating a temporary directory".into(),
        source,
    })?;
    let server = start_server(args, &chain, &parties, dir.path()).await?;
    let mut demo = Demo {
        ctx,
        args,
        plan,
        started,
        chain,
        slot_time_ms,
        parties,
        dir,
        server,
    };
    let agent = demo.start_agent().await?;
    let requests = demo.pay_requests(&agent).await?;
    let closing = demo.settle_and_close(&agent).await?;
    let outcome = demo.read_outcome(&requests, &closing).await?;
    let report = demo.report(&requests, &closing, &outcome);
    if let Some(problem) = outcome.problem(&demo.plan) {
        report.print(ctx.json);
        return Err(CliError::Demo(problem));
    }
    if args.keep_serving {
        report.print(ctx.json);
        demo.keep_serving().await?;
    }
    demo.shut_down(agent).await?;
    Ok(if args.keep_serving {
        Report::none()
    } else {
        report
    })
}

/// The sizes of a run, from the arguments.
struct Plan {
    /// Requests × price: what the agent pays in all.
    total_value: u64,
    /// Requests in flight at once, one channel each.
    lanes: usize,
    /// Each channel's deposit (and each top-up).
    deposit: u64,
    /// The agent's tokens at the start.
    payer_funds: u64,
}

impl Plan {
    /// Checks the arguments and sizes the run.
    fn new(args: &DemoArgs) -> Result<Self, CliError> {
        if args.requests == 0 || args.price == 0 {
            return Err(CliError::Usage(
                "--requests and --price must be positive".into(),
            ));
        }
        let total_value = args
            .requests
            .checked_mul(args.price)
            .ok_or_else(|| CliError::Usage("--requests × --price overflows".into()))?;
        let lanes = usize::from(args.concurrency);
        // Each lane's channel starts with ~60% of its share, so the agent
        // tops up once along the way.
        let deposit = (total_value / lanes as u64)
            .saturating_mul(3)
            .div_ceil(5)
            .max(args.price.saturating_mul(40));
        let payer_funds = total_value.saturating_mul(4).max(deposit.saturating_mul(8));
        Ok(Self {
            total_value,
            lanes,
            deposit,
            payer_funds,
        })
    }
}

/// The two parties, funded.
struct Parties {
    /// The API's payee (also the settler's fee payer).
    payee: Keypair,
    /// The agent.
    payer: Keypair,
    /// The agent's associated token account, holding `payer_funds`.
    payer_tokens: Pubkey,
    /// The payee's token account, where settlements land.
    payee_tokens: Pubkey,
    /// The payee's lamports before the server starts: its fees are counted
    /// from here.
    payee_lamports_start: u64,
}

/// The server side, as `paychan serve` runs it.
struct Server {
    /// The demo's server config, resolved.
    setup: ServerSetup,
    /// Store, verifier and settler.
    backend: Backend,
    /// `http://127.0.0.1:<port>`.
    api: String,
    /// Server-side time of each paid request.
    latencies: Latencies,
    /// Stops the HTTP server.
    stop: tokio::sync::oneshot::Sender<()>,
    /// The HTTP server's task.
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// What the paid requests came to.
struct Requests {
    /// Requests that did not end in a paid 200.
    failed: u64,
    /// Wall time of all the requests.
    elapsed: Duration,
}

/// The channels after the close.
struct Closing {
    /// The agent's channels.
    channels: Vec<Pubkey>,
    /// Transactions of the settler's final sweep.
    final_transactions: usize,
}

/// What happened, read back from the store and the chain.
struct Outcome {
    failed: u64,
    channels: usize,
    accepted: u64,
    deposited: u64,
    settled: u64,
    refunded: u64,
    closed: usize,
    payee_received: u64,
    payer_balance: u64,
    refund_received: u64,
    channel_rent: u64,
    transactions: usize,
    by_kind: BTreeMap<&'static str, (u64, u64)>,
    fees: u64,
    payee_fees: u64,
    /// Server-side check latencies, sorted, microseconds.
    latencies: Vec<u32>,
    paid: u64,
    lamports_per_request: f64,
    conserved: bool,
    all_paid: bool,
    all_closed: bool,
}

impl Outcome {
    /// The first check that failed, if any: every request paid, every
    /// paid unit settled and received, payee + refund = deposit, every
    /// channel closed.
    fn problem(&self, plan: &Plan) -> Option<String> {
        let Self {
            accepted,
            settled,
            refunded,
            deposited,
            payee_received,
            closed,
            ..
        } = self;
        let failed = self.failed;
        if failed > 0 {
            Some(format!("{failed} paid requests failed"))
        } else if !self.all_paid {
            Some(format!(
                "value mismatch: accepted {accepted}, settled {settled}, payee received {payee_received}, expected {}",
                plan.total_value
            ))
        } else if !self.conserved {
            Some(format!(
                "settled {settled} + refunded {refunded} != deposited {deposited}"
            ))
        } else if !self.all_closed {
            Some(format!("{closed} of {} channels closed", self.channels))
        } else {
            None
        }
    }
}

/// The embedded chain, running the program binary; returns it and its
/// slot time, milliseconds.
async fn start_chain(ctx: &Context, args: &DemoArgs) -> Result<(LocalChain, u64), CliError> {
    let spinner = ctx.progress.spinner("starting the embedded chain");
    let mut config = LocalChainConfig::default();
    if let Some(path) = &args.program {
        config.program_so = path.clone();
    }
    if !config.program_so.is_file() {
        return Err(CliError::Usage(format!(
            "program binary {} not found: run scripts/build-sbf.sh (or pass --program)",
            config.program_so.display()
        )));
    }
    let slot_time_ms = config.slot_time_ms;
    let chain = LocalChain::start(config)
        .await
        .map_err(|e| fail("starting the local chain", e))?;
    spinner.finish_and_clear();
    Ok((chain, slot_time_ms))
}

/// Keys for the API's payee and the agent, with SOL; the agent's USDC; the
/// payee's token account.
async fn fund_parties(chain: &LocalChain, plan: &Plan) -> Result<Parties, CliError> {
    let payee = Keypair::new();
    let payer = Keypair::new();
    chain
        .fund_sol(&payee.pubkey(), 10 * LAMPORTS_PER_SOL)
        .await
        .map_err(|e| fail("funding the payee", e))?;
    chain
        .fund_sol(&payer.pubkey(), 10 * LAMPORTS_PER_SOL)
        .await
        .map_err(|e| fail("funding the agent", e))?;
    let payer_tokens = chain
        .create_associated_token_account(&payer.pubkey(), plan.payer_funds)
        .await
        .map_err(|e| fail("minting the agent's USDC", e))?;
    let payee_tokens = chain
        .create_associated_token_account(&payee.pubkey(), 0)
        .await
        .map_err(|e| fail("creating the payee's token account", e))?;
    let payee_lamports_start = chain
        .lamports(&payee.pubkey())
        .await
        .map_err(|e| fail("reading the payee", e))?;
    Ok(Parties {
        payee,
        payer,
        payer_tokens,
        payee_tokens,
        payee_lamports_start,
    })
}

/// The demo's server in `paychan serve`'s terms: one route at `--price`,
/// a redb store in `dir` (`--durability`: `sync`, or group commit every
/// 5 ms), channel updates over the chain's websocket (polling every
/// 100 ms), a 900 s grace period and a 10-request minimum deposit, and a
/// settler checking every 250 ms with a threshold of 100 requests.
fn server_setup(
    args: &DemoArgs,
    chain: &LocalChain,
    network: String,
    payee: Pubkey,
    mint_info: crate::chain::MintInfo,
    dir: &std::path::Path,
) -> Result<ServerSetup, CliError> {
    let listen = format!("127.0.0.1:{}", args.port);
    let durability = match args.durability.as_str() {
        "batched" => "batched:5",
        _ => "sync",
    };
    let file = ServeConfig {
        listen: Some(listen.clone()),
        grace_period: Some(GRACE_PERIOD_SECS),
        minimum_deposit: Some(args.price.saturating_mul(10).to_string()),
        description: Some("a fresh quote, 0.001 USDC each".into()),
        routes: vec![RouteConfig {
            path: QUOTE_PATH.into(),
            price: args.price.to_string(),
            description: None,
            mime_type: None,
            response: json!({ "quote": "ship small, settle late" }),
            exact: Some(false),
        }],
        ..ServeConfig::default()
    };
    Ok(ServerSetup {
        listen,
        network,
        payee,
        mint: chain.mint(),
        mint_info,
        grace_period: GRACE_PERIOD_SECS,
        store: StoreSpec::Redb(dir.join("vouchers.redb")),
        durability: parse_durability(durability).map_err(CliError::Usage)?,
        ws_url: Some(chain.ws_url().to_string()),
        poll_interval: Duration::from_millis(100),
        settler: SettlerOptions {
            threshold: args.price.saturating_mul(100),
            interval: Duration::from_millis(250),
            sweep_interval: Duration::from_secs(3_600),
            close_on_request: true,
            lookup_table: paychan_settler::LookupTableMode::Off,
            sweep_on_start: false,
            confirm_poll: Some(Duration::from_millis(10)),
        },
        file,
    })
}

/// The paywalled API as `paychan serve` builds it: [`start_backend`]
/// (redb store, channel snapshots over RPC + websocket, the verifier, the
/// payee's settler in the background), its paywall over the route, and the
/// server-side timing of paid requests.
async fn start_server(
    args: &DemoArgs,
    chain: &LocalChain,
    parties: &Parties,
    dir: &std::path::Path,
) -> Result<Server, CliError> {
    let rpc = Chain::new(chain.rpc_url(), Commitment::Confirmed, paychan_sdk::ID);
    let network = network_for(&rpc, None).await?;
    let mint_info = rpc.mint(&chain.mint()).await?;
    let setup = server_setup(args, chain, network, parties.payee.pubkey(), mint_info, dir)?;
    let routes = setup
        .file
        .routes
        .iter()
        .map(|r| PricedRoute::from_config(r, setup.mint_info.decimals))
        .collect::<Result<Vec<_>, _>>()?;
    let backend = start_backend(
        &rpc,
        &setup,
        BackendOptions {
            program_id: paychan_sdk::ID,
            commitment: Commitment::Confirmed.config(),
            settler_key: Some(&parties.payee),
            metrics_addr: None,
            min_price: args.price,
            max_price: args.price,
        },
    )
    .await?;
    let latencies = Latencies::default();
    let app = paywall_router(&backend.paywall(&setup), &routes).layer(
        axum::middleware::from_fn_with_state(latencies.clone(), time_paid),
    );
    let (listener, addr) = bind(&setup.listen).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let limits = setup.file.limits.http();
    let task = tokio::spawn(async move {
        paychan_x402::server::serve(listener, app, limits, async {
            let _ = stopped.await;
        })
        .await
    });
    Ok(Server {
        setup,
        backend,
        api: format!("http://{addr}"),
        latencies,
        stop,
        task,
    })
}

/// What the steps after the server share.
struct Demo<'a> {
    ctx: &'a Context,
    args: &'a DemoArgs,
    plan: Plan,
    started: Instant,
    chain: LocalChain,
    slot_time_ms: u64,
    parties: Parties,
    /// The store, the agent's state and the faucet keypair (by default).
    dir: tempfile::TempDir,
    server: Server,
}

impl Demo<'_> {
    /// The agent (`paychan-client`): one channel per lane, opened on its
    /// first 402 and topped up as it goes.
    async fn start_agent(&self) -> Result<PaychanClient, CliError> {
        let (args, plan) = (self.args, &self.plan);
        let mut config = ClientConfig::new(
            self.chain.rpc_url(),
            self.parties.payer.insecure_clone(),
            self.server.setup.network.clone(),
            self.chain.mint(),
            self.dir.path().join("agent"),
        );
        config.payer_tokens = Some(self.parties.payer_tokens);
        config.max_price = args.price;
        config.budget = plan.payer_funds;
        config.deposit = plan.deposit;
        config.top_up_amount = plan.deposit;
        config.top_up_threshold = args.price.saturating_mul(20);
        config.max_channels_per_payee = plan.lanes;
        PaychanClient::new(config)
            .await
            .map_err(|e| fail("starting the agent", e))
    }

    /// `--requests` paid calls over `--concurrency` lanes while the
    /// settler settles in the background; then the agent's state is saved.
    async fn pay_requests(&self, agent: &PaychanClient) -> Result<Requests, CliError> {
        use std::sync::atomic::{AtomicU64, Ordering};
        // Payment headers never follow a redirect to another origin.
        let http = agent
            .http_client()
            .map_err(|e| fail("building the agent's HTTP client", e))?;
        let bar = self.ctx.progress.bar(self.args.requests, "paid requests");
        let next = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let first_failure = Arc::new(std::sync::Mutex::new(None::<String>));
        let started = Instant::now();
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..self.plan.lanes {
            let (http, next, failed, first_failure, bar) = (
                http.clone(),
                next.clone(),
                failed.clone(),
                first_failure.clone(),
                bar.clone(),
            );
            let url = format!("{}{QUOTE_PATH}", self.server.api);
            let requests = self.args.requests;
            workers.spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < requests {
                    let outcome = match http.get(&url).send().await {
                        Ok(r)
                            if r.status().is_success()
                                && r.headers().contains_key("payment-response") =>
                        {
                            r.bytes().await.map(|_| ()).map_err(|e| e.to_string())
                        }
                        Ok(r) => Err(format!("HTTP {}", r.status())),
                        Err(e) => Err(e.to_string()),
                    };
                    if let Err(e) = outcome {
                        failed.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut f) = first_failure.lock() {
                            f.get_or_insert(e);
                        }
                    }
                    bar.inc(1);
                }
            });
        }
        while workers.join_next().await.is_some() {}
        bar.finish_and_clear();
        let elapsed = started.elapsed();
        let failed = failed.load(Ordering::Relaxed);
        if let Some(first) = first_failure.lock().ok().and_then(|f| f.clone()) {
            tracing::warn!(failed, first = %first, "paid requests failed");
        }
        agent
            .flush()
            .await
            .map_err(|e| fail("saving the agent's state", e))?;
        Ok(Requests { failed, elapsed })
    }

    /// The agent asks for its money back; the settler (its loop stopped)
    /// closes every channel at once with the final vouchers in one sweep
    /// (no waiting for the grace period).
    async fn settle_and_close(&mut self, agent: &PaychanClient) -> Result<Closing, CliError> {
        let spinner = self.ctx.progress.spinner("settling and closing");
        let backend = &mut self.server.backend;
        backend
            .pause_settler()
            .await
            .map_err(|e| fail("settler task", e))?;
        let settler = backend
            .settler
            .clone()
            .ok_or_else(|| CliError::Demo("the server started no settler".into()))?;
        let channels: Vec<Pubkey> = agent
            .channels()
            .await
            .map_err(|e| fail("listing the agent's channels", e))?
            .iter()
            .map(|c| c.state.address)
            .collect();
        for channel in &channels {
            agent
                .request_close(channel)
                .await
                .map_err(|e| fail("request_close", e))?;
        }
        let final_run = settler
            .run_once(RunMode::Sweep)
            .await
            .map_err(|e| fail("final settlement", e))?;
        spinner.finish_and_clear();
        Ok(Closing {
            channels,
            final_transactions: final_run.transactions.len(),
        })
    }

    /// What happened, read back from the voucher store and the chain:
    /// value accepted, settled, received and refunded, channels closed,
    /// every program transaction by kind and fee, and the checks.
    async fn read_outcome(
        &self,
        requests: &Requests,
        closing: &Closing,
    ) -> Result<Outcome, CliError> {
        let (chain, parties, plan) = (&self.chain, &self.parties, &self.plan);
        let accepted: u64 = self
            .server
            .backend
            .store
            .all_latest()
            .map_err(|e| fail("reading the voucher store", e))?
            .iter()
            .map(|a| a.voucher.voucher.cumulative_amount)
            .sum();
        let (mut deposited, mut settled, mut refunded, mut closed) = (0u64, 0u64, 0u64, 0usize);
        for channel in &closing.channels {
            let c = chain
                .channel(channel)
                .await
                .map_err(|e| fail("reading a channel", e))?;
            deposited = deposited.saturating_add(c.deposit);
            settled = settled.saturating_add(c.settled);
            refunded = refunded.saturating_add(c.refunded);
            if ChannelStatus::from_u8(c.status) == Some(ChannelStatus::Closed) {
                closed += 1;
            }
        }
        let payee_received = chain
            .token_balance(&parties.payee_tokens)
            .await
            .map_err(|e| fail("reading the payee's balance", e))?;
        // The refunds land in the agent's associated token account, which
        // funded the deposits: its balance must end at funds − value paid.
        let refund_account = crate::chain::associated_token_address(
            &parties.payer.pubkey(),
            &chain.mint(),
            &self.server.setup.mint_info.token_program,
        );
        if refund_account != parties.payer_tokens {
            return Err(fail(
                "the agent's token account",
                format!(
                    "{} is not its associated token account {refund_account}",
                    parties.payer_tokens
                ),
            ));
        }
        let payer_balance = chain
            .token_balance(&parties.payer_tokens)
            .await
            .map_err(|e| fail("reading the agent's token account", e))?;
        let refund_received = payer_balance
            .saturating_add(deposited)
            .saturating_sub(plan.payer_funds);
        let rpc = chain.rpc_client();
        let channel_rent = rpc
            .get_minimum_balance_for_rent_exemption(
                8 + std::mem::size_of::<paychan_sdk::state::Channel>(),
            )
            .await
            .map_err(|e| fail("getMinimumBalanceForRentExemption", e))?
            .saturating_mul(closing.channels.len() as u64);
        let txs = program_transactions(rpc).await?;
        let mut by_kind: BTreeMap<&'static str, (u64, u64)> = BTreeMap::new();
        for tx in &txs {
            let e = by_kind.entry(tx.kind).or_default();
            e.0 += 1;
            e.1 = e.1.saturating_add(tx.fee);
        }
        let fees: u64 = txs.iter().map(|t| t.fee).sum();
        let payee_fees = parties.payee_lamports_start.saturating_sub(
            chain
                .lamports(&parties.payee.pubkey())
                .await
                .map_err(|e| fail("reading the payee", e))?,
        );
        let mut latencies = self
            .server
            .latencies
            .0
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default();
        latencies.sort_unstable();
        let paid = self.args.requests.saturating_sub(requests.failed);
        let total_value = plan.total_value;
        Ok(Outcome {
            failed: requests.failed,
            channels: closing.channels.len(),
            accepted,
            deposited,
            settled,
            refunded,
            closed,
            payee_received,
            payer_balance,
            refund_received,
            channel_rent,
            transactions: txs.len(),
            by_kind,
            fees,
            payee_fees,
            latencies,
            paid,
            lamports_per_request: fees as f64 / paid.max(1) as f64,
            conserved: settled.saturating_add(refunded) == deposited && refund_received == refunded,
            all_paid: accepted == total_value
                && settled == total_value
                && payee_received == total_value,
            all_closed: closed == closing.channels.len(),
        })
    }

    /// The summary: the JSON report and the human table.
    fn report(&self, requests: &Requests, closing: &Closing, outcome: &Outcome) -> Report {
        let (args, chain) = (self.args, &self.chain);
        let o = outcome;
        let (paid, failed, channels, closed) = (o.paid, o.failed, o.channels, o.closed);
        let (transactions, fees, channel_rent) = (o.transactions, o.fees, o.channel_rent);
        let lamports_per_request = o.lamports_per_request;
        let total_value = self.plan.total_value;
        let requests_elapsed = requests.elapsed;
        let summary = json!({
            "requests": args.requests,
            "paid_requests": paid,
            "failed_requests": failed,
            "price": args.price,
            "value_paid": o.accepted,
            "value_paid_usdc": usdc(o.accepted),
            "expected_value": total_value,
            "channels": channels,
            "deposited": o.deposited,
            "payee_received": o.payee_received,
            "settled_on_chain": o.settled,
            "refunded_to_payer": o.refunded,
            "refund_received_by_payer": o.refund_received,
            "payer_tokens_start": self.plan.payer_funds,
            "payer_tokens_end": o.payer_balance,
            "channel_rent_lamports_refundable": channel_rent,
            "payee_plus_refund_equals_deposit": o.conserved,
            "channels_closed": closed,
            "check_latency_us": {
                "p50": percentile(&o.latencies, 0.50),
                "p99": percentile(&o.latencies, 0.99),
                "samples": o.latencies.len(),
                "what": "server side, per paid request: decode, rules, verify_strict, durable redb accept, handler",
                "durability": args.durability,
            },
            "requests_per_second": paid as f64 / requests_elapsed.as_secs_f64().max(1e-9),
            "onchain": {
                "transactions": transactions,
                "by_kind": o.by_kind.iter().map(|(k, (n, f))| (k.to_string(), json!({"count": n, "fee_lamports": f}))).collect::<serde_json::Map<_, _>>(),
                "fee_lamports": fees,
                "payee_fee_lamports": o.payee_fees,
                "final_settlement_transactions": closing.final_transactions,
            },
            "lamports_per_paid_request": lamports_per_request,
            "lamports_per_request_one_transfer_each": LAMPORTS_PER_TRANSFER_TX,
            "savings_factor": LAMPORTS_PER_TRANSFER_TX as f64 / lamports_per_request.max(1e-9),
            "chain_startup_seconds": chain.startup_time().as_secs_f64(),
            "program_deploy": chain.program_deploy().map(|d| json!({
                "how": "upgradeable loader: buffer writes + Upgrade (see crates/paychan-localnet/src/deploy.rs)",
                "program_len": d.program_len,
                "transactions": d.transactions,
                "write_transactions": d.write_transactions,
                "seconds": d.elapsed.as_secs_f64(),
                "sha256": paychan_localnet::deploy::hex(&d.sha256),
            })),
            "requests_seconds": requests_elapsed.as_secs_f64(),
            "total_seconds": self.started.elapsed().as_secs_f64(),
            "network": self.server.setup.network,
            "api": self.server.api,
            "rpc_url": chain.rpc_url(),
        });

        let mut table = Table::key_value();
        table
            .kv(
                "paid requests",
                format!("{paid} of {} ({failed} failed)", args.requests),
            )
            .kv("price", format!("{} USDC", usdc(args.price)))
            .kv(
                "value paid",
                format!("{} USDC (expected {})", usdc(o.accepted), usdc(total_value)),
            )
            .kv(
                "channels",
                format!("{channels} opened, {closed} closed cooperatively"),
            )
            .kv("deposited", format!("{} USDC", usdc(o.deposited)))
            .kv("payee received", format!("{} USDC", usdc(o.payee_received)))
            .kv(
                "refunded to agent",
                format!(
                    "{} USDC (in its token account: {})",
                    usdc(o.refunded),
                    usdc(o.refund_received)
                ),
            )
            .kv(
                "payee + refund = deposit",
                if o.conserved { "yes" } else { "NO" },
            )
            .kv(
                "check latency",
                format!(
                    "p50 {} µs, p99 {} µs (server side, redb {})",
                    percentile(&o.latencies, 0.50),
                    percentile(&o.latencies, 0.99),
                    args.durability
                ),
            )
            .kv(
                "throughput",
                format!(
                    "{:.0} paid requests/s ({} lanes)",
                    paid as f64 / requests_elapsed.as_secs_f64().max(1e-9),
                    self.plan.lanes
                ),
            )
            .kv(
                "on-chain transactions",
                format!(
                    "{transactions} ({})",
                    o.by_kind
                        .iter()
                        .map(|(k, (n, _))| format!("{k} {n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .kv(
                "fees",
                format!(
                    "{fees} lamports (+ {channel_rent} lamports channel rent, returned by reclaim)"
                ),
            )
            .kv(
                "lamports per paid request",
                format!("{lamports_per_request:.1}"),
            )
            .kv(
                "one transfer per request",
                format!(
                    "{LAMPORTS_PER_TRANSFER_TX} lamports per request ({:.1}× paychan's)",
                    LAMPORTS_PER_TRANSFER_TX as f64 / lamports_per_request.max(1e-9)
                ),
            )
            .kv(
                "program",
                chain.program_deploy().map_or("?".to_string(), |d| {
                    format!(
                        "deployed through the loader: {} bytes in {} transactions, {:.1} s, sha256 {}",
                        d.program_len,
                        d.transactions,
                        d.elapsed.as_secs_f64(),
                        paychan_localnet::deploy::hex(&d.sha256)
                    )
                }),
            )
            .kv(
                "time",
                format!(
                    "{:.1} s total (chain start {:.1} s, requests {:.1} s)",
                    self.started.elapsed().as_secs_f64(),
                    chain.startup_time().as_secs_f64(),
                    requests_elapsed.as_secs_f64()
                ),
            );
        Report {
            human: format!(
                "paychan demo: {} paid calls on an embedded chain\n\n{table}",
                args.requests
            ),
            json: summary,
        }
    }

    /// `--keep-serving`: the faucet keypair, the chain's clock, the settler's
    /// loop again (it settles what outside agents pay and closes their
    /// channels when they request a close), the serving lines on stdout;
    /// then waits for Ctrl-C or SIGTERM and stops the settler's loop.
    async fn keep_serving(&mut self) -> Result<(), CliError> {
        let (ctx, args, chain) = (self.ctx, self.args, &self.chain);
        let mint = chain.mint();
        // The faucet: a keypair file with SOL and the mint's tokens in its
        // associated token account (where the settler's refunds go).
        let faucet = Keypair::new();
        let faucet_file = args
            .faucet_keypair
            .clone()
            .unwrap_or_else(|| self.dir.path().join("faucet-payer.json"));
        crate::keys::write_keypair(&faucet, &faucet_file, false)?;
        chain
            .fund_sol(&faucet.pubkey(), FAUCET_LAMPORTS)
            .await
            .map_err(|e| fail("funding the faucet keypair", e))?;
        let faucet_tokens = chain
            .create_associated_token_account(&faucet.pubkey(), FAUCET_TOKENS)
            .await
            .map_err(|e| fail("minting the faucet's tokens", e))?;

        // Time passes: a block every slot time, each moving the clock
        // `time_scale` slot times.
        let chain_ms_per_slot = self.slot_time_ms.saturating_mul(u64::from(args.time_scale));
        chain
            .set_chain_time_per_slot(chain_ms_per_slot)
            .await
            .map_err(|e| fail("speeding up the chain's clock", e))?;
        chain
            .set_block_production_mode(paychan_localnet::BlockProductionMode::Clock)
            .map_err(|e| fail("starting the chain's clock", e))?;

        // The settler's loop again, until the end.
        self.server.backend.resume_settler();

        let api = &self.server.api;
        let network = &self.server.setup.network;
        let payee = self.parties.payee.pubkey();
        let price = args.price;
        let grace_wall = GRACE_PERIOD_SECS as f64 / f64::from(args.time_scale);
        let info = json!({
            "api": format!("{api}{QUOTE_PATH}"),
            "health": format!("{api}/health"),
            "rpc_url": chain.rpc_url(),
            "ws_url": chain.ws_url(),
            "network": network,
            "program_id": chain.program_id().to_string(),
            "mint": mint.to_string(),
            "decimals": MINT_DECIMALS,
            "payee": payee.to_string(),
            "price": price,
            "min_grace_period_seconds": GRACE_PERIOD_SECS,
            "min_deposit": price.saturating_mul(10),
            "faucet": {
                "keypair": faucet_file.display().to_string(),
                "pubkey": faucet.pubkey().to_string(),
                "lamports": FAUCET_LAMPORTS,
                "token_account": faucet_tokens.to_string(),
                "tokens": FAUCET_TOKENS,
            },
            "time_scale": args.time_scale,
            "slot_time_ms": self.slot_time_ms,
            "grace_period_wall_seconds": grace_wall,
        });
        if ctx.json {
            println!("{}", json!({ "serving": info }));
        } else {
            let rpc = chain.rpc_url();
            let keypair = faucet_file.display();
            println!(
                "\nserving: paywalled API {api}{QUOTE_PATH} (402 without payment) until Ctrl-C\n\
                 \x20 rpc url   {rpc} (ws {ws})\n\
                 \x20 network   {network}\n\
                 \x20 mint      {mint} ({MINT_DECIMALS} decimals), payee {payee}, price {price} base units\n\
                 \x20 faucet    {keypair}: {faucet_pk} holds 10 SOL and {tokens} USDC (token account {faucet_tokens})\n\
                 \x20 clock     a block every {slot} ms, the chain's clock runs {scale}x: a {grace} s grace period ends {grace_wall:.0} s after a close request\n\
                 \n\
                 pay from it, then get the rest back:\n\
                 \x20 paychan --rpc-url {rpc} --keypair {keypair} channel open --payee {payee} --mint {mint} --deposit 0.05 --grace-period {grace}\n\
                 \x20 (sign vouchers with the session key it writes, or use paychan-client's agent with this keypair, network and mint)\n\
                 \x20 paychan --rpc-url {rpc} --keypair {keypair} channel request-close --channel <CHANNEL>\n\
                 \x20 the settler then closes a channel it holds a voucher for at once; otherwise\n\
                 \x20 paychan --rpc-url {rpc} --keypair {keypair} channel finalize --channel <CHANNEL>   (after the grace period)",
                ws = chain.ws_url(),
                faucet_pk = faucet.pubkey(),
                tokens = usdc(FAUCET_TOKENS),
                slot = self.slot_time_ms,
                scale = args.time_scale,
                grace = GRACE_PERIOD_SECS,
            );
        }
        shutdown_signal().await;
        self.server
            .backend
            .pause_settler()
            .await
            .map_err(|e| fail("settler task", e))
    }

    /// The end: the HTTP server, the backend (settler, updater, store), the
    /// agent, the chain.
    async fn shut_down(self, agent: PaychanClient) -> Result<(), CliError> {
        let Server {
            backend,
            stop,
            task,
            ..
        } = self.server;
        let _ = stop.send(());
        let _ = task.await;
        backend.shutdown().await;
        drop(agent);
        self.chain
            .shutdown()
            .map_err(|e| fail("stopping the local chain", e))?;
        drop(self.dir);
        Ok(())
    }
}
