//! `settle_signed`: vouchers verified by the program itself (no Ed25519
//! precompile). Happy paths with exact balances, state, events and fees,
//! then one failing test per guard, each asserting the exact error.
use anchor_lang::{error::ErrorCode, prelude::Pubkey};
use paychan::{constants::MAX_SETTLE_SIGNED_VOUCHERS, error::PaychanError};
use paychan_voucher::{SignedVoucher, VoucherV1, sign_v1};
use solana_instruction_error::InstructionError;
use solana_signer::Signer;
use solana_transaction_error::TransactionError;

use crate::common::*;

/// The fee the harness's fee payer paid for `send`.
fn fee_of(h: &mut Harness, send: impl FnOnce(&mut Harness) -> TxResult) -> (TxResult, u64) {
    let payer = h.fee_payer.pubkey();
    let before = h.lamports(&payer);
    let res = send(h);
    (res, before - h.lamports(&payer))
}

/// Only the `settle_signed` instruction, without a compute-budget instruction.
fn settle_signed_only(
    accts: &SettleAccounts,
    vouchers: &[SignedVoucher],
) -> Vec<anchor_lang::solana_program::instruction::Instruction> {
    vec![accts.settle_signed_ix(vouchers)]
}

#[test]
fn settle_signed_pays_the_increment_and_advances_the_watermark() {
    let mut h = Harness::new();
    let (chan, accts) = settle_fixture(&mut h, 1_000);
    let (res, fee) = fee_of(&mut h, |h| {
        h.send_as(&settle_signed_ixs(&accts, &[chan.voucher(300, 0)]), &[])
    });
    let meta = ok(res);
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
    assert_eq!(h.balance(&accts.payee_tokens), 300);
    assert_eq!(h.balance(&chan.vault_tokens), 700);
    assert_eq!(h.channel(&chan.address).settled, 300);
    assert_eq!(h.vault(&chan.vault).outstanding, 700);
    let settled = events::<paychan::events::ChannelSettled>(&meta.logs);
    assert_eq!(
        settled
            .iter()
            .map(|e| (e.channel, e.settled, e.amount))
            .collect::<Vec<_>>(),
        vec![(chan.address, 300, 300)]
    );

    let meta = ok(h.send_as(&settle_signed_ixs(&accts, &[chan.voucher(450, 0)]), &[]));
    let settled = events::<paychan::events::ChannelSettled>(&meta.logs);
    assert_eq!(
        (settled[0].channel, settled[0].settled, settled[0].amount),
        (chan.address, 450, 150)
    );
    assert_eq!(h.balance(&accts.payee_tokens), 450);
    assert_eq!(h.balance(&chan.vault_tokens), 550);
    assert_eq!(h.channel(&chan.address).settled, 450);
    assert_eq!(h.vault(&chan.vault).outstanding, 550);
}

