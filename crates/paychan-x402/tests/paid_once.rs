//! Paid once, served once (issue 18): idempotent retries return the stored
//! response instead of running the handler again, failed runs leave a
//! bounded credit without content, a request dropped at any point after the
//! store accepted its voucher leaves a credit, forged vouchers never read
//! the resync hint, and the HTTP server's limits cut slow or greedy clients off.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Extension, Router,
    body::Body,
    http::{HeaderMap, Request, StatusCode},
    routing::{get, post},
};
use ed25519_dalek::SigningKey;
use paychan_verifier::{
    AcceptFuture, Accepted, MemoryChannels, MemoryStore, Pubkey, Receipt, SignedVoucher,
    StoreError, Terms, Verifier, VoucherStore,
};
use paychan_x402::{
    codec,
    server::{Limits, Paywall, PaywallConfig},
    v2,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;

use common::{NETWORK, PRICE};

/// A store that accepts like [`MemoryStore`] but answers only after `delay`
/// (a slow Redis, a slow fsync): a request can be dropped after the
/// compare-and-swap and before its answer.
#[derive(Default)]
struct SlowStore {
    inner: MemoryStore,
    delay: Duration,
}

impl VoucherStore for SlowStore {
    fn accept(&self, voucher: &SignedVoucher, floor: u64, min_increment: u64) -> impl AcceptFuture {
        let outcome = self.inner.accept_now(voucher, floor, min_increment);
        let delay = self.delay;
        async move {
            tokio::time::sleep(delay).await;
            Ok(outcome)
        }
    }

    fn latest(&self, channel: &Pubkey) -> Result<Option<Accepted>, StoreError> {
        self.inner.latest(channel)
    }

    fn cached(&self, channel: &Pubkey) -> Option<paychan_verifier::Latest> {
        self.inner.cached(channel)
    }

    fn all_latest(&self) -> Result<Vec<Accepted>, StoreError> {
        self.inner.all_latest()
    }
}

struct Env {
    key: SigningKey,
    channel: Pubkey,
    paywall: Paywall<MemoryChannels, Arc<SlowStore>>,
    store: Arc<SlowStore>,
    runs: Arc<AtomicUsize>,
}

fn env(delay: Duration) -> Env {
    let key = SigningKey::from_bytes(&[11; 32]);
    let (channel, payer, payee, mint) = (
        Pubkey::new_unique(),
        Pubkey::new_unique(),
        Pubkey::new_unique(),
        Pubkey::new_unique(),
    );
    let channels = MemoryChannels::default();
    channels
        .upsert(common::open_channel(
            channel, payer, payee, mint, &key, 1_000_000,
        ))
        .unwrap();
    let store = Arc::new(SlowStore {
        inner: MemoryStore::default(),
        delay,
    });
    let terms = Terms::new(paychan_sdk::ID, payee, mint, PRICE);
    let verifier = Arc::new(Verifier::new(channels, store.clone(), terms));
    let extra = common::extra(600, "0", None);
    Env {
        key,
        channel,
        paywall: Paywall::new(verifier, PaywallConfig::new(NETWORK, extra)),
        store,
        runs: Arc::new(AtomicUsize::new(0)),
    }
}

/// An env whose store answers after `delay`, its app, and a voucher for
/// the price.
fn started(delay: Duration) -> (Env, Router, SignedVoucher) {
    let e = env(delay);
    let (app, v) = (e.app(), e.voucher(PRICE));
    (e, app, v)
}

impl Env {
    fn voucher(&self, cumulative: u64) -> SignedVoucher {
        common::voucher(&self.key, self.channel, cumulative, 0)
    }

    fn header(&self, voucher: &SignedVoucher) -> String {
        common::pay_v2(
            voucher,
            &self.paywall.payment_required(PRICE, "/").accepts[0],
        )
    }

    /// `/work` (GET or POST) counts its runs and answers what it was sent;
    /// `/fail` always fails with content; `/slow` sleeps 300 ms.
    fn app(&self) -> Router {
        let runs = self.runs.clone();
        let work = move |Extension(r): Extension<Receipt>, body: String| {
            let runs = runs.clone();
            async move {
                let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
                format!("run {n}: paid {} for {body:?}", r.charged)
            }
        };
        let runs = self.runs.clone();
        let fail = move || {
            let runs = runs.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                (
                    StatusCode::BAD_GATEWAY,
                    [("retry-after", "2"), ("x-secret", "leak")],
                    "the paid content, leaked on failure",
                )
            }
        };
        let runs = self.runs.clone();
        let slow = move || {
            let runs = runs.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                runs.fetch_add(1, Ordering::SeqCst);
                "slow work"
            }
        };
        Router::new()
            .route("/work", get(work.clone()).post(work))
            .route("/fail", get(fail))
            .route("/slow", get(slow))
            .route_layer(self.paywall.layer(PRICE))
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        voucher: &SignedVoucher,
        key: Option<&str>,
        body: &str,
    ) -> Request<Body> {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header("PAYMENT-SIGNATURE", self.header(voucher));
        if let Some(k) = key {
            b = b.header("Idempotency-Key", k);
        }
        b.body(Body::from(body.to_owned())).unwrap()
    }

    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }

    fn accepted(&self) -> Option<u64> {
        self.store
            .latest(&self.channel)
            .unwrap()
            .map(|a| a.voucher.voucher.cumulative_amount)
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

async fn send(app: &Router, req: Request<Body>) -> Answer {
    let (status, headers, body) = common::send(app, req).await;
    Answer {
        status,
        headers,
        body: String::from_utf8(body).unwrap(),
    }
}

fn paychan_extension(a: &Answer) -> Value {
    let header = a.headers.get("PAYMENT-REQUIRED").expect("PAYMENT-REQUIRED");
    let required: v2::PaymentRequired = codec::decode(header.as_bytes()).unwrap();
    required.extensions.unwrap()["paychan"].clone()
}

/// Finding 1: one fixed Idempotency-Key with each voucher used to buy
/// 1 + max_replays handler runs.
#[tokio::test]
async fn a_retry_with_the_same_key_gets_the_stored_response_and_the_handler_runs_once() {
    let (e, app, v) = started(Duration::ZERO);
    let first = send(
        &app,
        e.request("POST", "/work?q=1", &v, Some("k-1"), "body"),
    )
    .await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body, "run 1: paid 1000 for \"body\"");
    for _ in 0..3 {
        let again = send(
            &app,
            e.request("POST", "/work?q=1", &v, Some("k-1"), "body"),
        )
        .await;
        assert_eq!(
            (again.status, again.body.as_str()),
            (StatusCode::OK, first.body.as_str())
        );
        assert_eq!(again.headers["idempotent-replayed"], "true");
        assert_eq!(
            again.headers["PAYMENT-RESPONSE"], first.headers["PAYMENT-RESPONSE"],
            "the receipt of the one charge"
        );
    }
    assert_eq!(e.runs(), 1, "the handler never ran again");
    // The same key bound to another request (path, query, method or body)
    // is a spent voucher: 402, and nothing runs.
    for (method, path, body) in [
        ("POST", "/work?q=2", "body"),
        ("POST", "/work?q=1", "other body"),
        ("GET", "/work?q=1", "body"),
    ] {
        let other = send(&app, e.request(method, path, &v, Some("k-1"), body)).await;
        assert_eq!(
            other.status,
            StatusCode::PAYMENT_REQUIRED,
            "{method} {path} {body}"
        );
    }
    // Replays are bounded (3 by default).
    let bounded = send(
        &app,
        e.request("POST", "/work?q=1", &v, Some("k-1"), "body"),
    )
    .await;
    assert_eq!(bounded.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(e.runs(), 1);
    assert_eq!(e.accepted(), Some(PRICE), "charged once");
}

/// A retry that arrives while the paid run is in flight waits for it and
/// gets its response.
#[tokio::test]
async fn a_retry_during_the_run_waits_for_its_response() {
    let (e, app, v) = started(Duration::ZERO);
    let (a, b) = tokio::join!(
        send(&app, e.request("GET", "/slow", &v, Some("k"), "")),
        async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            send(&app, e.request("GET", "/slow", &v, Some("k"), "")).await
        }
    );
    assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "slow work"));
    assert_eq!((b.status, b.body.as_str()), (StatusCode::OK, "slow work"));
    assert_eq!(b.headers["idempotent-replayed"], "true");
    assert_eq!(e.runs(), 1);
}

