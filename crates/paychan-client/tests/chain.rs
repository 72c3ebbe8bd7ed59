//! The paying agent against the real paywall (`paychan_x402::server`) on the
//! embedded chain: open on the first 402, pre-payment, top-up, a 5xx credit,
//! concurrency over two channels, a restart, a lying server and the budget.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{Router, http::StatusCode, routing::get};
use paychan_client::{ClientConfig, ClientError, PaychanClient, Phase};
use paychan_localnet::LocalChain;
use paychan_sdk::Pubkey;
use paychan_verifier::{MemoryStore, VoucherStore};
use paychan_x402::{codec, v2};
use reqwest_middleware::ClientWithMiddleware;
use solana_keypair::Keypair;
use solana_signer::Signer;

use common::{PRICE, SOL, Tokens, extra, get_200, http, party, rpc_paywall, serve, start};

const PAYER_TOKENS: u64 = 1_000_000;
const DEPOSIT: u64 = 20_000;
const BUDGET: u64 = 60_000;

fn config(
    chain: &LocalChain,
    payer: &Keypair,
    tokens: Pubkey,
    network: &str,
    dir: &std::path::Path,
) -> ClientConfig {
    let mut c = ClientConfig::new(
        chain.rpc_url(),
        payer.insecure_clone(),
        network,
        chain.mint(),
        dir,
    );
    c.payer_tokens = Some(tokens);
    c.max_price = 2 * PRICE;
    c.budget = BUDGET;
    c.deposit = DEPOSIT;
    c.top_up_threshold = 5 * PRICE;
    c.top_up_amount = DEPOSIT;
    c.max_channels_per_payee = 2;
    c
}

