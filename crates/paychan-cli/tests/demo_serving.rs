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
use common::Run;
use std::{
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use paychan_client::{ClientConfig, PaychanClient};
use paychan_localnet::RpcClient;
use paychan_sdk::Pubkey;
use serde_json::Value;
use solana_signer::Signer;
use tokio::io::AsyncBufReadExt;

const BIN: &str = env!("CARGO_BIN_EXE_paychan");

fn command(home: &Path, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(BIN);
    for var in [
        "PAYCHAN_CONFIG",
        "PAYCHAN_RPC_URL",
        "PAYCHAN_KEYPAIR",
        "PAYCHAN_PROGRAM_ID",
        "PAYCHAN_COMMITMENT",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("HOME", home).current_dir(home).args(args);
    cmd
}

async fn paychan(home: &Path, args: &[&str]) -> Run {
    let out = command(home, args).output().await.unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

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
    let mut demo = command(
        home,
        &[
            "demo",
            "--requests",
            "10",
            "--concurrency",
            "2",
            "--keep-serving",
            "--faucet-keypair",
            faucet_file.to_str().unwrap(),
            "--json",
        ],
    );
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
    let keypair_s = faucet_file.to_str().unwrap().to_string();
    let faucet_bytes: Vec<u8> =
        serde_json::from_str(&std::fs::read_to_string(&faucet_file).unwrap()).unwrap();
    let payer = solana_keypair::Keypair::try_from(faucet_bytes.as_slice()).unwrap();
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
    let base = |extra: &[&str]| {
        let mut all = vec!["--rpc-url", &rpc_url, "--keypair", &keypair_s, "--json"];
        all.extend_from_slice(extra);
        all.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        paychan(home, &args).await
    };
    run(base(&[
        "channel",
        "request-close",
        "--channel",
        &paid_channel,
    ]))
    .await
    .ok();
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
    let status = run(base(&["channel", "status", "--channel", &paid_channel])).await;
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
    let opened = run(base(&[
        "channel",
        "open",
        "--payee",
        &payee_s,
        "--mint",
        &mint_s,
        "--deposit",
        "0.02",
        "--grace-period",
        "900",
    ]))
    .await
    .ok()
    .json();
    let unpaid = opened["channel"].as_str().unwrap().to_string();
    assert_eq!(
        token_balance(&rpc, &payer_tokens).await,
        start - 5 * price - 20_000
    );
    let requested = run(base(&["channel", "request-close", "--channel", &unpaid]))
        .await
        .ok()
        .json();
    let finalize_after = requested["finalize_after"].as_i64().unwrap();
    let early = run(base(&["channel", "finalize", "--channel", &unpaid])).await;
    assert_eq!(early.code, 4, "{early:?}");
    assert_eq!(early.json()["error"]["name"], "GracePeriodActive");
    let waited = Instant::now();
    let finalized = loop {
        let attempt = run(base(&["channel", "finalize", "--channel", &unpaid])).await;
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
    let pid = demo.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(30), demo.wait())
        .await
        .expect("stops within 30 s")
        .unwrap();
    assert!(status.success(), "{status:?}");
}
