//! The Redis store against a real `redis-server` (one per test, on a free
//! loopback port, killed when the test ends). These tests never skip: without
//! `redis-server` on PATH they fail and say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::{
    io::{Read, Write},
    net::{Ipv4Addr, TcpStream},
    time::Duration,
};

use common::*;
use paychan_sdk::state::ChannelStatus;
use paychan_verifier::{
    AcceptOutcome, Accepted, MemoryChannels, MemoryStore, StoreError, Verifier, VoucherStore,
    store::RedisStore,
};
use rand::{Rng, SeedableRng, rngs::StdRng};

use paychan_testkit::redis as redis_server;

/// The Redis store tests' `redis-server`.
struct Server(redis_server::RedisServer);

impl Server {
    fn start() -> Self {
        Self(redis_server::RedisServer::start("the Redis store tests"))
    }

    fn url(&self) -> String {
        self.0.url()
    }

    /// A server, a store on it and a fixture.
    fn with_store() -> (Self, RedisStore, Fixture) {
        let server = Self::start();
        let store = server.store();
        (server, store, Fixture::new())
    }

    fn store(&self) -> RedisStore {
        RedisStore::connect(&self.url()).unwrap()
    }

    /// A verifier of `f`'s open channel (nothing settled) on its own
    /// connection to this server.
    fn verifier(&self, f: &Fixture) -> Verifier<MemoryChannels, RedisStore> {
        Verifier::new(f.channels(ChannelStatus::Open, 0), self.store(), f.terms())
    }

    /// Sends one command and returns the raw RESP reply's first line.
    fn command(&self, args: &[&[u8]]) -> Vec<u8> {
        let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, self.0.port())).unwrap();
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            req.extend_from_slice(a);
            req.extend_from_slice(b"\r\n");
        }
        s.write_all(&req).unwrap();
        let mut out = vec![];
        let mut b = [0u8; 1];
        while !out.ends_with(b"\r\n") {
            s.read_exact(&mut b).unwrap();
            out.push(b[0]);
        }
        out
    }
}

fn accepted(voucher: paychan_verifier::SignedVoucher, previous: u64) -> Accepted {
    Accepted { voucher, previous }
}

#[test]
fn accept_stale_duplicate_conflict_give_exact_outcomes() {
    let (server, store, f) = Server::with_store();
    let v = |c| f.voucher(c, 0);
    let acc = |voucher, floor, min| block_on(store.accept(&voucher, floor, min)).unwrap();

    // Nothing stored: the floor is the watermark.
    assert_eq!(
        acc(v(500), 1_000, PRICE),
        AcceptOutcome::Stale {
            last_accepted: 1_000
        }
    );
    assert_eq!(
        acc(v(1_000), 1_000, 1),
        AcceptOutcome::Stale {
            last_accepted: 1_000
        }
    );
    assert_eq!(store.latest(&f.channel).unwrap(), None);
    assert_eq!(
        acc(v(PRICE), 0, PRICE),
        AcceptOutcome::Accepted(accepted(v(PRICE), 0))
    );
    // A retry is a duplicate with the same receipt data, whatever the terms now.
    assert_eq!(
        acc(v(PRICE), 0, PRICE),
        AcceptOutcome::Duplicate(accepted(v(PRICE), 0))
    );
    assert_eq!(
        acc(v(PRICE), 5 * PRICE, 7),
        AcceptOutcome::Duplicate(accepted(v(PRICE), 0))
    );
    // Another voucher with the same cumulative (another expiry) conflicts.
    assert_eq!(
        acc(f.voucher(PRICE, NOW + 99_999), 0, PRICE),
        AcceptOutcome::Conflict
    );
    // Below the increment, or backwards: stale.
    assert_eq!(
        acc(v(PRICE + PRICE - 1), 0, PRICE),
        AcceptOutcome::Stale {
            last_accepted: PRICE
        }
    );
    assert_eq!(
        acc(v(PRICE - 1), 0, PRICE),
        AcceptOutcome::Stale {
            last_accepted: PRICE
        }
    );
    assert_eq!(
        acc(v(2 * PRICE), 0, PRICE),
        AcceptOutcome::Accepted(accepted(v(2 * PRICE), PRICE))
    );
    // A floor above the stored cumulative is the watermark.
    assert_eq!(
        acc(v(3 * PRICE), 3 * PRICE, PRICE),
        AcceptOutcome::Stale {
            last_accepted: 3 * PRICE
        }
    );
    assert_eq!(
        acc(v(4 * PRICE), 3 * PRICE, PRICE),
        AcceptOutcome::Accepted(accepted(v(4 * PRICE), 3 * PRICE))
    );
    // min_increment 0 means 1.
    assert_eq!(
        acc(v(4 * PRICE + 1), 0, 0),
        AcceptOutcome::Accepted(accepted(v(4 * PRICE + 1), 4 * PRICE))
    );
    assert_eq!(
        store.latest(&f.channel).unwrap(),
        Some(accepted(v(4 * PRICE + 1), 4 * PRICE))
    );
    // The record is Accepted::encode() under the documented key.
    assert_eq!(
        RedisStore::key(&f.channel),
        format!("paychan:v1:latest:{}", f.channel)
    );
    assert_eq!(
        server.command(&[b"STRLEN", RedisStore::key(&f.channel).as_bytes()]),
        b":154\r\n"
    );
}