#[test]
fn settle_signed_up_to_the_full_deposit_and_with_an_expiry() {
    let mut h = Harness::new();
    let (chan, accts) = settle_fixture(&mut h, 1_000);
    let now = h.clock().unix_timestamp;
    // Valid at its expiry second.
    ok(h.send_as(&settle_signed_ixs(&accts, &[chan.voucher(400, now)]), &[]));
    ok(h.send_as(&settle_signed_ixs(&accts, &[chan.voucher(1_000, 0)]), &[]));
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
    let payee = Pubkey::new_unique();
    let payee_tokens = h.payout_account(&payee, 0);
    let n = u64::from(MAX_SETTLE_SIGNED_VOUCHERS);
    let chans: Vec<Chan> = (0..n).map(|i| h.open_channel(&payee, 2_000 + i)).collect();
    let accts = SettleAccounts::for_chan(&chans[0], payee_tokens);
    let mut addresses = vec![
        accts.vault,
        accts.vault_tokens,
        accts.payee_tokens,
        accts.mint,
        accts.token_program,
    ];
    addresses.extend(chans.iter().map(|c| c.address));
    let table = install_table(&mut h, addresses);
    h.advance(1, 1);
    ok(h.send_as(&settle_signed_ixs(&accts, &[chans[0].voucher(50, 0)]), &[]));
    let vouchers: Vec<_> = chans
        .iter()
        .enumerate()
        .map(|(i, c)| c.voucher(100 * (i as u64 + 1), 0))
        .collect();
    let payer = h.fee_payer.insecure_clone();
    let ixs = settle_signed_ixs(&accts, &vouchers);
    let (res, fee) = fee_of(&mut h, |h| {
        h.send_v0(&ixs, &[&payer], std::slice::from_ref(&table))
    });
    let meta = ok(res);
    assert_eq!(fee, 5_000, "{n} vouchers for one signature's fee");
    let expected: u64 = (1..=n).map(|i| 100 * i).sum();
    assert_eq!(h.balance(&payee_tokens), expected);
    for (i, c) in chans.iter().enumerate() {
        assert_eq!(h.channel(&c.address).settled, 100 * (i as u64 + 1));
    }
    let deposits: u64 = (0..n).map(|i| 2_000 + i).sum();
    assert_eq!(h.vault(&chans[0].vault).outstanding, deposits - expected);
    let transfers = meta
        .logs
        .iter()
        .filter(|l| l.starts_with(&format!("Program {} invoke", anchor_spl::token::ID)))
        .count();
    assert_eq!(transfers, 1, "{:#?}", meta.logs);
    let got: Vec<_> = events::<paychan::events::ChannelSettled>(&meta.logs)
        .iter()
        .map(|e| (e.channel, e.settled, e.amount))
        .collect();
    let want: Vec<_> = chans
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let settled = 100 * (i as u64 + 1);
            (
                c.address,
                settled,
                if i == 0 { settled - 50 } else { settled },
            )
        })
        .collect();
    assert_eq!(got, want);
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
    let payee = Pubkey::new_unique();
    let payee_tokens = h.payout_account(&payee, 0);
    let n = usize::from(MAX_SETTLE_SIGNED_VOUCHERS);
    let chans: Vec<Chan> = (0..n).map(|_| h.open_channel(&payee, 1_000)).collect();
    let accts = SettleAccounts::for_chan(&chans[0], payee_tokens);
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
    ok(h.send_as(&settle_signed_ixs(&accts, &vouchers), &[]));
    assert_eq!(h.balance(&payee_tokens), 10 * n as u64);
}

#[test]
fn settle_signed_with_no_channels_fails() {
    let mut h = Harness::new();
    let (_, accts) = settle_fixture(&mut h, 1_000);
    let res = h.send_as(&settle_signed_ixs(&accts, &[]), &[]);
    assert_err(&res, PaychanError::InvalidChannelCount);
}

#[test]
fn settle_signed_refuses_more_vouchers_than_fit_one_transaction() {
    let mut h = Harness::new();
    let payee = Pubkey::new_unique();
    let n = usize::from(MAX_SETTLE_SIGNED_VOUCHERS) + 1;
    let chans: Vec<Chan> = (0..n).map(|_| h.open_channel(&payee, 1_000)).collect();
    let accts = SettleAccounts::for_chan(&chans[0], h.payout_account(&payee, 0));
    let vouchers: Vec<_> = chans.iter().map(|c| c.voucher(10, 0)).collect();
    // LiteSVM takes the oversized transaction; the program must refuse it.
    let res = h.send_as(&settle_signed_ixs(&accts, &vouchers), &[]);
    assert_err(&res, PaychanError::InvalidChannelCount);
    ok(h.send_as(&settle_signed_ixs(&accts, &vouchers[..n - 1]), &[]));
    assert_eq!(h.balance(&accts.payee_tokens), 10 * (n as u64 - 1));
}

