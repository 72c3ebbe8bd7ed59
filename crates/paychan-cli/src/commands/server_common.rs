//! What `paychan serve`, `paychan facilitator` and `paychan settle` share:
//! the server config file (`--routes FILE`, or `[serve]` in the main
//! config), the voucher store, the verifier over RPC, the payee's token
//! account, the settler and its metrics endpoint.
//!
//! Reusable pieces: [`open_store`], [`AnyStore`], [`network_for`],
//! [`ensure_payee_tokens`], [`build_settler`], [`spawn_settler`],
//! [`serve_metrics`], [`paywall_router`] and [`shutdown_signal`].
use std::{
    future::Future,
    net::SocketAddr,
    path::{Path, PathBuf},
    str::FromStr,
    sync::Arc,
    time::Duration,
};

use axum::{
    Router,
    http::{HeaderValue, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
    routing::get,
};
use clap::Args;
use futures_util::future::Either;
use paychan_sdk::Pubkey;
use paychan_settler::{
    MintAccounts, RedisLease, SettleHandle, SettleLease, Settler, SettlerConfig,
};
use paychan_verifier::{
    AcceptOutcome, Accepted, SignedVoucher, StoreError, Terms, Verifier, VoucherStore,
    rpc::RpcChannels,
    store::{Durability, RedbStore, RedisStore},
};
use paychan_x402::{
    network::caip2_for_genesis,
    scheme::PaychanExtra,
    server::{
        Paywall,
        exact::{ExactConfig, ExactLimits, ExactSettler},
    },
};
use serde::Deserialize;
use solana_keypair::Keypair;
use solana_rpc_client::nonblocking::rpc_client::RpcClient;
use solana_signer::Signer;

use super::Context;
use crate::{
    amount::AmountInput,
    chain::{Chain, MintInfo, associated_token_address, create_associated_token_account},
    cli::parse_pubkey,
    config::FileConfig,
    error::CliError,
};

/// The voucher store when none is configured.
pub const DEFAULT_STORE: &str = "redb:paychan-vouchers.redb";
/// Where `paychan serve` listens by default.
pub const DEFAULT_SERVE_LISTEN: &str = "127.0.0.1:8402";
/// Where `paychan facilitator` listens by default.
pub const DEFAULT_FACILITATOR_LISTEN: &str = "127.0.0.1:8403";
/// Where `paychan settle` serves `/metrics` by default.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";
/// Default grace period servers require of channels, seconds.
pub const DEFAULT_GRACE_PERIOD_SECS: i64 = 3_600;
/// Default settlement threshold per channel: one whole token.
pub const DEFAULT_THRESHOLD: &str = "1.0";
/// Most routes in a config file.
pub const MAX_ROUTES: usize = 1_000;
/// Largest static response body of a route, bytes.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// OpenMetrics text, as `prometheus-client` encodes it.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A paywalled route of the example API.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Its path (`/joke`), served for GET.
    pub path: String,
    /// Its price: base units (`1000`) or a decimal amount (`0.001`); `0` is free.
    pub price: String,
    /// `resource.description` of its offer.
    pub description: Option<String>,
    /// `resource.mimeType` of its offer and the response's content type
    /// [default: `application/json` for tables and arrays, `text/plain` for strings].
    pub mime_type: Option<String>,
    /// The body served once paid: a string (text) or a table / array (JSON).
    pub response: serde_json::Value,
    /// Whether the route also offers the x402 `exact` scheme (after
    /// `paychan`) [default: `enabled` of `[exact]`].
    pub exact: Option<bool>,
}

/// The server config file (`--routes FILE`) or the `[serve]` table of the
/// main config; every key is documented in `serve.example.toml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// `host:port` to listen on.
    pub listen: Option<String>,
    /// The CAIP-2 network; checked against the RPC node's genesis hash.
    pub network: Option<String>,
    /// Who gets paid [default: the keypair's pubkey].
    pub payee: Option<String>,
    /// The token mint.
    pub mint: Option<String>,
    /// Grace period required of channels, seconds.
    pub grace_period: Option<i64>,
    /// Smallest deposit accepted (amount).
    pub minimum_deposit: Option<String>,
    /// `redb:<path>` or `redis://host:port/db`.
    pub store: Option<String>,
    /// redb durability: `sync` or `batched:<ms>`.
    pub durability: Option<String>,
    /// Websocket URL for channel updates [default: none, polling only].
    pub ws_url: Option<String>,
    /// How often tracked channels are re-read, milliseconds.
    pub poll_interval_ms: Option<u64>,
    /// Settle a channel once this much is unsettled (amount).
    pub settle_threshold: Option<String>,
    /// Seconds between the settler's due-checks.
    pub settle_interval: Option<u64>,
    /// Seconds between the settler's sweeps.
    pub sweep_interval: Option<u64>,
    /// Default `resource.description`.
    pub description: Option<String>,
    /// Where clients reach the server (`https://api.example.com`); offers
    /// then carry absolute `resource.url`s [default: the request path].
    pub public_url: Option<String>,
    /// The bearer token `paychan facilitator` requires on `/verify` and
    /// `/settle` [default: the `PAYCHAN_FACILITATOR_TOKEN` environment
    /// variable; without either it listens on loopback only].
    pub facilitator_token: Option<String>,
    /// The least a facilitator payment may pay (amount) [default: the
    /// cheapest route's price].
    pub facilitator_min_price: Option<String>,
    /// Timeouts and limits of the HTTP server.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The x402 `exact` scheme (opt-in).
    #[serde(default)]
    pub exact: ExactFileConfig,
    /// The example API.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
}

