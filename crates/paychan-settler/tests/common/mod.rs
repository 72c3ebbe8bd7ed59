//! Helpers shared by the chain tests: parties, channels, vouchers and
//! settlers on the embedded chain.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    unreachable_pub
)]

use std::{future::Future, sync::Arc, time::Duration};

use ed25519_dalek::SigningKey;
use paychan_localnet::{LocalChain, LocalChainConfig};
use paychan_sdk::Pubkey;
use paychan_sdk::ix::OpenArgs;
use paychan_sdk::{TOKEN_PROGRAM_ID, ix};
use paychan_settler::{MintAccounts, Settler, SettlerConfig, SweepReport, VoucherPath};
use paychan_testkit::chain::{self as testkit, Tokens};
use paychan_verifier::{AcceptOutcome, MemoryStore, VoucherStore};
use paychan_voucher::{SignedVoucher, VoucherV1, sign_v1};
use solana_signer::Signer;
use tokio::{sync::oneshot, task::JoinHandle};

pub use paychan_testkit::chain::{Party, SOL};
pub const DEPOSIT: u64 = 1_000_000;
pub const GRACE: i64 = 600;

/// A payer holding `tokens` in a token account that is not its associated
/// one (the settler must never create that one with the payee's lamports).
pub async fn party(chain: &LocalChain, tokens: u64) -> Party {
    testkit::party(chain, 10 * SOL, Tokens::Fresh(tokens)).await
}

/// A payer holding `tokens` in its associated token account.
pub async fn ata_party(chain: &LocalChain, tokens: u64) -> Party {
    testkit::party(chain, 10 * SOL, Tokens::Associated(tokens)).await
}

/// `owner`'s associated token account in the chain's mint.
pub fn associated_tokens(chain: &LocalChain, owner: &Pubkey) -> Pubkey {
    paychan_sdk::pda::associated_token_account(owner, &chain.mint(), &TOKEN_PROGRAM_ID)
}

/// A payee with its associated token account: the program pays it only there.
pub async fn payee_party(chain: &LocalChain) -> Party {
    ata_party(chain, 0).await
}

/// An open channel of `payer` to `payee`.
pub struct Chan {
    pub address: Pubkey,
    pub signer: SigningKey,
}

impl Chan {
    pub fn voucher(&self, cumulative: u64, expires_at: i64) -> SignedVoucher {
        sign_v1(
            &self.signer,
            &VoucherV1 {
                channel_id: self.address.to_bytes(),
                cumulative_amount: cumulative,
                expires_at,
            },
        )
    }
}

pub async fn open(chain: &LocalChain, payer: &Party, payee: &Pubkey, salt: u64) -> Chan {
    let signer = SigningKey::generate(&mut rand::rngs::OsRng);
    let args = OpenArgs {
        salt,
        open_slot: chain.rpc_client().get_slot().await.unwrap(),
        deposit: DEPOSIT,
        grace_period: GRACE,
        authorized_signer: Pubkey::new_from_array(signer.verifying_key().to_bytes()),
    };
    let accounts = ix::OpenAccounts {
        payer: payer.key.pubkey(),
        rent_payer: payer.key.pubkey(),
        payee: *payee,
        mint: chain.mint(),
        payer_tokens: payer.tokens,
        token_program: TOKEN_PROGRAM_ID,
    };
    let (ix, address) = ix::open(&accounts, args);
    chain.send(&[ix], &payer.key, &[]).await.expect("open");
    Chan { address, signer }
}

/// Channels of `payer` to `payee`, one per salt.
pub async fn open_many(
    chain: &LocalChain,
    payer: &Party,
    payee: &Pubkey,
    salts: std::ops::Range<u64>,
) -> Vec<Chan> {
    let mut chans = Vec::new();
    for salt in salts {
        chans.push(open(chain, payer, payee, salt).await);
    }
    chans
}

pub fn accept(store: &MemoryStore, voucher: &SignedVoucher) {
    assert!(
        matches!(store.accept_now(voucher, 0, 1), AcceptOutcome::Accepted(_)),
        "the store accepts the voucher"
    );
}

pub fn make_settler<S: VoucherStore>(
    chain: &LocalChain,
    payee: &Party,
    threshold: u64,
    store: S,
) -> Settler<S> {
    make_settler_with(chain, payee, threshold, store, |_| {})
}

pub fn make_settler_with<S: VoucherStore>(
    chain: &LocalChain,
    payee: &Party,
    threshold: u64,
    store: S,
    adjust: impl FnOnce(&mut SettlerConfig),
) -> Settler<S> {
    let mut config = SettlerConfig::new(
        payee.key.insecure_clone(),
        MintAccounts::new(chain.mint(), TOKEN_PROGRAM_ID, threshold),
    );
    config.grace_margin = Duration::from_secs(300);
    config.expiry_margin = Duration::from_secs(300);
    config.confirm_poll = Duration::from_millis(10);
    config.backoff = Duration::from_millis(20);
    config.sweep_on_start = false;
    // The tests written before `settle_signed` check the precompile path's
    // packing and fees (`[ed25519 ×N, settle]`); the path choice has its
    // own tests (`chain.rs`, "…cheaper path…"), which set `path` back.
    config.path = Some(VoucherPath::Precompile);
    adjust(&mut config);
    Settler::new(config, store, Arc::new(testkit::confirmed_rpc(chain)))
        .expect("a valid configuration")
}

pub fn print_costs(what: &str, report: &SweepReport) {
    for tx in &report.transactions {
        println!(
            "{what}: {} vouchers ({}), {} CU, fee {} lamports ({})",
            tx.channels.len(),
            tx.path.as_str(),
            tx.compute_units
                .map_or_else(|| "?".to_string(), |c| c.to_string()),
            tx.fee_lamports,
            tx.signature
        );
    }
}

/// Settler logs (INFO) in the test output; shown with `--nocapture`.
pub fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_test_writer()
        .try_init();
}

pub async fn start() -> LocalChain {
    logs();
    LocalChain::start(LocalChainConfig::default())
        .await
        .expect("the chain starts")
}

/// `name`'s value in the settler's metrics text (0 when absent).
pub fn metric<S: VoucherStore>(settler: &Settler<S>, name: &str) -> u64 {
    settler
        .metrics_text()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

/// Runs `settler` as the daemon until the returned sender fires.
pub fn spawn_daemon<S: VoucherStore + Send + Sync + 'static>(
    settler: Arc<Settler<S>>,
) -> (oneshot::Sender<()>, JoinHandle<()>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        settler
            .run(async {
                let _ = stopped.await;
            })
            .await;
    });
    (stop, task)
}

/// Stops a daemon of [`spawn_daemon`]: it must end within 10 s (`stops`
/// says so when it does not).
pub async fn stop_daemon(stop: oneshot::Sender<()>, task: JoinHandle<()>, stops: &str) {
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect(stops)
        .unwrap();
}

/// Polls `done` every `every` until it holds; after 20 s fails saying that
/// `what` did not happen.
pub async fn wait_until<F: Future<Output = bool>>(
    what: &str,
    every: Duration,
    mut done: impl FnMut() -> F,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(every).await;
    }
}
