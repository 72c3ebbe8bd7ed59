//! `settle_batch`: one v2 voucher (one signature) over many channels of one signer.
use anchor_lang::{error::ErrorCode, prelude::Pubkey, solana_program::instruction::Instruction};
use paychan::{error::PaychanError, state::ChannelStatus};
use paychan_voucher::{Ed25519Entry, channels_hash, ed25519_instruction_data, sign_v2};
use solana_message::Message;
use solana_signer::Signer;
use solana_transaction::Transaction;

use crate::common::*;

/// `n` channels of one signer to one payee (deposits 1_000, 1_001, …).
fn batch(h: &mut Harness, n: usize) -> Batch {
    Batch::with_deposits(h, n, |i| 1_000 + i)
}

/// A chain with `batch(n)`.
fn setup(n: usize) -> (Harness, Batch) {
    let mut h = Harness::new();
    let b = batch(&mut h, n);
    (h, b)
}

/// Asserts that `ixs` fail with `err` and settle nothing.
#[track_caller]
fn refused(h: &mut Harness, b: &Batch, ixs: &[Instruction], err: PaychanError) {
    assert_err(&h.send_as(ixs, &[]), err);
    assert_nothing_settled(h, b);
}

/// Asserts no channel of the batch moved and the payee got nothing.
#[track_caller]
fn assert_nothing_settled(h: &Harness, b: &Batch) {
    for c in &b.chans {
        assert_eq!(h.channel(&c.address).settled, 0);
    }
    assert_eq!(h.balance(&b.accts.payee_tokens), 0);
    assert_eq!(h.vault(&b.chans[0].vault).outstanding, b.deposits(h));
}

fn settle_batch_pays_every_channel(n: usize) {
    let (mut h, b) = setup(n);
    let targets: Vec<u64> = (0..n as u64).map(|i| 10 * (i + 1)).collect();
    let expected: u64 = targets.iter().sum();
    let deposits = b.deposits(&h);
    let meta = ok(h.send_as(&b.ixs(&targets, 0), &[]));

    assert_eq!(h.balance(&b.accts.payee_tokens), expected);
    assert_eq!(h.balance(&b.chans[0].vault_tokens), deposits - expected);
    assert_eq!(h.vault(&b.chans[0].vault).outstanding, deposits - expected);
    for (c, t) in b.chans.iter().zip(&targets) {
        let state = h.channel(&c.address);
        assert_eq!(state.settled, *t);
        assert_eq!(state.status, ChannelStatus::Open as u8);
    }
    assert_eq!(
        transfers(&meta, &h.token_program),
        1,
        "one transfer for the whole batch"
    );
}

cases! {
    settle_batch_over_one_channel => settle_batch_pays_every_channel(1);
    settle_batch_over_three_channels_pays_the_sum_in_one_transfer => settle_batch_pays_every_channel(3);
    settle_batch_over_sixteen_channels_pays_the_sum_in_one_transfer => settle_batch_pays_every_channel(16);
}

#[test]
fn settle_batch_over_sixteen_channels_fits_one_legacy_transaction() {
    let (mut h, b) = setup(16);
    let ixs = b.ixs(&[1; 16], 0);
    let blockhash = h.svm.latest_blockhash();
    let msg = Message::new_with_blockhash(&ixs, Some(&h.fee_payer.pubkey()), &blockhash);
    let tx = Transaction::new(&[&h.fee_payer], msg, blockhash);
    let size = bincode::serialize(&tx).unwrap().len();
    assert!(size <= 1_232, "{size} bytes");
    let meta = ok(h.svm.send_transaction(tx));
    assert!(meta.compute_units_consumed < 200_000);
    assert_eq!(h.balance(&b.accts.payee_tokens), 16);
}

#[test]
fn settle_batch_skips_targets_at_or_below_settled() {
    let (mut h, b) = setup(4);
    // Channels 0 and 1 were settled further with v1 vouchers.
    let v1 = [b.chans[0].voucher(500, 0), b.chans[1].voucher(200, 0)];
    h.settle(&b.accts, &v1);
    let deposits = b.deposits(&h);

    // Targets: below, equal, and two advancing.
    let meta = ok(h.send_as(&b.ixs(&[300, 200, 100, 50], 0), &[]));

    let settled: Vec<u64> = b
        .chans
        .iter()
        .map(|c| h.channel(&c.address).settled)
        .collect();
    assert_eq!(settled, vec![500, 200, 100, 50]);
    assert_eq!(h.balance(&b.accts.payee_tokens), 700 + 150);
    assert_eq!(h.vault(&b.chans[0].vault).outstanding, deposits - 850);
    assert_eq!(h.balance(&b.chans[0].vault_tokens), deposits - 850);
    assert_eq!(transfers(&meta, &h.token_program), 1);
}

