//! The paywall: a tower [`Layer`] for axum routes that answers 402 with a
//! `paychan` offer, checks `PAYMENT-SIGNATURE` / `X-PAYMENT` vouchers with
//! [`paychan_verifier::Verifier::check_priced`] before the handler runs, and
//! adds `PAYMENT-RESPONSE`; plus the facilitator routes ([`facilitator`]).
//! The wire contract is docs/004-x402-http.md.
//!
//! ```no_run
//! use std::sync::Arc;
//! use axum::{Extension, Router, routing::get};
//! use paychan_verifier::{MemoryChannels, MemoryStore, Receipt, Terms, Verifier};
//! use paychan_x402::{scheme::PaychanExtra, server::{Paywall, PaywallConfig}};
//!
//! # async fn run(terms: Terms, extra: PaychanExtra) -> std::io::Result<()> {
//! let verifier = Arc::new(Verifier::new(MemoryChannels::default(), MemoryStore::default(), terms));
//! let paywall = Paywall::new(verifier, PaywallConfig::new("solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1", extra));
//! let app = Router::new()
//!     .route("/joke", get(|Extension(r): Extension<Receipt>| async move { format!("paid {}", r.charged) }))
//!     .route_layer(paywall.layer(1_000))
//!     .route("/free", get(|| async { "free" }));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8402").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! A route's price is either fixed (`paywall.layer(1_000)`) or computed from
//! the request ([`Price::computed`]); `None` (or 0) serves the request free.
//! The paid handler finds the [`Receipt`] in the request's extensions.
//!
//! A paywall built [`Paywall::with_exact`] also offers the x402 `exact`
//! scheme (after `paychan`) on the routes that opt in
//! ([`PaywallLayer::exact`]): the client's transfer is settled on chain by
//! this server ([`exact::ExactSettler`], the payee paying its fee) before
//! the handler runs, which then finds an [`exact::ExactReceipt`].
use std::{
    borrow::Cow,
    collections::HashMap,
    convert::Infallible,
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{
    body::{Body, Bytes},
    response::Response,
};
use base64::Engine;
use http::{HeaderValue, Request, StatusCode, header::CONTENT_TYPE, request::Parts};
use paychan_verifier::{
    ChannelSource, CheckError, Pubkey, Rejection, SignedVoucher, Terms, Verifier, VerifierError,
    VoucherStore,
};
use serde_json::json;
use tower::{Layer, Service};

use crate::{
    network::Network,
    payment::{ExactPayment, HeaderVersion, PaymentError},
    scheme::PaychanExtra,
    scheme::SCHEME,
    v1, v2,
};

pub mod exact;
pub mod facilitator;
pub mod limits;
pub use limits::{Limits, serve};
mod memo;

pub use paychan_verifier::Receipt;

/// `maxTimeoutSeconds` of every offer.
pub const MAX_TIMEOUT_SECONDS: u64 = 60;
/// The optional header naming a logical request (docs/004).
pub const HEADER_IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// Longest accepted `Idempotency-Key`, bytes of visible ASCII.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 128;

const PAYMENT_REQUIRED: http::HeaderName = http::HeaderName::from_static("payment-required");
const PAYMENT_SIGNATURE: http::HeaderName = http::HeaderName::from_static("payment-signature");
const PAYMENT_RESPONSE: http::HeaderName = http::HeaderName::from_static("payment-response");
const X_PAYMENT: http::HeaderName = http::HeaderName::from_static("x-payment");
const X_PAYMENT_RESPONSE: http::HeaderName = http::HeaderName::from_static("x-payment-response");
const IDEMPOTENCY_KEY: http::HeaderName = http::HeaderName::from_static("idempotency-key");
/// Marks a response sent again to a retry (the handler did not run).
const IDEMPOTENT_REPLAYED: http::HeaderName = http::HeaderName::from_static("idempotent-replayed");
const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Offers kept per route for computed prices (with a fixed resource URL).
const OFFER_CACHE: usize = 256;

/// What the paywall offers and how much it remembers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaywallConfig {
    /// CAIP-2 network id (`solana:<genesis hash prefix>`).
    pub network: String,
    /// The offer's `extra`. Its `gracePeriodSeconds` and `minimumDeposit`
    /// are replaced by the verifier's [`Terms`] (`min_grace_period`,
    /// `min_deposit`): an offer advertises exactly what is enforced.
    pub extra: PaychanExtra,
    /// `resource.description` (a route may override it).
    pub description: Option<String>,
    /// `resource.mimeType` (a route may override it).
    pub mime_type: Option<String>,
    /// `resource.url`; `None` uses the request's URI (path and query). A fixed
    /// URL lets the layer serialize each route's offer once.
    pub resource_url: Option<String>,
    /// Where clients reach this server (`https://api.example.com`): without
    /// a fixed [`Self::resource_url`], `resource.url` is this base joined
    /// with the request's path and query, an absolute URL as x402 clients
    /// expect. The request's own `Host` is never used (a client chooses it).
    pub public_url: Option<String>,
    /// Channels whose last voucher the layer remembers for credits and
    /// idempotent retries (default 100 000; older ones are forgotten).
    pub memory_channels: usize,
    /// How many times the stored response of a paid request is sent again
    /// to a retry with the same voucher, `Idempotency-Key` and request
    /// (default 3). The handler never runs again for it.
    pub max_replays: u8,
    /// Largest response body kept for such retries (default 256 KiB); a
    /// larger answer is sent once and a retry of it is refused.
    pub max_replay_body: usize,
    /// Bytes of response bodies kept for retries in all (default 64 MiB).
    pub replay_budget: usize,
    /// Largest request body a paid request with an `Idempotency-Key` may
    /// carry (default 1 MiB): the body is read to bind the key to it.
    /// Larger bodies are answered 413.
    pub max_idempotent_body: usize,
}

