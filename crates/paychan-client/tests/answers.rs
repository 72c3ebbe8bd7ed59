//! The paying middleware against scripted servers on the embedded chain:
//!
//! * offers are remembered per method and full URL (a cheap `?n=1` is never
//!   pre-paid at the price of `?n=100`, nor the reverse, and a POST never
//!   with a GET's offer);
//! * a payment counts only when the answer carries a `PAYMENT-RESPONSE`
//!   that confirms it (decodes, `success: true`, `amount` at most the
//!   voucher's increment); anything else keeps the voucher as a credit and
//!   the next voucher never pays twice;
//! * payment headers never reach another origin through a redirect with
//!   [`PaychanClient::http_client`], and an answer from another origin never
//!   counts as paid, whatever client is used.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use paychan_client::{ChannelState, ClientConfig, PaychanClient, StateDir};
use paychan_localnet::LocalChain;
use paychan_sdk::Pubkey;
use paychan_voucher::{SignedVoucher, SignedVoucherJson};
use paychan_x402::{codec, scheme::PaychanExtra, v2};
use solana_keypair::Keypair;
use solana_signer::Signer;

use common::{PRICE, SOL, Tokens, extra, party, serve, start};

/// How the scripted server answers the next paid request it accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Answer {
    /// 200 with a `PAYMENT-RESPONSE` charging the increment (recorded).
    Receipt,
    /// 200 with only the v1 `X-PAYMENT-RESPONSE` (recorded).
    V1Receipt,
    /// 200 with a `PAYMENT-RESPONSE` without `amount` (recorded).
    ReceiptWithoutAmount,
    /// 200 without any `PAYMENT-RESPONSE` (not recorded).
    NoReceipt,
    /// 200 with a `PAYMENT-RESPONSE` that does not decode (not recorded).
    MalformedReceipt,
    /// 200 with `success: false` (not recorded).
    FailedReceipt,
    /// 200 with an `amount` above the increment (recorded: it kept the voucher).
    Overcharge,
    /// 500 (not recorded).
    ServerError,
    /// 302 to this URL, without a `PAYMENT-RESPONSE` (not recorded).
    Redirect(String),
}

/// One request as the scripted server saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    method: Method,
    /// Path and query.
    target: String,
    /// The voucher's cumulative amount, if the request was paid.
    paid: Option<u64>,
}

#[derive(Default)]
struct Ledger {
    /// Per channel, the last cumulative amount accepted.
    accepted: HashMap<[u8; 32], u64>,
    seen: Vec<Seen>,
    script: VecDeque<Answer>,
}

/// A paywall stand-in: prices `unit × n` (`?n=`, default 1), accepts a
/// verified voucher paying at least the price over the channel's last
/// accepted amount, refuses others with a `lastAccepted` hint, and answers
/// accepted ones as scripted.
struct Fake {
    network: String,
    mint: Pubkey,
    payee: Pubkey,
    extra: PaychanExtra,
    unit: u64,
    ledger: Mutex<Ledger>,
}

impl Fake {
    fn script(&self, answer: Answer) {
        self.ledger.lock().unwrap().script.push_back(answer);
    }

    fn seen(&self) -> Vec<Seen> {
        self.ledger.lock().unwrap().seen.clone()
    }

    /// What the server holds as accepted, summed over channels.
    fn accepted(&self) -> u64 {
        self.ledger.lock().unwrap().accepted.values().sum()
    }

    fn required(&self, uri: &Uri, price: u64, extensions: Option<serde_json::Value>) -> Response {
        offer_402(
            &self.network,
            &self.mint,
            &self.payee,
            &self.extra,
            uri,
            price,
            extensions,
        )
    }
}

