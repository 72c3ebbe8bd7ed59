//! The body of `paychan demo` (feature `demo`): the embedded chain and the
//! whole flow; see `commands::demo`.
use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Router,
    extract::{Request, State},
    middleware::Next,
    response::Response,
    routing::get,
};
use paychan_client::{ClientConfig, PaychanClient};
use paychan_localnet::{LocalChain, LocalChainConfig, MINT_DECIMALS};
use paychan_sdk::Pubkey;
use paychan_sdk::state::ChannelStatus;
use paychan_settler::{MintAccounts, RunMode, Settler, SettlerConfig};
use paychan_verifier::{
    Terms, Verifier, VoucherStore,
    rpc::RpcChannels,
    store::{Durability, RedbStore},
};
use paychan_x402::{
    network::caip2_for_genesis,
    scheme::PaychanExtra,
    server::{Paywall, PaywallConfig},
};
use serde_json::json;
use solana_keypair::Keypair;
use solana_signer::Signer;

use super::{Context, demo::DemoArgs};
use crate::{
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

/// What `--keep-serving` tells outside agents.
struct Serving<'a> {
    api: &'a str,
    network: &'a str,
    payee: Pubkey,
    price: u64,
    slot_time_ms: u64,
}

/// `--keep-serving`: the faucet keypair, the chain's clock, the settler
/// again, the serving lines on stdout; then waits for Ctrl-C or SIGTERM.
async fn keep_serving(
    ctx: &Context,
    args: &DemoArgs,
    chain: &LocalChain,
    settler: &Arc<Settler<Arc<RedbStore>>>,
    dir: &std::path::Path,
    serving: &Serving<'_>,
) -> Result<(), CliError> {
    let mint = chain.mint();
    // The faucet: a keypair file with SOL and the mint's tokens in its
    // associated token account (where the settler's refunds go).
    let faucet = Keypair::new();
    let faucet_file = args
        .faucet_keypair
        .clone()
        .unwrap_or_else(|| dir.join("faucet-payer.json"));
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
    let chain_ms_per_slot = serving
        .slot_time_ms
        .saturating_mul(u64::from(args.time_scale));
    chain
        .set_chain_time_per_slot(chain_ms_per_slot)
        .await
        .map_err(|e| fail("speeding up the chain's clock", e))?;
    chain
        .set_block_production_mode(paychan_localnet::BlockProductionMode::Clock)
        .map_err(|e| fail("starting the chain's clock", e))?;

    // The settler again, until the end: it settles what outside agents
    // pay and closes their channels when they request a close.
    let (stop_settler, settler_stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = {
        let settler = settler.clone();
        tokio::spawn(async move {
            settler
                .run(async {
                    let _ = settler_stopped.await;
                })
                .await;
        })
    };

    let grace_wall = GRACE_PERIOD_SECS as f64 / f64::from(args.time_scale);
    let info = json!({
        "api": format!("{}/api/quote", serving.api),
        "health": format!("{}/health", serving.api),
        "rpc_url": chain.rpc_url(),
        "ws_url": chain.ws_url(),
        "network": serving.network,
        "program_id": chain.program_id().to_string(),
        "mint": mint.to_string(),
        "decimals": MINT_DECIMALS,
        "payee": serving.payee.to_string(),
        "price": serving.price,
        "min_grace_period_seconds": GRACE_PERIOD_SECS,
        "min_deposit": serving.price.saturating_mul(10),
        "faucet": {
            "keypair": faucet_file.display().to_string(),
            "pubkey": faucet.pubkey().to_string(),
            "lamports": FAUCET_LAMPORTS,
            "token_account": faucet_tokens.to_string(),
            "tokens": FAUCET_TOKENS,
        },
        "time_scale": args.time_scale,
        "slot_time_ms": serving.slot_time_ms,
        "grace_period_wall_seconds": grace_wall,
    });
    if ctx.json {
        println!("{}", json!({ "serving": info }));
    } else {
        let rpc = chain.rpc_url();
        let keypair = faucet_file.display();
        println!(
            "\nserving: paywalled API {api}/api/quote (402 without payment) until Ctrl-C\n\
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
            api = serving.api,
            ws = chain.ws_url(),
            network = serving.network,
            payee = serving.payee,
            price = serving.price,
            faucet_pk = faucet.pubkey(),
            tokens = usdc(FAUCET_TOKENS),
            slot = serving.slot_time_ms,
            scale = args.time_scale,
            grace = GRACE_PERIOD_SECS,
        );
    }
    super::server::shutdown_signal().await;
    let _ = stop_settler.send(());
    daemon.await.map_err(|e| fail("settler task", e))?;
    Ok(())
}

/// Runs `paychan demo`.
pub async fn run(ctx: &Context, args: &DemoArgs) -> Result<Report, CliError> {
    let started = Instant::now();
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

    // 1. The chain.
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
    let rpc = chain.rpc_client();
    let genesis = rpc
        .get_genesis_hash()
        .await
        .map_err(|e| fail("getGenesisHash", e))?;
    let network = caip2_for_genesis(&genesis.to_string());
    let mint = chain.mint();
    let token_program = paychan_sdk::TOKEN_PROGRAM_ID;

    // Keys: the API's payee (also the settler's fee payer) and the agent.
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
    // Each lane's channel starts with ~60% of its share, so the agent tops up
    // once along the way.
    let deposit = (total_value / lanes as u64)
        .saturating_mul(3)
        .div_ceil(5)
        .max(args.price.saturating_mul(40));
    let payer_funds = total_value.saturating_mul(4).max(deposit.saturating_mul(8));
    let payer_tokens = chain
        .create_associated_token_account(&payer.pubkey(), payer_funds)
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

    // 2. The paywalled API: snapshots over RPC + websocket, a durable store.
    let dir = tempfile::tempdir().map_err(|source| CliError::Io {
        what: "creating a temporary directory".into(),
        source,
    })?;
    let durability = match args.durability.as_str() {
        "batched" => Durability::Batched {
            interval: Duration::from_millis(5),
        },
        _ => Durability::Sync,
    };
    let store = Arc::new(
        RedbStore::open(dir.path().join("vouchers.redb"), durability)
            .map_err(|e| fail("opening the voucher store", e))?,
    );
    let channels = Arc::new(RpcChannels::new(
        chain.rpc_url(),
        paychan_sdk::ID,
        payee.pubkey(),
    ));
    let updater =
        channels.spawn_updater(Some(chain.ws_url().to_string()), Duration::from_millis(100));
    let mut terms = Terms::new(paychan_sdk::ID, payee.pubkey(), mint, args.price);
    terms.min_grace_period = GRACE_PERIOD_SECS;
    terms.min_deposit = args.price.saturating_mul(10);
    let verifier = Arc::new(Verifier::new(channels.clone(), store.clone(), terms));
    // Its grace period and minimum deposit are the terms' (what is enforced).
    let extra = PaychanExtra {
        program_id: paychan_sdk::ID.to_string(),
        token_program: token_program.to_string(),
        decimals: MINT_DECIMALS,
        grace_period_seconds: GRACE_PERIOD_SECS,
        minimum_deposit: args.price.saturating_mul(10).to_string(),
        fee_payer: Some(payee.pubkey().to_string()),
    };
    let mut paywall_config = PaywallConfig::new(network.clone(), extra);
    paywall_config.description = Some("a fresh quote, 0.001 USDC each".into());
    let paywall = Paywall::new(verifier, paywall_config);
    let served = Arc::new(AtomicU64::new(0));
    let latencies = Latencies::default();
    let counter = served.clone();
    let app = Router::new()
        .route(
            "/api/quote",
            get(move || {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        json!({ "quote": "ship small, settle late", "n": n }).to_string(),
                    )
                }
            }),
        )
        .route_layer(paywall.layer(args.price))
        .route_layer(axum::middleware::from_fn_with_state(
            latencies.clone(),
            time_paid,
        ))
        .route("/health", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .map_err(|source| CliError::Io {
            what: format!("binding 127.0.0.1:{}", args.port),
            source,
        })?;
    let api = format!(
        "http://{}",
        listener.local_addr().map_err(|source| CliError::Io {
            what: "reading the API address".into(),
            source,
        })?
    );
    let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        paychan_x402::server::serve(
            listener,
            app,
            paychan_x402::server::Limits::default(),
            async {
                let _ = api_stopped.await;
            },
        )
        .await
    });

    // 4. The settler, in the background while the agent works.
    let settler_rpc = Arc::new(solana_rpc_client::nonblocking::rpc_client::RpcClient::new(
        chain.rpc_url().to_string(),
    ));
    let mut settler_config = SettlerConfig::new(
        payee.insecure_clone(),
        MintAccounts::new(mint, token_program, args.price.saturating_mul(100)),
    );
    settler_config.interval = Duration::from_millis(250);
    settler_config.sweep_on_start = false;
    settler_config.confirm_poll = Duration::from_millis(10);
    let settler = Arc::new(
        Settler::new(settler_config, store.clone(), settler_rpc)
            .map_err(|e| fail("configuring the settler", e))?,
    );
    let (stop_settler, settler_stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = {
        let settler = settler.clone();
        tokio::spawn(async move {
            settler
                .run(async {
                    let _ = settler_stopped.await;
                })
                .await;
        })
    };

    // 3. The agent.
    let mut client_config = ClientConfig::new(
        chain.rpc_url(),
        payer.insecure_clone(),
        network.clone(),
        mint,
        dir.path().join("agent"),
    );
    client_config.payer_tokens = Some(payer_tokens);
    client_config.max_price = args.price;
    client_config.budget = payer_funds;
    client_config.deposit = deposit;
    client_config.top_up_amount = deposit;
    client_config.top_up_threshold = args.price.saturating_mul(20);
    client_config.max_channels_per_payee = lanes;
    let agent = PaychanClient::new(client_config)
        .await
        .map_err(|e| fail("starting the agent", e))?;
    // Payment headers never follow a redirect to another origin.
    let http = agent
        .http_client()
        .map_err(|e| fail("building the agent's HTTP client", e))?;
    let bar = ctx.progress.bar(args.requests, "paid requests");
    let next = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let first_failure = Arc::new(std::sync::Mutex::new(None::<String>));
    let requests_started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..lanes {
        let (http, next, failed, first_failure, bar) = (
            http.clone(),
            next.clone(),
            failed.clone(),
            first_failure.clone(),
            bar.clone(),
        );
        let url = format!("{api}/api/quote");
        let requests = args.requests;
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
    let requests_elapsed = requests_started.elapsed();
    let failed = failed.load(Ordering::Relaxed);
    if let Some(first) = first_failure.lock().ok().and_then(|f| f.clone()) {
        tracing::warn!(failed, first = %first, "paid requests failed");
    }
    agent
        .flush()
        .await
        .map_err(|e| fail("saving the agent's state", e))?;

    // 5. The agent asks for its money back; the settler closes at once with
    // the final vouchers (no waiting for the grace period).
    let spinner = ctx.progress.spinner("settling and closing");
    let _ = stop_settler.send(());
    daemon.await.map_err(|e| fail("settler task", e))?;
    let mine: Vec<Pubkey> = agent
        .channels()
        .await
        .map_err(|e| fail("listing the agent's channels", e))?
        .iter()
        .map(|c| c.state.address)
        .collect();
    for channel in &mine {
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

    // 6. What happened, read back from the chain.
    let accepted: u64 = store
        .all_latest()
        .map_err(|e| fail("reading the voucher store", e))?
        .iter()
        .map(|a| a.voucher.voucher.cumulative_amount)
        .sum();
    let (mut deposited, mut settled, mut refunded, mut closed) = (0u64, 0u64, 0u64, 0usize);
    for channel in &mine {
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
        .token_balance(&payee_tokens)
        .await
        .map_err(|e| fail("reading the payee's balance", e))?;
    // The refunds land in the agent's associated token account, which
    // funded the deposits: its balance must end at funds − value paid.
    let refund_account =
        crate::chain::associated_token_address(&payer.pubkey(), &mint, &token_program);
    if refund_account != payer_tokens {
        return Err(fail(
            "the agent's token account",
            format!("{payer_tokens} is not its associated token account {refund_account}"),
        ));
    }
    let payer_balance = chain
        .token_balance(&payer_tokens)
        .await
        .map_err(|e| fail("reading the agent's token account", e))?;
    let refund_received = payer_balance
        .saturating_add(deposited)
        .saturating_sub(payer_funds);
    let channel_rent = rpc
        .get_minimum_balance_for_rent_exemption(
            8 + std::mem::size_of::<paychan_sdk::state::Channel>(),
        )
        .await
        .map_err(|e| fail("getMinimumBalanceForRentExemption", e))?
        .saturating_mul(mine.len() as u64);
    let txs = program_transactions(rpc).await?;
    let mut by_kind: BTreeMap<&'static str, (u64, u64)> = BTreeMap::new();
    for tx in &txs {
        let e = by_kind.entry(tx.kind).or_default();
        e.0 += 1;
        e.1 = e.1.saturating_add(tx.fee);
    }
    let fees: u64 = txs.iter().map(|t| t.fee).sum();
    let payee_fees = payee_lamports_start.saturating_sub(
        chain
            .lamports(&payee.pubkey())
            .await
            .map_err(|e| fail("reading the payee", e))?,
    );
    let mut lat = latencies.0.lock().map(|v| v.clone()).unwrap_or_default();
    lat.sort_unstable();
    let paid = args.requests.saturating_sub(failed);
    let lamports_per_request = fees as f64 / paid.max(1) as f64;
    let conserved = settled.saturating_add(refunded) == deposited && refund_received == refunded;
    let all_paid =
        accepted == total_value && settled == total_value && payee_received == total_value;
    let all_closed = closed == mine.len();

    let summary = json!({
        "requests": args.requests,
        "paid_requests": paid,
        "failed_requests": failed,
        "price": args.price,
        "value_paid": accepted,
        "value_paid_usdc": usdc(accepted),
        "expected_value": total_value,
        "channels": mine.len(),
        "deposited": deposited,
        "payee_received": payee_received,
        "settled_on_chain": settled,
        "refunded_to_payer": refunded,
        "refund_received_by_payer": refund_received,
        "payer_tokens_start": payer_funds,
        "payer_tokens_end": payer_balance,
        "channel_rent_lamports_refundable": channel_rent,
        "payee_plus_refund_equals_deposit": conserved,
        "channels_closed": closed,
        "check_latency_us": {
            "p50": percentile(&lat, 0.50),
            "p99": percentile(&lat, 0.99),
            "samples": lat.len(),
            "what": "server side, per paid request: decode, rules, verify_strict, durable redb accept, handler",
            "durability": args.durability,
        },
        "requests_per_second": paid as f64 / requests_elapsed.as_secs_f64().max(1e-9),
        "onchain": {
            "transactions": txs.len(),
            "by_kind": by_kind.iter().map(|(k, (n, f))| (k.to_string(), json!({"count": n, "fee_lamports": f}))).collect::<serde_json::Map<_, _>>(),
            "fee_lamports": fees,
            "payee_fee_lamports": payee_fees,
            "final_settlement_transactions": final_run.transactions.len(),
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
        "total_seconds": started.elapsed().as_secs_f64(),
        "network": network,
        "api": api,
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
            format!("{} USDC (expected {})", usdc(accepted), usdc(total_value)),
        )
        .kv(
            "channels",
            format!("{} opened, {closed} closed cooperatively", mine.len()),
        )
        .kv("deposited", format!("{} USDC", usdc(deposited)))
        .kv("payee received", format!("{} USDC", usdc(payee_received)))
        .kv(
            "refunded to agent",
            format!(
                "{} USDC (in its token account: {})",
                usdc(refunded),
                usdc(refund_received)
            ),
        )
        .kv(
            "payee + refund = deposit",
            if conserved { "yes" } else { "NO" },
        )
        .kv(
            "check latency",
            format!(
                "p50 {} µs, p99 {} µs (server side, redb {})",
                percentile(&lat, 0.50),
                percentile(&lat, 0.99),
                args.durability
            ),
        )
        .kv(
            "throughput",
            format!(
                "{:.0} paid requests/s ({} lanes)",
                paid as f64 / requests_elapsed.as_secs_f64().max(1e-9),
                lanes
            ),
        )
        .kv(
            "on-chain transactions",
            format!(
                "{} ({})",
                txs.len(),
                by_kind
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
                started.elapsed().as_secs_f64(),
                chain.startup_time().as_secs_f64(),
                requests_elapsed.as_secs_f64()
            ),
        );
    let report = Report {
        human: format!(
            "paychan demo: {} paid calls on an embedded chain\n\n{table}",
            args.requests
        ),
        json: summary,
    };

    let problem = if failed > 0 {
        Some(format!("{failed} paid requests failed"))
    } else if !all_paid {
        Some(format!(
            "value mismatch: accepted {accepted}, settled {settled}, payee received {payee_received}, expected {total_value}"
        ))
    } else if !conserved {
        Some(format!(
            "settled {settled} + refunded {refunded} != deposited {deposited}"
        ))
    } else if !all_closed {
        Some(format!("{closed} of {} channels closed", mine.len()))
    } else {
        None
    };
    if let Some(problem) = problem {
        report.print(ctx.json);
        return Err(CliError::Demo(problem));
    }

    if args.keep_serving {
        report.print(ctx.json);
        let serving = Serving {
            api: &api,
            network: &network,
            payee: payee.pubkey(),
            price: args.price,
            slot_time_ms,
        };
        keep_serving(ctx, args, &chain, &settler, dir.path(), &serving).await?;
    }
    let _ = stop_api.send(());
    let _ = server.await;
    updater.abort();
    drop(agent);
    chain
        .shutdown()
        .map_err(|e| fail("stopping the local chain", e))?;
    Ok(if args.keep_serving {
        Report::none()
    } else {
        report
    })
}
