//! `close`: the payee closes cooperatively, with or without a final voucher.
use anchor_lang::{error::ErrorCode, prelude::Pubkey, solana_program::instruction::Instruction};
use paychan::{constants::OPEN_SLOT_WINDOW, error::PaychanError, state::ChannelStatus};
use paychan_voucher::SignedVoucher;
use solana_signer::Signer;

use crate::common::*;

const PAYER_BALANCE: u64 = 10_000_000;

use PayeeFixture as Fixture;
use payee_fixture as fixture;

fn close_accounts(f: &Fixture) -> CloseAccounts {
    CloseAccounts::of(&f.chan, f.payee_tokens)
}

/// `[close]` without a final voucher, or `[ed25519, close]` with one.
fn close_ixs(f: &Fixture, a: &CloseAccounts, voucher: Option<SignedVoucher>) -> Vec<Instruction> {
    match voucher {
        None => vec![close_ix(&f.chan, &f.payee.pubkey(), a, false)],
        Some(v) => vec![
            ed25519_ix(&[v]),
            close_ix(&f.chan, &f.payee.pubkey(), a, true),
        ],
    }
}

/// Asserts that closing with the final voucher `v` (and the default accounts) fails with `err`.
#[track_caller]
fn voucher_refused(h: &mut Harness, f: &Fixture, v: SignedVoucher, err: PaychanError) {
    refused(h, f, &close_accounts(f), Some(v), err);
}

/// A chain with `fixture(1_000)`.
fn setup() -> (Harness, Fixture) {
    let mut h = Harness::new();
    let f = fixture(&mut h, 1_000);
    (h, f)
}

/// Asserts that the payee's `close_ixs` fail with `err` and the open channel is untouched.
#[track_caller]
fn refused_open(
    h: &mut Harness,
    f: &Fixture,
    a: &CloseAccounts,
    v: Option<SignedVoucher>,
    err: PaychanError,
) {
    refused(h, f, a, v, err);
    assert_untouched(h, f, ChannelStatus::Open, 0, 1_000);
}

fn settle(h: &mut Harness, f: &Fixture, cumulative: u64) {
    h.settle(&f.accts, &[f.chan.voucher(cumulative, 0)]);
}

/// The payee sends `close_ixs`.
fn close(h: &mut Harness, f: &Fixture, a: &CloseAccounts, v: Option<SignedVoucher>) -> TxResult {
    h.send(&close_ixs(f, a, v), &[&f.payee])
}

/// Asserts that the payee's `close_ixs` fail with `err`.
#[track_caller]
fn refused(
    h: &mut Harness,
    f: &Fixture,
    a: &CloseAccounts,
    v: Option<SignedVoucher>,
    err: PaychanError,
) {
    assert_err(&close(h, f, a, v), err);
}

/// Asserts nothing moved and the channel is still `status` with nothing refunded.
#[track_caller]
fn assert_untouched(h: &Harness, f: &Fixture, status: ChannelStatus, settled: u64, deposit: u64) {
    let c = h.channel(&f.chan.address);
    assert_eq!(c.status, status as u8);
    assert_eq!((c.settled, c.refunded), (settled, 0));
    assert_eq!(h.balance(&f.payee_tokens), settled);
    assert_eq!(h.balance(&f.chan.payer_tokens), PAYER_BALANCE - deposit);
    assert_eq!(h.balance(&f.chan.vault_tokens), deposit - settled);
    assert_eq!(h.vault(&f.chan.vault).outstanding, deposit - settled);
}

#[test]
fn close_without_a_final_voucher_refunds_the_payer_the_unsettled_rest() {
    let (mut h, f) = setup();
    // A second channel to the same payee keeps its escrow in the shared vault.
    let other = h.open_channel(&f.payee.pubkey(), 500);
    settle(&mut h, &f, 300);
    assert_eq!(h.vault(&f.chan.vault).outstanding, 700 + 500);
    let payer_lamports = h.lamports(&f.chan.payer.pubkey());

    let a = close_accounts(&f);
    let meta = ok(close(&mut h, &f, &a, None));

    assert_eq!(h.balance(&f.chan.payer_tokens), PAYER_BALANCE - 1_000 + 700);
    assert_eq!(
        h.balance(&f.payee_tokens),
        300,
        "the payee gets nothing more"
    );
    assert_eq!(h.balance(&f.chan.vault_tokens), 500);
    assert_eq!(h.vault(&f.chan.vault).outstanding, 500);
    let c = h.channel(&f.chan.address);
    assert_eq!(c.status, ChannelStatus::Closed as u8);
    assert_eq!((c.deposit, c.settled, c.refunded), (1_000, 300, 700));
    assert_eq!(c.closure_started_at, 0);
    assert_eq!(
        transfers(&meta, &h.token_program),
        1,
        "only the refund moves tokens"
    );
    // Still inside the open-slot window: the account stays, rent not returned yet.
    assert_eq!(h.lamports(&f.chan.payer.pubkey()), payer_lamports);
    let other_state = h.channel(&other.address);
    assert_eq!(other_state.status, ChannelStatus::Open as u8);
    assert_eq!(other_state.deposit, 500);
}

