//! The one channel every seed and every live-path harness uses: an open
//! channel whose voucher key is known, so seeds carry real signatures the
//! verifier accepts.
use ed25519_dalek::SigningKey;
use paychan_sdk::state::{Channel, ChannelStatus};
use paychan_verifier::{ChannelSnapshot, Pubkey, SignedVoucher, SnapshotError, Terms};
use paychan_voucher::{VoucherV1, sign_v1};
use paychan_x402::scheme::PaychanExtra;

/// What one request costs (the paywall's default price, the facilitator's floor).
pub const PRICE: u64 = 1_000;
/// The channel's deposit: no accepted cumulative amount may exceed it.
pub const DEPOSIT: u64 = 1_000_000;
/// Devnet's CAIP-2 id (its v1 name is [`V1_NETWORK`]).
pub const NETWORK: &str = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";
/// The v1 name of [`NETWORK`].
pub const V1_NETWORK: &str = "solana-devnet";
/// The facilitator's bearer token.
pub const TOKEN: &str = "fuzz-token";
/// A voucher expiry far in the future (2100-01-01T00:00:00Z).
pub const FAR_FUTURE: i64 = 4_102_444_800;
/// A voucher expiry in the past (2001-09-09T01:46:40Z).
pub const PAST: i64 = 1_000_000_000;

/// The channel's voucher signing key.
#[must_use]
pub fn key() -> SigningKey {
    SigningKey::from_bytes(&[11; 32])
}

/// The channel's address.
pub const CHANNEL: Pubkey = Pubkey::new_from_array([0xC4; 32]);
/// Who pays.
pub const PAYER: Pubkey = Pubkey::new_from_array([0xA1; 32]);
/// Who is paid.
pub const PAYEE: Pubkey = Pubkey::new_from_array([0xB2; 32]);
/// The escrowed mint.
pub const MINT: Pubkey = Pubkey::new_from_array([0xD3; 32]);

/// The channel's on-chain state with `status` (a `ChannelStatus` as `u8`).
#[must_use]
pub fn channel_state(status: u8, deposit: u64, settled: u64) -> Channel {
    Channel {
        payer: PAYER,
        payee: PAYEE,
        mint: MINT,
        authorized_signer: Pubkey::new_from_array(key().verifying_key().to_bytes()),
        rent_payer: PAYER,
        deposit,
        settled,
        refunded: 0,
        salt: 1,
        open_slot: 10,
        closure_started_at: if status == ChannelStatus::Closing as u8 {
            PAST
        } else {
            0
        },
        grace_period: 3_600,
        version: 1,
        bump: 255,
        status,
        reserved: [0; 5],
    }
}

/// Account data as an RPC node returns it: discriminator, then the state.
#[must_use]
pub fn account_data(state: &Channel) -> Vec<u8> {
    state.encode()
}

/// The open channel as the verifier sees it, decoded from real account bytes.
pub fn open_snapshot() -> Result<ChannelSnapshot, SnapshotError> {
    let data = account_data(&channel_state(ChannelStatus::Open as u8, DEPOSIT, 0));
    ChannelSnapshot::from_account(CHANNEL, &paychan_sdk::ID, &paychan_sdk::ID, &data)
}

/// The verifier's terms: this program, payee and mint, at [`PRICE`].
#[must_use]
pub fn terms() -> Terms {
    Terms::new(paychan_sdk::ID, PAYEE, MINT, PRICE)
}

/// The offer's `extra`.
#[must_use]
pub fn extra() -> PaychanExtra {
    PaychanExtra {
        program_id: paychan_sdk::ID.to_string(),
        token_program: Pubkey::new_from_array([6; 32]).to_string(),
        decimals: 6,
        grace_period_seconds: 600,
        minimum_deposit: "0".into(),
        fee_payer: None,
    }
}

/// A voucher for the channel, signed with its key.
#[must_use]
pub fn voucher(cumulative: u64, expires_at: i64) -> SignedVoucher {
    voucher_for(CHANNEL, cumulative, expires_at)
}

/// A voucher for any channel, signed with the channel's key.
#[must_use]
pub fn voucher_for(channel: Pubkey, cumulative: u64, expires_at: i64) -> SignedVoucher {
    sign_v1(
        &key(),
        &VoucherV1 {
            channel_id: channel.to_bytes(),
            cumulative_amount: cumulative,
            expires_at,
        },
    )
}
