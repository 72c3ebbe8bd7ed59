//! This crate describes the program without depending on it; these tests
//! hold every description against the program crate's own definitions and
//! the committed IDL, so the two cannot drift apart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anchor_lang::{
    AccountSerialize, Discriminator, Event as _, InstructionData, Space, ToAccountMetas,
};
use paychan_sdk::{
    PaychanError, Pubkey, constants as c,
    events::{self, Event},
    ids, ix, pda,
    state::{Channel, ChannelStatus, PayeeVault},
};

#[test]
fn ids_and_constants_are_the_programs() {
    assert_eq!(paychan_sdk::ID, paychan::ID);
    assert_eq!(ids::SYSTEM_PROGRAM, anchor_lang::system_program::ID);
    assert_eq!(ids::TOKEN_PROGRAM, anchor_spl::token::ID);
    assert_eq!(ids::TOKEN_2022_PROGRAM, anchor_spl::token_2022::ID);
    assert_eq!(
        ids::ASSOCIATED_TOKEN_PROGRAM,
        anchor_spl::associated_token::ID
    );
    assert_eq!(
        ids::INSTRUCTIONS_SYSVAR,
        anchor_lang::compat::solana_instructions_sysvar::ID
    );
    use paychan::constants as p;
    assert_eq!(c::SEED_CHANNEL, p::SEED_CHANNEL);
    assert_eq!(c::SEED_VAULT, p::SEED_VAULT);
    assert_eq!(c::SEED_VAULT_TOKENS, p::SEED_VAULT_TOKENS);
    assert_eq!(c::OPEN_SLOT_WINDOW, p::OPEN_SLOT_WINDOW);
    assert_eq!(c::MIN_GRACE_PERIOD_SECS, p::MIN_GRACE_PERIOD_SECS);
    assert_eq!(c::MAX_GRACE_PERIOD_SECS, p::MAX_GRACE_PERIOD_SECS);
    assert_eq!(c::MAX_SETTLE_VOUCHERS, p::MAX_SETTLE_VOUCHERS);
    assert_eq!(c::MAX_SETTLE_SIGNED_VOUCHERS, p::MAX_SETTLE_SIGNED_VOUCHERS);
    assert_eq!(c::MAX_SETTLE_BATCH_CHANNELS, p::MAX_SETTLE_BATCH_CHANNELS);
    assert_eq!(c::CHANNEL_VERSION, p::CHANNEL_VERSION);
    assert_eq!(c::MIN_CHANNEL_VERSION, p::MIN_CHANNEL_VERSION);
    assert_eq!(c::VAULT_VERSION, p::VAULT_VERSION);
}

#[test]
fn addresses_are_the_programs() {
    let (payee, mint, payer, signer) = (
        Pubkey::new_unique(),
        Pubkey::new_unique(),
        Pubkey::new_unique(),
        Pubkey::new_unique(),
    );
    for token_program in [ids::TOKEN_PROGRAM, ids::TOKEN_2022_PROGRAM] {
        assert_eq!(
            pda::payout(&payee, &mint, &token_program),
            paychan::token::payee_payout_account(&payee, &mint, &token_program)
        );
    }
    let vault = Pubkey::find_program_address(
        &[
            paychan::constants::SEED_VAULT,
            payee.as_ref(),
            mint.as_ref(),
        ],
        &paychan::ID,
    )
    .0;
    assert_eq!(pda::vault(&payee, &mint), vault);
    let channel = Pubkey::find_program_address(
        &[
            paychan::constants::SEED_CHANNEL,
            payer.as_ref(),
            payee.as_ref(),
            mint.as_ref(),
            signer.as_ref(),
            &7u64.to_le_bytes(),
            &9u64.to_le_bytes(),
        ],
        &paychan::ID,
    )
    .0;
    assert_eq!(pda::channel(&payer, &payee, &mint, &signer, 7, 9), channel);
}

fn program_channel() -> paychan::state::Channel {
    paychan::state::Channel {
        payer: Pubkey::new_unique(),
        payee: Pubkey::new_unique(),
        mint: Pubkey::new_unique(),
        authorized_signer: Pubkey::new_unique(),
        rent_payer: Pubkey::new_unique(),
        deposit: 1_000,
        settled: 250,
        refunded: 3,
        salt: 0x0102_0304_0506_0708,
        open_slot: 99,
        closure_started_at: 1_700_000_000,
        grace_period: 600,
        version: 1,
        bump: 253,
        status: 2,
        reserved: [0; 5],
    }
}

