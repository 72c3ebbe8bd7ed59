//! The program security review (issue 16), tried as an attacker would: each
//! finding as a test on the real `.so`, next to the guard that answers it.
use anchor_lang::{error::ErrorCode, prelude::Pubkey};
use paychan::{
    constants::{CHANNEL_VERSION, MAX_SETTLE_BATCH_CHANNELS, MAX_SETTLE_VOUCHERS, VAULT_VERSION},
    error::PaychanError,
    state::ChannelStatus,
};
use solana_signer::Signer;

use crate::common::*;

// 1. No vault can forget what it owes.

/// With the all-zero payee, every `open` re-ran the vault's initialisation
/// and reset `outstanding` to the new deposit, so earlier payers' refunds
/// failed and their tokens stayed in the vault for ever.
#[test]
fn attack_default_payee_cannot_reset_a_vault() {
    let mut h = Harness::new();
    let nobody = Pubkey::default();
    let p = OpenParams::default();
    let (victim, res) = h.try_open(&nobody, &p);
    assert_err(&res, PaychanError::InvalidPayee);
    let attacker = h.prepare(&nobody, &OpenParams { deposit: 1, ..p });
    let res = h.send(
        &[open_ix(
            &attacker,
            &OpenParams {
                deposit: 1,
                ..OpenParams::default()
            },
        )],
        &[&attacker.payer],
    );
    assert_err(&res, PaychanError::InvalidPayee);
    assert!(!h.exists(&victim.vault));
    assert_eq!(h.balance(&victim.payer_tokens), p.payer_balance);
}

/// A later `open` adds to what a live vault owes and never resets it: every
/// payer gets its whole deposit back.
#[test]
fn a_later_open_never_resets_what_the_vault_owes() {
    let mut h = Harness::new();
    let payee = Pubkey::new_unique();
    let first = h.open_channel(&payee, 1_000);
    let second = h.open_channel(&payee, 1);
    let vault = h.vault(&first.vault);
    assert_eq!(vault.outstanding, 1_001);
    assert_eq!(vault.version, VAULT_VERSION);
    assert_eq!(
        vault.payout,
        paychan_sdk::pda::payout(&payee, &h.mint, &h.token_program)
    );
    for chan in [&first, &second] {
        h.request_close(chan);
    }
    h.advance(1, GRACE);
    for chan in [&first, &second] {
        let before = h.balance(&chan.payer_tokens);
        let ix = finalize_ix(chan, &chan.payer_tokens, &chan.payer.pubkey());
        ok(h.send_as(&[ix], &[]));
        let deposit = if chan.address == first.address {
            1_000
        } else {
            1
        };
        assert_eq!(h.balance(&chan.payer_tokens), before + deposit);
    }
    assert_eq!(h.vault(&first.vault).outstanding, 0);
    assert_eq!(h.balance(&first.vault_tokens), 0);
}

// 2. A payer cannot make a multi-payer `settle` fail.

/// Payer A settles its own channel's voucher (it holds it: its session key
/// signed it) just before the payee's settle of A's and B's vouchers; the
/// payee's settle used to fail as a whole (CumulativeNotIncreasing).
#[test]
fn a_payer_settling_its_own_voucher_first_cannot_void_a_multi_payer_settle() {
    let (mut h, a, b, accts) =
        both::a_front_run_cannot_void_a_multi_payer_settle(SettleBy::Precompile);
    assert_eq!(h.channel(&a.address).settled, 300);
    assert_eq!(h.vault(&a.vault).outstanding, 1_300);
    // A voucher below `settled` is a no-op too.
    h.settle(&accts, &[a.voucher(200, 0), b.voucher(450, 0)]);
    assert_eq!(h.balance(&accts.payee_tokens), 750);
    assert_eq!(h.channel(&a.address).settled, 300);
}

cases! {
    a_voucher_at_or_below_settled_still_needs_its_signer_vault_and_expiry => both::a_voucher_at_or_below_settled_is_still_checked(SettleBy::Precompile);
    settle_refuses_more_vouchers_than_fit_one_transaction => both::more_vouchers_than_the_cap_are_refused(SettleBy::Precompile, MAX_SETTLE_VOUCHERS);
}

// 3. A batch voucher is not voided by a channel that already reached its target.

/// The payee closes `chan` at once, without a final voucher (the account
/// stays, Closed, until its open-slot window passes).
fn close_now(h: &mut Harness, b: &Batch, chan: &Chan) {
    ok(h.close_without_voucher(chan, &b.payee, b.accts.payee_tokens));
    assert_eq!(h.channel(&chan.address).status, ChannelStatus::Closed as u8);
}

