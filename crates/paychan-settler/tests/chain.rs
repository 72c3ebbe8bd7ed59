//! The settler against the real program on the embedded chain: batching,
//! idempotence, the threshold, the urgent queue, someone else settling
//! first, an expiring voucher, and a close request's grace period.
//!
//! Run with `-- --nocapture` to see compute units and fees per transaction.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::{sync::Arc, time::Duration};

use common::*;
use ed25519_dalek::SigningKey;
use paychan_localnet::{LocalChain, RpcClient};
use paychan_sdk::Pubkey;
use paychan_sdk::state::ChannelStatus;
use paychan_sdk::{
    TOKEN_PROGRAM_ID,
    ix::{self, SettleAccounts},
    pda,
};
use paychan_settler::{
    LookupTableMode, MintAccounts, RunMode, Settler, SettlerConfig, SkipReason, VoucherPath,
};
use paychan_verifier::MemoryStore;
use paychan_voucher::{VoucherV1, sign_v1};
use solana_commitment_config::CommitmentConfig;
use solana_keypair::Keypair;
use solana_signer::Signer;

/// Six channels in two transactions; a second run sends nothing; a newer
/// voucher settles the difference; the threshold; the urgent queue; a voucher
/// someone else settled first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settles_in_batches_of_four_idempotently() {
    let chain = start().await;
    let payer = party(&chain, 20 * DEPOSIT).await;
    let payee = payee_party(&chain).await;
    let store = Arc::new(MemoryStore::default());

    let chans = open_many(&chain, &payer, &payee.key.pubkey(), 0..6).await;
    let amounts: Vec<u64> = (0..6u64).map(|i| 100_000 + i * 1_000).collect();
    for (chan, amount) in chans.iter().zip(&amounts) {
        accept(&store, &chan.voucher(*amount, 0));
    }
    let total: u64 = amounts.iter().sum();

    let settler = make_settler(&chain, &payee, 1, Arc::clone(&store));
    let report = settler.run_once(RunMode::Due).await.expect("run");
    print_costs("batch", &report);
    assert_eq!(report.transactions.len(), 2, "⌈6/4⌉ transactions");
    assert_eq!(report.transactions[0].channels.len(), 4);
    assert_eq!(report.transactions[1].channels.len(), 2);
    assert_eq!(report.channels_settled(), 6);
    assert_eq!(report.value_settled(), total);
    assert!(report.failed.is_empty() && report.failed_transactions.is_empty());
    assert_eq!(report.unsettled_value, 0);
    // Fee: 5,000 lamports per signature, the precompile's signatures included.
    assert_eq!(report.transactions[0].fee_lamports, 5 * 5_000);
    assert_eq!(report.transactions[1].fee_lamports, 3 * 5_000);
    assert_eq!(report.fee_lamports(), 8 * 5_000);
    assert_eq!(chain.token_balance(&payee.tokens).await.unwrap(), total);
    for (chan, amount) in chans.iter().zip(&amounts) {
        assert_eq!(chain.channel(&chan.address).await.unwrap().settled, *amount);
    }

    // Idempotent: nothing is ahead of the chain any more.
    let again = settler.run_once(RunMode::Sweep).await.expect("run");
    assert!(again.transactions.is_empty(), "{again:?}");
    assert_eq!(again.skipped_for(SkipReason::AlreadySettled), 6);
    assert_eq!(chain.token_balance(&payee.tokens).await.unwrap(), total);

    // A newer voucher settles only the difference.
    accept(&store, &chans[2].voucher(amounts[2] + 50_000, 0));
    let newer = settler.run_once(RunMode::Due).await.expect("run");
    assert_eq!(newer.transactions.len(), 1);
    assert_eq!(
        newer.transactions[0].channels,
        vec![(chans[2].address, 50_000)]
    );
    assert_eq!(
        chain.token_balance(&payee.tokens).await.unwrap(),
        total + 50_000
    );
    assert_eq!(
        chain.channel(&chans[2].address).await.unwrap().settled,
        amounts[2] + 50_000
    );

    // Threshold: a second payee's settler with a high threshold.
    let payee_b = payee_party(&chain).await;
    let store_b = Arc::new(MemoryStore::default());
    let small = open(&chain, &payer, &payee_b.key.pubkey(), 100).await;
    accept(&store_b, &small.voucher(10_000, 0));
    let settler_b = make_settler_with(&chain, &payee_b, 500_000, Arc::clone(&store_b), |c| {
        c.mints[0].urgent_min_value = 5_000;
    });
    let due = settler_b.run_once(RunMode::Due).await.expect("run");
    assert!(due.transactions.is_empty());
    assert_eq!(due.skipped_for(SkipReason::NotDue), 1);
    assert_eq!(due.unsettled_value, 10_000);
    assert_eq!(chain.token_balance(&payee_b.tokens).await.unwrap(), 0);
    assert!(
        settler_b
            .metrics_text()
            .contains("paychan_settler_unsettled_value 10000"),
        "{}",
        settler_b.metrics_text()
    );
    let sweep = settler_b.run_once(RunMode::Sweep).await.expect("run");
    assert_eq!(sweep.value_settled(), 10_000);
    assert_eq!(chain.token_balance(&payee_b.tokens).await.unwrap(), 10_000);
    assert_eq!(sweep.unsettled_value, 0);

    // The urgent queue of the daemon: below the threshold but above the
    // urgent floor, settled on request.
    let urgent_chan = open(&chain, &payer, &payee_b.key.pubkey(), 101).await;
    accept(&store_b, &urgent_chan.voucher(7_000, 0));
    let settler_b = Arc::new(settler_b);
    let (stop, daemon) = spawn_daemon(Arc::clone(&settler_b));
    settler_b.handle().send(urgent_chan.address).unwrap();
    wait_until(
        "the urgent channel was settled",
        Duration::from_millis(20),
        || async { chain.channel(&urgent_chan.address).await.unwrap().settled == 7_000 },
    )
    .await;
    stop_daemon(stop, daemon, "the daemon stops").await;
    assert_eq!(chain.token_balance(&payee_b.tokens).await.unwrap(), 17_000);

    // Someone else (here the payer, paying the fee) settles a voucher first:
    // the settler skips it without sending a transaction.
    let raced = open(&chain, &payer, &payee.key.pubkey(), 200).await;
    let voucher = raced.voucher(30_000, 0);
    accept(&store, &voucher);
    let accounts = SettleAccounts::new(&payee.key.pubkey(), &chain.mint(), TOKEN_PROGRAM_ID);
    let ixs = ix::settle_with_vouchers(&accounts, &[voucher]).unwrap();
    chain
        .send(&ixs, &payer.key, &[])
        .await
        .expect("third-party settle");
    let payee_sol = chain.lamports(&payee.key.pubkey()).await.unwrap();
    let skipped = settler.run_once(RunMode::Sweep).await.expect("run");
    assert!(skipped.transactions.is_empty(), "{skipped:?}");
    assert!(skipped.failed.is_empty() && skipped.failed_transactions.is_empty());
    assert_eq!(skipped.skipped_for(SkipReason::AlreadySettled), 7);
    assert_eq!(
        chain.lamports(&payee.key.pubkey()).await.unwrap(),
        payee_sol,
        "no fee paid"
    );
    assert_eq!(
        chain.token_balance(&payee.tokens).await.unwrap(),
        total + 50_000 + 30_000
    );

    let metrics = settler.metrics_text();
    println!("{metrics}");
    assert!(
        metrics.contains("paychan_settler_transactions_total 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("paychan_settler_vouchers_settled_total 7"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "paychan_settler_value_settled_total {}",
            total + 50_000
        )),
        "{metrics}"
    );
}