#[test]
fn close_with_a_final_voucher_pays_the_increment_and_refunds_the_rest() {
    let (mut h, f) = setup();
    settle(&mut h, &f, 300);
    let a = close_accounts(&f);
    let meta = ok(close(&mut h, &f, &a, Some(f.chan.voucher(800, 0))));

    assert_eq!(h.balance(&f.payee_tokens), 800);
    assert_eq!(h.balance(&f.chan.payer_tokens), PAYER_BALANCE - 1_000 + 200);
    assert_eq!(h.balance(&f.chan.vault_tokens), 0);
    assert_eq!(h.vault(&f.chan.vault).outstanding, 0);
    let c = h.channel(&f.chan.address);
    assert_eq!(c.status, ChannelStatus::Closed as u8);
    assert_eq!((c.deposit, c.settled, c.refunded), (1_000, 800, 200));
    assert_eq!(transfers(&meta, &h.token_program), 2);
}

#[test]
fn close_with_a_final_voucher_for_the_whole_deposit_refunds_nothing() {
    let (mut h, f) = setup();
    let a = close_accounts(&f);
    let meta = ok(close(&mut h, &f, &a, Some(f.chan.voucher(1_000, 0))));

    assert_eq!(h.balance(&f.payee_tokens), 1_000);
    assert_eq!(h.balance(&f.chan.payer_tokens), PAYER_BALANCE - 1_000);
    assert_eq!(h.vault(&f.chan.vault).outstanding, 0);
    assert_closed(&h, &f.chan, 1_000, 0);
    assert_eq!(
        transfers(&meta, &h.token_program),
        1,
        "a zero refund is no transfer"
    );
}

#[test]
fn close_of_a_closing_channel_before_the_grace_end_succeeds() {
    let (mut h, f) = setup();
    h.request_close(&f.chan);
    let started = h.clock().unix_timestamp;
    h.advance(10, GRACE - 1);
    let a = close_accounts(&f);
    ok(close(&mut h, &f, &a, Some(f.chan.voucher(400, 0))));

    assert_eq!(h.balance(&f.payee_tokens), 400);
    assert_eq!(h.balance(&f.chan.payer_tokens), PAYER_BALANCE - 400);
    assert_eq!(h.vault(&f.chan.vault).outstanding, 0);
    let c = h.channel(&f.chan.address);
    assert_eq!(c.status, ChannelStatus::Closed as u8);
    assert_eq!((c.settled, c.refunded), (400, 600));
    assert_eq!(c.closure_started_at, started);
}

#[test]
fn close_with_a_final_voucher_after_the_grace_end_fails() {
    let (mut h, f) = setup();
    h.request_close(&f.chan);
    h.advance(10, GRACE);
    let v = f.chan.voucher(400, 0);
    voucher_refused(&mut h, &f, v, PaychanError::GracePeriodEnded);
    assert_untouched(&h, &f, ChannelStatus::Closing, 0, 1_000);
}

#[test]
fn close_without_a_final_voucher_after_the_grace_end_refunds_the_payer() {
    let (mut h, f) = setup();
    settle(&mut h, &f, 250);
    h.request_close(&f.chan);
    h.advance(10, GRACE + 100);
    let a = close_accounts(&f);
    ok(close(&mut h, &f, &a, None));

    assert_eq!(h.balance(&f.chan.payer_tokens), PAYER_BALANCE - 250);
    assert_eq!(h.balance(&f.payee_tokens), 250);
    assert_eq!(h.vault(&f.chan.vault).outstanding, 0);
    assert_closed(&h, &f.chan, 250, 750);
}

#[test]
fn close_by_a_stranger_fails_with_not_payee() {
    let (mut h, f) = setup();
    let mallory = h.funded();
    let a = close_accounts(&f);
    let ix = close_ix(&f.chan, &mallory.pubkey(), &a, false);
    assert_err(&h.send(&[ix], &[&mallory]), PaychanError::NotPayee);
    assert_eq!(h.balance(&f.payee_tokens), 0);
    assert_untouched(&h, &f, ChannelStatus::Open, 0, 1_000);
}

#[test]
fn close_by_the_payer_fails_with_not_payee() {
    let (mut h, f) = setup();
    let a = close_accounts(&f);
    let ix = close_ix(&f.chan, &f.chan.payer.pubkey(), &a, false);
    assert_err(&h.send(&[ix], &[&f.chan.payer]), PaychanError::NotPayee);
    assert_untouched(&h, &f, ChannelStatus::Open, 0, 1_000);
}

