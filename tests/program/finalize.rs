//! `finalize`: anyone, once the grace period is over, refunds the payer.
use anchor_lang::prelude::Pubkey;
use paychan::{constants::OPEN_SLOT_WINDOW, error::PaychanError, state::ChannelStatus};
use solana_signer::Signer;

use crate::common::*;

const PAYER_BALANCE: u64 = 10_000_000;

/// An open channel (deposit `deposit`) whose payer has requested the close.
fn closing_fixture(deposit: u64) -> (Harness, Chan, SettleAccounts) {
    let (mut h, chan, accts) = fresh_channel(deposit);
    h.request_close(&chan);
    (h, chan, accts)
}

fn finalize(chan: &Chan) -> anchor_lang::solana_program::instruction::Instruction {
    finalize_ix(chan, &chan.payer_tokens, &chan.payer.pubkey())
}

/// Asserts the channel is still closing and nothing was refunded.
#[track_caller]
fn assert_still_closing(h: &Harness, chan: &Chan, deposit: u64) {
    let c = h.channel(&chan.address);
    assert_eq!(c.status, ChannelStatus::Closing as u8);
    assert_eq!(c.refunded, 0);
    assert_eq!(h.balance(&chan.payer_tokens), PAYER_BALANCE - deposit);
    assert_eq!(h.vault(&chan.vault).outstanding, deposit - c.settled);
}

#[test]
fn finalize_after_exactly_the_grace_period_refunds_the_payer() {
    let (mut h, chan, _) = closing_fixture(1_000);
    // Another channel to the same payee keeps its escrow.
    let other = h.open_channel(&chan.payee, 400);
    let started = h.clock().unix_timestamp;
    h.advance(10, GRACE);
    assert_eq!(h.clock().unix_timestamp, started + GRACE);
    let payer_lamports = h.lamports(&chan.payer.pubkey());

    // Anyone may finalize: the harness fee payer sends it, nobody else signs.
    ok(h.finalize(&chan));

    assert_eq!(h.balance(&chan.payer_tokens), PAYER_BALANCE);
    assert_eq!(h.balance(&chan.vault_tokens), 400);
    assert_eq!(h.vault(&chan.vault).outstanding, 400);
    let c = h.channel(&chan.address);
    assert_eq!(c.status, ChannelStatus::Closed as u8);
    assert_eq!((c.deposit, c.settled, c.refunded), (1_000, 0, 1_000));
    assert_eq!(c.closure_started_at, started);
    // Inside the open-slot window the account stays; no rent moved.
    assert!(h.exists(&chan.address));
    assert_eq!(h.lamports(&chan.payer.pubkey()), payer_lamports);
    assert_eq!(h.channel(&other.address).status, ChannelStatus::Open as u8);
}

/// Finalize `secs` seconds after the request (0: at once) is refused; nothing moves.
fn finalize_before_the_grace_end_fails(secs: i64) {
    let (mut h, chan, _) = closing_fixture(1_000);
    if secs > 0 {
        h.advance(10, secs);
    }
    assert_err(&h.finalize(&chan), PaychanError::GracePeriodActive);
    assert_still_closing(&h, &chan, 1_000);
}

cases! {
    finalize_one_second_before_the_grace_end_fails => finalize_before_the_grace_end_fails(GRACE - 1);
    finalize_right_after_request_close_fails => finalize_before_the_grace_end_fails(0);
}

#[test]
fn finalize_of_an_open_channel_fails() {
    let (mut h, chan, _) = fresh_channel(1_000);
    h.advance(10, GRACE * 2);
    assert_err(&h.finalize(&chan), PaychanError::ChannelNotClosing);
    let c = h.channel(&chan.address);
    assert_eq!(c.status, ChannelStatus::Open as u8);
    assert_eq!(h.balance(&chan.payer_tokens), PAYER_BALANCE - 1_000);
    assert_eq!(h.vault(&chan.vault).outstanding, 1_000);
}

#[test]
fn finalize_of_a_channel_closed_by_the_payee_fails() {
    let mut h = Harness::new();
    let f = payee_fixture(&mut h, 1_000);
    let chan = &f.chan;
    h.request_close(chan);
    ok(f.close_without_voucher(&mut h));
    h.advance(10, GRACE);
    assert_err(&h.finalize(chan), PaychanError::ChannelNotClosing);
    assert_eq!(h.balance(&chan.payer_tokens), PAYER_BALANCE);
    assert_eq!(h.channel(&chan.address).refunded, 1_000);
}

#[test]
fn finalize_with_the_wrong_rent_payer_fails() {
    let (mut h, chan, _) = closing_fixture(1_000);
    h.advance(10, GRACE);
    let mallory = h.funded();
    let ix = finalize_ix(&chan, &chan.payer_tokens, &mallory.pubkey());
    assert_err(&h.send(&[ix], &[&mallory]), PaychanError::WrongRentPayer);
    assert_still_closing(&h, &chan, 1_000);
}