fn offer_402(
    network: &str,
    mint: &Pubkey,
    payee: &Pubkey,
    extra: &PaychanExtra,
    uri: &Uri,
    price: u64,
    extensions: Option<serde_json::Value>,
) -> Response {
    let required = v2::PaymentRequired {
        x402_version: 2,
        error: extensions
            .as_ref()
            .map(|_| "invalid_payment_amount".to_owned()),
        resource: v2::Resource {
            url: uri.to_string(),
            description: None,
            mime_type: None,
        },
        accepts: vec![v2::PaymentRequirements {
            scheme: "paychan".into(),
            network: network.to_owned(),
            amount: price.to_string(),
            asset: mint.to_string(),
            pay_to: payee.to_string(),
            max_timeout_seconds: 60,
            extra: Some(serde_json::to_value(extra).unwrap()),
        }],
        extensions,
    };
    (
        StatusCode::PAYMENT_REQUIRED,
        [("payment-required", codec::encode(&required).unwrap())],
        "",
    )
        .into_response()
}

fn voucher_of(headers: &HeaderMap) -> Option<SignedVoucher> {
    let header = headers.get("payment-signature")?;
    let payment: v2::PaymentPayload = codec::decode(header.as_bytes()).unwrap();
    let json: SignedVoucherJson = serde_json::from_value(payment.payload).unwrap();
    let voucher = SignedVoucher::try_from(&json).unwrap();
    voucher.verify_strict().unwrap();
    Some(voucher)
}

fn receipt(network: &str, success: bool, amount: Option<u64>) -> String {
    codec::encode(&v2::SettleResponse {
        success,
        error_reason: (!success).then(|| "settle_failed".to_owned()),
        payer: None,
        transaction: String::new(),
        network: network.to_owned(),
        amount: amount.map(|a| a.to_string()),
        error_message: None,
        extensions: None,
    })
    .unwrap()
}

fn price_of(unit: u64, uri: &Uri) -> u64 {
    let n = uri
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("n=")))
        .map_or(1, |n| n.parse::<u64>().unwrap());
    unit * n
}

async fn fake(
    State(fake): State<Arc<Fake>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let price = price_of(fake.unit, &uri);
    let voucher = voucher_of(&headers);
    let mut ledger = fake.ledger.lock().unwrap();
    ledger.seen.push(Seen {
        method,
        target: uri.path_and_query().unwrap().to_string(),
        paid: voucher.as_ref().map(|v| v.voucher.cumulative_amount),
    });
    let Some(voucher) = voucher else {
        drop(ledger);
        return fake.required(&uri, price, None);
    };
    let channel = voucher.voucher.channel_id;
    let cumulative = voucher.voucher.cumulative_amount;
    let last = ledger.accepted.get(&channel).copied().unwrap_or(0);
    if cumulative < last + price {
        drop(ledger);
        let hint = serde_json::json!({"paychan": {
            "reason": "invalid_payment_amount",
            "channel": Pubkey::new_from_array(channel).to_string(),
            "lastAccepted": last.to_string(),
            "required": (last + price).to_string(),
        }});
        return fake.required(&uri, price, Some(hint));
    }
    let answer = ledger.script.pop_front().unwrap_or(Answer::Receipt);
    let charged = cumulative - last;
    let recorded = matches!(
        answer,
        Answer::Receipt | Answer::V1Receipt | Answer::ReceiptWithoutAmount | Answer::Overcharge
    );
    if recorded {
        ledger.accepted.insert(channel, cumulative);
    }
    drop(ledger);
    let network = &fake.network;
    match answer {
        Answer::Receipt => (
            [("payment-response", receipt(network, true, Some(charged)))],
            "ok",
        )
            .into_response(),
        Answer::V1Receipt => (
            [("x-payment-response", receipt(network, true, Some(charged)))],
            "ok",
        )
            .into_response(),
        Answer::ReceiptWithoutAmount => {
            ([("payment-response", receipt(network, true, None))], "ok").into_response()
        }
        Answer::NoReceipt => "ok".into_response(),
        Answer::MalformedReceipt => {
            ([("payment-response", "%%% not base64 %%%")], "ok").into_response()
        }
        Answer::FailedReceipt => {
            ([("payment-response", receipt(network, false, None))], "ok").into_response()
        }
        Answer::Overcharge => (
            [(
                "payment-response",
                receipt(network, true, Some(charged + price)),
            )],
            "ok",
        )
            .into_response(),
        Answer::ServerError => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        Answer::Redirect(to) => (StatusCode::FOUND, [("location", to)], "").into_response(),
    }
}