/// With `close_on_request` off, a close request is not due until the grace
/// period's end is within the margin (time travel), then settled below the
/// threshold; finalize refunds the rest. An expiring voucher is settled
/// early, an expired one skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settles_closing_and_expiring_channels_in_time() {
    let chain = start().await;
    let payer = party(&chain, 10 * DEPOSIT).await;
    let payee = payee_party(&chain).await;
    let store = Arc::new(MemoryStore::default());
    let settler = make_settler_with(&chain, &payee, DEPOSIT, Arc::clone(&store), |c| {
        c.close_on_request = false;
    });

    let closing = open(&chain, &payer, &payee.key.pubkey(), 1).await;
    let expiring = open(&chain, &payer, &payee.key.pubkey(), 2).await;
    let expired = open(&chain, &payer, &payee.key.pubkey(), 3).await;
    let now = chain.unix_timestamp().await.unwrap();
    accept(&store, &closing.voucher(1_000, 0));
    accept(&store, &expiring.voucher(2_000, now + 120));
    accept(&store, &expired.voucher(3_000, now - 1));

    chain
        .send(
            &[ix::request_close(&closing.address, &payer.key.pubkey())],
            &payer.key,
            &[],
        )
        .await
        .expect("request_close");
    let channel = chain.channel(&closing.address).await.unwrap();
    assert_eq!(channel.status().unwrap(), ChannelStatus::Closing);
    let requested_at = channel.closure_started_at;
    assert!(requested_at > 0);

    // Outside the 300 s margin: only the expiring voucher is due.
    let first = settler.run_once(RunMode::Due).await.expect("run");
    print_costs("expiring", &first);
    assert_eq!(first.transactions.len(), 1, "{first:?}");
    assert_eq!(
        first.transactions[0].channels,
        vec![(expiring.address, 2_000)]
    );
    assert_eq!(first.skipped_for(SkipReason::NotDue), 1);
    assert_eq!(first.skipped_for(SkipReason::Expired), 1);
    assert_eq!(chain.channel(&closing.address).await.unwrap().settled, 0);

    // 400 s into the 600 s grace period: inside the margin.
    chain
        .time_travel_to(requested_at + 400)
        .await
        .expect("time travel");
    assert!(chain.unix_timestamp().await.unwrap() >= requested_at + 400);
    let second = settler.run_once(RunMode::Due).await.expect("run");
    print_costs("closing", &second);
    assert_eq!(second.transactions.len(), 1, "{second:?}");
    assert_eq!(
        second.transactions[0].channels,
        vec![(closing.address, 1_000)]
    );
    assert_eq!(
        chain.channel(&closing.address).await.unwrap().settled,
        1_000
    );

    // After the grace period anyone may finalize: payee + refund = deposit.
    chain
        .time_travel_to(requested_at + GRACE + 1)
        .await
        .expect("time travel");
    let refund_before = chain.token_balance(&payer.tokens).await.unwrap();
    let finalize = ix::finalize(&ix::ChannelAccounts {
        channel: closing.address,
        payee: payee.key.pubkey(),
        mint: chain.mint(),
        token_program: TOKEN_PROGRAM_ID,
        payer_tokens: payer.tokens,
        rent_payer: payer.key.pubkey(),
    });
    chain
        .send(&[finalize], &payer.key, &[])
        .await
        .expect("finalize");
    let refund = chain.token_balance(&payer.tokens).await.unwrap() - refund_before;
    assert_eq!(refund, DEPOSIT - 1_000);
    // payee + refund = deposit.
    assert_eq!(1_000 + refund, DEPOSIT);
    // The time travel moved the slot past the open-slot window, so finalize
    // also deleted the account; otherwise it must be closed.
    let deleted = !chain.exists(&closing.address).await.unwrap();
    if !deleted {
        let channel = chain.channel(&closing.address).await.unwrap();
        assert_eq!(channel.status().unwrap(), ChannelStatus::Closed);
        assert_eq!(channel.settled + channel.refunded, DEPOSIT);
    }
    assert_eq!(
        chain.token_balance(&payee.tokens).await.unwrap(),
        1_000 + 2_000
    );
    let vault = pda::vault(&payee.key.pubkey(), &chain.mint());
    assert_eq!(
        chain.vault(&vault).await.unwrap().outstanding,
        3 * DEPOSIT - 1_000 - 2_000 - refund
    );

    // A later sweep leaves the closed channel alone.
    let last = settler.run_once(RunMode::Sweep).await.expect("run");
    assert!(last.transactions.is_empty(), "{last:?}");
    let reason = if deleted {
        SkipReason::Gone
    } else {
        SkipReason::Closed
    };
    assert_eq!(last.skipped_for(reason), 1, "{last:?}");
}

