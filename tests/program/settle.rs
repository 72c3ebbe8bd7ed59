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
    let mut h = Harness::new();
    let (chan, accts) = settle_fixture(&mut h, 1_000);
    ok(h.send_as(&settle_ixs(&accts, &[chan.voucher(300, 0)]), &[]));
    assert_eq!(h.balance(&accts.payee_tokens), 300);
    assert_eq!(h.balance(&chan.vault_tokens), 700);
    assert_eq!(h.channel(&chan.address).settled, 300);
    assert_eq!(h.vault(&chan.vault).outstanding, 700);

    let meta = ok(h.send_as(&settle_ixs(&accts, &[chan.voucher(450, 0)]), &[]));
    let events = events::<paychan::events::ChannelSettled>(&meta.logs);
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].channel, events[0].settled, events[0].amount),
        (chan.address, 450, 150)
    );
    assert_eq!(h.balance(&accts.payee_tokens), 450);
    assert_eq!(h.balance(&chan.vault_tokens), 550);
    assert_eq!(h.channel(&chan.address).settled, 450);
    assert_eq!(h.vault(&chan.vault).outstanding, 550);
}

#[test]
fn settle_up_to_the_full_deposit() {
    let mut h = Harness::new();
    let (chan, accts) = settle_fixture(&mut h, 1_000);
    ok(h.send_as(&settle_ixs(&accts, &[chan.voucher(1_000, 0)]), &[]));
    assert_eq!(h.balance(&accts.payee_tokens), 1_000);
    assert_eq!(h.balance(&chan.vault_tokens), 0);
    assert_eq!(h.vault(&chan.vault).outstanding, 0);
}

#[test]
fn settle_the_most_vouchers_that_fit_of_different_payers_in_one_instruction() {
    let mut h = Harness::new();
    let payee = Pubkey::new_unique();
    let payee_tokens = h.payout_account(&payee, 0);
    let n = u64::from(paychan::constants::MAX_SETTLE_VOUCHERS);
    let chans: Vec<Chan> = (0..n).map(|i| h.open_channel(&payee, 1_000 + i)).collect();
    let accts = SettleAccounts::for_chan(&chans[0], payee_tokens);
    let vouchers: Vec<_> = chans
        .iter()
        .enumerate()
        .map(|(i, c)| c.voucher(100 * (i as u64 + 1), 0))
        .collect();
    let one = ok(h.send_as(&settle_ixs(&accts, &[chans[0].voucher(50, 0)]), &[]));
    let meta = ok(h.send_as(&settle_ixs(&accts, &vouchers), &[]));
    let expected: u64 = (1..=n).map(|i| 100 * i).sum();
    assert_eq!(h.balance(&payee_tokens), expected);
    for (i, c) in chans.iter().enumerate() {
        assert_eq!(h.channel(&c.address).settled, 100 * (i as u64 + 1));
    }
    let payers: std::collections::HashSet<_> = chans.iter().map(|c| c.payer.pubkey()).collect();
    assert_eq!(payers.len() as u64, n, "different payers");
    let deposits: u64 = (0..n).map(|i| 1_000 + i).sum();
    assert_eq!(h.vault(&chans[0].vault).outstanding, deposits - expected);
    // One token transfer for the whole batch.
    let transfers = meta
        .logs
        .iter()
        .filter(|l| l.starts_with(&format!("Program {} invoke", anchor_spl::token::ID)))
        .count();
    assert_eq!(transfers, 1, "{:#?}", meta.logs);
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
    // One ChannelSettled event per channel, in order.
    let events = events::<paychan::events::ChannelSettled>(&meta.logs);
    let got: Vec<_> = events
        .iter()
        .map(|e| (e.channel, e.settled, e.amount))
        .collect();
    let want: Vec<_> = chans
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let settled = 100 * (i as u64 + 1);
            // The first channel was settled to 50 before.
            let amount = if i == 0 { settled - 50 } else { settled };
            (c.address, settled, amount)
        })
        .collect();
    assert_eq!(got, want);
}

