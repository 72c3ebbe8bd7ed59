//! Finding 10 of issue 18: requests naming channels that do not exist
//! cannot turn into RPC traffic. [`RpcChannels`] against a JSON-RPC node
//! that counts `getAccountInfo` calls and answers "no such account" after a
//! delay.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Json, Router, extract::State, routing::post};
use common::*;
use paychan_verifier::{
    ChannelSource, CheckError, LoadError, MemoryStore, Pubkey, Rejection, Verifier, VerifierError,
    rpc::{NEGATIVE_TTL, RpcChannels, RpcLimits},
};
use serde_json::{Value, json};

#[derive(Clone)]
struct Node {
    calls: Arc<AtomicUsize>,
    delay: Duration,
}

async fn rpc(State(node): State<Node>, Json(req): Json<Value>) -> Json<Value> {
    if req["method"] == "getAccountInfo" {
        node.calls.fetch_add(1, Ordering::SeqCst);
    }
    tokio::time::sleep(node.delay).await;
    Json(json!({
        "jsonrpc": "2.0",
        "id": req["id"],
        "result": {"context": {"slot": 1, "apiVersion": "2.2.0"}, "value": null},
    }))
}

/// A fake node on a free port; its `getAccountInfo` count.
async fn node(delay: Duration) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = Router::new().route("/", post(rpc)).with_state(Node {
        calls: calls.clone(),
        delay,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_unknown_channel_costs_one_rpc_read_however_often_it_is_named() {
    let (url, calls) = node(Duration::from_millis(100)).await;
    let f = Fixture::new();
    let channels = Arc::new(RpcChannels::new(&url, paychan_sdk::ID, f.payee));
    let v = Arc::new(Verifier::new(
        channels.clone(),
        MemoryStore::default(),
        f.terms(),
    ));
    let unknown = Fixture {
        channel: Pubkey::new_unique(),
        ..Fixture::new()
    };
    // 1,000 requests at once for one unknown channel: one shared load.
    let checks = (0..1_000).map(|_| {
        let (v, voucher) = (v.clone(), unknown.voucher(PRICE, 0));
        tokio::spawn(async move { v.check(&voucher, NOW).await })
    });
    for check in futures_util::future::join_all(checks).await {
        assert!(matches!(
            check.unwrap(),
            Err(CheckError::Rejected(Rejection::UnknownChannel(c))) if c == unknown.channel
        ));
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one RPC read for 1,000 requests"
    );
    // Within the negative TTL: answered from memory.
    for _ in 0..1_000 {
        assert!(v.check(&unknown.voucher(PRICE, 0), NOW).await.is_err());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(channels.rpc_loads(), 1);
    // After it, one more read (the channel may have been opened since).
    tokio::time::sleep(NEGATIVE_TTL).await;
    assert!(v.check(&unknown.voucher(PRICE, 0), NOW).await.is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loads_in_flight_are_bounded_and_the_excess_fails_fast() {
    let (url, calls) = node(Duration::from_millis(400)).await;
    let f = Fixture::new();
    let limits = RpcLimits {
        max_loads_in_flight: 8,
    };
    let channels = Arc::new(RpcChannels::with_limits(
        &url,
        paychan_sdk::ID,
        f.payee,
        limits,
    ));
    let v = Arc::new(Verifier::new(
        channels.clone(),
        MemoryStore::default(),
        f.terms(),
    ));
    let started = std::time::Instant::now();
    let checks = (0..200).map(|_| {
        let v = v.clone();
        let voucher = Fixture {
            channel: Pubkey::new_unique(),
            ..Fixture::new()
        }
        .voucher(PRICE, 0);
        tokio::spawn(async move {
            let r = v.check(&voucher, NOW).await;
            (r, started.elapsed())
        })
    });
    let (mut overloaded, mut unknown) = (0, 0);
    for check in futures_util::future::join_all(checks).await {
        match check.unwrap() {
            (Err(CheckError::Fault(VerifierError::Overloaded)), at) => {
                overloaded += 1;
                assert!(
                    at < Duration::from_millis(400),
                    "refused at once, not after a load ({at:?})"
                );
            }
            (Err(CheckError::Rejected(Rejection::UnknownChannel(_))), _) => unknown += 1,
            (other, _) => panic!("{other:?}"),
        }
    }
    assert_eq!(unknown, 8, "as many loads as permits");
    assert_eq!(overloaded, 192);
    assert_eq!(calls.load(Ordering::SeqCst), 8);
    // The permits come back: a new channel loads again.
    let later = Fixture {
        channel: Pubkey::new_unique(),
        ..Fixture::new()
    };
    assert!(matches!(channels.load(&later.channel).await, Ok(None)));
    assert!(!matches!(
        channels.load(&later.channel).await,
        Err(LoadError::Overloaded)
    ));
}
