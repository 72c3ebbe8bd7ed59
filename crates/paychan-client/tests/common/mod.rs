//! Setup shared by the tests that run the paying agent against the real
//! paywall on the embedded chain (`chain.rs`, `e2e.rs`, `ts_*.rs`, …).
#![allow(dead_code, clippy::unwrap_used)]

use std::{path::PathBuf, sync::Arc, time::Duration};

use axum::{Extension, Router, http::StatusCode};
use paychan_client::PaychanClient;
use paychan_localnet::{LocalChain, LocalChainConfig, MINT_DECIMALS};
use paychan_sdk::Pubkey;
use paychan_settler::{MintAccounts, Settler, SettlerConfig};
use paychan_verifier::{
    Receipt, Verifier, VoucherStore,
    rpc::RpcChannels,
    store::{Durability, RedbStore},
};
use paychan_x402::{
    codec,
    network::caip2_for_genesis,
    scheme::PaychanExtra,
    server::{Paywall, PaywallConfig},
    v2,
};
use reqwest_middleware::ClientWithMiddleware;
use solana_keypair::Keypair;
use solana_signer::Signer;

pub use paychan_testkit::chain::{SOL, Tokens, party};

/// The price of the paid routes.
pub const PRICE: u64 = 1_000;

/// Starts the embedded chain; returns it and its CAIP-2 id.
pub async fn start() -> (LocalChain, String) {
    let chain = LocalChain::start(LocalChainConfig::default())
        .await
        .unwrap();
    let network = network(&chain).await;
    (chain, network)
}

/// A payer with SOL and tokens, and a state directory of its own.
pub struct Payer {
    pub key: Keypair,
    pub tokens: Pubkey,
    pub dir: tempfile::TempDir,
}

impl Payer {
    /// With 10 SOL and `tokens`.
    pub async fn new(chain: &LocalChain, tokens: Tokens) -> Self {
        let party = party(chain, 10 * SOL, tokens).await;
        Self {
            key: party.key,
            tokens: party.tokens,
            dir: tempfile::tempdir().unwrap(),
        }
    }
}

/// The paywall paid to `payee` over RPC channel snapshots (kept fresh
/// through the websocket subscription) and `store`.
pub struct RpcPaywall<S> {
    pub paywall: Paywall<Arc<RpcChannels>, Arc<S>>,
    pub store: Arc<S>,
    _updater: tokio::task::JoinHandle<()>,
}

pub fn rpc_paywall<S: VoucherStore + 'static>(
    chain: &LocalChain,
    network: &str,
    payee: Pubkey,
    store: S,
    price: u64,
) -> RpcPaywall<S> {
    let channels = Arc::new(RpcChannels::new(chain.rpc_url(), paychan_sdk::ID, payee));
    let _updater =
        channels.spawn_updater(Some(chain.ws_url().to_string()), Duration::from_millis(100));
    let store = Arc::new(store);
    let verifier = Arc::new(Verifier::new(
        channels,
        store.clone(),
        terms(payee, chain.mint(), price),
    ));
    let paywall = Paywall::new(
        verifier,
        PaywallConfig::new(network.to_owned(), extra(&payee)),
    );
    RpcPaywall {
        paywall,
        store,
        _updater,
    }
}

/// [`rpc_paywall`] with the redb store committing every voucher (in a
/// temporary directory, kept with it).
pub struct RedbPaywall {
    pub server: RpcPaywall<RedbStore>,
    _dir: tempfile::TempDir,
}

/// A payee (10 SOL, an empty associated token account: returned) and its
/// [`RedbPaywall`].
pub async fn payee_with_redb_paywall(
    chain: &LocalChain,
    network: &str,
    price: u64,
) -> (Keypair, Pubkey, RedbPaywall) {
    let payee = party(chain, 10 * SOL, Tokens::Associated(0)).await;
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path().join("vouchers.redb"), Durability::Sync).unwrap();
    let server = rpc_paywall(chain, network, payee.key.pubkey(), store, price);
    let paywall = RedbPaywall { server, _dir: dir };
    (payee.key, payee.tokens, paywall)
}