/// The payer asks for its money back.
///
/// A payer with an associated token account in the mint: the settler
/// closes at once (no waiting for the grace period) with the final voucher
/// when it is ahead of the chain, without one when it is not, refunding to
/// that account; the payee pays the close fees and nothing else.
///
/// A payer without one: the settler creates nothing (the payee would pay
/// its rent and the payer keep it) — it settles the voucher ahead with a
/// plain `settle`, the payee paying only that fee; the channels stay
/// Closing, and after the grace period the payer's own `finalize` refunds
/// them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closes_at_once_when_the_payer_asks() {
    let chain = start().await;
    let payer = ata_party(&chain, 10 * DEPOSIT).await;
    let payee = payee_party(&chain).await;
    let store = Arc::new(MemoryStore::default());
    let settler = make_settler(&chain, &payee, DEPOSIT, Arc::clone(&store));
    let ahead = open(&chain, &payer, &payee.key.pubkey(), 1).await;
    let settled = open(&chain, &payer, &payee.key.pubkey(), 2).await;
    accept(&store, &ahead.voucher(250_000, 0));
    accept(&store, &settled.voucher(100_000, 0));
    let sweep = settler.run_once(RunMode::Sweep).await.expect("run");
    assert_eq!(sweep.value_settled(), 350_000);
    assert!(sweep.closes.is_empty());
    // The final voucher of `ahead` is only in the store.
    accept(&store, &ahead.voucher(300_000, 0));
    for chan in [&ahead, &settled] {
        chain
            .send(
                &[ix::request_close(&chan.address, &payer.key.pubkey())],
                &payer.key,
                &[],
            )
            .await
            .expect("request_close");
    }
    let requested_at = chain
        .channel(&ahead.address)
        .await
        .unwrap()
        .closure_started_at;
    let refund_to = associated_tokens(&chain, &payer.key.pubkey());
    assert_eq!(refund_to, payer.tokens, "the payer funds from its ATA");
    assert_eq!(
        chain.token_balance(&refund_to).await.unwrap(),
        8 * DEPOSIT,
        "two deposits left it"
    );
    let payee_sol = chain.lamports(&payee.key.pubkey()).await.unwrap();

    // A due-check (the threshold is the whole deposit) closes both at once.
    let report = settler.run_once(RunMode::Due).await.expect("run");
    assert!(report.failed.is_empty(), "{report:?}");
    assert!(report.transactions.is_empty(), "closes, not settles");
    let mut closes = report.closes.clone();
    closes.sort_by_key(|c| c.paid);
    assert_eq!(closes.len(), 2, "{report:?}");
    assert_eq!(
        (
            closes[0].channel,
            closes[0].with_voucher,
            closes[0].paid,
            closes[0].refunded
        ),
        (settled.address, false, 0, DEPOSIT - 100_000)
    );
    assert_eq!(
        (
            closes[1].channel,
            closes[1].with_voucher,
            closes[1].paid,
            closes[1].refunded
        ),
        (ahead.address, true, 50_000, DEPOSIT - 300_000)
    );
    assert!(closes.iter().all(|c| c.payer_tokens == refund_to));
    for c in &closes {
        println!(
            "close (voucher: {}): {} CU, fee {} lamports",
            c.with_voucher,
            c.compute_units.unwrap_or_default(),
            c.fee_lamports
        );
    }
    assert_eq!(report.value_closed(), 50_000);
    assert_eq!(report.value_refunded(), 2 * DEPOSIT - 400_000);
    assert_eq!(report.unsettled_value, 0);
    assert!(
        chain.unix_timestamp().await.unwrap() < requested_at + GRACE,
        "no waiting for the grace period"
    );
    assert_eq!(chain.token_balance(&payee.tokens).await.unwrap(), 400_000);
    assert_eq!(
        chain.token_balance(&refund_to).await.unwrap(),
        8 * DEPOSIT + 2 * DEPOSIT - 400_000
    );
    // The payee paid the two close fees (one signature each, plus the
    // voucher's precompile signature) and no rent.
    let spent = payee_sol - chain.lamports(&payee.key.pubkey()).await.unwrap();
    assert_eq!(spent, report.fee_lamports());
    assert_eq!(spent, 5_000 + 2 * 5_000);
    println!("payee with an ATA: {spent} lamports spent on 2 closes");
    for (chan, value) in [(&ahead, 300_000), (&settled, 100_000)] {
        if chain.exists(&chan.address).await.unwrap() {
            let c = chain.channel(&chan.address).await.unwrap();
            assert_eq!(c.status().unwrap(), ChannelStatus::Closed);
            assert_eq!((c.settled, c.refunded), (value, DEPOSIT - value));
        }
    }
    let vault = pda::vault(&payee.key.pubkey(), &chain.mint());
    assert_eq!(chain.vault(&vault).await.unwrap().outstanding, 0);
    assert!(
        settler
            .metrics_text()
            .contains("paychan_settler_closes_total 2"),
        "{}",
        settler.metrics_text()
    );

    // Nothing left to do.
    let again = settler.run_once(RunMode::Sweep).await.expect("run");
    assert!(
        again.closes.is_empty() && again.transactions.is_empty(),
        "{again:?}"
    );

    // A payer without an associated token account in the mint.
    let payer = party(&chain, 10 * DEPOSIT).await;
    let missing = associated_tokens(&chain, &payer.key.pubkey());
    assert!(!chain.exists(&missing).await.unwrap());
    let ahead = open(&chain, &payer, &payee.key.pubkey(), 3).await;
    let settled = open(&chain, &payer, &payee.key.pubkey(), 4).await;
    accept(&store, &settled.voucher(100_000, 0));
    let sweep = settler.run_once(RunMode::Sweep).await.expect("run");
    assert_eq!(sweep.value_settled(), 100_000);
    // `ahead`'s only voucher is in the store.
    accept(&store, &ahead.voucher(200_000, 0));
    for chan in [&ahead, &settled] {
        chain
            .send(
                &[ix::request_close(&chan.address, &payer.key.pubkey())],
                &payer.key,
                &[],
            )
            .await
            .expect("request_close");
    }
    let requested_at = chain
        .channel(&ahead.address)
        .await
        .unwrap()
        .closure_started_at;
    let payee_sol = chain.lamports(&payee.key.pubkey()).await.unwrap();
    let report = settler.run_once(RunMode::Due).await.expect("run");
    assert!(report.failed.is_empty(), "{report:?}");
    assert!(
        report.closes.is_empty(),
        "no close without an ATA: {report:?}"
    );
    assert_eq!(report.transactions.len(), 1, "{report:?}");
    assert_eq!(
        report.transactions[0].channels,
        vec![(ahead.address, 200_000)]
    );
    assert_eq!(report.skipped_for(SkipReason::NoRefundAccount), 1);
    assert!(
        report
            .skipped
            .iter()
            .any(|s| s.channel == settled.address && s.reason == SkipReason::NoRefundAccount),
        "{report:?}"
    );
    assert_eq!(report.unsettled_value, 0);
    assert!(
        !chain.exists(&missing).await.unwrap(),
        "the settler created no account for the payer"
    );
    let spent = payee_sol - chain.lamports(&payee.key.pubkey()).await.unwrap();
    assert_eq!(spent, report.transactions[0].fee_lamports);
    assert_eq!(spent, 2 * 5_000, "[ed25519, settle]: two signatures");
    println!("payee, payer without an ATA: {spent} lamports spent (one settle, no rent)");
    assert_eq!(chain.token_balance(&payee.tokens).await.unwrap(), 700_000);
    for (chan, value) in [(&ahead, 200_000), (&settled, 100_000)] {
        let c = chain.channel(&chan.address).await.unwrap();
        assert_eq!(c.status().unwrap(), ChannelStatus::Closing);
        assert_eq!((c.settled, c.refunded), (value, 0));
    }
    // A second look sends nothing (nothing ahead, still no refund account).
    let payee_sol = chain.lamports(&payee.key.pubkey()).await.unwrap();
    let idle = settler.run_once(RunMode::Due).await.expect("run");
    assert!(
        idle.closes.is_empty() && idle.transactions.is_empty(),
        "{idle:?}"
    );
    assert_eq!(idle.skipped_for(SkipReason::NoRefundAccount), 2);
    assert_eq!(
        chain.lamports(&payee.key.pubkey()).await.unwrap(),
        payee_sol
    );

    // After the grace period the payer's finalize refunds the rest.
    chain
        .time_travel_to(requested_at + GRACE + 1)
        .await
        .expect("time travel");
    for chan in [&ahead, &settled] {
        let finalize = ix::finalize(&ix::ChannelAccounts {
            channel: chan.address,
            payee: payee.key.pubkey(),
            mint: chain.mint(),
            token_program: TOKEN_PROGRAM_ID,
            payer_tokens: payer.tokens,
            rent_payer: payer.key.pubkey(),
        });
        chain
            .send(&[finalize], &payer.key, &[])
            .await
            .expect("finalize");
    }
    assert_eq!(
        chain.token_balance(&payer.tokens).await.unwrap(),
        10 * DEPOSIT - 300_000,
        "deposits back less what the payee was paid"
    );
    assert!(!chain.exists(&missing).await.unwrap());
    assert_eq!(chain.token_balance(&payee.tokens).await.unwrap(), 700_000);
    assert_eq!(chain.vault(&vault).await.unwrap().outstanding, 0);
    for (chan, value) in [(&ahead, 200_000), (&settled, 100_000)] {
        if chain.exists(&chan.address).await.unwrap() {
            let c = chain.channel(&chan.address).await.unwrap();
            assert_eq!(c.status().unwrap(), ChannelStatus::Closed);
            assert_eq!((c.settled, c.refunded), (value, DEPOSIT - value));
        }
    }
}

