//! The TypeScript client (`clients/ts`, `@paychan/x402-client`) against the
//! real paywall on the embedded chain: stock `@x402/fetch` with the package's
//! `paychan` scheme, run by Node (`clients/ts/test/integration/pay.mjs`),
//! pays an axum route behind `Paywall` (channels over RPC with the websocket
//! subscription, the redb store committing every voucher before the 200);
//! then the settler puts what the store accepted on chain.
//!
//! 1. 200 sequential paid requests on one channel (opened by the TS client
//!    from the IDL, topped up once on the way): every answer is a 200 whose
//!    `PAYMENT-RESPONSE` charges the price, the store holds 200 × price, the
//!    client's state file says the same, and its paid requests per second
//!    are printed. The first request is paid after its 402, the others
//!    ahead (the scheme's transport remembers the offer). Then 100 more by
//!    another payer with paying ahead off: a 402 before every payment, as
//!    `@x402/fetch` alone does.
//! 2. Another payer stopped after 60 requests without writing its state again
//!    (as a crash would), then a new process from the same state file for 60
//!    more: exactly 120 × price, one refusal (the re-sent voucher, as spent)
//!    followed by the resync, nothing paid twice.
//! 3. A payer whose budget ends: the deposit never exceeds it and the
//!    requests past it fail without anything being signed or escrowed.
//! 4. A settler sweep: the payee's token account holds exactly what was
//!    paid, every channel's `settled` is its accepted amount.
//!
//! `typescript_unit_tests_pass` runs the package's own unit tests
//! (`node --test`, what `npm test` runs) so that CI runs them too.
//!
//! Needs Node.js and `npm ci --prefix clients/ts` (scripts/test.sh does it);
//! the tests compile the package (`tsc`) themselves. Run with
//! `-- --nocapture` for the measured rates.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use axum::{Router, routing::get};
use paychan_localnet::{LocalChain, MINT_DECIMALS};
use paychan_sdk::Pubkey;
use paychan_settler::RunMode;
use paychan_verifier::{VoucherStore, store::RedbStore};
use serde_json::{Value, json};
use solana_signer::Signer;

use common::{
    PRICE, Payer, Tokens, assert_installed, charged, package_dir, payee_with_redb_paywall,
    run_integration, serve, start, sweeper,
};

const REQUESTS: u64 = 200;
const RESTART_HALF: u64 = 60;
const NO_PREPAY: u64 = 100;
const PAYER_TOKENS: u64 = 5_000_000;

/// Fails (never skips) when the package's dependencies are not installed,
/// then compiles it (once per test binary) so the run uses the sources of
/// this checkout.
fn build_package() {
    static BUILT: std::sync::Once = std::sync::Once::new();
    BUILT.call_once(compile_package);
}

fn compile_package() {
    let dir = package_dir();
    assert_installed(&[
        "node_modules/@x402/fetch/package.json",
        "node_modules/@solana/kit/package.json",
        "node_modules/typescript/bin/tsc",
    ]);
    let out = Command::new("node")
        .args(["node_modules/typescript/bin/tsc", "-p", "."])
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `node` (install Node.js ≥ 20): {e}"));
    assert!(
        out.status.success(),
        "tsc failed in clients/ts:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn typescript_unit_tests_pass() {
    build_package();
    let dir = package_dir();
    let mut files: Vec<String> = std::fs::read_dir(dir.join("dist/test"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".test.js"))
        .map(|n| format!("dist/test/{n}"))
        .collect();
    files.sort();
    assert!(files.len() >= 6, "the unit test files: {files:?}");
    let out = Command::new("node")
        .arg("--test")
        .args(&files)
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `node` (install Node.js ≥ 20): {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "node --test failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let count = |what: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("# {what} ")))
            .and_then(|n| n.trim().parse::<u32>().ok())
    };
    assert_eq!(count("fail"), Some(0), "{stdout}");
    assert_eq!(count("skipped"), Some(0), "{stdout}");
    assert!(count("pass").unwrap_or(0) >= 40, "{stdout}");
}

/// A payer's state file (its tokens in its associated token account).
impl Payer {
    fn state_file(&self) -> PathBuf {
        self.dir.path().join("paychan-state.json")
    }
}

/// What one run of the Node client is told.
struct Run<'a> {
    requests: u64,
    budget: u64,
    deposit: u64,
    top_up_threshold: u64,
    top_up_amount: u64,
    flush: bool,
    /// Pay ahead once the offer is known (the transport's default).
    prepay: bool,
    payer: &'a Payer,
}