/// `[limits]` of the server config: what one client may take of the server.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Time a client has to send a request's head, milliseconds [default: 5000].
    pub header_read_timeout_ms: Option<u64>,
    /// Time a request has from its head to its answer, milliseconds [default: 30000].
    pub request_timeout_ms: Option<u64>,
    /// Largest request body, bytes [default: 1048576].
    pub max_body_bytes: Option<usize>,
    /// Connections open at once [default: 1024].
    pub max_connections: Option<usize>,
    /// Requests in flight at once; more get 503 [default: 256].
    pub max_in_flight: Option<usize>,
    /// Channel look-ups over RPC in flight at once; more get 503 [default: 64].
    pub max_channel_loads: Option<usize>,
}

/// `[exact]` of the server config: the x402 `exact` scheme, settled by
/// this server (the `--keypair` signs as fee payer and pays every exact
/// transaction's fee, about 10,000 lamports a request).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExactFileConfig {
    /// Offer `exact` on every priced route (a route's own `exact` key
    /// wins); `paychan facilitator` settles `exact` when true [default: false].
    pub enabled: Option<bool>,
    /// Highest compute-unit limit a payment may set [default: 50000].
    pub max_compute_units: Option<u32>,
    /// Highest compute-unit price, micro-lamports [default: 50000].
    pub max_compute_unit_price: Option<u64>,
    /// Exact settlements in flight at once; more get 503 [default: 16].
    pub max_in_flight: Option<usize>,
    /// How long a sent transaction is awaited, milliseconds [default: 60000].
    pub confirm_timeout_ms: Option<u64>,
    /// `extra.memo` of the offers: every payment must carry exactly this
    /// Memo (at most 256 bytes) [default: none].
    pub memo: Option<String>,
}

impl ExactFileConfig {
    /// Whether `exact` is on for routes without their own key.
    pub fn enabled(&self) -> bool {
        self.enabled.unwrap_or(false)
    }

    /// The settler's limits, defaults filled in.
    pub fn limits(&self) -> ExactLimits {
        let d = ExactLimits::default();
        ExactLimits {
            max_compute_units: self.max_compute_units.unwrap_or(d.max_compute_units),
            max_compute_unit_price: self
                .max_compute_unit_price
                .unwrap_or(d.max_compute_unit_price),
            max_in_flight: self.max_in_flight.unwrap_or(d.max_in_flight),
            confirm_timeout: self
                .confirm_timeout_ms
                .map_or(d.confirm_timeout, Duration::from_millis),
            ..d
        }
    }
}

/// The `exact` settlement of a server: the payee's associated token
/// account must exist (the in-process settler creates it; with
/// `--no-settler` it is a startup error), and `fee_payer` (the `--keypair`)
/// must hold at least one worst-case fee.
pub async fn start_exact(
    chain: &Chain,
    setup: &ServerSetup,
    fee_payer: &Keypair,
) -> Result<Arc<ExactSettler>, CliError> {
    let config = ExactConfig {
        network: setup.network.clone(),
        pay_to: setup.payee,
        mint: setup.mint,
        fee_payer: fee_payer.insecure_clone(),
        memo: setup.file.exact.memo.clone(),
        limits: setup.file.exact.limits(),
    };
    let settler = ExactSettler::connect(chain.url(), config)
        .await
        .map_err(|e| CliError::Usage(format!("exact: {e}")))?;
    Ok(Arc::new(settler))
}

impl LimitsConfig {
    /// The HTTP limits, defaults filled in.
    pub fn http(&self) -> paychan_x402::server::Limits {
        let d = paychan_x402::server::Limits::default();
        let ms = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_millis);
        paychan_x402::server::Limits {
            header_read_timeout: ms(self.header_read_timeout_ms, d.header_read_timeout),
            request_timeout: ms(self.request_timeout_ms, d.request_timeout),
            max_body: self.max_body_bytes.unwrap_or(d.max_body),
            max_connections: self.max_connections.unwrap_or(d.max_connections),
            max_in_flight: self.max_in_flight.unwrap_or(d.max_in_flight),
            shutdown_grace: d.shutdown_grace,
        }
    }

    /// The RPC look-up limits, defaults filled in.
    pub fn rpc(&self) -> paychan_verifier::rpc::RpcLimits {
        let d = paychan_verifier::rpc::RpcLimits::default();
        paychan_verifier::rpc::RpcLimits {
            max_loads_in_flight: self.max_channel_loads.unwrap_or(d.max_loads_in_flight),
        }
    }
}