/// A voucher whose signature the Ed25519 precompile refuses, packed with
/// good ones: the transaction is split so the good vouchers still settle,
/// and the bad one is reported as failed without a fee being paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_voucher_does_not_block_the_others() {
    let chain = start().await;
    let payer = party(&chain, 10 * DEPOSIT).await;
    let payee = payee_party(&chain).await;
    let store = Arc::new(MemoryStore::default());
    let chans = open_many(&chain, &payer, &payee.key.pubkey(), 0..3).await;
    accept(&store, &chans[0].voucher(4_000, 0));
    let mut forged = chans[1].voucher(900_000, 0);
    forged.signature[10] ^= 0x01;
    accept(&store, &forged);
    accept(&store, &chans[2].voucher(6_000, 0));

    let settler = make_settler(&chain, &payee, 1, Arc::clone(&store));
    let payee_sol = chain.lamports(&payee.key.pubkey()).await.unwrap();
    let report = settler.run_once(RunMode::Due).await.expect("run");
    print_costs("split", &report);
    assert_eq!(report.channels_settled(), 2, "{report:?}");
    assert_eq!(report.value_settled(), 10_000);
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!(report.failed[0].channel, chans[1].address);
    println!("refused: {}", report.failed[0].error);
    assert!(
        report.failed_transactions.is_empty(),
        "refused in preflight"
    );
    assert_eq!(chain.token_balance(&payee.tokens).await.unwrap(), 10_000);
    assert_eq!(chain.channel(&chans[1].address).await.unwrap().settled, 0);
    assert_eq!(
        payee_sol - chain.lamports(&payee.key.pubkey()).await.unwrap(),
        report.fee_lamports(),
        "only the confirmed transactions paid fees"
    );
    let metrics = settler.metrics_text();
    assert!(
        metrics.contains(r#"paychan_settler_failures_total{kind="Voucher"}"#),
        "{metrics}"
    );

    // Two settlers of the same payee racing over the same store: each
    // voucher settles exactly once, whoever wins; the loser re-reads
    // (after a `CumulativeNotIncreasing` or before sending) instead of failing.
    let payee = payee_party(&chain).await;
    let store = Arc::new(MemoryStore::default());
    let mut total = 0;
    for salt in 10..14u64 {
        let chan = open(&chain, &payer, &payee.key.pubkey(), salt).await;
        accept(&store, &chan.voucher(1_000 * salt, 0));
        total += 1_000 * salt;
    }
    let a = make_settler(&chain, &payee, 1, Arc::clone(&store));
    let b = make_settler(&chain, &payee, 1, Arc::clone(&store));
    let (ra, rb) = tokio::join!(a.run_once(RunMode::Sweep), b.run_once(RunMode::Sweep));
    let (ra, rb) = (ra.expect("run a"), rb.expect("run b"));
    println!(
        "race: a settled {} in {:?}, b settled {} in {:?}",
        ra.channels_settled(),
        ra.signatures(),
        rb.channels_settled(),
        rb.signatures()
    );
    assert!(
        ra.failed.is_empty() && rb.failed.is_empty(),
        "{ra:?} {rb:?}"
    );
    assert_eq!((ra.unsettled_value, rb.unsettled_value), (0, 0));
    // Both replicas may build the very same transaction (same payee,
    // blockhash and vouchers) and both follow it to confirmation: count
    // each signature once.
    let mut landed: Vec<&paychan_settler::SettleTx> =
        ra.transactions.iter().chain(&rb.transactions).collect();
    landed.sort_by_key(|t| t.signature);
    landed.dedup_by_key(|t| t.signature);
    let mut settled: Vec<Pubkey> = landed
        .iter()
        .flat_map(|t| t.channels.iter().map(|(c, _)| *c))
        .collect();
    settled.sort();
    settled.dedup();
    assert_eq!(settled.len(), 4, "every channel settled");
    let value: u64 = landed
        .iter()
        .flat_map(|t| t.channels.iter().map(|(_, v)| *v))
        .sum();
    assert_eq!(value, total, "each voucher settled once");
    for report in [&ra, &rb] {
        for tx in &report.failed_transactions {
            println!("race: {tx} landed with an error (CumulativeNotIncreasing)");
        }
    }
    assert_eq!(chain.token_balance(&payee.tokens).await.unwrap(), total);
}

