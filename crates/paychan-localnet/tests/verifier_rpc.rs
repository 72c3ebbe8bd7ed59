//! paychan-verifier's `RpcChannels` against the real program inside the embedded Surfpool:
//! first sight loads over RPC, a top-up reaches the cache through the
//! websocket subscription, the polling fallback catches a close request, and
//! the verifier accepts and then refuses vouchers accordingly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use ed25519_dalek::SigningKey;
use paychan_localnet::{LocalChain, LocalChainConfig};
use paychan_sdk::Pubkey;
use paychan_sdk::ix;
use paychan_sdk::ix::OpenArgs;
use paychan_sdk::state::ChannelStatus;
use paychan_verifier::{
    ChannelSource, CheckError, MemoryStore, Rejection, Terms, Verifier, rpc::RpcChannels,
};
use paychan_voucher::{VoucherV1, sign_v1};
use solana_keypair::Keypair;
use solana_signer::Signer;

const PRICE: u64 = 1_000;

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_follow_the_chain_over_rpc_and_websocket() {
    let chain = LocalChain::start(LocalChainConfig::default())
        .await
        .unwrap();
    let (payer, payee) = (Keypair::new(), Keypair::new());
    chain
        .fund_sol(&payer.pubkey(), 10_000_000_000)
        .await
        .unwrap();
    let payer_tokens = chain
        .create_token_account(&payer.pubkey(), 50_000_000)
        .await
        .unwrap();
    let signer = SigningKey::from_bytes(&[9; 32]);
    let open_slot = chain.rpc_client().get_slot().await.unwrap();
    let accounts = ix::OpenAccounts {
        payer: payer.pubkey(),
        rent_payer: payer.pubkey(),
        payee: payee.pubkey(),
        mint: chain.mint(),
        payer_tokens,
        token_program: paychan_sdk::TOKEN_PROGRAM_ID,
    };
    let args = OpenArgs {
        salt: 1,
        open_slot,
        deposit: 5_000_000,
        grace_period: 3_600,
        authorized_signer: Pubkey::new_from_array(signer.verifying_key().to_bytes()),
    };
    let (open, channel) = ix::open(&accounts, args);
    chain.send(&[open], &payer, &[]).await.unwrap();

    let source = Arc::new(RpcChannels::new(
        chain.rpc_url(),
        paychan_sdk::ID,
        payee.pubkey(),
    ));
    // First sight: not cached, loaded over RPC.
    assert!(source.get(&channel).is_none());
    let snap = source
        .load(&channel)
        .await
        .unwrap()
        .expect("the channel exists");
    assert_eq!(
        (snap.deposit, snap.settled, snap.status),
        (5_000_000, 0, ChannelStatus::Open)
    );
    assert_eq!(snap.payer, payer.pubkey());
    // Unknown and foreign accounts are not channels.
    assert!(source.load(&Pubkey::new_unique()).await.unwrap().is_none());
    assert!(source.load(&payer_tokens).await.unwrap().is_none());

    // A top-up reaches the cache through the websocket subscription (polling
    // every 60 s could not explain a sub-20 s update).
    let updater = source.spawn_updater(Some(chain.ws_url().to_string()), Duration::from_secs(60));
    tokio::time::sleep(Duration::from_millis(300)).await; // let the subscription start
    let top = ix::top_up(
        &channel,
        &payer.pubkey(),
        &payer_tokens,
        &payee.pubkey(),
        &chain.mint(),
        &paychan_sdk::TOKEN_PROGRAM_ID,
        2_000_000,
    );
    chain.send(&[top], &payer, &[]).await.unwrap();
    wait_for("the top-up over the websocket", || {
        source.get(&channel).is_some_and(|s| s.deposit == 7_000_000)
    })
    .await;
    updater.abort();

    // The verifier works off that cache.
    let terms = Terms::new(paychan_sdk::ID, payee.pubkey(), chain.mint(), PRICE);
    let verifier = Verifier::new(source.clone(), MemoryStore::default(), terms);
    let now = chain
        .rpc_client()
        .get_block_time(chain.rpc_client().get_slot().await.unwrap())
        .await
        .unwrap_or(0);
    let voucher = |cumulative| {
        sign_v1(
            &signer,
            &VoucherV1 {
                channel_id: channel.to_bytes(),
                cumulative_amount: cumulative,
                expires_at: 0,
            },
        )
    };
    let receipt = verifier.check(&voucher(6_500_000), now).await.unwrap();
    assert_eq!(
        (receipt.charged, receipt.payer),
        (6_500_000, payer.pubkey())
    );

    // Polling alone (no websocket) catches the payer's close request.
    let poller = source.spawn_updater(None, Duration::from_millis(50));
    chain
        .send(&[ix::request_close(&channel, &payer.pubkey())], &payer, &[])
        .await
        .unwrap();
    wait_for("the close request by polling", || {
        source
            .get(&channel)
            .is_some_and(|s| s.status == ChannelStatus::Closing)
    })
    .await;
    poller.abort();
    match verifier.check(&voucher(6_600_000), now).await {
        Err(CheckError::Rejected(Rejection::ChannelClosing)) => {}
        other => panic!("expected ChannelClosing, got {other:?}"),
    }
    chain.shutdown().unwrap();
}