#[test]
fn the_voucher_count_must_match_the_channels() {
    let mut h = Harness::new();
    let payee = Pubkey::new_unique();
    let a = h.open_channel(&payee, 1_000);
    let b = h.open_channel(&payee, 1_000);
    let accts = SettleAccounts::for_chan(&a, h.payout_account(&payee, 0));
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
    let mut h = Harness::new();
    let (chan, accts) = settle_fixture(&mut h, 1_000);
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
        let res = h.send_as(&settle_signed_ixs(&accts, &[v]), &[]);
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
    assert_err(
        &h.send_as(&settle_signed_ixs(&accts, &[v]), &[]),
        PaychanError::InvalidSignature,
    );
    assert_eq!(h.channel(&chan.address).settled, 0);
    ok(h.send_as(&settle_signed_ixs(&accts, &[good]), &[]));
    assert_eq!(h.balance(&accts.payee_tokens), 500);
}

#[test]
fn a_voucher_signed_by_another_key_is_refused() {
    let mut h = Harness::new();
    let (chan, accts) = settle_fixture(&mut h, 1_000);
    let mallory = new_signing_key();
    let forged = sign_v1(&mallory, &chan.voucher(900, 0).voucher);
    assert_err(
        &h.send_as(&settle_signed_ixs(&accts, &[forged]), &[]),
        PaychanError::InvalidSignature,
    );
    assert_eq!(h.channel(&chan.address).settled, 0);
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
fn an_expired_voucher_is_refused() {
    let mut h = Harness::new();
    let (chan, accts) = settle_fixture(&mut h, 1_000);
    let expired = chan.voucher(400, h.clock().unix_timestamp - 1);
    assert_err(
        &h.send_as(&settle_signed_ixs(&accts, &[expired]), &[]),
        PaychanError::VoucherExpired,
    );
    assert_eq!(h.channel(&chan.address).settled, 0);
}

#[test]
fn the_same_channel_twice_is_refused() {
    let mut h = Harness::new();
    let (chan, accts) = settle_fixture(&mut h, 1_000);
    let res = h.send_as(
        &settle_signed_ixs(&accts, &[chan.voucher(100, 0), chan.voucher(200, 0)]),
        &[],
    );
    assert_err(&res, PaychanError::DuplicateChannel);
    assert_eq!(h.channel(&chan.address).settled, 0);
}

#[test]
fn a_channel_passed_read_only_is_refused() {
    let mut h = Harness::new();
    let (chan, accts) = settle_fixture(&mut h, 1_000);
    let mut ixs = settle_signed_ixs(&accts, &[chan.voucher(5, 0)]);
    let last = ixs[1].accounts.len() - 1;
    ixs[1].accounts[last].is_writable = false;
    assert_err(&h.send_as(&ixs, &[]), PaychanError::ChannelNotWritable);
}

#[test]
fn an_account_that_is_not_a_channel_is_refused() {
    let mut h = Harness::new();
    let (chan, accts) = settle_fixture(&mut h, 1_000);
    // The vault (owned by the program) and the payout account (owned by the
    // token program) passed as "channels", with vouchers signed for them.
    let as_vault = sign_v1(
        &chan.signer,
        &VoucherV1 {
            channel_id: chan.vault.to_bytes(),
            cumulative_amount: 5,
            expires_at: 0,
        },
    );
    assert_anchor_err(
        &h.send_as(&settle_signed_ixs(&accts, &[as_vault]), &[]),
        ErrorCode::AccountDiscriminatorMismatch,
    );
    let as_token_account = sign_v1(
        &chan.signer,
        &VoucherV1 {
            channel_id: accts.payee_tokens.to_bytes(),
            cumulative_amount: 5,
            expires_at: 0,
        },
    );
    assert_anchor_err(
        &h.send_as(&settle_signed_ixs(&accts, &[as_token_account]), &[]),
        ErrorCode::AccountOwnedByWrongProgram,
    );
}

#[test]
fn a_channel_of_another_vault_is_refused() {
    let mut h = Harness::new();
    let (chan, _) = settle_fixture(&mut h, 1_000);
    let (_, other_accts) = settle_fixture(&mut h, 1_000);
    assert_err(
        &h.send_as(
            &settle_signed_ixs(&other_accts, &[chan.voucher(400, 0)]),
            &[],
        ),
        PaychanError::VaultMismatch,
    );
    assert_eq!(h.channel(&chan.address).settled, 0);
}

#[test]
fn the_vault_accounts_are_pinned() {
    let mut h = Harness::new();
    let (chan, accts) = settle_fixture(&mut h, 1_000);
    let v = chan.voucher(100, 0);
    let mut elsewhere = accts;
    elsewhere.payee_tokens = h.token_account(&chan.payee, 0);
    assert_err(
        &h.send_as(&settle_signed_ixs(&elsewhere, &[v]), &[]),
        PaychanError::WrongTokenAccount,
    );
    let mut wrong = accts;
    wrong.vault_tokens = h.token_account(&chan.vault, 1_000);
    assert_err(
        &h.send_as(&settle_signed_ixs(&wrong, &[v]), &[]),
        PaychanError::VaultMismatch,
    );
    let mut wrong = accts;
    wrong.mint = h.create_mint(anchor_spl::token::ID);
    assert_err(
        &h.send_as(&settle_signed_ixs(&wrong, &[v]), &[]),
        PaychanError::VaultMismatch,
    );
    let mut wrong = accts;
    wrong.token_program = anchor_spl::token_2022::ID;
    assert_err(
        &h.send_as(&settle_signed_ixs(&wrong, &[v]), &[]),
        PaychanError::VaultMismatch,
    );
    assert_eq!(h.balance(&elsewhere.payee_tokens), 0);
    ok(h.send_as(&settle_signed_ixs(&accts, &[v]), &[]));
    assert_eq!(h.balance(&accts.payee_tokens), 100);
}

#[test]
fn a_voucher_above_the_deposit_is_refused() {
    let mut h = Harness::new();
    let (chan, accts) = settle_fixture(&mut h, 1_000);
    assert_err(
        &h.send_as(&settle_signed_ixs(&accts, &[chan.voucher(1_001, 0)]), &[]),
        PaychanError::CumulativeExceedsDeposit,
    );
}

/// A voucher at or below `settled` is a no-op, after its signature, vault
/// and expiry have passed.
#[test]
fn a_voucher_at_or_below_settled_is_a_no_op_once_checked() {
    let mut h = Harness::new();
    let (chan, accts) = settle_fixture(&mut h, 1_000);
    ok(h.send_as(&settle_signed_ixs(&accts, &[chan.voucher(500, 0)]), &[]));
    let meta = ok(h.send_as(&settle_signed_ixs(&accts, &[chan.voucher(400, 0)]), &[]));
    assert!(events::<paychan::events::ChannelSettled>(&meta.logs).is_empty());
    ok(h.send_as(&settle_signed_ixs(&accts, &[chan.voucher(500, 0)]), &[]));
    assert_eq!(h.balance(&accts.payee_tokens), 500);
    assert_eq!(h.channel(&chan.address).settled, 500);

    let mallory = new_signing_key();
    let forged = sign_v1(&mallory, &chan.voucher(400, 0).voucher);
    assert_err(
        &h.send_as(&settle_signed_ixs(&accts, &[forged]), &[]),
        PaychanError::InvalidSignature,
    );
    let expired = chan.voucher(400, h.clock().unix_timestamp - 1);
    assert_err(
        &h.send_as(&settle_signed_ixs(&accts, &[expired]), &[]),
        PaychanError::VoucherExpired,
    );
    let (_, other_accts) = settle_fixture(&mut h, 1_000);
    assert_err(
        &h.send_as(
            &settle_signed_ixs(&other_accts, &[chan.voucher(400, 0)]),
            &[],
        ),
        PaychanError::VaultMismatch,
    );
    assert_eq!(h.balance(&accts.payee_tokens), 500);
}

/// Payer A settles its own voucher first; the payee's settle of A's and B's
/// vouchers still pays B's increment.
#[test]
fn a_payer_settling_its_own_voucher_first_cannot_void_a_multi_payer_settle_signed() {
    let mut h = Harness::new();
    let payee = Pubkey::new_unique();
    let a = h.open_channel(&payee, 1_000);
    let b = h.open_channel(&payee, 1_000);
    let accts = SettleAccounts::for_chan(&a, h.payout_account(&payee, 0));
    let (va, vb) = (a.voucher(300, 0), b.voucher(400, 0));
    let front = h.funded();
    ok(h.send(&settle_signed_ixs(&accts, &[va]), &[&front]));
    let meta = ok(h.send_as(&settle_signed_ixs(&accts, &[va, vb]), &[]));
    assert_eq!(h.balance(&accts.payee_tokens), 700);
    assert_eq!(h.channel(&b.address).settled, 400);
    let settled = events::<paychan::events::ChannelSettled>(&meta.logs);
    assert_eq!(settled.len(), 1);
    assert_eq!((settled[0].channel, settled[0].amount), (b.address, 400));
}

#[test]
fn closing_and_closed_channels() {
    let mut h = Harness::new();
    let payee = h.funded();
    let chan = h.open_channel(&payee.pubkey(), 1_000);
    let payee_tokens = h.payout_account(&payee.pubkey(), 0);
    let accts = SettleAccounts::for_chan(&chan, payee_tokens);
    h.request_close(&chan);
    h.advance(10, GRACE - 1);
    ok(h.send_as(&settle_signed_ixs(&accts, &[chan.voucher(600, 0)]), &[]));
    assert_eq!(h.balance(&payee_tokens), 600);
    h.advance(1, 1);
    assert_err(
        &h.send_as(&settle_signed_ixs(&accts, &[chan.voucher(700, 0)]), &[]),
        PaychanError::GracePeriodEnded,
    );
    // After the close, a higher voucher fails and one at `settled` is a no-op.
    let close = CloseAccounts {
        payee_tokens,
        payer_tokens: chan.payer_tokens,
        rent_payer: chan.payer.pubkey(),
    };
    ok(h.send(
        &[close_ix(&chan, &payee.pubkey(), &close, false)],
        &[&payee],
    ));
    assert_err(
        &h.send_as(&settle_signed_ixs(&accts, &[chan.voucher(700, 0)]), &[]),
        PaychanError::ChannelClosed,
    );
    ok(h.send_as(&settle_signed_ixs(&accts, &[chan.voucher(600, 0)]), &[]));
    assert_eq!(h.balance(&payee_tokens), 600);
}

/// The payee's cheapest close: the final voucher by `settle_signed` and
/// `close` without a voucher, in one transaction with one signature.
#[test]
fn settle_signed_then_close_in_one_transaction() {
    let mut h = Harness::new();
    let payee = h.funded();
    let chan = h.open_channel(&payee.pubkey(), 1_000);
    let payee_tokens = h.payout_account(&payee.pubkey(), 0);
    let accts = SettleAccounts::for_chan(&chan, payee_tokens);
    h.request_close(&chan);
    let close = CloseAccounts {
        payee_tokens,
        payer_tokens: chan.payer_tokens,
        rent_payer: chan.payer.pubkey(),
    };
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
    ok(h.send_as(&settle_signed_ixs(&accts, &[chan.voucher(250, 0)]), &[]));
    assert_eq!(h.balance(&accts.payee_tokens), 250);
    assert_eq!(h.channel(&chan.address).settled, 250);
    assert_eq!(h.channel(&chan.address).version, 1);
}

/// `settle` and `settle_signed` advance the same watermark.
#[test]
fn settle_and_settle_signed_share_the_watermark() {
    let mut h = Harness::new();
    let (chan, accts) = settle_fixture(&mut h, 1_000);
    ok(h.send_as(&settle_ixs(&accts, &[chan.voucher(200, 0)]), &[]));
    ok(h.send_as(&settle_signed_ixs(&accts, &[chan.voucher(500, 0)]), &[]));
    let meta = ok(h.send_as(&settle_ixs(&accts, &[chan.voucher(300, 0)]), &[]));
    assert!(events::<paychan::events::ChannelSettled>(&meta.logs).is_empty());
    assert_eq!(h.balance(&accts.payee_tokens), 500);
    assert_eq!(h.channel(&chan.address).settled, 500);
}