#[test]
fn accounts_decode_as_the_program_writes_them() {
    assert_eq!(
        Channel::DISCRIMINATOR,
        paychan::state::Channel::DISCRIMINATOR
    );
    assert_eq!(Channel::LEN, paychan::state::Channel::LEN);
    let p = program_channel();
    let mut data = paychan::state::Channel::DISCRIMINATOR.to_vec();
    data.extend_from_slice(bytemuck::bytes_of(&p));
    let s = Channel::decode(&data).unwrap();
    assert_eq!(s.encode(), data);
    assert_eq!(
        (s.payer, s.payee, s.mint, s.authorized_signer, s.rent_payer),
        (p.payer, p.payee, p.mint, p.authorized_signer, p.rent_payer)
    );
    assert_eq!(
        (s.deposit, s.settled, s.refunded, s.salt, s.open_slot),
        (p.deposit, p.settled, p.refunded, p.salt, p.open_slot)
    );
    assert_eq!(
        (
            s.closure_started_at,
            s.grace_period,
            s.version,
            s.bump,
            s.status
        ),
        (
            p.closure_started_at,
            p.grace_period,
            p.version,
            p.bump,
            p.status
        )
    );
    assert_eq!(s.remaining().ok(), p.remaining().ok());
    assert_eq!(s.grace_ends_at(), p.grace_ends_at().ok());
    for v in 0..=u8::MAX {
        assert_eq!(
            ChannelStatus::from_u8(v).map(|s| s as u8),
            paychan::state::ChannelStatus::from_u8(v)
                .ok()
                .map(|s| s as u8),
            "status {v}"
        );
        let (mut ps, mut ss) = (p, s);
        (ps.version, ss.version) = (v, v);
        assert_eq!(
            ss.version_supported(),
            ps.version_supported(),
            "version {v}"
        );
    }

    let vault = paychan::state::PayeeVault {
        payee: Pubkey::new_unique(),
        mint: Pubkey::new_unique(),
        token_program: ids::TOKEN_PROGRAM,
        tokens: Pubkey::new_unique(),
        outstanding: 12_345,
        decimals: 6,
        bump: 251,
        tokens_bump: 250,
        payout: Pubkey::new_unique(),
        version: 2,
    };
    let mut data = Vec::new();
    vault.try_serialize(&mut data).unwrap();
    assert_eq!(data.len(), PayeeVault::SIZE);
    assert_eq!(data.len(), 8 + paychan::state::PayeeVault::INIT_SPACE);
    let d = PayeeVault::decode(&data).unwrap();
    assert_eq!(
        (d.payee, d.mint, d.token_program, d.tokens),
        (vault.payee, vault.mint, vault.token_program, vault.tokens)
    );
    assert_eq!(
        (
            d.outstanding,
            d.decimals,
            d.bump,
            d.tokens_bump,
            d.payout,
            d.version
        ),
        (12_345, 6, 251, 250, Some(vault.payout), 2)
    );
    // The first layout is the current one without `payout` and `version`.
    let v1 = &data[..8 + paychan::state::VAULT_V1_LEN];
    let d1 = PayeeVault::decode(v1).unwrap();
    assert_eq!((d1.payout, d1.version, d1.outstanding), (None, 1, 12_345));
}

