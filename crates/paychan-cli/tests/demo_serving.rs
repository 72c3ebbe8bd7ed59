//! `paychan demo --keep-serving` serves an outside agent for real: the
//! agent is this test process plus `paychan` subprocesses, and uses only
//! what the demo prints on stdout (URLs, mint, payee, the faucet keypair
//! file) and public interfaces: HTTP, JSON-RPC, the `paychan` binary and
//! the `paychan-client` library. It pays, asks for its money back, and is
//! refunded twice over: by the settler's close (a channel with a voucher)
//! and by its own `finalize` once the grace period has passed on the
//! chain's running clock (a channel it never paid from).
#![cfg(feature = "demo")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{Paychan, command, read_keypair, terminate};
use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use paychan_client::{ClientConfig, PaychanClient};
use paychan_localnet::RpcClient;
use paychan_sdk::Pubkey;
use serde_json::Value;
use solana_signer::Signer;
use tokio::io::AsyncBufReadExt;

async fn token_balance(rpc: &RpcClient, account: &Pubkey) -> u64 {
    rpc.get_token_account_balance(account)
        .await
        .unwrap()
        .amount
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outside_agent_pays_the_serving_demo_and_is_refunded() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let faucet_file = home.join("faucet.json");
    let mut demo = tokio::process::Command::from(command(
        home,
        &[],
        &common::argv(
            "demo --requests 10 --concurrency 2 --keep-serving --faucet-keypair {} --json",
            &[faucet_file.to_str().unwrap()],
        ),
    ));
    demo.stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut demo = demo.spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(demo.stdout.take().unwrap()).lines();
    let (summary, serving) = tokio::time::timeout(Duration::from_secs(180), async {
        let summary = lines.next_line().await.unwrap().expect("a summary line");
        let serving = lines.next_line().await.unwrap().expect("a serving line");
        (summary, serving)
    })
    .await
    .expect("the demo serves within 180 s");
    let summary: Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(summary["paid_requests"], 10, "{summary}");
    let serving: Value = serde_json::from_str(&serving).unwrap();
    let s = &serving["serving"];
    let (api, rpc_url, network) = (
        s["api"].as_str().unwrap().to_string(),
        s["rpc_url"].as_str().unwrap().to_string(),
        s["network"].as_str().unwrap().to_string(),
    );
    let mint: Pubkey = s["mint"].as_str().unwrap().parse().unwrap();
    let payee: Pubkey = s["payee"].as_str().unwrap().parse().unwrap();
    let price = s["price"].as_u64().unwrap();
    assert_eq!(s["faucet"]["keypair"], faucet_file.to_str().unwrap());
    let keypair_s = faucet_file.to_str().unwrap();
    let payer = read_keypair(&faucet_file);
    assert_eq!(s["faucet"]["pubkey"], payer.pubkey().to_string());
    let payer_tokens: Pubkey = s["faucet"]["token_account"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        payer_tokens,
        paychan_client::associated_token_address(
            &payer.pubkey(),
            &mint,
            &paychan_sdk::TOKEN_PROGRAM_ID
        )
    );
    let payee_tokens =
        paychan_client::associated_token_address(&payee, &mint, &paychan_sdk::TOKEN_PROGRAM_ID);

    // The faucet's funds, read over JSON-RPC.
    let rpc = RpcClient::new_with_commitment(
        rpc_url.clone(),
        solana_commitment_config::CommitmentConfig::confirmed(),
    );
    let start = s["faucet"]["tokens"].as_u64().unwrap();
    assert_eq!(token_balance(&rpc, &payer_tokens).await, start);
    assert_eq!(
        rpc.get_balance(&payer.pubkey()).await.unwrap(),
        s["faucet"]["lamports"].as_u64().unwrap()
    );
    let payee_start = token_balance(&rpc, &payee_tokens).await;

    // Unpaid: 402 with the offer.
    let plain = reqwest::get(&api).await.unwrap();
    assert_eq!(plain.status().as_u16(), 402);
    assert!(plain.headers().contains_key("payment-required"));

    // 1. Pay 5 requests from a channel the agent opens itself.
    let mut config = ClientConfig::new(
        &rpc_url,
        payer.insecure_clone(),
        &network,
        mint,
        home.join("agent"),
    );
    config.max_price = price;
    config.deposit = 50 * price;
    config.budget = 100 * price;
    config.max_channels_per_payee = 1;
    config.top_up_threshold = price;
    config.top_up_amount = 10 * price;
    let agent = PaychanClient::new(config).await.unwrap();
    let http = agent.http_client().unwrap();
    for _ in 0..5 {
        let r = http.get(&api).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert!(r.headers().contains_key("payment-response"));
    }
    agent.flush().await.unwrap();
    let channels = agent.channels().await.unwrap();
    assert_eq!(channels.len(), 1);
    let paid_channel = channels[0].state.address.to_string();
    assert_eq!(token_balance(&rpc, &payer_tokens).await, start - 50 * price);

    // 2. Ask for the money back: the settler, holding its voucher, closes it.
    let agent_cli = Paychan::new(
        home,
        &["--rpc-url", &rpc_url, "--keypair", keypair_s, "--json"],
    );
    let request_close = "channel request-close --channel {}";
    agent_cli.run(request_close, &[&paid_channel]).await.ok();
    let waited = Instant::now();
    while token_balance(&rpc, &payer_tokens).await != start - 5 * price {
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "the settler did not close {paid_channel} within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        token_balance(&rpc, &payee_tokens).await,
        payee_start + 5 * price
    );
    let status = agent_cli
        .run("channel status --channel {}", &[&paid_channel])
        .await;
    match status.code {
        0 => assert_eq!(status.json()["status"], "closed", "{status:?}"),
        4 => assert!(status.stderr.contains("does not exist"), "{status:?}"),
        _ => panic!("{status:?}"),
    }

    // 3. A channel opened with the binary and never paid from: the settler
    // holds no voucher for it, so the payer finalizes after the grace period,
    // which the chain's running clock (60x) ends in ~15 s.
    let payee_s = payee.to_string();
    let mint_s = mint.to_string();
    let open = "channel open --payee {} --mint {} --deposit 0.02 --grace-period 900";
    let opened = agent_cli.json(open, &[&payee_s, &mint_s]).await;
    let unpaid = opened["channel"].as_str().unwrap().to_string();
    assert_eq!(
        token_balance(&rpc, &payer_tokens).await,
        start - 5 * price - 20_000
    );
    let requested = agent_cli.json(request_close, &[&unpaid]).await;
    let finalize_after = requested["finalize_after"].as_i64().unwrap();
    let finalize = "channel finalize --channel {}";
    let early = agent_cli.run(finalize, &[&unpaid]).await;
    assert_eq!(early.code, 4, "{early:?}");
    assert_eq!(early.json()["error"]["name"], "GracePeriodActive");
    let waited = Instant::now();
    let finalized = loop {
        let attempt = agent_cli.run(finalize, &[&unpaid]).await;
        if attempt.code == 0 {
            break attempt.json();
        }
        assert_eq!(
            attempt.json()["error"]["name"],
            "GracePeriodActive",
            "{attempt:?}"
        );
        assert!(
            waited.elapsed() < Duration::from_secs(90),
            "the grace period (until {finalize_after}) did not end within 90 s"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    assert_eq!(finalized["refunded"]["amount"], "20000");
    assert!(
        waited.elapsed() < Duration::from_secs(60),
        "900 s of chain time took {:?}",
        waited.elapsed()
    );
    assert_eq!(token_balance(&rpc, &payer_tokens).await, start - 5 * price);

    // SIGTERM ends the demo cleanly.
    terminate(demo).await;
}