impl PaywallConfig {
    /// A configuration with the defaults.
    pub fn new(network: impl Into<String>, extra: PaychanExtra) -> Self {
        Self {
            network: network.into(),
            extra,
            description: None,
            mime_type: None,
            resource_url: None,
            public_url: None,
            memory_channels: 100_000,
            max_replays: 3,
            max_replay_body: 256 * 1024,
            replay_budget: 64 << 20,
            max_idempotent_body: 1 << 20,
        }
    }
}

/// `resource.url`: a fixed URL, else `public_url` joined with the request's
/// path and query, else the path and query alone.
fn resource_url(fixed: Option<&str>, public_url: Option<&str>, path: &str) -> String {
    match (fixed, public_url) {
        (Some(url), _) => url.to_owned(),
        (None, Some(base)) => format!("{}{path}", base.trim_end_matches('/')),
        (None, None) => path.to_owned(),
    }
}

/// The v1 name of a CAIP-2 network: the public clusters' names, the CAIP-2 id
/// itself for local chains.
#[must_use]
pub fn v1_network(caip2: &str) -> &str {
    match Network::parse(caip2) {
        Some(n) => n.v1_name(),
        None => caip2,
    }
}

/// The one `paychan` requirement of an offer costing `price`; its
/// `gracePeriodSeconds` and `minimumDeposit` are the terms' (what the
/// verifier enforces).
#[must_use]
pub fn requirements(
    terms: &Terms,
    network: &str,
    extra: &PaychanExtra,
    price: u64,
) -> v2::PaymentRequirements {
    let extra = PaychanExtra {
        grace_period_seconds: terms.min_grace_period,
        minimum_deposit: terms.min_deposit.to_string(),
        ..extra.clone()
    };
    v2::PaymentRequirements {
        scheme: SCHEME.to_owned(),
        network: network.to_owned(),
        amount: price.to_string(),
        asset: terms.mint.to_string(),
        pay_to: terms.payee.to_string(),
        max_timeout_seconds: MAX_TIMEOUT_SECONDS,
        extra: serde_json::to_value(&extra).ok(),
    }
}

/// The `PAYMENT-REQUIRED` value (and 402 body) of a request costing `price`,
/// exactly as the paywall sends it (without `error` / `extensions`).
#[must_use]
pub fn payment_required(
    terms: &Terms,
    network: &str,
    extra: &PaychanExtra,
    price: u64,
    resource: v2::Resource,
) -> v2::PaymentRequired {
    v2::PaymentRequired {
        x402_version: 2,
        error: None,
        resource,
        accepts: vec![requirements(terms, network, extra, price)],
        extensions: None,
    }
}

/// The v1 402 body carrying the same offer. `exact` offers are left out:
/// this server takes `exact` payments in `PAYMENT-SIGNATURE` (v2) only.
#[must_use]
pub fn to_v1(required: &v2::PaymentRequired) -> v1::PaymentRequired {
    let resource = &required.resource;
    v1::PaymentRequired {
        x402_version: 1,
        error: required
            .error
            .clone()
            .unwrap_or_else(|| "payment_required".to_owned()),
        accepts: required
            .accepts
            .iter()
            .filter(|r| r.scheme != crate::scheme::EXACT)
            .map(|r| v1::PaymentRequirements {
                scheme: r.scheme.clone(),
                network: v1_network(&r.network).to_owned(),
                max_amount_required: r.amount.clone(),
                asset: r.asset.clone(),
                pay_to: r.pay_to.clone(),
                resource: resource.url.clone(),
                description: resource.description.clone().unwrap_or_default(),
                mime_type: resource.mime_type.clone().unwrap_or_default(),
                output_schema: None,
                max_timeout_seconds: r.max_timeout_seconds,
                extra: r.extra.clone(),
            })
            .collect(),
    }
}

/// A price computed from the request head; `None` serves it free.
pub type PriceFn = dyn Fn(&Parts) -> Option<u64> + Send + Sync;

/// What a route charges.
#[derive(Clone)]
pub enum Price {
    /// The same price for every request (0 = free).
    Fixed(u64),
    /// Computed from the request; `None` (or 0) serves it free.
    Computed(Arc<PriceFn>),
}

impl Price {
    /// A price computed from the request head.
    pub fn computed(f: impl Fn(&Parts) -> Option<u64> + Send + Sync + 'static) -> Self {
        Self::Computed(Arc::new(f))
    }

    fn of(&self, parts: &Parts) -> Option<u64> {
        let price = match self {
            Price::Fixed(p) => *p,
            Price::Computed(f) => f(parts)?,
        };
        (price > 0).then_some(price)
    }
}

impl From<u64> for Price {
    fn from(price: u64) -> Self {
        Self::Fixed(price)
    }
}

impl fmt::Debug for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Price::Fixed(p) => f.debug_tuple("Fixed").field(p).finish(),
            Price::Computed(_) => f.write_str("Computed(..)"),
        }
    }
}

/// State shared by every route of one paywall.
struct Shared<C, S> {
    verifier: Arc<Verifier<C, S>>,
    config: PaywallConfig,
    v1_network: String,
    memo: memo::Memo,
    /// The `exact` settlement, when the paywall offers it.
    exact: Option<Arc<exact::ExactSettler>>,
    /// The runs `exact` payments paid, by transaction message hash.
    exact_memo: memo::Memo,
}

fn new_memo(config: &PaywallConfig) -> memo::Memo {
    memo::Memo::new(
        config.memory_channels,
        config.max_replays,
        config.max_replay_body,
        config.replay_budget,
    )
}