/// A paid route's handler: `charged <amount>`.
pub async fn charged(Extension(r): Extension<Receipt>) -> String {
    format!("charged {}", r.charged)
}

/// The settler of `payee` sweeping `store` (every channel, any value).
pub fn sweeper<S: VoucherStore>(chain: &LocalChain, payee: &Keypair, store: S) -> Settler<S> {
    let mut config = SettlerConfig::new(
        payee.insecure_clone(),
        MintAccounts::new(chain.mint(), paychan_sdk::TOKEN_PROGRAM_ID, u64::MAX),
    );
    config.confirm_poll = Duration::from_millis(10);
    config.backoff = Duration::from_millis(20);
    let rpc = paychan_testkit::chain::confirmed_rpc(chain);
    Settler::new(config, store, Arc::new(rpc)).unwrap()
}

/// GETs `url` and asserts a 200 (saying why a 402 refused the payment).
pub async fn get_200(http: &ClientWithMiddleware, url: &str) -> reqwest::Response {
    let res = http.get(url).send().await.unwrap();
    let why = res
        .headers()
        .get("payment-required")
        .and_then(|h| codec::decode::<v2::PaymentRequired>(h.as_bytes()).ok())
        .map(|r| format!("{:?} {:?}", r.error, r.extensions));
    assert_eq!(res.status(), StatusCode::OK, "{url}: {why:?}");
    res
}

/// The TypeScript package, `clients/ts`.
pub fn package_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../clients/ts"))
}

/// Fails (never skips) when one of the package's `needed` files is missing.
pub fn assert_installed(needed: &[&str]) {
    let dir = package_dir();
    for needed in needed {
        assert!(
            dir.join(needed).is_file(),
            "clients/ts/{needed} is missing: run `npm ci --prefix clients/ts` \
             (scripts/test.sh does) before this test"
        );
    }
}

/// Serves `app` on 127.0.0.1 (a free port); returns its base URL.
pub async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// The chain's CAIP-2 id, as the paywall derives it from the genesis hash.
pub async fn network(chain: &LocalChain) -> String {
    caip2_for_genesis(
        &chain
            .rpc_client()
            .get_genesis_hash()
            .await
            .unwrap()
            .to_string(),
    )
}

/// The terms of a paywall paid to `payee` in `mint`, with the grace period
/// and minimum deposit its offers advertise (`extra`).
pub fn terms(payee: Pubkey, mint: Pubkey, price: u64) -> paychan_verifier::Terms {
    let mut terms = paychan_verifier::Terms::new(paychan_sdk::ID, payee, mint, price);
    terms.min_grace_period = 900;
    terms.min_deposit = 5_000;
    terms
}

/// The offer's `extra` of a paywall paid to `payee`.
pub fn extra(payee: &Pubkey) -> PaychanExtra {
    PaychanExtra {
        program_id: paychan_sdk::ID.to_string(),
        token_program: paychan_sdk::TOKEN_PROGRAM_ID.to_string(),
        decimals: MINT_DECIMALS,
        grace_period_seconds: 900,
        minimum_deposit: "5000".into(),
        fee_payer: Some(payee.to_string()),
    }
}

/// A reqwest client paying with `client` (the documented one: no redirect
/// leaves a request's origin).
pub fn http(client: &PaychanClient) -> ClientWithMiddleware {
    client.http_client().unwrap()
}

/// Runs the package's `test/integration/<script>` with Node (blocking, off
/// the runtime's workers) on `input`; asserts it succeeded and returns the
/// report it wrote to `output`.
pub async fn run_integration(
    script: &'static str,
    input: &std::path::Path,
    output: &std::path::Path,
) -> serde_json::Value {
    let (i, o) = (input.to_owned(), output.to_owned());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(format!("test/integration/{script}"))
            .arg(&i)
            .arg(&o)
            .current_dir(package_dir())
            .output()
            .unwrap_or_else(|e| panic!("cannot run `node` (install Node.js ≥ 20): {e}"))
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{script} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&std::fs::read(output).unwrap()).unwrap()
}