impl<'a> Run<'a> {
    /// `requests` by `payer` on channels of `deposit`, topped up by as much
    /// when fewer than 20 prices are left; a budget of 1,000,000, paying
    /// ahead, the state written at the end.
    fn new(payer: &'a Payer, requests: u64, deposit: u64) -> Self {
        Self {
            requests,
            budget: 1_000_000,
            deposit,
            top_up_threshold: 20 * PRICE,
            top_up_amount: deposit,
            flush: true,
            prepay: true,
            payer,
        }
    }
}

struct Env<'a> {
    chain: &'a LocalChain,
    network: &'a str,
    url: &'a str,
}

/// Runs `pay.mjs` (blocking, off the runtime's workers) and returns its report.
async fn run_node(env: &Env<'_>, run: &Run<'_>) -> Value {
    let dir = run.payer.dir.path();
    let n = std::fs::read_dir(dir).unwrap().count();
    let input = dir.join(format!("input-{n}.json"));
    let output = dir.join(format!("output-{n}.json"));
    let config = json!({
        "rpcUrl": env.chain.rpc_url(),
        "network": env.network,
        "mint": env.chain.mint().to_string(),
        "decimals": MINT_DECIMALS,
        "payerSecretKey": run.payer.key.to_bytes().to_vec(),
        "payerTokens": run.payer.tokens.to_string(),
        "url": env.url,
        "price": PRICE,
        "maxPrice": PRICE,
        "requests": run.requests,
        "budget": run.budget,
        "deposit": run.deposit,
        "topUpThreshold": run.top_up_threshold,
        "topUpAmount": run.top_up_amount,
        "stateFile": run.payer.state_file(),
        "flush": run.flush,
        "prepay": run.prepay,
    });
    std::fs::write(&input, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    run_integration("pay.mjs", &input, &output).await
}

fn u64_of(v: &Value) -> u64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| v.as_u64())
        .unwrap_or_else(|| panic!("not an amount: {v}"))
}

/// Every outcome of a run is a paid 200: the handler's body and a receipt
/// charging exactly the price to this payer on this network.
fn assert_all_paid(report: &Value, requests: u64, payer: &Pubkey, network: &str) {
    let outcomes = report["outcomes"].as_array().unwrap();
    assert_eq!(outcomes.len() as u64, requests);
    for (i, o) in outcomes.iter().enumerate() {
        assert_eq!(o["status"], 200, "request {i}: {o}");
        assert_eq!(o["body"], format!("charged {PRICE}"), "request {i}");
        let receipt = &o["receipt"];
        assert_eq!(receipt["success"], true, "request {i}: {o}");
        assert_eq!(receipt["amount"], PRICE.to_string(), "request {i}");
        assert_eq!(receipt["payer"], payer.to_string(), "request {i}");
        assert_eq!(receipt["network"], network, "request {i}");
        assert_eq!(receipt["transaction"], "", "request {i}");
    }
}

/// One channel of the state file the TS client keeps.
#[derive(Debug, PartialEq, Eq)]
struct Kept {
    address: Pubkey,
    signed: u64,
    accepted: u64,
    deposit: u64,
    phase: String,
    /// The public key of the kept session key seed.
    session_key: Pubkey,
    /// The `signer` field.
    signer: Pubkey,
}