#[test]
fn amounts_above_2_pow_53_are_exact() {
    let (_server, store, f) = Server::with_store();
    let v = |c| f.voucher(c, 0);
    let acc = |voucher, floor, min| block_on(store.accept(&voucher, floor, min)).unwrap();
    let p53 = 1u64 << 53;

    assert_eq!(
        acc(v(p53 + 1), 0, 1),
        AcceptOutcome::Accepted(accepted(v(p53 + 1), 0))
    );
    // As doubles, 2^53 and 2^53 + 1 are equal: a double-based script would
    // answer Duplicate/Conflict here.
    assert_eq!(
        acc(v(p53), 0, 1),
        AcceptOutcome::Stale {
            last_accepted: p53 + 1
        }
    );
    assert_eq!(
        acc(v(p53 + 2), 0, 1),
        AcceptOutcome::Accepted(accepted(v(p53 + 2), p53 + 1))
    );
    assert_eq!(
        acc(v(p53 + 3), 0, 2),
        AcceptOutcome::Stale {
            last_accepted: p53 + 2
        }
    );
    // A floor above 2^53 that differs from the stored amount by 1.
    assert_eq!(
        acc(v(p53 + 4), p53 + 3, 1),
        AcceptOutcome::Accepted(accepted(v(p53 + 4), p53 + 3))
    );

    let top = u64::MAX - 5;
    assert_eq!(
        acc(v(top), 0, 1),
        AcceptOutcome::Accepted(accepted(v(top), p53 + 4))
    );
    assert_eq!(
        acc(v(top), 0, 1),
        AcceptOutcome::Duplicate(accepted(v(top), p53 + 4))
    );
    assert_eq!(
        acc(v(top - 1), 0, 1),
        AcceptOutcome::Stale { last_accepted: top }
    );
    // last + min_increment overflows u64: stale, never a wrap-around.
    assert_eq!(
        acc(v(u64::MAX), 0, 6),
        AcceptOutcome::Stale { last_accepted: top }
    );
    assert_eq!(
        acc(v(u64::MAX), 0, u64::MAX),
        AcceptOutcome::Stale { last_accepted: top }
    );
    // last + min_increment == u64::MAX exactly.
    assert_eq!(
        acc(v(u64::MAX), 0, 5),
        AcceptOutcome::Accepted(accepted(v(u64::MAX), top))
    );
    let g = Fixture::new();
    assert_eq!(
        block_on(store.accept(&g.voucher(u64::MAX, 0), top, 7)).unwrap(),
        AcceptOutcome::Stale { last_accepted: top }
    );
    assert_eq!(
        block_on(store.accept(&g.voucher(u64::MAX, 0), u64::MAX, 1)).unwrap(),
        AcceptOutcome::Stale {
            last_accepted: u64::MAX
        }
    );
    assert_eq!(
        block_on(store.accept(&g.voucher(u64::MAX, 0), top, u64::MAX)).unwrap(),
        AcceptOutcome::Stale { last_accepted: top }
    );
    assert_eq!(
        store.latest(&f.channel).unwrap(),
        Some(accepted(v(u64::MAX), top))
    );
}

