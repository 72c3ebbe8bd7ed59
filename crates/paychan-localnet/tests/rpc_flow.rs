//! open → settle → close of one channel, driven purely over JSON-RPC against
//! the real `paychan.so` inside the embedded surfpool chain.
//!
//! Run with `-- --nocapture` to see the start-up and confirmation times.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use paychan_localnet::{Confirmed, LocalChain, LocalChainConfig, LocalnetError, MINT_DECIMALS};
use paychan_sdk::ix::OpenArgs;
use paychan_sdk::{Instruction, Pubkey};
use paychan_sdk::{error::PaychanError, state::ChannelStatus};
use paychan_testkit::chain::{Party, SOL, Tokens, party};
use paychan_voucher::{SignedVoucher, VoucherV1, sign_v1};
use solana_instruction_error::InstructionError;
use solana_keypair::Keypair;
use solana_signer::Signer;
use solana_transaction_error::TransactionError;

use paychan_sdk::{
    TOKEN_PROGRAM_ID,
    ix::{self, SettleAccounts},
    pda::{
        channel as channel_address, vault as vault_address, vault_tokens as vault_tokens_address,
    },
};

/// Tokens the payer starts with (base units, 6 decimals).
const PAYER_TOKENS: u64 = 50_000_000;
/// Deposit D.
const DEPOSIT: u64 = 10_000_000;
/// Cumulative voucher amount C.
const CUMULATIVE: u64 = 3_250_000;
const GRACE: i64 = 3_600;

/// The accounts of one channel.
struct Chan {
    payer: Keypair,
    payer_tokens: Pubkey,
    payee: Keypair,
    payee_tokens: Pubkey,
    signer: SigningKey,
    mint: Pubkey,
    salt: u64,
    open_slot: u64,
    address: Pubkey,
    vault: Pubkey,
    vault_tokens: Pubkey,
}

impl Chan {
    fn signer_pubkey(&self) -> Pubkey {
        Pubkey::new_from_array(self.signer.verifying_key().to_bytes())
    }

    fn open_ix(&self, deposit: u64) -> Instruction {
        let accounts = ix::OpenAccounts {
            payer: self.payer.pubkey(),
            rent_payer: self.payer.pubkey(),
            payee: self.payee.pubkey(),
            mint: self.mint,
            payer_tokens: self.payer_tokens,
            token_program: TOKEN_PROGRAM_ID,
        };
        let args = OpenArgs {
            salt: self.salt,
            open_slot: self.open_slot,
            deposit,
            grace_period: GRACE,
            authorized_signer: self.signer_pubkey(),
        };
        let (ix, channel) = ix::open(&accounts, args);
        assert_eq!(channel, self.address);
        ix
    }

    fn voucher(&self, cumulative: u64) -> SignedVoucher {
        sign_v1(
            &self.signer,
            &VoucherV1 {
                channel_id: self.address.to_bytes(),
                cumulative_amount: cumulative,
                expires_at: 0,
            },
        )
    }

    /// `[ed25519 precompile, settle]` for one voucher of this channel.
    fn settle_ixs(&self, voucher: &SignedVoucher) -> Vec<Instruction> {
        let accounts = SettleAccounts::new(&self.payee.pubkey(), &self.mint, TOKEN_PROGRAM_ID);
        ix::settle_with_vouchers(&accounts, std::slice::from_ref(voucher)).expect("one voucher")
    }

    /// The payee's cooperative close without a final voucher.
    fn close_ix(&self) -> Instruction {
        let accounts = ix::ChannelAccounts {
            channel: self.address,
            payee: self.payee.pubkey(),
            mint: self.mint,
            token_program: TOKEN_PROGRAM_ID,
            payer_tokens: self.payer_tokens,
            rent_payer: self.payer.pubkey(),
        };
        ix::close(&accounts, false)
    }
}

/// Names of this process's threads (Linux; empty elsewhere).
fn thread_names() -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return vec![];
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_string())
        .collect()
}

