//! `cargo bench -p paychan-verifier --bench verifier_json`: latency
//! percentiles, throughput and memory per channel; prints JSON and writes
//! `target/bench/verifier.json`.
// The counting allocator below is the only unsafe code: it forwards to the
// system allocator and adds up live bytes.
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod workload;

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicIsize, Ordering},
    time::{Duration, Instant},
};

use ed25519_dalek::{Signature, VerifyingKey};
use paychan_sdk::Pubkey;
use paychan_verifier::{
    MemoryStore, VoucherStore,
    store::{Durability, RedbStore},
};
use paychan_voucher::{SignedVoucher, VoucherV1};
use serde_json::json;
use workload::*;

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn stats(mut ns: Vec<u64>) -> serde_json::Value {
    ns.sort_unstable();
    let pick = |q: f64| ns[((ns.len() as f64 - 1.0) * q).round() as usize] as f64 / 1_000.0;
    let mean = ns.iter().sum::<u64>() as f64 / ns.len() as f64 / 1_000.0;
    json!({ "samples": ns.len(), "p50_us": pick(0.50), "p99_us": pick(0.99), "mean_us": mean })
}

fn time_each(n: usize, mut f: impl FnMut(usize)) -> Vec<u64> {
    (0..n)
        .map(|i| {
            let t = Instant::now();
            f(i);
            t.elapsed().as_nanos() as u64
        })
        .collect()
}

fn check_latency<S: VoucherStore>(w: &Workload, store: S, n: usize) -> serde_json::Value {
    let v = w.verifier(store);
    stats(time_each(n, |i| {
        std::hint::black_box(block_on(v.check(&w.vouchers[i], NOW)).unwrap());
    }))
}

/// Checks per second with `threads` threads, each on its own channels.
fn throughput(threads: usize, per_thread: &[Workload]) -> f64 {
    let verifiers: Vec<_> = per_thread
        .iter()
        .map(|w| w.verifier(MemoryStore::default()))
        .collect();
    let start = Instant::now();
    std::thread::scope(|s| {
        for (w, v) in per_thread.iter().zip(&verifiers).take(threads) {
            s.spawn(move || {
                for voucher in &w.vouchers {
                    std::hint::black_box(block_on(v.check(voucher, NOW)).unwrap());
                }
            });
        }
    });
    let checks: usize = per_thread
        .iter()
        .take(threads)
        .map(|w| w.vouchers.len())
        .sum();
    checks as f64 / start.elapsed().as_secs_f64()
}

