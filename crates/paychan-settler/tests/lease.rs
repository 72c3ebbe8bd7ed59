//! One settler per store: the settler lease against a real `redis-server`
//! (one per test, on a free loopback port, killed when the test ends), and
//! two settlers of one payee sharing a store on the embedded chain. These
//! tests never skip: without `redis-server` on PATH they fail and say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::{
    io::{Read, Write},
    net::{Ipv4Addr, TcpListener, TcpStream},
    process::{Child, Command, Stdio},
    sync::Arc,
    thread,
    time::{Duration, Instant},
};

use common::*;
use paychan_sdk::Pubkey;
use paychan_settler::{RedisLease, RunMode, SettleLease, Settler};
use paychan_verifier::MemoryStore;
use solana_signer::Signer;

/// A `redis-server` child process on 127.0.0.1, killed on drop.
struct Server {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(
        &(Ipv4Addr::LOCALHOST, port).into(),
        Duration::from_millis(200),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

impl Server {
    fn start() -> Self {
        match Command::new("redis-server").arg("--version").output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!("`redis-server --version` failed: {o:?}"),
            Err(e) => panic!(
                "redis-server is not on PATH ({e}): the settler lease tests need it \
                 (apt-get install redis-server; .ci/run installs it). They never skip."
            ),
        }
        // The free port can be taken between the probe and the bind: try a few.
        for _ in 0..5 {
            let port = free_port();
            let dir = tempfile::tempdir().unwrap();
            let mut child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .arg("--dir")
                .arg(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if ping(port) {
                    return Self {
                        child,
                        port,
                        _dir: dir,
                    };
                }
                if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("redis-server did not start answering PING on 127.0.0.1");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The lease key's value (the holder's owner id), if any.
    fn holder(&self, payee: &Pubkey) -> Option<String> {
        let client = redis::Client::open(self.url()).unwrap();
        let mut conn = client.get_connection().unwrap();
        redis::cmd("GET")
            .arg(RedisLease::key(payee))
            .query(&mut conn)
            .unwrap()
    }

    /// The lease key's remaining time to live in ms (-2: no key).
    fn pttl(&self, payee: &Pubkey) -> i64 {
        let client = redis::Client::open(self.url()).unwrap();
        let mut conn = client.get_connection().unwrap();
        redis::cmd("PTTL")
            .arg(RedisLease::key(payee))
            .query(&mut conn)
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

/// `name`'s value in the settler's metrics text (0 when absent).
fn metric(settler: &Settler<Arc<MemoryStore>>, name: &str) -> u64 {
    settler
        .metrics_text()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
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
    let mut chans = Vec::new();
    for salt in 0..8u64 {
        chans.push(open(&chain, &payer, &payee.key.pubkey(), salt).await);
    }
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
    let spawn = |settler: Arc<Settler<Arc<MemoryStore>>>| {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            settler
                .run(async {
                    let _ = stopped.await;
                })
                .await;
        });
        (stop, task)
    };
    let (stop_a, task_a) = spawn(Arc::clone(&a));
    let (stop_b, task_b) = spawn(Arc::clone(&b));
    let mut expected = 0;
    for (i, chan) in chans.iter().take(4).enumerate() {
        let value = 10_000 * (i as u64 + 1);
        accept(&store, &chan.voucher(value, 0));
        expected += value;
        // Ask both replicas, as both facilitators would.
        a.handle().send(chan.address).unwrap();
        b.handle().send(chan.address).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while chain.channel(&chan.address).await.unwrap().settled != value {
            assert!(
                tokio::time::Instant::now() < deadline,
                "voucher {i} settled"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
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
    first_stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), first_task)
        .await
        .expect("the holder stops")
        .unwrap();
    let released = server.holder(&payee.key.pubkey());
    assert_ne!(released, Some(owner(&first)), "released on shutdown");
    accept(&store, &chans[4].voucher(50_000, 0));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    // Settled, and the settle accounted (after its confirmation).
    while chain.channel(&chans[4].address).await.unwrap().settled != 50_000
        || metric(&second, "paychan_settler_transactions_total") == 0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the standby took over"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
