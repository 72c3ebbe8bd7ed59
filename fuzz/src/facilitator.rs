//! The facilitator routes: a script (see [`crate::script`]) of `POST
//! /verify`, `POST /settle` and `GET /supported` requests (first line
//! `verify`, `settle`, `supported`; `A` lines set `Authorization`, `B` and
//! `P` lines the body) to `paychan_x402::server::facilitator::router` with
//! a bearer token, a real verifier and the fixture channel.
//!
//! Checked after each request: no panic; only 200, 400, 401, 413 or 503;
//! 401 exactly when the token is wrong (unless the body is over the limit:
//! 413 comes first), 413 exactly when the body is over 16 KiB; a 200
//! decodes as the route's answer; `/verify` never changes the store nor
//! queues a settlement; `/settle` changes the store only when it answers
//! `success: true`, by exactly the amount it names, and then queues that
//! channel once; the store's invariants ([`crate::live::check_store`]).
#![allow(clippy::expect_used)] // a harness's assertion is the point

use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Body;
use http::{HeaderValue, Method, StatusCode, header::AUTHORIZATION};
use paychan_verifier::Pubkey;
use paychan_x402::{
    server::facilitator::{self, FacilitatorConfig, MAX_BODY_LEN, SettleQueue},
    v2,
};

use crate::{fixture, live, script, stats};

/// The settlement queue: what `/settle` handed over.
#[derive(Clone, Default)]
struct Queue(Arc<Mutex<Vec<Pubkey>>>);

impl SettleQueue for Queue {
    fn enqueue(&self, channel: Pubkey) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(channel);
    }
}

impl Queue {
    fn taken(&self) -> Vec<Pubkey> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Verify,
    Settle,
    Supported,
}

/// Runs one input; `true` when some payment verified or settled.
pub fn run(data: &[u8]) -> bool {
    let steps = script::parse(data);
    let (verifier, store) = live::verifier();
    let mut config = FacilitatorConfig::new(fixture::NETWORK, fixture::extra(), fixture::PRICE);
    config.token = Some(fixture::TOKEN.to_owned());
    let queue = Queue::default();
    let app = facilitator::router(verifier, config, queue.clone());
    let bearer = format!("Bearer {}", fixture::TOKEN);
    let payer = fixture::PAYER.to_string();

    let mut paid = false;
    let mut records = Vec::new();
    for step in &steps {
        let route = if step.head.starts_with(b"settle") {
            Route::Settle
        } else if step.head.starts_with(b"supported") {
            Route::Supported
        } else {
            Route::Verify
        };
        let (method, path) = match route {
            Route::Verify => (Method::POST, "/verify"),
            Route::Settle => (Method::POST, "/settle"),
            Route::Supported => (Method::GET, "/supported"),
        };
        let body_len = step.body.len();
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .body(Body::from(step.body.clone()))
            .expect("a fixed method and path");
        for (tag, value) in &step.headers {
            if *tag == b'A'
                && let Ok(value) = HeaderValue::from_bytes(value)
            {
                req.headers_mut().insert(AUTHORIZATION, value);
            }
        }
        let authorized =
            req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes) == Some(bearer.as_bytes());

        let (res, body) = live::send(&app, req);
        let status = res.status;
        stats::status(status.as_u16());
        stats::trace(
            &format!("{route:?} authorized={authorized}"),
            status.as_u16(),
            &body,
        );
        if route == Route::Supported {
            assert_eq!(status, StatusCode::OK);
            let supported: v2::SupportedResponse =
                serde_json::from_slice(&body).expect("/supported answers its JSON");
            let networks: Vec<&str> = supported.kinds.iter().map(|k| k.network.as_str()).collect();
            assert_eq!(networks, [fixture::NETWORK, fixture::V1_NETWORK]);
            records = live::check_store(&store, &records);
            assert!(queue.taken().is_empty());
            continue;
        }
        assert!(
            matches!(status.as_u16(), 200 | 400 | 401 | 413 | 503),
            "status {status}"
        );
        assert_eq!(
            status == StatusCode::PAYLOAD_TOO_LARGE,
            body_len > MAX_BODY_LEN,
            "a body of {body_len} bytes answered {status}"
        );
        if status != StatusCode::PAYLOAD_TOO_LARGE {
            assert_eq!(
                status == StatusCode::UNAUTHORIZED,
                !authorized,
                "authorized: {authorized}, answered {status}"
            );
        }
        let before = records.clone();
        records = live::check_store(&store, &before);
        let queued = queue.taken();
        match (route, status) {
            (Route::Verify, StatusCode::OK) => {
                let answer: v2::VerifyResponse =
                    serde_json::from_slice(&body).expect("/verify answers a VerifyResponse");
                paid |= answer.is_valid;
                assert_eq!(
                    answer.invalid_reason.is_none(),
                    answer.is_valid,
                    "a reason exactly when invalid"
                );
                if answer.is_valid {
                    assert_eq!(answer.payer.as_deref(), Some(payer.as_str()));
                }
            }
            (Route::Settle, StatusCode::OK) => {
                let answer: v2::SettleResponse =
                    serde_json::from_slice(&body).expect("/settle answers a SettleResponse");
                if answer.success {
                    paid = true;
                    assert_eq!(answer.payer.as_deref(), Some(payer.as_str()));
                    assert!(
                        answer.network == fixture::NETWORK || answer.network == fixture::V1_NETWORK,
                        "network {}",
                        answer.network
                    );
                    let amount: u64 = answer
                        .amount
                        .as_deref()
                        .and_then(|a| a.parse().ok())
                        .expect("a settlement names its amount");
                    assert!(
                        amount >= fixture::PRICE,
                        "settled {amount}, below the floor"
                    );
                    let was = before
                        .first()
                        .map_or(0, |a| a.voucher.voucher.cumulative_amount);
                    let now = records
                        .first()
                        .map(|a| a.voucher.voucher.cumulative_amount)
                        .expect("a settled voucher is in the store");
                    assert_eq!(now - was, amount, "the store moved {was} → {now}");
                    assert_eq!(queued, [fixture::CHANNEL], "queued once");
                    continue;
                }
                assert!(answer.error_reason.is_some());
            }
            _ => {}
        }
        assert_eq!(
            records, before,
            "{route:?} answered {status} and changed the store"
        );
        assert!(
            queued.is_empty(),
            "{route:?} answered {status} and queued {queued:?}"
        );
    }
    paid
}
