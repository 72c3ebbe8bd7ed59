//! What a server is configured with: the server config file (`--routes
//! FILE`, or the `[serve]` table of the main config; every key is
//! documented in `serve.example.toml`), its `[limits]` and `[exact]`
//! tables, the flags `paychan serve` and `paychan facilitator` share
//! ([`ServerArgs`], each overriding the file's key) and the defaults.
use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use clap::Args;
use paychan_sdk::Pubkey;
use paychan_x402::server::exact::ExactLimits;
use serde::Deserialize;

use super::store::StoreSpec;
use crate::{
    amount::AmountInput, chain::Chain, cli::parse_pubkey, commands::Context, config::FileConfig,
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
    pub fn chain(&self, ctx: &Context) -> Result<Chain, CliError> {
        if self.no_settler {
            Ok(ctx.chain())
        } else {
            ctx.chain_for_transactions()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::commands::server::PricedRoute;

    #[test]
    fn the_example_server_config_parses() {
        let config = ServeConfig::parse(include_str!("../../../serve.example.toml")).unwrap();
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
            include_str!("../../../serve.example.toml")
                .replace("[[routes]]", "[[serve.routes]]")
                .replace("[exact]", "[serve.exact]")
        );
        let file = FileConfig::parse(&main).unwrap();
        let serve = file.serve.unwrap();
        assert_eq!(serve.routes.len(), 3);
        assert_eq!(serve.exact, config.exact);
        assert!(ServeConfig::parse("lisen = \"typo\"").is_err());
    }
}