/// A retry whose run is still in flight after [`REPLAY_WAIT`] is answered
/// 409 with `Retry-After`, without running the handler (the clock is paused:
/// the wait passes without taking 30 seconds).
///
/// [`REPLAY_WAIT`]: paychan_x402::server::REPLAY_WAIT
#[tokio::test(start_paused = true)]
async fn a_retry_still_waiting_after_the_replay_wait_is_409() {
    let e = env(Duration::ZERO);
    let runs = e.runs.clone();
    let stuck = move || {
        runs.fetch_add(1, Ordering::SeqCst);
        std::future::pending::<&'static str>()
    };
    let app = Router::new()
        .route("/stuck", get(stuck))
        .route_layer(e.paywall.layer(PRICE));
    let v = e.voucher(PRICE);
    let first = tokio::spawn({
        let (app, req) = (app.clone(), e.request("GET", "/stuck", &v, Some("k"), ""));
        async move { send(&app, req).await }
    });
    // The clock moves only once every task waits: the first run is in its handler.
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(e.runs(), 1);
    let started = tokio::time::Instant::now();
    let retry = send(&app, e.request("GET", "/stuck", &v, Some("k"), "")).await;
    assert_eq!(retry.status, StatusCode::CONFLICT, "{}", retry.body);
    assert_eq!(retry.headers["retry-after"], "1");
    assert_eq!(retry.headers["content-type"], "application/json");
    assert_eq!(
        serde_json::from_str::<Value>(&retry.body).unwrap()["error"],
        "in_flight"
    );
    assert!(retry.headers.get("PAYMENT-RESPONSE").is_none());
    assert!(started.elapsed() >= paychan_x402::server::REPLAY_WAIT);
    assert_eq!(e.runs(), 1, "the handler did not run again");
    assert!(!first.is_finished());
    first.abort();
    assert!(first.await.is_err_and(|e| e.is_cancelled()));
    assert_eq!(e.accepted(), Some(PRICE), "charged once");
}

