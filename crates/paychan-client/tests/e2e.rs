//! End to end on the embedded chain: the paying agent (`PaychanClient` on
//! reqwest) against an axum server behind the real paywall (channels over
//! RPC with the websocket subscription, the redb store committing every
//! voucher before the 200), then the settler putting everything the store
//! accepted on chain.
//!
//! 1. 1,000 sequential paid requests: the store holds exactly 1,000 × price,
//!    every answer is a 200 whose `PAYMENT-RESPONSE` says so, and the client's
//!    files agree with the store.
//! 2. Another agent restarted halfway (500, dropped without a flush, a new
//!    client from the same state directory, 500): still exactly 1,000 × price;
//!    the one voucher re-sent after the restart is refused as spent (not
//!    charged) and the client resynchronises.
//! 3. 16 concurrent requests at a time over 4 channels, several rounds: every
//!    one served, exactly 4 channels, exactly requests × price.
//! 4. A settler sweep: the payee's token account holds the total accepted.
//!
//! Run with `-- --nocapture` for the time per phase.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::{
    collections::BTreeMap,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{Extension, Router, http::StatusCode, routing::get};
use paychan_client::{ClientConfig, PaychanClient, Phase, StateDir};
use paychan_localnet::LocalChain;
use paychan_sdk::Pubkey;
use paychan_settler::RunMode;
use paychan_verifier::{Receipt, VoucherStore, store::RedbStore};
use paychan_x402::{codec, v2};
use reqwest_middleware::{ClientWithMiddleware, Middleware, Next};
use solana_signer::Signer;

use common::{
    PRICE, Payer, Tokens, charged, get_200, payee_with_redb_paywall, serve, start, sweeper,
};

const SEQUENTIAL: u64 = 1_000;
const CONCURRENT: usize = 16;
const ROUNDS: usize = 4;
const CHANNELS: usize = 4;
const PAYER_TOKENS: u64 = 5_000_000;

/// What reached the wire below the paying middleware.
#[derive(Default, Debug)]
struct Wire {
    /// Requests without a payment that were answered 402 (offer discovery).
    unpaid_402: AtomicU64,
    /// Paid requests answered 402 (a refused voucher): `error` and the
    /// `lastAccepted` hint of each.
    refused: std::sync::Mutex<Vec<(Option<String>, Option<String>)>>,
    /// Paid requests answered otherwise.
    paid: AtomicU64,
}

impl Wire {
    /// (discoveries, refusals, paid answers).
    fn counts(&self) -> (u64, usize, u64) {
        (
            self.unpaid_402.load(Ordering::Relaxed),
            self.refused.lock().unwrap().len(),
            self.paid.load(Ordering::Relaxed),
        )
    }
}

/// Counts every request the paying middleware sends (it runs inside it).
#[derive(Clone)]
struct Counter(Arc<Wire>);

#[async_trait::async_trait]
impl Middleware for Counter {
    async fn handle(
        &self,
        req: reqwest::Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let with_payment = req.headers().contains_key("payment-signature");
        let res = next.run(req, extensions).await?;
        match (with_payment, res.status() == StatusCode::PAYMENT_REQUIRED) {
            (false, true) => {
                self.0.unpaid_402.fetch_add(1, Ordering::Relaxed);
            }
            (true, true) => {
                let required: v2::PaymentRequired = codec::decode(
                    res.headers()
                        .get("payment-required")
                        .expect("PAYMENT-REQUIRED on a refusal")
                        .as_bytes(),
                )
                .unwrap();
                let last = required
                    .extensions
                    .as_ref()
                    .and_then(|e| e["paychan"]["lastAccepted"].as_str().map(String::from));
                self.0.refused.lock().unwrap().push((required.error, last));
            }
            (true, false) => {
                self.0.paid.fetch_add(1, Ordering::Relaxed);
            }
            (false, false) => {}
        }
        Ok(res)
    }
}

fn agent(client: &PaychanClient, wire: &Arc<Wire>) -> ClientWithMiddleware {
    client
        .http_client_builder(reqwest::Client::builder())
        .unwrap()
        .with(Counter(wire.clone()))
        .build()
}

/// A payer's client configuration.
impl Payer {
    async fn client(&self, chain: &LocalChain, network: &str, deposit: u64) -> PaychanClient {
        let mut c = ClientConfig::new(
            chain.rpc_url(),
            self.key.insecure_clone(),
            network,
            chain.mint(),
            self.dir.path(),
        );
        c.payer_tokens = Some(self.tokens);
        c.max_price = 2 * PRICE;
        c.budget = PAYER_TOKENS;
        c.deposit = deposit;
        // One top-up on the way through 1,000 requests of a 600,000 deposit.
        c.top_up_threshold = 50 * PRICE;
        c.top_up_amount = deposit;
        c.max_channels_per_payee = CHANNELS;
        PaychanClient::new(c).await.unwrap()
    }
}

