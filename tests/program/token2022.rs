//! Token-2022 mints: the full lifecycle with a plain mint, and the mint
//! extension policy (`token::ALLOWED_MINT_EXTENSIONS`) enforced at `open`.
use anchor_lang::prelude::Pubkey;
use anchor_spl::{
    token::spl_token,
    token_2022::{
        self,
        spl_token_2022::{
            extension::{
                BaseStateWithExtensionsMut, ExtensionType, StateWithExtensionsMut,
                default_account_state::DefaultAccountState,
                interest_bearing_mint::InterestBearingConfig,
                metadata_pointer::MetadataPointer,
                mint_close_authority::MintCloseAuthority,
                non_transferable::NonTransferable,
                pausable::PausableConfig,
                permanent_delegate::PermanentDelegate,
                scaled_ui_amount::{PodF64, ScaledUiAmountConfig},
                transfer_fee::TransferFeeConfig,
                transfer_hook::TransferHook,
            },
            state::{AccountState, Mint},
        },
    },
};
use paychan::{error::PaychanError, state::ChannelStatus};
use solana_signer::Signer;

use crate::common::*;

const PAYER_BALANCE: u64 = 10_000_000;

fn t22() -> Harness {
    Harness::with_token_program(token_2022::ID)
}

/// Writes a Token-2022 mint carrying `extensions` (in that order) and returns its address.
fn extension_mint(h: &mut Harness, extensions: &[ExtensionType]) -> Pubkey {
    let len = ExtensionType::try_calculate_account_len::<Mint>(extensions).unwrap();
    let mut data = vec![0u8; len];
    let mut state = StateWithExtensionsMut::<Mint>::unpack_uninitialized(&mut data).unwrap();
    let authority = Pubkey::new_unique();
    for ext in extensions {
        match ext {
            ExtensionType::TransferFeeConfig => {
                let e = state.init_extension::<TransferFeeConfig>(true).unwrap();
                e.transfer_fee_config_authority = Some(authority).try_into().unwrap();
                e.older_transfer_fee.transfer_fee_basis_points = 100.into();
                e.older_transfer_fee.maximum_fee = u64::MAX.into();
                e.newer_transfer_fee.transfer_fee_basis_points = 100.into();
                e.newer_transfer_fee.maximum_fee = u64::MAX.into();
            }
            ExtensionType::TransferHook => {
                let e = state.init_extension::<TransferHook>(true).unwrap();
                e.authority = Some(authority).try_into().unwrap();
                e.program_id = Some(Pubkey::new_unique()).try_into().unwrap();
            }
            ExtensionType::PermanentDelegate => {
                let e = state.init_extension::<PermanentDelegate>(true).unwrap();
                e.delegate = Some(Pubkey::new_unique()).try_into().unwrap();
            }
            ExtensionType::MintCloseAuthority => {
                let e = state.init_extension::<MintCloseAuthority>(true).unwrap();
                e.close_authority = Some(authority).try_into().unwrap();
            }
            ExtensionType::DefaultAccountState => {
                let e = state.init_extension::<DefaultAccountState>(true).unwrap();
                e.state = AccountState::Frozen as u8;
            }
            ExtensionType::NonTransferable => {
                state.init_extension::<NonTransferable>(true).unwrap();
            }
            ExtensionType::InterestBearingConfig => {
                let e = state.init_extension::<InterestBearingConfig>(true).unwrap();
                e.rate_authority = Some(authority).try_into().unwrap();
                e.current_rate = 500.into();
                e.pre_update_average_rate = 500.into();
            }
            ExtensionType::Pausable => {
                let e = state.init_extension::<PausableConfig>(true).unwrap();
                e.authority = Some(authority).try_into().unwrap();
            }
            ExtensionType::ScaledUiAmount => {
                let e = state.init_extension::<ScaledUiAmountConfig>(true).unwrap();
                e.authority = Some(authority).try_into().unwrap();
                e.multiplier = PodF64(2.0f64.to_le_bytes());
                e.new_multiplier = PodF64(2.0f64.to_le_bytes());
            }
            ExtensionType::MetadataPointer => {
                let e = state.init_extension::<MetadataPointer>(true).unwrap();
                e.authority = Some(authority).try_into().unwrap();
                e.metadata_address = Some(Pubkey::new_unique()).try_into().unwrap();
            }
            other => panic!("no initializer for {other:?}"),
        }
    }
    state.base = Mint {
        mint_authority: Some(authority).into(),
        supply: u64::MAX / 2,
        decimals: DECIMALS,
        is_initialized: true,
        freeze_authority: Some(authority).into(),
    };
    state.pack_base();
    state.init_account_type().unwrap();
    let mint = Pubkey::new_unique();
    h.set_raw_account(mint, token_2022::ID, data);
    mint
}