/// The paywall: one verifier and offer configuration; [`Paywall::layer`]
/// makes the layer of one route (or group of routes) at one price.
pub struct Paywall<C, S> {
    shared: Arc<Shared<C, S>>,
}

impl<C, S> Clone for Paywall<C, S> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<C, S> fmt::Debug for Paywall<C, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Paywall")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl<C: ChannelSource + 'static, S: VoucherStore + 'static> Paywall<C, S> {
    /// A paywall checking vouchers with `verifier` (its [`Terms`] give the
    /// offer's `payTo` and `asset`).
    pub fn new(verifier: Arc<Verifier<C, S>>, config: PaywallConfig) -> Self {
        let v1_network = v1_network(&config.network).to_owned();
        Self {
            shared: Arc::new(Shared {
                memo: new_memo(&config),
                exact_memo: new_memo(&config),
                verifier,
                config,
                v1_network,
                exact: None,
            }),
        }
    }

    /// This paywall, able to offer the x402 `exact` scheme (settled by
    /// `settler`, the payee paying every transaction's fee) on the routes
    /// that opt in with [`PaywallLayer::exact`]. Call it before making
    /// layers: layers made before keep a paywall without `exact`.
    #[must_use]
    pub fn with_exact(self, settler: Arc<exact::ExactSettler>) -> Self {
        let s = &self.shared;
        Self {
            shared: Arc::new(Shared {
                verifier: s.verifier.clone(),
                config: s.config.clone(),
                v1_network: s.v1_network.clone(),
                memo: new_memo(&s.config),
                exact_memo: new_memo(&s.config),
                exact: Some(settler),
            }),
        }
    }

    /// The `exact` settlement, if this paywall has one.
    pub fn exact(&self) -> Option<&Arc<exact::ExactSettler>> {
        self.shared.exact.as_ref()
    }

    /// The verifier.
    pub fn verifier(&self) -> &Arc<Verifier<C, S>> {
        &self.shared.verifier
    }

    /// The configuration.
    pub fn config(&self) -> &PaywallConfig {
        &self.shared.config
    }

    /// The `PAYMENT-REQUIRED` value this paywall sends for `price` at the
    /// request path (and query) `url`, with the configured resource URL,
    /// public URL, description and MIME type applied as the layer does, on
    /// a route without `exact` (one with it lists
    /// [`exact::ExactSettler::requirements`] second).
    #[must_use]
    pub fn payment_required(&self, price: u64, url: &str) -> v2::PaymentRequired {
        let c = &self.shared.config;
        payment_required(
            self.shared.verifier.terms(),
            &c.network,
            &c.extra,
            price,
            v2::Resource {
                url: resource_url(c.resource_url.as_deref(), c.public_url.as_deref(), url),
                description: c.description.clone(),
                mime_type: c.mime_type.clone(),
            },
        )
    }

    /// The layer of a route charging `price` (a `u64` or a [`Price`]).
    pub fn layer(&self, price: impl Into<Price>) -> PaywallLayer<C, S> {
        let c = &self.shared.config;
        PaywallLayer {
            shared: self.shared.clone(),
            price: price.into(),
            description: c.description.clone(),
            mime_type: c.mime_type.clone(),
            resource_url: c.resource_url.clone(),
            exact: false,
        }
    }
}

/// The tower layer of one paid route; see [`Paywall::layer`].
pub struct PaywallLayer<C, S> {
    shared: Arc<Shared<C, S>>,
    price: Price,
    description: Option<String>,
    mime_type: Option<String>,
    resource_url: Option<String>,
    exact: bool,
}

impl<C, S> Clone for PaywallLayer<C, S> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            price: self.price.clone(),
            description: self.description.clone(),
            mime_type: self.mime_type.clone(),
            resource_url: self.resource_url.clone(),
            exact: self.exact,
        }
    }
}

impl<C, S> fmt::Debug for PaywallLayer<C, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PaywallLayer")
            .field("price", &self.price)
            .field("resource_url", &self.resource_url)
            .field("exact", &self.exact)
            .finish_non_exhaustive()
    }
}

impl<C, S> PaywallLayer<C, S> {
    /// This route's `resource.description`.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// This route's `resource.mimeType`.
    #[must_use]
    pub fn mime_type(mut self, mime_type: impl Into<String>) -> Self {
        self.mime_type = Some(mime_type.into());
        self
    }

    /// This route's fixed `resource.url` (its offer is then serialized once).
    #[must_use]
    pub fn resource_url(mut self, url: impl Into<String>) -> Self {
        self.resource_url = Some(url.into());
        self
    }

    /// Whether this route also offers the x402 `exact` scheme, after
    /// `paychan` (default: no). Only a paywall built
    /// [`Paywall::with_exact`] can: on another, `true` changes nothing.
    /// Every `exact` payment is a transaction the payee pays the fee of
    /// (see [`exact`]).
    #[must_use]
    pub fn exact(mut self, exact: bool) -> Self {
        self.exact = exact;
        self
    }
}

/// A serialized offer: the `PAYMENT-REQUIRED` header and the identical body.
#[derive(Clone, Debug)]
struct Offer {
    header: HeaderValue,
    body: Bytes,
}

impl Offer {
    fn encode(required: &v2::PaymentRequired) -> Option<Self> {
        let json = serde_json::to_vec(required).ok()?;
        let header =
            HeaderValue::try_from(base64::engine::general_purpose::STANDARD.encode(&json)).ok()?;
        Some(Self {
            header,
            body: Bytes::from(json),
        })
    }

