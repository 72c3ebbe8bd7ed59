use anchor_lang::prelude::Pubkey;
use paychan::error::PaychanError;

use solana_signer::Signer;

use crate::common::*;

/// CU of a settle of `MAX_SETTLE_VOUCHERS` vouchers, token CPI included:
/// 10,238 when the cap became 5 (10,257 before the payout account was
/// pinned), plus 1 %. A regression guard; CU counts are deterministic.
const SETTLE_MAX_CU: u64 = 10_340;

#[test]
fn settle_pays_the_increment_and_advances_the_watermark() {
    both::settle_300_then_450(SettleBy::Precompile);
}

#[test]
fn settle_up_to_the_full_deposit() {
    let (mut h, chan, accts) = fresh_channel(1_000);
    h.settle(&accts, &[chan.voucher(1_000, 0)]);
    assert_eq!(h.balance(&accts.payee_tokens), 1_000);
    assert_eq!(h.balance(&chan.vault_tokens), 0);
    assert_eq!(h.vault(&chan.vault).outstanding, 0);
}

#[test]
fn settle_the_most_vouchers_that_fit_of_different_payers_in_one_instruction() {
    let mut h = Harness::new();
    let n = u64::from(paychan::constants::MAX_SETTLE_VOUCHERS);
    let (chans, accts) = channels_to_one_payee(&mut h, n, |i| 1_000 + i);
    let one = h.settle(&accts, &[chans[0].voucher(50, 0)]);
    let meta = h.settle(&accts, &hundreds(&chans));
    let payers: std::collections::HashSet<_> = chans.iter().map(|c| c.payer.pubkey()).collect();
    assert_eq!(payers.len() as u64, n, "different payers");
    // One token transfer for the whole batch, one event per channel in order.
    assert_hundreds_paid_in_one_transfer(&h, &accts, &chans, 1_000, &meta);
    // The compute-unit budget of issue 4: each voucher after the first costs
    // at most 3 × 574 CU (the canonical Pinocchio program's settle), and a
    // full settle stays under the figure measured when the cap became 5
    // (docs/002, "Compute units"). Compute units are deterministic; a build
    // without `+allows-misaligned-mem-access` fails both.
    let marginal = (meta.compute_units_consumed - one.compute_units_consumed) / (n - 1);
    assert!(marginal <= 3 * 574, "{marginal} CU per extra voucher");
    assert!(
        meta.compute_units_consumed <= SETTLE_MAX_CU,
        "settle N={n} used {} CU",
        meta.compute_units_consumed
    );
}

#[test]
fn settle_with_an_unexpired_voucher_succeeds() {
    let (mut h, chan, accts) = fresh_channel(1_000);
    let now = h.clock().unix_timestamp;
    h.settle(&accts, &[chan.voucher(10, now)]);
    assert_eq!(h.channel(&chan.address).settled, 10);
}

#[test]
fn settle_during_the_grace_period_succeeds() {
    let (mut h, chan, accts) = fresh_channel(1_000);
    h.request_close(&chan);
    h.advance(10, GRACE - 1);
    h.settle(&accts, &[chan.voucher(600, 0)]);
    assert_eq!(h.balance(&accts.payee_tokens), 600);
}

/// A settle naming `n` channels (one voucher) is refused for its count.
fn refused_with_channels(n: usize) {
    let (mut h, chan, accts) = fresh_channel(1_000);
    let ixs = vec![
        ed25519_ix(&[chan.voucher(1, 0)]),
        accts.settle_ix(&vec![chan.address; n]),
    ];
    assert_err(&h.send_as(&ixs, &[]), PaychanError::InvalidChannelCount);
}

cases! {
    settle_with_no_channels_fails => refused_with_channels(0);
    settle_with_nine_channels_fails => refused_with_channels(9);
}

#[test]
fn settle_without_a_preceding_ed25519_instruction_fails() {
    let (mut h, chan, accts) = fresh_channel(1_000);
    let res = h.send_as(&[accts.settle_ix(&[chan.address])], &[]);
    assert_err(&res, PaychanError::MissingEd25519Instruction);
}

#[test]
fn settle_needs_the_ed25519_instruction_immediately_before_it() {
    let (mut h, chan, accts) = fresh_channel(1_000);
    let other = h.fee_payer.insecure_clone();
    let ixs = vec![
        ed25519_ix(&[chan.voucher(5, 0)]),
        anchor_lang::solana_program::system_instruction::transfer(
            &other.pubkey(),
            &Pubkey::new_unique(),
            1_000_000,
        ),
        accts.settle_ix(&[chan.address]),
    ];
    assert_err(
        &h.send_as(&ixs, &[]),
        PaychanError::MissingEd25519Instruction,
    );
    assert_eq!(h.channel(&chan.address).settled, 0);
}

#[test]
fn a_tampered_signature_is_rejected_by_the_precompile() {
    let (mut h, chan, accts) = fresh_channel(1_000);
    let mut v = chan.voucher(500, 0);
    v.signature[0] ^= 1;
    let res = h.settle_by(SettleBy::Precompile, &accts, &[v]);
    assert!(res.is_err());
    assert_eq!(
        failed_instruction(&res),
        Some(0),
        "the precompile itself fails"
    );
    assert_eq!(h.channel(&chan.address).settled, 0);
}

cases! {
    a_channel_passed_read_only_is_rejected => both::a_channel_passed_read_only_is_refused(SettleBy::Precompile);
    an_account_that_is_not_a_channel_is_rejected => both::an_account_that_is_not_a_channel_is_refused(SettleBy::Precompile);
}