/// Heap bytes per tracked channel, for `n` channels, as a server holds
/// them: the channel table (what `RpcChannels` caches), the redb store's
/// index (with redb's page cache, after a flush) and the verifier's key
/// cache filled to its bound by real checks.
fn bytes_per_channel(n: usize) -> serde_json::Value {
    let hot = Workload::new(paychan_verifier::DEFAULT_KEY_CACHE, 1);
    let dir = tempfile::tempdir().unwrap();
    let before = LIVE.load(Ordering::Relaxed);
    let channels = hot.channels();
    let template = hot.snapshots[0].clone();
    for i in hot.snapshots.len()..n {
        let mut s = template.clone();
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&(i as u64).to_le_bytes());
        s.address = Pubkey::new_from_array(id);
        channels.upsert(s).unwrap();
    }
    let table = LIVE.load(Ordering::Relaxed);
    let store = RedbStore::open(
        dir.path().join("memory.redb"),
        Durability::Batched {
            interval: Duration::from_millis(10),
        },
    )
    .unwrap();
    let verifier = paychan_verifier::Verifier::new(channels, store, hot.terms());
    // Real checks: every hot channel's key lands in the key cache.
    for voucher in &hot.vouchers {
        block_on(verifier.check(voucher, NOW)).unwrap();
    }
    for i in hot.snapshots.len()..n {
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let voucher = SignedVoucher {
            voucher: VoucherV1 {
                channel_id: id,
                cumulative_amount: PRICE,
                expires_at: 0,
            },
            signer: [1; 32],
            signature: [2; 64],
        };
        let out = block_on(verifier.store().accept(&voucher, 0, PRICE)).unwrap();
        assert!(matches!(out, paychan_verifier::AcceptOutcome::Accepted(_)));
    }
    block_on(verifier.store().flush()).unwrap();
    let after = LIVE.load(Ordering::Relaxed);
    assert_eq!(verifier.channels().len(), n);
    assert_eq!(verifier.store().len(), n);
    let per = |bytes: isize| bytes as f64 / n as f64;
    json!({
        "bytes": per(after - before),
        "channel_table": per(table - before),
        "store_index_redb_cache_and_key_cache": per(after - table),
        "goal": 256,
        "holds": "channel table + redb store index and page cache (8 MiB) + key cache (16,384 keys), redb batched, after a flush",
    })
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let w = Workload::new(64, 400); // 25,600 vouchers
    let n = 20_000;
    // The same keys and vouchers as the checks below (one key per channel,
    // so both loops have the same working set in the CPU caches).
    let keys: Vec<VerifyingKey> = w
        .snapshots
        .iter()
        .map(|s| VerifyingKey::from_bytes(&s.signer.to_bytes()).unwrap())
        .collect();
    let signed: Vec<([u8; 50], Signature)> = w.vouchers[..n]
        .iter()
        .map(|v| (v.voucher.encode(), Signature::from_bytes(&v.signature)))
        .collect();
    // Bare verification and the memory-store check, interleaved sample by
    // sample (alternating which goes first), so the noise of a shared VM
    // falls on both alike.
    let verifier = w.verifier(MemoryStore::default());
    let (mut bare_ns, mut memory_ns) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let bare = || {
            let (m, s) = &signed[i];
            let key = &keys[i % keys.len()];
            debug_assert_eq!(key.as_bytes(), &w.vouchers[i].signer);
            let t = Instant::now();
            key.verify_strict(std::hint::black_box(m), s).unwrap();
            t.elapsed().as_nanos() as u64
        };
        let check = || {
            let t = Instant::now();
            std::hint::black_box(block_on(verifier.check(&w.vouchers[i], NOW)).unwrap());
            t.elapsed().as_nanos() as u64
        };
        if i % 2 == 0 {
            bare_ns.push(bare());
            memory_ns.push(check());
        } else {
            memory_ns.push(check());
            bare_ns.push(bare());
        }
    }
    let (bare, memory) = (stats(bare_ns), stats(memory_ns));
    let dir = tempfile::tempdir().unwrap();
    let batched = check_latency(
        &w,
        RedbStore::open(
            dir.path().join("batched.redb"),
            Durability::Batched {
                interval: Duration::from_millis(10),
            },
        )
        .unwrap(),
        n,
    );
    let sync = check_latency(
        &w,
        RedbStore::open(dir.path().join("sync.redb"), Durability::Sync).unwrap(),
        1_000,
    );
    let per_thread: Vec<Workload> = (0..2).map(|_| Workload::new(32, 300)).collect();
    let t1 = throughput(1, &per_thread);
    let t2 = throughput(2, &per_thread);
    let bytes = bytes_per_channel(1_000_000);

    let ratio_mean = memory["mean_us"].as_f64().unwrap() / bare["mean_us"].as_f64().unwrap();
    let ratio_p50 = memory["p50_us"].as_f64().unwrap() / bare["p50_us"].as_f64().unwrap();
    let out = json!({
        "verify_strict_bare": bare,
        "check_memory": memory,
        "check_redb_batched_10ms": batched,
        "check_redb_sync": sync,
        "check_over_verify_strict": { "mean": ratio_mean, "p50": ratio_p50, "goal": 1.15 },
        "throughput_checks_per_s": { "threads_1": t1, "threads_2": t2 },
        "bytes_per_channel_at_1m": bytes,
        "goals": { "p99_us_memory_and_redb_batched": 60 },
    });
    let text = serde_json::to_string_pretty(&out).unwrap();
    println!("{text}");
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("verifier.json"), text).unwrap();
    eprintln!("wrote {}", dir.join("verifier.json").display());
}