impl ServeConfig {
    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Reads `path` (bounded like the main config); a relative redb store
    /// path is made relative to the file's directory.
    pub fn load(path: &Path) -> Result<Self, CliError> {
        let mut config = crate::config::load_toml(path, Self::parse)?;
        config.anchor_paths(path.parent());
        Ok(config)
    }

    fn anchor_paths(&mut self, dir: Option<&Path>) {
        if let (Some(store), Some(dir)) = (&self.store, dir)
            && let Ok(StoreSpec::Redb(p)) = store.parse::<StoreSpec>()
            && p.is_relative()
        {
            self.store = Some(format!("redb:{}", dir.join(p).display()));
        }
    }

    /// The named file, else the main config's `[serve]` table, else empty.
    pub fn resolve(ctx: &Context, file: Option<&Path>) -> Result<Self, CliError> {
        if let Some(path) = file {
            return Self::load(path);
        }
        match &ctx.settings.config_file {
            Some(path) => {
                let mut serve = FileConfig::load(path)?.serve.unwrap_or_default();
                serve.anchor_paths(path.parent());
                Ok(serve)
            }
            None => Ok(Self::default()),
        }
    }
}

/// Where accepted vouchers live.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// An embedded redb file (one process at a time).
    Redb(PathBuf),
    /// A Redis server shared by replicas.
    Redis(String),
}

/// A Redis URL may carry a password: only its scheme, host and port are shown.
impl std::fmt::Debug for StoreSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Redb(path) => f.debug_tuple("Redb").field(path).finish(),
            Self::Redis(url) => f
                .debug_tuple("Redis")
                .field(&paychan_verifier::redact::url(url))
                .finish(),
        }
    }
}

impl FromStr for StoreSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Some(path) = s.strip_prefix("redb:") {
            if path.is_empty() {
                return Err("redb: needs a file path".into());
            }
            return Ok(Self::Redb(PathBuf::from(path)));
        }
        if s.starts_with("redis://") || s.starts_with("redis+unix://") {
            return Ok(Self::Redis(s.to_string()));
        }
        Err(format!(
            "store {:?} must be redb:<path> or redis://host:port/db",
            paychan_verifier::redact::text(s)
        ))
    }
}

/// Parses `sync` or `batched:<ms>` (1..=1000 ms).
pub fn parse_durability(s: &str) -> Result<Durability, String> {
    match s.trim() {
        "sync" => Ok(Durability::Sync),
        other => {
            let ms = other
                .strip_prefix("batched:")
                .and_then(|ms| ms.parse::<u64>().ok())
                .filter(|ms| (1..=1_000).contains(ms))
                .ok_or_else(|| {
                    format!("durability {other:?} must be sync or batched:<1..=1000 ms>")
                })?;
            Ok(Durability::Batched {
                interval: Duration::from_millis(ms),
            })
        }
    }
}

/// The store behind `--store`: redb or Redis.
// One per process, behind an `Arc`: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum AnyStore {
    /// redb.
    Redb(RedbStore),
    /// Redis.
    Redis(RedisStore),
}

impl std::fmt::Debug for AnyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Redb(_) => f.write_str("AnyStore::Redb"),
            Self::Redis(r) => write!(f, "AnyStore::{r:?}"),
        }
    }
}

impl VoucherStore for AnyStore {
    fn accept(
        &self,
        voucher: &SignedVoucher,
        floor: u64,
        min_increment: u64,
    ) -> impl Future<Output = Result<AcceptOutcome, StoreError>> + Send {
        match self {
            Self::Redb(s) => Either::Left(s.accept(voucher, floor, min_increment)),
            Self::Redis(s) => Either::Right(s.accept(voucher, floor, min_increment)),
        }
    }

    fn latest(&self, channel: &Pubkey) -> Result<Option<Accepted>, StoreError> {
        match self {
            Self::Redb(s) => s.latest(channel),
            Self::Redis(s) => s.latest(channel),
        }
    }

    fn fetch_latest(
        &self,
        channel: &Pubkey,
    ) -> impl Future<Output = Result<Option<Accepted>, StoreError>> + Send {
        match self {
            Self::Redb(s) => Either::Left(s.fetch_latest(channel)),
            Self::Redis(s) => Either::Right(s.fetch_latest(channel)),
        }
    }

    fn cached(&self, channel: &Pubkey) -> Option<paychan_verifier::Latest> {
        match self {
            Self::Redb(s) => s.cached(channel),
            Self::Redis(s) => s.cached(channel),
        }
    }

    fn all_latest(&self) -> Result<Vec<Accepted>, StoreError> {
        match self {
            Self::Redb(s) => s.all_latest(),
            Self::Redis(s) => s.all_latest(),
        }
    }
}

/// Opens the store (Redis connects synchronously, off the async workers).
pub fn open_store(spec: &StoreSpec, durability: Durability) -> Result<AnyStore, CliError> {
    let fail = |what: String, e: StoreError| CliError::Usage(format!("{what}: {e}"));
    match spec {
        StoreSpec::Redb(path) => RedbStore::open(path, durability)
            .map(AnyStore::Redb)
            .map_err(|e| fail(format!("opening the redb store {}", path.display()), e)),
        StoreSpec::Redis(url) => {
            let connect = || RedisStore::connect(url);
            let store = match tokio::runtime::Handle::try_current() {
                Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                    tokio::task::block_in_place(connect)
                }
                _ => connect(),
            };
            store.map(AnyStore::Redis).map_err(|e| {
                let url = paychan_verifier::redact::url(url);
                fail(format!("connecting to the Redis store {url}"), e)
            })
        }
    }
}

