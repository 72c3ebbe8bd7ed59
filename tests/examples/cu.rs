//! Compute units per instruction of the real `paychan.so` in LiteSVM.
//!
//! `cargo run -p paychan-tests --example cu` (or `scripts/bench-cu.sh`) prints a table and writes
//! `target/bench/cu.json`. Figures are whole-transaction CU as LiteSVM
//! reports them (the Ed25519 precompile costs no CU from the budget; the
//! token program's CPI is included), and the fee LiteSVM charged the fee
//! payer (5,000 lamports per transaction signature and per precompile
//! signature; no priority fee is set).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::result_large_err
)]

#[path = "../program/common/mod.rs"]
mod common;

use std::collections::BTreeMap;

use anchor_lang::prelude::Pubkey;
use common::*;
use paychan::constants::{
    MAX_SETTLE_BATCH_CHANNELS, MAX_SETTLE_SIGNED_VOUCHERS, MAX_SETTLE_VOUCHERS,
};
use solana_signer::Signer;

fn cu(res: TxResult) -> u64 {
    ok(res).compute_units_consumed
}

/// Sends as the harness's fee payer; returns (CU, lamports the fee payer paid).
fn cu_and_fee(h: &mut Harness, res: impl FnOnce(&mut Harness) -> TxResult) -> (u64, u64) {
    let (res, fee) = fee_of(h, res);
    (cu(res), fee)
}