#[test]
fn close_requires_the_payee_signature() {
    let (mut h, f) = setup();
    let a = close_accounts(&f);
    let mut ix = close_ix(&f.chan, &f.payee.pubkey(), &a, false);
    ix.accounts[0].is_signer = false;
    assert_anchor_err(&h.send_as(&[ix], &[]), ErrorCode::AccountNotSigner);
    assert_untouched(&h, &f, ChannelStatus::Open, 0, 1_000);
}

#[test]
fn close_with_the_wrong_rent_payer_fails() {
    let (mut h, f) = setup();
    let a = CloseAccounts {
        rent_payer: f.payee.pubkey(),
        ..close_accounts(&f)
    };
    refused_open(&mut h, &f, &a, None, PaychanError::WrongRentPayer);
}

#[test]
fn close_paying_a_token_account_not_owned_by_the_payee_fails() {
    let (mut h, f) = setup();
    let decoy = h.token_account(&Pubkey::new_unique(), 0);
    let a = CloseAccounts {
        payee_tokens: decoy,
        ..close_accounts(&f)
    };
    let v = f.chan.voucher(500, 0);
    refused(&mut h, &f, &a, Some(v), PaychanError::WrongTokenAccount);
    assert_eq!(h.balance(&decoy), 0);
    assert_untouched(&h, &f, ChannelStatus::Open, 0, 1_000);
}

#[test]
fn close_refunding_a_token_account_not_owned_by_the_payer_fails() {
    let (mut h, f) = setup();
    // The payee tries to route the refund to itself.
    let decoy = h.token_account(&f.payee.pubkey(), 0);
    let a = CloseAccounts {
        payer_tokens: decoy,
        ..close_accounts(&f)
    };
    refused(&mut h, &f, &a, None, PaychanError::WrongTokenAccount);
    assert_eq!(h.balance(&decoy), 0);
    assert_untouched(&h, &f, ChannelStatus::Open, 0, 1_000);
}

#[test]
fn close_with_another_payees_vault_fails() {
    let (mut h, f) = setup();
    let other = h.open_channel(&Pubkey::new_unique(), 1_000);
    let a = close_accounts(&f);
    let mut ixs = close_ixs(&f, &a, None);
    ixs[0].accounts[2].pubkey = other.vault;
    ixs[0].accounts[3].pubkey = other.vault_tokens;
    // With the other vault's own payout account, so only the channel mismatches.
    ixs[0].accounts[4].pubkey =
        paychan_sdk::pda::payout(&other.payee, &other.mint, &other.token_program);
    assert_err(&h.send(&ixs, &[&f.payee]), PaychanError::VaultMismatch);
    assert_eq!(h.vault(&other.vault).outstanding, 1_000);
    assert_eq!(h.balance(&other.vault_tokens), 1_000);
    assert_untouched(&h, &f, ChannelStatus::Open, 0, 1_000);
}

#[test]
fn close_with_a_final_voucher_for_another_channel_fails() {
    let (mut h, f) = setup();
    let other = h.open_channel(&Pubkey::new_unique(), 1_000);
    let v = other.voucher(500, 0);
    voucher_refused(&mut h, &f, v, PaychanError::VoucherChannelMismatch);
    assert_untouched(&h, &f, ChannelStatus::Open, 0, 1_000);
    assert_eq!(h.channel(&other.address).settled, 0);
}

#[test]
fn close_with_a_final_voucher_from_the_wrong_signer_fails() {
    let (mut h, f) = setup();
    let forged = f.chan.forged_voucher(500);
    let a = close_accounts(&f);
    refused_open(&mut h, &f, &a, Some(forged), PaychanError::WrongSigner);
}

#[test]
fn close_with_an_expired_final_voucher_fails() {
    let (mut h, f) = setup();
    let now = h.clock().unix_timestamp;
    let a = close_accounts(&f);
    let v = f.chan.voucher(500, now - 1);
    refused_open(&mut h, &f, &a, Some(v), PaychanError::VoucherExpired);
}

#[test]
fn close_with_a_final_voucher_expiring_this_second_succeeds() {
    let (mut h, f) = setup();
    let now = h.clock().unix_timestamp;
    let a = close_accounts(&f);
    ok(close(&mut h, &f, &a, Some(f.chan.voucher(500, now))));
    assert_eq!(h.balance(&f.payee_tokens), 500);
    assert_eq!(h.balance(&f.chan.payer_tokens), PAYER_BALANCE - 500);
}

