//! Criterion: one voucher check per iteration (memory, redb batched, redb
//! sync) against bare `ed25519-dalek` `verify_strict` on the same message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod workload;

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ed25519_dalek::{Signature, VerifyingKey};
use paychan_verifier::{
    MemoryStore, VoucherStore,
    store::{Durability, RedbStore},
};
use workload::*;

/// Measures `iters` checks, refreshing the verifier (outside the timing)
/// whenever the pre-signed vouchers run out.
fn run<S: VoucherStore, F: Fn() -> S>(w: &Workload, make: &F, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let v = w.verifier(make());
        let n = left.min(w.vouchers.len() as u64);
        let start = Instant::now();
        for voucher in &w.vouchers[..n as usize] {
            std::hint::black_box(block_on(v.check(voucher, NOW)).unwrap());
        }
        total += start.elapsed();
        left -= n;
    }
    total
}

fn bench(c: &mut Criterion) {
    let w = Workload::new(64, 500);
    let sample = &w.vouchers[0];
    let key = VerifyingKey::from_bytes(&sample.signer).unwrap();
    let msg = sample.voucher.encode();
    let sig = Signature::from_bytes(&sample.signature);

    let mut g = c.benchmark_group("voucher");
    g.bench_function("verify_strict (bare ed25519-dalek)", |b| {
        b.iter(|| key.verify_strict(std::hint::black_box(&msg), &sig).unwrap())
    });
    g.bench_function("check (memory store)", |b| {
        b.iter_custom(|iters| run(&w, &MemoryStore::default, iters))
    });
    let dir = tempfile::tempdir().unwrap();
    let n = std::sync::atomic::AtomicU64::new(0);
    let redb = |d: Durability| {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        RedbStore::open(dir.path().join(format!("b{i}.redb")), d).unwrap()
    };
    let batched = || {
        redb(Durability::Batched {
            interval: Duration::from_millis(10),
        })
    };
    g.bench_function("check (redb batched 10 ms)", |b| {
        b.iter_custom(|iters| run(&w, &batched, iters))
    });
    g.sample_size(10);
    let sync = || redb(Durability::Sync);
    g.bench_function("check (redb sync, fsync per check)", |b| {
        b.iter_custom(|iters| run(&w, &sync, iters))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