/// The state file: mode 0600 (it holds session keys), version 1, its channels.
fn state_file(path: &Path) -> Vec<Kept> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the state file holds session keys");
    }
    let doc: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(doc["version"], 1);
    let key = |v: &Value| -> Pubkey { v.as_str().unwrap().parse().unwrap() };
    doc["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let seed = key(&c["sessionKey"]).to_bytes();
            let session = ed25519_dalek::SigningKey::from_bytes(&seed);
            Kept {
                address: key(&c["address"]),
                signed: u64_of(&c["signed"]),
                accepted: u64_of(&c["accepted"]),
                deposit: u64_of(&c["deposit"]),
                phase: c["phase"].as_str().unwrap().to_owned(),
                session_key: Pubkey::new_from_array(session.verifying_key().to_bytes()),
                signer: key(&c["signer"]),
            }
        })
        .collect()
}

/// Checks the single channel of a state file and returns it.
fn kept_one(path: &Path, address: Pubkey, signed: u64, accepted: u64, deposit: u64) -> Kept {
    let mut all = state_file(path);
    assert_eq!(all.len(), 1, "{all:?}");
    let kept = all.remove(0);
    assert_eq!(
        (
            kept.address,
            kept.signed,
            kept.accepted,
            kept.deposit,
            kept.phase.as_str()
        ),
        (address, signed, accepted, deposit, "open")
    );
    assert_eq!(
        kept.session_key, kept.signer,
        "the seed kept is the signer's"
    );
    kept
}

