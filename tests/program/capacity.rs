//! Transaction capacity: the largest N of real, signed settle transactions
//! that fit the 1,232-byte packet (and the 64 account locks), executed on
//! the real program to prove they are valid. Prints the figures.
//!
//! LiteSVM does not check the packet size, so this test does: the program's
//! caps (`MAX_SETTLE_VOUCHERS`, `MAX_SETTLE_BATCH_CHANNELS`) must equal what
//! it measures, and a change to either side fails here.
use anchor_lang::{prelude::Pubkey, solana_program::instruction::Instruction};
use litesvm::types::TransactionMetadata;
use solana_keypair::Keypair;
use solana_message::{AddressLookupTableAccount, Message, VersionedMessage, v0};
use solana_signer::Signer;
use solana_transaction::{Transaction, versioned::VersionedTransaction};

use crate::common::*;

const PACKET: usize = 1_232;
const MAX_LOCKS: usize = 64;

fn wire_len(tx: &VersionedTransaction) -> usize {
    bincode::serialize(tx).expect("serialise").len()
}

fn compute_limit(units: u32) -> Instruction {
    solana_compute_budget_interface::ComputeBudgetInstruction::set_compute_unit_limit(units)
}

fn locks(tx: &VersionedTransaction) -> usize {
    match &tx.message {
        VersionedMessage::Legacy(m) => m.account_keys.len(),
        VersionedMessage::V0(m) => {
            m.account_keys.len()
                + m.address_table_lookups
                    .iter()
                    .map(|l| l.writable_indexes.len() + l.readonly_indexes.len())
                    .sum::<usize>()
        }
        _ => usize::MAX,
    }
}

struct Setup {
    h: Harness,
    payee_tokens: Pubkey,
    chans: Vec<Chan>,
}

fn setup(n: usize, same_signer: bool) -> Setup {
    let mut h = Harness::new();
    let payee = Pubkey::new_unique();
    let payee_tokens = h.payout_account(&payee, 0);
    let signer = new_signing_key();
    let mut chans: Vec<Chan> = (0..n)
        .map(|_| {
            if same_signer {
                h.open_channel_with_signer(&payee, 1_000_000, &signer)
            } else {
                h.open_channel(&payee, 1_000_000)
            }
        })
        .collect();
    chans.sort_by_key(|c| c.address.to_bytes());
    Setup {
        h,
        payee_tokens,
        chans,
    }
}

impl Setup {
    fn accts(&self) -> SettleAccounts {
        SettleAccounts::for_chan(&self.chans[0], self.payee_tokens)
    }

    /// A lookup table of the shared accounts (`last` after the mint), with the channels or not.
    fn table(&mut self, last: Pubkey, with_channels: bool) -> AddressLookupTableAccount {
        let accts = self.accts();
        let chans: &[Chan] = if with_channels { &self.chans } else { &[] };
        settle_table(&mut self.h, &accts, last, chans)
    }
}

/// `settle` or `settle_signed` of the first `n` channels to `cumulative`.
fn vouchers_tx(
    s: &Setup,
    by: SettleBy,
    cumulative: u64,
    n: usize,
    table: Option<&AddressLookupTableAccount>,
) -> VersionedTransaction {
    let vouchers: Vec<_> = s.chans[..n]
        .iter()
        .map(|c| c.voucher(cumulative, 0))
        .collect();
    build(&s.h, &by.ixs(&s.accts(), &vouchers), table)
}

/// Largest n in 1..=max whose `by` transaction of 1,000 per channel fits one packet.
fn largest_fitting(
    s: &Setup,
    by: SettleBy,
    max: usize,
    t: Option<&AddressLookupTableAccount>,
) -> usize {
    largest(max, |n| {
        wire_len(&vouchers_tx(s, by, 1_000, n, t)) <= PACKET
    })
}

