//! The `paychan` binary, run as a process: keygen, config precedence, error
//! exit codes, and the channel commands end to end against the embedded chain.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::Run;
use std::{
    path::{Path, PathBuf},
    process::{Output, Stdio},
    time::Duration,
};

use anchor_spl::token::spl_token;
use paychan_localnet::{LocalChain, LocalChainConfig};
use paychan_sdk::Pubkey;
use paychan_sdk::state::ChannelStatus;
use serde_json::Value;
use solana_keypair::Keypair;
use solana_signer::Signer;

const BIN: &str = env!("CARGO_BIN_EXE_paychan");
const SOL: u64 = 1_000_000_000;

/// Environment variables the binary reads; cleared so the caller's shell
/// cannot leak into a test.
const PAYCHAN_VARS: [&str; 6] = [
    "PAYCHAN_CONFIG",
    "PAYCHAN_RPC_URL",
    "PAYCHAN_KEYPAIR",
    "PAYCHAN_PROGRAM_ID",
    "PAYCHAN_COMMITMENT",
    "RUST_LOG",
];

impl From<Output> for Run {
    fn from(out: Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

fn command(home: &Path, cwd: &Path, env: &[(&str, &str)], args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(BIN);
    for var in PAYCHAN_VARS {
        cmd.env_remove(var);
    }
    cmd.env("HOME", home)
        .current_dir(cwd)
        .envs(env.iter().copied())
        .args(args);
    cmd
}

fn paychan(home: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
    command(home, home, env, args).output().unwrap().into()
}

async fn paychan_async(home: &Path, args: &[&str]) -> Run {
    tokio::process::Command::from(command(home, home, &[], args))
        .output()
        .await
        .unwrap()
        .into()
}

/// Spawns a server command and waits for its `listening on http://…` line;
/// returns the child and the base URL. Its stderr keeps being drained.
async fn spawn_server(home: &Path, args: &[&str]) -> (tokio::process::Child, String) {
    spawn_until(home, &[], args, "listening on ").await
}

/// [`spawn_server`] with environment variables.
async fn spawn_server_env(
    home: &Path,
    env: &[(&str, &str)],
    args: &[&str],
) -> (tokio::process::Child, String) {
    spawn_until(home, env, args, "listening on ").await
}

/// Spawns `paychan` and waits for a stderr line with `marker` followed by a URL.
async fn spawn_until(
    home: &Path,
    env: &[(&str, &str)],
    args: &[&str],
    marker: &str,
) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut cmd = tokio::process::Command::from(command(home, home, env, args));
    cmd.stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            eprintln!("server: {line}");
            if let Some(rest) = line.split(marker).nth(1) {
                return rest.split_whitespace().next().unwrap().to_string();
            }
        }
        panic!("the server exited before listening")
    })
    .await
    .expect("the server listens within 60 s");
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("server: {line}");
        }
    });
    (child, url)
}

/// SIGTERM, then the process must exit 0 (graceful shutdown).
async fn terminate(mut child: tokio::process::Child) {
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("stops within 30 s")
        .unwrap();
    assert!(status.success(), "{status:?}");
}