/// The store's latest cumulative amount of `channel`.
fn accepted_by_server(store: &RedbStore, channel: &Pubkey) -> u64 {
    store
        .latest(channel)
        .unwrap()
        .map_or(0, |a| a.voucher.voucher.cumulative_amount)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_client_pays_200_requests_and_the_settler_puts_them_on_chain() {
    build_package();
    let started = Instant::now();
    let (chain, network) = start().await;
    // The server: the paywall over RPC channel snapshots and the redb store.
    let (payee, payee_tokens, redb) = payee_with_redb_paywall(&chain, &network, PRICE).await;
    let store = redb.server.store.clone();
    let app = Router::new()
        .route("/paid", get(charged))
        .route_layer(redb.server.paywall.layer(PRICE));
    let base = serve(app).await;
    let url = format!("{base}/paid");
    let env = Env {
        chain: &chain,
        network: &network,
        url: &url,
    };
    eprintln!("setup (chain, server): {:?}", started.elapsed());

    // 1. 200 requests on one channel: a deposit of 120 prices, topped up by
    // as much when fewer than 20 prices are left.
    let a = Payer::new(&chain, Tokens::Associated(PAYER_TOKENS)).await;
    let report = run_node(&env, &Run::new(&a, REQUESTS, 120 * PRICE)).await;
    assert_all_paid(&report, REQUESTS, &a.key.pubkey(), &network);
    let steady = report["steadyMs"].as_f64().unwrap();
    let elapsed = report["elapsedMs"].as_f64().unwrap();
    eprintln!(
        "1. TS client, {REQUESTS} sequential paid requests: {elapsed:.0} ms \
         ({:.0} paid requests/s; {:.0}/s after the first, which opens the channel)",
        REQUESTS as f64 * 1000.0 / elapsed,
        (REQUESTS - 1) as f64 * 1000.0 / steady,
    );
    let wire = &report["wire"];
    // One offer discovery (a 402 paid by @x402/fetch), then every request paid
    // ahead by the scheme's transport; every voucher accepted at once, each
    // paid request with an Idempotency-Key.
    assert_eq!(wire["unpaid402"], 1);
    assert_eq!(wire["refused"], json!([]));
    assert_eq!(wire["paidAnswers"], REQUESTS);
    assert_eq!(wire["idempotencyKeys"], REQUESTS);
    let mine = report["channels"].as_array().unwrap();
    assert_eq!(mine.len(), 1, "one channel: {mine:?}");
    let channel_a: Pubkey = mine[0]["address"].as_str().unwrap().parse().unwrap();
    assert_eq!(u64_of(&mine[0]["accepted"]), REQUESTS * PRICE);
    assert_eq!(u64_of(&mine[0]["signed"]), REQUESTS * PRICE);
    assert_eq!(u64_of(&mine[0]["deposit"]), 240 * PRICE, "topped up once");
    assert_eq!(mine[0]["phase"], "open");
    assert_eq!(mine[0]["credit"], false);
    assert_eq!(
        (
            u64_of(&report["budget"]["spent"]),
            u64_of(&report["budget"]["committed"])
        ),
        (REQUESTS * PRICE, 240 * PRICE)
    );
    assert_eq!(accepted_by_server(&store, &channel_a), REQUESTS * PRICE);
    let kept = kept_one(
        &a.state_file(),
        channel_a,
        REQUESTS * PRICE,
        REQUESTS * PRICE,
        240 * PRICE,
    );
    let onchain = chain.channel(&channel_a).await.unwrap();
    assert_eq!(onchain.authorized_signer, kept.signer);
    assert_eq!(onchain.deposit, 240 * PRICE);
    assert_eq!(onchain.payer, a.key.pubkey());
    assert_eq!(onchain.payee, payee.pubkey());
    assert_eq!(
        onchain.settled, 0,
        "nothing settled before the settler runs"
    );
    assert_eq!(
        chain.token_balance(&a.tokens).await.unwrap(),
        PAYER_TOKENS - 240 * PRICE
    );

    // 1b. Paying ahead off: every request waits for its 402.
    let d = Payer::new(&chain, Tokens::Associated(PAYER_TOKENS)).await;
    let report_d = run_node(
        &env,
        &Run {
            prepay: false,
            ..Run::new(&d, NO_PREPAY, 200 * PRICE)
        },
    )
    .await;
    assert_all_paid(&report_d, NO_PREPAY, &d.key.pubkey(), &network);
    let elapsed_d = report_d["elapsedMs"].as_f64().unwrap();
    eprintln!(
        "1b. TS client, {NO_PREPAY} paid requests, each after its 402: {elapsed_d:.0} ms \
         ({:.0} paid requests/s)",
        NO_PREPAY as f64 * 1000.0 / elapsed_d
    );
    assert_eq!(report_d["wire"]["unpaid402"], NO_PREPAY);
    assert_eq!(report_d["wire"]["paidAnswers"], NO_PREPAY);
    assert_eq!(report_d["wire"]["refused"], json!([]));
    let channel_d: Pubkey = report_d["channels"][0]["address"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(accepted_by_server(&store, &channel_d), NO_PREPAY * PRICE);

    // 2. Stopped after 60 requests without a final write, then restarted.
    let b = Payer::new(&chain, Tokens::Associated(PAYER_TOKENS)).await;
    let half = |flush| Run {
        flush,
        ..Run::new(&b, RESTART_HALF, 200 * PRICE)
    };
    let first = run_node(&env, &half(false)).await;
    assert_all_paid(&first, RESTART_HALF, &b.key.pubkey(), &network);
    let channel_b: Pubkey = first["channels"][0]["address"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // Written before each voucher left: the file knows all 60 signed, 59 accepted.
    kept_one(
        &b.state_file(),
        channel_b,
        RESTART_HALF * PRICE,
        (RESTART_HALF - 1) * PRICE,
        200 * PRICE,
    );
    let second = run_node(&env, &half(true)).await;
    assert_all_paid(&second, RESTART_HALF, &b.key.pubkey(), &network);
    // The restarted client re-sent the 60th voucher (never signing below it);
    // the server refused it as spent with lastAccepted = 60 prices, and the
    // client resynchronised and paid on. One refusal, nothing paid twice.
    assert_eq!(
        second["wire"]["refused"],
        json!([["invalid_payment_amount", (RESTART_HALF * PRICE).to_string()]])
    );
    assert_eq!(second["wire"]["paidAnswers"], RESTART_HALF);
    assert_eq!(first["wire"]["unpaid402"], 1);
    assert_eq!(
        second["wire"]["unpaid402"], 1,
        "a new process discovers the offer once"
    );
    assert_eq!(
        accepted_by_server(&store, &channel_b),
        2 * RESTART_HALF * PRICE
    );
    kept_one(
        &b.state_file(),
        channel_b,
        2 * RESTART_HALF * PRICE,
        2 * RESTART_HALF * PRICE,
        200 * PRICE,
    );
    assert_eq!(u64_of(&second["budget"]["spent"]), 2 * RESTART_HALF * PRICE);

    // 3. A budget of 10.5 prices: a channel of the whole budget (the deposit
    // asked for is larger), 10 paid requests, then refusals before anything
    // is signed; nothing escrowed or signed beyond the budget.
    let c = Payer::new(&chain, Tokens::Associated(PAYER_TOKENS)).await;
    let budget_c = 10 * PRICE + PRICE / 2;
    let report_c = run_node(
        &env,
        &Run {
            budget: budget_c,
            top_up_threshold: 2 * PRICE,
            ..Run::new(&c, 12, 100 * PRICE)
        },
    )
    .await;
    let outcomes = report_c["outcomes"].as_array().unwrap();
    for o in &outcomes[..10] {
        assert_eq!(o["status"], 200, "{o}");
    }
    for o in &outcomes[10..] {
        let error = o["error"].as_str().unwrap_or_else(|| panic!("{o}"));
        assert!(error.contains("budget"), "{error}");
    }
    let channel_c: Pubkey = report_c["channels"][0]["address"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let onchain_c = chain.channel(&channel_c).await.unwrap();
    assert_eq!(
        onchain_c.deposit, budget_c,
        "the deposit is capped by the budget"
    );
    assert_eq!(
        chain.token_balance(&c.tokens).await.unwrap(),
        PAYER_TOKENS - budget_c
    );
    assert_eq!(u64_of(&report_c["budget"]["spent"]), 10 * PRICE);
    assert_eq!(u64_of(&report_c["budget"]["committed"]), budget_c);
    assert_eq!(
        report_c["wire"]["paidAnswers"], 10,
        "nothing sent past the budget"
    );
    // The two requests past the budget went out unpaid (402) and were not paid.
    assert_eq!(report_c["wire"]["unpaid402"], 3);
    assert_eq!(report_c["wire"]["refused"], json!([]));
    assert_eq!(accepted_by_server(&store, &channel_c), 10 * PRICE);

    // 4. The settler sweeps the store: the payee holds what was paid.
    let settler = sweeper(&chain, &payee, store.clone());
    let sweep = settler.run_once(RunMode::Sweep).await.unwrap();
    assert!(sweep.failed.is_empty(), "{:?}", sweep.failed);
    assert_eq!(sweep.channels_settled(), 4);
    let total = (REQUESTS + NO_PREPAY + 2 * RESTART_HALF + 10) * PRICE;
    assert_eq!(sweep.value_settled(), total);
    assert_eq!(chain.token_balance(&payee_tokens).await.unwrap(), total);
    for (channel, paid) in [
        (channel_a, REQUESTS * PRICE),
        (channel_d, NO_PREPAY * PRICE),
        (channel_b, 2 * RESTART_HALF * PRICE),
        (channel_c, 10 * PRICE),
    ] {
        assert_eq!(chain.channel(&channel).await.unwrap().settled, paid);
    }
    assert_eq!(
        chain.channel(&channel_a).await.unwrap().settled,
        REQUESTS * PRICE,
        "the 200 requests are on chain"
    );
    eprintln!("total: {:?}", started.elapsed());
}