/// Finding 2: a failing handler used to turn a voucher into unlimited
/// credits, each 5xx carrying the handler's content.
#[tokio::test]
async fn a_failing_handler_runs_at_most_three_times_per_voucher_and_leaks_nothing() {
    let (e, app, v) = started(Duration::ZERO);
    for _ in 0..3 {
        let a = send(&app, e.request("GET", "/fail", &v, None, "")).await;
        assert_eq!(a.status, StatusCode::BAD_GATEWAY);
        assert!(!a.body.contains("paid content"), "{}", a.body);
        assert!(a.headers.get("x-secret").is_none());
        assert_eq!(a.headers["retry-after"], "2");
        assert!(a.headers.get("PAYMENT-RESPONSE").is_none());
        assert_eq!(
            serde_json::from_str::<Value>(&a.body).unwrap()["error"],
            "handler_failed"
        );
    }
    let a = send(&app, e.request("GET", "/fail", &v, None, "")).await;
    assert_eq!(a.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(e.runs(), 3);
    assert_eq!(e.accepted(), Some(PRICE));
}

/// Finding 3: a client whose connection dropped after the store accepted
/// its voucher (a slow fsync, a Redis timeout) was answered 402 on retry:
/// charged, never served.
#[tokio::test]
async fn a_request_dropped_after_the_store_accepted_is_served_on_retry() {
    let (e, app, v) = started(Duration::from_millis(300));
    let dropped = tokio::time::timeout(
        Duration::from_millis(50),
        send(&app, e.request("GET", "/work", &v, None, "")),
    )
    .await;
    assert!(dropped.is_err(), "dropped while the store answers");
    assert_eq!(e.accepted(), Some(PRICE), "the store accepted it");
    assert_eq!(e.runs(), 0);
    let retry = send(&app, e.request("GET", "/work", &v, None, "")).await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.body);
    assert_eq!(e.runs(), 1);
    // Served once: the voucher is spent now.
    let again = send(&app, e.request("GET", "/work", &v, None, "")).await;
    assert_eq!(again.status, StatusCode::PAYMENT_REQUIRED);
}

