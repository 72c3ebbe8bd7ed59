//! `reclaim`: anyone deletes a closed channel once its open-slot window has
//! passed; the rent goes back to the channel's rent payer.
use anchor_lang::{error::ErrorCode, prelude::Pubkey};
use paychan::{
    constants::OPEN_SLOT_WINDOW, error::PaychanError, events::ChannelReclaimed,
    state::ChannelStatus,
};
use solana_keypair::Keypair;
use solana_signer::Signer;

use crate::common::*;

/// A channel (payer = rent payer) closed by its payee at the current slot.
fn closed_channel() -> (Harness, Chan) {
    let mut h = Harness::new();
    let payee = h.funded();
    let chan = h.open_channel(&payee.pubkey(), 1_000);
    close_by_payee(&mut h, &chan, &payee, chan.payer.pubkey());
    (h, chan)
}

fn close_by_payee(h: &mut Harness, chan: &Chan, payee: &Keypair, rent_payer: Pubkey) {
    let close = CloseAccounts {
        rent_payer,
        ..CloseAccounts::of(chan, h.payout_account(&payee.pubkey(), 0))
    };
    ok(h.send(&[close_ix(chan, &payee.pubkey(), &close, false)], &[payee]));
    assert_eq!(h.channel(&chan.address).status, ChannelStatus::Closed as u8);
}

#[test]
fn reclaim_by_anyone_deletes_a_closed_channel_and_returns_its_rent() {
    let (mut h, chan) = closed_channel();
    h.advance(OPEN_SLOT_WINDOW + 1, 600);
    let rent = h.lamports(&chan.address);
    assert!(rent > 0);
    let payer_before = h.lamports(&chan.payer.pubkey());
    let vault_before = h.vault(&chan.vault);

    // Sent and paid for by the harness fee payer; nobody else signs.
    let meta = ok(h.send_as(&[reclaim_ix(&chan, &chan.payer.pubkey())], &[]));

    assert!(!h.exists(&chan.address));
    assert_eq!(h.lamports(&chan.address), 0);
    assert_eq!(h.lamports(&chan.payer.pubkey()) - payer_before, rent);
    let e: ChannelReclaimed = event(&meta.logs).expect("ChannelReclaimed event");
    assert_eq!(e.channel, chan.address);
    assert_eq!(e.rent_payer, chan.payer.pubkey());
    assert_eq!(e.lamports, rent);
    // Tokens and the vault are untouched.
    assert_eq!(h.vault(&chan.vault), vault_before);
    assert_eq!(h.balance(&chan.payer_tokens), 10_000_000);
}

#[test]
fn reclaim_right_after_close_is_too_early() {
    let (mut h, chan) = closed_channel();
    let rent = h.lamports(&chan.address);
    let res = h.send_as(&[reclaim_ix(&chan, &chan.payer.pubkey())], &[]);
    assert_err(&res, PaychanError::ReclaimTooEarly);
    assert_eq!(h.lamports(&chan.address), rent);
    assert_eq!(h.channel(&chan.address).status, ChannelStatus::Closed as u8);
}

#[test]
fn reclaim_at_the_last_slot_of_the_open_slot_window_is_too_early() {
    let (mut h, chan) = closed_channel();
    h.advance(OPEN_SLOT_WINDOW, 600);
    assert_eq!(h.clock().slot, chan.open_slot + OPEN_SLOT_WINDOW);
    let rent = h.lamports(&chan.address);
    let res = h.send_as(&[reclaim_ix(&chan, &chan.payer.pubkey())], &[]);
    assert_err(&res, PaychanError::ReclaimTooEarly);
    assert_eq!(h.lamports(&chan.address), rent);
}

#[test]
fn reclaim_of_an_open_channel_fails() {
    let (mut h, chan, _) = fresh_channel(1_000);
    h.advance(OPEN_SLOT_WINDOW + 1, 600);
    let res = h.send_as(&[reclaim_ix(&chan, &chan.payer.pubkey())], &[]);
    assert_err(&res, PaychanError::ChannelNotClosed);
    assert_eq!(h.channel(&chan.address).status, ChannelStatus::Open as u8);
    assert_eq!(h.vault(&chan.vault).outstanding, 1_000);
}