#[test]
fn errors_are_the_idls() {
    let idl: serde_json::Value =
        serde_json::from_str(include_str!("../../../idl/paychan.json")).unwrap();
    let errors = idl["errors"].as_array().unwrap();
    assert_eq!(errors.len(), PaychanError::ALL.len());
    for (e, idl) in PaychanError::ALL.iter().zip(errors) {
        assert_eq!(u64::from(e.code()), idl["code"].as_u64().unwrap());
        assert_eq!(e.name(), idl["name"].as_str().unwrap());
        assert_eq!(e.message(), idl["msg"].as_str().unwrap());
    }
    // And the program's own enum, for the errors clients act on.
    for (sdk, program) in [
        (
            PaychanError::CumulativeNotIncreasing,
            paychan::error::PaychanError::CumulativeNotIncreasing,
        ),
        (
            PaychanError::CumulativeExceedsDeposit,
            paychan::error::PaychanError::CumulativeExceedsDeposit,
        ),
        (
            PaychanError::UnsupportedVersion,
            paychan::error::PaychanError::UnsupportedVersion,
        ),
    ] {
        assert_eq!(sdk.code(), u32::from(program));
        assert_eq!(sdk.message(), program.to_string());
    }
    use anchor_lang::error::ErrorCode as A;
    let anchor = [
        A::ConstraintMut,
        A::ConstraintSigner,
        A::ConstraintRaw,
        A::ConstraintOwner,
        A::ConstraintSeeds,
        A::ConstraintAddress,
        A::ConstraintTokenMint,
        A::ConstraintTokenOwner,
        A::AccountDiscriminatorNotFound,
        A::AccountDiscriminatorMismatch,
        A::AccountDidNotDeserialize,
        A::AccountNotMutable,
        A::AccountOwnedByWrongProgram,
        A::AccountNotSigner,
        A::AccountNotInitialized,
    ];
    assert_eq!(anchor.len(), paychan_sdk::error::ANCHOR_ERRORS.len());
    for (a, (code, name, _)) in anchor.into_iter().zip(paychan_sdk::error::ANCHOR_ERRORS) {
        assert_eq!((u32::from(a), format!("{a:?}")), (*code, name.to_string()));
    }
}

#[test]
fn events_decode_as_the_program_logs_them() {
    let channel = Pubkey::new_unique();
    let settled = paychan::events::ChannelSettled {
        channel,
        settled: 70,
        amount: 30,
    };
    assert_eq!(
        events::ChannelSettled::DISCRIMINATOR,
        paychan::events::ChannelSettled::DISCRIMINATOR
    );
    assert_eq!(
        Event::decode(&settled.data()),
        Some(Event::Settled(events::ChannelSettled {
            channel,
            settled: 70,
            amount: 30
        }))
    );
    let closed = paychan::events::ChannelClosed {
        channel,
        settled: 70,
        paid: 5,
        refunded: 25,
        finalized: true,
    };
    assert_eq!(
        Event::decode(&closed.data()),
        Some(Event::Closed(events::ChannelClosed {
            channel,
            settled: 70,
            paid: 5,
            refunded: 25,
            finalized: true
        }))
    );
    let requested = paychan::events::CloseRequested {
        channel,
        closure_started_at: 1_000,
        grace_ends_at: 1_600,
    };
    assert_eq!(
        Event::decode(&requested.data()),
        Some(Event::CloseRequested(events::CloseRequested {
            channel,
            closure_started_at: 1_000,
            grace_ends_at: 1_600
        }))
    );
}