/// A chain, a funded payer with its client (one channel per payee), and a
/// scripted server.
struct Setup {
    _chain: LocalChain,
    client: PaychanClient,
    dir: tempfile::TempDir,
    fake: Arc<Fake>,
    base: String,
}

async fn setup(unit: u64) -> Setup {
    let (chain, network) = start().await;
    let payer = party(&chain, 10 * SOL, Tokens::Fresh(1_000_000)).await;
    let (payer, tokens) = (payer.key, payer.tokens);
    let dir = tempfile::tempdir().unwrap();
    let mut config = ClientConfig::new(
        chain.rpc_url(),
        payer.insecure_clone(),
        network.clone(),
        chain.mint(),
        dir.path(),
    );
    config.payer_tokens = Some(tokens);
    config.deposit = 100_000;
    config.budget = 500_000;
    config.top_up_threshold = PRICE;
    config.max_channels_per_payee = 1;
    let client = PaychanClient::new(config).await.unwrap();
    let payee = Keypair::new().pubkey();
    let fake = Arc::new(Fake {
        network,
        mint: chain.mint(),
        payee,
        extra: extra(&payee),
        unit,
        ledger: Mutex::default(),
    });
    let base = serve(Router::new().fallback(self::fake).with_state(fake.clone())).await;
    Setup {
        _chain: chain,
        client,
        dir,
        fake,
        base,
    }
}

impl Setup {
    /// The one channel's state as written to the state directory.
    fn persisted(&self) -> ChannelState {
        let mut all = StateDir::open(self.dir.path()).unwrap().load().unwrap();
        assert_eq!(all.len(), 1, "one channel");
        all.remove(0).0
    }

    /// (accepted, signed, credit) of the persisted state.
    fn persisted_book(&self) -> (u64, u64, bool) {
        let s = self.persisted();
        (s.accepted, s.signed, s.credit)
    }

    /// (accepted, signed, credit) of the client's state in memory.
    async fn book(&self) -> (u64, u64, bool) {
        let infos = self.client.channels().await.unwrap();
        assert_eq!(infos.len(), 1, "one channel");
        let s = &infos[0].state;
        (s.accepted, s.signed, s.credit)
    }
}