/// The CAIP-2 network of the RPC node (`solana:` + its genesis hash prefix),
/// checked against `configured` when one is given.
pub async fn network_for(chain: &Chain, configured: Option<&str>) -> Result<String, CliError> {
    let genesis = chain
        .client()
        .get_genesis_hash()
        .await
        .map_err(|e| CliError::from_client(e, chain.url(), &[], &chain.program_id()))?;
    let network = caip2_for_genesis(&genesis.to_string());
    match configured {
        Some(c) if c != network => Err(CliError::Usage(format!(
            "network {c} is configured, but {} is {network} (genesis {genesis})",
            chain.url()
        ))),
        _ => Ok(network),
    }
}

/// The payee's payout account in `mint` (its associated token account, the
/// only account the program pays it in), created (the payee paying) when
/// missing.
pub async fn ensure_payee_tokens(
    chain: &Chain,
    payee: &Keypair,
    mint: &Pubkey,
    info: &MintInfo,
) -> Result<Pubkey, CliError> {
    let ata = associated_token_address(&payee.pubkey(), mint, &info.token_program);
    if chain.token_balance(&ata).await?.is_none() {
        tracing::info!(%ata, "creating the payee's associated token account");
        let create = create_associated_token_account(
            &payee.pubkey(),
            &payee.pubkey(),
            mint,
            &info.token_program,
        );
        chain.send(&[create], payee, &[]).await?;
    }
    Ok(ata)
}

/// How the settler runs (flags shared by `serve`, `facilitator` and `settle`).
#[derive(Clone, Debug)]
pub struct SettlerOptions {
    /// Per-channel threshold, base units.
    pub threshold: u64,
    /// Seconds between due-checks.
    pub interval: Duration,
    /// Seconds between sweeps.
    pub sweep_interval: Duration,
    /// Close a channel at once when its payer requests it.
    pub close_on_request: bool,
    /// Address lookup table for settle transactions.
    pub lookup_table: paychan_settler::LookupTableMode,
}

/// A settler of `payee`'s channels in `mint`, over its own RPC client.
pub fn build_settler<S: VoucherStore>(
    rpc_url: &str,
    commitment: solana_commitment_config::CommitmentConfig,
    payee: Keypair,
    mint: MintAccounts,
    options: &SettlerOptions,
    store: S,
) -> Result<Settler<S>, CliError> {
    let mut config = SettlerConfig::new(payee, mint);
    config.interval = options.interval;
    config.sweep_interval = options.sweep_interval;
    config.close_on_request = options.close_on_request;
    config.lookup_table = options.lookup_table;
    if options.lookup_table != paychan_settler::LookupTableMode::Off {
        config.max_vouchers_per_tx = paychan_settler::MAX_VOUCHERS_PER_TX_WITH_TABLE;
    }
    config.commitment = commitment;
    let rpc = Arc::new(RpcClient::new_with_commitment(
        rpc_url.to_string(),
        commitment,
    ));
    Settler::new(config, store, rpc)
        .map_err(|e| CliError::Usage(format!("configuring the settler: {e}")))
}

/// The lease a settler of `payee`'s channels in this store must hold to
/// run: with a Redis store shared by replicas, one settler per payee at a
/// time ([`RedisLease`], the others stand by and take over when it stops);
/// a redb store is used by one process by construction and needs none.
pub async fn settler_lease(spec: &StoreSpec, payee: &Pubkey) -> Result<SettleLease, CliError> {
    match spec {
        StoreSpec::Redb(_) => Ok(SettleLease::None),
        StoreSpec::Redis(url) => RedisLease::connect(url, payee, RedisLease::DEFAULT_TTL)
            .await
            .map(SettleLease::Redis)
            .map_err(|e| CliError::Usage(format!("the settler lease in {url}: {e}"))),
    }
}

/// Runs [`Settler::run`] in a task until `stop` fires (or is dropped).
pub fn spawn_settler<S: VoucherStore + 'static>(
    settler: Arc<Settler<S>>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut stop = stop;
        settler
            .run(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
    })
}

/// Serves `GET /metrics` (the settler's Prometheus / OpenMetrics text) on
/// `addr` until `stop` fires. Returns the bound address and the task.
pub async fn serve_metrics<S: VoucherStore + 'static>(
    addr: &str,
    settler: Arc<Settler<S>>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), CliError> {
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let text = settler.metrics_text();
            async move { ([(CONTENT_TYPE, OPENMETRICS)], text) }
        }),
    );
    let (listener, bound) = bind(addr).await?;
    let task = tokio::spawn(async move {
        let mut stop = stop;
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
    });
    Ok((bound, task))
}

