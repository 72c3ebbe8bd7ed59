//! Attacks from PROTOCOL.md §3/§5, each asserting the specific error.
use anchor_lang::{error::ErrorCode, prelude::Pubkey};
use paychan::{constants::OPEN_SLOT_WINDOW, error::PaychanError};
use paychan_voucher::{channels_hash, ed25519_instruction_data_v1, sign_v2};
use solana_signer::Signer;

use crate::common::*;

#[test]
fn attack_ed25519_record_pointing_at_another_instruction() {
    let (mut h, chan, accts) = fresh_channel(1_000);
    let mut data = ed25519_instruction_data_v1(&[chan.voucher(900, 0)]).unwrap();
    // Each record's instruction-index fields point at instruction 0 (the
    // precompile itself, so the precompile still verifies) instead of u16::MAX.
    for off in [4usize, 8, 14] {
        data[off..off + 2].copy_from_slice(&0u16.to_le_bytes());
    }
    let ixs = vec![ed25519_ix_raw(data), accts.settle_ix(&[chan.address])];
    assert_err(&h.send_as(&ixs, &[]), PaychanError::InvalidEd25519Layout);
    assert_eq!(h.balance(&accts.payee_tokens), 0);
}

#[test]
fn attack_signature_count_differs_from_vouchers() {
    let (mut h, a, b, accts) = two_channels();
    // Two signatures, one channel.
    let ixs = vec![
        ed25519_ix(&[a.voucher(10, 0), b.voucher(10, 0)]),
        accts.settle_ix(&[a.address]),
    ];
    assert_err(&h.send_as(&ixs, &[]), PaychanError::SignatureCountMismatch);
    // One signature, two channels.
    let ixs = vec![
        ed25519_ix(&[a.voucher(10, 0)]),
        accts.settle_ix(&[a.address, b.address]),
    ];
    assert_err(&h.send_as(&ixs, &[]), PaychanError::SignatureCountMismatch);
    // Zero signatures (the precompile accepts `[0, 0]`).
    let ixs = vec![ed25519_ix_raw(vec![0, 0]), accts.settle_ix(&[a.address])];
    assert_err(&h.send_as(&ixs, &[]), PaychanError::SignatureCountMismatch);
    assert_eq!(h.balance(&accts.payee_tokens), 0);
}

#[test]
fn attack_extra_bytes_in_the_precompile_data() {
    let (mut h, chan, accts) = fresh_channel(1_000);
    let mut data = ed25519_instruction_data_v1(&[chan.voucher(900, 0)]).unwrap();
    data.extend_from_slice(&[0u8; 8]);
    let ixs = vec![ed25519_ix_raw(data), accts.settle_ix(&[chan.address])];
    assert_err(&h.send_as(&ixs, &[]), PaychanError::InvalidEd25519Layout);
}

cases! {
    attack_voucher_signed_by_a_different_key => both::a_voucher_signed_by_another_key_is_refused(SettleBy::Precompile);
    attack_expired_voucher => both::an_expired_voucher_is_refused(SettleBy::Precompile);
    attack_cumulative_above_the_deposit => both::a_voucher_above_the_deposit_is_refused(SettleBy::Precompile);
    attack_the_same_channel_twice_in_one_settle => both::the_same_channel_twice_is_refused(SettleBy::Precompile);
}

#[test]
fn attack_voucher_for_another_channel() {
    let (mut h, a, b, accts) = two_channels();
    // A valid voucher of channel A presented with channel B's account.
    let ixs = vec![
        ed25519_ix(&[a.voucher(500, 0)]),
        accts.settle_ix(&[b.address]),
    ];
    assert_err(&h.send_as(&ixs, &[]), PaychanError::VoucherChannelMismatch);
    assert_eq!(h.channel(&b.address).settled, 0);
}

