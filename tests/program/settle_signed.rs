//! `settle_signed`: vouchers verified by the program itself (no Ed25519
//! precompile). Happy paths with exact balances, state, events and fees,
//! then one failing test per guard, each asserting the exact error.
use anchor_lang::prelude::Pubkey;
use paychan::{constants::MAX_SETTLE_SIGNED_VOUCHERS, error::PaychanError};
use paychan_voucher::SignedVoucher;
use solana_instruction_error::InstructionError;
use solana_signer::Signer;
use solana_transaction_error::TransactionError;

use crate::common::*;

/// Only the `settle_signed` instruction, without a compute-budget instruction.
fn settle_signed_only(
    accts: &SettleAccounts,
    vouchers: &[SignedVoucher],
) -> Vec<anchor_lang::solana_program::instruction::Instruction> {
    vec![accts.settle_signed_ix(vouchers)]
}

#[test]
fn settle_signed_pays_the_increment_and_advances_the_watermark() {
    let (_, chan, _, meta, fee) = both::settle_300_then_450(SettleBy::Program);
    // One transaction signature, no precompile signature.
    assert_eq!(fee, 5_000);
    assert!(
        !meta
            .logs
            .iter()
            .any(|l| l.contains(&ed25519_program_id().to_string())),
        "no Ed25519 precompile instruction: {:#?}",
        meta.logs
    );
    assert_eq!(settled_events(&meta), vec![(chan.address, 300, 300)]);
}

#[test]
fn settle_signed_up_to_the_full_deposit_and_with_an_expiry() {
    let (mut h, chan, accts) = fresh_channel(1_000);
    let now = h.clock().unix_timestamp;
    // Valid at its expiry second.
    h.settle_signed(&accts, &[chan.voucher(400, now)]);
    h.settle_signed(&accts, &[chan.voucher(1_000, 0)]);
    assert_eq!(h.balance(&accts.payee_tokens), 1_000);
    assert_eq!(h.balance(&chan.vault_tokens), 0);
    assert_eq!(h.vault(&chan.vault).outstanding, 0);
    assert_eq!(h.channel(&chan.address).settled, 1_000);
}

/// The cap: vouchers of as many different payers as fit one packet, in one
/// v0 transaction with a lookup table, paid in one transfer, for one
/// transaction fee.
#[test]
fn settle_signed_the_most_vouchers_of_different_payers_in_one_instruction() {
    let mut h = Harness::new();
    let n = u64::from(MAX_SETTLE_SIGNED_VOUCHERS);
    let (chans, accts) = channels_to_one_payee(&mut h, n, |i| 2_000 + i);
    let table = settle_table(&mut h, &accts, accts.token_program, &chans);
    h.advance(1, 1);
    h.settle_signed(&accts, &[chans[0].voucher(50, 0)]);
    let payer = h.fee_payer.insecure_clone();
    let ixs = settle_signed_ixs(&accts, &hundreds(&chans));
    let (res, fee) = fee_of(&mut h, |h| {
        h.send_v0(&ixs, &[&payer], std::slice::from_ref(&table))
    });
    let meta = ok(res);
    assert_eq!(fee, 5_000, "{n} vouchers for one signature's fee");
    assert_hundreds_paid_in_one_transfer(&h, &accts, &chans, 2_000, &meta);
    // Within the SDK's compute-unit limit, and above the default 200,000 CU
    // of one instruction (why the transaction carries a compute-budget
    // instruction).
    let limit = u64::from(paychan_sdk::ix::settle_signed_compute_units(n as usize));
    assert!(
        meta.compute_units_consumed <= limit && meta.compute_units_consumed > 200_000,
        "settle_signed N={n} used {} CU (limit {limit})",
        meta.compute_units_consumed
    );
}