/// Binds a TCP listener on `host:port`.
pub async fn bind(addr: &str) -> Result<(tokio::net::TcpListener, SocketAddr), CliError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| CliError::Io {
            what: format!("binding {addr}"),
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| CliError::Io {
        what: format!("reading the address bound for {addr}"),
        source,
    })?;
    Ok((listener, bound))
}

/// Resolves on Ctrl-C or (Unix) SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// A route with its price resolved to base units.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PricedRoute {
    /// The path.
    pub path: String,
    /// Base units (0 = free).
    pub price: u64,
    /// The offer's description.
    pub description: Option<String>,
    /// The response's content type (and the offer's MIME type).
    pub mime_type: String,
    /// The response body.
    pub body: String,
    /// Offers `exact` too (its own `exact` key, else `false`; `serve`
    /// applies `[exact] enabled` to routes without one).
    pub exact: bool,
}

impl PricedRoute {
    /// Checks and prices a configured route for a mint with `decimals`.
    pub fn from_config(route: &RouteConfig, decimals: u8) -> Result<Self, CliError> {
        let bad = |reason: String| CliError::Usage(format!("route {:?}: {reason}", route.path));
        if !route.path.starts_with('/') || route.path.contains(['{', '}', '*']) {
            return Err(bad(
                "the path must start with / and have no {captures} or *".into(),
            ));
        }
        let price = route
            .price
            .parse::<AmountInput>()
            .and_then(|a| a.to_base_units(decimals))
            .map_err(|e| bad(format!("price {:?}: {e}", route.price)))?;
        let (body, default_type) = match &route.response {
            serde_json::Value::String(text) => (text.clone(), "text/plain; charset=utf-8"),
            other => (other.to_string(), "application/json"),
        };
        if body.len() > MAX_RESPONSE_BYTES {
            return Err(bad(format!("response exceeds {MAX_RESPONSE_BYTES} bytes")));
        }
        let mime_type = route
            .mime_type
            .clone()
            .unwrap_or_else(|| default_type.to_string());
        HeaderValue::from_str(&mime_type).map_err(|_| bad("invalid mime_type".into()))?;
        Ok(Self {
            path: route.path.clone(),
            price,
            description: route.description.clone(),
            mime_type,
            body,
            exact: route.exact.unwrap_or(false),
        })
    }
}

/// The example API: each route answers GET with its static body, behind
/// the paywall when it has a price; plus `GET /health`.
pub fn paywall_router<C, S>(paywall: &Paywall<C, S>, routes: &[PricedRoute]) -> Router
where
    C: paychan_verifier::ChannelSource + 'static,
    S: VoucherStore + 'static,
{
    let mut app = Router::new();
    for route in routes {
        let content_type = route.mime_type.clone();
        let body = route.body.clone();
        let handler = get(move || {
            let (content_type, body) = (content_type.clone(), body.clone());
            async move { static_response(&content_type, body) }
        });
        let handler = if route.price > 0 {
            let mut layer = paywall
                .layer(route.price)
                .mime_type(route.mime_type.clone())
                .exact(route.exact);
            if let Some(d) = &route.description {
                layer = layer.description(d.clone());
            }
            handler.route_layer(layer)
        } else {
            handler
        };
        app = app.route(&route.path, handler);
    }
    app.route("/health", get(|| async { "ok" }))
}

fn static_response(content_type: &str, body: String) -> Response {
    match HeaderValue::from_str(content_type) {
        Ok(v) => ([(CONTENT_TYPE, v)], body).into_response(),
        Err(_) => body.into_response(),
    }
}