/// Two channels X and Y of one signer; X settled to `x_settled` by a v1
/// voucher, then closed; then the batch voucher with targets X 100, Y 200.
fn batch_after_closing_x(x_settled: u64) -> (Harness, Batch, TxResult) {
    let mut h = Harness::new();
    let b = Batch::with_deposits(&mut h, 2, |_| 1_000);
    let x = &b.chans[0];
    h.settle(&b.accts, &[x.voucher(x_settled, 0)]);
    close_now(&mut h, &b, x);
    let res = h.send_as(&b.ixs(&[100, 200], 0), &[]);
    (h, b, res)
}

#[test]
fn a_batch_voucher_is_not_voided_by_a_channel_that_met_its_target_and_closed() {
    // X reaches its batch target (100) with a v1 voucher, then closes.
    let (h, b, res) = batch_after_closing_x(100);
    ok(res);
    assert_eq!(h.channel(&b.chans[1].address).settled, 200);
    assert_eq!(h.channel(&b.chans[0].address).settled, 100);
    assert_eq!(h.balance(&b.accts.payee_tokens), 300);
}

#[test]
fn a_batch_target_unmet_on_a_closed_channel_still_fails() {
    let (h, b, res) = batch_after_closing_x(50);
    assert_err(&res, PaychanError::ChannelClosed);
    assert_eq!(h.channel(&b.chans[1].address).settled, 0);
    assert_eq!(h.balance(&b.accts.payee_tokens), 50);
}

// 4. Caps that fit a real transaction (the capacity test measures them).

#[test]
fn settle_batch_refuses_more_channels_than_fit_one_transaction() {
    let mut h = Harness::new();
    let n = usize::from(MAX_SETTLE_BATCH_CHANNELS) + 1;
    let b = Batch::with_deposits(&mut h, n, |_| 1_000);
    // Without a compute-budget instruction one more channel fits the 64
    // account locks (the cap counts one, as senders setting a priority fee
    // need it); the program refuses it.
    let ixs = b.ixs(&vec![10; n], 0);
    assert_err(&h.send_as(&ixs, &[]), PaychanError::InvalidChannelCount);
    let mut ixs = vec![paychan_sdk::ix::compute_unit_limit(1_400_000)];
    ixs.extend(settle_batch_ixs(
        &b.accts,
        &b.signer,
        &b.addresses()[..n - 1],
        &vec![10; n - 1],
        0,
    ));
    ok(h.send_as(&ixs, &[]));
    assert_eq!(h.balance(&b.accts.payee_tokens), 10 * (n as u64 - 1));
}

// 5. Upgrade-safe accounts.

/// Every channel opened so far carries layout version 1: whatever version
/// new channels get, such a channel must keep settling, topping up and
/// closing (instructions keep the version it was written with).
#[test]
fn a_channel_written_in_layout_version_1_keeps_working() {
    let mut h = Harness::new();
    let PayeeFixture {
        chan, payee, accts, ..
    } = payee_fixture(&mut h, 1_000);
    h.set_channel_version(&chan.address, 1);
    h.settle(&accts, &[chan.voucher(300, 0)]);
    let payer = chan.payer.insecure_clone();
    ok(h.send(
        &[top_up_ix(&chan, &payer.pubkey(), &chan.payer_tokens, 500)],
        &[&payer],
    ));
    assert_eq!(h.channel(&chan.address).version, 1);
    let a = CloseAccounts::of(&chan, accts.payee_tokens);
    ok(h.close_with_voucher(&chan, &payee, &a, chan.voucher(400, 0)));
    let c = h.channel(&chan.address);
    assert_eq!((c.version, c.settled, c.refunded), (1, 400, 1_100));
    assert_eq!(h.balance(&accts.payee_tokens), 400);
}

#[test]
fn a_channel_in_a_layout_version_this_program_does_not_know_is_refused() {
    let (mut h, chan, accts) = fresh_channel(1_000);
    for version in [0, CHANNEL_VERSION + 1] {
        h.set_channel_version(&chan.address, version);
        let voucher = chan.voucher(300, 0);
        h.settle_err(&accts, &[voucher], PaychanError::UnsupportedVersion);
    }
    assert_eq!(h.balance(&accts.payee_tokens), 0);
}