#[test]
fn finalize_refunding_a_token_account_of_someone_else_fails() {
    let (mut h, chan, _) = closing_fixture(1_000);
    h.advance(10, GRACE);
    let mallory = h.funded();
    let mallory_tokens = h.token_account(&mallory.pubkey(), 0);
    let ix = finalize_ix(&chan, &mallory_tokens, &chan.payer.pubkey());
    assert_err(&h.send(&[ix], &[&mallory]), PaychanError::WrongTokenAccount);
    assert_eq!(h.balance(&mallory_tokens), 0);
    assert_still_closing(&h, &chan, 1_000);
}

#[test]
fn finalize_with_another_payees_vault_fails() {
    let (mut h, chan, _) = closing_fixture(1_000);
    let other = h.open_channel(&Pubkey::new_unique(), 1_000);
    h.advance(10, GRACE);
    let mut ix = finalize(&chan);
    ix.accounts[1].pubkey = other.vault;
    ix.accounts[2].pubkey = other.vault_tokens;
    assert_err(&h.send_as(&[ix], &[]), PaychanError::VaultMismatch);
    assert_eq!(h.balance(&other.vault_tokens), 1_000);
    assert_eq!(h.vault(&other.vault).outstanding, 1_000);
    assert_still_closing(&h, &chan, 1_000);
}

#[test]
fn finalize_after_partial_settles_refunds_exactly_the_rest() {
    let (mut h, chan, accts) = fresh_channel(1_000);
    h.settle(&accts, &[chan.voucher(250, 0)]);
    h.request_close(&chan);
    // The payee may still settle during the grace period.
    h.advance(10, GRACE - 1);
    h.settle(&accts, &[chan.voucher(370, 0)]);
    assert_eq!(h.vault(&chan.vault).outstanding, 630);
    h.advance(1, 1);
    ok(h.finalize(&chan));

    assert_paid_and_refunded(&h, &chan, &accts.payee_tokens, 370, 1_000);
    assert_eq!(h.channel(&chan.address).deposit, 1_000);
}

#[test]
fn finalize_after_the_whole_deposit_was_settled_refunds_nothing() {
    let (mut h, chan, accts) = closing_fixture(1_000);
    h.settle(&accts, &[chan.voucher(1_000, 0)]);
    h.advance(10, GRACE);
    let meta = ok(h.finalize(&chan));
    let invoke = format!("Program {} invoke", h.token_program);
    let transfers = meta.logs.iter().filter(|l| l.starts_with(&invoke)).count();
    assert_eq!(transfers, 0, "a zero refund is no transfer");
    assert_eq!(h.balance(&chan.payer_tokens), PAYER_BALANCE - 1_000);
    assert_closed(&h, &chan, 1_000, 0);
}

#[test]
fn finalize_after_the_open_slot_window_deletes_the_channel_and_returns_the_rent() {
    let (mut h, chan, accts) = closing_fixture(1_000);
    h.settle(&accts, &[chan.voucher(100, 0)]);
    h.advance(OPEN_SLOT_WINDOW + 1, GRACE);
    let rent = h.lamports(&chan.address);
    assert!(rent > 0);
    let payer_before = h.lamports(&chan.payer.pubkey());

    ok(h.finalize(&chan));

    assert!(!h.exists(&chan.address));
    assert_eq!(h.lamports(&chan.payer.pubkey()) - payer_before, rent);
    assert_eq!(h.balance(&chan.payer_tokens), PAYER_BALANCE - 100);
    assert_eq!(h.balance(&accts.payee_tokens), 100);
    assert_eq!(h.vault(&chan.vault).outstanding, 0);
}

#[test]
fn finalize_after_the_open_slot_window_returns_the_rent_to_a_separate_rent_payer() {
    let mut h = Harness::new();
    let (chan, rent_payer) = h.open_with_rent_payer(&Pubkey::new_unique());
    h.request_close(&chan);
    h.advance(OPEN_SLOT_WINDOW + 1, GRACE);
    let rent = h.lamports(&chan.address);
    let rent_payer_before = h.lamports(&rent_payer.pubkey());
    let payer_before = h.lamports(&chan.payer.pubkey());

    // The payer is not the rent payer here.
    let ix = finalize_ix(&chan, &chan.payer_tokens, &chan.payer.pubkey());
    assert_err(&h.send_as(&[ix], &[]), PaychanError::WrongRentPayer);
    ok(h.send_as(
        &[finalize_ix(&chan, &chan.payer_tokens, &rent_payer.pubkey())],
        &[],
    ));

    assert!(!h.exists(&chan.address));
    assert_eq!(h.lamports(&rent_payer.pubkey()) - rent_payer_before, rent);
    assert_eq!(h.lamports(&chan.payer.pubkey()), payer_before);
    assert_eq!(h.balance(&chan.payer_tokens), PAYER_BALANCE);
}