/// An unreachable node: the run fails with a typed error and is counted.
#[tokio::test]
async fn an_unreachable_node_fails_the_run() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let store = Arc::new(MemoryStore::default());
    let signer = SigningKey::generate(&mut rand::rngs::OsRng);
    let voucher = sign_v1(
        &signer,
        &VoucherV1 {
            channel_id: [5; 32],
            cumulative_amount: 1,
            expires_at: 0,
        },
    );
    accept(&store, &voucher);
    let config = SettlerConfig::new(
        Keypair::new(),
        MintAccounts::new(Pubkey::new_unique(), TOKEN_PROGRAM_ID, 1),
    );
    let rpc = Arc::new(RpcClient::new(url));
    let settler = Settler::new(config, store, rpc).unwrap();
    let err = settler.run_once(RunMode::Sweep).await.expect_err("no node");
    assert!(matches!(err, paychan_settler::SettleError::Rpc(_)), "{err}");
    let metrics = settler.metrics_text();
    assert!(
        metrics.contains(r#"paychan_settler_failures_total{kind="Run"} 1"#),
        "{metrics}"
    );
}

#[test]
fn invalid_configurations_are_refused() {
    let mint = MintAccounts::new(Pubkey::new_unique(), TOKEN_PROGRAM_ID, 1);
    let rpc = || Arc::new(RpcClient::new("http://127.0.0.1:1".to_string()));
    let store = || Arc::new(MemoryStore::default());
    let mut five = SettlerConfig::new(Keypair::new(), mint);
    five.max_vouchers_per_tx = 5;
    let mut other_program = SettlerConfig::new(Keypair::new(), mint);
    other_program.program_id = Pubkey::new_unique();
    let mut twice = SettlerConfig::new(Keypair::new(), mint);
    twice.mints.push(mint);
    let mut six_with_table = SettlerConfig::new(Keypair::new(), mint);
    six_with_table.lookup_table = LookupTableMode::Create;
    six_with_table.max_vouchers_per_tx = 6;
    for config in [five, other_program, twice, six_with_table] {
        assert!(matches!(
            Settler::new(config, store(), rpc()),
            Err(paychan_settler::SettleError::Config(_))
        ));
    }
    assert!(Settler::new(SettlerConfig::new(Keypair::new(), mint), store(), rpc()).is_ok());
    let mut five_with_table = SettlerConfig::new(Keypair::new(), mint);
    five_with_table.lookup_table = LookupTableMode::Use(Pubkey::new_unique());
    five_with_table.max_vouchers_per_tx = 5;
    assert!(Settler::new(five_with_table, store(), rpc()).is_ok());
}

/// The transaction's version as `getTransaction` reports it.
async fn transaction_version(
    chain: &LocalChain,
    signature: &solana_signature::Signature,
) -> Option<solana_transaction::versioned::TransactionVersion> {
    let config = solana_rpc_client_api::config::RpcTransactionConfig {
        encoding: Some(solana_transaction_status_client_types::UiTransactionEncoding::Base64),
        commitment: Some(CommitmentConfig::confirmed()),
        max_supported_transaction_version: Some(0),
    };
    chain
        .rpc_client()
        .get_transaction_with_config(signature, config)
        .await
        .expect("getTransaction")
        .transaction
        .version
}