fn main() {
    let mut out: BTreeMap<String, u64> = BTreeMap::new();
    let mut fees: BTreeMap<String, u64> = BTreeMap::new();

    // open: the first channel to a payee also creates the vault and its token account.
    let mut h = Harness::new();
    let payee = h.funded();
    let p = OpenParams::default();
    let first = h.prepare(&payee.pubkey(), &p);
    out.insert(
        "open (new vault)".into(),
        cu(h.send(&[open_ix(&first, &p)], &[&first.payer])),
    );
    let chan = h.prepare(&payee.pubkey(), &p);
    out.insert(
        "open".into(),
        cu(h.send(&[open_ix(&chan, &p)], &[&chan.payer])),
    );
    let top = top_up_ix(&chan, &chan.payer.pubkey(), &chan.payer_tokens, 1_000);
    out.insert("top_up".into(), cu(h.send(&[top], &[&chan.payer])));

    // settle with N = 1..=MAX_SETTLE_VOUCHERS vouchers of different payers.
    let max = u64::from(MAX_SETTLE_VOUCHERS);
    let payee_tokens = h.payout_account(&payee.pubkey(), 0);
    let chans: Vec<Chan> = (0..max.max(3))
        .map(|_| h.open_channel(&payee.pubkey(), 1_000_000))
        .collect();
    let accts = SettleAccounts::for_chan(&chans[0], payee_tokens);
    for n in 1..=max {
        let vouchers: Vec<_> = chans[..n as usize]
            .iter()
            .map(|c| c.voucher(n * 10, 0))
            .collect();
        let (units, fee) = cu_and_fee(&mut h, |h| h.send_as(&settle_ixs(&accts, &vouchers), &[]));
        out.insert(format!("settle N={n}"), units);
        fees.insert(format!("settle N={n}"), fee);
    }

    // settle_signed with N = 1..=MAX_SETTLE_SIGNED_VOUCHERS vouchers of
    // different payers: v0 transactions loading the shared accounts and the
    // channels from a lookup table, with the SDK's compute-unit limit.
    let signed_max = u64::from(MAX_SETTLE_SIGNED_VOUCHERS);
    let signed: Vec<Chan> = (0..signed_max)
        .map(|_| h.open_channel(&payee.pubkey(), 1_000_000))
        .collect();
    let signed_table = settle_table(&mut h, &accts, accts.token_program, &signed);
    h.advance(1, 1);
    for n in 1..=signed_max {
        let vouchers: Vec<_> = signed[..n as usize]
            .iter()
            .map(|c| c.voucher(n * 10, 0))
            .collect();
        let ixs = settle_signed_ixs(&accts, &vouchers);
        let payer = h.fee_payer.insecure_clone();
        let table = signed_table.clone();
        let (units, fee) = cu_and_fee(&mut h, |h| {
            h.send_v0(&ixs, &[&payer], std::slice::from_ref(&table))
        });
        assert!(
            units <= u64::from(paychan_sdk::ix::settle_signed_compute_units(n as usize)),
            "settle_signed N={n} used {units} CU, above the SDK's limit"
        );
        out.insert(format!("settle_signed N={n}"), units);
        fees.insert(format!("settle_signed N={n}"), fee);
    }

    // settle_batch with N = 1, 16, 32 and the most that fits a v0 transaction.
    let batch_max = usize::from(MAX_SETTLE_BATCH_CHANNELS);
    let signer = new_signing_key();
    let mut batch: Vec<Chan> = (0..batch_max)
        .map(|_| h.open_channel_with_signer(&payee.pubkey(), 1_000_000, &signer))
        .collect();
    batch.sort_by_key(|c| c.address.to_bytes());
    let table = settle_table(&mut h, &accts, accts.instructions, &batch);
    h.advance(1, 1);
    let budget = solana_compute_budget_interface::ComputeBudgetInstruction::set_compute_unit_limit(
        1_400_000,
    );
    for (round, n) in [1usize, 16, 32, batch_max].into_iter().enumerate() {
        let ids: Vec<Pubkey> = batch[..n].iter().map(|c| c.address).collect();
        let targets = vec![(round as u64 + 1) * 100; n];
        let mut ixs = vec![budget.clone()];
        ixs.extend(settle_batch_ixs(&accts, &signer, &ids, &targets, 0));
        let payer = h.fee_payer.insecure_clone();
        let tx_cu = cu(h.send_v0(&ixs, &[&payer], std::slice::from_ref(&table)));
        out.insert(format!("settle_batch N={n}"), tx_cu);
    }

    // close (with and without a final voucher), request_close, finalize, reclaim.
    let c = &chans[0];
    let close = CloseAccounts::of(c, payee_tokens);
    let ixs = vec![
        ed25519_ix(&[c.voucher(500, 0)]),
        close_ix(c, &payee.pubkey(), &close, true),
    ];
    out.insert(
        "close (final voucher)".into(),
        cu(h.send_as(&ixs, &[&payee])),
    );
    let c = &chans[1];
    let close = CloseAccounts::of(c, payee_tokens);
    out.insert(
        "close".into(),
        cu(h.send_as(&[close_ix(c, &payee.pubkey(), &close, false)], &[&payee])),
    );
    let c = &chans[2];
    out.insert(
        "request_close".into(),
        cu(h.send(&[request_close_ix(c, &c.payer.pubkey())], &[&c.payer])),
    );
    h.advance(paychan::constants::OPEN_SLOT_WINDOW + 1, GRACE);
    out.insert(
        "finalize (deletes the account)".into(),
        cu(h.send_as(&[finalize_ix(c, &c.payer_tokens, &c.payer.pubkey())], &[])),
    );
    out.insert(
        "reclaim".into(),
        cu(h.send_as(&[reclaim_ix(&chans[1], &chans[1].payer.pubkey())], &[])),
    );

    // migrate_vault of a vault rewritten in the version-1 layout.
    let c = &chans[max as usize - 1];
    h.write_v1_vault(&c.vault);
    let migrator = h.funded();
    out.insert(
        "migrate_vault".into(),
        cu(h.send(
            &[paychan_sdk::ix::migrate_vault(
                &migrator.pubkey(),
                &payee.pubkey(),
                &c.mint,
            )],
            &[&migrator],
        )),
    );

    let settle_max = out[&format!("settle N={max}")];
    let settle1 = out["settle N=1"];
    let per_voucher = settle_max / max;
    let marginal = (settle_max - settle1) / (max - 1);
    let signed_at_max = out[&format!("settle_signed N={signed_max}")];
    let signed1 = out["settle_signed N=1"];
    let signed_per_voucher = signed_at_max / signed_max;
    let signed_marginal = (signed_at_max - signed1) / (signed_max - 1);
    let lamports_per_voucher =
        |kind: &str, n: u64| fees[&format!("{kind} N={n}")] as f64 / n as f64;
    let batch_n = batch_max as u64;
    let batch_cu = out[&format!("settle_batch N={batch_max}")];
    let batch_marginal = (batch_cu - out["settle_batch N=1"]) / (batch_n - 1);
    println!("{:<34} {:>9}", "instruction", "CU");
    for (k, v) in &out {
        println!("{k:<34} {v:>9}");
    }
    println!("settle N={max}: {per_voucher} CU per voucher ({marginal} marginal)");
    println!(
        "settle_batch N={batch_max}: {} CU per channel ({batch_marginal} marginal)",
        batch_cu / batch_n
    );
    println!(
        "settle_signed N={signed_max}: {signed_per_voucher} CU per voucher ({signed_marginal} marginal)"
    );
    println!(
        "{:<24} {:>9} {:>22}",
        "fees", "lamports", "lamports per voucher"
    );
    for (k, v) in &fees {
        let n: u64 = k
            .rsplit('=')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        println!("{k:<24} {v:>9} {:>22.1}", *v as f64 / n as f64);
    }

    let json = serde_json::json!({
        "unit": "compute units per transaction (LiteSVM 0.16, SBPF v3 paychan.so)",
        "instructions": out,
        "settle_max_vouchers": max,
        "settle_cu_per_voucher_at_max": per_voucher,
        "settle_marginal_cu_per_voucher": marginal,
        "settle_batch_max_channels": batch_max,
        "settle_batch_cu_per_channel_at_max": batch_cu / batch_n,
        "settle_batch_marginal_cu_per_channel": batch_marginal,
        "settle_signed_max_vouchers": signed_max,
        "settle_signed_cu_per_voucher_at_max": signed_per_voucher,
        "settle_signed_marginal_cu_per_voucher": signed_marginal,
        "fees_lamports": fees,
        "lamports_per_settled_voucher": {
            "settle (precompile) at its cap": lamports_per_voucher("settle", max),
            "settle_signed at its cap": lamports_per_voucher("settle_signed", signed_max),
            "settle N=1": lamports_per_voucher("settle", 1),
            "settle_signed N=1": lamports_per_voucher("settle_signed", 1),
        },
    });
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cu.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    println!("wrote {}", path.display());
}
