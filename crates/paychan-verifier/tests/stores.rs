//! Stores under concurrency and across restarts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use paychan_sdk::state::ChannelStatus;
use paychan_verifier::{
    MemoryChannels, MemoryStore, Verifier, VoucherStore,
    store::{Durability, RedbStore},
};

/// `common::race` over one verifier backed by `store`.
fn race<S: VoucherStore + 'static>(store: S) {
    let f = Fixture::new();
    let v = Verifier::new(f.channels(ChannelStatus::Open, 0), store, f.terms());
    common::race(&f, vec![v]);
}

#[test]
fn concurrent_checks_on_one_channel_memory_store() {
    race(MemoryStore::default());
}

#[test]
fn concurrent_checks_on_one_channel_redb_batched() {
    let dir = tempfile::tempdir().unwrap();
    let interval = Duration::from_millis(5);
    race(RedbStore::open(dir.path().join("v.redb"), Durability::Batched { interval }).unwrap());
}

#[test]
fn concurrent_checks_on_one_channel_redb_sync() {
    let dir = tempfile::tempdir().unwrap();
    race(RedbStore::open(dir.path().join("v.redb"), Durability::Sync).unwrap());
}

#[test]
fn redb_sync_keeps_every_acknowledged_voucher_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.redb");
    let fixtures: Vec<Fixture> = (0..5).map(|_| Fixture::new()).collect();
    {
        let store = RedbStore::open(&path, Durability::Sync).unwrap();
        for (i, f) in fixtures.iter().enumerate() {
            for k in 1..=(i as u64 + 2) {
                let out = block_on(store.accept(&f.voucher(k * PRICE, 0), 0, PRICE)).unwrap();
                assert!(matches!(out, paychan_verifier::AcceptOutcome::Accepted(_)));
            }
        }
    }
    let store = RedbStore::open(&path, Durability::Sync).unwrap();
    assert_eq!(store.len(), 5);
    for (i, f) in fixtures.iter().enumerate() {
        let a = store.latest(&f.channel).unwrap().unwrap();
        assert_eq!(a.voucher, f.voucher((i as u64 + 2) * PRICE, 0));
        assert_eq!(a.previous, (i as u64 + 1) * PRICE);
    }
    // The CAS state survives too: the old voucher is stale, its retry a duplicate.
    let f = &fixtures[0];
    let stale = block_on(store.accept(&f.voucher(PRICE, 0), 0, PRICE)).unwrap();
    assert_eq!(
        stale,
        paychan_verifier::AcceptOutcome::Stale {
            last_accepted: 2 * PRICE
        }
    );
    let dup = block_on(store.accept(&f.voucher(2 * PRICE, 0), 0, PRICE)).unwrap();
    assert!(matches!(dup, paychan_verifier::AcceptOutcome::Duplicate(_)));
}

#[test]
fn redb_batched_flush_makes_vouchers_durable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.redb");
    let f = Fixture::new();
    {
        let store = RedbStore::open(
            &path,
            Durability::Batched {
                interval: Duration::from_secs(60),
            },
        )
        .unwrap();
        block_on(store.accept(&f.voucher(3 * PRICE, 0), 0, PRICE)).unwrap();
        block_on(store.flush()).unwrap();
        assert_eq!(store.all_latest().unwrap().len(), 1);
    }
    let store = RedbStore::open(&path, Durability::Sync).unwrap();
    assert_eq!(
        store.latest(&f.channel).unwrap().unwrap().voucher,
        f.voucher(3 * PRICE, 0)
    );
}