/// A request dropped while the paid handler runs leaves a credit too.
#[tokio::test]
async fn a_request_dropped_during_the_run_is_not_charged() {
    let (e, app, v) = started(Duration::ZERO);
    let dropped = tokio::time::timeout(
        Duration::from_millis(100),
        send(&app, e.request("GET", "/slow", &v, None, "")),
    )
    .await;
    assert!(dropped.is_err());
    let retry = send(&app, e.request("GET", "/slow", &v, None, "")).await;
    assert_eq!(
        (retry.status, retry.body.as_str()),
        (StatusCode::OK, "slow work")
    );
}

/// Finding 6: a forged voucher for a known channel used to read the
/// payer's last accepted amount from the 402.
#[tokio::test]
async fn a_forged_voucher_never_reads_the_resync_hint() {
    let e = env(Duration::ZERO);
    let app = e.app();
    assert_eq!(
        send(
            &app,
            e.request("GET", "/work", &e.voucher(5 * PRICE), None, "")
        )
        .await
        .status,
        StatusCode::OK
    );
    let mut forged = e.voucher(PRICE);
    forged.signature[3] ^= 1;
    let a = send(&app, e.request("GET", "/work", &forged, None, "")).await;
    assert_eq!(a.status, StatusCode::PAYMENT_REQUIRED);
    let hint = paychan_extension(&a);
    assert_eq!(hint["code"], "bad_signature");
    assert_eq!(hint["field"], "signature");
    assert!(hint.get("lastAccepted").is_none(), "{hint}");
    // A forged stale voucher within the forgery backoff is refused from
    // cached state: no hint, no signature check.
    let a = send(
        &app,
        e.request("GET", "/work", &e.voucher(2 * PRICE), None, ""),
    )
    .await;
    let hint = paychan_extension(&a);
    assert_eq!(hint["code"], "cumulative_too_low");
    assert!(hint.get("lastAccepted").is_none(), "{hint}");
    // Once the backoff is over, the holder of the channel's key reads it.
    tokio::time::sleep(paychan_verifier::verifier::FORGERY_BACKOFF).await;
    let a = send(
        &app,
        e.request("GET", "/work", &e.voucher(2 * PRICE), None, ""),
    )
    .await;
    assert_eq!(paychan_extension(&a)["lastAccepted"], "5000");
}

/// Malformed headers are 400 and name the field at fault.
#[tokio::test]
async fn a_malformed_payment_is_400_naming_the_field() {
    let e = env(Duration::ZERO);
    let app = e.app();
    let accepted = &e.paywall.payment_required(PRICE, "/").accepts[0];
    let mut payment = common::payload_v2(&e.voucher(PRICE), accepted);
    payment.payload["voucher"]["cumulativeAmount"] = "12x".into();
    let header = codec::encode(&payment).unwrap();
    let req = Request::get("/work")
        .header("PAYMENT-SIGNATURE", header)
        .body(Body::empty())
        .unwrap();
    let a = send(&app, req).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let body: Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(body["field"], "payload.voucher.cumulativeAmount");
    assert_eq!(e.runs(), 0);
}