#[test]
fn attack_replay_after_close_and_reopen_with_the_same_seeds() {
    let mut h = Harness::new();
    let payee = h.funded();
    let p = OpenParams::default();
    let (old, res) = h.try_open(&payee.pubkey(), &p);
    ok(res);
    let payee_tokens = h.payout_account(&payee.pubkey(), 0);
    let accts = SettleAccounts::for_chan(&old, payee_tokens);
    let old_voucher = old.voucher(400, 0);
    h.settle(&accts, &[old.voucher(100, 0)]);
    ok(h.close_without_voucher(&old, &payee, payee_tokens));

    // Same payer, payee, mint, signer and salt; a new open_slot.
    h.advance(5, 5);
    let new = Chan {
        payer: old.payer.insecure_clone(),
        signer: old.signer.clone(),
        open_slot: h.clock().slot,
        address: channel_address(
            &old.payer.pubkey(),
            &payee.pubkey(),
            &old.mint,
            &old.signer_pubkey(),
            old.salt,
            h.clock().slot,
        ),
        ..old.clone_shallow()
    };
    assert_ne!(new.address, old.address);
    ok(h.send(&[open_ix(&new, &p)], &[&new.payer]));

    // The old voucher names the old address: it cannot pay from the new channel…
    let ixs = vec![ed25519_ix(&[old_voucher]), accts.settle_ix(&[new.address])];
    assert_err(&h.send_as(&ixs, &[]), PaychanError::VoucherChannelMismatch);
    // …and the old channel is closed.
    h.settle_err(&accts, &[old_voucher], PaychanError::ChannelClosed);
    assert_eq!(h.balance(&payee_tokens), 100);
    assert_eq!(h.channel(&new.address).settled, 0);
}

#[test]
fn attack_cumulative_not_above_settled_pays_nothing() {
    let (mut h, chan, accts) = fresh_channel(1_000);
    let v = chan.voucher(500, 0);
    h.settle(&accts, &[v]);
    // The same voucher again, and an older one: no-ops (docs/001), nothing
    // paid, nothing logged.
    let meta = h.settle(&accts, &[v]);
    assert!(events::<paychan::events::ChannelSettled>(&meta.logs).is_empty());
    h.settle(&accts, &[chan.voucher(499, 0)]);
    assert_eq!(h.balance(&accts.payee_tokens), 500);
    assert_eq!(h.channel(&chan.address).settled, 500);
    assert_eq!(h.vault(&chan.vault).outstanding, 500);
}

#[test]
fn attack_wrong_vault() {
    let (mut h, chan, accts, other) =
        both::a_channel_of_another_vault_is_refused(SettleBy::Precompile);
    // Our vault with the other vault's token account.
    let mut bad = accts;
    bad.vault_tokens = other.vault_tokens;
    h.settle_err(&bad, &[chan.voucher(100, 0)], PaychanError::VaultMismatch);
    assert_eq!(h.balance(&other.vault_tokens), 1_000);
}

#[test]
fn attack_wrong_mint() {
    let (mut h, chan, accts) = fresh_channel(1_000);
    let other_mint = h.create_mint(h.token_program);
    let mut bad = accts;
    bad.mint = other_mint;
    h.settle_err(&bad, &[chan.voucher(100, 0)], PaychanError::VaultMismatch);
}

#[test]
fn attack_wrong_token_program() {
    let (mut h, chan, accts) = fresh_channel(1_000);
    let mut bad = accts;
    bad.token_program = anchor_spl::token_2022::ID;
    h.settle_err(&bad, &[chan.voucher(100, 0)], PaychanError::VaultMismatch);
    assert_eq!(h.channel(&chan.address).settled, 0);
    // A program that is not a token program at all.
    bad.token_program = anchor_lang::system_program::ID;
    h.settle_err(&bad, &[chan.voucher(100, 0)], PaychanError::VaultMismatch);
}

#[test]
fn attack_payee_token_account_of_someone_else() {
    let (mut h, chan, accts) = fresh_channel(1_000);
    let mut bad = accts;
    bad.payee_tokens = h.token_account(&Pubkey::new_unique(), 0);
    let voucher = chan.voucher(100, 0);
    h.settle_err(&bad, &[voucher], PaychanError::WrongTokenAccount);
    assert_eq!(h.balance(&bad.payee_tokens), 0);
}

#[test]
fn attack_fake_instructions_sysvar() {
    let (mut h, chan, accts) = fresh_channel(1_000);
    // An account whose data mimics the sysvar layout with a forged voucher record.
    let fake = Pubkey::new_unique();
    h.set_raw_account(fake, anchor_lang::system_program::ID, vec![0u8; 512]);
    let mut bad = accts;
    bad.instructions = fake;
    let voucher = chan.voucher(100, 0);
    h.settle_err(&bad, &[voucher], PaychanError::InvalidInstructionsSysvar);
}

#[test]
fn attack_settle_after_the_grace_period_ended() {
    let (mut h, chan, accts) = fresh_channel(1_000);
    h.request_close(&chan);
    h.advance(10, GRACE);
    let voucher = chan.voucher(100, 0);
    h.settle_err(&accts, &[voucher], PaychanError::GracePeriodEnded);
}

