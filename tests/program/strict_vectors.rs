//! On chain = off chain: the Ed25519 edge-case vectors of
//! `crates/paychan-voucher/tests/vectors` (every key kind — valid, the 14
//! small-order encodings, mixed order, non-canonical, not a point — times
//! every signature construction, documented there) through the real
//! program's `settle_signed`. For each: the channel's authorized signer is
//! the vector's key, the message is the channel's real v1 voucher, and the
//! program must accept exactly when ed25519-dalek's `verify_strict` does —
//! paying the increment — and refuse with `InvalidSignature` otherwise.
use anchor_lang::prelude::Pubkey;
use ed25519_dalek::{Signature, VerifyingKey};
use paychan::error::PaychanError;
use paychan_voucher::{SignedVoucher, VoucherV1};
use solana_signer::Signer;

use crate::common::*;

#[path = "../../crates/paychan-voucher/tests/vectors/mod.rs"]
mod vectors;

fn dalek(pubkey: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    VerifyingKey::from_bytes(pubkey)
        .map(|k| {
            k.verify_strict(message, &Signature::from_bytes(signature))
                .is_ok()
        })
        .unwrap_or(false)
}

/// Opens a channel whose authorized signer is `signer` (any 32 bytes the
/// program accepts); for the all-zero key, which `open` refuses, a copy of
/// another channel's account with that signer at a fresh address.
fn channel_for(h: &mut Harness, payee: &Pubkey, signer: [u8; 32]) -> Pubkey {
    let p = OpenParams {
        deposit: 1_000_000,
        ..Default::default()
    };
    let mut chan = h.prepare(payee, &p);
    let signer_pk = Pubkey::new_from_array(signer);
    chan.address = channel_address(
        &chan.payer.pubkey(),
        payee,
        &chan.mint,
        &signer_pk,
        chan.salt,
        chan.open_slot,
    );
    let mut args = open_args(&chan, &p);
    args.authorized_signer = signer_pk;
    let ix = open_ix_with(&chan, args, chan.payer.pubkey());
    let payer = chan.payer.insecure_clone();
    if signer == [0; 32] {
        assert_err(
            &h.send(&[ix], &[&payer]),
            PaychanError::InvalidAuthorizedSigner,
        );
        let model = h.open_channel(payee, 1_000_000);
        let mut account = h.svm.get_account(&model.address).unwrap();
        let mut c: paychan::state::Channel = *bytemuck::from_bytes(&account.data[8..]);
        c.authorized_signer = signer_pk;
        account.data[8..].copy_from_slice(bytemuck::bytes_of(&c));
        let address = Pubkey::new_unique();
        h.svm.set_account(address, account).unwrap();
        return address;
    }
    ok(h.send(&[ix], &[&payer]));
    chan.address
}

#[test]
fn the_edge_case_vectors_give_the_same_verdict_on_chain_as_off_chain() {
    let mut h = Harness::new();
    let payee = Pubkey::new_unique();
    let payee_tokens = h.payout_account(&payee, 0);
    let seed = 17;
    let (mut accepted, mut refused) = (0u64, 0u64);
    let mut paid = 0u64;
    for key in vectors::keys(seed) {
        let channel = channel_for(&mut h, &payee, key.bytes);
        let accts = {
            let mut a = SettleAccounts::new(&payee, &h.mint, h.token_program);
            a.payee_tokens = payee_tokens;
            a
        };
        for (i, case) in vectors::Case::all().into_iter().enumerate() {
            let voucher = VoucherV1 {
                channel_id: channel.to_bytes(),
                cumulative_amount: 1 + i as u64,
                expires_at: 0,
            };
            let message = voucher.encode();
            let Some(signature) = vectors::sign(&key, case, &message, seed + i as u64) else {
                continue;
            };
            let name = format!("{} / {}", key.name, case.name());
            let expected = vectors::expected(&key, case);
            assert_eq!(
                dalek(&key.bytes, &message, &signature),
                expected,
                "dalek: {name}"
            );
            assert_eq!(
                paychan_voucher::strict::verify_strict(&key.bytes, &message, &signature).is_ok(),
                expected,
                "strict: {name}"
            );
            let before = h.channel(&channel).settled;
            let signed = SignedVoucher {
                voucher,
                signer: key.bytes,
                signature,
            };
            let res = h.settle_by(SettleBy::Program, &accts, &[signed]);
            if expected {
                ok(res);
                assert_eq!(
                    h.channel(&channel).settled,
                    voucher.cumulative_amount,
                    "{name}"
                );
                paid += voucher.cumulative_amount - before;
                accepted += 1;
            } else {
                assert_err(&res, PaychanError::InvalidSignature);
                assert_eq!(h.channel(&channel).settled, before, "{name}");
                refused += 1;
            }
            assert_eq!(h.balance(&payee_tokens), paid, "{name}");
        }
    }
    println!("on-chain strict vectors: {accepted} accepted, {refused} refused, as ed25519-dalek");
    assert!(accepted >= 13, "{accepted}");
    assert!(refused > 900, "{refused}");
}
