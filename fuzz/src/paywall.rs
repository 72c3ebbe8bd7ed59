//! The live paywall: a script of requests (see [`crate::script`]) through
//! `paychan_x402::server::Paywall` on an axum router, with a real verifier
//! and one open channel whose key the seeds sign with.
//!
//! Every request is paid (`?price=N` sets its price, default
//! [`fixture::PRICE`]) except under `/free`. Checked after each request:
//! no panic; the status is 200, 400, 402, 409, 413 or 503; a free request
//! is served as is; a paid 200 carries a `PAYMENT-RESPONSE` (and for an
//! `X-PAYMENT`, an `X-PAYMENT-RESPONSE`) naming the payer and a charge of
//! at least the price, and either ran the handler once with that receipt
//! or is a marked replay that did not run it, answering the same voucher,
//! `Idempotency-Key` and request as a run it paid with that run's
//! receipt, at most `max_replays` times; nothing else runs the
//! handler; the store's invariants ([`crate::live::check_store`]). At the
//! end: what the handler runs were charged adds up to exactly what the
//! store accepted (paid once, served once).
#![allow(clippy::expect_used)] // a harness's assertion is the point

use std::sync::{Arc, Mutex, PoisonError};

use axum::{Router, body::Body, extract::Request};
use base64::Engine;
use http::{HeaderName, HeaderValue, Method, StatusCode, Uri, request::Parts};
use paychan_verifier::Receipt;
use paychan_x402::{
    codec,
    payment::{HeaderVersion, decode_payment},
    server::{Paywall, PaywallConfig, Price},
    v2,
};

use crate::{fixture, live, script, stats};

/// Largest body of a paid request with an `Idempotency-Key` (the default
/// is 1 MiB; a fuzz input reaches this one with a `P` line).
pub const MAX_IDEMPOTENT_BODY: usize = 8 * 1024;

const PAYMENT_SIGNATURE: HeaderName = HeaderName::from_static("payment-signature");
const X_PAYMENT: HeaderName = HeaderName::from_static("x-payment");
const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const PAYMENT_RESPONSE: &str = "payment-response";
const X_PAYMENT_RESPONSE: &str = "x-payment-response";

/// What a request costs: nothing under `/free`, else `?price=N` (0 is
/// free), else [`fixture::PRICE`].
#[must_use]
pub fn price_of(uri: &Uri) -> Option<u64> {
    if uri.path().starts_with("/free") {
        return None;
    }
    let price = uri
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("price=")))
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(fixture::PRICE);
    (price > 0).then_some(price)
}

type Runs = Arc<Mutex<Vec<Option<Receipt>>>>;

/// What a stored response may be replayed for: the same voucher, the same
/// `Idempotency-Key` and the same request (method, path and query, body).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Paid {
    signature: [u8; 64],
    key: Option<Vec<u8>>,
    method: String,
    uri: String,
    body: Vec<u8>,
}

impl Paid {
    /// `None` when the request carries no payment that decodes.
    fn of(req: &http::Request<Body>, body: &[u8]) -> Option<Self> {
        let (header, version) = match req.headers().get(PAYMENT_SIGNATURE) {
            Some(h) => (h, HeaderVersion::V2),
            None => (req.headers().get(X_PAYMENT)?, HeaderVersion::V1),
        };
        let payment = decode_payment(header.as_bytes(), version).ok()?;
        Some(Self {
            signature: payment.voucher.signature,
            key: req
                .headers()
                .get(IDEMPOTENCY_KEY)
                .map(|k| k.as_bytes().to_vec()),
            method: req.method().to_string(),
            uri: req.uri().to_string(),
            body: body.to_vec(),
        })
    }
}

/// One handler behind the paywall for every method and path; it records
/// the receipt it finds (none for a free request).
fn app(
    paywall: &Paywall<paychan_verifier::MemoryChannels, Arc<paychan_verifier::MemoryStore>>,
    runs: Runs,
) -> Router {
    let handler = move |req: Request| {
        let runs = runs.clone();
        async move {
            let receipt = req.extensions().get::<Receipt>().copied();
            runs.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(receipt);
            "served"
        }
    };
    Router::new()
        .fallback(handler)
        .layer(paywall.layer(Price::computed(|parts: &Parts| price_of(&parts.uri))))
}

/// The request of a script step, and whether it pays with `X-PAYMENT`
/// only (v1); `None` when its method or path is not valid HTTP.
fn build(step: &script::Request<'_>) -> Option<(http::Request<Body>, bool)> {
    let head = std::str::from_utf8(step.head).ok()?;
    let (method, path) = head.split_once(' ')?;
    let mut req = http::Request::builder()
        .method(Method::from_bytes(method.as_bytes()).ok()?)
        .uri(Uri::try_from(path).ok()?)
        .body(Body::from(step.body.clone()))
        .ok()?;
    let b64 = |v: &[u8]| {
        base64::engine::general_purpose::STANDARD
            .encode(v)
            .into_bytes()
    };
    for (tag, value) in &step.headers {
        let (name, value) = match tag {
            b'S' => (PAYMENT_SIGNATURE, b64(value)),
            b's' => (PAYMENT_SIGNATURE, value.to_vec()),
            b'X' => (X_PAYMENT, b64(value)),
            b'x' => (X_PAYMENT, value.to_vec()),
            b'K' => (IDEMPOTENCY_KEY, value.to_vec()),
            _ => continue,
        };
        if let Ok(value) = HeaderValue::from_bytes(&value) {
            req.headers_mut().insert(name, value);
        }
    }
    let v1 =
        !req.headers().contains_key(PAYMENT_SIGNATURE) && req.headers().contains_key(X_PAYMENT);
    Some((req, v1))
}

