use anchor_lang::prelude::Pubkey;
use anchor_spl::token_2022::spl_token_2022;
use paychan::{constants::*, error::PaychanError, state::ChannelStatus};
use solana_signer::Signer;

use crate::common::*;

#[test]
fn open_escrows_the_deposit_and_records_the_channel() {
    let mut h = Harness::new();
    let payee = Pubkey::new_unique();
    let p = OpenParams::default();
    let chan = h.prepare(&payee, &p);
    let rent_payer = h.funded();
    let rent_before = h.lamports(&rent_payer.pubkey());
    let payer_lamports = h.lamports(&chan.payer.pubkey());

    let ix = open_ix_with(&chan, open_args(&chan, &p), rent_payer.pubkey());
    ok(h.send(&[ix], &[&rent_payer, &chan.payer]));

    assert_eq!(h.balance(&chan.payer_tokens), 9_000_000);
    assert_eq!(h.balance(&chan.vault_tokens), 1_000_000);
    let c = h.channel(&chan.address);
    assert_eq!(c.payer, chan.payer.pubkey());
    assert_eq!(c.payee, payee);
    assert_eq!(c.mint, h.mint);
    assert_eq!(c.authorized_signer, chan.signer_pubkey());
    assert_eq!(c.rent_payer, rent_payer.pubkey());
    assert_eq!((c.deposit, c.settled, c.refunded), (1_000_000, 0, 0));
    assert_eq!((c.salt, c.open_slot), (chan.salt, chan.open_slot));
    assert_eq!((c.closure_started_at, c.grace_period), (0, GRACE));
    assert_eq!(c.status, ChannelStatus::Open as u8);
    assert_eq!(c.version, 1);
    let v = h.vault(&chan.vault);
    assert_eq!(v.payee, payee);
    assert_eq!(v.mint, h.mint);
    assert_eq!(v.tokens, chan.vault_tokens);
    assert_eq!(v.token_program, h.token_program);
    assert_eq!(v.outstanding, 1_000_000);
    assert_eq!(v.decimals, DECIMALS);
    // The rent payer funded the three new accounts and the fee; the payer paid nothing.
    let rent = h.lamports(&chan.address) + h.lamports(&chan.vault) + h.lamports(&chan.vault_tokens);
    assert_eq!(
        rent_before - h.lamports(&rent_payer.pubkey()),
        rent + 10_000
    );
    assert_eq!(h.lamports(&chan.payer.pubkey()), payer_lamports);
}

#[test]
fn a_second_channel_to_the_same_payee_shares_the_vault() {
    let mut h = Harness::new();
    let payee = Pubkey::new_unique();
    let a = h.open_channel(&payee, 300);
    let b = h.open_channel(&payee, 700);
    assert_eq!(a.vault, b.vault);
    assert_ne!(a.address, b.address);
    assert_eq!(h.vault(&a.vault).outstanding, 1_000);
    assert_eq!(h.balance(&a.vault_tokens), 1_000);
}

/// Opening with `p` fails with `err` and creates no channel.
#[track_caller]
fn open_refused(h: &mut Harness, p: OpenParams, err: PaychanError) {
    let (chan, res) = h.try_open(&Pubkey::new_unique(), &p);
    assert_err(&res, err);
    assert!(!h.exists(&chan.address));
}

/// `OpenParams` opening at `open_slot`.
fn at_slot(open_slot: u64) -> OpenParams {
    OpenParams {
        open_slot: Some(open_slot),
        ..Default::default()
    }
}

#[test]
fn open_rejects_a_zero_deposit() {
    let p = OpenParams {
        deposit: 0,
        ..Default::default()
    };
    open_refused(&mut Harness::new(), p, PaychanError::ZeroAmount);
}

#[test]
fn open_rejects_grace_periods_out_of_range() {
    let mut h = Harness::new();
    for grace in [MIN_GRACE_PERIOD_SECS - 1, MAX_GRACE_PERIOD_SECS + 1, 0, -1] {
        let p = OpenParams {
            grace_period: grace,
            ..Default::default()
        };
        open_refused(&mut h, p, PaychanError::InvalidGracePeriod);
    }
}

