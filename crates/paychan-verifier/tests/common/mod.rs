//! Fixtures shared by the verifier tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    future::Future,
    sync::Arc,
    task::{Context, Poll, Wake, Waker},
    thread,
};

use ed25519_dalek::SigningKey;
use paychan_sdk::Pubkey;
use paychan_sdk::state::{Channel, ChannelStatus};
use paychan_verifier::{
    ChannelSnapshot, CheckError, MemoryChannels, Receipt, Rejection, Terms, Verifier, VoucherStore,
};
use paychan_voucher::SignedVoucher;

/// The channel and voucher builders the x402 suite uses too.
pub use paychan_testkit::channels::{NOW, channel_state, voucher};

pub const PRICE: u64 = 1_000;
pub const DEPOSIT: u64 = 1_000_000;

pub struct Fixture {
    pub key: SigningKey,
    pub channel: Pubkey,
    pub payer: Pubkey,
    pub payee: Pubkey,
    pub mint: Pubkey,
}

impl Fixture {
    pub fn new() -> Self {
        Self {
            key: SigningKey::generate(&mut rand::rngs::OsRng),
            channel: Pubkey::new_unique(),
            payer: Pubkey::new_unique(),
            payee: Pubkey::new_unique(),
            mint: Pubkey::new_unique(),
        }
    }

    pub fn terms(&self) -> Terms {
        Terms::new(paychan_sdk::ID, self.payee, self.mint, PRICE)
    }

    /// The channel as the program stores it.
    pub fn channel_state(&self, status: ChannelStatus, settled: u64) -> Channel {
        channel_state(
            &self.key,
            (self.payer, self.payee, self.mint),
            DEPOSIT,
            status,
            settled,
        )
    }

    /// Account data: discriminator + zero-copy body.
    pub fn account_data(&self, channel: &Channel) -> Vec<u8> {
        channel.encode()
    }

    pub fn snapshot(&self, status: ChannelStatus, settled: u64) -> ChannelSnapshot {
        let data = self.account_data(&self.channel_state(status, settled));
        ChannelSnapshot::from_account(self.channel, &paychan_sdk::ID, &paychan_sdk::ID, &data)
            .unwrap()
    }

    pub fn channels(&self, status: ChannelStatus, settled: u64) -> MemoryChannels {
        let c = MemoryChannels::default();
        c.upsert(self.snapshot(status, settled)).unwrap();
        c
    }

    pub fn voucher(&self, cumulative: u64, expires_at: i64) -> SignedVoucher {
        voucher(&self.key, self.channel, cumulative, expires_at)
    }
}

/// Runs a future to completion, parking the thread between polls.
pub fn block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        thread::park();
    }
}

/// Threads race over the same 400 vouchers (cumulative k·PRICE, shuffled per
/// thread) on one channel, thread `t` checking through `verifiers[t % n]`.
/// Whatever interleaving happens: no cumulative is charged twice, the charges
/// add up to the final watermark, and the store holds the highest accepted
/// voucher. (The shape of `race` in tests/stores.rs.)
pub fn race<S: VoucherStore + 'static>(f: &Fixture, verifiers: Vec<Verifier<MemoryChannels, S>>) {
    let verifiers: Vec<_> = verifiers.into_iter().map(Arc::new).collect();
    let vouchers: Arc<Vec<_>> = Arc::new((1..=400u64).map(|k| f.voucher(k * PRICE, 0)).collect());
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let v = verifiers[t as usize % verifiers.len()].clone();
            let vouchers = vouchers.clone();
            thread::spawn(move || {
                let mut order: Vec<usize> = (0..vouchers.len()).collect();
                // A different deterministic order per thread.
                order.sort_by_key(|i| (*i as u64).wrapping_mul(2_654_435_761 + t * 97) % 401);
                let mut receipts = vec![];
                for i in order {
                    match block_on(v.check(&vouchers[i], NOW)) {
                        Ok(r) => receipts.push(r),
                        Err(CheckError::Rejected(Rejection::InsufficientIncrement { .. })) => {}
                        Err(e) => panic!("unexpected {e:?}"),
                    }
                }
                receipts
            })
        })
        .collect();
    let receipts: Vec<Receipt> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let fresh: Vec<&Receipt> = receipts.iter().filter(|r| !r.duplicate).collect();
    let mut cumulatives: Vec<u64> = fresh.iter().map(|r| r.cumulative).collect();
    cumulatives.sort_unstable();
    let before = cumulatives.len();
    cumulatives.dedup();
    assert_eq!(
        before,
        cumulatives.len(),
        "a cumulative amount was accepted twice"
    );
    let charged: u64 = fresh.iter().map(|r| r.charged).sum();
    for v in &verifiers {
        let latest = v.store().latest(&f.channel).unwrap().unwrap();
        assert_eq!(
            latest.voucher.voucher.cumulative_amount,
            *cumulatives.last().unwrap(),
            "the stored latest is the highest accepted"
        );
        assert_eq!(
            charged, latest.voucher.voucher.cumulative_amount,
            "charges add up to the watermark"
        );
    }
    // The chain of receipts is contiguous: each previous is another's cumulative (or 0).
    for r in &fresh {
        assert!(r.previous == 0 || cumulatives.binary_search(&r.previous).is_ok());
    }
}