#[test]
fn without_a_compute_budget_instruction_the_cap_exceeds_the_default_limit() {
    let mut h = Harness::new();
    let n = usize::from(MAX_SETTLE_SIGNED_VOUCHERS);
    let (chans, accts) = channels_to_one_payee(&mut h, n as u64, |_| 1_000);
    let payee_tokens = accts.payee_tokens;
    let vouchers: Vec<_> = chans.iter().map(|c| c.voucher(10, 0)).collect();
    let res = h.send_as(&settle_signed_only(&accts, &vouchers), &[]);
    // The runtime stops the program at the meter (what it reports for a
    // program that runs out of compute units).
    assert_tx_err(
        &res,
        TransactionError::InstructionError(0, InstructionError::ProgramFailedToComplete),
    );
    let logs = &res.as_ref().err().unwrap().meta.logs;
    assert!(
        logs.iter()
            .any(|l| l.contains("consumed 200000 of 200000 compute units")),
        "{logs:#?}"
    );
    assert_eq!(h.balance(&payee_tokens), 0);
    h.settle_signed(&accts, &vouchers);
    assert_eq!(h.balance(&payee_tokens), 10 * n as u64);
}

#[test]
fn settle_signed_with_no_channels_fails() {
    let (mut h, _, accts) = fresh_channel(1_000);
    h.settle_signed_err(&accts, &[], PaychanError::InvalidChannelCount);
}

cases! {
    settle_signed_refuses_more_vouchers_than_fit_one_transaction => both::more_vouchers_than_the_cap_are_refused(SettleBy::Program, MAX_SETTLE_SIGNED_VOUCHERS);
    a_voucher_signed_by_another_key_is_refused => both::a_voucher_signed_by_another_key_is_refused(SettleBy::Program);
    an_expired_voucher_is_refused => both::an_expired_voucher_is_refused(SettleBy::Program);
    the_same_channel_twice_is_refused => both::the_same_channel_twice_is_refused(SettleBy::Program);
    a_channel_passed_read_only_is_refused => both::a_channel_passed_read_only_is_refused(SettleBy::Program);
    an_account_that_is_not_a_channel_is_refused => both::an_account_that_is_not_a_channel_is_refused(SettleBy::Program);
    a_channel_of_another_vault_is_refused => both::a_channel_of_another_vault_is_refused(SettleBy::Program);
    a_voucher_above_the_deposit_is_refused => both::a_voucher_above_the_deposit_is_refused(SettleBy::Program);
}

#[test]
fn the_voucher_count_must_match_the_channels() {
    let (mut h, a, b, accts) = two_channels();
    // Two vouchers, one channel.
    let mut ix = accts.settle_signed_ix(&[a.voucher(10, 0), b.voucher(10, 0)]);
    ix.accounts.pop();
    let res = h.send_as(&[paychan_sdk::ix::compute_unit_limit(400_000), ix], &[]);
    assert_err(&res, PaychanError::SignatureCountMismatch);
    // One voucher, two channels.
    let mut ix = accts.settle_signed_ix(&[a.voucher(10, 0)]);
    ix.accounts
        .push(anchor_lang::prelude::AccountMeta::new(b.address, false));
    let res = h.send_as(&[paychan_sdk::ix::compute_unit_limit(400_000), ix], &[]);
    assert_err(&res, PaychanError::SignatureCountMismatch);
    assert_eq!(h.balance(&accts.payee_tokens), 0);
}