#[test]
fn open_rejects_an_open_slot_in_the_future() {
    let p = at_slot(START_SLOT + 1);
    open_refused(&mut Harness::new(), p, PaychanError::OpenSlotInFuture);
}

#[test]
fn open_accepts_the_oldest_slot_of_the_window_and_rejects_older() {
    let mut h = Harness::new();
    let (_, res) = h.try_open(
        &Pubkey::new_unique(),
        &at_slot(START_SLOT - OPEN_SLOT_WINDOW),
    );
    ok(res);
    let stale = at_slot(START_SLOT - OPEN_SLOT_WINDOW - 1);
    open_refused(&mut h, stale, PaychanError::OpenSlotExpired);
}

#[test]
fn open_rejects_the_default_key_as_voucher_signer() {
    let mut h = Harness::new();
    let p = OpenParams::default();
    let chan = h.prepare(&Pubkey::new_unique(), &p);
    let mut args = open_args(&chan, &p);
    args.authorized_signer = Pubkey::default();
    let mut ix = open_ix_with(&chan, args, chan.payer.pubkey());
    // The channel address is derived from the signer, so re-derive it.
    let address = channel_address(
        &chan.payer.pubkey(),
        &chan.payee,
        &chan.mint,
        &Pubkey::default(),
        chan.salt,
        chan.open_slot,
    );
    ix.accounts[5].pubkey = address;
    let res = h.send(&[ix], &[&chan.payer]);
    assert_err(&res, PaychanError::InvalidAuthorizedSigner);
}

#[test]
fn open_twice_with_the_same_seeds_fails_and_moves_nothing() {
    let mut h = Harness::new();
    let p = OpenParams::default();
    let (chan, res) = h.try_open(&Pubkey::new_unique(), &p);
    ok(res);
    let res = h.send(&[open_ix(&chan, &p)], &[&chan.payer]);
    assert!(res.is_err(), "re-initialisation must fail");
    assert_eq!(h.channel(&chan.address).deposit, 1_000_000);
    assert_eq!(h.balance(&chan.payer_tokens), 9_000_000);
    assert_eq!(h.vault(&chan.vault).outstanding, 1_000_000);
}

#[test]
fn open_fails_when_the_payer_cannot_fund_the_deposit() {
    let mut h = Harness::new();
    let p = OpenParams {
        deposit: 2_000,
        payer_balance: 1_999,
        ..Default::default()
    };
    let (chan, res) = h.try_open(&Pubkey::new_unique(), &p);
    // SPL Token's InsufficientFunds (error 1), raised inside the CPI.
    assert_eq!(custom_code(&res), Some(1));
    assert!(!h.exists(&chan.address));
}

#[test]
fn open_rejects_a_token_account_of_someone_else() {
    let mut h = Harness::new();
    let p = OpenParams::default();
    let mut chan = h.prepare(&Pubkey::new_unique(), &p);
    chan.payer_tokens = h.token_account(&Pubkey::new_unique(), 10_000_000);
    let res = h.send(&[open_ix(&chan, &p)], &[&chan.payer]);
    assert_anchor_err(&res, anchor_lang::error::ErrorCode::ConstraintTokenOwner);
}

#[test]
fn open_rejects_a_token_program_that_does_not_own_the_mint() {
    let mut h = Harness::new();
    let p = OpenParams::default();
    let mut chan = h.prepare(&Pubkey::new_unique(), &p);
    chan.token_program = spl_token_2022::ID;
    let res = h.send(&[open_ix(&chan, &p)], &[&chan.payer]);
    assert!(res.is_err());
    assert!(!h.exists(&chan.address));
}

#[test]
fn open_requires_the_payer_signature() {
    let mut h = Harness::new();
    let p = OpenParams::default();
    let chan = h.prepare(&Pubkey::new_unique(), &p);
    let rent_payer = h.funded();
    let mut ix = open_ix_with(&chan, open_args(&chan, &p), rent_payer.pubkey());
    ix.accounts[0].is_signer = false;
    let res = h.send(&[ix], &[&rent_payer]);
    assert_anchor_err(&res, anchor_lang::error::ErrorCode::AccountNotSigner);
    assert_eq!(h.balance(&chan.payer_tokens), 10_000_000);
}