/// With `LookupTableMode::Create` the settler creates a lookup table of the
/// shared accounts (the payee pays) and settles ten channels in ⌈10/5⌉ v0
/// transactions; a later run reuses the table; a second settler `Use`s it;
/// an account that is not a table is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settles_five_per_v0_transaction_with_a_created_lookup_table() {
    use solana_transaction::versioned::TransactionVersion;

    let chain = start().await;
    let payer = party(&chain, 20 * DEPOSIT).await;
    let payee = payee_party(&chain).await;
    let store = Arc::new(MemoryStore::default());
    let chans = open_many(&chain, &payer, &payee.key.pubkey(), 0..11).await;
    let amounts: Vec<u64> = (0..10u64).map(|i| 200_000 + i * 1_000).collect();
    for (chan, amount) in chans.iter().zip(&amounts) {
        accept(&store, &chan.voucher(*amount, 0));
    }
    let total: u64 = amounts.iter().sum();
    let lamports_before = chain.lamports(&payee.key.pubkey()).await.unwrap();

    let settler = make_settler_with(&chain, &payee, 1, Arc::clone(&store), |c| {
        c.lookup_table = LookupTableMode::Create;
        c.max_vouchers_per_tx = 5;
    });
    let report = settler.run_once(RunMode::Due).await.expect("run");
    print_costs("v0 + lookup table", &report);
    assert!(report.failed.is_empty(), "{report:?}");
    assert!(report.failed_transactions.is_empty());
    assert_eq!(report.transactions.len(), 2, "⌈10/5⌉ transactions");
    assert_eq!(report.channels_settled(), 10);
    assert_eq!(report.value_settled(), total);
    assert_eq!(report.unsettled_value, 0);
    let table = report.transactions[0]
        .lookup_table
        .expect("a v0 transaction");
    for tx in &report.transactions {
        assert_eq!(tx.channels.len(), 5);
        assert_eq!(tx.lookup_table, Some(table));
        assert!(tx.size <= 1_232, "{} bytes", tx.size);
        assert_eq!(
            transaction_version(&chain, &tx.signature).await,
            Some(TransactionVersion::Number(0))
        );
        // 5,000 lamports per signature: the payee's and five precompile ones.
        assert_eq!(tx.fee_lamports, 6 * 5_000);
    }
    assert_eq!(chain.token_balance(&payee.tokens).await.unwrap(), total);
    for (chan, amount) in chans.iter().zip(&amounts) {
        assert_eq!(chain.channel(&chan.address).await.unwrap().settled, *amount);
    }

    // The table: owned by the lookup table program, the payee its authority
    // and payer (its rent and the fees came out of the payee's lamports).
    let account = chain.account(&table).await.unwrap();
    assert_eq!(
        account.owner,
        solana_address_lookup_table_interface::program::ID
    );
    let decoded = solana_address_lookup_table_interface::state::AddressLookupTable::deserialize(
        &account.data,
    )
    .unwrap();
    assert_eq!(decoded.meta.authority, Some(payee.key.pubkey()));
    let shared = SettleAccounts::new(&payee.key.pubkey(), &chain.mint(), TOKEN_PROGRAM_ID);
    assert_eq!(shared.payee_tokens, payee.tokens);
    for address in [
        shared.vault,
        shared.vault_tokens,
        shared.payee_tokens,
        shared.mint,
        shared.token_program,
        shared.instructions,
    ] {
        assert!(decoded.addresses.contains(&address), "{address}");
    }
    let lamports_after = chain.lamports(&payee.key.pubkey()).await.unwrap();
    assert!(
        lamports_before - lamports_after >= account.lamports + report.fee_lamports(),
        "the payee paid the table's rent {} and the fees",
        account.lamports
    );
    println!(
        "lookup table {table}: rent {} lamports; the payee spent {} lamports in all",
        account.lamports,
        lamports_before - lamports_after
    );

    // A later run reuses the cached table.
    accept(&store, &chans[10].voucher(30_000, 0));
    let again = settler.run_once(RunMode::Due).await.expect("run");
    assert_eq!(again.transactions.len(), 1);
    assert_eq!(again.transactions[0].lookup_table, Some(table));
    assert_eq!(
        again.transactions[0].channels,
        vec![(chans[10].address, 30_000)]
    );
    assert_eq!(
        chain.token_balance(&payee.tokens).await.unwrap(),
        total + 30_000
    );

    // A second settler uses the existing table.
    accept(&store, &chans[0].voucher(amounts[0] + 5_000, 0));
    let user = make_settler_with(&chain, &payee, 1, Arc::clone(&store), |c| {
        c.lookup_table = LookupTableMode::Use(table);
        c.max_vouchers_per_tx = 5;
    });
    let used = user.run_once(RunMode::Due).await.expect("run");
    assert_eq!(used.transactions.len(), 1, "{used:?}");
    assert_eq!(used.transactions[0].lookup_table, Some(table));
    assert_eq!(
        transaction_version(&chain, &used.transactions[0].signature).await,
        Some(TransactionVersion::Number(0))
    );
    assert_eq!(
        chain.channel(&chans[0].address).await.unwrap().settled,
        amounts[0] + 5_000
    );

    // An account that is not a lookup table is refused; nothing is sent.
    accept(&store, &chans[1].voucher(amounts[1] + 5_000, 0));
    let wrong = make_settler_with(&chain, &payee, 1, Arc::clone(&store), |c| {
        c.lookup_table = LookupTableMode::Use(payee.tokens);
    });
    let refused = wrong.run_once(RunMode::Due).await.expect("run");
    assert!(refused.transactions.is_empty());
    assert_eq!(refused.failed.len(), 1, "{refused:?}");
    assert!(
        refused.failed[0]
            .error
            .contains("not the address lookup table program"),
        "{}",
        refused.failed[0].error
    );
    assert_eq!(
        chain.channel(&chans[1].address).await.unwrap().settled,
        amounts[1]
    );
}

/// A memory store that records the settler's reads.
#[derive(Debug, Default)]
struct CountingStore {
    inner: MemoryStore,
    /// `all_latest` calls (whole-store reads).
    scans: std::sync::atomic::AtomicUsize,
    /// Channels read one by one with `latest`.
    read: std::sync::Mutex<Vec<Pubkey>>,
}

impl paychan_verifier::VoucherStore for CountingStore {
    fn accept(
        &self,
        voucher: &paychan_voucher::SignedVoucher,
        floor: u64,
        min_increment: u64,
    ) -> impl std::future::Future<
        Output = Result<paychan_verifier::AcceptOutcome, paychan_verifier::StoreError>,
    > + Send {
        self.inner.accept(voucher, floor, min_increment)
    }

    fn latest(
        &self,
        channel: &Pubkey,
    ) -> Result<Option<paychan_verifier::Accepted>, paychan_verifier::StoreError> {
        self.read.lock().unwrap().push(*channel);
        self.inner.latest(channel)
    }

    fn all_latest(&self) -> Result<Vec<paychan_verifier::Accepted>, paychan_verifier::StoreError> {
        self.scans.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.all_latest()
    }
}