/// A new payer, its client with channels of `deposit`, and its agent.
async fn new_agent(
    chain: &LocalChain,
    network: &str,
    deposit: u64,
) -> (Payer, PaychanClient, Arc<Wire>, ClientWithMiddleware) {
    let payer = Payer::new(chain, Tokens::Fresh(PAYER_TOKENS)).await;
    let client = payer.client(chain, network, deposit).await;
    let wire = Arc::new(Wire::default());
    let http = agent(&client, &wire);
    (payer, client, wire, http)
}

/// One paid GET: a 200 whose `PAYMENT-RESPONSE` reports the price as charged.
async fn paid_get(http: &ClientWithMiddleware, url: &str, network: &str, payer: &Pubkey) {
    let res = get_200(http, url).await;
    let header = res
        .headers()
        .get("payment-response")
        .expect("PAYMENT-RESPONSE on a paid answer");
    let settle: v2::SettleResponse = codec::decode(header.as_bytes()).unwrap();
    assert_eq!(
        settle,
        v2::SettleResponse {
            success: true,
            error_reason: None,
            error_message: None,
            payer: Some(payer.to_string()),
            transaction: String::new(),
            network: network.to_owned(),
            amount: Some(PRICE.to_string()),
            extensions: None,
        }
    );
    assert_eq!(res.text().await.unwrap(), format!("charged {PRICE}"));
}

/// The store's latest cumulative amount per channel of `client`.
async fn accepted_by_server(client: &PaychanClient, store: &RedbStore) -> BTreeMap<Pubkey, u64> {
    let mine: Vec<Pubkey> = client
        .channels()
        .await
        .unwrap()
        .iter()
        .map(|i| i.state.address)
        .collect();
    store
        .all_latest()
        .unwrap()
        .into_iter()
        .filter(|a| mine.contains(&a.channel()))
        .map(|a| (a.channel(), a.voucher.voucher.cumulative_amount))
        .collect()
}