#[test]
fn a_tampered_signature_amount_or_expiry_is_refused() {
    let (mut h, chan, accts) = fresh_channel(1_000);
    let good = chan.voucher(500, 0);
    for (what, tamper) in [
        (
            "R",
            Box::new(|v: &mut SignedVoucher| v.signature[0] ^= 1)
                as Box<dyn Fn(&mut SignedVoucher)>,
        ),
        ("s", Box::new(|v: &mut SignedVoucher| v.signature[40] ^= 1)),
        (
            "amount",
            Box::new(|v: &mut SignedVoucher| v.voucher.cumulative_amount += 1),
        ),
        (
            "expiry",
            Box::new(|v: &mut SignedVoucher| v.voucher.expires_at = i64::MAX),
        ),
    ] {
        let mut v = good;
        tamper(&mut v);
        let res = h.settle_by(SettleBy::Program, &accts, &[v]);
        assert_err(&res, PaychanError::InvalidSignature);
        assert_eq!(
            failed_instruction(&res),
            Some(1),
            "tampered {what}: the program refuses"
        );
    }
    // s + L: the same scalar mod L, refused as non-canonical.
    let mut v = good;
    let mut s: [u8; 32] = v.signature[32..].try_into().unwrap();
    let mut carry = 0u16;
    for (b, l) in s.iter_mut().zip(paychan_voucher::strict::L) {
        let t = u16::from(*b) + u16::from(l) + carry;
        *b = t as u8;
        carry = t >> 8;
    }
    assert_eq!(carry, 0);
    v.signature[32..].copy_from_slice(&s);
    h.settle_signed_err(&accts, &[v], PaychanError::InvalidSignature);
    assert_eq!(h.channel(&chan.address).settled, 0);
    h.settle_signed(&accts, &[good]);
    assert_eq!(h.balance(&accts.payee_tokens), 500);
}

/// The message is rebuilt from the channel account passed: a voucher of
/// channel A (even one signed by the same key) cannot pay from channel B.
#[test]
fn a_voucher_of_another_channel_of_the_same_signer_is_refused() {
    let mut h = Harness::new();
    let payee = Pubkey::new_unique();
    let signer = new_signing_key();
    let a = h.open_channel_with_signer(&payee, 1_000, &signer);
    let b = h.open_channel_with_signer(&payee, 1_000, &signer);
    let accts = SettleAccounts::for_chan(&a, h.payout_account(&payee, 0));
    let of_a = a.voucher(500, 0);
    let mut ix = accts.settle_signed_ix(&[of_a]);
    let last = ix.accounts.len() - 1;
    ix.accounts[last].pubkey = b.address;
    let res = h.send_as(&[paychan_sdk::ix::compute_unit_limit(400_000), ix], &[]);
    assert_err(&res, PaychanError::InvalidSignature);
    assert_eq!(h.channel(&b.address).settled, 0);
    assert_eq!(h.channel(&a.address).settled, 0);
}

#[test]
fn the_vault_accounts_are_pinned() {
    let (mut h, chan, accts) = fresh_channel(1_000);
    let v = chan.voucher(100, 0);
    let mut elsewhere = accts;
    elsewhere.payee_tokens = h.token_account(&chan.payee, 0);
    let mut other_tokens = accts;
    other_tokens.vault_tokens = h.token_account(&chan.vault, 1_000);
    let mut other_mint = accts;
    other_mint.mint = h.create_mint(anchor_spl::token::ID);
    let mut other_program = accts;
    other_program.token_program = anchor_spl::token_2022::ID;
    for (what, bad, err) in [
        ("payout", elsewhere, PaychanError::WrongTokenAccount),
        ("vault tokens", other_tokens, PaychanError::VaultMismatch),
        ("mint", other_mint, PaychanError::VaultMismatch),
        ("token program", other_program, PaychanError::VaultMismatch),
    ] {
        let res = h.settle_by(SettleBy::Program, &bad, &[v]);
        assert_eq!(custom_code(&res), Some(6000 + err as u32), "another {what}");
    }
    assert_eq!(h.balance(&elsewhere.payee_tokens), 0);
    h.settle_signed(&accts, &[v]);
    assert_eq!(h.balance(&accts.payee_tokens), 100);
}

/// A voucher at or below `settled` is a no-op, after its signature, vault
/// and expiry have passed.
#[test]
fn a_voucher_at_or_below_settled_is_a_no_op_once_checked() {
    let (mut h, chan, accts) =
        both::a_voucher_at_or_below_settled_is_still_checked(SettleBy::Program);
    let meta = h.settle_signed(&accts, &[chan.voucher(400, 0)]);
    assert!(events::<paychan::events::ChannelSettled>(&meta.logs).is_empty());
    h.settle_signed(&accts, &[chan.voucher(500, 0)]);
    assert_eq!(h.balance(&accts.payee_tokens), 500);
    assert_eq!(h.channel(&chan.address).settled, 500);
}