    fn response(&self) -> Response {
        let mut res = Response::new(Body::from(self.body.clone()));
        *res.status_mut() = StatusCode::PAYMENT_REQUIRED;
        let h = res.headers_mut();
        h.insert(CONTENT_TYPE, JSON);
        h.insert(PAYMENT_REQUIRED, self.header.clone());
        res
    }
}

/// A route's settings, with its offers serialized ahead where possible.
struct Route<C, S> {
    shared: Arc<Shared<C, S>>,
    price: Price,
    description: Option<String>,
    mime_type: Option<String>,
    resource_url: Option<String>,
    /// The `exact` settlement, when this route offers it.
    exact: Option<Arc<exact::ExactSettler>>,
    /// Fixed price and URL: the offer, serialized once.
    fixed_offer: Option<Offer>,
    /// Computed price, fixed URL: offers by price (bounded).
    offers: parking_lot::RwLock<HashMap<u64, Offer>>,
}

impl<C: ChannelSource + 'static, S: VoucherStore + 'static> Route<C, S> {
    fn required(&self, price: u64, parts: &Parts) -> v2::PaymentRequired {
        let c = &self.shared.config;
        let path: Cow<'_, str> = parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.to_string().into(), |p| p.as_str().into());
        let url = resource_url(self.resource_url.as_deref(), c.public_url.as_deref(), &path);
        let mut required = payment_required(
            self.shared.verifier.terms(),
            &c.network,
            &c.extra,
            price,
            v2::Resource {
                url,
                description: self.description.clone(),
                mime_type: self.mime_type.clone(),
            },
        );
        if let Some(exact) = &self.exact {
            required.accepts.push(exact.requirements(price));
        }
        required
    }

    /// 402 with the plain offer.
    fn offer(&self, price: u64, parts: &Parts) -> Response {
        if let Some(offer) = &self.fixed_offer {
            return offer.response();
        }
        if self.resource_url.is_some() {
            if let Some(offer) = self.offers.read().get(&price) {
                return offer.response();
            }
            let Some(offer) = Offer::encode(&self.required(price, parts)) else {
                return internal_error();
            };
            let res = offer.response();
            let mut offers = self.offers.write();
            if offers.len() < OFFER_CACHE {
                offers.insert(price, offer);
            }
            return res;
        }
        match Offer::encode(&self.required(price, parts)) {
            Some(offer) => offer.response(),
            None => internal_error(),
        }
    }

    /// 402 with the offer, the reason and the `extensions.paychan` hint
    /// (`extensions.exact` for an `exact` payment).
    fn refusal(&self, price: u64, parts: &Parts, v1: bool, refusal: &Refusal) -> Response {
        let mut required = self.required(price, parts);
        required.error = Some(refusal.reason.to_owned());
        let mut paychan = serde_json::Map::new();
        paychan.insert("reason".into(), refusal.reason.into());
        paychan.insert("code".into(), refusal.code.into());
        if let Some(field) = refusal.field {
            paychan.insert("field".into(), field.into());
        }
        paychan.insert("message".into(), refusal.message.clone().into());
        if let Some(channel) = &refusal.channel {
            paychan.insert("channel".into(), channel.to_string().into());
        }
        if let Some(last) = refusal.last_accepted {
            paychan.insert("lastAccepted".into(), last.to_string().into());
        }
        if let Some(required) = refusal.required {
            paychan.insert("required".into(), required.to_string().into());
        }
        if let Some(payer) = &refusal.payer {
            paychan.insert("payer".into(), payer.to_string().into());
        }
        if let Some(transaction) = &refusal.transaction {
            paychan.insert("transaction".into(), transaction.clone().into());
        }
        let mut extensions = serde_json::Map::new();
        extensions.insert(refusal.extension.into(), paychan.into());
        required.extensions = Some(extensions.into());
        let Some(offer) = Offer::encode(&required) else {
            return internal_error();
        };
        let mut res = offer.response();
        if v1 {
            match serde_json::to_vec(&to_v1(&required)) {
                Ok(body) => *res.body_mut() = Body::from(body),
                Err(_) => return internal_error(),
            }
        }
        res
    }
}

/// Why a payment did not pay (402).
struct Refusal {
    /// The x402 reason.
    reason: &'static str,
    /// What exactly is wrong ([`Rejection::code`]).
    code: &'static str,
    /// The wrong field, a JSON path ([`Rejection::field`]).
    field: Option<&'static str>,
    message: String,
    channel: Option<Pubkey>,
    last_accepted: Option<u64>,
    required: Option<u64>,
    /// The key under `extensions`: `paychan`, or `exact`.
    extension: &'static str,
    /// `exact`: the transfer's authority, once known.
    payer: Option<Pubkey>,
    /// `exact`: the transaction's signature, when it was sent.
    transaction: Option<String>,
}

impl Refusal {
    /// An `exact` payment refused with the reference's reason.
    fn exact(r: &exact::ExactRefusal) -> Self {
        Self {
            extension: "exact",
            payer: r.payer,
            ..Self::header(
                (r.reason, r.reason),
                "payload.transaction",
                r.message.clone(),
                None,
            )
        }
    }

    /// A payment refused before its check: `(reason, code)`, the wrong
    /// `field` (a `paychan` payment header naming what this paywall does not
    /// offer, unless the caller sets another `extension`).
    fn header(
        (reason, code): (&'static str, &'static str),
        field: &'static str,
        message: String,
        channel: Option<Pubkey>,
    ) -> Self {
        Self {
            reason,
            code,
            field: Some(field),
            message,
            channel,
            last_accepted: None,
            required: None,
            extension: "paychan",
            payer: None,
            transaction: None,
        }
    }