#[test]
fn a_version_1_vault_is_migrated_and_serves_its_channels_again() {
    let (mut h, chan, accts) = fresh_channel(1_000);
    let (payee, payout) = (chan.payee, accts.payee_tokens);
    h.settle(&accts, &[chan.voucher(100, 0)]);
    h.write_v1_vault(&chan.vault);
    let v1_lamports = h.lamports(&chan.vault);
    // The current program cannot read the old layout until it is migrated.
    let res = h.settle_by(SettleBy::Precompile, &accts, &[chan.voucher(300, 0)]);
    assert_anchor_err(&res, ErrorCode::AccountDidNotDeserialize);

    let migrator = h.funded();
    let before = h.lamports(&migrator.pubkey());
    let ix = paychan_sdk::ix::migrate_vault(&migrator.pubkey(), &payee, &h.mint);
    let meta = ok(h.send(std::slice::from_ref(&ix), &[&migrator]));
    let vault = h.vault(&chan.vault);
    assert_eq!(vault.version, VAULT_VERSION);
    assert_eq!(vault.payout, payout);
    assert_eq!(vault.outstanding, 900);
    assert_eq!((vault.payee, vault.mint), (payee, h.mint));
    let size = 8 + <paychan::state::PayeeVault as anchor_lang::Space>::INIT_SPACE;
    let rent = h.svm.minimum_balance_for_rent_exemption(size);
    assert_eq!(h.lamports(&chan.vault), rent);
    assert_eq!(
        before - h.lamports(&migrator.pubkey()),
        (rent - v1_lamports) + meta.fee
    );
    let migrated = event::<paychan::events::VaultMigrated>(&meta.logs).expect("event");
    assert_eq!(
        (migrated.from_version, migrated.to_version),
        (1, VAULT_VERSION)
    );

    // Its channel settles and refunds again; a second migration is refused.
    h.settle(&accts, &[chan.voucher(300, 0)]);
    assert_eq!(h.balance(&payout), 300);
    assert_err(
        &h.send(&[ix], &[&migrator]),
        PaychanError::UnsupportedVersion,
    );
    h.request_close(&chan);
    h.advance(1, GRACE);
    ok(h.finalize(&chan));
    assert_eq!(
        h.balance(&chan.payer_tokens),
        OpenParams::default().payer_balance - 300
    );
    assert_eq!(h.vault(&chan.vault).outstanding, 0);
}

#[test]
fn migrate_vault_refuses_anything_but_a_version_1_vault() {
    let mut h = Harness::new();
    let payee = Pubkey::new_unique();
    let chan = h.open_channel(&payee, 1_000);
    let migrator = h.funded();
    let mut ix = paychan_sdk::ix::migrate_vault(&migrator.pubkey(), &payee, &h.mint);
    // A channel account of this program.
    ix.accounts[1].pubkey = chan.address;
    assert_err(
        &h.send(&[ix.clone()], &[&migrator]),
        PaychanError::UnsupportedVersion,
    );
    // An account of another program (the vault's token account).
    ix.accounts[1].pubkey = chan.vault_tokens;
    assert_err(
        &h.send(&[ix], &[&migrator]),
        PaychanError::UnsupportedVersion,
    );
    assert_eq!(h.vault(&chan.vault).outstanding, 1_000);
}

// 6. Payouts go where the payee looks.

/// Anyone can create a token account owned by the payee (in any mint it
/// likes, with a close authority of its own on Token-2022, …); a
/// permissionless settle must not pay there.
#[test]
fn settle_refuses_a_payee_owned_account_other_than_its_payout_account() {
    let (mut h, chan, accts) = fresh_channel(1_000);
    let mut elsewhere = accts;
    elsewhere.payee_tokens = h.token_account(&chan.payee, 0);
    let voucher = chan.voucher(100, 0);
    h.settle_err(&elsewhere, &[voucher], PaychanError::WrongTokenAccount);
    assert_eq!(h.balance(&elsewhere.payee_tokens), 0);
    h.settle(&accts, &[chan.voucher(100, 0)]);
    assert_eq!(h.balance(&accts.payee_tokens), 100);
}

#[test]
fn close_refuses_a_payee_owned_account_other_than_its_payout_account() {
    let mut h = Harness::new();
    let payee = h.funded();
    let chan = h.open_channel(&payee.pubkey(), 1_000);
    let payout = h.payout_account(&payee.pubkey(), 0);
    let elsewhere = h.token_account(&payee.pubkey(), 0);
    let v = chan.voucher(400, 0);
    let a = CloseAccounts::of(&chan, elsewhere);
    let res = h.close_with_voucher(&chan, &payee, &a, v);
    assert_err(&res, PaychanError::WrongTokenAccount);
    let a = CloseAccounts::of(&chan, payout);
    ok(h.close_with_voucher(&chan, &payee, &a, v));
    assert_eq!(h.balance(&payout), 400);
    assert_eq!(h.balance(&elsewhere), 0);
}