/// Opening a channel in a mint with `extensions` fails with
/// `MintExtensionNotAllowed` and moves nothing.
#[track_caller]
fn assert_open_rejected(extensions: &[ExtensionType]) {
    let mut h = t22();
    h.mint = extension_mint(&mut h, extensions);
    let p = OpenParams::default();
    let (chan, res) = h.try_open(&Pubkey::new_unique(), &p);
    assert_err(&res, PaychanError::MintExtensionNotAllowed);
    assert!(!h.exists(&chan.address));
    assert!(!h.exists(&chan.vault));
    assert_eq!(h.balance(&chan.payer_tokens), PAYER_BALANCE);
}

#[test]
fn token_2022_open_escrows_the_deposit_in_a_token_2022_vault() {
    let mut h = t22();
    let payee = Pubkey::new_unique();
    let chan = h.open_channel(&payee, 1_000);

    assert_eq!(h.balance(&chan.payer_tokens), PAYER_BALANCE - 1_000);
    assert_eq!(h.balance(&chan.vault_tokens), 1_000);
    let tokens = h.svm.get_account(&chan.vault_tokens).unwrap();
    assert_eq!(tokens.owner, token_2022::ID);
    let v = h.vault(&chan.vault);
    assert_eq!(v.token_program, token_2022::ID);
    assert_eq!(v.mint, h.mint);
    assert_eq!(v.tokens, chan.vault_tokens);
    assert_eq!(v.outstanding, 1_000);
    assert_eq!(v.decimals, DECIMALS);
    let c = h.channel(&chan.address);
    assert_eq!(c.status, ChannelStatus::Open as u8);
    assert_eq!((c.deposit, c.settled, c.refunded), (1_000, 0, 0));
}

#[test]
fn token_2022_top_up_and_settle_pay_exactly() {
    let mut h = t22();
    let (chan, accts) = settle_fixture(&mut h, 1_000);
    ok(h.send(
        &[top_up_ix(
            &chan,
            &chan.payer.pubkey(),
            &chan.payer_tokens,
            500,
        )],
        &[&chan.payer],
    ));
    h.settle(&accts, &[chan.voucher(1_200, 0)]);

    assert_eq!(h.balance(&accts.payee_tokens), 1_200);
    assert_eq!(h.balance(&chan.payer_tokens), PAYER_BALANCE - 1_500);
    assert_eq!(h.balance(&chan.vault_tokens), 300);
    assert_eq!(h.vault(&chan.vault).outstanding, 300);
    let c = h.channel(&chan.address);
    assert_eq!((c.deposit, c.settled), (1_500, 1_200));
}

#[test]
fn token_2022_settle_batch_pays_exactly() {
    let mut h = t22();
    let b = Batch::with_deposits(&mut h, 3, |_| 1_000);
    ok(h.send_as(&b.ixs(&[100, 200, 300], 0), &[]));

    assert_eq!(h.balance(&b.accts.payee_tokens), 600);
    assert_eq!(h.balance(&b.chans[0].vault_tokens), 2_400);
    assert_eq!(h.vault(&b.chans[0].vault).outstanding, 2_400);
}

