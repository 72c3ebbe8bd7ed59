//! The `paychan` binary, run as a process: keygen, config precedence, error
//! exit codes, and the channel commands end to end against the embedded chain.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{
    Paychan, SOL, argv, chain_and_home, paychan, paychan_async, read_keypair, spawn_until,
    terminate,
};
use std::path::{Path, PathBuf};

use anchor_spl::token::spl_token;
use paychan_localnet::LocalChain;
use paychan_sdk::Pubkey;
use paychan_sdk::state::ChannelStatus;
use serde_json::Value;
use solana_keypair::Keypair;
use solana_signer::Signer;

/// Spawns a server command (`args`' words, see [`argv`]) and waits for its
/// `listening on http://…` line; returns the child and the base URL.
async fn spawn_server(
    home: &Path,
    env: &[(&str, &str)],
    args: &str,
    values: &[&str],
) -> (tokio::process::Child, String) {
    spawn_until(home, env, &argv(args, values), "listening on ").await
}

/// An embedded chain, a scratch home and a payee with SOL (no tokens) and
/// its keypair file.
async fn chain_with_payee() -> (LocalChain, tempfile::TempDir, Keypair, String) {
    let (chain, dir) = chain_and_home().await;
    let (payee, payee_file) = funded_party(&chain, dir.path(), "payee", 0).await;
    (chain, dir, payee, payee_file.to_str().unwrap().to_string())
}

/// Writes the routes file `home/name`: listening on a free loopback port,
/// priced in `mint`, then `rest`; its path.
fn write_routes(home: &Path, name: &str, mint: &Pubkey, rest: &str) -> String {
    let path = home.join(name);
    let toml = format!("\nlisten = \"127.0.0.1:0\"\nmint = \"{mint}\"\n{rest}");
    std::fs::write(&path, toml).unwrap();
    path.to_str().unwrap().to_string()
}

/// The arguments (for [`argv`]) of a server `command` with `options`:
/// `--rpc-url {} --keypair {} COMMAND --routes {} OPTIONS`.
fn server_args(command: &str, options: &str) -> String {
    format!("--rpc-url {{}} --keypair {{}} {command} --routes {{}} {options}")
}

/// The store spec of the redb file `home/name`.
fn redb_store(home: &Path, name: &str) -> String {
    format!("redb:{}", home.join(name).display())
}

/// `paychan serve` with `keypair` and `routes`: the child and its URL.
async fn start_serve(
    chain: &LocalChain,
    home: &Path,
    keypair: &str,
    routes: &str,
) -> (tokio::process::Child, String) {
    let serve = server_args("serve", "");
    spawn_server(home, &[], &serve, &[chain.rpc_url(), keypair, routes]).await
}

/// `paychan facilitator` with `keypair`, `routes` and the store
/// `home/facilitator.redb`: the child, its URL and its `/supported`.
async fn start_facilitator<T: serde::de::DeserializeOwned>(
    chain: &LocalChain,
    home: &Path,
    keypair: &str,
    routes: &str,
) -> (tokio::process::Child, String, T) {
    let args = server_args("facilitator", "--store {}");
    let store = redb_store(home, "facilitator.redb");
    let values = [chain.rpc_url(), keypair, routes, &store];
    let (child, url) = spawn_server(home, &[], &args, &values).await;
    let supported = get_json(&reqwest::Client::new(), format!("{url}/supported")).await;
    (child, url, supported)
}

