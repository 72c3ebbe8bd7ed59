use anchor_lang::prelude::Pubkey;
use paychan::error::PaychanError;
use solana_signer::Signer;

use crate::common::*;

#[test]
fn top_up_adds_to_the_deposit_and_the_vault() {
    let (mut h, chan, _) = fresh_channel(1_000);
    let ix = top_up_ix(&chan, &chan.payer.pubkey(), &chan.payer_tokens, 250);
    ok(h.send(&[ix], &[&chan.payer]));
    assert_eq!(h.channel(&chan.address).deposit, 1_250);
    assert_eq!(h.vault(&chan.vault).outstanding, 1_250);
    assert_eq!(h.balance(&chan.vault_tokens), 1_250);
    assert_eq!(h.balance(&chan.payer_tokens), 10_000_000 - 1_250);
}

#[test]
fn top_up_by_someone_other_than_the_payer_fails() {
    let (mut h, chan, _) = fresh_channel(1_000);
    let mallory = h.funded();
    let mallory_tokens = h.token_account(&mallory.pubkey(), 1_000);
    let ix = top_up_ix(&chan, &mallory.pubkey(), &mallory_tokens, 100);
    assert_err(&h.send(&[ix], &[&mallory]), PaychanError::NotPayer);
    assert_eq!(h.balance(&mallory_tokens), 1_000);
}

#[test]
fn top_up_of_zero_fails() {
    let (mut h, chan, _) = fresh_channel(1_000);
    let ix = top_up_ix(&chan, &chan.payer.pubkey(), &chan.payer_tokens, 0);
    assert_err(&h.send(&[ix], &[&chan.payer]), PaychanError::ZeroAmount);
}

#[test]
fn top_up_while_closing_fails() {
    let (mut h, chan, _) = fresh_channel(1_000);
    h.request_close(&chan);
    let ix = top_up_ix(&chan, &chan.payer.pubkey(), &chan.payer_tokens, 100);
    assert_err(&h.send(&[ix], &[&chan.payer]), PaychanError::ChannelNotOpen);
    assert_eq!(h.channel(&chan.address).deposit, 1_000);
}

#[test]
fn top_up_from_a_token_account_of_someone_else_fails() {
    let (mut h, chan, _) = fresh_channel(1_000);
    let other = h.token_account(&Pubkey::new_unique(), 1_000);
    let ix = top_up_ix(&chan, &chan.payer.pubkey(), &other, 100);
    assert_err(
        &h.send(&[ix], &[&chan.payer]),
        PaychanError::WrongTokenAccount,
    );
}

#[test]
fn top_up_into_another_payees_vault_fails() {
    let (mut h, chan, _) = fresh_channel(1_000);
    let other = h.open_channel(&Pubkey::new_unique(), 1_000);
    let mut ix = top_up_ix(&chan, &chan.payer.pubkey(), &chan.payer_tokens, 100);
    ix.accounts[2].pubkey = other.vault;
    ix.accounts[3].pubkey = other.vault_tokens;
    assert_err(&h.send(&[ix], &[&chan.payer]), PaychanError::VaultMismatch);
    assert_eq!(h.vault(&other.vault).outstanding, 1_000);
}

#[test]
fn top_up_into_a_token_account_that_is_not_the_vaults_fails() {
    let (mut h, chan, _) = fresh_channel(1_000);
    let decoy = h.token_account(&chan.payer.pubkey(), 0);
    let mut ix = top_up_ix(&chan, &chan.payer.pubkey(), &chan.payer_tokens, 100);
    ix.accounts[3].pubkey = decoy;
    assert_err(&h.send(&[ix], &[&chan.payer]), PaychanError::VaultMismatch);
    assert_eq!(h.balance(&decoy), 0);
}