/// Flags shared by `paychan serve` and `paychan facilitator`; each
/// overrides the same key of the server config.
#[derive(Debug, Args, Default)]
pub struct ServerArgs {
    /// Server config file (TOML; see serve.example.toml) [default: the [serve] table of the main config]
    #[arg(long = "routes", visible_alias = "server-config", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Address to listen on (host:port)
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Who gets paid [default: the keypair's pubkey]
    #[arg(long, value_parser = parse_pubkey, value_name = "PUBKEY")]
    pub payee: Option<Pubkey>,
    /// The token mint (its decimals and token program are read from the chain)
    #[arg(long, value_parser = parse_pubkey, value_name = "PUBKEY")]
    pub mint: Option<Pubkey>,
    /// Voucher store: redb:<path> or redis://host:port/db [default: redb:paychan-vouchers.redb]
    #[arg(long, value_name = "SPEC")]
    pub store: Option<String>,
    /// redb durability: sync (fsync before each 200) or batched:<ms>
    #[arg(long, value_name = "MODE")]
    pub durability: Option<String>,
    /// Websocket URL for channel updates [default: polling only]
    #[arg(long, value_name = "URL")]
    pub ws_url: Option<String>,
    /// Settle a channel once this much is unsettled (base units or decimal) [default: 1.0]
    #[arg(long, value_name = "AMOUNT")]
    pub threshold: Option<AmountInput>,
    /// Do not run the settler in this process (run `paychan settle` elsewhere)
    #[arg(long)]
    pub no_settler: bool,
    /// Serve the settler's Prometheus metrics on this address (GET /metrics)
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<String>,
}

impl ServerArgs {
    /// The RPC client: read-only with `--no-settler`, else one that sends
    /// the settler's transactions (which must target this binary's program).
    pub fn chain(&self, ctx: &Context) -> Result<crate::chain::Chain, CliError> {
        if self.no_settler {
            Ok(ctx.chain())
        } else {
            ctx.chain_for_transactions()
        }
    }
}

/// The chain-side setup of a server: resolved from flags, file and chain.
#[derive(Debug)]
pub struct ServerSetup {
    /// The config file's contents (routes etc.).
    pub file: ServeConfig,
    /// The listen address.
    pub listen: String,
    /// The CAIP-2 network.
    pub network: String,
    /// The payee.
    pub payee: Pubkey,
    /// The mint.
    pub mint: Pubkey,
    /// Its decimals and token program.
    pub mint_info: MintInfo,
    /// Grace period required, seconds.
    pub grace_period: i64,
    /// The store spec.
    pub store: StoreSpec,
    /// redb durability.
    pub durability: Durability,
    /// Websocket URL.
    pub ws_url: Option<String>,
    /// Poll interval of channel snapshots.
    pub poll_interval: Duration,
    /// Settler options.
    pub settler: SettlerOptions,
}

/// Resolves a server's setup: flags over the file, the network from the
/// chain's genesis hash, the mint's decimals and token program from the chain.
pub async fn resolve_server(
    ctx: &Context,
    chain: &Chain,
    args: &ServerArgs,
    default_listen: &str,
    keypair: Option<&Keypair>,
) -> Result<ServerSetup, CliError> {
    let file = ServeConfig::resolve(ctx, args.file.as_deref())?;
    let pubkey = |what: &str, v: &Option<String>| -> Result<Option<Pubkey>, CliError> {
        v.as_deref()
            .map(|s| parse_pubkey(s).map_err(|e| CliError::Usage(format!("{what}: {e}"))))
            .transpose()
    };
    let mint = match args.mint {
        Some(m) => m,
        None => pubkey("mint", &file.mint)?.ok_or_else(|| {
            CliError::Usage("no mint: pass --mint or set mint in the server config".into())
        })?,
    };
    let payee = match args.payee {
        Some(p) => p,
        None => match (pubkey("payee", &file.payee)?, keypair) {
            (Some(p), _) => p,
            (None, Some(k)) => k.pubkey(),
            (None, None) => {
                return Err(CliError::Usage(
                    "no payee: pass --payee, set payee in the server config, or give the payee's \
                     keypair (--no-settler does not need it otherwise)"
                        .into(),
                ));
            }
        },
    };
    let network = network_for(chain, file.network.as_deref()).await?;
    let mint_info = chain.mint(&mint).await?;
    let store = args
        .store
        .clone()
        .or_else(|| file.store.clone())
        .unwrap_or_else(|| DEFAULT_STORE.to_string())
        .parse::<StoreSpec>()
        .map_err(CliError::Usage)?;
    let durability = parse_durability(
        args.durability
            .as_deref()
            .or(file.durability.as_deref())
            .unwrap_or("sync"),
    )
    .map_err(CliError::Usage)?;
    let threshold = match &args.threshold {
        Some(t) => t.clone(),
        None => file
            .settle_threshold
            .as_deref()
            .unwrap_or(DEFAULT_THRESHOLD)
            .parse::<AmountInput>()
            .map_err(|source| CliError::Amount {
                input: file.settle_threshold.clone().unwrap_or_default(),
                source,
            })?,
    };
    let threshold = threshold
        .to_base_units(mint_info.decimals)
        .map_err(|source| CliError::Amount {
            input: threshold.to_string(),
            source,
        })?;
    let grace_period = file.grace_period.unwrap_or(DEFAULT_GRACE_PERIOD_SECS);
    if !(paychan_sdk::constants::MIN_GRACE_PERIOD_SECS
        ..=paychan_sdk::constants::MAX_GRACE_PERIOD_SECS)
        .contains(&grace_period)
    {
        return Err(CliError::Usage(format!(
            "grace_period {grace_period} is outside the program's {}..={} seconds",
            paychan_sdk::constants::MIN_GRACE_PERIOD_SECS,
            paychan_sdk::constants::MAX_GRACE_PERIOD_SECS
        )));
    }
    let secs = |v: Option<u64>, default: u64| Duration::from_secs(v.unwrap_or(default).max(1));
    Ok(ServerSetup {
        listen: args
            .listen
            .clone()
            .or_else(|| file.listen.clone())
            .unwrap_or_else(|| default_listen.to_string()),
        network,
        payee,
        mint,
        mint_info,
        grace_period,
        store,
        durability,
        ws_url: args.ws_url.clone().or_else(|| file.ws_url.clone()),
        poll_interval: Duration::from_millis(file.poll_interval_ms.unwrap_or(2_000).max(50)),
        settler: SettlerOptions {
            threshold,
            interval: secs(file.settle_interval, 30),
            sweep_interval: secs(file.sweep_interval, 3_600),
            close_on_request: true,
            lookup_table: paychan_settler::LookupTableMode::Off,
        },
        file,
    })
}

/// The verifier over RPC, the store and (optionally) the settler of a server.
pub struct Backend {
    /// The voucher store.
    pub store: Arc<AnyStore>,
    /// Channel snapshots over RPC.
    pub channels: Arc<RpcChannels>,
    /// The verifier.
    pub verifier: Arc<Verifier<Arc<RpcChannels>, Arc<AnyStore>>>,
    /// The offer's `extra`.
    pub extra: PaychanExtra,
    /// The settler, when it runs in this process.
    pub settler: Option<Arc<Settler<Arc<AnyStore>>>>,
    /// Where `/metrics` is served, if anywhere.
    pub metrics_addr: Option<SocketAddr>,
    stop: tokio::sync::watch::Sender<bool>,
    updater: tokio::task::JoinHandle<()>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("store", &self.store)
            .field("channels", &self.channels)
            .field("extra", &self.extra)
            .field("settler", &self.settler.is_some())
            .field("metrics_addr", &self.metrics_addr)
            .finish_non_exhaustive()
    }
}