#[test]
fn the_verifier_serves_many_channels_from_one_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(
        dir.path().join("v.redb"),
        Durability::Batched {
            interval: Duration::from_millis(2),
        },
    )
    .unwrap();
    let payee_f = Fixture::new();
    let channels = MemoryChannels::default();
    let mut fixtures = vec![];
    for _ in 0..20 {
        let mut f = Fixture::new();
        f.payee = payee_f.payee;
        f.mint = payee_f.mint;
        channels.upsert(f.snapshot(ChannelStatus::Open, 0)).unwrap();
        fixtures.push(f);
    }
    let v = Verifier::new(channels, store, payee_f.terms());
    for round in 1..=5u64 {
        for f in &fixtures {
            let r = block_on(v.check(&f.voucher(round * PRICE, 0), NOW)).unwrap();
            assert_eq!(r.charged, PRICE);
        }
    }
    let all = v.store().all_latest().unwrap();
    assert_eq!(all.len(), 20);
    assert!(
        all.iter()
            .all(|a| a.voucher.voucher.cumulative_amount == 5 * PRICE)
    );
}

/// The redb index keeps only a 32-byte digest per channel: the full voucher
/// must come back from the not-yet-committed map before a commit, from the
/// file after it, and a resent voucher must still be told apart from a
/// different one of the same amount, before and after a restart.
#[test]
fn redb_reads_full_vouchers_before_and_after_commit() {
    use paychan_verifier::AcceptOutcome;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.redb");
    let (f, g) = (Fixture::new(), Fixture::new());
    let hour = Durability::Batched {
        interval: Duration::from_secs(3_600),
    };
    {
        let store = RedbStore::open(&path, hour).unwrap();
        block_on(store.accept(&f.voucher(PRICE, 0), 0, PRICE)).unwrap();
        // Not committed (the interval is an hour): served from memory.
        assert_eq!(
            store.latest(&f.channel).unwrap().unwrap().voucher,
            f.voucher(PRICE, 0)
        );
        block_on(store.flush()).unwrap();
        // Committed: read back from the file.
        assert_eq!(
            store.latest(&f.channel).unwrap().unwrap().voucher,
            f.voucher(PRICE, 0)
        );
        // A newer voucher, not committed, wins over the committed one; a
        // channel only in memory is listed too.
        block_on(store.accept(&f.voucher(3 * PRICE, 0), 0, PRICE)).unwrap();
        block_on(store.accept(&g.voucher(PRICE, 0), 0, PRICE)).unwrap();
        let mut all = store.all_latest().unwrap();
        all.sort_by_key(|a| a.voucher.voucher.cumulative_amount);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].voucher, g.voucher(PRICE, 0));
        assert_eq!(all[1].voucher, f.voucher(3 * PRICE, 0));
        assert_eq!(all[1].previous, PRICE);
        // Same amount, different expiry: a conflict, not a duplicate.
        let other = block_on(store.accept(&f.voucher(3 * PRICE, 99), 0, PRICE)).unwrap();
        assert_eq!(other, AcceptOutcome::Conflict);
        // Same amount signed by another key (the bytes differ): a conflict.
        let mut forged = f.voucher(3 * PRICE, 0);
        forged.signature[63] ^= 1;
        let forged = block_on(store.accept(&forged, 0, PRICE)).unwrap();
        assert_eq!(forged, AcceptOutcome::Conflict);
        store.close();
    }
    // `close` committed everything: the index is rebuilt from the file.
    let store = RedbStore::open(&path, Durability::Sync).unwrap();
    assert_eq!(store.len(), 2);
    let dup = block_on(store.accept(&f.voucher(3 * PRICE, 0), 0, PRICE)).unwrap();
    match dup {
        AcceptOutcome::Duplicate(a) => {
            assert_eq!(a.voucher, f.voucher(3 * PRICE, 0));
            assert_eq!(a.previous, PRICE);
        }
        other => panic!("expected a duplicate, got {other:?}"),
    }
    assert_eq!(
        block_on(store.accept(&f.voucher(3 * PRICE, 99), 0, PRICE)).unwrap(),
        AcceptOutcome::Conflict
    );
}

