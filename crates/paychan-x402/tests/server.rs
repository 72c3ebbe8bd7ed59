//! The paywall layer and the facilitator routes (docs/004), driven through
//! axum routers with `tower::ServiceExt::oneshot`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::{
    Extension, Router,
    body::Body,
    http::{HeaderMap, Request, StatusCode},
    routing::get,
};
use ed25519_dalek::SigningKey;
use paychan_verifier::{
    ChannelSnapshot, ChannelSource, LoadError, MemoryChannels, MemoryStore, Pubkey, Receipt,
    SignedVoucher, Terms, Verifier, VoucherStore,
};
use paychan_x402::{
    codec,
    scheme::PaychanExtra,
    server::{
        Paywall, PaywallConfig, Price,
        facilitator::{self, SettleQueue},
    },
    v1, v2,
};
use serde_json::{Value, json};
use tower::ServiceExt;

mod common;

use common::{NETWORK, PRICE, pay_v2};

const DEPOSIT: u64 = 1_000_000;

struct Fixture {
    key: SigningKey,
    channel: Pubkey,
    payer: Pubkey,
    payee: Pubkey,
    mint: Pubkey,
}

impl Fixture {
    fn new(seed: u8) -> Self {
        Self {
            key: SigningKey::from_bytes(&[seed; 32]),
            channel: Pubkey::new_unique(),
            payer: Pubkey::new_unique(),
            payee: Pubkey::new_unique(),
            mint: Pubkey::new_unique(),
        }
    }

    /// The terms the offers advertise (`extra()`): grace and minimum deposit included.
    fn terms(&self) -> Terms {
        let mut terms = Terms::new(paychan_sdk::ID, self.payee, self.mint, PRICE);
        terms.min_grace_period = 3_600;
        terms.min_deposit = 100_000;
        terms
    }

    fn snapshot(&self) -> ChannelSnapshot {
        common::open_channel(
            self.channel,
            self.payer,
            self.payee,
            self.mint,
            &self.key,
            DEPOSIT,
        )
    }

    fn voucher(&self, cumulative: u64) -> SignedVoucher {
        self.voucher_expiring(cumulative, 0)
    }

    fn voucher_expiring(&self, cumulative: u64, expires_at: i64) -> SignedVoucher {
        common::voucher(&self.key, self.channel, cumulative, expires_at)
    }

    fn extra(&self) -> PaychanExtra {
        common::extra(3_600, "100000", Some(self.payee.to_string()))
    }

    fn verifier(&self) -> Arc<Verifier<MemoryChannels, MemoryStore>> {
        let channels = MemoryChannels::default();
        channels.upsert(self.snapshot()).unwrap();
        Arc::new(Verifier::new(
            channels,
            MemoryStore::default(),
            self.terms(),
        ))
    }
}

struct Env {
    f: Fixture,
    paywall: Paywall<MemoryChannels, MemoryStore>,
    app: Router,
    flaky_calls: Arc<AtomicUsize>,
}

async fn paid(Extension(r): Extension<Receipt>) -> String {
    format!("paid {} of {}", r.charged, r.cumulative)
}

/// `paid` at `/paid` behind `paywall` at `PRICE`.
fn paid_app<C: ChannelSource + 'static, S: VoucherStore + 'static>(
    paywall: &Paywall<C, S>,
) -> Router {
    Router::new()
        .route("/paid", get(paid))
        .route_layer(paywall.layer(PRICE))
}

async fn maybe_paid(r: Option<Extension<Receipt>>) -> String {
    match r {
        Some(Extension(r)) => format!("paid {} of {}", r.charged, r.cumulative),
        None => "free".into(),
    }
}