    fn rejected(channel: Pubkey, r: &Rejection) -> Self {
        let required = match r {
            Rejection::InsufficientIncrement { required, .. } => Some(*required),
            _ => None,
        };
        Self {
            reason: r.reason(),
            code: r.code(),
            field: Some(r.field()),
            message: r.to_string(),
            channel: Some(channel),
            last_accepted: r.last_accepted(),
            required,
            extension: "paychan",
            payer: None,
            transaction: None,
        }
    }
}

impl<C, S, I> Layer<I> for PaywallLayer<C, S>
where
    C: ChannelSource + 'static,
    S: VoucherStore + 'static,
{
    type Service = PaywallService<C, S, I>;

    fn layer(&self, inner: I) -> Self::Service {
        let route = Route {
            shared: self.shared.clone(),
            price: self.price.clone(),
            description: self.description.clone(),
            mime_type: self.mime_type.clone(),
            resource_url: self.resource_url.clone(),
            exact: self.shared.exact.clone().filter(|_| self.exact),
            fixed_offer: None,
            offers: parking_lot::RwLock::default(),
        };
        let fixed_offer = match (&route.price, &route.resource_url) {
            (Price::Fixed(p), Some(_)) if *p > 0 => {
                Offer::encode(&route.required(*p, &Request::new(()).into_parts().0))
            }
            _ => None,
        };
        PaywallService {
            inner,
            route: Arc::new(Route {
                fixed_offer,
                ..route
            }),
        }
    }
}

/// The paywall service wrapping one route; see [`Paywall::layer`].
pub struct PaywallService<C, S, I> {
    inner: I,
    route: Arc<Route<C, S>>,
}

impl<C, S, I: Clone> Clone for PaywallService<C, S, I> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            route: self.route.clone(),
        }
    }
}

impl<C, S, I> fmt::Debug for PaywallService<C, S, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PaywallService")
            .field("price", &self.route.price)
            .finish_non_exhaustive()
    }
}

impl<C, S, I> Service<Request<Body>> for PaywallService<C, S, I>
where
    C: ChannelSource + 'static,
    S: VoucherStore + 'static,
    I: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    I::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        // The clone that was not driven to readiness stays behind.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let route = self.route.clone();
        Box::pin(async move { Ok(handle(&route, inner, req).await) })
    }
}

async fn handle<C, S, I>(route: &Route<C, S>, mut inner: I, req: Request<Body>) -> Response
where
    C: ChannelSource + 'static,
    S: VoucherStore + 'static,
    I: Service<Request<Body>, Response = Response, Error = Infallible>,
{
    let (parts, body) = req.into_parts();
    let Some(price) = route.price.of(&parts) else {
        return call(&mut inner, Request::from_parts(parts, body)).await;
    };
    let (header, version) = if let Some(h) = parts.headers.get(PAYMENT_SIGNATURE) {
        (h, HeaderVersion::V2)
    } else if let Some(h) = parts.headers.get(X_PAYMENT) {
        (h, HeaderVersion::V1)
    } else {
        return route.offer(price, &parts);
    };
    if version == HeaderVersion::V2
        && let Some(settler) = &route.exact
    {
        match crate::payment::decode_exact_payment(header.as_bytes()) {
            Ok(Some(payment)) => {
                return handle_exact(route, settler, inner, parts, body, payment, price).await;
            }
            Ok(None) => {}
            Err(e) => return bad_payment(&e),
        }
    }
    let shared = &route.shared;
    let v1 = version == HeaderVersion::V1;
    let voucher = match decode_payment(header.as_bytes(), version, shared) {
        Ok(v) => v,
        Err(Bad::Malformed(e)) => return bad_payment(&e),
        Err(Bad::Refused(refusal)) => return route.refusal(price, &parts, v1, &refusal),
    };
    let (body, request_key) = match bind_key(&parts, body, &shared.memo, &shared.config).await {
        Ok(bound) => bound,
        Err(res) => return res,
    };
    let channel = Pubkey::new_from_array(voucher.voucher.channel_id);
    // Armed until the store answers: a request dropped meanwhile leaves
    // the voucher a credit for its retry.
    let pending = shared.memo.pending(channel, &voucher, price);
    let checked = shared
        .verifier
        .check_priced(&voucher, price, unix_now())
        .await;
    let (receipt, ticket) = match checked {
        Ok(r) if !r.duplicate => (r, pending.accepted(r.charged, request_key)),
        Ok(r) => {
            pending.disarm();
            match claim(&shared.memo, &channel, &voucher, request_key, price).await {
                Ok(memo::Claim::Run(ticket)) => (r, ticket),
                Ok(memo::Claim::Replay(stored)) => return replay(&stored),
                Ok(_) => {
                    let cumulative = voucher.voucher.cumulative_amount;
                    let rejection = Rejection::InsufficientIncrement {
                        cumulative,
                        required: cumulative.saturating_add(price),
                        last_accepted: cumulative,
                    };
                    tracing::debug!(%channel, cumulative, "voucher already spent");
                    return route.refusal(
                        price,
                        &parts,
                        v1,
                        &Refusal::rejected(channel, &rejection),
                    );
                }
                Err(InFlight) => return in_flight(),
            }
        }
        Err(e) => {
            pending.disarm();
            return match e {
                CheckError::Rejected(r) => {
                    tracing::debug!(%channel, reason = r.reason(), "voucher rejected: {r}");
                    route.refusal(price, &parts, v1, &Refusal::rejected(channel, &r))
                }
                CheckError::Fault(VerifierError::Overloaded) => overloaded(),
                CheckError::Fault(e) => {
                    tracing::warn!(%channel, "payment verifier unavailable: {e}");
                    unavailable()
                }
            };
        }
    };
    let mut req = Request::from_parts(parts, body);
    req.extensions_mut().insert(receipt);
    let settle = v2::SettleResponse::settled(
        receipt.payer.to_string(),
        String::new(),
        shared.config.network.clone(),
        receipt.charged.to_string(),
    );
    run_paid(
        &shared.memo,
        inner,
        req,
        ticket,
        &settle,
        v1,
        request_key.is_some(),
    )
    .await
}

