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
    ChannelSource, CheckError, MAX_HEADER_LEN, Pubkey, Rejection, SignedVoucher, Terms, Verifier,
    VoucherStore,
};
use paychan_voucher::json::SignedVoucherJson;
use serde::Deserialize;
use serde_json::json;
use tower::{Layer, Service};

use crate::{network::Network, scheme::PaychanExtra, scheme::SCHEME, v1, v2};

pub mod facilitator;
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
const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Offers kept per route for computed prices (with a fixed resource URL).
const OFFER_CACHE: usize = 256;

/// What the paywall offers and how much it remembers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaywallConfig {
    /// CAIP-2 network id (`solana:<genesis hash prefix>`).
    pub network: String,
    /// The offer's `extra`.
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
    /// How many times a spent voucher is served again with its
    /// `Idempotency-Key` (default 3).
    pub max_replays: u8,
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

/// The one `paychan` requirement of an offer costing `price`.
#[must_use]
pub fn requirements(
    terms: &Terms,
    network: &str,
    extra: &PaychanExtra,
    price: u64,
) -> v2::PaymentRequirements {
    v2::PaymentRequirements {
        scheme: SCHEME.to_owned(),
        network: network.to_owned(),
        amount: price.to_string(),
        asset: terms.mint.to_string(),
        pay_to: terms.payee.to_string(),
        max_timeout_seconds: MAX_TIMEOUT_SECONDS,
        extra: serde_json::to_value(extra).ok(),
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

/// The v1 402 body carrying the same offer.
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
        let memo = memo::Memo::new(config.memory_channels, config.max_replays);
        Self {
            shared: Arc::new(Shared {
                verifier,
                config,
                v1_network,
                memo,
            }),
        }
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
    /// public URL, description and MIME type applied as the layer does.
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
}

impl<C, S> Clone for PaywallLayer<C, S> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            price: self.price.clone(),
            description: self.description.clone(),
            mime_type: self.mime_type.clone(),
            resource_url: self.resource_url.clone(),
        }
    }
}

impl<C, S> fmt::Debug for PaywallLayer<C, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PaywallLayer")
            .field("price", &self.price)
            .field("resource_url", &self.resource_url)
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
        payment_required(
            self.shared.verifier.terms(),
            &c.network,
            &c.extra,
            price,
            v2::Resource {
                url,
                description: self.description.clone(),
                mime_type: self.mime_type.clone(),
            },
        )
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

    /// 402 with the offer, the reason and the `extensions.paychan` hint.
    fn refusal(&self, price: u64, parts: &Parts, v1: bool, refusal: &Refusal) -> Response {
        let mut required = self.required(price, parts);
        required.error = Some(refusal.reason.to_owned());
        let mut paychan = serde_json::Map::new();
        paychan.insert("reason".into(), refusal.reason.into());
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
        required.extensions = Some(json!({ "paychan": paychan }));
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
    reason: &'static str,
    message: String,
    channel: Option<Pubkey>,
    last_accepted: Option<u64>,
    required: Option<u64>,
}