/// Sends the largest legacy transaction (`legacy` channels to 1,000) and the
/// largest v0 one (`with_table` channels to 2,000); each pays exactly.
/// Returns the v0 transaction's metadata.
fn send_the_largest(
    s: &mut Setup,
    by: SettleBy,
    legacy: usize,
    with_table: usize,
    table: &AddressLookupTableAccount,
) -> TransactionMetadata {
    let tx = vouchers_tx(s, by, 1_000, legacy, None);
    let meta = ok(s.h.svm.send_transaction(tx));
    assert_eq!(s.h.balance(&s.payee_tokens), 1_000 * legacy as u64);
    println!(
        "capacity: {} legacy N = {legacy} used {} CU",
        by.name(),
        meta.compute_units_consumed
    );
    s.h.svm.expire_blockhash();
    let tx = vouchers_tx(s, by, 2_000, with_table, Some(table));
    assert!(wire_len(&tx) <= PACKET);
    let meta = ok(s.h.svm.send_transaction(tx));
    assert_eq!(s.h.balance(&s.payee_tokens), 2_000 * with_table as u64);
    meta
}

fn batch_tx(
    s: &Setup,
    n: usize,
    table: Option<&AddressLookupTableAccount>,
) -> VersionedTransaction {
    let ids: Vec<Pubkey> = s.chans[..n].iter().map(|c| c.address).collect();
    let mut ixs = vec![compute_limit(1_400_000)];
    ixs.extend(settle_batch_ixs(
        &s.accts(),
        &s.chans[0].signer,
        &ids,
        &vec![1_000; n],
        0,
    ));
    build(&s.h, &ixs, table)
}

fn build(
    h: &Harness,
    ixs: &[Instruction],
    table: Option<&AddressLookupTableAccount>,
) -> VersionedTransaction {
    let payer: &Keypair = &h.fee_payer;
    match table {
        None => {
            let msg =
                Message::new_with_blockhash(ixs, Some(&payer.pubkey()), &h.svm.latest_blockhash());
            Transaction::new(&[payer], msg, h.svm.latest_blockhash()).into()
        }
        Some(t) => {
            let msg = v0::Message::try_compile(
                &payer.pubkey(),
                ixs,
                std::slice::from_ref(t),
                h.svm.latest_blockhash(),
            )
            .expect("compile v0");
            VersionedTransaction::try_new(VersionedMessage::V0(msg), &[payer]).expect("sign")
        }
    }
}

/// Largest n in 1..=max for which `fits(n)`; sizes grow with n.
fn largest(max: usize, fits: impl Fn(usize) -> bool) -> usize {
    (1..=max).take_while(|&n| fits(n)).last().unwrap_or(0)
}

const SYSVAR: Pubkey = anchor_lang::compat::solana_instructions_sysvar::ID;

#[test]
fn capacity_of_settle_legacy_and_v0() {
    let by = SettleBy::Precompile;
    let mut s = setup(8, false);
    let legacy = largest_fitting(&s, by, 8, None);
    let table = s.table(SYSVAR, true);
    let with_table = largest_fitting(&s, by, 8, Some(&table));
    println!(
        "capacity: settle legacy N = {legacy} ({} bytes), v0 + lookup table N = {with_table} ({} bytes)",
        wire_len(&vouchers_tx(&s, by, 1_000, legacy, None)),
        wire_len(&vouchers_tx(&s, by, 1_000, with_table, Some(&table)))
    );
    assert_eq!(legacy, 4, "legacy settle fits {legacy}");
    assert_eq!(
        with_table,
        usize::from(paychan::constants::MAX_SETTLE_VOUCHERS),
        "the settle cap must be what fits one packet"
    );

    // Both largest transactions are valid and pay exactly.
    s.h.advance(1, 1);
    let meta = send_the_largest(&mut s, by, legacy, with_table, &table);
    println!(
        "capacity: settle v0 N = {with_table} used {} CU",
        meta.compute_units_consumed
    );
}

