//! Fixtures shared by the verifier tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use anchor_lang::{Discriminator, prelude::Pubkey};
use ed25519_dalek::SigningKey;
use paychan::state::{Channel, ChannelStatus};
use paychan_verifier::{ChannelSnapshot, MemoryChannels, Terms};
use paychan_voucher::{SignedVoucher, VoucherV1, sign_v1};

pub const PRICE: u64 = 1_000;
pub const DEPOSIT: u64 = 1_000_000;
pub const NOW: i64 = 1_800_000_000;

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
        Terms::new(paychan::ID, self.payee, self.mint, PRICE)
    }

    /// The channel as the program stores it.
    pub fn channel_state(&self, status: ChannelStatus, settled: u64) -> Channel {
        Channel {
            payer: self.payer,
            payee: self.payee,
            mint: self.mint,
            authorized_signer: Pubkey::new_from_array(self.key.verifying_key().to_bytes()),
            rent_payer: self.payer,
            deposit: DEPOSIT,
            settled,
            refunded: 0,
            salt: 1,
            open_slot: 10,
            closure_started_at: if status == ChannelStatus::Closing {
                NOW - 10
            } else {
                0
            },
            grace_period: 3_600,
            version: 1,
            bump: 255,
            status: status as u8,
            reserved: [0; 5],
        }
    }

    /// Account data: discriminator + zero-copy body.
    pub fn account_data(&self, channel: &Channel) -> Vec<u8> {
        let mut data = Channel::DISCRIMINATOR.to_vec();
        data.extend_from_slice(bytemuck::bytes_of(channel));
        data
    }

    pub fn snapshot(&self, status: ChannelStatus, settled: u64) -> ChannelSnapshot {
        let data = self.account_data(&self.channel_state(status, settled));
        ChannelSnapshot::from_account(self.channel, &paychan::ID, &paychan::ID, &data).unwrap()
    }

    pub fn channels(&self, status: ChannelStatus, settled: u64) -> MemoryChannels {
        let c = MemoryChannels::default();
        c.upsert(self.snapshot(status, settled));
        c
    }

    pub fn voucher(&self, cumulative: u64, expires_at: i64) -> SignedVoucher {
        sign_v1(
            &self.key,
            &VoucherV1 {
                channel_id: self.channel.to_bytes(),
                cumulative_amount: cumulative,
                expires_at,
            },
        )
    }
}

/// Runs a future to completion on the current thread.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}