/// Every builder gives the instruction Anchor's client code would.
#[test]
fn instructions_are_the_programs() {
    use paychan::{accounts as pa, instruction as pi};
    let k = || Pubkey::new_unique();
    let (payer, payee, mint, signer, payer_tokens, rent_payer) = (k(), k(), k(), k(), k(), k());
    let token_program = ids::TOKEN_2022_PROGRAM;
    let vault = pda::vault(&payee, &mint);
    let vault_tokens = pda::vault_tokens(&vault);
    let payout = pda::payout(&payee, &mint, &token_program);

    let args = ix::OpenArgs {
        salt: 5,
        open_slot: 77,
        deposit: 1_000_000,
        grace_period: 3_600,
        authorized_signer: signer,
    };
    let (open, channel) = ix::open(
        &ix::OpenAccounts {
            payer,
            rent_payer,
            payee,
            mint,
            payer_tokens,
            token_program,
        },
        args,
    );
    assert_eq!(channel, pda::channel(&payer, &payee, &mint, &signer, 5, 77));
    assert_eq!(open.program_id, paychan::ID);
    assert_eq!(
        open.accounts,
        pa::Open {
            payer,
            rent_payer,
            payee,
            mint,
            payer_tokens,
            channel,
            vault,
            vault_tokens,
            token_program,
            system_program: anchor_lang::system_program::ID,
        }
        .to_account_metas(None)
    );
    let program_args = paychan::instructions::OpenArgs {
        salt: 5,
        open_slot: 77,
        deposit: 1_000_000,
        grace_period: 3_600,
        authorized_signer: signer,
    };
    assert_eq!(open.data, pi::Open { args: program_args }.data());

    let top_up = ix::top_up(
        &channel,
        &payer,
        &payer_tokens,
        &payee,
        &mint,
        &token_program,
        9,
    );
    assert_eq!(
        top_up.accounts,
        pa::TopUp {
            payer,
            channel,
            vault,
            vault_tokens,
            payer_tokens,
            mint,
            token_program,
        }
        .to_account_metas(None)
    );
    assert_eq!(top_up.data, pi::TopUp { amount: 9 }.data());

    let settle = ix::SettleAccounts::new(&payee, &mint, token_program);
    let channels = [k(), k()];
    let mut metas = pa::Settle {
        vault,
        vault_tokens,
        payee_tokens: payout,
        mint,
        token_program,
        instructions: ids::INSTRUCTIONS_SYSVAR,
    }
    .to_account_metas(None);
    metas.extend(
        channels
            .iter()
            .map(|c| anchor_lang::prelude::AccountMeta::new(*c, false)),
    );
    let single = settle.settle_ix(&channels);
    assert_eq!(
        (single.accounts.clone(), single.data),
        (metas.clone(), pi::Settle {}.data())
    );
    let batch = settle.settle_batch_ix(&channels);
    assert_eq!(
        (batch.accounts, batch.data),
        (metas, pi::SettleBatch {}.data())
    );

    let vouchers: Vec<paychan_voucher::SignedVoucher> = [(7u64, 0i64, 1u8), (u64::MAX, -3, 2)]
        .iter()
        .map(
            |&(cumulative_amount, expires_at, fill)| paychan_voucher::SignedVoucher {
                voucher: paychan_voucher::VoucherV1 {
                    channel_id: k().to_bytes(),
                    cumulative_amount,
                    expires_at,
                },
                signer: [0; 32],
                signature: [fill; 64],
            },
        )
        .collect();
    let signed = settle.settle_signed_ix(&vouchers);
    let mut metas = pa::SettleSigned {
        vault,
        vault_tokens,
        payee_tokens: payout,
        mint,
        token_program,
    }
    .to_account_metas(None);
    metas.extend(vouchers.iter().map(|v| {
        anchor_lang::prelude::AccountMeta::new(Pubkey::new_from_array(v.voucher.channel_id), false)
    }));
    let args = vouchers
        .iter()
        .map(|v| paychan::instructions::SignedVoucherArgs {
            cumulative_amount: v.voucher.cumulative_amount,
            expires_at: v.voucher.expires_at,
            signature: v.signature,
        })
        .collect();
    assert_eq!(
        (signed.accounts, signed.data.clone()),
        (metas, pi::SettleSigned { vouchers: args }.data())
    );
    assert_eq!(ix::instruction_name(&signed.data), Some("settle_signed"));

    let accounts = ix::ChannelAccounts {
        channel,
        payee,
        mint,
        token_program,
        payer_tokens,
        rent_payer,
    };
    for with_final_voucher in [false, true] {
        let close = ix::close(&accounts, with_final_voucher);
        assert_eq!(
            close.accounts,
            pa::Close {
                payee,
                channel,
                vault,
                vault_tokens,
                payee_tokens: payout,
                payer_tokens,
                rent_payer,
                mint,
                token_program,
                instructions: ids::INSTRUCTIONS_SYSVAR,
            }
            .to_account_metas(None)
        );
        assert_eq!(close.data, pi::Close { with_final_voucher }.data());
    }
    let finalize = ix::finalize(&accounts);
    assert_eq!(
        finalize.accounts,
        pa::Finalize {
            channel,
            vault,
            vault_tokens,
            payer_tokens,
            rent_payer,
            mint,
            token_program,
        }
        .to_account_metas(None)
    );
    assert_eq!(finalize.data, pi::Finalize {}.data());
    let reclaim = ix::reclaim(&channel, &rent_payer);
    assert_eq!(
        (reclaim.accounts, reclaim.data),
        (
            pa::Reclaim {
                channel,
                rent_payer
            }
            .to_account_metas(None),
            pi::Reclaim {}.data()
        )
    );
    let request = ix::request_close(&channel, &payer);
    assert_eq!(
        (request.accounts, request.data),
        (
            pa::RequestClose { payer, channel }.to_account_metas(None),
            pi::RequestClose {}.data()
        )
    );
    let migrate = ix::migrate_vault(&payer, &payee, &mint);
    assert_eq!(
        (migrate.accounts, migrate.data),
        (
            pa::MigrateVault {
                payer,
                vault,
                system_program: anchor_lang::system_program::ID,
            }
            .to_account_metas(None),
            pi::MigrateVault {}.data()
        )
    );
}