/// The urgent queue flooded through the daemon: 50 requests for one
/// channel, each with a newer voucher ahead of the chain, and 50 for a
/// channel whose increment is tiny. Exactly one settle transaction for the
/// first (at most one per channel per `urgent_interval`), none for the
/// tiny one (below `urgent_min_value`); urgent runs read only the channels
/// asked for — never the whole store, never an unrelated channel — while
/// a due-check reads them all and still settles a deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urgent_requests_are_throttled_and_read_only_their_channels() {
    let chain = start().await;
    let payer = party(&chain, 10 * DEPOSIT).await;
    let payee = payee_party(&chain).await;
    let store = Arc::new(CountingStore::default());
    let busy = open(&chain, &payer, &payee.key.pubkey(), 1).await;
    let tiny = open(&chain, &payer, &payee.key.pubkey(), 2).await;
    let unrelated = open(&chain, &payer, &payee.key.pubkey(), 3).await;
    // Unrelated: a voucher above the urgent floor nobody asked for, and a
    // stored voucher of a channel that does not exist.
    accept(&store.inner, &unrelated.voucher(400_000, 0));
    let ghost_signer = SigningKey::from_bytes(&[42; 32]);
    let ghost = Pubkey::new_unique();
    accept(
        &store.inner,
        &sign_v1(
            &ghost_signer,
            &VoucherV1 {
                channel_id: ghost.to_bytes(),
                cumulative_amount: 5_000,
                expires_at: 0,
            },
        ),
    );
    // Threshold: the whole deposit; urgent floor: a tenth of it (the default).
    let settler = Arc::new(make_settler(&chain, &payee, DEPOSIT, Arc::clone(&store)));
    assert_eq!(settler.config().mints[0].urgent_min_value, DEPOSIT / 10);
    assert_eq!(settler.config().urgent_interval, Duration::from_secs(60));
    let payee_sol = chain.lamports(&payee.key.pubkey()).await.unwrap();

    let (stop, daemon) = spawn_daemon(Arc::clone(&settler));
    let handle = settler.handle();
    let tiny_reads = || {
        store
            .read
            .lock()
            .unwrap()
            .iter()
            .filter(|c| **c == tiny.address)
            .count()
    };
    let progress = || tiny_reads() + store.scans.load(std::sync::atomic::Ordering::SeqCst);
    for i in 0..50u64 {
        // Each round a newer voucher is ahead of the chain: the busy one by
        // at least the urgent floor at first, the tiny one by a few units.
        accept(&store.inner, &busy.voucher(150_000 + i * 1_000, 0));
        accept(&store.inner, &tiny.voucher(1_000 + i, 0));
        let before = progress();
        handle.send(busy.address).unwrap();
        handle.send(tiny.address).unwrap();
        // Both requests of this round were taken by a run (the queue is
        // FIFO and the tiny channel is never throttled, so it is read once
        // per request) before the next round's vouchers. (A settler that
        // scanned the whole store would show it in `scans` instead.)
        wait_until(
            &format!("round {i} ran"),
            Duration::from_millis(5),
            || async { progress() != before },
        )
        .await;
    }
    // The run in progress finishes before the daemon stops.
    stop_daemon(stop, daemon, "the daemon stops").await;

    let runs = metric(&settler, "paychan_settler_runs_total");
    println!(
        "urgent flood: {runs} runs, {} transactions, {} deferred",
        metric(&settler, "paychan_settler_transactions_total"),
        metric(&settler, "paychan_settler_urgent_deferred_total")
    );
    assert!(runs >= 50, "{runs} urgent runs");
    // Exactly one settle transaction: the busy channel's first voucher.
    assert_eq!(metric(&settler, "paychan_settler_transactions_total"), 1);
    assert_eq!(chain.channel(&busy.address).await.unwrap().settled, 150_000);
    assert_eq!(chain.channel(&tiny.address).await.unwrap().settled, 0);
    assert_eq!(
        payee_sol - chain.lamports(&payee.key.pubkey()).await.unwrap(),
        2 * 5_000,
        "the payee paid one [ed25519, settle] fee"
    );
    assert_eq!(chain.token_balance(&payee.tokens).await.unwrap(), 150_000);
    // 49 throttled requests for the busy channel, 50 too small for the tiny one.
    assert_eq!(
        metric(&settler, "paychan_settler_urgent_deferred_total"),
        99
    );
    // Urgent runs read only what was asked for: no scan of the store, no
    // unrelated channel; the throttled busy channel is not even read.
    assert_eq!(store.scans.load(std::sync::atomic::Ordering::SeqCst), 0);
    let read = store.read.lock().unwrap().clone();
    assert!(
        read.iter()
            .all(|c| *c == busy.address || *c == tiny.address),
        "{read:?}"
    );
    assert_eq!(read.iter().filter(|c| **c == busy.address).count(), 1);
    assert_eq!(read.iter().filter(|c| **c == tiny.address).count(), 50);

    // One more urgent run, by hand: what it reports.
    accept(&store.inner, &busy.voucher(300_000, 0));
    let report = settler
        .run_once(RunMode::Urgent(vec![
            busy.address,
            tiny.address,
            busy.address,
        ]))
        .await
        .expect("run");
    assert!(report.transactions.is_empty(), "{report:?}");
    let mut deferred = report.urgent_deferred.clone();
    deferred.sort();
    let mut expected = vec![busy.address, tiny.address];
    expected.sort();
    assert_eq!(deferred, expected);
    assert_eq!(
        report.skipped.len(),
        1,
        "only the tiny channel was read: {report:?}"
    );
    assert_eq!(report.skipped[0].channel, tiny.address);
    assert_eq!(report.skipped[0].reason, SkipReason::NotDue);
    assert_eq!(report.unsettled_value, 1_049, "the tiny channel's, only");
    assert_eq!(store.scans.load(std::sync::atomic::Ordering::SeqCst), 0);

    // A due-check reads the whole store (the unrelated and missing channels
    // included) and settles a deadline on the throttled channel: its
    // voucher now expires within the margin.
    let now = chain.unix_timestamp().await.unwrap();
    accept(&store.inner, &busy.voucher(310_000, now + 120));
    let due = settler.run_once(RunMode::Due).await.expect("run");
    assert_eq!(store.scans.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(due.transactions.len(), 1, "{due:?}");
    assert_eq!(due.transactions[0].channels, vec![(busy.address, 160_000)]);
    assert_eq!(due.skipped_for(SkipReason::Gone), 1, "{due:?}");
    assert!(
        due.skipped
            .iter()
            .any(|s| s.channel == ghost && s.reason == SkipReason::Gone)
    );
    assert!(
        due.skipped
            .iter()
            .any(|s| s.channel == unrelated.address && s.reason == SkipReason::NotDue)
    );
    assert_eq!(chain.channel(&busy.address).await.unwrap().settled, 310_000);
    assert_eq!(chain.channel(&unrelated.address).await.unwrap().settled, 0);
}