#[test]
fn token_2022_close_with_a_final_voucher_pays_and_refunds() {
    let mut h = t22();
    let f = payee_fixture(&mut h, 1_000);
    let chan = &f.chan;
    h.settle(&f.accts, &[chan.voucher(300, 0)]);
    let close = CloseAccounts::of(chan, f.payee_tokens);
    ok(h.close_with_voucher(chan, &f.payee, &close, chan.voucher(650, 0)));

    assert_paid_and_refunded(&h, chan, &f.payee_tokens, 650, 1_000);
}

#[test]
fn token_2022_finalize_refunds_the_payer() {
    let mut h = t22();
    let (chan, accts) = settle_fixture(&mut h, 1_000);
    h.settle(&accts, &[chan.voucher(100, 0)]);
    h.request_close(&chan);
    h.advance(10, GRACE);
    ok(h.finalize(&chan));

    assert_paid_and_refunded(&h, &chan, &accts.payee_tokens, 100, 1_000);
}

#[test]
fn token_2022_vault_rejects_the_spl_token_program() {
    let mut h = t22();
    let (chan, accts) = settle_fixture(&mut h, 1_000);
    let mut bad = accts;
    bad.token_program = spl_token::ID;
    h.settle_err(&bad, &[chan.voucher(100, 0)], PaychanError::VaultMismatch);
    assert_eq!(h.channel(&chan.address).settled, 0);
}

cases! {
    open_rejects_a_mint_with_a_transfer_fee => assert_open_rejected(&[ExtensionType::TransferFeeConfig]);
    open_rejects_a_mint_with_a_transfer_hook => assert_open_rejected(&[ExtensionType::TransferHook]);
    open_rejects_a_mint_with_a_permanent_delegate => assert_open_rejected(&[ExtensionType::PermanentDelegate]);
    open_rejects_a_mint_with_a_close_authority => assert_open_rejected(&[ExtensionType::MintCloseAuthority]);
    open_rejects_a_mint_with_a_default_account_state => assert_open_rejected(&[ExtensionType::DefaultAccountState]);
    open_rejects_a_non_transferable_mint => assert_open_rejected(&[ExtensionType::NonTransferable]);
    open_rejects_an_interest_bearing_mint => assert_open_rejected(&[ExtensionType::InterestBearingConfig]);
    open_rejects_a_pausable_mint => assert_open_rejected(&[ExtensionType::Pausable]);
    open_rejects_a_scaled_ui_amount_mint => assert_open_rejected(&[ExtensionType::ScaledUiAmount]);
    open_rejects_an_allowed_extension_combined_with_a_forbidden_one => assert_open_rejected(&[ExtensionType::MetadataPointer, ExtensionType::TransferFeeConfig]);
}

#[test]
fn open_settle_and_close_work_with_a_metadata_pointer_mint() {
    let mut h = t22();
    h.mint = extension_mint(&mut h, &[ExtensionType::MetadataPointer]);
    let payee = h.funded();
    let p = OpenParams::default();
    let (chan, res) = h.try_open(&payee.pubkey(), &p);
    ok(res);
    assert_eq!(h.balance(&chan.vault_tokens), 1_000_000);
    assert_eq!(h.balance(&chan.payer_tokens), PAYER_BALANCE - 1_000_000);
    assert_eq!(h.vault(&chan.vault).outstanding, 1_000_000);
    assert_eq!(h.vault(&chan.vault).mint, h.mint);

    let payee_tokens = h.payout_account(&payee.pubkey(), 0);
    let accts = SettleAccounts::for_chan(&chan, payee_tokens);
    h.settle(&accts, &[chan.voucher(400_000, 0)]);
    assert_eq!(h.balance(&payee_tokens), 400_000);

    ok(h.close_without_voucher(&chan, &payee, payee_tokens));
    assert_eq!(h.balance(&chan.payer_tokens), PAYER_BALANCE - 400_000);
    assert_eq!(h.balance(&chan.vault_tokens), 0);
    assert_eq!(h.vault(&chan.vault).outstanding, 0);
    assert_closed(&h, &chan, 400_000, 600_000);
}