#[test]
fn settle_batch_replayed_pays_nothing_more() {
    let (mut h, b) = setup(3);
    let deposits = b.deposits(&h);
    let ixs = b.ixs(&[100, 200, 300], 0);
    ok(h.send_as(&ixs, &[]));
    assert_eq!(h.balance(&b.accts.payee_tokens), 600);

    // The same signed batch again (a new transaction): every target is already met.
    let meta = ok(h.send_as(&ixs, &[]));
    assert_eq!(
        transfers(&meta, &h.token_program),
        0,
        "a zero payout is no transfer"
    );
    assert_eq!(h.balance(&b.accts.payee_tokens), 600);
    assert_eq!(h.vault(&b.chans[0].vault).outstanding, deposits - 600);
    assert_eq!(h.balance(&b.chans[0].vault_tokens), deposits - 600);
    let settled: Vec<u64> = b
        .chans
        .iter()
        .map(|c| h.channel(&c.address).settled)
        .collect();
    assert_eq!(settled, vec![100, 200, 300]);
}

#[test]
fn settle_batch_with_unsorted_channels_fails() {
    let (mut h, b) = setup(3);
    let mut ixs = b.ixs(&[100, 200, 300], 0);
    let mut reversed = b.addresses();
    reversed.reverse();
    ixs[1] = b.accts.settle_batch_ix(&reversed);
    refused(&mut h, &b, &ixs, PaychanError::ChannelsHashMismatch);
}

#[test]
fn settle_batch_with_a_duplicate_channel_fails() {
    let (mut h, b) = setup(2);
    let mut ixs = b.ixs(&[100, 200], 0);
    let a = b.chans[0].address;
    ixs[1] = b.accts.settle_batch_ix(&[a, a]);
    refused(&mut h, &b, &ixs, PaychanError::DuplicateChannel);
}

#[test]
fn settle_batch_with_a_channel_of_another_signer_fails() {
    let (mut h, mut b) = setup(2);
    // Same payee and vault, different voucher signer.
    let stranger = h.open_channel(&b.payee.pubkey(), 1_000);
    b.chans.push(stranger);
    b.chans.sort_by_key(|c| c.address.to_bytes());
    let ixs = b.ixs(&[100, 100, 100], 0);
    refused(&mut h, &b, &ixs, PaychanError::WrongSigner);
}

#[test]
fn settle_batch_with_a_target_above_the_deposit_fails() {
    let (mut h, b) = setup(3);
    let over = h.channel(&b.chans[2].address).deposit + 1;
    let ixs = b.ixs(&[100, 100, over], 0);
    refused(&mut h, &b, &ixs, PaychanError::CumulativeExceedsDeposit);
}

#[test]
fn settle_batch_with_an_expired_voucher_fails() {
    let (mut h, b) = setup(3);
    let now = h.clock().unix_timestamp;
    let ixs = b.ixs(&[100, 100, 100], now - 1);
    refused(&mut h, &b, &ixs, PaychanError::VoucherExpired);
}

#[test]
fn settle_batch_with_a_voucher_expiring_this_second_succeeds() {
    let (mut h, b) = setup(2);
    let now = h.clock().unix_timestamp;
    ok(h.send_as(&b.ixs(&[100, 100], now), &[]));
    assert_eq!(h.balance(&b.accts.payee_tokens), 200);
}

#[test]
fn settle_batch_with_channels_of_another_payees_vault_fails() {
    let (mut h, b) = setup(2);
    // A channel of the same signer to another payee (another vault).
    let other = h.open_channel_with_signer(&Pubkey::new_unique(), 1_000, &b.signer);
    let res = h.send_as(
        &settle_batch_ixs(&b.accts, &b.signer, &[other.address], &[100], 0),
        &[],
    );
    assert_err(&res, PaychanError::VaultMismatch);
    assert_eq!(h.channel(&other.address).settled, 0);
    assert_eq!(h.balance(&other.vault_tokens), 1_000);
    assert_nothing_settled(&h, &b);
}

#[test]
fn settle_batch_with_two_ed25519_records_fails() {
    let (mut h, b) = setup(2);
    let ids: Vec<[u8; 32]> = b.addresses().iter().map(|c| c.to_bytes()).collect();
    let refs: Vec<&[u8; 32]> = ids.iter().collect();
    let hash = channels_hash(&paychan::ID.to_bytes(), &refs).unwrap();
    let (msg, sig) = sign_v2(&b.signer, 0, &hash, &[100, 100]).unwrap();
    let pubkey = b.signer.verifying_key().to_bytes();
    let entry = Ed25519Entry {
        pubkey: &pubkey,
        signature: &sig,
        message: &msg,
    };
    let data = ed25519_instruction_data(&[entry, entry]).unwrap();
    let ixs = vec![
        ed25519_ix_raw(data),
        b.accts.settle_batch_ix(&b.addresses()),
    ];
    refused(&mut h, &b, &ixs, PaychanError::SignatureCountMismatch);
}

#[test]
fn settle_batch_with_fewer_channels_than_the_voucher_fails() {
    let (mut h, b) = setup(3);
    // Signed over three channels, presented with the first two: the message
    // is 8 bytes longer than a two-channel voucher, so the strict layout check
    // rejects it before the voucher is decoded.
    let mut ixs = b.ixs(&[100, 100, 100], 0);
    ixs[1] = b.accts.settle_batch_ix(&b.addresses()[..2]);
    refused(&mut h, &b, &ixs, PaychanError::InvalidEd25519Layout);
}