proptest::proptest! {
    /// Records read back from redb or a shared Redis are hostile input:
    /// random bytes never panic `Accepted::decode`, and whatever it accepts
    /// re-encodes to the same bytes.
    #[test]
    fn random_stored_records_never_panic(
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
    ) {
        if let Ok(a) = paychan_verifier::Accepted::decode(&bytes) {
            proptest::prop_assert_eq!(&a.encode()[..], &bytes[..]);
        }
    }

    /// Account data from an RPC node is hostile input: random bytes, and a
    /// real channel account with one byte changed or cut short, never panic
    /// `ChannelSnapshot::from_account`; anything accepted has a signer that
    /// is not a weak key, and a grace end only when it is closing.
    #[test]
    fn random_channel_accounts_never_panic(
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
        at in proptest::prelude::any::<proptest::sample::Index>(),
        value in proptest::prelude::any::<u8>(),
        cut in 0usize..8,
    ) {
        use paychan_verifier::ChannelSnapshot;
        let f = Fixture::new();
        let program = paychan_sdk::ID;
        let mut real = f.account_data(&f.channel_state(ChannelStatus::Open, 0));
        let i = at.index(real.len());
        real[i] = value;
        real.truncate(real.len() - cut);
        for data in [&bytes, &real] {
            if let Ok(s) = ChannelSnapshot::from_account(f.channel, &program, &program, data) {
                proptest::prop_assert!(!paychan_voucher::is_weak_signer(&s.signer.to_bytes()));
                proptest::prop_assert!(
                    s.grace_ends_at.is_none() || s.status == ChannelStatus::Closing
                );
            }
        }
    }
}

/// The settler and the paywall share one store through an `Arc`: every read
/// through the wrapper answers what the wrapped store holds.
#[test]
fn an_arc_store_reads_what_the_store_it_wraps_holds() {
    use std::sync::Arc;

    use paychan_verifier::AcceptOutcome;
    let f = Fixture::new();
    let g = Fixture::new();
    let shared = Arc::new(MemoryStore::default());
    // The wrapped store itself, read without the wrapper.
    let inner: &MemoryStore = &shared;
    type Wrapper = Arc<MemoryStore>;
    for (voucher, floor) in [
        (f.voucher(2 * PRICE, 0), 0),
        (g.voucher(7 * PRICE, 0), PRICE),
    ] {
        let outcome = block_on(<Wrapper as VoucherStore>::accept(
            &shared, &voucher, floor, PRICE,
        ))
        .unwrap();
        assert!(matches!(outcome, AcceptOutcome::Accepted(a) if a.voucher == voucher));
    }
    for fx in [&f, &g] {
        let held = inner.latest(&fx.channel).unwrap().unwrap();
        assert_eq!(
            <Wrapper as VoucherStore>::latest(&shared, &fx.channel).unwrap(),
            Some(held)
        );
        assert_eq!(
            block_on(<Wrapper as VoucherStore>::fetch_latest(
                &shared,
                &fx.channel
            ))
            .unwrap(),
            Some(held)
        );
        assert_eq!(
            <Wrapper as VoucherStore>::cached(&shared, &fx.channel),
            Some(held.latest())
        );
    }
    assert_eq!(
        <Wrapper as VoucherStore>::latest(&shared, &f.channel)
            .unwrap()
            .map(|a| (a.voucher.voucher.cumulative_amount, a.previous)),
        Some((2 * PRICE, 0))
    );
    let mut all = <Wrapper as VoucherStore>::all_latest(&shared).unwrap();
    let mut held = inner.all_latest().unwrap();
    all.sort_by_key(|a| a.channel());
    held.sort_by_key(|a| a.channel());
    assert_eq!(all, held);
    let mut amounts: Vec<(u64, u64)> = all
        .iter()
        .map(|a| (a.voucher.voucher.cumulative_amount, a.previous))
        .collect();
    amounts.sort_unstable();
    assert_eq!(amounts, [(2 * PRICE, 0), (7 * PRICE, PRICE)]);
    // A channel the store never saw.
    let unknown = Fixture::new().channel;
    assert_eq!(
        <Wrapper as VoucherStore>::latest(&shared, &unknown).unwrap(),
        None
    );
    assert_eq!(<Wrapper as VoucherStore>::cached(&shared, &unknown), None);
}