/// A paid request with an `Idempotency-Key`: the key is bound to its
/// request (method, path and query, and the body, read here — bounded — and
/// hashed). Without one, the body is left as it is.
async fn bind_key(
    parts: &Parts,
    body: Body,
    memo: &memo::Memo,
    config: &PaywallConfig,
) -> Result<(Body, Option<memo::RequestKey>), Response> {
    let Some(k) = parts.headers.get(IDEMPOTENCY_KEY) else {
        return Ok((body, None));
    };
    let Some(k) = idempotency_key(k.as_bytes()) else {
        return Err(bad_request(
            "Idempotency-Key must be 1 to 128 visible ASCII bytes",
        ));
    };
    let key = memo.key_hash(k);
    let limit = config.max_idempotent_body;
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return Err(json_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &json!({
                "error": "payload_too_large",
                "message": format!("a paid request with an Idempotency-Key carries at most {limit} bytes of body"),
            }),
        ));
    };
    let request = request_fingerprint(parts, &bytes);
    Ok((Body::from(bytes), Some(memo::RequestKey { key, request })))
}

/// Runs the paid handler under `ticket`: a 5xx is not charged (the payment
/// stays a credit and the answer carries none of the handler's content);
/// otherwise the answer gets `PAYMENT-RESPONSE` = `settle` (and the v1
/// header for a v1 request) and, for a request with an `Idempotency-Key`,
/// is kept for its retries.
async fn run_paid<I>(
    memo: &memo::Memo,
    mut inner: I,
    req: Request<Body>,
    ticket: memo::Ticket<'_>,
    settle: &v2::SettleResponse,
    v1: bool,
    keyed: bool,
) -> Response
where
    I: Service<Request<Body>, Response = Response, Error = Infallible>,
{
    // The ticket lives across the handler: dropped with this future (the
    // client went away), the run counts as failed and the payment stays a credit.
    let mut res = call(&mut inner, req).await;
    if res.status().is_server_error() {
        ticket.failed();
        return handler_failed(&res);
    }
    match crate::codec::encode(settle)
        .ok()
        .and_then(|s| HeaderValue::try_from(s).ok())
    {
        Some(value) => {
            let h = res.headers_mut();
            if v1 {
                h.insert(X_PAYMENT_RESPONSE, value.clone());
            }
            h.insert(PAYMENT_RESPONSE, value);
        }
        None => tracing::error!("PAYMENT-RESPONSE could not be encoded"),
    }
    if !keyed {
        ticket.served(None);
        return res;
    }
    // Kept for a retry of this request (same payment, key and request).
    let (head, body) = res.into_parts();
    let exact = http_body::Body::size_hint(&body)
        .exact()
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| *n <= memo.max_body());
    let Some(len) = exact else {
        ticket.served(None);
        return Response::from_parts(head, body);
    };
    match axum::body::to_bytes(body, len).await {
        Ok(bytes) => {
            ticket.served(memo.store_response(head.status, head.headers.clone(), bytes.clone()));
            Response::from_parts(head, Body::from(bytes))
        }
        Err(e) => {
            tracing::error!("the paid handler's response body failed: {e}");
            ticket.failed();
            internal_error()
        }
    }
}

/// An `exact` payment (docs/004, "exact"): settled on chain before the
/// handler runs. The transaction's message hash names the payment in the
/// memory of runs, with the same rules as a voucher's: one successful run,
/// a credit after a failed one (at most 3 runs), the stored answer for a
/// retry with the same `Idempotency-Key` and request, `duplicate_settlement`
/// for any other reuse.
async fn handle_exact<C, S, I>(
    route: &Route<C, S>,
    settler: &Arc<exact::ExactSettler>,
    inner: I,
    parts: Parts,
    body: Body,
    payment: ExactPayment,
    price: u64,
) -> Response
where
    C: ChannelSource + 'static,
    S: VoucherStore + 'static,
    I: Service<Request<Body>, Response = Response, Error = Infallible>,
{
    let shared = &route.shared;
    let refuse = |r: &exact::ExactRefusal| route.refusal(price, &parts, false, &Refusal::exact(r));
    if payment.network != settler.network() {
        return refuse(&exact::ExactRefusal::new(
            exact::reason::NETWORK_MISMATCH,
            format!("network must be {}", settler.network()),
        ));
    }
    let (body, request_key) = match bind_key(&parts, body, &shared.exact_memo, &shared.config).await
    {
        Ok(bound) => bound,
        Err(res) => return res,
    };
    let claimed = match settler
        .settle(&payment.transaction, price, settler.memo())
        .await
    {
        Ok(c) => c,
        Err(exact::ExactError::Refused(r)) => {
            tracing::debug!(reason = r.reason, "exact payment refused: {}", r.message);
            return refuse(&r);
        }
        Err(exact::ExactError::Pending { signature }) => {
            let mut refusal = Refusal::exact(&exact::ExactRefusal::new(
                exact::reason::SETTLEMENT_PENDING,
                format!(
                    "{signature} was sent and is not confirmed yet; present the same payment again"
                ),
            ));
            refusal.transaction = Some(signature.to_string());
            return route.refusal(price, &parts, false, &refusal);
        }
        Err(exact::ExactError::InFlight) => return in_flight(),
        Err(exact::ExactError::Overloaded) => return overloaded(),
        Err(e) => {
            tracing::warn!("exact settlement unavailable: {e}");
            return unavailable();
        }
    };
    let settlement = &claimed.settlement;
    let key = Pubkey::new_from_array(settlement.message_hash);
    let paid = memo::Paid {
        cumulative: settlement.amount,
        signature: settlement.client_signature,
    };
    let ticket = if claimed.first {
        shared
            .exact_memo
            .start(key, paid, settlement.amount, request_key)
    } else {
        match claim(&shared.exact_memo, &key, paid, request_key, price).await {
            Ok(memo::Claim::Run(ticket)) => ticket,
            Ok(memo::Claim::Replay(stored)) => return replay(&stored),
            Ok(_) => {
                return refuse(&exact::ExactRefusal {
                    payer: Some(settlement.payer),
                    ..exact::ExactRefusal::new(
                        exact::reason::DUPLICATE_SETTLEMENT,
                        format!("{} paid a request already", settlement.signature),
                    )
                });
            }
            Err(InFlight) => return in_flight(),
        }
    };
    let receipt = exact::ExactReceipt {
        signature: settlement.signature,
        payer: settlement.payer,
        amount: settlement.amount,
        fee: settlement.fee,
    };
    let settle = v2::SettleResponse::settled(
        settlement.payer.to_string(),
        settlement.signature.to_string(),
        settler.network().to_owned(),
        settlement.amount.to_string(),
    );
    let mut req = Request::from_parts(parts, body);
    req.extensions_mut().insert(receipt);
    run_paid(
        &shared.exact_memo,
        inner,
        req,
        ticket,
        &settle,
        false,
        request_key.is_some(),
    )
    .await
}