#[test]
fn settle_batch_with_more_channels_than_the_voucher_fails() {
    let (mut h, b) = setup(3);
    let two = &b.addresses()[..2];
    let mut ixs = settle_batch_ixs(&b.accts, &b.signer, two, &[100, 100], 0);
    ixs[1] = b.accts.settle_batch_ix(&b.addresses());
    refused(&mut h, &b, &ixs, PaychanError::InvalidEd25519Layout);
}

/// A batch of three whose channel 1 requested its close `secs` ago.
fn batch_with_channel_1_closing(secs: i64) -> (Harness, Batch) {
    let (mut h, b) = setup(3);
    h.request_close(&b.chans[1]);
    h.advance(10, secs);
    (h, b)
}

#[test]
fn settle_batch_with_a_closing_channel_past_its_grace_end_fails() {
    let (mut h, b) = batch_with_channel_1_closing(GRACE);
    let ixs = b.ixs(&[100, 100, 100], 0);
    refused(&mut h, &b, &ixs, PaychanError::GracePeriodEnded);
}

#[test]
fn settle_batch_with_a_closing_channel_inside_its_grace_period_succeeds() {
    let (mut h, b) = batch_with_channel_1_closing(GRACE - 1);
    ok(h.send_as(&b.ixs(&[100, 200, 300], 0), &[]));
    assert_eq!(h.balance(&b.accts.payee_tokens), 600);
    let c = h.channel(&b.chans[1].address);
    assert_eq!(c.status, ChannelStatus::Closing as u8);
    assert_eq!(c.settled, 200);
}

#[test]
fn settle_batch_with_a_closed_channel_fails() {
    let (mut h, b) = setup(3);
    let closed = &b.chans[2];
    h.request_close(closed);
    h.advance(10, GRACE);
    ok(h.finalize(closed));
    let res = h.send_as(&b.ixs(&[100, 100, 100], 0), &[]);
    assert_err(&res, PaychanError::ChannelClosed);
    assert_eq!(h.balance(&b.accts.payee_tokens), 0);
}

#[test]
fn settle_batch_with_no_channels_fails() {
    let (mut h, b) = setup(1);
    let mut ixs = b.ixs(&[100], 0);
    ixs[1] = b.accts.settle_batch_ix(&[]);
    assert_err(&h.send_as(&ixs, &[]), PaychanError::InvalidChannelCount);
}

#[test]
fn settle_batch_with_more_than_64_channels_fails() {
    let (mut h, b) = setup(1);
    let mut ixs = b.ixs(&[100], 0);
    ixs[1] = b.accts.settle_batch_ix(&[b.chans[0].address; 65]);
    refused(&mut h, &b, &ixs, PaychanError::InvalidChannelCount);
}

#[test]
fn settle_batch_without_a_preceding_ed25519_instruction_fails() {
    let (mut h, b) = setup(2);
    let ixs = b.ixs(&[100, 100], 0);
    let without_ed25519 = &ixs[1..];
    refused(
        &mut h,
        &b,
        without_ed25519,
        PaychanError::MissingEd25519Instruction,
    );
}

#[test]
fn settle_batch_with_a_v1_voucher_fails() {
    let (mut h, b) = setup(1);
    let ixs = vec![
        ed25519_ix(&[b.chans[0].voucher(100, 0)]),
        b.accts.settle_batch_ix(&b.addresses()),
    ];
    refused(&mut h, &b, &ixs, PaychanError::InvalidEd25519Layout);
}

#[test]
fn settle_batch_paying_a_token_account_not_owned_by_the_payee_fails() {
    let (mut h, mut b) = setup(2);
    let decoy = h.token_account(&Pubkey::new_unique(), 0);
    b.accts.payee_tokens = decoy;
    let res = h.send_as(&b.ixs(&[100, 100], 0), &[]);
    assert_err(&res, PaychanError::WrongTokenAccount);
    assert_eq!(h.balance(&decoy), 0);
}

#[test]
fn settle_batch_with_a_read_only_channel_fails() {
    let (mut h, b) = setup(2);
    let mut ixs = b.ixs(&[100, 100], 0);
    let last = ixs[1].accounts.len() - 1;
    ixs[1].accounts[last].is_writable = false;
    refused(&mut h, &b, &ixs, PaychanError::ChannelNotWritable);
}

#[test]
fn settle_batch_with_an_account_that_is_not_a_channel_fails() {
    let (mut h, b) = setup(1);
    // The vault account, signed for as if it were a channel.
    let vault = b.chans[0].vault;
    let res = h.send_as(
        &settle_batch_ixs(&b.accts, &b.signer, &[vault], &[100], 0),
        &[],
    );
    assert_anchor_err(&res, ErrorCode::AccountDiscriminatorMismatch);
    assert_nothing_settled(&h, &b);
}