/// The client's files agree with the store: every voucher it signed is the
/// one the server holds, and (after a flush) it knows each was accepted.
async fn files_agree(client: &PaychanClient, dir: &Path, server: &BTreeMap<Pubkey, u64>) {
    let signed = |dir: &Path| -> BTreeMap<Pubkey, (u64, u64, Phase)> {
        StateDir::open(dir)
            .unwrap()
            .load()
            .unwrap()
            .into_iter()
            .map(|(s, _)| (s.address, (s.signed, s.accepted, s.phase)))
            .collect()
    };
    // Written before each voucher left: `signed` is already the server's amount.
    let before = signed(dir);
    assert_eq!(
        before
            .iter()
            .map(|(k, v)| (*k, v.0))
            .collect::<BTreeMap<_, _>>(),
        *server
    );
    client.flush().await.unwrap();
    let after = signed(dir);
    assert_eq!(
        after,
        server
            .iter()
            .map(|(k, v)| (*k, (*v, *v, Phase::Open)))
            .collect::<BTreeMap<_, _>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pays_settles_and_never_double_charges() {
    let started = Instant::now();
    let (chain, network) = start().await;
    // The server: the paywall over RPC channel snapshots and the redb store.
    let (payee, payee_tokens, redb) = payee_with_redb_paywall(&chain, &network, PRICE).await;
    let store = redb.server.store.clone();
    let together = Arc::new(tokio::sync::Barrier::new(CHANNELS));
    let app = Router::new()
        .route("/paid", get(charged))
        .route(
            "/together",
            // Answers only once 4 paid requests are in it at the same time:
            // 4 channels must be leased at once.
            get(move |Extension(r): Extension<Receipt>| {
                let together = together.clone();
                async move {
                    together.wait().await;
                    format!("charged {}", r.charged)
                }
            }),
        )
        .route_layer(redb.server.paywall.layer(PRICE));
    let base = serve(app).await;
    let paid_url = format!("{base}/paid");
    eprintln!("setup (chain, server): {:?}", started.elapsed());

    // 1. 1,000 sequential paid requests.
    let phase = Instant::now();
    let (a, client, wire, http) = new_agent(&chain, &network, 600_000).await;
    for _ in 0..SEQUENTIAL {
        paid_get(&http, &paid_url, &network, &a.key.pubkey()).await;
    }
    let elapsed = phase.elapsed();
    eprintln!(
        "1. {SEQUENTIAL} sequential paid requests: {elapsed:?} ({:.0} requests/s)",
        SEQUENTIAL as f64 / elapsed.as_secs_f64()
    );
    let server_a = accepted_by_server(&client, &store).await;
    assert_eq!(server_a.len(), 1, "one channel for sequential requests");
    assert_eq!(server_a.values().sum::<u64>(), SEQUENTIAL * PRICE);
    assert_eq!(
        wire.counts(),
        (1, 0, SEQUENTIAL),
        "one offer discovery, then every voucher pre-paid and accepted"
    );
    assert_eq!(client.budget().spent, SEQUENTIAL * PRICE);
    let info = &client.channels().await.unwrap()[0];
    assert_eq!(info.onchain_deposit, Some(1_200_000), "topped up once");
    files_agree(&client, a.dir.path(), &server_a).await;
    drop((http, client));

    // 2. Another agent, restarted halfway from its state directory.
    let phase = Instant::now();
    let (b, client, wire, http) = new_agent(&chain, &network, 600_000).await;
    for _ in 0..SEQUENTIAL / 2 {
        paid_get(&http, &paid_url, &network, &b.key.pubkey()).await;
    }
    drop((http, client));
    let client = b.client(&chain, &network, 600_000).await;
    assert_eq!(client.budget().spent, SEQUENTIAL / 2 * PRICE);
    let http = agent(&client, &wire);
    for _ in 0..SEQUENTIAL / 2 {
        paid_get(&http, &paid_url, &network, &b.key.pubkey()).await;
    }
    let elapsed = phase.elapsed();
    eprintln!(
        "2. {} + restart + {} paid requests: {elapsed:?} ({:.0} requests/s)",
        SEQUENTIAL / 2,
        SEQUENTIAL / 2,
        SEQUENTIAL as f64 / elapsed.as_secs_f64()
    );
    let server_b = accepted_by_server(&client, &store).await;
    assert_eq!(server_b.len(), 1);
    assert_eq!(
        server_b.values().sum::<u64>(),
        SEQUENTIAL * PRICE,
        "no double charge across the restart"
    );
    // The first client was dropped without a flush (as in a crash): its
    // files knew 499 vouchers accepted and 500 signed, so the new client
    // re-sent the 500th voucher. The server refused it as already spent
    // (nothing charged) with `lastAccepted` = 500 × price, and the client
    // resynchronised and paid the 501st. No other refusal, no extra payment.
    assert_eq!(
        wire.counts(),
        (2, 1, SEQUENTIAL),
        "one offer discovery per client, one resynchronisation"
    );
    assert_eq!(
        wire.refused.lock().unwrap()[0],
        (
            Some("invalid_payment_amount".to_owned()),
            Some((SEQUENTIAL / 2 * PRICE).to_string())
        )
    );
    assert_eq!(client.budget().spent, SEQUENTIAL * PRICE);
    files_agree(&client, b.dir.path(), &server_b).await;
    drop((http, client));

    // 3. 16 concurrent requests at a time over 4 channels.
    let phase = Instant::now();
    let (c, client, wire, http) = new_agent(&chain, &network, 100_000).await;
    let together_url = format!("{base}/together");
    let c_payer = c.key.pubkey();
    for _ in 0..ROUNDS {
        let requests = (0..CONCURRENT).map(|_| paid_get(&http, &together_url, &network, &c_payer));
        tokio::time::timeout(
            Duration::from_secs(60),
            futures_util::future::join_all(requests),
        )
        .await
        .expect("every concurrent request is served");
    }
    let total_c = (CONCURRENT * ROUNDS) as u64;
    let elapsed = phase.elapsed();
    eprintln!(
        "3. {ROUNDS} rounds of {CONCURRENT} concurrent paid requests over {CHANNELS} channels: \
         {elapsed:?} ({:.0} requests/s)",
        total_c as f64 / elapsed.as_secs_f64()
    );
    let server_c = accepted_by_server(&client, &store).await;
    assert_eq!(
        server_c.len(),
        CHANNELS,
        "exactly 4 channels for this agent"
    );
    assert_eq!(server_c.values().sum::<u64>(), total_c * PRICE);
    let (discovered, refused, paid) = wire.counts();
    assert_eq!((refused, paid), (0, total_c), "no refused voucher");
    assert!(
        (1..=CONCURRENT as u64).contains(&discovered),
        "only the first round discovers the offer: {discovered}"
    );
    assert_eq!(client.budget().spent, total_c * PRICE);
    files_agree(&client, c.dir.path(), &server_c).await;
    drop((http, client));

    // Every accepted voucher is on the three agents' channels.
    let all = store.all_latest().unwrap();
    assert_eq!(all.len(), 2 + CHANNELS);
    let total: u64 = all
        .iter()
        .map(|a| a.voucher.voucher.cumulative_amount)
        .sum();
    assert_eq!(total, (2 * SEQUENTIAL + total_c) * PRICE);

    // 4. The settler sweeps the same store: the payee holds the total accepted.
    let phase = Instant::now();
    let settler = sweeper(&chain, &payee, store.clone());
    let report = settler.run_once(RunMode::Sweep).await.unwrap();
    eprintln!(
        "4. settler sweep: {:?}, {} transactions, {} channels",
        phase.elapsed(),
        report.transactions.len(),
        report.channels_settled()
    );
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.channels_settled(), 2 + CHANNELS);
    assert_eq!(report.value_settled(), total);
    assert_eq!(chain.token_balance(&payee_tokens).await.unwrap(), total);
    // Every channel's on-chain `settled` is its latest accepted voucher.
    for accepted in &all {
        let onchain = chain.channel(&accepted.channel()).await.unwrap();
        assert_eq!(onchain.settled, accepted.voucher.voucher.cumulative_amount);
    }
    // A second sweep finds nothing left to settle.
    let again = settler.run_once(RunMode::Sweep).await.unwrap();
    assert!(again.transactions.is_empty());
    assert_eq!(chain.token_balance(&payee_tokens).await.unwrap(), total);
    eprintln!("total: {:?}", started.elapsed());
}
