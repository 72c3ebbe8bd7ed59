//! A `Channel` account as the program stores it, and its vouchers: the
//! fixtures the verifier and x402 suites (and their benches) build channels
//! with.

use ed25519_dalek::SigningKey;
use paychan_sdk::{
    Pubkey,
    state::{Channel, ChannelStatus},
};
use paychan_voucher::{SignedVoucher, VoucherV1, sign_v1};

/// The unix time the suites check at; a `Closing` channel closed at `NOW - 10`.
pub const NOW: i64 = 1_800_000_000;

/// `key`'s voucher for `channel`.
pub fn voucher(
    key: &SigningKey,
    channel: Pubkey,
    cumulative: u64,
    expires_at: i64,
) -> SignedVoucher {
    sign_v1(
        key,
        &VoucherV1 {
            channel_id: channel.to_bytes(),
            cumulative_amount: cumulative,
            expires_at,
        },
    )
}

/// A channel as the program stores it: `payer`'s `deposit` to `payee` in
/// `mint`, its vouchers signed by `key`, closing since `NOW - 10` when
/// `Closing`.
pub fn channel_state(
    key: &SigningKey,
    (payer, payee, mint): (Pubkey, Pubkey, Pubkey),
    deposit: u64,
    status: ChannelStatus,
    settled: u64,
) -> Channel {
    Channel {
        payer,
        payee,
        mint,
        authorized_signer: Pubkey::new_from_array(key.verifying_key().to_bytes()),
        rent_payer: payer,
        deposit,
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