/// Random sequences, biased to boundaries and large amounts, give exactly
/// what `decide` gives (through `MemoryStore`).
#[test]
fn the_script_matches_decide_on_random_sequences() {
    let server = Server::start();
    let store = server.store();
    let memory = MemoryStore::default();
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let fixtures: Vec<Fixture> = (0..5).map(|_| Fixture::new()).collect();
    let bases = [
        0,
        1_000,
        (1u64 << 53) - 2,
        u64::MAX - 40,
        u32::MAX as u64 - 3,
    ];
    let mut seen = [0u32; 4];
    for (f, base) in fixtures.iter().zip(bases) {
        for _ in 0..150 {
            let amount = |rng: &mut StdRng| {
                if rng.gen_bool(0.1) {
                    rng.r#gen()
                } else {
                    base.saturating_add(rng.gen_range(0..40))
                }
            };
            // Often the stored amount again: a retry (duplicate) or another
            // voucher for it (conflict).
            let cumulative = match memory.latest(&f.channel).unwrap() {
                Some(a) if rng.gen_bool(0.25) => a.voucher.voucher.cumulative_amount,
                _ => amount(&mut rng),
            };
            let expiry = if rng.gen_bool(0.5) { NOW } else { 0 };
            let floor = if rng.gen_bool(0.7) {
                0
            } else {
                amount(&mut rng)
            };
            let min = match rng.gen_range(0..4) {
                0 => 0,
                1 => 1,
                2 => rng.gen_range(0..8),
                _ => rng.r#gen(),
            };
            let voucher = f.voucher(cumulative, expiry);
            let expected = memory.accept_now(&voucher, floor, min);
            let got = block_on(store.accept(&voucher, floor, min)).unwrap();
            assert_eq!(
                got, expected,
                "cumulative {cumulative} floor {floor} min {min}"
            );
            seen[match got {
                AcceptOutcome::Accepted(_) => 0,
                AcceptOutcome::Duplicate(_) => 1,
                AcceptOutcome::Stale { .. } => 2,
                AcceptOutcome::Conflict => 3,
            }] += 1;
        }
        assert_eq!(
            store.latest(&f.channel).unwrap(),
            memory.latest(&f.channel).unwrap()
        );
    }
    assert!(
        seen.iter().all(|n| *n > 0),
        "every outcome occurs: {seen:?}"
    );
}

