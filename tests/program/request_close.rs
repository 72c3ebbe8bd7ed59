//! `request_close`: the payer starts the grace period.
use anchor_lang::{error::ErrorCode, prelude::Pubkey};
use paychan::{error::PaychanError, events::CloseRequested, state::ChannelStatus};
use solana_signer::Signer;

use crate::common::*;

/// The payer's `request_close` fails with `ChannelNotOpen`; the channel stays
/// `status` with its closure start unchanged.
#[track_caller]
fn assert_request_refused(h: &mut Harness, chan: &Chan, status: ChannelStatus, started: i64) {
    let res = h.send(
        &[request_close_ix(chan, &chan.payer.pubkey())],
        &[&chan.payer],
    );
    assert_err(&res, PaychanError::ChannelNotOpen);
    let c = h.channel(&chan.address);
    assert_eq!(c.status, status as u8);
    assert_eq!(c.closure_started_at, started);
}

#[test]
fn request_close_moves_an_open_channel_to_closing() {
    let (mut h, chan, _) = fresh_channel(1_000);
    h.advance(7, 123);
    let now = h.clock().unix_timestamp;
    assert_eq!(now, START_TIME + 123);

    let meta = h.request_close(&chan);

    let c = h.channel(&chan.address);
    assert_eq!(c.status, ChannelStatus::Closing as u8);
    assert_eq!(c.closure_started_at, now);
    assert_eq!(c.grace_period, GRACE);
    assert_eq!(c.closure_started_at + c.grace_period, now + GRACE);
    assert_eq!((c.deposit, c.settled, c.refunded), (1_000, 0, 0));
    let e: CloseRequested = event(&meta.logs).expect("CloseRequested event");
    assert_eq!(e.channel, chan.address);
    assert_eq!(e.closure_started_at, now);
    assert_eq!(e.grace_ends_at, now + GRACE);
    // No tokens move.
    assert_eq!(h.balance(&chan.vault_tokens), 1_000);
    assert_eq!(h.balance(&chan.payer_tokens), 10_000_000 - 1_000);
    assert_eq!(h.vault(&chan.vault).outstanding, 1_000);
}

#[test]
fn request_close_twice_fails_with_channel_not_open() {
    let (mut h, chan, _) = fresh_channel(1_000);
    h.request_close(&chan);
    let started = h.clock().unix_timestamp;
    h.advance(10, 100);
    // The grace period is not restarted.
    assert_request_refused(&mut h, &chan, ChannelStatus::Closing, started);
}

#[test]
fn request_close_on_a_channel_closed_by_the_payee_fails_with_channel_not_open() {
    let mut h = Harness::new();
    let f = payee_fixture(&mut h, 1_000);
    ok(f.close_without_voucher(&mut h));
    assert_request_refused(&mut h, &f.chan, ChannelStatus::Closed, 0);
}

#[test]
fn request_close_on_a_finalized_channel_fails_with_channel_not_open() {
    let (mut h, chan, _) = fresh_channel(1_000);
    h.request_close(&chan);
    let started = h.clock().unix_timestamp;
    h.advance(10, GRACE);
    ok(h.finalize(&chan));
    assert_request_refused(&mut h, &chan, ChannelStatus::Closed, started);
}

#[test]
fn request_close_by_the_payee_fails_with_not_payer() {
    let mut h = Harness::new();
    let payee = h.funded();
    let chan = h.open_channel(&payee.pubkey(), 1_000);
    let res = h.send(&[request_close_ix(&chan, &payee.pubkey())], &[&payee]);
    assert_err(&res, PaychanError::NotPayer);
    let c = h.channel(&chan.address);
    assert_eq!(c.status, ChannelStatus::Open as u8);
    assert_eq!(c.closure_started_at, 0);
}

#[test]
fn request_close_requires_the_payer_signature() {
    let (mut h, chan, _) = fresh_channel(1_000);
    let mut ix = request_close_ix(&chan, &chan.payer.pubkey());
    ix.accounts[0].is_signer = false;
    assert_anchor_err(&h.send_as(&[ix], &[]), ErrorCode::AccountNotSigner);
    assert_eq!(h.channel(&chan.address).status, ChannelStatus::Open as u8);
}

#[test]
fn request_close_on_an_account_that_is_not_a_channel_fails() {
    let (mut h, chan, _) = fresh_channel(1_000);
    // The vault is owned by the program but is not a channel.
    let fake = Chan {
        address: chan.vault,
        ..chan.clone_shallow()
    };
    let res = h.send(
        &[request_close_ix(&fake, &chan.payer.pubkey())],
        &[&chan.payer],
    );
    assert_anchor_err(&res, ErrorCode::AccountDiscriminatorMismatch);
    let stranger = Chan {
        address: Pubkey::new_unique(),
        ..chan.clone_shallow()
    };
    let res = h.send(
        &[request_close_ix(&stranger, &chan.payer.pubkey())],
        &[&chan.payer],
    );
    assert_anchor_err(&res, ErrorCode::AccountOwnedByWrongProgram);
}