/// The settler's path choice on the real program: with no compute-unit
/// price, `[compute budget, settle_signed]` is the cheaper path (one
/// signature for up to seven vouchers against one per precompile record
/// plus the payee's), and the fee the chain charged is exactly the
/// estimate; with a high price, the precompile path is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settles_on_the_cheaper_path_and_pays_the_estimated_fee() {
    let chain = start().await;
    let payer = party(&chain, 20 * DEPOSIT).await;
    let payee = payee_party(&chain).await;
    let store = Arc::new(MemoryStore::default());
    let chans = open_many(&chain, &payer, &payee.key.pubkey(), 0..9).await;
    for (i, chan) in chans.iter().enumerate() {
        accept(&store, &chan.voucher(100_000 + i as u64, 0));
    }
    let total: u64 = (0..9u64).map(|i| 100_000 + i).sum();
    // The default: the cheaper path per transaction (no price set).
    let settler = make_settler_with(&chain, &payee, 1, Arc::clone(&store), |c| {
        c.path = None;
    });
    assert_eq!(settler.config().compute_unit_price, 0);
    let sol_before = chain.lamports(&payee.key.pubkey()).await.unwrap();
    let report = settler.run_once(RunMode::Due).await.expect("run");
    print_costs("cheaper path", &report);
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(report.transactions.len(), 2, "⌈9/7⌉ transactions");
    assert_eq!(report.transactions[0].channels.len(), 7);
    assert_eq!(report.transactions[1].channels.len(), 2);
    for tx in &report.transactions {
        assert_eq!(tx.path, VoucherPath::Program);
        assert_eq!(tx.fee_lamports, 5_000, "one signature, no precompile");
        assert_eq!(
            tx.fee_lamports,
            settler
                .config()
                .estimated_fee(VoucherPath::Program, tx.channels.len(), false)
        );
        let limit = paychan_sdk::ix::settle_signed_compute_units(tx.channels.len());
        assert!(tx.compute_units.is_some_and(|cu| cu <= u64::from(limit)));
    }
    let spent = sol_before - chain.lamports(&payee.key.pubkey()).await.unwrap();
    assert_eq!(spent, 10_000, "the payee paid two transaction fees");
    assert_eq!(spent, report.fee_lamports());
    assert_eq!(report.value_settled(), total);
    assert_eq!(chain.token_balance(&payee.tokens).await.unwrap(), total);
    for (i, chan) in chans.iter().enumerate() {
        assert_eq!(
            chain.channel(&chan.address).await.unwrap().settled,
            100_000 + i as u64
        );
    }

    // A modest price: still settle_signed, the priority fee charged on the
    // requested compute-unit limit, as estimated.
    for (i, chan) in chans.iter().enumerate().take(3) {
        accept(&store, &chan.voucher(200_000 + i as u64, 0));
    }
    let modest = make_settler_with(&chain, &payee, 1, Arc::clone(&store), |c| {
        c.path = None;
        c.compute_unit_price = 1_000;
    });
    let sol_before = chain.lamports(&payee.key.pubkey()).await.unwrap();
    let report = modest.run_once(RunMode::Due).await.expect("run");
    print_costs("modest price", &report);
    assert_eq!(report.transactions.len(), 1);
    let tx = &report.transactions[0];
    assert_eq!(tx.path, VoucherPath::Program);
    let limit = paychan_sdk::ix::settle_signed_compute_units(3);
    assert_eq!(tx.fee_lamports, 5_000 + u64::from(limit).div_ceil(1_000));
    assert_eq!(
        tx.fee_lamports,
        modest
            .config()
            .estimated_fee(VoucherPath::Program, 3, false)
    );
    let spent = sol_before - chain.lamports(&payee.key.pubkey()).await.unwrap();
    assert_eq!(spent, tx.fee_lamports);

    // A price of one lamport per compute unit: the precompile path (two
    // records: 15,000 lamports + 11,000 CU × 1) beats settle_signed
    // (5,000 + 51,000 CU × 1).
    for (i, chan) in chans.iter().enumerate().take(2) {
        accept(&store, &chan.voucher(300_000 + i as u64, 0));
    }
    let expensive = make_settler_with(&chain, &payee, 1, Arc::clone(&store), |c| {
        c.path = None;
        c.compute_unit_price = 1_000_000;
    });
    let sol_before = chain.lamports(&payee.key.pubkey()).await.unwrap();
    let report = expensive.run_once(RunMode::Due).await.expect("run");
    print_costs("high price", &report);
    assert_eq!(report.transactions.len(), 1);
    let tx = &report.transactions[0];
    assert_eq!(tx.path, VoucherPath::Precompile);
    assert_eq!(tx.channels.len(), 2);
    assert_eq!(tx.fee_lamports, 3 * 5_000 + 11_000);
    assert_eq!(
        tx.fee_lamports,
        expensive
            .config()
            .estimated_fee(VoucherPath::Precompile, 2, false)
    );
    assert!(
        expensive
            .config()
            .estimated_fee(VoucherPath::Program, 2, false)
            > tx.fee_lamports
    );
    let spent = sol_before - chain.lamports(&payee.key.pubkey()).await.unwrap();
    assert_eq!(spent, tx.fee_lamports);
    for (i, chan) in chans.iter().enumerate().take(2) {
        assert_eq!(
            chain.channel(&chan.address).await.unwrap().settled,
            300_000 + i as u64
        );
    }
}

/// A close on request with the cheaper path: `[compute budget,
/// settle_signed, close]`, one signature.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closes_on_request_with_settle_signed_for_one_signature() {
    let chain = start().await;
    let payer = ata_party(&chain, 10 * DEPOSIT).await;
    let payee = payee_party(&chain).await;
    let store = Arc::new(MemoryStore::default());
    let settler = make_settler_with(&chain, &payee, DEPOSIT, Arc::clone(&store), |c| {
        c.path = None;
    });
    let chan = open(&chain, &payer, &payee.key.pubkey(), 1).await;
    accept(&store, &chan.voucher(300_000, 0));
    chain
        .send(
            &[ix::request_close(&chan.address, &payer.key.pubkey())],
            &payer.key,
            &[],
        )
        .await
        .expect("request_close");
    let refund_before = chain.token_balance(&payer.tokens).await.unwrap();
    let sol_before = chain.lamports(&payee.key.pubkey()).await.unwrap();
    let report = settler.run_once(RunMode::Due).await.expect("run");
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(report.closes.len(), 1, "{report:?}");
    let close = &report.closes[0];
    println!(
        "close with settle_signed: {} CU, fee {} lamports",
        close.compute_units.unwrap_or_default(),
        close.fee_lamports
    );
    assert_eq!(close.path, Some(VoucherPath::Program));
    assert_eq!(
        (close.with_voucher, close.paid, close.refunded),
        (true, 300_000, DEPOSIT - 300_000)
    );
    assert_eq!(close.fee_lamports, 5_000);
    let spent = sol_before - chain.lamports(&payee.key.pubkey()).await.unwrap();
    assert_eq!(spent, 5_000);
    assert_eq!(chain.token_balance(&payee.tokens).await.unwrap(), 300_000);
    assert_eq!(
        chain.token_balance(&payer.tokens).await.unwrap(),
        refund_before + DEPOSIT - 300_000
    );
}