/// The status of a POST of `{}` to `url`, with `token` as the bearer token.
async fn post_empty(
    http: &reqwest::Client,
    url: String,
    token: Option<&str>,
) -> reqwest::StatusCode {
    let mut request = http.post(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.json(&serde_json::json!({})).send().await.unwrap();
    response.status()
}

/// The body of a GET of `url` as JSON.
async fn get_json<T: serde::de::DeserializeOwned>(http: &reqwest::Client, url: String) -> T {
    let text = http.get(url).send().await.unwrap().text().await.unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn keygen_writes_a_solana_keypair_and_refuses_to_overwrite() {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("keys/payer.json");
    let out_s = out.to_str().unwrap();

    let run = paychan(home.path(), &[], &["keygen", "--outfile", out_s, "--json"]).ok();
    let json = run.json();
    let keypair = read_keypair(&out);
    assert_eq!(json["pubkey"], keypair.pubkey().to_string());
    assert_eq!(json["outfile"], out_s);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "owner-only");
    }

    // No overwrite without --force: exit 2, the file is untouched.
    let run = paychan(home.path(), &[], &["keygen", "--outfile", out_s]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--force"), "{run:?}");
    assert_eq!(read_keypair(&out).pubkey(), keypair.pubkey());

    // With --force: a new key; the human output is the pubkey table.
    let run = paychan(home.path(), &[], &["keygen", "--outfile", out_s, "--force"]).ok();
    let replaced = read_keypair(&out);
    assert_ne!(replaced.pubkey(), keypair.pubkey());
    assert!(
        run.stdout.contains(&replaced.pubkey().to_string()),
        "{run:?}"
    );

    // Without --outfile it writes the configured keypair (default under $HOME).
    let run = paychan(home.path(), &[], &["keygen", "--json"]).ok();
    let default = home.path().join(".config/solana/id.json");
    assert_eq!(
        run.json()["pubkey"],
        read_keypair(&default).pubkey().to_string()
    );
}

#[test]
fn config_precedence_flag_over_env_over_file_over_default() {
    let home = tempfile::tempdir().unwrap();
    let config = |env: &[(&str, &str)], args: &[&str]| {
        let mut all = vec!["config", "--json"];
        all.extend_from_slice(args);
        paychan(home.path(), env, &all).ok().json()
    };

    let json = config(&[], &[]);
    assert_eq!(json["rpc_url"]["value"], "https://api.devnet.solana.com");
    assert_eq!(json["rpc_url"]["source"], "default");
    assert_eq!(json["program_id"]["value"], paychan_sdk::ID.to_string());
    assert_eq!(json["config_file"], Value::Null);

    // ./paychan.toml is read when present.
    std::fs::write(
        home.path().join("paychan.toml"),
        "rpc_url = \"http://file:1\"\nkeypair = \"k.json\"\ncommitment = \"finalized\"\n",
    )
    .unwrap();
    let json = config(&[], &[]);
    assert_eq!(json["rpc_url"]["value"], "http://file:1");
    assert_eq!(json["rpc_url"]["source"], "file");
    assert_eq!(
        json["keypair"]["value"],
        home.path().join("k.json").to_str().unwrap(),
        "relative to the config file"
    );
    assert_eq!(json["commitment"]["value"], "finalized");

    let env = [("PAYCHAN_RPC_URL", "http://env:2")];
    let json = config(&env, &[]);
    assert_eq!(json["rpc_url"]["value"], "http://env:2");
    assert_eq!(json["rpc_url"]["source"], "env");
    assert_eq!(json["commitment"]["source"], "file");

    let json = config(&env, &["--rpc-url", "http://flag:3"]);
    assert_eq!(json["rpc_url"]["value"], "http://flag:3");
    assert_eq!(json["rpc_url"]["source"], "flag");

    // An explicitly named config file (env) must exist: exit 2.
    let run = paychan(
        home.path(),
        &[("PAYCHAN_CONFIG", "/nonexistent/paychan.toml")],
        &["config"],
    );
    assert_eq!(run.code, 2, "{run:?}");
    // A typo in the file is an error, not a silent default.
    std::fs::write(home.path().join("paychan.toml"), "rpc_ulr = \"x\"\n").unwrap();
    let run = paychan(home.path(), &[], &["config", "--json"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.json()["error"]["kind"], "config");
}

#[test]
fn usage_errors_exit_2() {
    let home = tempfile::tempdir().unwrap();
    let key = Pubkey::new_unique().to_string();
    let open = "channel open --payee {} --mint {} --deposit {}";
    for (args, needle) in [
        (argv(open, &["x", &key, "1"]), "public key"),
        (argv(open, &[&key, &key, "-1"]), "negative"),
        (argv(open, &[&key, &key, ""]), "empty"),
        (
            argv(
                "channel top-up --channel {} --amount 99999999999999999999",
                &[&key],
            ),
            "exceeds",
        ),
        (argv("--commitment max config", &[]), "possible values"),
    ] {
        let run = paychan(home.path(), &[], &args);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(run.stderr.contains(needle), "{args:?}: {run:?}");
    }
    let run = paychan(home.path(), &[], &["--help"]).ok();
    assert!(run.stdout.contains("Exit codes:"), "{run:?}");

    // The server commands need a mint (flag or config) before touching the network.
    for command in ["serve", "facilitator", "settle"] {
        let keypair = home.path().join("k.json");
        paychan(
            home.path(),
            &[],
            &["keygen", "--outfile", keypair.to_str().unwrap(), "--force"],
        )
        .ok();
        let args = argv(
            "--keypair {} --rpc-url http://127.0.0.1:9 {} --json",
            &[keypair.to_str().unwrap(), command],
        );
        let run = paychan(home.path(), &[], &args);
        assert_eq!(run.code, 2, "{command}: {run:?}");
        assert_eq!(run.json()["error"]["kind"], "usage", "{command}: {run:?}");
    }
    let run = paychan(home.path(), &[], &["serve", "--store", "nowhere", "--help"]).ok();
    assert!(run.stdout.contains("--routes"), "{run:?}");
}

#[test]
fn an_unreachable_rpc_exits_3() {
    let home = tempfile::tempdir().unwrap();
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // An API key in the path and the query: never printed (issue 18).
    let url = format!("http://127.0.0.1:{port}/v2/PATHSECRET?api-key=QUERYSECRET");
    let channel = Pubkey::new_unique().to_string();
    let args = argv(
        "--rpc-url {} channel status --channel {} --json",
        &[&url, &channel],
    );
    let run = paychan(home.path(), &[], &args);
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(run.json()["error"]["kind"], "rpc");
    let printed = format!("{}{}", run.stdout, run.stderr);
    assert!(!printed.contains("SECRET"), "{printed}");
    assert!(printed.contains(&format!("127.0.0.1:{port}")), "{printed}");
}

/// A payer keypair file with SOL and `tokens` in its associated token account.
async fn funded_party(
    chain: &LocalChain,
    dir: &Path,
    name: &str,
    tokens: u64,
) -> (Keypair, PathBuf) {
    let path = dir.join(format!("{name}.json"));
    let run = paychan_async(
        dir,
        &["keygen", "--outfile", path.to_str().unwrap(), "--json"],
    )
    .await
    .ok();
    let keypair = read_keypair(&path);
    assert_eq!(run.json()["pubkey"], keypair.pubkey().to_string());
    chain.fund_sol(&keypair.pubkey(), 10 * SOL).await.unwrap();
    if tokens > 0 {
        let ata = ata(&keypair.pubkey(), &chain.mint());
        let create = spl_associated_token_account_interface::instruction::create_associated_token_account_idempotent(
            &keypair.pubkey(),
            &keypair.pubkey(),
            &chain.mint(),
            &spl_token::ID,
        );
        let mint_to = spl_token::instruction::mint_to(
            &spl_token::ID,
            &chain.mint(),
            &ata,
            &chain.mint_authority().pubkey(),
            &[],
            tokens,
        )
        .unwrap();
        chain
            .send(&[create, mint_to], &keypair, &[chain.mint_authority()])
            .await
            .unwrap();
        assert_eq!(chain.token_balance(&ata).await.unwrap(), tokens);
    }
    (keypair, path)
}

fn ata(owner: &Pubkey, mint: &Pubkey) -> Pubkey {
    paychan_sdk::pda::associated_token_account(owner, mint, &spl_token::ID)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_commands_end_to_end() {
    let (chain, dir) = chain_and_home().await;
    let home = dir.path();
    let mint = chain.mint();
    let (payer, payer_file) = funded_party(&chain, home, "payer", 50_000_000).await;
    let (payee, payee_file) = funded_party(&chain, home, "payee", 0).await;
    let payer_tokens = ata(&payer.pubkey(), &mint);
    let payee_tokens = ata(&payee.pubkey(), &mint);
    let rpc = chain.rpc_url();
    let (payer_s, payee_file_s) = (payer_file.to_str().unwrap(), payee_file.to_str().unwrap());
    let as_payer = Paychan::new(home, &["--rpc-url", rpc, "--keypair", payer_s, "--json"]);
    let as_payee = Paychan::new(home, &["--rpc-url", rpc, "--keypair", payee_file_s]);
    let anyone = Paychan::new(home, &["--rpc-url", rpc]);
    let payer_balance = || chain.token_balance(&payer_tokens);

    // open: a decimal deposit (10.5 tokens at 6 decimals), a generated session key.
    let (payee_s, mint_s) = (payee.pubkey().to_string(), mint.to_string());
    let open = "channel open --payee {} --mint {} --deposit 10.5 --grace-period 600";
    let opened = as_payer.json(open, &[&payee_s, &mint_s]).await;
    let address: Pubkey = opened["channel"].as_str().unwrap().parse().unwrap();
    assert_eq!(opened["deposit"]["amount"], "10500000");
    assert_eq!(opened["deposit"]["ui"], "10.500000");
    assert_eq!(opened["signer_generated"], true);
    let signer_file = PathBuf::from(opened["signer_keyfile"].as_str().unwrap());
    assert_eq!(
        signer_file,
        home.join(format!("paychan-session-{address}.json"))
    );
    let session = read_keypair(&signer_file);
    let on_chain = chain.channel(&address).await.unwrap();
    assert_eq!(on_chain.authorized_signer, session.pubkey());
    assert_eq!(on_chain.payer, payer.pubkey());
    assert_eq!(on_chain.payee, payee.pubkey());
    assert_eq!(on_chain.deposit, 10_500_000);
    assert_eq!(on_chain.grace_period, 600);
    assert_eq!(payer_balance().await.unwrap(), 50_000_000 - 10_500_000);

    // top-up in base units.
    let address_s = address.to_string();
    let top_up = "channel top-up --channel {} --amount {}";
    let topped = as_payer.json(top_up, &[&address_s, "2000000"]).await;
    assert_eq!(topped["deposit"]["amount"], "12500000");
    assert_eq!(chain.channel(&address).await.unwrap().deposit, 12_500_000);
    assert_eq!(payer_balance().await.unwrap(), 50_000_000 - 12_500_000);

    // An amount finer than the mint's decimals is refused before anything is sent.
    let bad = as_payer.run(top_up, &[&address_s, "0.0000001"]).await;
    assert_eq!(bad.code, 2, "{bad:?}");
    assert_eq!(bad.json()["error"]["kind"], "amount");

    // More than the payer holds: refused with a clear message (exit 4).
    let poor = as_payer.run(top_up, &[&address_s, "1000.0"]).await;
    assert_eq!(poor.code, 4, "{poor:?}");
    assert!(poor.stderr.contains("less than 1000.000000"), "{poor:?}");

    // status.
    let status_of = "channel status --channel {}";
    let status = as_payer.json(status_of, &[&address_s]).await;
    assert_eq!(status["status"], "open");
    assert_eq!(status["payer"], payer.pubkey().to_string());
    assert_eq!(status["payee"], payee_s);
    assert_eq!(status["mint"], mint_s);
    assert_eq!(status["authorized_signer"], session.pubkey().to_string());
    assert_eq!(status["deposit"]["amount"], "12500000");
    assert_eq!(status["settled"]["amount"], "0");
    assert_eq!(status["remaining"]["ui"], "12.500000");
    assert_eq!(status["decimals"], 6);
    assert_eq!(status["grace_period"], 600);
    assert_eq!(status["close_requested_at"], Value::Null);
    // The human table.
    let table = anyone.run(status_of, &[&address_s]).await.ok();
    assert!(
        table.stdout.contains("status              open"),
        "{table:?}"
    );
    assert!(
        table.stdout.contains("12.500000 (12500000 base units)"),
        "{table:?}"
    );

    // Only the payer may request the close: the payee's keypair is refused (exit 2).
    let request_close = "channel request-close --channel {}";
    let wrong = as_payee.run(request_close, &[&address_s]).await;
    assert_eq!(wrong.code, 2, "{wrong:?}");
    assert!(
        wrong.stderr.contains("not this channel's payer"),
        "{wrong:?}"
    );

    // request-close.
    let requested = as_payer.json(request_close, &[&address_s]).await;
    let started = requested["close_requested_at"].as_i64().unwrap();
    assert!(started > 0);
    assert_eq!(requested["finalize_after"].as_i64(), Some(started + 600));
    let status = as_payer.json(status_of, &[&address_s]).await;
    assert_eq!(status["status"], "closing");
    assert_eq!(status["finalize_after"].as_i64(), Some(started + 600));
    assert_eq!(
        chain.channel(&address).await.unwrap().status().unwrap(),
        ChannelStatus::Closing
    );

    // finalize during the grace period: the program's GracePeriodActive, exit 4.
    let early = as_payer
        .run("channel finalize --channel {}", &[&address_s])
        .await;
    assert_eq!(early.code, 4, "{early:?}");
    let error = early.json();
    assert_eq!(error["error"]["name"], "GracePeriodActive", "{early:?}");
    assert_eq!(error["error"]["code"], 6015);
    assert!(early.stderr.contains("GracePeriodActive"), "{early:?}");

    // After the grace period, anyone (here the payee) finalizes; the payer is refunded.
    chain.time_travel_to(started + 601).await.unwrap();
    let finalized = as_payee
        .json("--json channel finalize --channel {}", &[&address_s])
        .await;
    assert_eq!(finalized["refunded"]["amount"], "12500000");
    assert_eq!(payer_balance().await.unwrap(), 50_000_000);
    if let Ok(after) = chain.channel(&address).await {
        assert_eq!(after.status().unwrap(), ChannelStatus::Closed);
        assert_eq!(after.refunded, 12_500_000);
    }

    // A second channel, with the session key from a file, closed by the payee
    // (whose token account the close creates).
    let session_file = home.join("session.json");
    paychan_async(
        home,
        &["keygen", "--outfile", session_file.to_str().unwrap()],
    )
    .await
    .ok();
    let open = "channel open --payee {} --mint {} --deposit 3000000 --signer-keyfile {}";
    let session_s = session_file.to_str().unwrap();
    let opened = as_payer.json(open, &[&payee_s, &mint_s, session_s]).await;
    assert_eq!(opened["signer_generated"], false);
    assert_eq!(opened["grace_period"], 3600);
    let second: Pubkey = opened["channel"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        chain.channel(&second).await.unwrap().authorized_signer,
        read_keypair(&session_file).pubkey()
    );
    assert_eq!(payer_balance().await.unwrap(), 47_000_000);
    let second_s = second.to_string();
    // The payer may not close cooperatively.
    let close = "channel close --channel {}";
    let wrong = as_payer.run(close, &[&second_s]).await;
    assert_eq!(wrong.code, 2, "{wrong:?}");
    let closed = as_payee
        .json("--json channel close --channel {}", &[&second_s])
        .await;
    assert_eq!(closed["refunded"]["amount"], "3000000");
    assert_eq!(payer_balance().await.unwrap(), 50_000_000);
    assert_eq!(chain.token_balance(&payee_tokens).await.unwrap(), 0);

    // A channel that does not exist is an on-chain error: exit 4.
    let missing = Pubkey::new_unique().to_string();
    let run_missing = as_payer.run(status_of, &[&missing]).await;
    assert_eq!(run_missing.code, 4, "{run_missing:?}");
    assert_eq!(run_missing.json()["error"]["kind"], "account");

    // Another program id cannot be sent transactions (exit 2).
    let other_program = Pubkey::new_unique().to_string();
    let other = as_payer
        .run(
            "--program-id {} channel top-up --channel {} --amount 1",
            &[&other_program, &second_s],
        )
        .await;
    assert_eq!(other.code, 2, "{other:?}");

    chain.shutdown().unwrap();
}

/// `paychan serve` with a routes file: 402 with the offer on a priced route,
/// 200 on a free one; `paychan facilitator` answers `/supported`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_and_facilitator_answer_on_a_local_chain() {
    let (chain, dir, payee, payee_file) = chain_with_payee().await;
    let genesis = chain.rpc_client().get_genesis_hash().await.unwrap();
    let network = format!("solana:{}", &genesis.to_string()[..32]);
    let (home, mint, http) = (dir.path(), chain.mint(), reqwest::Client::new());
    let routes = write_routes(
        home,
        "api.toml",
        &mint,
        r#"store = "redb:vouchers.redb"
grace_period = 900
[[routes]]
path = "/joke"
price = "0.001"
description = "a joke"
response = "paid joke"
[[routes]]
path = "/free"
price = "0"
response = { hello = "world" }
"#,
    );
    let (keypair, routes) = (payee_file.as_str(), routes.as_str());
    let (server, url) = start_serve(&chain, home, keypair, routes).await;
    let free = http.get(format!("{url}/free")).send().await.unwrap();
    assert_eq!(free.status(), 200);
    assert_eq!(free.headers()["content-type"], "application/json");
    let body: Value = serde_json::from_str(&free.text().await.unwrap()).unwrap();
    assert_eq!(body["hello"], "world");

    let joke = http.get(format!("{url}/joke")).send().await.unwrap();
    assert_eq!(joke.status(), 402);
    assert!(joke.headers().contains_key("payment-required"));
    let offer: Value = serde_json::from_str(&joke.text().await.unwrap()).unwrap();
    assert_eq!(offer["x402Version"], 2);
    assert_eq!(offer["resource"]["description"], "a joke");
    let accept = &offer["accepts"][0];
    assert_eq!(accept["scheme"], "paychan");
    assert_eq!(accept["network"], network);
    assert_eq!(accept["amount"], "1000");
    assert_eq!(accept["asset"], mint.to_string());
    assert_eq!(accept["payTo"], payee.pubkey().to_string());
    assert_eq!(accept["extra"]["gracePeriodSeconds"], 900);
    assert_eq!(accept["extra"]["decimals"], 6);
    assert_eq!(accept["extra"]["minimumDeposit"], "100000");
    // The in-process settler's token account was created at start.
    assert!(chain.exists(&ata(&payee.pubkey(), &mint)).await.unwrap());
    terminate(server).await;
    assert!(
        home.join("vouchers.redb").is_file(),
        "relative to the routes file"
    );

    let (facilitator, url, supported): (_, _, Value) =
        start_facilitator(&chain, home, keypair, routes).await;
    assert_eq!(supported["kinds"][0]["x402Version"], 2);
    assert_eq!(supported["kinds"][0]["scheme"], "paychan");
    assert_eq!(supported["kinds"][0]["network"], network);
    assert_eq!(supported["kinds"][1]["x402Version"], 1);
    assert_eq!(
        supported["signers"]["solana:*"][0],
        payee.pubkey().to_string()
    );
    // Without a token, /verify and /settle are open to loopback callers.
    assert_eq!(
        post_empty(&http, format!("{url}/verify"), None).await,
        400,
        "open on loopback, the body is just wrong"
    );
    terminate(facilitator).await;

    // Beyond loopback, a token is required to start at all.
    let open_args = server_args("facilitator", "--listen 0.0.0.0:0 --no-settler --store {}");
    let open_store = redb_store(home, "open.redb");
    let args = argv(&open_args, &[chain.rpc_url(), keypair, routes, &open_store]);
    let run = paychan_async(home, &args).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("facilitator_token"), "{run:?}");

    // With a token (from the environment), /verify and /settle need it.
    let token_args = server_args("facilitator", "--no-settler --store {}");
    let token_store = redb_store(home, "token.redb");
    let (facilitator, url) = spawn_server(
        home,
        &[("PAYCHAN_FACILITATOR_TOKEN", "s3cret-token")],
        &token_args,
        &[chain.rpc_url(), keypair, routes, &token_store],
    )
    .await;
    for path in ["/verify", "/settle"] {
        let denied = post_empty(&http, format!("{url}{path}"), None).await;
        assert_eq!(denied, 401, "{path}");
        let wrong = post_empty(&http, format!("{url}{path}"), Some("s3cret-tokem")).await;
        assert_eq!(wrong, 401, "{path}");
        let allowed = post_empty(&http, format!("{url}{path}"), Some("s3cret-token")).await;
        assert_eq!(allowed, 400, "{path}: past the token, the body is checked");
    }
    assert_eq!(
        http.get(format!("{url}/supported"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "/supported stays open"
    );
    terminate(facilitator).await;

    // `serve --no-settler` never reads the payee's key: a keypair path that
    // does not exist, the payee given by pubkey.
    let keyless_args = server_args("serve", "--no-settler --payee {} --store {}");
    let (payee_s, keyless_store) = (payee.pubkey().to_string(), redb_store(home, "keyless.redb"));
    let (server, url) = spawn_server(
        home,
        &[],
        &keyless_args,
        &[
            chain.rpc_url(),
            "/nonexistent/payee.json",
            routes,
            &payee_s,
            &keyless_store,
        ],
    )
    .await;
    let joke = http.get(format!("{url}/joke")).send().await.unwrap();
    assert_eq!(joke.status(), 402);
    let offer: Value = serde_json::from_str(&joke.text().await.unwrap()).unwrap();
    assert_eq!(offer["accepts"][0]["payTo"], payee.pubkey().to_string());
    terminate(server).await;
    chain.shutdown().unwrap();
}

/// `[exact]` in the routes file: `paychan serve` offers `exact` after
/// `paychan` on the routes that take it and settles a stock-layout payment
/// on chain before the 200; without the payee's associated token account
/// (`--no-settler`, which does not create it) it refuses to start;
/// `paychan facilitator` lists the `exact` kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_settles_exact_payments_on_the_routes_that_take_them() {
    use paychan_x402::{codec, v2};

    let (chain, dir, payee, payee_file) = chain_with_payee().await;
    let (home, mint) = (dir.path(), chain.mint());
    let http = reqwest::Client::new();
    let (client, _) = funded_party(&chain, home, "client", 1_000_000).await;
    let routes = write_routes(
        home,
        "exact.toml",
        &mint,
        r#"store = "redb:exact.redb"
[exact]
enabled = true
[[routes]]
path = "/joke"
price = "0.001"
response = "paid joke"
[[routes]]
path = "/plain"
price = "0.001"
response = "paychan only"
exact = false
"#,
    );
    let (keypair, routes) = (payee_file.as_str(), routes.as_str());
    let (server, url) = start_serve(&chain, home, keypair, routes).await;
    let joke = http.get(format!("{url}/joke")).send().await.unwrap();
    assert_eq!(joke.status(), 402);
    let required: v2::PaymentRequired =
        codec::decode(joke.headers()["payment-required"].as_bytes()).unwrap();
    let schemes: Vec<&str> = required.accepts.iter().map(|r| r.scheme.as_str()).collect();
    assert_eq!(schemes, ["paychan", "exact"]);
    let offer = required.accepts[1].clone();
    assert_eq!(
        offer.extra.as_ref().unwrap()["feePayer"],
        payee.pubkey().to_string()
    );
    let plain = http.get(format!("{url}/plain")).send().await.unwrap();
    let plain: v2::PaymentRequired =
        codec::decode(plain.headers()["payment-required"].as_bytes()).unwrap();
    assert_eq!(plain.accepts.len(), 1);

    // A stock-layout payment: limit, price, TransferChecked, memo.
    let budget = |kind: u8, value: &[u8]| {
        let mut data = vec![kind];
        data.extend_from_slice(value);
        paychan_sdk::Instruction::new_with_bytes(
            Pubkey::from_str_const("ComputeBudget111111111111111111111111111111"),
            &data,
            vec![],
        )
    };
    let payee_tokens = ata(&payee.pubkey(), &mint);
    let transfer = spl_token::instruction::transfer_checked(
        &spl_token::ID,
        &ata(&client.pubkey(), &mint),
        &mint,
        &payee_tokens,
        &client.pubkey(),
        &[],
        1_000,
        6,
    )
    .unwrap();
    let memo = paychan_sdk::Instruction::new_with_bytes(
        Pubkey::from_str_const("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"),
        b"0123456789abcdef0123456789abcdef",
        vec![],
    );
    let ixs = [
        budget(2, &20_000u32.to_le_bytes()),
        budget(3, &1u64.to_le_bytes()),
        transfer,
        memo,
    ];
    let mut tx = solana_transaction::Transaction::new_with_payer(&ixs, Some(&payee.pubkey()));
    let blockhash = chain.rpc_client().get_latest_blockhash().await.unwrap();
    tx.partial_sign(&[&client], blockhash);
    let transaction = paychan_x402::server::exact::encode_transaction(&tx.into()).unwrap();
    let header = codec::encode(&v2::PaymentPayload {
        x402_version: 2,
        resource: None,
        accepted: offer,
        payload: serde_json::json!({ "transaction": transaction }),
        extensions: None,
    })
    .unwrap();
    let before = chain.token_balance(&payee_tokens).await.unwrap();
    let paid = http
        .get(format!("{url}/joke"))
        .header("PAYMENT-SIGNATURE", header)
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 200);
    let settle: v2::SettleResponse =
        codec::decode(paid.headers()["payment-response"].as_bytes()).unwrap();
    assert_eq!(paid.text().await.unwrap(), "paid joke");
    assert!(settle.success && !settle.transaction.is_empty());
    assert_eq!(
        chain.token_balance(&payee_tokens).await.unwrap(),
        before + 1_000
    );
    terminate(server).await;

    // A payee without an associated token account: a startup error.
    let (nobody, nobody_file) = funded_party(&chain, home, "nobody", 0).await;
    let nobody_args = server_args("serve", "--no-settler --store {}");
    let (nobody_s, nobody_store) = (
        nobody_file.to_str().unwrap(),
        redb_store(home, "nobody.redb"),
    );
    let args = argv(
        &nobody_args,
        &[chain.rpc_url(), nobody_s, routes, &nobody_store],
    );
    let run = paychan_async(home, &args).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("associated token account")
            && run.stderr.contains(&nobody.pubkey().to_string()),
        "{run:?}"
    );

    let (facilitator, _, supported): (_, _, v2::SupportedResponse) =
        start_facilitator(&chain, home, keypair, routes).await;
    let exact = supported.kinds.iter().find(|k| k.scheme == "exact");
    let exact = exact.expect("the exact kind");
    assert_eq!(
        exact.extra.as_ref().unwrap()["feePayer"],
        payee.pubkey().to_string()
    );
    terminate(facilitator).await;
    chain.shutdown().unwrap();
}

