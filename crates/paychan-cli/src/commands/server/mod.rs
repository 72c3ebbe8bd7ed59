//! What `paychan serve`, `paychan facilitator` and `paychan settle` share,
//! one concern per module:
//!
//! - `config.rs`: the server config file, its `[limits]` and `[exact]`
//!   tables, the shared flags ([`ServerArgs`]) and the defaults;
//! - `store.rs`: the voucher store ([`StoreSpec`], [`AnyStore`],
//!   [`open_store`], [`parse_durability`]);
//! - `settler.rs`: the settler's options, lease and task
//!   ([`SettlerOptions`], [`build_settler`], [`settler_lease`],
//!   [`spawn_settler`]);
//! - `setup.rs`: a server resolved from flags, file, keys and chain, and
//!   the payee's token account ([`ServerSetup`], [`resolve_server`],
//!   [`ensure_payee_tokens`]);
//! - `backend.rs`: what runs behind a server ([`Backend`],
//!   [`start_backend`], [`BackendOptions`]; `paychan demo` starts its
//!   server here too) and the `exact` settlement ([`start_exact`]);
//! - `http.rs`: binding, the shutdown signal, `/metrics` and the paywalled
//!   example API ([`PricedRoute`], [`paywall_router`]).
//!
//! Each item has one path, re-exported here: `commands::server::ServerSetup`.
mod backend;
mod config;
mod http;
mod settler;
mod setup;
mod store;

pub use backend::{Backend, BackendOptions, start_backend, start_exact};
pub use config::{
    DEFAULT_FACILITATOR_LISTEN, DEFAULT_GRACE_PERIOD_SECS, DEFAULT_METRICS_ADDR,
    DEFAULT_SERVE_LISTEN, DEFAULT_STORE, DEFAULT_THRESHOLD, ExactFileConfig, LimitsConfig,
    MAX_ROUTES, RouteConfig, ServeConfig, ServerArgs,
};
pub use http::{
    MAX_RESPONSE_BYTES, PricedRoute, bind, paywall_router, serve_metrics, shutdown_signal,
};
pub use settler::{SettlerOptions, build_settler, settler_lease, spawn_settler};
pub use setup::{
    ServerSetup, ensure_payee_tokens, network_for, prepare_server, resolve_server,
    settle_threshold, store_spec,
};
pub use store::{AnyStore, StoreSpec, open_store, parse_durability};