#[test]
fn close_with_a_final_voucher_not_above_settled_fails() {
    let (mut h, f) = setup();
    settle(&mut h, &f, 300);
    for cumulative in [300, 299, 0] {
        let v = f.chan.voucher(cumulative, 0);
        voucher_refused(&mut h, &f, v, PaychanError::CumulativeNotIncreasing);
    }
    assert_untouched(&h, &f, ChannelStatus::Open, 300, 1_000);
}

#[test]
fn close_with_a_final_voucher_above_the_deposit_fails() {
    let (mut h, f) = setup();
    let v = f.chan.voucher(1_001, 0);
    voucher_refused(&mut h, &f, v, PaychanError::CumulativeExceedsDeposit);
    assert_untouched(&h, &f, ChannelStatus::Open, 0, 1_000);
}

#[test]
fn close_with_final_voucher_but_no_ed25519_instruction_fails() {
    let (mut h, f) = setup();
    let a = close_accounts(&f);
    let ix = close_ix(&f.chan, &f.payee.pubkey(), &a, true);
    assert_err(
        &h.send(&[ix], &[&f.payee]),
        PaychanError::MissingEd25519Instruction,
    );
    assert_untouched(&h, &f, ChannelStatus::Open, 0, 1_000);
}

#[test]
fn close_with_a_final_voucher_and_a_fake_instructions_sysvar_fails() {
    let (mut h, f) = setup();
    let fake = Pubkey::new_unique();
    h.set_raw_account(fake, anchor_lang::system_program::ID, vec![0u8; 512]);
    let a = close_accounts(&f);
    let mut ixs = close_ixs(&f, &a, Some(f.chan.voucher(500, 0)));
    ixs[1].accounts[9].pubkey = fake;
    assert_err(
        &h.send(&ixs, &[&f.payee]),
        PaychanError::InvalidInstructionsSysvar,
    );
    assert_untouched(&h, &f, ChannelStatus::Open, 0, 1_000);
}

#[test]
fn close_twice_fails_with_channel_closed() {
    let (mut h, f) = setup();
    settle(&mut h, &f, 100);
    let a = close_accounts(&f);
    ok(close(&mut h, &f, &a, None));
    refused(&mut h, &f, &a, None, PaychanError::ChannelClosed);
    let v = f.chan.voucher(200, 0);
    voucher_refused(&mut h, &f, v, PaychanError::ChannelClosed);
    assert_eq!(h.balance(&f.chan.payer_tokens), PAYER_BALANCE - 100);
    assert_eq!(h.balance(&f.payee_tokens), 100);
    let c = h.channel(&f.chan.address);
    assert_eq!((c.settled, c.refunded), (100, 900));
}

#[test]
fn close_after_the_open_slot_window_deletes_the_channel_and_returns_the_rent() {
    let (mut h, f) = setup();
    h.advance(OPEN_SLOT_WINDOW + 1, 600);
    let rent = h.lamports(&f.chan.address);
    assert!(rent > 0);
    // The payer paid the rent; the payee signs and pays the fee.
    let payer_before = h.lamports(&f.chan.payer.pubkey());
    let a = close_accounts(&f);
    ok(close(&mut h, &f, &a, Some(f.chan.voucher(100, 0))));

    assert!(!h.exists(&f.chan.address));
    assert_eq!(h.lamports(&f.chan.payer.pubkey()) - payer_before, rent);
    assert_eq!(h.balance(&f.payee_tokens), 100);
    assert_eq!(h.balance(&f.chan.payer_tokens), PAYER_BALANCE - 100);
    assert_eq!(h.vault(&f.chan.vault).outstanding, 0);
    // Nothing is left to reclaim.
    let res = h.send_as(&[reclaim_ix(&f.chan, &f.chan.payer.pubkey())], &[]);
    assert_anchor_err(&res, ErrorCode::AccountOwnedByWrongProgram);
}

#[test]
fn close_at_the_last_slot_of_the_open_slot_window_keeps_the_closed_account() {
    let (mut h, f) = setup();
    h.advance(OPEN_SLOT_WINDOW, 600);
    let rent = h.lamports(&f.chan.address);
    let payer_before = h.lamports(&f.chan.payer.pubkey());
    let a = close_accounts(&f);
    ok(close(&mut h, &f, &a, None));

    assert!(h.exists(&f.chan.address));
    assert_eq!(h.lamports(&f.chan.address), rent);
    assert_eq!(h.lamports(&f.chan.payer.pubkey()), payer_before);
    assert_closed(&h, &f.chan, 0, 1_000);
    assert_eq!(h.balance(&f.chan.payer_tokens), PAYER_BALANCE);
    // The rent comes back through reclaim one slot later.
    h.advance(1, 1);
    ok(h.send_as(&[reclaim_ix(&f.chan, &f.chan.payer.pubkey())], &[]));
    assert!(!h.exists(&f.chan.address));
    assert_eq!(h.lamports(&f.chan.payer.pubkey()) - payer_before, rent);
}