#[test]
fn settle_with_an_unexpired_voucher_succeeds() {
    let mut h = Harness::new();
    let (chan, accts) = settle_fixture(&mut h, 1_000);
    let now = h.clock().unix_timestamp;
    ok(h.send_as(&settle_ixs(&accts, &[chan.voucher(10, now)]), &[]));
    assert_eq!(h.channel(&chan.address).settled, 10);
}

#[test]
fn settle_during_the_grace_period_succeeds() {
    let mut h = Harness::new();
    let (chan, accts) = settle_fixture(&mut h, 1_000);
    h.request_close(&chan);
    h.advance(10, GRACE - 1);
    ok(h.send_as(&settle_ixs(&accts, &[chan.voucher(600, 0)]), &[]));
    assert_eq!(h.balance(&accts.payee_tokens), 600);
}

#[test]
fn settle_with_no_channels_fails() {
    let mut h = Harness::new();
    let (chan, accts) = settle_fixture(&mut h, 1_000);
    let ixs = vec![ed25519_ix(&[chan.voucher(1, 0)]), accts.settle_ix(&[])];
    assert_err(&h.send_as(&ixs, &[]), PaychanError::InvalidChannelCount);
}

#[test]
fn settle_with_nine_channels_fails() {
    let mut h = Harness::new();
    let (chan, accts) = settle_fixture(&mut h, 1_000);
    let ixs = vec![
        ed25519_ix(&[chan.voucher(1, 0)]),
        accts.settle_ix(&[chan.address; 9]),
    ];
    assert_err(&h.send_as(&ixs, &[]), PaychanError::InvalidChannelCount);
}

#[test]
fn settle_without_a_preceding_ed25519_instruction_fails() {
    let mut h = Harness::new();
    let (chan, accts) = settle_fixture(&mut h, 1_000);
    let res = h.send_as(&[accts.settle_ix(&[chan.address])], &[]);
    assert_err(&res, PaychanError::MissingEd25519Instruction);
}

#[test]
fn settle_needs_the_ed25519_instruction_immediately_before_it() {
    let mut h = Harness::new();
    let (chan, accts) = settle_fixture(&mut h, 1_000);
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
    let mut h = Harness::new();
    let (chan, accts) = settle_fixture(&mut h, 1_000);
    let mut v = chan.voucher(500, 0);
    v.signature[0] ^= 1;
    let res = h.send_as(&settle_ixs(&accts, &[v]), &[]);
    assert!(res.is_err());
    assert_eq!(
        failed_instruction(&res),
        Some(0),
        "the precompile itself fails"
    );
    assert_eq!(h.channel(&chan.address).settled, 0);
}

#[test]
fn a_channel_passed_read_only_is_rejected() {
    let mut h = Harness::new();
    let (chan, accts) = settle_fixture(&mut h, 1_000);
    let mut ixs = settle_ixs(&accts, &[chan.voucher(5, 0)]);
    let last = ixs[1].accounts.len() - 1;
    ixs[1].accounts[last].is_writable = false;
    assert_err(&h.send_as(&ixs, &[]), PaychanError::ChannelNotWritable);
}

#[test]
fn an_account_that_is_not_a_channel_is_rejected() {
    let mut h = Harness::new();
    let (chan, accts) = settle_fixture(&mut h, 1_000);
    // A voucher "for" the vault account, passed as the channel.
    let forged = paychan_voucher::sign_v1(
        &chan.signer,
        &paychan_voucher::VoucherV1 {
            channel_id: chan.vault.to_bytes(),
            cumulative_amount: 5,
            expires_at: 0,
        },
    );
    let res = h.send_as(&settle_ixs(&accts, &[forged]), &[]);
    assert_anchor_err(
        &res,
        anchor_lang::error::ErrorCode::AccountDiscriminatorMismatch,
    );
}
