//! The known vectors the TypeScript client (`clients/ts`) is tested against:
//! `clients/ts/test/vectors/voucher-v1.json` holds vouchers signed by this
//! workspace's `paychan-voucher` (the 50 bytes, the signer, the signature and
//! the exact JSON text), and `npm test` in `clients/ts` checks that its own
//! encoder and signer produce the same. This test keeps the file honest: every
//! entry is recomputed here and must match byte for byte.
//!
//! The same file holds `open` and `top_up` instructions built by
//! `paychan-sdk` for fixed keys (accounts with their flags, data, the channel
//! address): the TS builders (`src/program.ts`) must produce them exactly.
//!
//! To regenerate the file after a deliberate change, run this test with
//! `PAYCHAN_WRITE_TS_VECTORS=1`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use ed25519_dalek::SigningKey;
use paychan_sdk::Pubkey;
use paychan_sdk::ix;
use paychan_sdk::ix::OpenArgs;
use paychan_voucher::{SignedVoucherJson, VoucherV1, sign_v1};
use serde_json::{Value, json};

fn vectors_file() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../clients/ts/test/vectors/voucher-v1.json"
    ))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// (seed, channel id, cumulative amount, expires_at) of each vector.
fn cases() -> Vec<([u8; 32], [u8; 32], u64, i64)> {
    let mut counting = [0u8; 32];
    for (i, b) in counting.iter_mut().enumerate() {
        *b = u8::try_from(i).unwrap();
    }
    vec![
        // 2030-01-01T00:00:00Z, a multi-byte amount.
        (counting, [42; 32], 123_456_789_012, 1_893_456_000),
        // No expiry (the field is left out of the JSON).
        ([7; 32], [0xa5; 32], 1_000, 0),
        // The largest amount.
        ([0xff; 32], [1; 32], u64::MAX, 1_700_000_000),
    ]
}

fn compute() -> Value {
    let vouchers: Vec<Value> = cases()
        .into_iter()
        .map(|(seed, channel_id, cumulative, expires_at)| {
            let key = SigningKey::from_bytes(&seed);
            let voucher = VoucherV1 {
                channel_id,
                cumulative_amount: cumulative,
                expires_at,
            };
            let signed = sign_v1(&key, &voucher);
            signed.verify_strict().unwrap();
            let j = SignedVoucherJson::try_from(&signed).unwrap();
            json!({
                "seed": hex(&seed),
                "channelId": j.voucher.channel_id,
                "cumulativeAmount": j.voucher.cumulative_amount,
                "expiresAt": expires_at,
                "bytes": hex(&voucher.encode()),
                "signer": j.signer,
                "signature": j.signature,
                "json": serde_json::to_string(&j).unwrap(),
            })
        })
        .collect();
    json!({
        "about": "v1 vouchers signed by crates/paychan-voucher (sign_v1) and their JSON form (SignedVoucherJson); open and top_up built by crates/paychan-sdk; checked by crates/paychan-client/tests/ts_vectors.rs",
        "vouchers": vouchers,
        "instructions": instructions(),
    })
}

fn instruction_json(ix: &paychan_sdk::Instruction) -> Value {
    json!({
        "programId": ix.program_id.to_string(),
        "accounts": ix.accounts.iter().map(|m| json!({
            "address": m.pubkey.to_string(),
            "signer": m.is_signer,
            "writable": m.is_writable,
        })).collect::<Vec<_>>(),
        "data": hex(&ix.data),
    })
}

fn instructions() -> Value {
    let key = |b: u8| Pubkey::new_from_array([b; 32]);
    let (payer, payee, mint, payer_tokens, signer) = (key(1), key(2), key(3), key(4), key(5));
    let token_program = paychan_sdk::TOKEN_PROGRAM_ID;
    let args = OpenArgs {
        salt: 0x0123_4567_89ab_cdef,
        open_slot: 987_654_321,
        deposit: 1_000_000,
        grace_period: 900,
        authorized_signer: signer,
    };
    let (open, channel) = ix::open(
        &ix::OpenAccounts {
            payer,
            rent_payer: payer,
            payee,
            mint,
            payer_tokens,
            token_program,
        },
        args,
    );
    let top_up = ix::top_up(
        &channel,
        &payer,
        &payer_tokens,
        &payee,
        &mint,
        &token_program,
        250_000,
    );
    json!({
        "keys": {
            "payer": payer.to_string(),
            "payee": payee.to_string(),
            "mint": mint.to_string(),
            "payerTokens": payer_tokens.to_string(),
            "authorizedSigner": signer.to_string(),
            "tokenProgram": token_program.to_string(),
        },
        "open": {
            "salt": args.salt.to_string(),
            "openSlot": args.open_slot.to_string(),
            "deposit": args.deposit.to_string(),
            "gracePeriod": args.grace_period,
            "channel": channel.to_string(),
            "instruction": instruction_json(&open),
        },
        "topUp": {
            "amount": "250000",
            "instruction": instruction_json(&top_up),
        },
    })
}

#[test]
fn the_typescript_vectors_are_what_the_rust_crate_produces() {
    let expected = compute();
    let path = vectors_file();
    if std::env::var_os("PAYCHAN_WRITE_TS_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&expected).unwrap() + "\n";
        std::fs::write(&path, text).unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let actual: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        actual,
        expected,
        "{} differs from what paychan-voucher signs; expected:\n{}",
        path.display(),
        serde_json::to_string_pretty(&expected).unwrap()
    );
    assert_eq!(actual["vouchers"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        actual["instructions"]["open"]["instruction"]["accounts"]
            .as_array()
            .map(Vec::len),
        Some(10)
    );
}