/// `paychan settle --once --json` puts a voucher from a redb store on chain;
/// a second run finds nothing to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settle_once_settles_a_stored_voucher() {
    use ed25519_dalek::SigningKey;
    use paychan_verifier::{
        AcceptOutcome, VoucherStore,
        store::{Durability, RedbStore},
    };
    use paychan_voucher::{VoucherV1, sign_v1};

    let (chain, dir, payee, payee_file) = chain_with_payee().await;
    let (home, mint) = (dir.path(), chain.mint());
    let payer = Keypair::new();
    chain.fund_sol(&payer.pubkey(), 10 * SOL).await.unwrap();
    let payer_key = payer.pubkey();
    let payer_tokens = chain.create_token_account(&payer_key, 5_000_000);
    let payer_tokens = payer_tokens.await.unwrap();
    let signer = SigningKey::generate(&mut rand::rngs::OsRng);
    let (open, channel) = paychan_sdk::ix::open(
        &paychan_sdk::ix::OpenAccounts {
            payer: payer.pubkey(),
            rent_payer: payer.pubkey(),
            payee: payee.pubkey(),
            mint,
            payer_tokens,
            token_program: spl_token::ID,
        },
        paychan_sdk::ix::OpenArgs {
            salt: 7,
            open_slot: chain.rpc_client().get_slot().await.unwrap(),
            deposit: 1_000_000,
            grace_period: 600,
            authorized_signer: Pubkey::new_from_array(signer.verifying_key().to_bytes()),
        },
    );
    chain.send(&[open], &payer, &[]).await.expect("open");
    let voucher = sign_v1(
        &signer,
        &VoucherV1 {
            channel_id: channel.to_bytes(),
            cumulative_amount: 123_456,
            expires_at: 0,
        },
    );
    let path = home.join("vouchers.redb");
    {
        let store = RedbStore::open(&path, Durability::Sync).unwrap();
        let outcome = store.accept(&voucher, 0, 1).await.unwrap();
        assert!(matches!(outcome, AcceptOutcome::Accepted(_)), "{outcome:?}");
        store.close();
    }
    let store = format!("redb:{}", path.display());
    let mint_s = mint.to_string();
    let once = "--rpc-url {} --keypair {} --json settle --store {} --mint {} --once";
    let payee_s = payee_file.as_str();
    let args = argv(once, &[chain.rpc_url(), payee_s, &store, &mint_s]);
    let report = paychan_async(home, &args).await.ok().json();
    assert_eq!(report["value_settled"], "123456", "{report}");
    assert_eq!(report["channels_settled"], 1);
    let txs = report["transactions"].as_array().unwrap();
    assert_eq!(txs.len(), 1);
    assert_eq!(txs[0]["channels"][0]["channel"], channel.to_string());
    assert_eq!(report["failed"], Value::Array(vec![]));
    assert_eq!(report["unsettled_value"], "0");
    assert_eq!(chain.channel(&channel).await.unwrap().settled, 123_456);
    assert_eq!(
        chain
            .token_balance(&ata(&payee.pubkey(), &mint))
            .await
            .unwrap(),
        123_456
    );

    // Idempotent: nothing ahead of the chain any more.
    let again = paychan_async(home, &args).await.ok().json();
    assert_eq!(again["transactions"], Value::Array(vec![]));
    assert_eq!(again["skipped"][0]["reason"], "already_settled");

    // The daemon: metrics over HTTP, a graceful stop on SIGTERM.
    let daemon = "--rpc-url {} --keypair {} settle --store {} --mint {} --metrics-addr 127.0.0.1:0";
    let daemon_args = argv(daemon, &[chain.rpc_url(), payee_s, &store, &mint_s]);
    let (daemon, metrics) = spawn_until(home, &[], &daemon_args, "metrics on ").await;
    let text = reqwest::get(&metrics).await.unwrap().text().await.unwrap();
    assert!(text.contains("paychan_settler_closes_total"), "{text}");
    terminate(daemon).await;
    chain.shutdown().unwrap();
}