/// How long a retry waits for the run its voucher paid, when that run is
/// still in flight, before it is answered 409.
pub const REPLAY_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The run a retry waits for did not end within [`REPLAY_WAIT`].
struct InFlight;

/// A retry of an accepted voucher: a credit's run, the stored response, or
/// (after waiting for a run in flight) one of those; `Refused` otherwise.
async fn claim<'a>(
    memo: &'a memo::Memo,
    channel: &Pubkey,
    paid: impl Into<memo::Paid>,
    key: Option<memo::RequestKey>,
    price: u64,
) -> Result<memo::Claim<'a>, InFlight> {
    let paid = paid.into();
    loop {
        match memo.claim(channel, paid, key, price) {
            memo::Claim::Wait(mut done) => {
                let ended = tokio::time::timeout(REPLAY_WAIT, done.wait_for(|d| *d)).await;
                if !matches!(ended, Ok(Ok(_))) {
                    return Err(InFlight);
                }
            }
            other => return Ok(other),
        }
    }
}

/// SHA-256 of the method, the path and query, and the body.
fn request_fingerprint(parts: &Parts, body: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(parts.method.as_str().as_bytes());
    h.update([0]);
    h.update(
        parts
            .uri
            .path_and_query()
            .map_or("", |p| p.as_str())
            .as_bytes(),
    );
    h.update([0]);
    h.update(body);
    h.finalize().into()
}

/// The stored response of the run a voucher paid, sent again.
fn replay(stored: &memo::StoredResponse) -> Response {
    let mut res = Response::new(Body::from(stored.body.clone()));
    *res.status_mut() = stored.status;
    *res.headers_mut() = stored.headers.clone();
    res.headers_mut()
        .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    res
}

/// A paid handler's 5xx, without its body and headers (a failed run is not
/// charged, so it must not deliver content); `Retry-After` is kept.
fn handler_failed(res: &Response) -> Response {
    let mut out = json_response(
        res.status(),
        &json!({
            "error": "handler_failed",
            "message": format!(
                "the paid handler failed; the voucher was not charged for it and pays a retry \
                 (up to {} runs in all)", memo::MAX_RUNS
            ),
        }),
    );
    if let Some(retry) = res.headers().get(http::header::RETRY_AFTER) {
        out.headers_mut()
            .insert(http::header::RETRY_AFTER, retry.clone());
    }
    out
}

/// 409: the request paid by this voucher is still running.
pub(super) fn in_flight() -> Response {
    let mut res = json_response(
        StatusCode::CONFLICT,
        &json!({
            "error": "in_flight",
            "message": "the request this voucher paid is still running; retry it later with the same Idempotency-Key",
        }),
    );
    res.headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    res
}

async fn call<I>(inner: &mut I, req: Request<Body>) -> Response
where
    I: Service<Request<Body>, Response = Response, Error = Infallible>,
{
    match inner.call(req).await {
        Ok(res) => res,
        Err(never) => match never {},
    }
}

/// A payment header that is not a payment.
enum Bad {
    /// 400, naming the field at fault.
    Malformed(PaymentError),
    /// 402: well-formed but not for this scheme or network.
    Refused(Box<Refusal>),
}

/// Decodes a payment header ([`crate::payment::decode_payment`]); then the
/// scheme and network must be ours.
fn decode_payment<C, S>(
    value: &[u8],
    version: HeaderVersion,
    shared: &Shared<C, S>,
) -> Result<SignedVoucher, Bad> {
    let payment = crate::payment::decode_payment(value, version).map_err(Bad::Malformed)?;
    let channel = Some(Pubkey::new_from_array(payment.voucher.voucher.channel_id));
    let (scheme_field, network_field) = match version {
        HeaderVersion::V2 => ("accepted.scheme", "accepted.network"),
        HeaderVersion::V1 => ("scheme", "network"),
    };
    if payment.scheme != SCHEME {
        return Err(Bad::Refused(Box::new(Refusal::header(
            ("unsupported_scheme", "unsupported_scheme"),
            scheme_field,
            format!(
                "scheme {:?} is not offered; use \"{SCHEME}\"",
                payment.scheme
            ),
            channel,
        ))));
    }
    let ours = payment.network == shared.config.network
        || (version == HeaderVersion::V1 && payment.network == shared.v1_network);
    if !ours {
        return Err(Bad::Refused(Box::new(Refusal::header(
            ("invalid_network", "wrong_network"),
            network_field,
            format!("network must be {}", shared.config.network),
            channel,
        ))));
    }
    Ok(payment.voucher)
}