fn seen(method: Method, target: &str, paid: Option<u64>) -> Seen {
    Seen {
        method,
        target: target.to_owned(),
        paid,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_are_remembered_per_method_and_full_url() {
    const UNIT: u64 = 10;
    let s = setup(UNIT).await;
    let http = s.client.http_client().unwrap();
    let url = |n: u32| format!("{}/units?n={n}", s.base);
    let get = |n: u32| {
        let http = http.clone();
        let url = url(n);
        async move {
            let res = http.get(url).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
        }
    };

    // The cheap query: discovered, then paid at its price.
    get(1).await;
    // The expensive one is another resource: discovered, not pre-paid at
    // the cheap price.
    get(100).await;
    // The cheap one again: pre-paid at its own price, not at ?n=100's.
    get(1).await;
    // A POST to the same URL does not use the GET's offer.
    let res = http.post(url(1)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // The POST's offer is remembered for POSTs.
    let res = http.post(url(1)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // The expensive one again: pre-paid at its own price.
    get(100).await;

    let (get_, post) = (Method::GET, Method::POST);
    assert_eq!(
        s.fake.seen(),
        vec![
            seen(get_.clone(), "/units?n=1", None),
            seen(get_.clone(), "/units?n=1", Some(UNIT)),
            seen(get_.clone(), "/units?n=100", None),
            seen(get_.clone(), "/units?n=100", Some(101 * UNIT)),
            seen(get_.clone(), "/units?n=1", Some(102 * UNIT)),
            seen(post.clone(), "/units?n=1", None),
            seen(post.clone(), "/units?n=1", Some(103 * UNIT)),
            seen(post, "/units?n=1", Some(104 * UNIT)),
            seen(get_, "/units?n=100", Some(204 * UNIT)),
        ]
    );
    assert_eq!(s.fake.accepted(), 204 * UNIT);
    assert_eq!(s.book().await, (204 * UNIT, 204 * UNIT, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_confirming_payment_response_counts_as_paid() {
    let s = setup(PRICE).await;
    let http = s.client.http_client().unwrap();
    let url = format!("{}/r", s.base);
    let res = http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(s.book().await, (PRICE, PRICE, false));

    let unconfirmed = [
        (Answer::NoReceipt, StatusCode::OK),
        (Answer::MalformedReceipt, StatusCode::OK),
        (Answer::FailedReceipt, StatusCode::OK),
        (Answer::Overcharge, StatusCode::OK),
        (Answer::ServerError, StatusCode::INTERNAL_SERVER_ERROR),
    ];
    for (answer, status) in unconfirmed {
        let accepted = s.book().await.0;
        let held = s.fake.accepted();
        assert_eq!(held, accepted, "{answer:?}: client and server agree");
        let voucher = accepted + PRICE;
        let seen_before = s.fake.seen().len();

        s.fake.script(answer.clone());
        let res = http.get(&url).send().await.unwrap();
        assert_eq!(res.status(), status, "{answer:?}");
        assert_eq!(
            s.fake.seen()[seen_before..],
            [seen(Method::GET, "/r", Some(voucher))],
            "{answer:?}: pre-paid with the next voucher"
        );
        // Not counted: `accepted` stays, the voucher is a credit, on disk.
        assert_eq!(
            s.persisted_book(),
            (accepted, voucher, true),
            "{answer:?}: persisted"
        );
        assert_eq!(s.book().await, (accepted, voucher, true), "{answer:?}");

        // The next request re-sends the credit: nothing is paid twice.
        let res = http.get(&url).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{answer:?}");
        let next = s.fake.seen()[seen_before + 1..].to_vec();
        if answer == Answer::Overcharge {
            // That server kept the voucher: it refuses it again with
            // `lastAccepted` = the voucher, the client follows and pays
            // one price more.
            assert_eq!(
                next,
                [
                    seen(Method::GET, "/r", Some(voucher)),
                    seen(Method::GET, "/r", Some(voucher + PRICE)),
                ],
                "{answer:?}"
            );
            assert_eq!(s.fake.accepted(), voucher + PRICE);
            assert_eq!(s.book().await, (voucher + PRICE, voucher + PRICE, false));
        } else {
            assert_eq!(
                next,
                [seen(Method::GET, "/r", Some(voucher))],
                "{answer:?}: the credit, not a new voucher"
            );
            assert_eq!(s.fake.accepted(), voucher, "{answer:?}");
            assert_eq!(s.book().await, (voucher, voucher, false), "{answer:?}");
        }
    }

    // Confirmations: v2, v1 only, and without `amount` (taken as the
    // voucher's increment).
    for answer in [
        Answer::V1Receipt,
        Answer::ReceiptWithoutAmount,
        Answer::Receipt,
    ] {
        let accepted = s.book().await.0;
        s.fake.script(answer.clone());
        let res = http.get(&url).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{answer:?}");
        assert_eq!(
            s.book().await,
            (accepted + PRICE, accepted + PRICE, false),
            "{answer:?}: counted"
        );
        assert_eq!(s.fake.accepted(), accepted + PRICE, "{answer:?}");
    }
}

/// A server on another origin: records whether requests carried a payment,
/// answers `/offer` with a 402 (the same payee as the scripted server) and
/// anything else with a 200 and a forged `PAYMENT-RESPONSE`.
struct Elsewhere {
    fake: Arc<Fake>,
    seen: Mutex<Vec<(String, bool)>>,
}

impl Elsewhere {
    fn payments_seen(&self) -> usize {
        self.seen.lock().unwrap().iter().filter(|(_, p)| *p).count()
    }

    fn requests_seen(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

async fn elsewhere(State(e): State<Arc<Elsewhere>>, uri: Uri, headers: HeaderMap) -> Response {
    let paid = headers.contains_key("payment-signature") || headers.contains_key("x-payment");
    e.seen.lock().unwrap().push((uri.path().to_owned(), paid));
    if uri.path() == "/offer" && !paid {
        return e.fake.required(&uri, PRICE, None);
    }
    (
        [(
            "payment-response",
            receipt(&e.fake.network, true, Some(PRICE)),
        )],
        "elsewhere",
    )
        .into_response()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_never_cross_origins() {
    let s = setup(PRICE).await;
    let b = Arc::new(Elsewhere {
        fake: s.fake.clone(),
        seen: Mutex::default(),
    });
    let b_base = serve(Router::new().fallback(elsewhere).with_state(b.clone())).await;
    let url = format!("{}/r", s.base);
    let landing = format!("{b_base}/landing");

    // The safe client: a paid request redirected to another origin stops
    // at the 302; the other server never hears of it; nothing is counted.
    let safe = s.client.http_client().unwrap();
    s.fake.script(Answer::Redirect(landing.clone()));
    let res = safe.get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(res.headers()["location"], landing.as_str());
    assert_eq!(b.requests_seen(), 0);
    assert_eq!(s.persisted_book(), (0, PRICE, true));
    assert_eq!(s.book().await, (0, PRICE, true));
    // The credit pays the next request.
    let res = safe.get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(s.book().await, (PRICE, PRICE, false));
    assert_eq!(s.fake.accepted(), PRICE);

    // A plain reqwest client follows the redirect and (reqwest's doing)
    // carries the voucher to the other origin; its answer, forged receipt
    // and all, is not counted as paid.
    let plain = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(s.client.middleware())
        .build();
    let (accepted, _, _) = s.book().await;
    s.fake.script(Answer::Redirect(landing.clone()));
    let res = plain.get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.url().as_str(), landing);
    assert_eq!(b.payments_seen(), 1, "what the safe client prevents");
    assert_eq!(
        s.persisted_book(),
        (accepted, accepted + PRICE, true),
        "another origin's answer is not a receipt"
    );
    assert_eq!(s.book().await, (accepted, accepted + PRICE, true));
    let res = safe.get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(s.fake.accepted(), accepted + PRICE, "the credit, once");
    assert_eq!(s.book().await, (accepted + PRICE, accepted + PRICE, false));

    // An unpaid request redirected to another origin's 402 is not paid
    // (the retry would go to the first origin, and on to the other one).
    let spent = s.client.budget().spent;
    let to_offer = Router::new().fallback({
        let offer = format!("{b_base}/offer");
        move || {
            let offer = offer.clone();
            async move { (StatusCode::FOUND, [("location", offer)], "") }
        }
    });
    let moved = format!("{}/moved", serve(to_offer).await);
    let res = plain.get(&moved).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::PAYMENT_REQUIRED);
    assert_eq!(b.payments_seen(), 1, "no payment for the other origin");
    assert_eq!(s.client.budget().spent, spent, "nothing signed");
    // The safe client does not even follow it.
    let before = b.requests_seen();
    let res = safe.get(&moved).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(b.requests_seen(), before);
    assert_eq!(s.client.budget().spent, spent);
}