/// `paychan demo --json`: the whole flow on an embedded chain; every total is
/// read back from the chain and the store.
#[test]
fn the_demo_pays_settles_closes_and_refunds() {
    let home = tempfile::tempdir().unwrap();
    let args = argv(
        "demo --requests 60 --price 2500 --concurrency 3 --json",
        &[],
    );
    let run = paychan(home.path(), &[], &args).ok();
    let d = run.json();
    let n = 60;
    let price = 2_500;
    assert_eq!(d["paid_requests"], n, "{d}");
    assert_eq!(d["failed_requests"], 0, "{d}");
    assert_eq!(d["value_paid"], n * price, "{d}");
    assert_eq!(d["settled_on_chain"], n * price, "{d}");
    assert_eq!(d["payee_received"], n * price, "{d}");
    let deposited = d["deposited"].as_u64().unwrap();
    let refunded = d["refunded_to_payer"].as_u64().unwrap();
    assert_eq!(n * price + refunded, deposited, "{d}");
    assert_eq!(d["refund_received_by_payer"], refunded, "{d}");
    assert_eq!(d["channels"], 3, "{d}");
    assert_eq!(d["channels_closed"], 3, "{d}");
    assert_eq!(d["check_latency_us"]["samples"], n, "{d}");
    let kinds = &d["onchain"]["by_kind"];
    assert_eq!(kinds["open"]["count"], 3, "{d}");
    assert_eq!(kinds["close"]["count"], 3, "{d}");
    // Whatever the settler did not settle on the way, the closes settled.
    let counted: u64 = kinds
        .as_object()
        .unwrap()
        .values()
        .map(|k| k["count"].as_u64().unwrap())
        .sum();
    assert_eq!(
        counted,
        d["onchain"]["transactions"].as_u64().unwrap(),
        "{d}"
    );
    assert_eq!(
        d["payer_tokens_end"].as_u64().unwrap(),
        d["payer_tokens_start"].as_u64().unwrap() - n * price,
        "{d}"
    );
    let fees = d["onchain"]["fee_lamports"].as_u64().unwrap();
    assert!(fees >= 5_000 * 9, "{d}");
    assert_eq!(
        d["lamports_per_paid_request"].as_f64().unwrap(),
        fees as f64 / n as f64
    );
}

#[test]
fn a_bad_lookup_table_is_a_usage_error() {
    let home = tempfile::tempdir().unwrap();
    let run = paychan(
        home.path(),
        &[],
        &["settle", "--once", "--lookup-table", "sometimes", "--json"],
    );
    assert_eq!(run.code, 2, "{run:?}");
    let help = paychan(home.path(), &[], &["settle", "--help"]).ok();
    assert!(help.stdout.contains("--lookup-table"), "{help:?}");
}