impl Backend {
    /// The settler's urgent queue, if it runs here.
    pub fn settle_handle(&self) -> Option<SettleHandle> {
        self.settler.as_ref().map(|s| s.handle())
    }

    /// Stops the settler (a run in progress finishes first), the metrics
    /// endpoint and the channel updater, then closes the store.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        self.updater.abort();
        match &*self.store {
            AnyStore::Redb(s) => s.close(),
            AnyStore::Redis(s) => s.close(),
        }
    }
}

/// Opens the store, starts the channel updater, builds the verifier and
/// `extra`, and (with `keypair`, the payee's) starts the settler of the
/// payee and its metrics endpoint; without a keypair (`--no-settler`) no
/// settler runs and nothing needs the payee's key.
pub async fn start_backend(
    ctx: &Context,
    chain: &Chain,
    setup: &ServerSetup,
    keypair: Option<&Keypair>,
    args: &ServerArgs,
    min_price: u64,
    max_price: u64,
) -> Result<Backend, CliError> {
    let settler_key = match keypair {
        Some(k) if !args.no_settler => {
            if setup.payee != k.pubkey() {
                return Err(CliError::Usage(format!(
                    "the settler signs as the payee {}, but the keypair is {}: use the payee's keypair or --no-settler",
                    setup.payee,
                    k.pubkey()
                )));
            }
            Some(k)
        }
        _ => None,
    };
    let minimum_deposit = match &setup.file.minimum_deposit {
        Some(s) => crate::amount::parse_amount(s, setup.mint_info.decimals).map_err(|source| {
            CliError::Amount {
                input: s.clone(),
                source,
            }
        })?,
        None => max_price.saturating_mul(100).max(1),
    };
    let store = Arc::new(open_store(&setup.store, setup.durability)?);
    let program_id = ctx.settings.program_id.value;
    let channels = Arc::new(RpcChannels::with_limits(
        chain.url(),
        program_id,
        setup.payee,
        setup.file.limits.rpc(),
    ));
    let updater = channels.spawn_updater(setup.ws_url.clone(), setup.poll_interval);
    // What the offers advertise is what the verifier enforces.
    let mut terms = Terms::new(program_id, setup.payee, setup.mint, min_price.max(1));
    terms.min_grace_period = setup.grace_period;
    terms.min_deposit = minimum_deposit;
    let verifier = Arc::new(Verifier::new(channels.clone(), store.clone(), terms));
    let extra = PaychanExtra {
        program_id: program_id.to_string(),
        token_program: setup.mint_info.token_program.to_string(),
        decimals: setup.mint_info.decimals,
        grace_period_seconds: setup.grace_period,
        minimum_deposit: minimum_deposit.to_string(),
        fee_payer: Some(setup.payee.to_string()),
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    let mut settler = None;
    let mut metrics_addr = None;
    if let Some(keypair) = settler_key {
        ensure_payee_tokens(chain, keypair, &setup.mint, &setup.mint_info).await?;
        let lease = settler_lease(&setup.store, &setup.payee).await?;
        let built = build_settler(
            chain.url(),
            ctx.settings.commitment.value.config(),
            keypair.insecure_clone(),
            MintAccounts::new(
                setup.mint,
                setup.mint_info.token_program,
                setup.settler.threshold,
            ),
            &setup.settler,
            store.clone(),
        )?;
        let s = Arc::new(built.with_lease(lease));
        tasks.push(spawn_settler(s.clone(), stopped.clone()));
        if let Some(addr) = &args.metrics_addr {
            let (bound, task) = serve_metrics(addr, s.clone(), stopped.clone()).await?;
            metrics_addr = Some(bound);
            tasks.push(task);
        }
        settler = Some(s);
    }
    Ok(Backend {
        store,
        channels,
        verifier,
        extra,
        settler,
        metrics_addr,
        stop,
        updater,
        tasks,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn the_example_server_config_parses() {
        let config = ServeConfig::parse(include_str!("../../serve.example.toml")).unwrap();
        assert_eq!(config.listen.as_deref(), Some("127.0.0.1:8402"));
        assert_eq!(config.routes.len(), 3);
        let routes: Vec<PricedRoute> = config
            .routes
            .iter()
            .map(|r| PricedRoute::from_config(r, 6).unwrap())
            .collect();
        assert_eq!(
            routes.iter().map(|r| r.price).collect::<Vec<_>>(),
            [1_000, 1_500, 0]
        );
        assert_eq!(routes[0].mime_type, "text/plain; charset=utf-8");
        assert_eq!(routes[1].mime_type, "application/json");
        let quote: serde_json::Value = serde_json::from_str(&routes[1].body).unwrap();
        assert_eq!(quote["symbol"], "PAY");
        // `exact`: off by default, on for the route that opts in.
        assert!(!config.exact.enabled());
        assert_eq!(
            routes.iter().map(|r| r.exact).collect::<Vec<_>>(),
            [false, true, false]
        );
        assert_eq!(config.exact.limits(), ExactLimits::default());
        assert!(ServeConfig::parse("[exact]\nenable = true").is_err());
        // The same keys parse as [serve] of the main config.
        let main = format!(
            "rpc_url = \"http://127.0.0.1:8899\"\n[serve]\n{}",
            include_str!("../../serve.example.toml")
                .replace("[[routes]]", "[[serve.routes]]")
                .replace("[exact]", "[serve.exact]")
        );
        let file = FileConfig::parse(&main).unwrap();
        let serve = file.serve.unwrap();
        assert_eq!(serve.routes.len(), 3);
        assert_eq!(serve.exact, config.exact);
        assert!(ServeConfig::parse("lisen = \"typo\"").is_err());
    }

    #[test]
    fn stores_durabilities_and_routes_are_validated() {
        assert_eq!(
            "redb:/tmp/v.redb".parse::<StoreSpec>(),
            Ok(StoreSpec::Redb("/tmp/v.redb".into()))
        );
        assert_eq!(
            "redis://127.0.0.1:6379/0".parse::<StoreSpec>(),
            Ok(StoreSpec::Redis("redis://127.0.0.1:6379/0".into()))
        );
        assert!("redb:".parse::<StoreSpec>().is_err());
        assert!("/tmp/v.redb".parse::<StoreSpec>().is_err());
        assert_eq!(parse_durability("sync"), Ok(Durability::Sync));
        assert_eq!(
            parse_durability("batched:5"),
            Ok(Durability::Batched {
                interval: Duration::from_millis(5)
            })
        );
        for bad in ["batched", "batched:0", "batched:1001", "fast"] {
            assert!(parse_durability(bad).is_err(), "{bad}");
        }
        let route = |path: &str, price: &str| RouteConfig {
            path: path.into(),
            price: price.into(),
            description: None,
            mime_type: None,
            response: serde_json::json!("x"),
            exact: None,
        };
        assert!(PricedRoute::from_config(&route("joke", "1"), 6).is_err());
        assert!(PricedRoute::from_config(&route("/{id}", "1"), 6).is_err());
        assert!(PricedRoute::from_config(&route("/a", "0.0000001"), 6).is_err());
        assert!(PricedRoute::from_config(&route("/a", "-1"), 6).is_err());
        assert_eq!(
            PricedRoute::from_config(&route("/a", "0.25"), 2)
                .unwrap()
                .price,
            25
        );
    }

    /// A free loopback port (bound, then released).
    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// A Redis store gets a Redis settler lease of the payee (one settler
    /// among the replicas); a redb store none; an unreachable Redis is a
    /// usage error naming the lease.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn settlers_of_a_redis_store_take_a_lease() {
        let payee = Pubkey::new_unique();
        let redb = settler_lease(&StoreSpec::Redb("v.redb".into()), &payee).await;
        assert!(matches!(redb, Ok(SettleLease::None)), "{redb:?}");

        let closed = format!("redis://127.0.0.1:{}/", free_port());
        match settler_lease(&StoreSpec::Redis(closed), &payee).await {
            Err(CliError::Usage(m)) => assert!(m.contains("settler lease"), "{m}"),
            other => panic!("{other:?}"),
        }

        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let mut server = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server on PATH (apt-get install redis-server)");
        let url = format!("redis://127.0.0.1:{port}/");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let lease = loop {
            match settler_lease(&StoreSpec::Redis(url.clone()), &payee).await {
                Ok(lease) => break lease,
                Err(e) => {
                    assert!(std::time::Instant::now() < deadline, "{e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        let other = settler_lease(&StoreSpec::Redis(url), &payee).await.unwrap();
        let held = (lease.hold().await, other.hold().await);
        let _ = server.kill();
        let _ = server.wait();
        let SettleLease::Redis(redis) = &lease else {
            panic!("{lease:?}");
        };
        assert_eq!(redis.lease_key(), RedisLease::key(&payee));
        assert_eq!(redis.ttl(), RedisLease::DEFAULT_TTL);
        assert_eq!(
            (held.0.unwrap(), held.1.unwrap()),
            (true, false),
            "one settler of the payee holds it"
        );
    }
}