fn read_keypair(path: &Path) -> Keypair {
    let bytes: Vec<u8> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    Keypair::try_from(bytes.as_slice()).unwrap()
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
    for (args, needle) in [
        (
            vec![
                "channel",
                "open",
                "--payee",
                "x",
                "--mint",
                &key,
                "--deposit",
                "1",
            ],
            "public key",
        ),
        (
            vec![
                "channel",
                "open",
                "--payee",
                &key,
                "--mint",
                &key,
                "--deposit",
                "-1",
            ],
            "negative",
        ),
        (
            vec![
                "channel",
                "open",
                "--payee",
                &key,
                "--mint",
                &key,
                "--deposit",
                "",
            ],
            "empty",
        ),
        (
            vec![
                "channel",
                "top-up",
                "--channel",
                &key,
                "--amount",
                "99999999999999999999",
            ],
            "exceeds",
        ),
        (vec!["--commitment", "max", "config"], "possible values"),
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
        let run = paychan(
            home.path(),
            &[],
            &[
                "--keypair",
                keypair.to_str().unwrap(),
                "--rpc-url",
                "http://127.0.0.1:9",
                command,
                "--json",
            ],
        );
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
    let run = paychan(
        home.path(),
        &[],
        &[
            "--rpc-url",
            &url,
            "channel",
            "status",
            "--channel",
            &channel,
            "--json",
        ],
    );
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
    let chain = LocalChain::start(LocalChainConfig::default())
        .await
        .expect("the chain starts");
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let mint = chain.mint();
    let (payer, payer_file) = funded_party(&chain, home, "payer", 50_000_000).await;
    let (payee, payee_file) = funded_party(&chain, home, "payee", 0).await;
    let payer_tokens = ata(&payer.pubkey(), &mint);
    let payee_tokens = ata(&payee.pubkey(), &mint);
    let as_payer = |args: &[&str]| {
        let mut all = vec![
            "--rpc-url",
            chain.rpc_url(),
            "--keypair",
            payer_file.to_str().unwrap(),
            "--json",
        ];
        all.extend_from_slice(args);
        all.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        paychan_async(home, &args).await
    };

    // open: a decimal deposit (10.5 tokens at 6 decimals), a generated session key.
    let (payee_s, mint_s) = (payee.pubkey().to_string(), mint.to_string());
    let opened = run(as_payer(&[
        "channel",
        "open",
        "--payee",
        &payee_s,
        "--mint",
        &mint_s,
        "--deposit",
        "10.5",
        "--grace-period",
        "600",
    ]))
    .await
    .ok()
    .json();
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
    assert_eq!(
        chain.token_balance(&payer_tokens).await.unwrap(),
        50_000_000 - 10_500_000
    );

    // top-up in base units.
    let address_s = address.to_string();
    let topped = run(as_payer(&[
        "channel",
        "top-up",
        "--channel",
        &address_s,
        "--amount",
        "2000000",
    ]))
    .await
    .ok()
    .json();
    assert_eq!(topped["deposit"]["amount"], "12500000");
    assert_eq!(chain.channel(&address).await.unwrap().deposit, 12_500_000);
    assert_eq!(
        chain.token_balance(&payer_tokens).await.unwrap(),
        50_000_000 - 12_500_000
    );

    // An amount finer than the mint's decimals is refused before anything is sent.
    let bad = run(as_payer(&[
        "channel",
        "top-up",
        "--channel",
        &address_s,
        "--amount",
        "0.0000001",
    ]))
    .await;
    assert_eq!(bad.code, 2, "{bad:?}");
    assert_eq!(bad.json()["error"]["kind"], "amount");

    // More than the payer holds: refused with a clear message (exit 4).
    let poor = run(as_payer(&[
        "channel",
        "top-up",
        "--channel",
        &address_s,
        "--amount",
        "1000.0",
    ]))
    .await;
    assert_eq!(poor.code, 4, "{poor:?}");
    assert!(poor.stderr.contains("less than 1000.000000"), "{poor:?}");

    // status.
    let status = run(as_payer(&["channel", "status", "--channel", &address_s]))
        .await
        .ok()
        .json();
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
    let table = run(vec![
        "--rpc-url".into(),
        chain.rpc_url().into(),
        "channel".into(),
        "status".into(),
        "--channel".into(),
        address_s.clone(),
    ])
    .await
    .ok();
    assert!(
        table.stdout.contains("status              open"),
        "{table:?}"
    );
    assert!(
        table.stdout.contains("12.500000 (12500000 base units)"),
        "{table:?}"
    );

    // Only the payer may request the close: the payee's keypair is refused (exit 2).
    let wrong = run(vec![
        "--rpc-url".into(),
        chain.rpc_url().into(),
        "--keypair".into(),
        payee_file.to_str().unwrap().into(),
        "channel".into(),
        "request-close".into(),
        "--channel".into(),
        address_s.clone(),
    ])
    .await;
    assert_eq!(wrong.code, 2, "{wrong:?}");
    assert!(
        wrong.stderr.contains("not this channel's payer"),
        "{wrong:?}"
    );

    // request-close.
    let requested = run(as_payer(&[
        "channel",
        "request-close",
        "--channel",
        &address_s,
    ]))
    .await
    .ok()
    .json();
    let started = requested["close_requested_at"].as_i64().unwrap();
    assert!(started > 0);
    assert_eq!(requested["finalize_after"].as_i64(), Some(started + 600));
    let status = run(as_payer(&["channel", "status", "--channel", &address_s]))
        .await
        .ok()
        .json();
    assert_eq!(status["status"], "closing");
    assert_eq!(status["finalize_after"].as_i64(), Some(started + 600));
    assert_eq!(
        chain.channel(&address).await.unwrap().status().unwrap(),
        ChannelStatus::Closing
    );

    // finalize during the grace period: the program's GracePeriodActive, exit 4.
    let early = run(as_payer(&["channel", "finalize", "--channel", &address_s])).await;
    assert_eq!(early.code, 4, "{early:?}");
    let error = early.json();
    assert_eq!(error["error"]["name"], "GracePeriodActive", "{early:?}");
    assert_eq!(error["error"]["code"], 6015);
    assert!(early.stderr.contains("GracePeriodActive"), "{early:?}");

    // After the grace period, anyone (here the payee) finalizes; the payer is refunded.
    chain.time_travel_to(started + 601).await.unwrap();
    let finalized = run(vec![
        "--rpc-url".into(),
        chain.rpc_url().into(),
        "--keypair".into(),
        payee_file.to_str().unwrap().into(),
        "--json".into(),
        "channel".into(),
        "finalize".into(),
        "--channel".into(),
        address_s.clone(),
    ])
    .await
    .ok()
    .json();
    assert_eq!(finalized["refunded"]["amount"], "12500000");
    assert_eq!(
        chain.token_balance(&payer_tokens).await.unwrap(),
        50_000_000
    );
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
    let opened = run(as_payer(&[
        "channel",
        "open",
        "--payee",
        &payee_s,
        "--mint",
        &mint_s,
        "--deposit",
        "3000000",
        "--signer-keyfile",
        session_file.to_str().unwrap(),
    ]))
    .await
    .ok()
    .json();
    assert_eq!(opened["signer_generated"], false);
    assert_eq!(opened["grace_period"], 3600);
    let second: Pubkey = opened["channel"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        chain.channel(&second).await.unwrap().authorized_signer,
        read_keypair(&session_file).pubkey()
    );
    assert_eq!(
        chain.token_balance(&payer_tokens).await.unwrap(),
        47_000_000
    );
    let second_s = second.to_string();
    // The payer may not close cooperatively.
    let wrong = run(as_payer(&["channel", "close", "--channel", &second_s])).await;
    assert_eq!(wrong.code, 2, "{wrong:?}");
    let closed = run(vec![
        "--rpc-url".into(),
        chain.rpc_url().into(),
        "--keypair".into(),
        payee_file.to_str().unwrap().into(),
        "--json".into(),
        "channel".into(),
        "close".into(),
        "--channel".into(),
        second_s.clone(),
    ])
    .await
    .ok()
    .json();
    assert_eq!(closed["refunded"]["amount"], "3000000");
    assert_eq!(
        chain.token_balance(&payer_tokens).await.unwrap(),
        50_000_000
    );
    assert_eq!(chain.token_balance(&payee_tokens).await.unwrap(), 0);

    // A channel that does not exist is an on-chain error: exit 4.
    let missing = Pubkey::new_unique().to_string();
    let run_missing = run(as_payer(&["channel", "status", "--channel", &missing])).await;
    assert_eq!(run_missing.code, 4, "{run_missing:?}");
    assert_eq!(run_missing.json()["error"]["kind"], "account");

    // Another program id cannot be sent transactions (exit 2).
    let other = run(as_payer(&[
        "--program-id",
        &Pubkey::new_unique().to_string(),
        "channel",
        "top-up",
        "--channel",
        &second_s,
        "--amount",
        "1",
    ]))
    .await;
    assert_eq!(other.code, 2, "{other:?}");

    chain.shutdown().unwrap();
}

/// `paychan serve` with a routes file: 402 with the offer on a priced route,
/// 200 on a free one; `paychan facilitator` answers `/supported`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_and_facilitator_answer_on_a_local_chain() {
    let chain = LocalChain::start(LocalChainConfig::default())
        .await
        .expect("the chain starts");
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let mint = chain.mint();
    let (payee, payee_file) = funded_party(&chain, home, "payee", 0).await;
    let genesis = chain.rpc_client().get_genesis_hash().await.unwrap();
    let network = format!("solana:{}", &genesis.to_string()[..32]);
    let routes = home.join("api.toml");
    std::fs::write(
        &routes,
        format!(
            r#"
listen = "127.0.0.1:0"
mint = "{mint}"
store = "redb:vouchers.redb"
grace_period = 900
[[routes]]
path = "/joke"
price = "0.001"
description = "a joke"
response = "paid joke"
[[routes]]
path = "/free"
price = "0"
response = {{ hello = "world" }}
"#
        ),
    )
    .unwrap();
    let (keypair, routes) = (payee_file.to_str().unwrap(), routes.to_str().unwrap());
    let (server, url) = spawn_server(
        home,
        &[
            "--rpc-url",
            chain.rpc_url(),
            "--keypair",
            keypair,
            "serve",
            "--routes",
            routes,
        ],
    )
    .await;
    let http = reqwest::Client::new();
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

    let (facilitator, url) = spawn_server(
        home,
        &[
            "--rpc-url",
            chain.rpc_url(),
            "--keypair",
            keypair,
            "facilitator",
            "--routes",
            routes,
            "--store",
            &format!("redb:{}", home.join("facilitator.redb").display()),
        ],
    )
    .await;
    let supported: Value = serde_json::from_str(
        &http
            .get(format!("{url}/supported"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(supported["kinds"][0]["x402Version"], 2);
    assert_eq!(supported["kinds"][0]["scheme"], "paychan");
    assert_eq!(supported["kinds"][0]["network"], network);
    assert_eq!(supported["kinds"][1]["x402Version"], 1);
    assert_eq!(
        supported["signers"]["solana:*"][0],
        payee.pubkey().to_string()
    );
    // Without a token, /verify and /settle are open to loopback callers.
    let verify = http
        .post(format!("{url}/verify"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        verify.status(),
        400,
        "open on loopback, the body is just wrong"
    );
    terminate(facilitator).await;

    // Beyond loopback, a token is required to start at all.
    let run = paychan_async(
        home,
        &[
            "--rpc-url",
            chain.rpc_url(),
            "--keypair",
            keypair,
            "facilitator",
            "--routes",
            routes,
            "--listen",
            "0.0.0.0:0",
            "--no-settler",
            "--store",
            &format!("redb:{}", home.join("open.redb").display()),
        ],
    )
    .await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("facilitator_token"), "{run:?}");

    // With a token (from the environment), /verify and /settle need it.
    let (facilitator, url) = spawn_server_env(
        home,
        &[("PAYCHAN_FACILITATOR_TOKEN", "s3cret-token")],
        &[
            "--rpc-url",
            chain.rpc_url(),
            "--keypair",
            keypair,
            "facilitator",
            "--routes",
            routes,
            "--no-settler",
            "--store",
            &format!("redb:{}", home.join("token.redb").display()),
        ],
    )
    .await;
    for path in ["/verify", "/settle"] {
        let denied = http
            .post(format!("{url}{path}"))
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(denied.status(), 401, "{path}");
        let wrong = http
            .post(format!("{url}{path}"))
            .bearer_auth("s3cret-tokem")
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401, "{path}");
        let allowed = http
            .post(format!("{url}{path}"))
            .bearer_auth("s3cret-token")
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            allowed.status(),
            400,
            "{path}: past the token, the body is checked"
        );
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
    let (server, url) = spawn_server(
        home,
        &[
            "--rpc-url",
            chain.rpc_url(),
            "--keypair",
            "/nonexistent/payee.json",
            "serve",
            "--routes",
            routes,
            "--no-settler",
            "--payee",
            &payee.pubkey().to_string(),
            "--store",
            &format!("redb:{}", home.join("keyless.redb").display()),
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

    let chain = LocalChain::start(LocalChainConfig::default())
        .await
        .expect("the chain starts");
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let mint = chain.mint();
    let (payee, payee_file) = funded_party(&chain, home, "payee", 0).await;
    let (client, _) = funded_party(&chain, home, "client", 1_000_000).await;
    let routes = home.join("exact.toml");
    std::fs::write(
        &routes,
        format!(
            r#"
listen = "127.0.0.1:0"
mint = "{mint}"
store = "redb:exact.redb"
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
"#
        ),
    )
    .unwrap();
    let (keypair, routes) = (payee_file.to_str().unwrap(), routes.to_str().unwrap());
    let (server, url) = spawn_server(
        home,
        &[
            "--rpc-url",
            chain.rpc_url(),
            "--keypair",
            keypair,
            "serve",
            "--routes",
            routes,
        ],
    )
    .await;
    let http = reqwest::Client::new();
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
    let run = paychan_async(
        home,
        &[
            "--rpc-url",
            chain.rpc_url(),
            "--keypair",
            nobody_file.to_str().unwrap(),
            "serve",
            "--routes",
            routes,
            "--no-settler",
            "--store",
            &format!("redb:{}", home.join("nobody.redb").display()),
        ],
    )
    .await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("associated token account")
            && run.stderr.contains(&nobody.pubkey().to_string()),
        "{run:?}"
    );

    let (facilitator, url) = spawn_server(
        home,
        &[
            "--rpc-url",
            chain.rpc_url(),
            "--keypair",
            keypair,
            "facilitator",
            "--routes",
            routes,
            "--store",
            &format!("redb:{}", home.join("facilitator.redb").display()),
        ],
    )
    .await;
    let supported: v2::SupportedResponse = serde_json::from_str(
        &http
            .get(format!("{url}/supported"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    let exact = supported
        .kinds
        .iter()
        .find(|k| k.scheme == "exact")
        .expect("the exact kind");
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

    let chain = LocalChain::start(LocalChainConfig::default())
        .await
        .expect("the chain starts");
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let mint = chain.mint();
    let (payee, payee_file) = funded_party(&chain, home, "payee", 0).await;
    let payer = Keypair::new();
    chain.fund_sol(&payer.pubkey(), 10 * SOL).await.unwrap();
    let payer_tokens = chain
        .create_token_account(&payer.pubkey(), 5_000_000)
        .await
        .unwrap();
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
    let args = [
        "--rpc-url",
        chain.rpc_url(),
        "--keypair",
        payee_file.to_str().unwrap(),
        "--json",
        "settle",
        "--store",
        &store,
        "--mint",
        &mint_s,
        "--once",
    ];
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
    let daemon_args = [
        "--rpc-url",
        chain.rpc_url(),
        "--keypair",
        payee_file.to_str().unwrap(),
        "settle",
        "--store",
        &store,
        "--mint",
        &mint_s,
        "--metrics-addr",
        "127.0.0.1:0",
    ];
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
    let run = paychan(
        home.path(),
        &[],
        &[
            "demo",
            "--requests",
            "60",
            "--price",
            "2500",
            "--concurrency",
            "3",
            "--json",
        ],
    )
    .ok();
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