// ---- the HTTP server's limits (finding 12) ----

async fn start(app: Router, limits: Limits) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(paychan_x402::server::serve(
        listener,
        app,
        limits,
        std::future::pending(),
    ));
    addr
}

/// Reads until the peer closes (or `within` passes): what was read, and
/// whether the connection was closed.
async fn read_until_closed(stream: &mut tokio::net::TcpStream, within: Duration) -> (String, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    (String::from_utf8_lossy(&out).into_owned(), closed)
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let limits = Limits {
        header_read_timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let addr = start(Router::new().route("/", get(|| async { "ok" })), limits).await;
    // Headers started, never finished.
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let (_, closed) = read_until_closed(&mut slow, Duration::from_secs(3)).await;
    assert!(closed, "cut off after the header timeout");
    // A connection that sends nothing at all.
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (_, closed) = read_until_closed(&mut silent, Duration::from_secs(3)).await;
    assert!(closed, "an idle connection is cut off too");
    // A well-behaved client is served; kept alive and then silent, its
    // connection is closed too.
    let mut ok = tokio::net::TcpStream::connect(addr).await.unwrap();
    ok.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (answer, closed) = read_until_closed(&mut ok, Duration::from_secs(3)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(closed, "an idle kept-alive connection is cut off");
}

#[tokio::test]
async fn bodies_deadlines_and_requests_in_flight_are_bounded() {
    let limits = Limits {
        request_timeout: Duration::from_millis(200),
        max_body: 1_024,
        max_in_flight: 1,
        ..Limits::default()
    };
    let app = Router::new()
        .route("/echo", post(|body: String| async move { body }))
        .route(
            "/hang",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        );
    let addr = start(app, limits).await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("http://{addr}{p}");
    let big = http
        .post(url("/echo"))
        .body(vec![b'x'; 2_048])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), reqwest::StatusCode::PAYLOAD_TOO_LARGE);
    let small = http.post(url("/echo")).body("hi").send().await.unwrap();
    assert_eq!(small.text().await.unwrap(), "hi");
    // One request in flight: a second is refused at once with Retry-After.
    let hang = tokio::spawn({
        let (http, url) = (http.clone(), url("/hang"));
        async move { http.get(url).send().await.unwrap().status() }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let busy = http.post(url("/echo")).body("hi").send().await.unwrap();
    assert_eq!(busy.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(busy.headers()["retry-after"], "1");
    // The hanging request meets its deadline.
    assert_eq!(hang.await.unwrap(), reqwest::StatusCode::REQUEST_TIMEOUT);
}

/// A paid request cut off by the deadline is not charged: its voucher pays
/// the retry.
#[tokio::test]
async fn a_paid_request_past_its_deadline_is_not_charged() {
    let e = env(Duration::ZERO);
    let limits = Limits {
        request_timeout: Duration::from_millis(100),
        ..Limits::default()
    };
    let addr = start(e.app(), limits).await;
    let v = e.voucher(PRICE);
    let http = reqwest::Client::new();
    let send = || {
        http.get(format!("http://{addr}/slow"))
            .header("PAYMENT-SIGNATURE", e.header(&v))
            .send()
    };
    assert_eq!(
        send().await.unwrap().status(),
        reqwest::StatusCode::REQUEST_TIMEOUT
    );
    // The run was cut off (its future dropped): the voucher is a credit,
    // and the retry meets the same deadline again, still uncharged.
    assert_eq!(
        send().await.unwrap().status(),
        reqwest::StatusCode::REQUEST_TIMEOUT
    );
    assert_eq!(e.runs(), 0, "no run completed");
    assert_eq!(e.accepted(), Some(PRICE), "accepted once, never twice");
}
