//! One settler per store: the settler lease against a real `redis-server`
//! (one per test, on a free loopback port, killed when the test ends), and
//! two settlers of one payee sharing a store on the embedded chain. These
//! tests never skip: without `redis-server` on PATH they fail and say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::{sync::Arc, time::Duration};

use common::*;
use paychan_sdk::Pubkey;
use paychan_settler::{RedisLease, RunMode, SettleLease, Settler};
use paychan_testkit::redis::RedisServer;
use paychan_verifier::MemoryStore;
use solana_signer::Signer;

/// The lease tests' `redis-server`.
struct Server(RedisServer);

impl Server {
    fn start() -> Self {
        Self(RedisServer::start("the settler lease tests"))
    }

    fn url(&self) -> String {
        self.0.url()
    }

    /// `command` (`GET`, `PTTL`) on the lease key of `payee`.
    fn on_lease_key<T: redis::FromRedisValue>(&self, command: &str, payee: &Pubkey) -> T {
        let client = redis::Client::open(self.url()).unwrap();
        let mut conn = client.get_connection().unwrap();
        redis::cmd(command)
            .arg(RedisLease::key(payee))
            .query(&mut conn)
            .unwrap()
    }

    /// The lease key's value (the holder's owner id), if any.
    fn holder(&self, payee: &Pubkey) -> Option<String> {
        self.on_lease_key("GET", payee)
    }

    /// The lease key's remaining time to live in ms (-2: no key).
    fn pttl(&self, payee: &Pubkey) -> i64 {
        self.on_lease_key("PTTL", payee)
    }
}

/// The lease alone: exclusive per payee, renewed by its holder only,
/// released only by its holder, taken over once released or expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_is_exclusive_renewed_released_and_expires() {
    let server = Server::start();
    let payee = Pubkey::new_unique();
    let ttl = Duration::from_secs(30);
    let a = RedisLease::connect(&server.url(), &payee, ttl)
        .await
        .unwrap();
    let b = RedisLease::connect(&server.url(), &payee, ttl)
        .await
        .unwrap();
    assert_ne!(a.owner(), b.owner(), "random owner ids");
    assert_eq!(a.lease_key(), format!("paychan:v1:settler-lease:{payee}"));
    assert_eq!(server.holder(&payee), None);

    assert!(a.hold().await.unwrap(), "a free lease is taken");
    assert_eq!(server.holder(&payee).as_deref(), Some(a.owner()));
    assert!(!b.hold().await.unwrap(), "a held lease is not");
    assert_eq!(server.holder(&payee).as_deref(), Some(a.owner()));
    let pttl = server.pttl(&payee);
    assert!((1..=30_000).contains(&pttl), "{pttl}");
    // Renewal by the holder resets the time to live.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(server.pttl(&payee) <= 29_800);
    assert!(a.hold().await.unwrap(), "renewed");
    assert!(server.pttl(&payee) > 29_800, "{}", server.pttl(&payee));
    // Another payee's lease is another key.
    let other = RedisLease::connect(&server.url(), &Pubkey::new_unique(), ttl)
        .await
        .unwrap();
    assert!(other.hold().await.unwrap());

    // Only the holder releases it.
    b.release().await.unwrap();
    assert_eq!(server.holder(&payee).as_deref(), Some(a.owner()));
    a.release().await.unwrap();
    assert_eq!(server.holder(&payee), None);
    assert!(b.hold().await.unwrap(), "taken over once released");
    assert!(!a.hold().await.unwrap());
    b.release().await.unwrap();

    // A holder that stops renewing (a crash) loses it when it expires.
    let short = RedisLease::connect(&server.url(), &payee, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(short.hold().await.unwrap());
    assert!(!a.hold().await.unwrap());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(a.hold().await.unwrap(), "taken over once expired");
    assert!(!short.hold().await.unwrap());
    assert_eq!(server.holder(&payee).as_deref(), Some(a.owner()));

    // Too short a time to live is refused.
    assert!(
        RedisLease::connect(&server.url(), &payee, Duration::from_millis(10))
            .await
            .is_err()
    );
}

fn with_lease(
    settler: Settler<Arc<MemoryStore>>,
    lease: RedisLease,
) -> Arc<Settler<Arc<MemoryStore>>> {
    Arc::new(settler.with_lease(SettleLease::Redis(lease)))
}

fn owner(settler: &Settler<Arc<MemoryStore>>) -> String {
    match settler.lease() {
        SettleLease::Redis(l) => l.owner().to_string(),
        other => panic!("no Redis lease: {other:?}"),
    }
}

