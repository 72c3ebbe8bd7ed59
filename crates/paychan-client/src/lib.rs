//! # paychan-client
//!
//! The paying agent: a [`reqwest_middleware`] middleware that pays `paychan`
//! x402 offers (docs/004-x402-http.md) from payment channels it opens, tops
//! up and signs vouchers for, within a budget it never exceeds.
//!
//! A paying agent is `PaychanClient::new(ClientConfig::new(rpc, payer,
//! network, mint, state_dir))` plus `client.http_client()?`: a
//! `reqwest_middleware::ClientWithMiddleware` whose reqwest client never
//! follows a redirect to another origin (see [`same_origin_redirects`]), with
//! the middleware on top. The complete program is `examples/agent.rs` (built
//! with the crate's tests and clippy; doctests are off, see `Cargo.toml`).
//!
//! How it pays:
//!
//! * a 402 with `PAYMENT-REQUIRED` is decoded (bounded) and the cheapest
//!   `paychan` offer on the configured network, mint and program, at most
//!   `max_price` and within the remaining budget, is chosen;
//! * a channel to the payee is leased (one request at a time per channel;
//!   up to `max_channels_per_payee` channels are opened on demand, with a
//!   fresh OS-random session key, salt and a recent `open_slot`) and topped
//!   up when its headroom runs low;
//! * the next cumulative voucher is signed, **the channel state is written
//!   atomically before the voucher leaves**, and the request is retried once
//!   with `PAYMENT-SIGNATURE` and an `Idempotency-Key`; later requests with
//!   the same method and the same full URL (scheme, host, port, path and
//!   query) pre-pay with the remembered offer;
//! * a payment counts as made only when the answer comes from the request's
//!   origin with a `PAYMENT-RESPONSE` (or `X-PAYMENT-RESPONSE`) that decodes,
//!   says `success: true` and charged at most what the voucher adds
//!   ([`PaymentReceipt`]); otherwise (a 5xx included) the voucher is kept as
//!   a credit and re-sent as is; a `lastAccepted` hint is followed only
//!   between what the server confirmed and what this client signed, so a
//!   server can never make it sign more than it budgeted.
//!
//! State (`<state_dir>/channels/*.json`, session keys in `keys/*.key`, mode
//! 0600) survives restarts: a new client continues from the persisted
//! cumulative amounts.
#![warn(missing_docs)]

mod chain;
pub mod client;
pub mod config;
pub mod error;
pub mod middleware;
pub mod offer;
pub mod state;

pub use chain::associated_token_address;
pub use client::{ChannelInfo, Lease, PaychanClient};
pub use config::ClientConfig;
pub use error::ClientError;
pub use middleware::{
    HEADER_IDEMPOTENCY_KEY, PaychanMiddleware, PaymentReceipt, payment_header,
    same_origin_redirects,
};
pub use offer::{Offer, OfferFilter, ResyncHint};
pub use state::{Budget, ChannelState, Phase, StateDir};