fn env() -> Env {
    let f = Fixture::new(7);
    let paywall = Paywall::new(f.verifier(), PaywallConfig::new(NETWORK, f.extra()));
    let flaky_calls = Arc::new(AtomicUsize::new(0));
    let calls = flaky_calls.clone();
    let flaky = get(move |Extension(r): Extension<Receipt>| {
        let calls = calls.clone();
        async move {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                (StatusCode::INTERNAL_SERVER_ERROR, "boom".to_owned())
            } else {
                (StatusCode::OK, format!("paid {}", r.charged))
            }
        }
    });
    let per_unit = Price::computed(|parts| {
        let n: u64 = parts.uri.path().strip_prefix("/units/")?.parse().ok()?;
        n.checked_mul(PRICE)
    });
    let app = Router::new()
        .route("/paid", get(paid))
        .route_layer(paywall.layer(PRICE))
        .route("/units/{n}", get(maybe_paid).layer(paywall.layer(per_unit)))
        .route("/flaky", flaky.layer(paywall.layer(PRICE)))
        .route(
            "/fixed",
            get(paid).layer(
                paywall
                    .layer(PRICE)
                    .resource_url("https://api.example/fixed")
                    .description("a fixed resource")
                    .mime_type("text/plain"),
            ),
        )
        .route("/free", get(|| async { "free" }));
    Env {
        f,
        paywall,
        app,
        flaky_calls,
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn required(&self) -> v2::PaymentRequired {
        let header = self
            .headers
            .get("PAYMENT-REQUIRED")
            .expect("PAYMENT-REQUIRED");
        codec::decode(header.as_bytes()).unwrap()
    }

    fn settle(&self) -> v2::SettleResponse {
        let header = self
            .headers
            .get("PAYMENT-RESPONSE")
            .expect("PAYMENT-RESPONSE");
        codec::decode(header.as_bytes()).unwrap()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

async fn send(app: &Router, req: Request<Body>) -> Answer {
    let (status, headers, body) = common::send(app, req).await;
    Answer {
        status,
        headers,
        body,
    }
}

fn get_req(path: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::get(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::empty()).unwrap()
}

/// `X-PAYMENT`.
fn pay_v1(voucher: &SignedVoucher) -> String {
    pay_v1_on(NETWORK, voucher)
}

/// `X-PAYMENT` naming `network`.
fn pay_v1_on(network: &str, voucher: &SignedVoucher) -> String {
    codec::encode(&v1::PaymentPayload {
        x402_version: 1,
        scheme: "paychan".into(),
        network: network.into(),
        payload: serde_json::to_value(voucher).unwrap(),
    })
    .unwrap()
}

impl Env {
    fn accepted(&self, price: u64) -> v2::PaymentRequirements {
        self.paywall.payment_required(price, "/").accepts[0].clone()
    }

    async fn pay(&self, path: &str, voucher: &SignedVoucher, key: Option<&str>) -> Answer {
        let sig = pay_v2(voucher, &self.accepted(PRICE));
        let mut headers = vec![("PAYMENT-SIGNATURE", sig.as_str())];
        if let Some(k) = key {
            headers.push(("Idempotency-Key", k));
        }
        send(&self.app, get_req(path, &headers)).await
    }

    fn latest(&self) -> Option<(u64, u64)> {
        self.paywall
            .verifier()
            .store()
            .latest(&self.f.channel)
            .unwrap()
            .map(|a| (a.voucher.voucher.cumulative_amount, a.previous))
    }
}

#[tokio::test]
async fn an_unpaid_request_gets_the_offer_in_the_header_and_the_body() {
    let e = env();
    let a = send(&e.app, get_req("/paid", &[])).await;
    assert_eq!(a.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(a.headers["content-type"], "application/json");
    let required = a.required();
    assert_eq!(
        serde_json::from_slice::<v2::PaymentRequired>(&a.body).unwrap(),
        required,
        "the body is the header's JSON"
    );
    assert_eq!(required, e.paywall.payment_required(PRICE, "/paid"));
    assert_eq!(required.x402_version, 2);
    assert_eq!(required.error, None);
    assert_eq!(required.resource.url, "/paid");
    let r = &required.accepts[..];
    assert_eq!(r.len(), 1);
    assert_eq!(
        (
            r[0].scheme.as_str(),
            r[0].network.as_str(),
            r[0].amount.as_str(),
            r[0].max_timeout_seconds
        ),
        ("paychan", NETWORK, "1000", 60)
    );
    assert_eq!(r[0].asset, e.f.mint.to_string());
    assert_eq!(r[0].pay_to, e.f.payee.to_string());
    let extra: PaychanExtra = serde_json::from_value(r[0].extra.clone().unwrap()).unwrap();
    assert_eq!(extra, e.f.extra());
    assert_eq!(
        r[0].extra.as_ref().unwrap()["programId"],
        paychan_sdk::ID.to_string()
    );
    // Free routes are untouched.
    let a = send(&e.app, get_req("/free", &[])).await;
    assert_eq!((a.status, a.text()), (StatusCode::OK, "free"));
}

#[tokio::test]
async fn a_fixed_resource_url_gives_the_same_offer_every_time() {
    let e = env();
    let a = send(&e.app, get_req("/fixed?x=1", &[])).await;
    let b = send(&e.app, get_req("/fixed?y=2", &[])).await;
    assert_eq!(a.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(a.headers["PAYMENT-REQUIRED"], b.headers["PAYMENT-REQUIRED"]);
    assert_eq!(a.body, b.body);
    let r = a.required();
    assert_eq!(r.resource.url, "https://api.example/fixed");
    assert_eq!(r.resource.description.as_deref(), Some("a fixed resource"));
    assert_eq!(r.resource.mime_type.as_deref(), Some("text/plain"));
    assert_eq!(
        serde_json::from_slice::<v2::PaymentRequired>(&a.body).unwrap(),
        r
    );
}

#[tokio::test]
async fn a_public_url_makes_the_resource_url_absolute() {
    let f = Fixture::new(7);
    let mut config = PaywallConfig::new(NETWORK, f.extra());
    config.public_url = Some("https://api.example.com/".into());
    let paywall = Paywall::new(f.verifier(), config);
    let app = paid_app(&paywall);
    let a = send(&app, get_req("/paid?q=1", &[])).await;
    assert_eq!(a.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(
        a.required().resource.url,
        "https://api.example.com/paid?q=1"
    );
    // A client's own Host header changes nothing.
    let b = send(&app, get_req("/paid?q=1", &[("host", "evil.example")])).await;
    assert_eq!(
        b.required().resource.url,
        "https://api.example.com/paid?q=1"
    );
    // The paywall's own offer builder resolves the URL the same way.
    assert_eq!(paywall.payment_required(PRICE, "/paid?q=1"), b.required());
}

#[tokio::test]
async fn a_paid_request_is_served_with_a_payment_response_and_the_store_advances() {
    let e = env();
    let a = e.pay("/paid", &e.f.voucher(PRICE), None).await;
    assert_eq!((a.status, a.text()), (StatusCode::OK, "paid 1000 of 1000"));
    assert_eq!(
        a.settle(),
        v2::SettleResponse {
            success: true,
            error_reason: None,
            error_message: None,
            payer: Some(e.f.payer.to_string()),
            transaction: String::new(),
            network: NETWORK.into(),
            amount: Some("1000".into()),
            extensions: None,
        }
    );
    assert!(a.headers.get("X-PAYMENT-RESPONSE").is_none());
    assert_eq!(e.latest(), Some((PRICE, 0)));
    // A voucher adding more than the price is charged all it adds.
    let a = e.pay("/paid", &e.f.voucher(3 * PRICE), None).await;
    assert_eq!((a.status, a.text()), (StatusCode::OK, "paid 2000 of 3000"));
    assert_eq!(a.settle().amount.as_deref(), Some("2000"));
    assert_eq!(e.latest(), Some((3 * PRICE, PRICE)));
}

#[tokio::test]
async fn v1_clients_get_v1_answers() {
    let e = env();
    let a = send(
        &e.app,
        get_req("/paid", &[("X-PAYMENT", &pay_v1(&e.f.voucher(PRICE)))]),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.headers["X-PAYMENT-RESPONSE"],
        a.headers["PAYMENT-RESPONSE"]
    );
    assert_eq!(a.settle().amount.as_deref(), Some("1000"));
    // A rejected v1 payment: v1 body, v2 header.
    let a = send(
        &e.app,
        get_req("/paid", &[("X-PAYMENT", &pay_v1(&e.f.voucher(PRICE + 1)))]),
    )
    .await;
    assert_eq!(a.status, StatusCode::PAYMENT_REQUIRED);
    let body: v1::PaymentRequired = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(body.x402_version, 1);
    assert_eq!(body.error, "invalid_payment_amount");
    let r = &body.accepts[0];
    assert_eq!(
        (
            r.scheme.as_str(),
            r.network.as_str(),
            r.max_amount_required.as_str(),
            r.resource.as_str()
        ),
        ("paychan", NETWORK, "1000", "/paid")
    );
    assert_eq!(r.pay_to, e.f.payee.to_string());
    let header = a.required();
    assert_eq!(header.x402_version, 2);
    assert_eq!(header.error.as_deref(), Some("invalid_payment_amount"));
    assert_eq!(
        header.extensions.unwrap()["paychan"]["lastAccepted"],
        "1000"
    );
}

#[tokio::test]
async fn too_small_an_increment_is_refused_with_the_resync_hint() {
    let e = env();
    assert_eq!(
        e.pay("/paid", &e.f.voucher(PRICE), None).await.status,
        StatusCode::OK
    );
    let a = e.pay("/paid", &e.f.voucher(PRICE + PRICE / 2), None).await;
    assert_eq!(a.status, StatusCode::PAYMENT_REQUIRED);
    assert!(a.headers.get("PAYMENT-RESPONSE").is_none());
    let required = a.required();
    assert_eq!(
        serde_json::from_slice::<v2::PaymentRequired>(&a.body).unwrap(),
        required
    );
    assert_eq!(required.error.as_deref(), Some("invalid_payment_amount"));
    assert_eq!(required.accepts[0].amount, "1000");
    let hint = &required.extensions.unwrap()["paychan"];
    assert_eq!(hint["reason"], "invalid_payment_amount");
    assert_eq!(hint["channel"], e.f.channel.to_string());
    assert_eq!(hint["lastAccepted"], "1000");
    assert_eq!(hint["required"], "2000");
    assert!(hint["message"].as_str().unwrap().contains("2000"));
    assert_eq!(e.latest(), Some((PRICE, 0)), "nothing accepted");
    // Resynchronised from lastAccepted, the client pays.
    let a = e.pay("/paid", &e.f.voucher(2 * PRICE), None).await;
    assert_eq!((a.status, a.text()), (StatusCode::OK, "paid 1000 of 2000"));
}

#[tokio::test]
async fn other_rejections_carry_their_reason_without_a_resync_hint() {
    let e = env();
    let mallory = Fixture {
        channel: e.f.channel,
        ..Fixture::new(9)
    };
    let a = e.pay("/paid", &mallory.voucher(PRICE), None).await;
    assert_eq!(a.status, StatusCode::PAYMENT_REQUIRED);
    let required = a.required();
    assert_eq!(required.error.as_deref(), Some("invalid_signature"));
    let hint = &required.extensions.unwrap()["paychan"];
    assert_eq!(hint["reason"], "invalid_signature");
    assert!(hint.get("lastAccepted").is_none() && hint.get("required").is_none());
    let a = e.pay("/paid", &e.f.voucher(DEPOSIT + 1), None).await;
    assert_eq!(a.required().error.as_deref(), Some("insufficient_funds"));
    assert_eq!(e.latest(), None);
}

#[tokio::test]
async fn malformed_or_oversized_headers_are_400() {
    let e = env();
    let a = send(
        &e.app,
        get_req("/paid", &[("PAYMENT-SIGNATURE", "not base64!")]),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json()["error"], "invalid_payload");
    // Valid base64 of JSON that is not a payment.
    let junk = codec::encode(&json!({"x402Version": 2})).unwrap();
    let a = send(&e.app, get_req("/paid", &[("PAYMENT-SIGNATURE", &junk)])).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    // A valid payment padded past 4 KiB is refused before decoding.
    let payment = common::payload_v2(&e.f.voucher(PRICE), &e.accepted(PRICE));
    let mut payload = serde_json::to_value(payment).unwrap();
    payload["padding"] = Value::String("x".repeat(3_500));
    let big = codec::encode(&payload).unwrap();
    assert!(big.len() > 4_096);
    let a = send(&e.app, get_req("/paid", &[("PAYMENT-SIGNATURE", &big)])).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json()["error"], "invalid_payload");
    // The same payment without padding pays: the size alone refused it.
    payload["padding"] = Value::Null;
    let small = codec::encode(&payload).unwrap();
    let a = send(&e.app, get_req("/paid", &[("PAYMENT-SIGNATURE", &small)])).await;
    assert_eq!(a.status, StatusCode::OK);
    // A bad Idempotency-Key.
    let a = e
        .pay("/paid", &e.f.voucher(2 * PRICE), Some("has space"))
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let long = "k".repeat(129);
    let a = e.pay("/paid", &e.f.voucher(2 * PRICE), Some(&long)).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(e.latest(), Some((PRICE, 0)));
}

#[tokio::test]
async fn another_scheme_or_network_is_refused() {
    let e = env();
    let mut accepted = e.accepted(PRICE);
    accepted.scheme = "exact".into();
    let sig = pay_v2(&e.f.voucher(PRICE), &accepted);
    let a = send(&e.app, get_req("/paid", &[("PAYMENT-SIGNATURE", &sig)])).await;
    assert_eq!(a.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(a.required().error.as_deref(), Some("unsupported_scheme"));
    let mut accepted = e.accepted(PRICE);
    accepted.network = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1".into();
    let sig = pay_v2(&e.f.voucher(PRICE), &accepted);
    let a = send(&e.app, get_req("/paid", &[("PAYMENT-SIGNATURE", &sig)])).await;
    assert_eq!(a.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(a.required().error.as_deref(), Some("invalid_network"));
    assert_eq!(e.latest(), None);
}

#[tokio::test]
async fn a_computed_price_is_offered_and_enforced_per_request() {
    let e = env();
    let a = send(&e.app, get_req("/units/3", &[])).await;
    assert_eq!(a.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(a.required().accepts[0].amount, "3000");
    assert_eq!(a.required().resource.url, "/units/3");
    let a = send(&e.app, get_req("/units/0", &[])).await;
    assert_eq!(
        (a.status, a.text()),
        (StatusCode::OK, "free"),
        "a zero price is free"
    );
    assert!(a.headers.get("PAYMENT-RESPONSE").is_none());
    let a = e.pay("/units/2", &e.f.voucher(PRICE), None).await;
    assert_eq!(a.status, StatusCode::PAYMENT_REQUIRED);
    let required = a.required();
    assert_eq!(required.accepts[0].amount, "2000");
    assert_eq!(required.extensions.unwrap()["paychan"]["required"], "2000");
    let a = e.pay("/units/2", &e.f.voucher(2 * PRICE), None).await;
    assert_eq!((a.status, a.text()), (StatusCode::OK, "paid 2000 of 2000"));
    assert_eq!(a.settle().amount.as_deref(), Some("2000"));
}

#[tokio::test]
async fn a_handler_error_is_not_charged_and_the_voucher_pays_the_retry_once() {
    let e = env();
    let voucher = e.f.voucher(PRICE);
    let a = e.pay("/flaky", &voucher, None).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(a.headers.get("PAYMENT-RESPONSE").is_none());
    assert_eq!(
        e.latest(),
        Some((PRICE, 0)),
        "accepted before the handler ran"
    );
    let a = e.pay("/flaky", &voucher, None).await;
    assert_eq!((a.status, a.text()), (StatusCode::OK, "paid 1000"));
    assert_eq!(a.settle().amount.as_deref(), Some("1000"));
    // The credit is used up.
    let a = e.pay("/flaky", &voucher, None).await;
    assert_eq!(a.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(
        a.required().extensions.unwrap()["paychan"]["lastAccepted"],
        "1000"
    );
    assert_eq!(e.flaky_calls.load(Ordering::SeqCst), 2);
    assert_eq!(e.latest(), Some((PRICE, 0)));
}

#[tokio::test]
async fn a_duplicate_voucher_is_served_again_only_with_its_idempotency_key() {
    let e = env();
    let voucher = e.f.voucher(PRICE);
    let a = e.pay("/paid", &voucher, Some("req-1")).await;
    assert_eq!(a.status, StatusCode::OK);
    let a = e.pay("/paid", &voucher, None).await;
    assert_eq!(a.status, StatusCode::PAYMENT_REQUIRED);
    let hint = a.required().extensions.unwrap()["paychan"].clone();
    assert_eq!(hint["lastAccepted"], "1000");
    assert_eq!(hint["required"], "2000");
    let a = e.pay("/paid", &voucher, Some("req-2")).await;
    assert_eq!(a.status, StatusCode::PAYMENT_REQUIRED);
    let a = e.pay("/paid", &voucher, Some("req-1")).await;
    assert_eq!((a.status, a.text()), (StatusCode::OK, "paid 1000 of 1000"));
    assert_eq!(a.settle().amount.as_deref(), Some("1000"));
    assert_eq!(e.latest(), Some((PRICE, 0)), "charged once");
    // The next voucher pays only the price on top.
    let a = e.pay("/paid", &e.f.voucher(2 * PRICE), None).await;
    assert_eq!((a.status, a.text()), (StatusCode::OK, "paid 1000 of 2000"));
}

/// A channel source whose chain lookups all fail with the same error.
struct Failing(fn() -> LoadError);

impl ChannelSource for Failing {
    fn get(&self, _: &Pubkey) -> Option<ChannelSnapshot> {
        None
    }

    async fn load(&self, _: &Pubkey) -> Result<Option<ChannelSnapshot>, LoadError> {
        Err((self.0)())
    }
}

/// A voucher paid at `/paid` of a paywall whose verifier reads `channels`.
async fn pay_through(channels: Failing) -> Answer {
    let f = Fixture::new(3);
    let verifier = Arc::new(Verifier::new(channels, MemoryStore::default(), f.terms()));
    let paywall = Paywall::new(verifier, PaywallConfig::new(NETWORK, f.extra()));
    let app = paid_app(&paywall);
    let accepted = paywall.payment_required(PRICE, "/paid").accepts[0].clone();
    let sig = pay_v2(&f.voucher(PRICE), &accepted);
    send(&app, get_req("/paid", &[("PAYMENT-SIGNATURE", &sig)])).await
}

/// The chain lookups fail.
#[tokio::test]
async fn a_verifier_fault_is_503_and_never_paid() {
    let a = pay_through(Failing(|| LoadError::Unavailable("rpc unreachable".into()))).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.json()["error"], "unavailable");
    assert!(a.headers.get("PAYMENT-RESPONSE").is_none());
}

/// The channel source is shedding load.
#[tokio::test]
async fn an_overloaded_verifier_is_503_with_retry_after_and_never_paid() {
    let a = pay_through(Failing(|| LoadError::Overloaded)).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.json()["error"], "overloaded");
    assert_eq!(a.headers["retry-after"], "1");
    assert_eq!(a.headers["content-type"], "application/json");
    assert!(a.headers.get("PAYMENT-RESPONSE").is_none());
}

/// The paywall checks expiry against the real clock: a voucher that expires
/// before the settlement margin is over is refused, one that lasts longer pays.
#[tokio::test]
async fn a_voucher_expiring_within_the_settlement_margin_is_refused() {
    let e = env();
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let margin = e.f.terms().settle_margin_secs;
    assert_eq!(margin, 600);
    let soon = e.f.voucher_expiring(PRICE, now + margin / 2);
    let a = e.pay("/paid", &soon, None).await;
    assert_eq!(a.status, StatusCode::PAYMENT_REQUIRED);
    let required = a.required();
    assert_eq!(required.error.as_deref(), Some("payment_expired"));
    let hint = &required.extensions.unwrap()["paychan"];
    assert_eq!(hint["code"], "voucher_expires_too_soon");
    assert_eq!(hint["field"], "voucher.expiresAt");
    assert_eq!(e.latest(), None);
    // Lasting the margin and an hour more: paid.
    let later = e.f.voucher_expiring(PRICE, now + margin + 3_600);
    let a = e.pay("/paid", &later, None).await;
    assert_eq!((a.status, a.text()), (StatusCode::OK, "paid 1000 of 1000"));
    assert_eq!(e.latest(), Some((PRICE, 0)));
}

/// On a public cluster the v1 name of the network differs from its CAIP-2
/// id: `X-PAYMENT` may name either, `PAYMENT-SIGNATURE` only the CAIP-2 id,
/// and no header another cluster.
#[tokio::test]
async fn v1_payments_may_name_the_v1_network_and_v2_payments_may_not() {
    const DEVNET: &str = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";
    let f = Fixture::new(7);
    let paywall = Paywall::new(f.verifier(), PaywallConfig::new(DEVNET, f.extra()));
    let app = paid_app(&paywall);
    let pay = |header: &'static str, value: String| {
        let app = app.clone();
        async move { send(&app, get_req("/paid", &[(header, &value)])).await }
    };
    let a = pay("X-PAYMENT", pay_v1_on("solana-devnet", &f.voucher(PRICE))).await;
    assert_eq!((a.status, a.text()), (StatusCode::OK, "paid 1000 of 1000"));
    let a = pay("X-PAYMENT", pay_v1_on(DEVNET, &f.voucher(2 * PRICE))).await;
    assert_eq!((a.status, a.text()), (StatusCode::OK, "paid 1000 of 2000"));
    for other in [
        "solana",
        "solana-testnet",
        "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
    ] {
        let a = pay("X-PAYMENT", pay_v1_on(other, &f.voucher(3 * PRICE))).await;
        assert_eq!(a.status, StatusCode::PAYMENT_REQUIRED, "{other}");
        let body: v1::PaymentRequired = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(body.error, "invalid_network", "{other}");
        assert_eq!(body.accepts[0].network, "solana-devnet");
    }
    let mut accepted = paywall.payment_required(PRICE, "/paid").accepts[0].clone();
    assert_eq!(accepted.network, DEVNET);
    accepted.network = "solana-devnet".into();
    let a = pay(
        "PAYMENT-SIGNATURE",
        pay_v2(&f.voucher(3 * PRICE), &accepted),
    )
    .await;
    assert_eq!(a.status, StatusCode::PAYMENT_REQUIRED);
    let required = a.required();
    assert_eq!(required.error.as_deref(), Some("invalid_network"));
    assert_eq!(
        required.extensions.unwrap()["paychan"]["field"],
        "accepted.network"
    );
    let stored = paywall.verifier().store().latest(&f.channel).unwrap();
    assert_eq!(
        stored.map(|a| a.voucher.voucher.cumulative_amount),
        Some(2 * PRICE)
    );
}

/// The offer advertises the grace period and minimum deposit the verifier
/// enforces, whatever the configured `extra` says.
#[tokio::test]
async fn the_offer_advertises_the_enforced_terms_not_the_configured_extra() {
    let f = Fixture::new(7);
    let mut extra = f.extra();
    extra.grace_period_seconds = 60;
    extra.minimum_deposit = "1".into();
    let paywall = Paywall::new(f.verifier(), PaywallConfig::new(NETWORK, extra.clone()));
    let app = paid_app(&paywall);
    let a = send(&app, get_req("/paid", &[])).await;
    assert_eq!(a.status, StatusCode::PAYMENT_REQUIRED);
    let offered: PaychanExtra =
        serde_json::from_value(a.required().accepts[0].extra.clone().unwrap()).unwrap();
    assert_eq!(
        (
            offered.grace_period_seconds,
            offered.minimum_deposit.as_str()
        ),
        (3_600, "100000")
    );
    assert_eq!(
        offered,
        PaychanExtra {
            grace_period_seconds: 3_600,
            minimum_deposit: "100000".into(),
            ..extra
        }
    );
    assert_eq!(a.required(), paywall.payment_required(PRICE, "/paid"));
}

/// The paywall drives the wrapped service to readiness before calling it:
/// a service with backpressure (here a concurrency limit) serves paid
/// requests through it.
#[tokio::test]
async fn the_wrapped_service_is_made_ready_before_it_is_called() {
    let e = env();
    let inner = tower::ServiceBuilder::new()
        .concurrency_limit(1)
        .service_fn(|req: Request<Body>| async move {
            let receipt = req.extensions().get::<Receipt>().copied();
            let body = format!("paid {:?}", receipt.map(|r| r.charged));
            Ok::<_, std::convert::Infallible>(axum::response::Response::new(Body::from(body)))
        });
    let svc = tower::Layer::layer(&e.paywall.layer(PRICE), inner);
    for k in 1..=2u64 {
        let sig = pay_v2(&e.f.voucher(k * PRICE), &e.accepted(PRICE));
        let res = svc
            .clone()
            .oneshot(get_req("/paid", &[("PAYMENT-SIGNATURE", &sig)]))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body = axum::body::to_bytes(res.into_body(), 1 << 10)
            .await
            .unwrap();
        assert_eq!(&body[..], b"paid Some(1000)");
    }
    assert_eq!(e.latest(), Some((2 * PRICE, PRICE)));
}

/// A payment header of exactly the size bound is decoded and pays; one
/// byte more is refused before decoding.
#[tokio::test]
async fn a_payment_header_of_exactly_the_size_bound_pays() {
    let e = env();
    let padded = |len: usize| {
        let payment = common::payload_v2(&e.f.voucher(PRICE), &e.accepted(PRICE));
        let mut payload = serde_json::to_value(payment).unwrap();
        payload["padding"] = Value::String(String::new());
        let bare = serde_json::to_vec(&payload).unwrap().len();
        // `len` bytes of base64 carry len / 4 * 3 bytes of JSON.
        payload["padding"] = Value::String("x".repeat(len / 4 * 3 - bare));
        let header = codec::encode(&payload).unwrap();
        assert_eq!(header.len(), len);
        header
    };
    let limit = paychan_x402::payment::MAX_PAYMENT_HEADER_LEN;
    let a = send(
        &e.app,
        get_req("/paid", &[("PAYMENT-SIGNATURE", &padded(limit))]),
    )
    .await;
    assert_eq!((a.status, a.text()), (StatusCode::OK, "paid 1000 of 1000"));
    let a = send(
        &e.app,
        get_req("/paid", &[("PAYMENT-SIGNATURE", &padded(limit + 4))]),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json()["error"], "invalid_payload");
    assert!(a.json()["message"].as_str().unwrap().contains("exceeds"));
}

// ---- facilitator ----

#[derive(Default)]
struct Queue(parking_lot::Mutex<Vec<Pubkey>>);

impl SettleQueue for Queue {
    fn enqueue(&self, channel: Pubkey) {
        self.0.lock().push(channel);
    }
}

fn post(path: &str, body: &Value) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

fn facilitator_request(
    paywall: &Paywall<MemoryChannels, MemoryStore>,
    voucher: &SignedVoucher,
    price: u64,
) -> Value {
    let accepted = paywall.payment_required(price, "/paid").accepts[0].clone();
    serde_json::to_value(v2::FacilitatorRequest {
        x402_version: 2,
        payment_payload: common::payload_v2(voucher, &accepted),
        payment_requirements: accepted,
    })
    .unwrap()
}

#[tokio::test]
async fn facilitator_verify_accepts_nothing_and_settle_accepts_and_enqueues() {
    let f = Fixture::new(5);
    let verifier = f.verifier();
    let paywall = Paywall::new(verifier.clone(), PaywallConfig::new(NETWORK, f.extra()));
    let queue = Arc::new(Queue::default());
    let app = facilitator::router(
        verifier.clone(),
        facilitator::FacilitatorConfig::new(NETWORK, f.extra(), PRICE),
        queue.clone(),
    );
    let latest = || {
        verifier
            .store()
            .latest(&f.channel)
            .unwrap()
            .map(|a| a.voucher.voucher.cumulative_amount)
    };

    let req = facilitator_request(&paywall, &f.voucher(PRICE), PRICE);
    let a = send(&app, post("/verify", &req)).await;
    assert_eq!(a.status, StatusCode::OK);
    let v: v2::VerifyResponse = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(
        v,
        v2::VerifyResponse {
            is_valid: true,
            invalid_reason: None,
            invalid_message: None,
            payer: Some(f.payer.to_string()),
            extensions: None,
        }
    );
    assert_eq!(latest(), None, "/verify stored nothing");
    assert!(queue.0.lock().is_empty());

    let a = send(&app, post("/settle", &req)).await;
    assert_eq!(a.status, StatusCode::OK);
    let s: v2::SettleResponse = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(
        s,
        v2::SettleResponse {
            success: true,
            error_reason: None,
            error_message: None,
            payer: Some(f.payer.to_string()),
            transaction: String::new(),
            network: NETWORK.into(),
            amount: Some("1000".into()),
            extensions: None,
        }
    );
    assert_eq!(latest(), Some(PRICE));
    assert_eq!(*queue.0.lock(), vec![f.channel]);

    // The same payment again pays nothing new: neither valid nor settled twice.
    let v: v2::VerifyResponse =
        serde_json::from_slice(&send(&app, post("/verify", &req)).await.body).unwrap();
    assert_eq!(
        (v.is_valid, v.invalid_reason.as_deref()),
        (false, Some("invalid_payment_amount"))
    );
    let s: v2::SettleResponse =
        serde_json::from_slice(&send(&app, post("/settle", &req)).await.body).unwrap();
    assert!(!s.success);
    assert_eq!(queue.0.lock().len(), 1);

    // Too small an increment now: invalid, nothing changes.
    let low = facilitator_request(&paywall, &f.voucher(PRICE + 1), PRICE);
    let v: v2::VerifyResponse =
        serde_json::from_slice(&send(&app, post("/verify", &low)).await.body).unwrap();
    assert_eq!(
        (v.is_valid, v.invalid_reason.as_deref()),
        (false, Some("invalid_payment_amount"))
    );
    let s: v2::SettleResponse =
        serde_json::from_slice(&send(&app, post("/settle", &low)).await.body).unwrap();
    assert_eq!(
        (s.success, s.error_reason.as_deref(), s.transaction.as_str()),
        (false, Some("invalid_payment_amount"), "")
    );
    assert_eq!(latest(), Some(PRICE));
    assert_eq!(queue.0.lock().len(), 1);

    // A payment for another payee.
    let mut other = facilitator_request(&paywall, &f.voucher(2 * PRICE), PRICE);
    other["paymentRequirements"]["payTo"] = Pubkey::new_unique().to_string().into();
    let v: v2::VerifyResponse =
        serde_json::from_slice(&send(&app, post("/verify", &other)).await.body).unwrap();
    assert_eq!(v.invalid_reason.as_deref(), Some("invalid_scheme"));

    // v1 requests.
    let v1_req = json!({
        "x402Version": 1,
        "paymentPayload": v1::PaymentPayload {
            x402_version: 1,
            scheme: "paychan".into(),
            network: NETWORK.into(),
            payload: serde_json::to_value(f.voucher(2 * PRICE)).unwrap(),
        },
        "paymentRequirements": paychan_x402::server::to_v1(&paywall.payment_required(PRICE, "/paid")).accepts[0],
    });
    let s: v2::SettleResponse =
        serde_json::from_slice(&send(&app, post("/settle", &v1_req)).await.body).unwrap();
    assert_eq!((s.success, s.amount.as_deref()), (true, Some("1000")));
    assert_eq!(latest(), Some(2 * PRICE));

    // Not a facilitator request; too large a body.
    let a = send(&app, post("/verify", &json!({"hello": 1}))).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let mut huge = req.clone();
    huge["padding"] = "x".repeat(20_000).into();
    let a = send(&app, post("/settle", &huge)).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(latest(), Some(2 * PRICE));
}

#[tokio::test]
async fn facilitator_supported_lists_the_paychan_kinds() {
    let f = Fixture::new(5);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let app = facilitator::router(
        f.verifier(),
        facilitator::FacilitatorConfig::new(NETWORK, f.extra(), PRICE),
        tx,
    );
    let a = send(&app, get_req("/supported", &[])).await;
    assert_eq!(a.status, StatusCode::OK);
    let s: v2::SupportedResponse = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(s, facilitator::supported(NETWORK, &f.extra()));
    let extra = serde_json::to_value(f.extra()).unwrap();
    assert_eq!(
        s.kinds[0],
        v2::SupportedKind {
            x402_version: 2,
            scheme: "paychan".into(),
            network: NETWORK.into(),
            extra: Some(extra.clone()),
        }
    );
    assert_eq!(
        (s.kinds[1].x402_version, s.kinds[1].scheme.as_str()),
        (1, "paychan")
    );
    assert_eq!(s.signers["solana:*"], vec![f.payee.to_string()]);
    // The mpsc queue receives what /settle accepts.
    let paywall = Paywall::new(f.verifier(), PaywallConfig::new(NETWORK, f.extra()));
    let req = facilitator_request(&paywall, &f.voucher(PRICE), PRICE);
    assert_eq!(
        send(&app, post("/settle", &req)).await.status,
        StatusCode::OK
    );
    assert_eq!(rx.try_recv().unwrap(), f.channel);
}