/// Two settlers of one payee on one store (two server replicas): only the
/// lease holder sends transactions; when it stops (releasing the lease)
/// the other takes over; when a holder dies without releasing, the other
/// takes over once the lease expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_settler_per_payee_among_replicas() {
    let server = Server::start();
    let chain = start().await;
    let payer = party(&chain, 20 * DEPOSIT).await;
    let payee = payee_party(&chain).await;
    let store = Arc::new(MemoryStore::default());
    let chans = open_many(&chain, &payer, &payee.key.pubkey(), 0..8).await;
    let ttl = Duration::from_millis(900);
    let replica = |url: String| {
        let settler = make_settler_with(&chain, &payee, 1, Arc::clone(&store), |c| {
            c.interval = Duration::from_millis(50);
            c.sweep_on_start = true;
        });
        let payee = payee.key.pubkey();
        async move {
            let lease = RedisLease::connect(&url, &payee, ttl).await.unwrap();
            with_lease(settler, lease)
        }
    };
    let a = replica(server.url()).await;
    let b = replica(server.url()).await;
    let payee_sol = chain.lamports(&payee.key.pubkey()).await.unwrap();

    // Both daemons run; vouchers arrive over time; every one is settled once.
    let (stop_a, task_a) = spawn_daemon(Arc::clone(&a));
    let (stop_b, task_b) = spawn_daemon(Arc::clone(&b));
    let mut expected = 0;
    for (i, chan) in chans.iter().take(4).enumerate() {
        let value = 10_000 * (i as u64 + 1);
        accept(&store, &chan.voucher(value, 0));
        expected += value;
        // Ask both replicas, as both facilitators would.
        a.handle().send(chan.address).unwrap();
        b.handle().send(chan.address).unwrap();
        wait_until(
            &format!("voucher {i} settled"),
            Duration::from_millis(20),
            || async { chain.channel(&chan.address).await.unwrap().settled == value },
        )
        .await;
    }
    // Several lease periods with both running.
    tokio::time::sleep(3 * ttl).await;
    let (ta, tb) = (
        metric(&a, "paychan_settler_transactions_total"),
        metric(&b, "paychan_settler_transactions_total"),
    );
    println!(
        "replicas: a sent {ta}, skipped {}; b sent {tb}, skipped {}",
        metric(&a, "paychan_settler_lease_skipped_runs_total"),
        metric(&b, "paychan_settler_lease_skipped_runs_total")
    );
    let holder = server.holder(&payee.key.pubkey()).expect("a holder");
    let (first, first_stop, first_task, second, second_stop, second_task) = if holder == owner(&a) {
        (a, stop_a, task_a, b, stop_b, task_b)
    } else {
        assert_eq!(holder, owner(&b));
        (b, stop_b, task_b, a, stop_a, task_a)
    };
    assert_eq!(
        metric(&first, "paychan_settler_transactions_total"),
        4,
        "the holder sent every transaction"
    );
    assert_eq!(
        metric(&second, "paychan_settler_transactions_total"),
        0,
        "the standby sent none"
    );
    assert!(metric(&second, "paychan_settler_lease_skipped_runs_total") > 0);
    assert_eq!(
        metric(&first, "paychan_settler_lease_skipped_runs_total"),
        0
    );
    assert_eq!(chain.token_balance(&payee.tokens).await.unwrap(), expected);
    assert_eq!(
        payee_sol - chain.lamports(&payee.key.pubkey()).await.unwrap(),
        4 * 2 * 5_000,
        "four transactions, no duplicate"
    );

    // The holder stops: it releases the lease and the other takes over.
    stop_daemon(first_stop, first_task, "the holder stops").await;
    let released = server.holder(&payee.key.pubkey());
    assert_ne!(released, Some(owner(&first)), "released on shutdown");
    accept(&store, &chans[4].voucher(50_000, 0));
    // Settled, and the settle accounted (after its confirmation).
    wait_until(
        "the standby took over",
        Duration::from_millis(20),
        || async {
            chain.channel(&chans[4].address).await.unwrap().settled == 50_000
                && metric(&second, "paychan_settler_transactions_total") != 0
        },
    )
    .await;
    assert_eq!(
        server.holder(&payee.key.pubkey()),
        Some(owner(&second)),
        "the other holds the lease now"
    );
    assert_eq!(metric(&second, "paychan_settler_transactions_total"), 1);
    assert_eq!(metric(&first, "paychan_settler_transactions_total"), 4);

    // The new holder dies without releasing (its task is aborted): the
    // first replica, back, stands by until the lease expires, then settles.
    second_task.abort();
    let _ = second_task.await;
    drop(second_stop);
    assert_eq!(
        server.holder(&payee.key.pubkey()),
        Some(owner(&second)),
        "a dead holder keeps the lease until it expires"
    );
    accept(&store, &chans[5].voucher(60_000, 0));
    let standby = first.run_once(RunMode::Sweep).await.expect("run");
    assert!(
        standby.standby && standby.transactions.is_empty(),
        "{standby:?}"
    );
    assert_eq!(chain.channel(&chans[5].address).await.unwrap().settled, 0);
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    let took_over = first.run_once(RunMode::Sweep).await.expect("run");
    assert!(!took_over.standby);
    assert_eq!(took_over.transactions.len(), 1, "{took_over:?}");
    assert_eq!(
        took_over.transactions[0].channels,
        vec![(chans[5].address, 60_000)]
    );
    assert_eq!(server.holder(&payee.key.pubkey()), Some(owner(&first)));
    first.release_lease().await;
    assert_eq!(server.holder(&payee.key.pubkey()), None);
    assert_eq!(
        chain.token_balance(&payee.tokens).await.unwrap(),
        expected + 50_000 + 60_000
    );
}