#[test]
fn reclaim_of_a_closing_channel_fails() {
    let (mut h, chan, _) = fresh_channel(1_000);
    h.request_close(&chan);
    // Past both the grace period and the open-slot window, but not finalized.
    h.advance(OPEN_SLOT_WINDOW + 1, GRACE + 1);
    let res = h.send_as(&[reclaim_ix(&chan, &chan.payer.pubkey())], &[]);
    assert_err(&res, PaychanError::ChannelNotClosed);
    assert_eq!(
        h.channel(&chan.address).status,
        ChannelStatus::Closing as u8
    );
    assert_eq!(h.vault(&chan.vault).outstanding, 1_000);
}

#[test]
fn reclaim_with_the_wrong_rent_payer_fails() {
    let (mut h, chan) = closed_channel();
    h.advance(OPEN_SLOT_WINDOW + 1, 600);
    let rent = h.lamports(&chan.address);
    let mallory = h.funded();
    let mallory_before = h.lamports(&mallory.pubkey());
    let res = h.send_as(&[reclaim_ix(&chan, &mallory.pubkey())], &[]);
    assert_err(&res, PaychanError::WrongRentPayer);
    assert_eq!(h.lamports(&chan.address), rent);
    assert_eq!(h.lamports(&mallory.pubkey()), mallory_before);
}

#[test]
fn reclaim_returns_the_rent_to_a_rent_payer_other_than_the_payer() {
    let mut h = Harness::new();
    let payee = h.funded();
    let (chan, rent_payer) = h.open_with_rent_payer(&payee.pubkey());
    assert_eq!(h.channel(&chan.address).rent_payer, rent_payer.pubkey());
    close_by_payee(&mut h, &chan, &payee, rent_payer.pubkey());
    h.advance(OPEN_SLOT_WINDOW + 1, 600);
    let rent = h.lamports(&chan.address);
    let rent_payer_before = h.lamports(&rent_payer.pubkey());
    let payer_before = h.lamports(&chan.payer.pubkey());

    // The payer cannot take the rent it did not pay.
    let res = h.send_as(&[reclaim_ix(&chan, &chan.payer.pubkey())], &[]);
    assert_err(&res, PaychanError::WrongRentPayer);
    ok(h.send_as(&[reclaim_ix(&chan, &rent_payer.pubkey())], &[]));

    assert!(!h.exists(&chan.address));
    assert_eq!(h.lamports(&rent_payer.pubkey()) - rent_payer_before, rent);
    assert_eq!(h.lamports(&chan.payer.pubkey()), payer_before);
}

#[test]
fn reclaim_of_a_finalized_channel_returns_the_rent() {
    let (mut h, chan, _) = fresh_channel(1_000);
    h.request_close(&chan);
    h.advance(10, GRACE);
    ok(h.finalize(&chan));
    assert!(h.exists(&chan.address), "finalized inside the window");
    h.advance(OPEN_SLOT_WINDOW, 600);
    let rent = h.lamports(&chan.address);
    let payer_before = h.lamports(&chan.payer.pubkey());
    ok(h.send_as(&[reclaim_ix(&chan, &chan.payer.pubkey())], &[]));
    assert!(!h.exists(&chan.address));
    assert_eq!(h.lamports(&chan.payer.pubkey()) - payer_before, rent);
}

#[test]
fn reclaim_twice_fails_and_pays_nothing_more() {
    let (mut h, chan) = closed_channel();
    h.advance(OPEN_SLOT_WINDOW + 1, 600);
    ok(h.send_as(&[reclaim_ix(&chan, &chan.payer.pubkey())], &[]));
    let payer_before = h.lamports(&chan.payer.pubkey());
    let res = h.send_as(&[reclaim_ix(&chan, &chan.payer.pubkey())], &[]);
    assert_anchor_err(&res, ErrorCode::AccountOwnedByWrongProgram);
    assert_eq!(h.lamports(&chan.payer.pubkey()), payer_before);
}