#[test]
fn attack_finalize_twice() {
    let (mut h, chan, _) = fresh_channel(1_000);
    h.request_close(&chan);
    h.advance(10, GRACE);
    let fin = finalize_ix(&chan, &chan.payer_tokens, &chan.payer.pubkey());
    ok(h.send_as(std::slice::from_ref(&fin), &[]));
    assert_eq!(h.balance(&chan.payer_tokens), 10_000_000);
    assert_err(&h.send_as(&[fin], &[]), PaychanError::ChannelNotClosing);
    assert_eq!(h.balance(&chan.payer_tokens), 10_000_000);
    assert_eq!(h.vault(&chan.vault).outstanding, 0);
}

#[test]
fn attack_revival_after_close() {
    let mut h = Harness::new();
    let f = payee_fixture(&mut h, 1_000);
    let (chan, accts) = (&f.chan, &f.accts);
    ok(f.close_without_voucher(&mut h));
    // Closed but not yet reclaimable: every use is refused.
    h.settle_err(accts, &[chan.voucher(1, 0)], PaychanError::ChannelClosed);
    let top = top_up_ix(chan, &chan.payer.pubkey(), &chan.payer_tokens, 10);
    assert_err(
        &h.send(std::slice::from_ref(&top), &[&chan.payer]),
        PaychanError::ChannelNotOpen,
    );
    assert_err(
        &f.close_without_voucher(&mut h),
        PaychanError::ChannelClosed,
    );
    // Reclaimed: the account is gone; funding the address does not bring it back.
    h.advance(OPEN_SLOT_WINDOW + 1, 600);
    ok(h.send_as(&[reclaim_ix(chan, &chan.payer.pubkey())], &[]));
    assert!(!h.exists(&chan.address));
    h.svm.airdrop(&chan.address, 10_000_000).unwrap();
    let res = h.settle_by(SettleBy::Precompile, accts, &[chan.voucher(1, 0)]);
    assert_anchor_err(&res, ErrorCode::AccountOwnedByWrongProgram);
    assert_anchor_err(
        &h.send(&[top], &[&chan.payer]),
        ErrorCode::AccountOwnedByWrongProgram,
    );
    // Nor can the same seeds be opened again: the open_slot is now too old.
    let p = OpenParams::default();
    let res = h.send(&[open_ix(chan, &p)], &[&chan.payer]);
    assert!(res.is_err());
    assert_eq!(h.balance(&chan.payer_tokens), 10_000_000);
}

#[test]
fn attack_request_close_by_a_non_payer() {
    let (mut h, chan, _) = fresh_channel(1_000);
    let mallory = h.funded();
    let res = h.send(&[request_close_ix(&chan, &mallory.pubkey())], &[&mallory]);
    assert_err(&res, PaychanError::NotPayer);
    assert_eq!(h.channel(&chan.address).closure_started_at, 0);
}

#[test]
fn attack_forged_v2_channels_hash() {
    let mut h = Harness::new();
    let b = Batch::with_deposits(&mut h, 3, |_| 1_000);
    let ids: Vec<[u8; 32]> = b.chans.iter().map(|c| c.address.to_bytes()).collect();
    let refs: Vec<&[u8; 32]> = ids.iter().collect();
    // Signed over channels 0 and 1 only, presented with 0, 1, 2 and 3 targets;
    // then a hash over another program id.
    let two = channels_hash(&paychan::ID.to_bytes(), &refs[..2]).unwrap();
    let other = channels_hash(&Pubkey::new_unique().to_bytes(), &refs).unwrap();
    for hash in [two, other] {
        let (msg, sig) = sign_v2(&b.signer, 0, &hash, &[100, 100, 100]).unwrap();
        let ixs = vec![
            ed25519_v2_ix(&b.signer, &msg, &sig),
            b.accts.settle_batch_ix(&b.addresses()),
        ];
        assert_err(&h.send_as(&ixs, &[]), PaychanError::ChannelsHashMismatch);
    }
    assert_eq!(h.balance(&b.accts.payee_tokens), 0);
}

#[test]
fn attack_the_same_channel_twice_among_other_channels() {
    let (mut h, a, b, accts) = two_channels();
    let vouchers = [a.voucher(100, 0), b.voucher(100, 0), a.voucher(300, 0)];
    h.settle_err(&accts, &vouchers, PaychanError::DuplicateChannel);
    assert_eq!(h.channel(&a.address).settled, 0);
    assert_eq!(h.channel(&b.address).settled, 0);
    assert_eq!(h.balance(&accts.payee_tokens), 0);
}