/// Runs one input; `true` when some paid request was served.
pub fn run(data: &[u8]) -> bool {
    let steps = script::parse(data);
    let (verifier, store) = live::verifier();
    let mut config = PaywallConfig::new(fixture::NETWORK, fixture::extra());
    config.memory_channels = 64;
    config.max_idempotent_body = MAX_IDEMPOTENT_BODY;
    let max_replays = config.max_replays;
    let paywall = Paywall::new(verifier, config);
    let runs: Runs = Arc::default();
    let app = app(&paywall, runs.clone());
    let payer = fixture::PAYER.to_string();

    let mut served = false;
    let mut charged_runs: u128 = 0;
    let mut records = Vec::new();
    // Paid runs with an Idempotency-Key: what they paid, their
    // PAYMENT-RESPONSE, and how often they were replayed.
    let mut keyed: Vec<(Paid, HeaderValue, u8)> = Vec::new();
    for step in &steps {
        let Some((req, v1)) = build(step) else {
            continue;
        };
        let price = price_of(req.uri());
        let paid = Paid::of(&req, &step.body);
        let line = if stats::tracing() {
            format!("{} {} {:?}", req.method(), req.uri(), req.headers())
        } else {
            String::new()
        };
        let ran_before = runs.lock().unwrap_or_else(PoisonError::into_inner).len();
        let (res, body) = live::send(&app, req);
        let ran: Vec<Option<Receipt>> =
            runs.lock().unwrap_or_else(PoisonError::into_inner)[ran_before..].to_vec();
        let status = res.status;
        stats::status(status.as_u16());
        stats::trace(&line, status.as_u16(), &body);
        assert!(
            matches!(status.as_u16(), 200 | 400 | 402 | 409 | 413 | 503),
            "status {status}"
        );
        match price {
            None => {
                assert_eq!(status, StatusCode::OK, "a free request");
                assert_eq!(ran, [None], "a free request runs the handler once, unpaid");
            }
            Some(price) if status == StatusCode::OK => {
                served = true;
                let header = res
                    .headers
                    .get(PAYMENT_RESPONSE)
                    .expect("a paid 200 carries PAYMENT-RESPONSE");
                if v1 {
                    assert_eq!(res.headers.get(X_PAYMENT_RESPONSE), Some(header));
                }
                let settle: v2::SettleResponse =
                    codec::decode(header.as_bytes()).expect("PAYMENT-RESPONSE decodes");
                assert!(settle.success);
                assert_eq!(settle.network, fixture::NETWORK);
                assert_eq!(settle.payer.as_deref(), Some(payer.as_str()));
                let amount: u64 = settle
                    .amount
                    .as_deref()
                    .and_then(|a| a.parse().ok())
                    .expect("PAYMENT-RESPONSE names the amount");
                assert!(amount >= price, "charged {amount} for a price of {price}");
                let replayed = res.headers.get("idempotent-replayed").is_some();
                let paid = paid.expect("a paid 200 answers a payment that decodes");
                if replayed {
                    assert!(ran.is_empty(), "a replay ran the handler");
                    let (original, response, replays) = keyed
                        .iter_mut()
                        .rev()
                        .find(|(p, _, _)| p.signature == paid.signature && p.key == paid.key)
                        .expect("a replay of a run paid by this voucher with this key");
                    assert_eq!(*original, paid, "a replay answers another request");
                    assert_eq!(response, header, "a replay carries the run's receipt");
                    *replays += 1;
                    assert!(*replays <= max_replays, "replayed {replays} times");
                } else {
                    assert_eq!(ran.len(), 1, "a paid 200 runs the handler once");
                    let receipt = ran
                        .first()
                        .copied()
                        .flatten()
                        .expect("a paid run finds its receipt");
                    assert_eq!(receipt.charged, amount);
                    assert_eq!(receipt.channel, fixture::CHANNEL);
                    charged_runs += u128::from(receipt.charged);
                    if paid.key.is_some() {
                        keyed.push((paid, header.clone(), 0));
                    }
                }
            }
            Some(_) => assert!(ran.is_empty(), "the handler ran for a {status}"),
        }
        records = live::check_store(&store, &records);
    }
    let accepted = records
        .first()
        .map_or(0, |a| a.voucher.voucher.cumulative_amount);
    assert_eq!(
        charged_runs,
        u128::from(accepted),
        "the handler runs were charged {charged_runs} in all; the store accepted {accepted}"
    );
    served
}
