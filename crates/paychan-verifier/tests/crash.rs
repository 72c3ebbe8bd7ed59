//! Crash safety: a child process accepts vouchers under load and is killed
//! with SIGKILL; after a restart the redb store must hold every voucher the
//! child acknowledged — all of them in `sync` mode, all acknowledged earlier
//! than the documented bound in `batched` mode.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::{
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{PRICE, block_on};
use ed25519_dalek::SigningKey;
use paychan_sdk::Pubkey;
use paychan_verifier::{
    VoucherStore,
    store::{Durability, RedbStore},
};
use paychan_voucher::{SignedVoucher, VoucherV1, sign_v1};

const CHILD_ENV: &str = "PAYCHAN_CRASH_CHILD";
const CHANNELS: u8 = 4;
const BATCH_INTERVAL: Duration = Duration::from_millis(20);

fn voucher(channel: u8, k: u64) -> SignedVoucher {
    let key = SigningKey::from_bytes(&[channel.wrapping_add(1); 32]);
    sign_v1(
        &key,
        &VoucherV1 {
            channel_id: Pubkey::new_from_array([channel.wrapping_add(100); 32]).to_bytes(),
            cumulative_amount: k * PRICE,
            expires_at: 0,
        },
    )
}

fn durability(mode: &str) -> Durability {
    match mode {
        "sync" => Durability::Sync,
        _ => Durability::Batched {
            interval: BATCH_INTERVAL,
        },
    }
}

/// The child: accepts vouchers as fast as the store allows and prints
/// `ACK <channel> <k>` after each acknowledgement, until it is killed.
#[test]
#[ignore = "the child process of the crash tests, started by them"]
fn crash_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (mode, path) = spec.split_once('|').unwrap();
    let store = RedbStore::open(path, durability(mode)).unwrap();
    let mut out = std::io::stdout().lock();
    for k in 1u64.. {
        for channel in 0..CHANNELS {
            let outcome = block_on(store.accept(&voucher(channel, k), 0, PRICE)).unwrap();
            assert!(matches!(
                outcome,
                paychan_verifier::AcceptOutcome::Accepted(_)
            ));
            writeln!(out, "ACK {channel} {k}").unwrap();
            out.flush().unwrap();
        }
    }
}

struct Ack {
    channel: u8,
    k: u64,
    received: Instant,
}

/// Runs the child for `run`, kills it, and returns its acknowledgements, the
/// kill instant and the reopened store.
fn run_and_kill(mode: &str, run: Duration) -> (Vec<Ack>, Instant, RedbStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.redb");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "crash_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, format!("{mode}|{}", path.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut acks = vec![];
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let mut parts = line.split_whitespace();
            if parts.next() != Some("ACK") {
                continue;
            }
            let channel = parts.next().unwrap().parse().unwrap();
            let k = parts.next().unwrap().parse().unwrap();
            acks.push(Ack {
                channel,
                k,
                received: Instant::now(),
            });
        }
        acks
    });
    std::thread::sleep(run);
    child.kill().unwrap(); // SIGKILL on Unix
    let killed = Instant::now();
    child.wait().unwrap();
    let acks = reader.join().unwrap();
    let store = RedbStore::open(&path, Durability::Sync).unwrap();
    (acks, killed, store, dir)
}

fn stored_k(store: &RedbStore, channel: u8) -> u64 {
    store
        .latest(&Pubkey::new_from_array([channel + 100; 32]))
        .unwrap()
        .map_or(0, |a| {
            assert_eq!(
                a.voucher,
                voucher(channel, a.voucher.voucher.cumulative_amount / PRICE)
            );
            a.voucher.voucher.cumulative_amount / PRICE
        })
}

#[test]
fn sigkill_loses_no_voucher_acknowledged_in_sync_mode() {
    let (acks, _, store, _dir) = run_and_kill("sync", Duration::from_millis(1_500));
    assert!(
        acks.len() > 20,
        "the child acknowledged only {} vouchers",
        acks.len()
    );
    for channel in 0..CHANNELS {
        let acked = acks
            .iter()
            .filter(|a| a.channel == channel)
            .map(|a| a.k)
            .max()
            .unwrap();
        let stored = stored_k(&store, channel);
        assert!(
            stored >= acked,
            "channel {channel}: acknowledged {acked}, stored {stored}"
        );
        // Nothing unacknowledged beyond the one in flight.
        assert!(
            stored <= acked + 1,
            "channel {channel}: stored {stored} > acked {acked} + 1"
        );
    }
    println!(
        "sync: {} vouchers acknowledged, all durable after SIGKILL",
        acks.len()
    );
}

#[test]
fn sigkill_loses_nothing_acknowledged_before_the_batched_bound() {
    // Bound: the batch interval plus one commit; a generous commit allowance
    // keeps the test honest on a loaded 2-core machine.
    let bound = BATCH_INTERVAL + Duration::from_millis(250);
    let (acks, killed, store, _dir) = run_and_kill("batched", Duration::from_millis(1_500));
    assert!(
        acks.len() > 100,
        "the child acknowledged only {} vouchers",
        acks.len()
    );
    let mut lost = 0;
    let mut newest_lost_age = None;
    for ack in &acks {
        let stored = stored_k(&store, ack.channel);
        let age = killed.duration_since(ack.received);
        if stored < ack.k {
            lost += 1;
            newest_lost_age = Some(newest_lost_age.map_or(age, |a: Duration| a.max(age)));
            assert!(
                age < bound,
                "voucher {} of channel {} acknowledged {age:?} before the kill was lost",
                ack.k,
                ack.channel
            );
        }
    }
    println!(
        "batched: {} vouchers acknowledged, {lost} lost, all within {:?} of the kill (bound {bound:?})",
        acks.len(),
        newest_lost_age.unwrap_or_default()
    );
}