/// Payer A settles its own voucher first; the payee's settle of A's and B's
/// vouchers still pays B's increment.
#[test]
fn a_payer_settling_its_own_voucher_first_cannot_void_a_multi_payer_settle_signed() {
    both::a_front_run_cannot_void_a_multi_payer_settle(SettleBy::Program);
}

#[test]
fn closing_and_closed_channels() {
    let mut h = Harness::new();
    let f = payee_fixture(&mut h, 1_000);
    let (chan, accts) = (&f.chan, &f.accts);
    h.request_close(chan);
    h.advance(10, GRACE - 1);
    h.settle_signed(accts, &[chan.voucher(600, 0)]);
    assert_eq!(h.balance(&f.payee_tokens), 600);
    h.advance(1, 1);
    let higher = chan.voucher(700, 0);
    h.settle_signed_err(accts, &[higher], PaychanError::GracePeriodEnded);
    // After the close, a higher voucher fails and one at `settled` is a no-op.
    ok(f.close_without_voucher(&mut h));
    h.settle_signed_err(accts, &[higher], PaychanError::ChannelClosed);
    h.settle_signed(accts, &[chan.voucher(600, 0)]);
    assert_eq!(h.balance(&f.payee_tokens), 600);
}

/// The payee's cheapest close: the final voucher by `settle_signed` and
/// `close` without a voucher, in one transaction with one signature.
#[test]
fn settle_signed_then_close_in_one_transaction() {
    let mut h = Harness::new();
    let PayeeFixture {
        chan,
        payee,
        payee_tokens,
        accts,
    } = payee_fixture(&mut h, 1_000);
    h.request_close(&chan);
    let close = CloseAccounts::of(&chan, payee_tokens);
    let close_accounts = channel_accounts(&chan, &close.payer_tokens, &close.rent_payer);
    let ixs =
        paychan_sdk::ix::settle_signed_and_close(&accts, &chan.voucher(640, 0), &close_accounts);
    assert_eq!(ixs[2], close_ix(&chan, &payee.pubkey(), &close, false));
    let before = h.lamports(&payee.pubkey());
    let payer_tokens_before = h.balance(&chan.payer_tokens);
    ok(h.send(&ixs, &[&payee]));
    assert_eq!(before - h.lamports(&payee.pubkey()), 5_000);
    assert_eq!(h.balance(&payee_tokens), 640);
    assert_eq!(h.balance(&chan.payer_tokens), payer_tokens_before + 360);
    let c = h.channel(&chan.address);
    assert_eq!((c.settled, c.refunded), (640, 360));
    assert_eq!(c.status, paychan::state::ChannelStatus::Closed as u8);
}

#[test]
fn settle_signed_works_for_token_2022_mints_and_version_1_channels() {
    let mut h = Harness::with_token_program(anchor_spl::token_2022::ID);
    let (chan, accts) = settle_fixture(&mut h, 1_000);
    h.set_channel_version(&chan.address, 1);
    h.settle_signed(&accts, &[chan.voucher(250, 0)]);
    assert_eq!(h.balance(&accts.payee_tokens), 250);
    assert_eq!(h.channel(&chan.address).settled, 250);
    assert_eq!(h.channel(&chan.address).version, 1);
}

/// `settle` and `settle_signed` advance the same watermark.
#[test]
fn settle_and_settle_signed_share_the_watermark() {
    let (mut h, chan, accts) = fresh_channel(1_000);
    h.settle(&accts, &[chan.voucher(200, 0)]);
    h.settle_signed(&accts, &[chan.voucher(500, 0)]);
    let meta = h.settle(&accts, &[chan.voucher(300, 0)]);
    assert!(events::<paychan::events::ChannelSettled>(&meta.logs).is_empty());
    assert_eq!(h.balance(&accts.payee_tokens), 500);
    assert_eq!(h.channel(&chan.address).settled, 500);
}