impl Refusal {
    fn rejected(channel: Pubkey, r: &Rejection) -> Self {
        let required = match r {
            Rejection::InsufficientIncrement { required, .. } => Some(*required),
            _ => None,
        };
        Self {
            reason: r.reason(),
            message: r.to_string(),
            channel: Some(channel),
            last_accepted: r.last_accepted(),
            required,
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

/// Which header carried the payment.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    V2,
    V1,
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
        (h, Version::V2)
    } else if let Some(h) = parts.headers.get(X_PAYMENT) {
        (h, Version::V1)
    } else {
        return route.offer(price, &parts);
    };
    let shared = &route.shared;
    let v1 = version == Version::V1;
    let voucher = match decode_payment(header.as_bytes(), version, shared) {
        Ok(v) => v,
        Err(Bad::Malformed(message)) => return bad_request(message),
        Err(Bad::Refused(refusal)) => return route.refusal(price, &parts, v1, &refusal),
    };
    let key = match parts.headers.get(IDEMPOTENCY_KEY) {
        None => None,
        Some(k) => match idempotency_key(k.as_bytes()) {
            Some(k) => Some(shared.memo.key_hash(k)),
            None => return bad_request("Idempotency-Key must be 1 to 128 visible ASCII bytes"),
        },
    };
    let channel = Pubkey::new_from_array(voucher.voucher.channel_id);
    let receipt = match shared
        .verifier
        .check_priced(&voucher, price, unix_now())
        .await
    {
        Ok(r) if !r.duplicate => {
            shared.memo.record(channel, &voucher, r.charged, key);
            r
        }
        Ok(r) => {
            if shared.memo.claim(&channel, &voucher, key, price).is_none() {
                let cumulative = voucher.voucher.cumulative_amount;
                let rejection = Rejection::InsufficientIncrement {
                    cumulative,
                    required: cumulative.saturating_add(price),
                    last_accepted: cumulative,
                };
                tracing::debug!(%channel, cumulative, "voucher already spent");
                return route.refusal(price, &parts, v1, &Refusal::rejected(channel, &rejection));
            }
            r
        }
        Err(CheckError::Rejected(r)) if r.is_malformed() => return bad_request(&r.to_string()),
        Err(CheckError::Rejected(r)) => {
            tracing::debug!(%channel, reason = r.reason(), "voucher rejected: {r}");
            return route.refusal(price, &parts, v1, &Refusal::rejected(channel, &r));
        }
        Err(CheckError::Fault(e)) => {
            tracing::warn!(%channel, "payment verifier unavailable: {e}");
            return unavailable();
        }
    };
    let mut req = Request::from_parts(parts, body);
    req.extensions_mut().insert(receipt);
    let mut res = call(&mut inner, req).await;
    let failed = res.status().is_server_error();
    shared.memo.finish(&channel, &voucher, failed);
    if failed {
        // Not charged: the voucher is a credit for the retry.
        return res;
    }
    let settle = v2::SettleResponse {
        success: true,
        error_reason: None,
        payer: Some(receipt.payer.to_string()),
        transaction: String::new(),
        network: shared.config.network.clone(),
        amount: Some(receipt.charged.to_string()),
    };
    match crate::codec::encode(&settle)
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
    /// 400.
    Malformed(&'static str),
    /// 402: well-formed but not for this scheme or network.
    Refused(Refusal),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AcceptedRef<'a> {
    #[serde(borrow)]
    scheme: Cow<'a, str>,
    #[serde(borrow)]
    network: Cow<'a, str>,
}

/// `v2::PaymentPayload` with the `paychan` payload typed (and the fields the
/// layer does not need skipped), so decoding builds no `serde_json::Value`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct V2Envelope<'a> {
    x402_version: u32,
    #[serde(borrow)]
    accepted: AcceptedRef<'a>,
    payload: SignedVoucherJson,
}

/// `v1::PaymentPayload`, typed likewise.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct V1Envelope<'a> {
    x402_version: u32,
    #[serde(borrow)]
    scheme: Cow<'a, str>,
    #[serde(borrow)]
    network: Cow<'a, str>,
    payload: SignedVoucherJson,
}

/// Decodes a payment header: bounded, base64 into a stack buffer, the
/// envelope, the voucher; then the scheme and network must be ours.
fn decode_payment<C, S>(
    value: &[u8],
    version: Version,
    shared: &Shared<C, S>,
) -> Result<SignedVoucher, Bad> {
    if value.len() > MAX_HEADER_LEN {
        return Err(Bad::Malformed("payment header exceeds 4096 bytes"));
    }
    let mut buf = [0u8; MAX_HEADER_LEN / 4 * 3];
    let len = base64::engine::general_purpose::STANDARD
        .decode_slice(value, &mut buf)
        .map_err(|_| Bad::Malformed("payment header is not standard base64"))?;
    let json = buf.get(..len).unwrap_or_default();
    let (scheme, ours, payload) = match version {
        Version::V2 => {
            let e: V2Envelope<'_> = serde_json::from_slice(json)
                .map_err(|_| Bad::Malformed("PAYMENT-SIGNATURE is not a v2 PaymentPayload"))?;
            if e.x402_version != 2 {
                return Err(Bad::Malformed("PAYMENT-SIGNATURE needs x402Version 2"));
            }
            let ours = e.accepted.network == shared.config.network;
            (e.accepted.scheme, ours, e.payload)
        }
        Version::V1 => {
            let e: V1Envelope<'_> = serde_json::from_slice(json)
                .map_err(|_| Bad::Malformed("X-PAYMENT is not a v1 PaymentPayload"))?;
            if e.x402_version != 1 {
                return Err(Bad::Malformed("X-PAYMENT needs x402Version 1"));
            }
            let ours = e.network == shared.v1_network || e.network == shared.config.network;
            (e.scheme, ours, e.payload)
        }
    };
    let voucher = SignedVoucher::try_from(&payload)
        .map_err(|_| Bad::Malformed("payload is not a valid signed voucher"))?;
    let channel = Some(Pubkey::new_from_array(voucher.voucher.channel_id));
    if scheme != SCHEME {
        return Err(Bad::Refused(Refusal {
            reason: "unsupported_scheme",
            message: format!("scheme {scheme:?} is not offered; use \"{SCHEME}\""),
            channel,
            last_accepted: None,
            required: None,
        }));
    }
    if !ours {
        return Err(Bad::Refused(Refusal {
            reason: "invalid_network",
            message: format!("network must be {}", shared.config.network),
            channel,
            last_accepted: None,
            required: None,
        }));
    }
    Ok(voucher)
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