/// A valid `Idempotency-Key`: 1 to 128 bytes of visible ASCII.
fn idempotency_key(value: &[u8]) -> Option<&[u8]> {
    let ok = !value.is_empty()
        && value.len() <= MAX_IDEMPOTENCY_KEY_LEN
        && value.iter().all(|b| (0x21..=0x7e).contains(b));
    ok.then_some(value)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A JSON answer (shared with the facilitator routes).
pub(super) fn json_response<T: serde::Serialize + ?Sized>(
    status: StatusCode,
    body: &T,
) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut res = Response::new(Body::from(bytes));
    *res.status_mut() = status;
    res.headers_mut().insert(CONTENT_TYPE, JSON);
    res
}

/// 400 `{"error": "invalid_payload", "message": …}`.
pub(super) fn bad_request(message: &str) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({ "error": "invalid_payload", "message": message }),
    )
}

/// 400 for a payment header that does not decode, naming the field at fault:
/// `{"error": "invalid_payload", "field": "payload.signature", "message": …}`.
fn bad_payment(e: &PaymentError) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({ "error": "invalid_payload", "field": e.field(), "message": e.to_string() }),
    )
}

/// 503 `{"error": "overloaded", …}` with `Retry-After`: too many channel
/// loads are in flight.
pub(super) fn overloaded() -> Response {
    let mut res = json_response(
        StatusCode::SERVICE_UNAVAILABLE,
        &json!({ "error": "overloaded", "message": "too many channels are being looked up; retry shortly" }),
    );
    res.headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    res
}

/// 503 `{"error": "unavailable", …}`: the verifier could not decide.
pub(super) fn unavailable() -> Response {
    json_response(
        StatusCode::SERVICE_UNAVAILABLE,
        &json!({ "error": "unavailable", "message": "the payment verifier is unavailable; retry later" }),
    )
}

fn internal_error() -> Response {
    json_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        &json!({ "error": "internal", "message": "the offer could not be encoded" }),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use paychan_verifier::{MemoryChannels, MemoryStore};

    use super::*;

    fn paywall() -> Paywall<MemoryChannels, MemoryStore> {
        let terms = Terms::new(
            Pubkey::new_unique(),
            Pubkey::new_unique(),
            Pubkey::new_unique(),
            1_000,
        );
        let extra = PaychanExtra {
            program_id: terms.program_id.to_string(),
            token_program: Pubkey::new_unique().to_string(),
            decimals: 6,
            grace_period_seconds: terms.min_grace_period,
            minimum_deposit: "0".into(),
            fee_payer: None,
        };
        let verifier = Verifier::new(MemoryChannels::default(), MemoryStore::default(), terms);
        Paywall::new(
            Arc::new(verifier),
            PaywallConfig::new("solana:local", extra),
        )
    }

    fn head(uri: &str) -> Parts {
        Request::get(uri).body(()).unwrap().into_parts().0
    }

    /// A fixed price at a fixed URL is serialized once, when the layer is
    /// made, to the bytes the request path would build; a free route, a
    /// computed price or a URL taken from the request is not.
    #[test]
    fn only_a_paid_fixed_route_at_a_fixed_url_is_serialized_ahead() {
        let p = paywall();
        let url = "https://api.example/fixed";
        let fixed = p.layer(1_000).resource_url(url).layer(());
        let offer = fixed.route.fixed_offer.as_ref().expect("serialized ahead");
        let built = Offer::encode(&fixed.route.required(1_000, &head("/other"))).unwrap();
        assert_eq!((&offer.header, &offer.body), (&built.header, &built.body));
        let required: v2::PaymentRequired = serde_json::from_slice(&offer.body).unwrap();
        assert_eq!(
            (
                required.resource.url.as_str(),
                required.accepts[0].amount.as_str()
            ),
            (url, "1000")
        );
        for layer in [
            p.layer(0).resource_url(url),
            p.layer(1_000),
            p.layer(Price::computed(|_| Some(1_000))).resource_url(url),
        ] {
            assert!(layer.layer(()).route.fixed_offer.is_none(), "{layer:?}");
        }
    }

    /// Computed prices at a fixed URL keep at most OFFER_CACHE offers: a
    /// client choosing the price cannot grow the cache without bound, and a
    /// cached offer is the one the price calls for.
    #[test]
    fn offers_of_computed_prices_are_cached_up_to_the_bound() {
        let p = paywall();
        let svc = p
            .layer(Price::computed(|_| Some(1)))
            .resource_url("https://api.example/units")
            .layer(());
        let parts = head("/units");
        let extra = 10;
        for price in 1..=(OFFER_CACHE as u64 + extra) {
            let res = svc.route.offer(price, &parts);
            assert_eq!(res.status(), StatusCode::PAYMENT_REQUIRED);
        }
        let offers = svc.route.offers.read();
        assert_eq!(offers.len(), OFFER_CACHE);
        let cached = offers.get(&7).expect("an early price is cached");
        let required: v2::PaymentRequired = serde_json::from_slice(&cached.body).unwrap();
        assert_eq!(required.accepts[0].amount, "7");
        assert!(!offers.contains_key(&(OFFER_CACHE as u64 + 1)));
    }
}