async fn get_ok(http: &ClientWithMiddleware, url: &str) -> String {
    let res = get_200(http, url).await;
    assert!(res.headers().contains_key("payment-response"));
    res.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pays_a_real_paywall_within_budget() {
    let started = Instant::now();
    let (chain, network) = start().await;
    let mint = chain.mint();
    let payee = Keypair::new().pubkey();
    let payer = party(&chain, 10 * SOL, Tokens::Fresh(PAYER_TOKENS)).await;
    let (payer, tokens) = (payer.key, payer.tokens);

    // The server: the real paywall over RPC channel snapshots.
    let server = rpc_paywall(&chain, &network, payee, MemoryStore::default(), PRICE);
    let (paywall, store) = (server.paywall, server.store);
    let extra = extra(&payee);
    let pair = Arc::new(tokio::sync::Barrier::new(2));
    let flaky_calls = Arc::new(AtomicUsize::new(0));
    let flaky = flaky_calls.clone();
    let app = Router::new()
        .route("/paid", get(|| async { "paid content" }))
        .route("/stream", axum::routing::post(|| async { "streamed" }))
        .route(
            "/flaky",
            get(move || {
                let n = flaky.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n == 0 {
                        (StatusCode::INTERNAL_SERVER_ERROR, "boom")
                    } else {
                        (StatusCode::OK, "recovered")
                    }
                }
            }),
        )
        .route(
            "/pair",
            get(move || {
                let pair = pair.clone();
                // Answers only once two requests are in flight at the same time.
                async move {
                    pair.wait().await;
                    "pair"
                }
            }),
        )
        .route_layer(paywall.layer(PRICE));
    let base = serve(app).await;
    let server_total = || -> u64 {
        store
            .all_latest()
            .unwrap()
            .iter()
            .map(|a| a.voucher.voucher.cumulative_amount)
            .sum()
    };

    let dir = tempfile::tempdir().unwrap();
    let client = PaychanClient::new(config(&chain, &payer, tokens, &network, dir.path()))
        .await
        .unwrap();
    let agent = http(&client);

    // Without the middleware the route is a 402 with our offer.
    let plain = reqwest::get(format!("{base}/paid")).await.unwrap();
    assert_eq!(plain.status(), StatusCode::PAYMENT_REQUIRED);

    // A: 30 sequential requests, one channel, one top-up on the way.
    for _ in 0..30 {
        assert_eq!(
            get_ok(&agent, &format!("{base}/paid")).await,
            "paid content"
        );
    }
    assert_eq!(server_total(), 30 * PRICE);
    let infos = client.channels().await.unwrap();
    assert_eq!(infos.len(), 1);
    let first = infos[0].state.address;
    assert_eq!(infos[0].state.payee, payee);
    assert_eq!(infos[0].state.grace_period, 900);
    assert_eq!(
        infos[0].onchain_deposit,
        Some(2 * DEPOSIT),
        "topped up once"
    );
    assert_eq!(infos[0].state.deposit, 2 * DEPOSIT);
    assert_eq!(
        (infos[0].state.accepted, infos[0].state.signed),
        (30 * PRICE, 30 * PRICE)
    );
    assert_eq!(
        chain.token_balance(&tokens).await.unwrap(),
        PAYER_TOKENS - 2 * DEPOSIT
    );
    assert_eq!(client.budget().committed, 2 * DEPOSIT);
    assert_eq!(client.budget().spent, 30 * PRICE);

    // B: a 5xx keeps the voucher as a credit; the next request re-sends it
    // and is served without a second charge.
    let res = agent.get(format!("{base}/flaky")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(server_total(), 31 * PRICE);
    assert!(client.channels().await.unwrap()[0].state.credit);
    assert_eq!(get_ok(&agent, &format!("{base}/flaky")).await, "recovered");
    assert_eq!(
        server_total(),
        31 * PRICE,
        "the credit was not charged again"
    );
    assert_eq!(
        get_ok(&agent, &format!("{base}/paid")).await,
        "paid content"
    );
    assert_eq!(server_total(), 32 * PRICE);

    // C: concurrent requests over at most 2 channels: two that can only be
    // answered together (so they need a channel each), and 6 more waiting
    // for a lease.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let agent = agent.clone();
        let (url, body) = if i < 2 {
            (format!("{base}/pair"), "pair")
        } else {
            (format!("{base}/paid"), "paid content")
        };
        tasks.push(tokio::spawn(async move {
            assert_eq!(get_ok(&agent, &url).await, body);
        }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(30), t)
            .await
            .expect("no deadlock")
            .unwrap();
    }
    assert_eq!(server_total(), 40 * PRICE);
    let infos = client.channels().await.unwrap();
    assert_eq!(infos.len(), 2, "a second channel for concurrency");
    let second = infos.iter().find(|i| i.state.address != first).unwrap();
    assert_eq!(second.onchain_deposit, Some(DEPOSIT));
    assert_eq!(client.budget().committed, 3 * DEPOSIT);
    assert!(client.budget().committed <= BUDGET);

    // D: restart from the state directory (nothing flushed): continues from
    // the persisted cumulative amounts, resynchronising where the server is ahead.
    drop(agent);
    drop(client);
    let client = PaychanClient::new(config(&chain, &payer, tokens, &network, dir.path()))
        .await
        .unwrap();
    assert_eq!(client.budget().committed, 3 * DEPOSIT);
    let agent = http(&client);
    for _ in 0..5 {
        assert_eq!(
            get_ok(&agent, &format!("{base}/paid")).await,
            "paid content"
        );
    }
    assert_eq!(
        server_total(),
        45 * PRICE,
        "no double charge after the restart"
    );
    client.flush().await.unwrap();
    for info in client.channels().await.unwrap() {
        let latest = store.latest(&info.state.address).unwrap().unwrap();
        // Every signed voucher reached the server; a channel unused since
        // the restart may still lag on what it knows was accepted.
        assert_eq!(info.state.signed, latest.voucher.voucher.cumulative_amount);
        assert!(info.state.accepted <= info.state.signed);
        assert_eq!(info.state.phase, Phase::Open);
    }

    // E: a lying server (a hint far above anything signed) gets nothing more
    // than the one price it asked for.
    let evil_extra = extra.clone();
    let evil_network = network.clone();
    let evil = Router::new().route(
        "/evil",
        get(move |headers: axum::http::HeaderMap| {
            let (extra, network) = (evil_extra.clone(), evil_network.clone());
            async move {
                let channel = headers
                    .get("payment-signature")
                    .and_then(|h| codec::decode::<v2::PaymentPayload>(h.as_bytes()).ok())
                    .and_then(|p| {
                        p.payload
                            .get("voucher")?
                            .get("channelId")?
                            .as_str()
                            .map(String::from)
                    });
                let required = v2::PaymentRequired {
                    x402_version: 2,
                    error: Some("invalid_payment_amount".into()),
                    resource: v2::Resource {
                        url: "/evil".into(),
                        description: None,
                        mime_type: None,
                    },
                    accepts: vec![v2::PaymentRequirements {
                        scheme: "paychan".into(),
                        network,
                        amount: PRICE.to_string(),
                        asset: mint.to_string(),
                        pay_to: payee.to_string(),
                        max_timeout_seconds: 60,
                        extra: Some(serde_json::to_value(extra).unwrap()),
                    }],
                    extensions: channel.map(|c| {
                        serde_json::json!({"paychan": {
                        "reason": "invalid_payment_amount", "channel": c,
                        "lastAccepted": "900000000", "required": "900001000"}})
                    }),
                };
                (
                    StatusCode::PAYMENT_REQUIRED,
                    [("payment-required", codec::encode(&required).unwrap())],
                    "",
                )
            }
        }),
    );
    let evil_base = serve(evil).await;
    let spent_before = client.budget().spent;
    for _ in 0..3 {
        let res = agent.get(format!("{evil_base}/evil")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::PAYMENT_REQUIRED);
    }
    assert!(
        client.budget().spent <= spent_before + PRICE,
        "at most one price signed"
    );
    for info in client.channels().await.unwrap() {
        assert!(info.state.signed <= info.state.accepted + PRICE);
    }

    // A request whose body cannot be cloned is not retried: the 402 comes back.
    let stream = futures_util::stream::once(async { Ok::<_, std::io::Error>("body") });
    let res = agent
        .post(format!("{base}/stream"))
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYMENT_REQUIRED);
    assert!(res.headers().contains_key("payment-required"));

    // F: pay until the budget stops it; the budget is never exceeded.
    let mut served = 0u64;
    let err = loop {
        match agent.get(format!("{base}/paid")).send().await {
            Ok(res) if res.status() == StatusCode::OK => served += 1,
            Ok(res) => panic!("unexpected {}", res.status()),
            Err(e) => break e,
        }
        assert!(served < 100, "the budget must stop the agent");
    };
    let reqwest_middleware::Error::Middleware(err) = err else {
        panic!("{err}")
    };
    assert!(
        matches!(
            err.downcast_ref::<ClientError>(),
            Some(ClientError::BudgetExhausted { .. })
        ),
        "{err}"
    );
    let budget = client.budget();
    assert!(
        budget.spent <= BUDGET && budget.committed <= BUDGET,
        "{budget:?}"
    );
    assert!(server_total() <= BUDGET);
    assert_eq!(server_total(), budget.spent.min(server_total()));
    assert!(served >= 10, "served {served} more");
    let deposits: u64 = client
        .channels()
        .await
        .unwrap()
        .iter()
        .map(|i| i.onchain_deposit.unwrap())
        .sum();
    assert!(deposits <= BUDGET);
    assert_eq!(
        chain.token_balance(&tokens).await.unwrap(),
        PAYER_TOKENS - deposits
    );

    // The plain API: nothing more can be escrowed within the budget; a close
    // request starts the grace period and takes the channel out of use.
    assert!(matches!(
        client.top_up(&first, 1).await,
        Err(ClientError::BudgetExhausted { .. })
    ));
    assert!(matches!(
        client.open_channel(&payee, 1_000, 600).await,
        Err(ClientError::BudgetExhausted { .. })
    ));
    client.request_close(&first).await.unwrap();
    let info = client
        .channels()
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.state.address == first)
        .unwrap();
    assert_eq!(info.state.phase, Phase::Closing);
    assert_eq!(info.onchain_status.as_deref(), Some("closing"));
    assert!(matches!(
        client.top_up(&first, 1).await,
        Err(ClientError::ChannelNotOpen(_))
    ));

    // Another agent (its own state directory and budget) opens and tops up
    // by hand.
    let other_dir = tempfile::tempdir().unwrap();
    let other = PaychanClient::new(config(&chain, &payer, tokens, &network, other_dir.path()))
        .await
        .unwrap();
    let before = chain.token_balance(&tokens).await.unwrap();
    let manual = other.open_channel(&payee, 5_000, 60).await.unwrap();
    other.top_up(&manual, 2_000).await.unwrap();
    let info = &other.channels().await.unwrap()[0];
    assert_eq!(info.state.address, manual);
    assert_eq!(info.onchain_deposit, Some(7_000));
    assert_eq!(
        info.state.grace_period, 600,
        "raised to the program's minimum"
    );
    assert_eq!(chain.token_balance(&tokens).await.unwrap(), before - 7_000);
    assert_eq!(other.budget().committed, 7_000);
    println!("done in {:?}", started.elapsed());
}
