//! `settle_batch`: one v2 voucher (one signature) over many channels of one signer.
//!
//! Transaction shape: `[ed25519 (1 record, v2 message), settle_batch]`, the
//! channels as writable remaining accounts in strictly increasing address
//! order, exactly the channels hashed into the voucher's `channels_hash`.
//! Entries are targets: a channel already settled at or above its target is
//! left as it is (even once it has closed), so a replayed or partly stale
//! batch is harmless and one channel that reached its target cannot void the
//! voucher for the others.
use anchor_lang::prelude::*;
use paychan_voucher::{VoucherV2Ref, channels_hash, v2_len};

use crate::{
    constants::MAX_SETTLE_BATCH_CHANNELS, ed25519, error::PaychanError, instructions::Settle,
};

const _: () = assert!(MAX_SETTLE_BATCH_CHANNELS as usize <= paychan_voucher::V2_MAX_CHANNELS);

pub(crate) fn handler<'info>(ctx: Context<'info, Settle<'info>>) -> Result<()> {
    let channels = ctx.remaining_accounts;
    ctx.accounts.validate(channels, MAX_SETTLE_BATCH_CHANNELS)?;
    let data = ed25519::preceding_ed25519_data(&ctx.accounts.instructions)?;
    let records = ed25519::parse_records(&data, 1, v2_len(channels.len()))?;
    let record = records.get(0).ok_or(PaychanError::InvalidEd25519Layout)?;
    let voucher = VoucherV2Ref::decode(record.message).map_err(|_| PaychanError::InvalidVoucher)?;
    require!(
        voucher.count() == channels.len(),
        PaychanError::SignatureCountMismatch
    );

    let ids: Vec<&[u8; 32]> = channels.iter().map(|c| c.key.as_array()).collect();
    for pair in ids.windows(2) {
        require!(pair[0] != pair[1], PaychanError::DuplicateChannel);
    }
    // Unsorted channels cannot match any voucher: the hash requires increasing ids.
    let hash = channels_hash(&crate::ID.to_bytes(), &ids)
        .map_err(|_| PaychanError::ChannelsHashMismatch)?;
    require!(
        hash == *voucher.channels_hash(),
        PaychanError::ChannelsHashMismatch
    );
    let now = Clock::get()?.unix_timestamp;
    require!(!voucher.is_expired(now), PaychanError::VoucherExpired);

    let mut total: u64 = 0;
    for (info, target) in channels.iter().zip(voucher.cumulatives()) {
        let delta = ctx.accounts.advance(info, record.pubkey, target, now)?;
        total = total.checked_add(delta).ok_or(PaychanError::Overflow)?;
    }
    ctx.accounts.pay_out(total)
}
