//! Pre-signed vouchers and ready verifiers for the benchmarks (signing is
//! not what is measured).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use paychan_sdk::Pubkey;
use paychan_sdk::state::ChannelStatus;
use paychan_verifier::{ChannelSnapshot, MemoryChannels, Terms, Verifier, VoucherStore};
use paychan_voucher::SignedVoucher;

/// The tests' fixtures (`channel_state`, `voucher`).
#[path = "../tests/common/mod.rs"]
mod common;

pub const PRICE: u64 = 1_000;
pub const NOW: i64 = 1_800_000_000;

/// `channels` channels of one payee and `per_channel` increasing vouchers each,
/// interleaved so consecutive checks hit different channels.
pub struct Workload {
    pub payee: Pubkey,
    pub mint: Pubkey,
    pub snapshots: Vec<ChannelSnapshot>,
    pub vouchers: Vec<SignedVoucher>,
}

impl Workload {
    pub fn new(channels: usize, per_channel: u64) -> Self {
        let payee = Pubkey::new_unique();
        let mint = Pubkey::new_unique();
        let mut snapshots = vec![];
        let mut keys = vec![];
        for i in 0..channels {
            let key = SigningKey::from_bytes(&{
                let mut s = [7u8; 32];
                s[..8].copy_from_slice(&(i as u64).to_le_bytes());
                s
            });
            let address = Pubkey::new_unique();
            let state = common::channel_state(
                &key,
                (Pubkey::new_unique(), payee, mint),
                u64::MAX / 4,
                ChannelStatus::Open,
                0,
            );
            let data = state.encode();
            snapshots.push(
                ChannelSnapshot::from_account(address, &paychan_sdk::ID, &paychan_sdk::ID, &data)
                    .unwrap(),
            );
            keys.push((key, address));
        }
        let mut vouchers = Vec::with_capacity(channels * per_channel as usize);
        for k in 1..=per_channel {
            for (key, address) in &keys {
                vouchers.push(common::voucher(key, *address, k * PRICE, 0));
            }
        }
        Self {
            payee,
            mint,
            snapshots,
            vouchers,
        }
    }

    pub fn terms(&self) -> Terms {
        Terms::new(paychan_sdk::ID, self.payee, self.mint, PRICE)
    }

    pub fn channels(&self) -> MemoryChannels {
        let c = MemoryChannels::default();
        for s in &self.snapshots {
            c.upsert(s.clone()).unwrap();
        }
        c
    }

    pub fn verifier<S: VoucherStore>(&self, store: S) -> Arc<Verifier<MemoryChannels, S>> {
        Arc::new(Verifier::new(self.channels(), store, self.terms()))
    }
}

/// Polls a future that completes without waiting (memory / batched stores)
/// or spins until it does (sync store).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut f = std::pin::pin!(f);
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}