#[test]
fn capacity_of_settle_batch_with_a_lookup_table() {
    let mut s = setup(64, true);
    let table = s.table(SYSVAR, true);
    let legacy = largest(64, |n| {
        let tx = batch_tx(&s, n, None);
        wire_len(&tx) <= PACKET && locks(&tx) <= MAX_LOCKS
    });
    let by_bytes = largest(64, |n| wire_len(&batch_tx(&s, n, Some(&table))) <= PACKET);
    let max = largest(64, |n| {
        let tx = batch_tx(&s, n, Some(&table));
        wire_len(&tx) <= PACKET && locks(&tx) <= MAX_LOCKS
    });
    let tx = batch_tx(&s, max, Some(&table));
    println!(
        "capacity: settle_batch legacy N = {legacy}; v0 + lookup table N = {max} \
         ({} bytes, {} account locks; bytes alone would allow {by_bytes})",
        wire_len(&tx),
        locks(&tx)
    );
    assert_eq!(
        max,
        usize::from(paychan::constants::MAX_SETTLE_BATCH_CHANNELS),
        "the settle_batch cap must be what fits one transaction"
    );
    s.h.advance(1, 1);
    let tx = batch_tx(&s, max, Some(&table));
    let meta = ok(s.h.svm.send_transaction(tx));
    assert_eq!(s.h.balance(&s.payee_tokens), 1_000 * max as u64);
    for c in &s.chans[..max] {
        assert_eq!(s.h.channel(&c.address).settled, 1_000);
    }
    // Well inside one instruction's default 200,000 CU (and the 1.4M
    // transaction limit): 48,334 CU at N = 54 (docs/002).
    assert!(
        meta.compute_units_consumed <= 100_000,
        "settle_batch N = {max} used {} CU",
        meta.compute_units_consumed
    );
    println!(
        "capacity: settle_batch N = {max} used {} CU ({} CU per channel)",
        meta.compute_units_consumed,
        meta.compute_units_consumed / max as u64
    );
}

/// The largest `[compute budget, settle_signed]`: legacy, and v0 with a
/// lookup table holding the shared accounts and the channels (as for
/// `settle` above). The compute-unit limit of 1,400,000 per transaction
/// allows far more vouchers than the bytes do: the bytes set the cap.
#[test]
fn capacity_of_settle_signed_legacy_and_v0() {
    const TX_CU_LIMIT: u64 = 1_400_000;
    let by = SettleBy::Program;
    let cap = usize::from(paychan::constants::MAX_SETTLE_SIGNED_VOUCHERS);
    let mut s = setup(cap + 4, false);
    let legacy = largest_fitting(&s, by, cap + 4, None);
    let token_program = s.chans[0].token_program;
    // Only the shared accounts (what the settler's table holds).
    let shared_only = s.table(token_program, false);
    let with_shared_table = largest_fitting(&s, by, cap + 4, Some(&shared_only));
    let table = s.table(token_program, true);
    let with_table = largest_fitting(&s, by, cap + 4, Some(&table));
    println!(
        "capacity: settle_signed legacy N = {legacy} ({} bytes), v0 + table of the shared \
         accounts N = {with_shared_table} ({} bytes), v0 + table of the shared accounts and \
         the channels N = {with_table} ({} bytes)",
        wire_len(&vouchers_tx(&s, by, 1_000, legacy, None)),
        wire_len(&vouchers_tx(
            &s,
            by,
            1_000,
            with_shared_table,
            Some(&shared_only)
        )),
        wire_len(&vouchers_tx(&s, by, 1_000, with_table, Some(&table)))
    );
    assert_eq!(legacy, 7, "legacy settle_signed fits {legacy}");
    assert_eq!(
        with_shared_table, 8,
        "v0 with the shared accounts fits {with_shared_table}"
    );
    assert_eq!(
        with_table, cap,
        "the settle_signed cap must be what fits one packet"
    );
    // A compute-unit price instruction (a priority fee) costs 12 bytes: the
    // cap still fits with it.
    let accts = s.accts();
    let vouchers: Vec<_> = s.chans[..cap].iter().map(|c| c.voucher(1_000, 0)).collect();
    let mut priced = vec![paychan_sdk::ix::compute_unit_price(1)];
    priced.extend(settle_signed_ixs(&accts, &vouchers));
    assert!(wire_len(&build(&s.h, &priced, Some(&table))) <= PACKET);

    // Both largest transactions are valid and pay exactly.
    s.h.advance(1, 1);
    let one = s.h.settle_signed(&accts, &vouchers[..1]);
    s.h.svm.expire_blockhash();
    let meta = send_the_largest(&mut s, by, legacy, with_table, &table);
    let n = with_table as u64;
    let full = meta.compute_units_consumed;
    let marginal = (full - one.compute_units_consumed) / (n - 1);
    let base = full - n * marginal;
    let by_cu = (TX_CU_LIMIT - base) / marginal;
    println!(
        "capacity: settle_signed v0 N = {with_table} used {full} CU ({} per voucher, {marginal} \
         per extra voucher); by compute units alone one transaction would take {by_cu}",
        full / n
    );
    assert!(
        by_cu > 4 * n,
        "the bytes, not the compute units, set the cap"
    );
}