#[test]
fn all_latest_returns_every_channel_and_checks_records() {
    let server = Server::start();
    let store = server.store();
    assert!(store.all_latest().unwrap().is_empty());
    let fixtures: Vec<Fixture> = (0..1_100).map(|_| Fixture::new()).collect();
    for (i, f) in fixtures.iter().enumerate() {
        let out =
            block_on(store.accept(&f.voucher((i as u64 % 3 + 1) * PRICE, 0), 0, PRICE)).unwrap();
        assert!(matches!(out, AcceptOutcome::Accepted(_)));
    }
    // Keys outside the prefix are not the store's.
    server.command(&[b"SET", b"other:key", b"x"]);
    let mut all = store.all_latest().unwrap();
    assert_eq!(all.len(), fixtures.len());
    all.sort_by_key(|a| a.channel());
    for f in &fixtures {
        let a = all
            .binary_search_by_key(&f.channel, |a| a.channel())
            .unwrap();
        assert_eq!(Some(all[a]), store.latest(&f.channel).unwrap());
    }
    assert_eq!(store.latest(&Fixture::new().channel).unwrap(), None);

    // A record under another channel's key, or of the wrong size, is corrupt.
    let f = &fixtures[0];
    let foreign = store
        .latest(&fixtures[1].channel)
        .unwrap()
        .unwrap()
        .encode();
    server.command(&[b"SET", RedisStore::key(&f.channel).as_bytes(), &foreign]);
    assert!(matches!(
        store.latest(&f.channel),
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(store.all_latest(), Err(StoreError::Corrupt(_))));
    server.command(&[b"SET", RedisStore::key(&f.channel).as_bytes(), b"short"]);
    assert!(matches!(
        block_on(store.accept(&f.voucher(9 * PRICE, 0), 0, PRICE)),
        Err(StoreError::Corrupt(_))
    ));
}

#[test]
fn connect_fails_without_a_server_and_accept_fails_after_close() {
    let port = redis_server::free_port();
    let err = RedisStore::connect_with_timeout(
        &format!("redis://127.0.0.1:{port}/"),
        Duration::from_millis(500),
    )
    .unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    assert!(matches!(
        RedisStore::connect("not a url"),
        Err(StoreError::Backend(_))
    ));

    let (server, store, f) = Server::with_store();
    store.close();
    assert!(matches!(
        block_on(store.accept(&f.voucher(PRICE, 0), 0, PRICE)),
        Err(StoreError::Closed)
    ));
    assert_eq!(store.latest(&f.channel).unwrap(), None);

    // Redis going away is a backend error, not a hang or a panic.
    let store = server.store();
    drop(server);
    assert!(matches!(
        block_on(store.accept(&f.voucher(PRICE, 0), 0, PRICE)),
        Err(StoreError::Backend(_))
    ));
    assert!(matches!(
        store.latest(&f.channel),
        Err(StoreError::Backend(_))
    ));
}

#[test]
fn concurrent_checks_on_one_channel_redis_store() {
    let server = Server::start();
    let f = Fixture::new();
    let v = server.verifier(&f);
    race(&f, vec![v]);
}

/// Two replicas (two verifiers, two connections) share one Redis; 8 threads
/// split across them race over the same vouchers of one channel.
#[test]
fn two_replicas_sharing_one_redis_never_accept_a_cumulative_twice() {
    let server = Server::start();
    let f = Fixture::new();
    let replicas = (0..2).map(|_| server.verifier(&f)).collect();
    race(&f, replicas);
}

/// Finding 11 of issue 18: a replica refuses a voucher that is stale
/// against what Redis told it, and answers a retry of it, without a round
/// trip (here Redis is gone); anything else still needs Redis. Finding 13:
/// `fetch_latest` (the request path's read) answers like `latest`.
#[test]
fn a_replica_refuses_stale_vouchers_from_what_it_saw_without_a_round_trip() {
    let server = Server::start();
    let f = Fixture::new();
    let v = server.verifier(&f);
    let accepted = f.voucher(3 * PRICE, 0);
    block_on(v.check(&accepted, NOW)).unwrap();
    assert_eq!(
        block_on(v.store().fetch_latest(&f.channel)).unwrap(),
        v.store().latest(&f.channel).unwrap()
    );
    assert_eq!(
        block_on(v.store().fetch_latest(&Fixture::new().channel)).unwrap(),
        None
    );
    drop(server);
    // Stale: refused from the replica's floor, hint included (its signature verified).
    let stale = match block_on(v.check(&f.voucher(2 * PRICE, 0), NOW)) {
        Err(paychan_verifier::CheckError::Rejected(r)) => r,
        other => panic!("expected a rejection, got {other:?}"),
    };
    assert_eq!(
        stale,
        paychan_verifier::Rejection::InsufficientIncrement {
            cumulative: 2 * PRICE,
            required: 4 * PRICE,
            last_accepted: 3 * PRICE
        }
    );
    // A retry of the accepted voucher: the same receipt.
    let r = block_on(v.check(&accepted, NOW)).unwrap();
    assert!(r.duplicate && r.charged == 3 * PRICE, "{r:?}");
    // A voucher that pays needs Redis, which is gone: a fault, never a 200.
    assert!(matches!(
        block_on(v.check(&f.voucher(4 * PRICE, 0), NOW)),
        Err(paychan_verifier::CheckError::Fault(_))
    ));
}