fn report(what: &str, confirmed: &Confirmed) {
    println!(
        "{what:<8} confirmed in {:>7.1} ms  ({})",
        confirmed.elapsed.as_secs_f64() * 1e3,
        confirmed.signature
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_settle_close_over_json_rpc() {
    let threads_before = thread_names();
    let chain = LocalChain::start(LocalChainConfig::default())
        .await
        .expect("the chain starts");
    println!(
        "start-up          {:>7.1} ms  (rpc {}, ws {})",
        chain.startup_time().as_secs_f64() * 1e3,
        chain.rpc_url(),
        chain.ws_url()
    );
    assert!(chain.rpc_url().starts_with("http://127.0.0.1:"));
    assert!(chain.ws_url().starts_with("ws://127.0.0.1:"));
    let rpc = chain.rpc_client();

    // The program and the mint, as JSON-RPC sees them.
    let program = chain
        .account(&paychan_sdk::ID)
        .await
        .expect("program account");
    assert!(
        program.executable,
        "paychan.so is loaded as an executable program"
    );
    let supply = rpc
        .get_token_supply(&chain.mint())
        .await
        .expect("mint supply");
    assert_eq!(supply.decimals, MINT_DECIMALS);

    // Parties.
    let Party {
        key: payer,
        tokens: payer_tokens,
    } = party(&chain, 10 * SOL, Tokens::Fresh(PAYER_TOKENS)).await;
    let Party {
        key: payee,
        tokens: payee_tokens,
    } = party(&chain, SOL, Tokens::Associated(0)).await;
    assert_eq!(rpc.get_balance(&payer.pubkey()).await.unwrap(), 10 * SOL);
    assert_eq!(
        chain.token_balance(&payer_tokens).await.unwrap(),
        PAYER_TOKENS
    );
    assert_eq!(chain.token_balance(&payee_tokens).await.unwrap(), 0);

    let signer = SigningKey::generate(&mut rand::rngs::OsRng);
    let signer_pk = Pubkey::new_from_array(signer.verifying_key().to_bytes());
    let salt: u64 = rand::random();
    let open_slot = rpc.get_slot().await.expect("slot");
    let mint = chain.mint();
    let address = channel_address(
        &payer.pubkey(),
        &payee.pubkey(),
        &mint,
        &signer_pk,
        salt,
        open_slot,
    );
    let vault = vault_address(&payee.pubkey(), &mint);
    let chan = Chan {
        payer,
        payer_tokens,
        payee,
        payee_tokens,
        signer,
        mint,
        salt,
        open_slot,
        address,
        vault,
        vault_tokens: vault_tokens_address(&vault),
    };

    // open (deposit D).
    let confirmed = chain
        .send(&[chan.open_ix(DEPOSIT)], &chan.payer, &[])
        .await
        .expect("open");
    report("open", &confirmed);
    let channel = chain.channel(&chan.address).await.expect("channel");
    assert_eq!(channel.deposit, DEPOSIT);
    assert_eq!(channel.settled, 0);
    assert_eq!(channel.status().unwrap(), ChannelStatus::Open);
    assert_eq!(channel.payer, chan.payer.pubkey());
    assert_eq!(channel.payee, chan.payee.pubkey());
    assert_eq!(channel.mint, mint);
    assert_eq!(channel.authorized_signer, signer_pk);
    assert_eq!(channel.open_slot, open_slot);
    assert_eq!(
        chain.token_balance(&chan.vault_tokens).await.unwrap(),
        DEPOSIT
    );
    assert_eq!(
        chain.token_balance(&chan.payer_tokens).await.unwrap(),
        PAYER_TOKENS - DEPOSIT
    );
    assert_eq!(chain.vault(&chan.vault).await.unwrap().outstanding, DEPOSIT);

    // settle a voucher for cumulative C (the payee submits and pays the fee).
    let voucher = chan.voucher(CUMULATIVE);
    let settle = chan.settle_ixs(&voucher);
    let confirmed = chain.send(&settle, &chan.payee, &[]).await.expect("settle");
    report("settle", &confirmed);
    assert_eq!(
        chain.token_balance(&chan.payee_tokens).await.unwrap(),
        CUMULATIVE
    );
    assert_eq!(
        chain.channel(&chan.address).await.unwrap().settled,
        CUMULATIVE
    );
    assert_eq!(
        chain.token_balance(&chan.vault_tokens).await.unwrap(),
        DEPOSIT - CUMULATIVE
    );
    assert_eq!(
        chain.vault(&chan.vault).await.unwrap().outstanding,
        DEPOSIT - CUMULATIVE
    );

    // Replaying the same voucher (in a new transaction: another fee payer)
    // is a no-op: it confirms and moves nothing (docs/001).
    chain
        .send(&settle, &chan.payer, &[])
        .await
        .expect("a replayed voucher is a no-op");

    // A voucher above the deposit fails in the program with
    // CumulativeExceedsDeposit = 6000 + 27, which sendTransaction's
    // preflight simulation reports.
    let expected = PaychanError::CumulativeExceedsDeposit.code();
    assert_eq!(expected, 6027);
    let over = chan.settle_ixs(&chan.voucher(DEPOSIT + 1));
    let err = chain
        .send(&over, &chan.payer, &[])
        .await
        .expect_err("a voucher above the deposit is rejected");
    assert!(matches!(err, LocalnetError::Rpc(_)), "{err}");
    assert_eq!(err.custom_error_code(), Some(expected), "{err}");
    assert_eq!(
        err.instruction_error().map(|(index, _)| index),
        Some(1),
        "the settle instruction fails, not the precompile"
    );
    // The same through the stock client call: a ClientError whose
    // transaction error is InstructionError(1, Custom(6027)).
    let relayer = Keypair::new();
    chain.fund_sol(&relayer.pubkey(), SOL).await.unwrap();
    let tx = chain.sign(&over, &relayer, &[]).await.unwrap();
    let client_err = rpc
        .send_and_confirm_transaction(&tx)
        .await
        .expect_err("a voucher above the deposit is rejected");
    assert_eq!(
        client_err.get_transaction_error(),
        Some(TransactionError::InstructionError(
            1,
            InstructionError::Custom(expected)
        )),
        "{client_err}"
    );
    println!(
        "over-deposit rejected: {}",
        client_err.to_string().lines().next().unwrap_or_default()
    );
    assert_eq!(
        chain.channel(&chan.address).await.unwrap().settled,
        CUMULATIVE
    );
    assert_eq!(
        chain.token_balance(&chan.payee_tokens).await.unwrap(),
        CUMULATIVE
    );

    // The payee closes without a final voucher: the payer gets D − C back.
    // (Sent with the stock `send_and_confirm_transaction`, 500 ms polling.)
    let tx = chain
        .sign(&[chan.close_ix()], &chan.payee, &[])
        .await
        .unwrap();
    let sent = Instant::now();
    let signature = rpc.send_and_confirm_transaction(&tx).await.expect("close");
    report(
        "close",
        &Confirmed {
            signature,
            elapsed: sent.elapsed(),
        },
    );
    assert_eq!(
        chain.token_balance(&chan.payer_tokens).await.unwrap(),
        PAYER_TOKENS - DEPOSIT + (DEPOSIT - CUMULATIVE)
    );
    assert_eq!(
        chain.token_balance(&chan.payee_tokens).await.unwrap(),
        CUMULATIVE
    );
    assert_eq!(chain.token_balance(&chan.vault_tokens).await.unwrap(), 0);
    let channel = chain.channel(&chan.address).await.expect("closed channel");
    assert_eq!(channel.status().unwrap(), ChannelStatus::Closed);
    assert_eq!(channel.settled, CUMULATIVE);
    assert_eq!(channel.refunded, DEPOSIT - CUMULATIVE);
    assert_eq!(chain.vault(&chan.vault).await.unwrap().outstanding, 0);

    chain.shutdown().expect("the chain stops cleanly");
    // The RPC servers close on a thread of their own; give them a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;
    // (Worker threads may not carry their names yet when first listed, so
    // compare counts.) Expect one more: surfpool's clock thread cannot be stopped.
    let threads_after = thread_names();
    println!(
        "threads  {} before start, {} after shutdown: {threads_after:?}",
        threads_before.len(),
        threads_after.len()
    );
}

/// The library drives surfpool from its own runtime, so a current-thread
/// caller (the `#[tokio::test]` default) works too; dropping stops the chain.
#[tokio::test]
async fn works_from_a_current_thread_runtime() {
    let chain = LocalChain::start(LocalChainConfig::default())
        .await
        .expect("the chain starts");
    let owner = Keypair::new();
    chain.fund_sol(&owner.pubkey(), SOL).await.unwrap();
    chain.fund_sol(&owner.pubkey(), SOL).await.unwrap();
    assert_eq!(chain.lamports(&owner.pubkey()).await.unwrap(), 2 * SOL);
    let tokens = chain
        .create_token_account(&owner.pubkey(), 42)
        .await
        .unwrap();
    assert_eq!(chain.token_balance(&tokens).await.unwrap(), 42);
    drop(chain);
}

#[tokio::test]
async fn a_missing_program_binary_is_a_typed_error() {
    let config = LocalChainConfig {
        program_so: "/nonexistent/paychan.so".into(),
        ..LocalChainConfig::default()
    };
    let err = LocalChain::start(config).await.expect_err("no binary");
    assert!(matches!(err, LocalnetError::ProgramBinary { .. }), "{err}");
}
