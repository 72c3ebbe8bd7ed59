//! The x402 `exact` scheme against the real paywall, served over HTTP, on
//! the embedded chain (SPL Token, Memo, lookup tables, fees all real).
//!
//! Payments are built with the solana crates the way `@x402/svm` 2.27's
//! client builds them (`exact/client`): fee payer = the server's
//! `extra.feePayer`, then SetComputeUnitLimit(20,000), SetComputeUnitPrice(1),
//! TransferChecked of the price from the client's associated token account
//! to the payee's, and a Memo holding 16 random bytes in hex; a v0 message,
//! signed by the client only. Every balance asserted is read over RPC.
//!
//! Run with `-- --nocapture` for the measured latency and lamports per
//! exact request (and a `paychan` request through the same server).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{Extension, Router, http::StatusCode, routing::get};
use ed25519_dalek::SigningKey;
use paychan_localnet::{LocalChain, LocalChainConfig};
use paychan_verifier::{MemoryChannels, MemoryStore, Pubkey, Receipt, Terms, Verifier};
use paychan_x402::{
    codec,
    network::caip2_for_genesis,
    scheme::PaychanExtra,
    server::{
        Limits, Paywall, PaywallConfig,
        exact::{
            self, COMPUTE_BUDGET_PROGRAM, ExactConfig, ExactLimits, ExactReceipt, ExactSettler,
            ExactSetupError, MEMO_PROGRAM, TOKEN_PROGRAM, reason,
        },
        facilitator::{self, FacilitatorConfig},
        serve,
    },
    v2,
};
use serde_json::{Value, json};
use solana_keypair::Keypair;
use solana_message::{
    AccountMeta, AddressLookupTableAccount, Hash, Instruction, Message, MessageHeader,
    VersionedMessage,
    compiled_instruction::CompiledInstruction,
    v0::{self, MessageAddressTableLookup},
};
use solana_signature::Signature;
use solana_signer::Signer;
use solana_transaction::versioned::VersionedTransaction;

use common::PRICE;

const SOL: u64 = 1_000_000_000;
const CLIENT_TOKENS: u64 = 1_000_000;
const MEMO: &str = "invoice-42";

struct Env {
    chain: LocalChain,
    network: String,
    /// The payee, also the fee payer (as `paychan serve` runs by default).
    payee: Keypair,
    payee_tokens: Pubkey,
    client: Keypair,
    client_tokens: Pubkey,
    base: String,
    http: reqwest::Client,
    /// Runs of the paid handlers.
    runs: Arc<AtomicUsize>,
    flaky: Arc<AtomicUsize>,
    channel: common_channel::Channel,
    _server: tokio::task::JoinHandle<()>,
}

/// A `paychan` channel for the comparison, in the verifier's memory.
mod common_channel {
    use super::*;

    pub struct Channel {
        pub key: SigningKey,
        pub address: Pubkey,
    }

    impl Channel {
        pub fn voucher(&self, cumulative: u64) -> paychan_verifier::SignedVoucher {
            crate::common::voucher(&self.key, self.address, cumulative, 0)
        }
    }
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
    elapsed: Duration,
}

impl Answer {
    fn required(&self) -> v2::PaymentRequired {
        codec::decode(
            self.headers
                .get("payment-required")
                .expect("PAYMENT-REQUIRED")
                .as_bytes(),
        )
        .unwrap()
    }

    fn reason(&self) -> String {
        assert_eq!(
            self.status,
            StatusCode::PAYMENT_REQUIRED,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        self.required().error.unwrap_or_default()
    }

    fn settle(&self) -> v2::SettleResponse {
        codec::decode(
            self.headers
                .get("payment-response")
                .expect("PAYMENT-RESPONSE")
                .as_bytes(),
        )
        .unwrap()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn cu_limit(units: u32) -> Instruction {
    let mut data = vec![2];
    data.extend_from_slice(&units.to_le_bytes());
    Instruction::new_with_bytes(COMPUTE_BUDGET_PROGRAM, &data, vec![])
}

fn cu_price(micro_lamports: u64) -> Instruction {
    let mut data = vec![3];
    data.extend_from_slice(&micro_lamports.to_le_bytes());
    Instruction::new_with_bytes(COMPUTE_BUDGET_PROGRAM, &data, vec![])
}

fn memo(text: &[u8], signers: &[Pubkey]) -> Instruction {
    let accounts = signers
        .iter()
        .map(|k| AccountMeta::new_readonly(*k, true))
        .collect();
    Instruction::new_with_bytes(MEMO_PROGRAM, text, accounts)
}

/// The reference client's memo: 16 random bytes, hex.
fn nonce() -> Vec<u8> {
    let bytes: [u8; 16] = rand::random();
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .into_bytes()
}

fn transfer_checked(
    source: Pubkey,
    mint: Pubkey,
    destination: Pubkey,
    authority: Pubkey,
    amount: u64,
    decimals: u8,
) -> Instruction {
    let mut data = vec![12];
    data.extend_from_slice(&amount.to_le_bytes());
    data.push(decimals);
    Instruction::new_with_bytes(
        TOKEN_PROGRAM,
        &data,
        vec![
            AccountMeta::new(source, false),
            AccountMeta::new_readonly(mint, false),
            AccountMeta::new(destination, false),
            AccountMeta::new_readonly(authority, true),
        ],
    )
}

/// Signs `message` with `signers` only: the fee payer's slot stays zero.
fn partially_sign(message: VersionedMessage, signers: &[&Keypair]) -> VersionedTransaction {
    let bytes = message.serialize();
    let keys = message.static_account_keys();
    let mut signatures =
        vec![Signature::default(); usize::from(message.header().num_required_signatures)];
    for s in signers {
        let i = keys.iter().position(|k| *k == s.pubkey()).unwrap();
        signatures[i] = s.sign_message(&bytes);
    }
    VersionedTransaction {
        signatures,
        message,
    }
}

async fn paid(Extension(r): Extension<ExactReceipt>, runs: Arc<AtomicUsize>) -> String {
    runs.fetch_add(1, Ordering::SeqCst);
    format!("paid {} in {}", r.amount, r.signature)
}

impl Env {
    async fn start() -> Env {
        let chain = LocalChain::start(LocalChainConfig::default())
            .await
            .unwrap();
        let genesis = chain.rpc_client().get_genesis_hash().await.unwrap();
        let network = caip2_for_genesis(&genesis.to_string());
        let payee = Keypair::new();
        chain.fund_sol(&payee.pubkey(), SOL).await.unwrap();
        let payee_tokens = chain
            .create_associated_token_account(&payee.pubkey(), 0)
            .await
            .unwrap();
        let client = Keypair::new();
        let client_tokens = chain
            .create_associated_token_account(&client.pubkey(), CLIENT_TOKENS)
            .await
            .unwrap();
        let settler = |memo: Option<&str>| ExactConfig {
            network: network.clone(),
            pay_to: payee.pubkey(),
            mint: chain.mint(),
            fee_payer: payee.insecure_clone(),
            memo: memo.map(str::to_owned),
            limits: ExactLimits::default(),
        };
        let exact = Arc::new(
            ExactSettler::connect(chain.rpc_url(), settler(None))
                .await
                .unwrap(),
        );
        let with_memo = Arc::new(
            ExactSettler::connect(chain.rpc_url(), settler(Some(MEMO)))
                .await
                .unwrap(),
        );

        // The paywall's `paychan` side: one open channel in memory.
        let channel = common_channel::Channel {
            key: SigningKey::from_bytes(&[9; 32]),
            address: Pubkey::new_unique(),
        };
        let channels = MemoryChannels::default();
        channels
            .upsert(common::open_channel(
                channel.address,
                Pubkey::new_unique(),
                payee.pubkey(),
                chain.mint(),
                &channel.key,
                1_000_000_000,
            ))
            .unwrap();
        let mut terms = Terms::new(paychan_sdk::ID, payee.pubkey(), chain.mint(), PRICE);
        terms.min_grace_period = 3_600;
        terms.min_deposit = 1;
        let verifier = Arc::new(Verifier::new(channels, MemoryStore::default(), terms));
        let extra = PaychanExtra {
            program_id: paychan_sdk::ID.to_string(),
            token_program: TOKEN_PROGRAM.to_string(),
            decimals: 6,
            grace_period_seconds: 3_600,
            minimum_deposit: "1".into(),
            fee_payer: Some(payee.pubkey().to_string()),
        };
        let config = PaywallConfig::new(network.clone(), extra.clone());
        let paywall = Paywall::new(verifier.clone(), config.clone()).with_exact(exact.clone());
        let memo_paywall = Paywall::new(verifier.clone(), config).with_exact(with_memo);

        let runs = Arc::new(AtomicUsize::new(0));
        let flaky = Arc::new(AtomicUsize::new(0));
        let (r1, r2, f) = (runs.clone(), runs.clone(), flaky.clone());
        let app = Router::new()
            .route(
                "/paid",
                get(move |e: Extension<ExactReceipt>| paid(e, r1.clone()))
                    .layer(paywall.layer(PRICE).exact(true)),
            )
            .route(
                "/memo",
                get(move |e: Extension<ExactReceipt>| paid(e, r2.clone()))
                    .layer(memo_paywall.layer(PRICE).exact(true)),
            )
            .route(
                "/flaky",
                get(move |Extension(r): Extension<ExactReceipt>| {
                    let f = f.clone();
                    async move {
                        if f.fetch_add(1, Ordering::SeqCst) == 0 {
                            (StatusCode::INTERNAL_SERVER_ERROR, "boom".to_owned())
                        } else {
                            (StatusCode::OK, format!("paid {}", r.amount))
                        }
                    }
                })
                .layer(paywall.layer(PRICE).exact(true)),
            )
            .route(
                "/channel",
                get(
                    |Extension(r): Extension<Receipt>| async move { format!("paid {}", r.charged) },
                )
                .layer(paywall.layer(PRICE).exact(true)),
            )
            .route(
                "/paychan-only",
                get(|| async { "paid" }).layer(paywall.layer(PRICE)),
            )
            .nest(
                "/facilitator",
                facilitator::router_with_exact(
                    verifier,
                    FacilitatorConfig::new(network.clone(), extra, PRICE),
                    (),
                    Some(exact),
                ),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            serve(
                listener,
                app,
                Limits::default(),
                std::future::pending::<()>(),
            )
            .await
            .unwrap();
        });
        Env {
            chain,
            network,
            payee,
            payee_tokens,
            client,
            client_tokens,
            base,
            http: reqwest::Client::new(),
            runs,
            flaky,
            channel,
            _server: server,
        }
    }

    fn mint(&self) -> Pubkey {
        self.chain.mint()
    }

    fn fee_payer(&self) -> Pubkey {
        self.payee.pubkey()
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut req = self.http.get(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let started = Instant::now();
        let res = req.send().await.unwrap();
        let (status, headers) = (res.status(), res.headers().clone());
        let body = res.bytes().await.unwrap().to_vec();
        Answer {
            status: StatusCode::from_u16(status.as_u16()).unwrap(),
            headers,
            body,
            elapsed: started.elapsed(),
        }
    }

    /// The `exact` requirement `path` offers.
    async fn offer(&self, path: &str) -> v2::PaymentRequirements {
        let a = self.get(path, &[]).await;
        assert_eq!(a.status, StatusCode::PAYMENT_REQUIRED);
        let required = a.required();
        required
            .accepts
            .into_iter()
            .find(|r| r.scheme == "exact")
            .expect("an exact offer")
    }

    /// The stock client's instructions paying `amount`.
    fn stock(&self, amount: u64) -> Vec<Instruction> {
        vec![
            cu_limit(20_000),
            cu_price(1),
            transfer_checked(
                self.client_tokens,
                self.mint(),
                self.payee_tokens,
                self.client.pubkey(),
                amount,
                6,
            ),
            memo(&nonce(), &[]),
        ]
    }

    async fn blockhash(&self) -> Hash {
        self.chain
            .rpc_client()
            .get_latest_blockhash()
            .await
            .unwrap()
    }

    /// A v0 transaction (as the stock client builds), fee payer = ours,
    /// signed by `signers`.
    async fn v0(
        &self,
        ixs: &[Instruction],
        tables: &[AddressLookupTableAccount],
        signers: &[&Keypair],
    ) -> VersionedTransaction {
        let message =
            v0::Message::try_compile(&self.fee_payer(), ixs, tables, self.blockhash().await)
                .unwrap();
        partially_sign(VersionedMessage::V0(message), signers)
    }

    /// A legacy transaction, fee payer = `fee_payer`, signed by `signers`.
    async fn legacy(
        &self,
        ixs: &[Instruction],
        fee_payer: &Pubkey,
        signers: &[&Keypair],
    ) -> VersionedTransaction {
        let message = Message::new_with_blockhash(ixs, Some(fee_payer), &self.blockhash().await);
        partially_sign(VersionedMessage::Legacy(message), signers)
    }

    /// The `PAYMENT-SIGNATURE` a stock client sends for `tx`.
    fn header(&self, accepted: &v2::PaymentRequirements, tx: &VersionedTransaction) -> String {
        self.header_b64(accepted, &exact::encode_transaction(tx).unwrap())
    }

    fn header_b64(&self, accepted: &v2::PaymentRequirements, transaction: &str) -> String {
        codec::encode(&v2::PaymentPayload {
            x402_version: 2,
            resource: Some(v2::Resource {
                url: format!("{}/paid", self.base),
                description: None,
                mime_type: None,
            }),
            accepted: accepted.clone(),
            payload: json!({ "transaction": transaction }),
            extensions: None,
        })
        .unwrap()
    }

    async fn pay(&self, path: &str, header: &str) -> Answer {
        self.get(path, &[("PAYMENT-SIGNATURE", header)]).await
    }

    async fn balances(&self) -> (u64, u64, u64) {
        (
            self.chain.token_balance(&self.payee_tokens).await.unwrap(),
            self.chain.token_balance(&self.client_tokens).await.unwrap(),
            self.chain.lamports(&self.fee_payer()).await.unwrap(),
        )
    }

    async fn landed(&self, signature: &str) -> bool {
        let sig: Signature = signature.parse().unwrap();
        let status = self
            .chain
            .rpc_client()
            .get_signature_statuses(&[sig])
            .await
            .unwrap()
            .value;
        matches!(status.first(), Some(Some(s)) if s.err.is_none())
    }
}

/// A stock payment is served 200 with its signature in `PAYMENT-RESPONSE`,
/// on chain before the answer; the payee's tokens rise by exactly the
/// price; the fee payer pays exactly the transaction's fee; the same
/// payment again is `duplicate_settlement` and not served. Legacy messages
/// are accepted too. Prints the round trip and lamports per request, and a
/// `paychan` request's through the same server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stock_payment_settles_before_the_200_and_is_served_once() {
    let env = Env::start().await;

    // The offer: paychan first, exact second, with our fee payer.
    let a = env.get("/paid", &[]).await;
    assert_eq!(a.status, StatusCode::PAYMENT_REQUIRED);
    let required = a.required();
    let schemes: Vec<&str> = required.accepts.iter().map(|r| r.scheme.as_str()).collect();
    assert_eq!(schemes, ["paychan", "exact"]);
    let offer = &required.accepts[1];
    assert_eq!(
        (
            offer.network.as_str(),
            offer.amount.as_str(),
            offer.asset.clone(),
            offer.pay_to.clone()
        ),
        (
            env.network.as_str(),
            "1000",
            env.mint().to_string(),
            env.payee.pubkey().to_string()
        )
    );
    assert_eq!(
        offer.extra,
        Some(json!({ "feePayer": env.fee_payer().to_string() }))
    );
    // A route that did not opt in offers paychan only.
    let only = env.get("/paychan-only", &[]).await.required();
    assert_eq!(only.accepts.len(), 1);

    let before = env.balances().await;
    let tx = env.v0(&env.stock(PRICE), &[], &[&env.client]).await;
    let header = env.header(offer, &tx);
    let a = env.pay("/paid", &header).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let settle = a.settle();
    assert!(settle.success);
    assert_eq!(settle.network, env.network);
    assert_eq!(settle.payer, Some(env.client.pubkey().to_string()));
    assert_eq!(settle.amount.as_deref(), Some("1000"));
    assert!(a.text().contains(&settle.transaction), "{}", a.text());
    // Confirmed before the 200: no polling here.
    assert!(env.landed(&settle.transaction).await);
    let after = env.balances().await;
    assert_eq!(after.0, before.0 + PRICE, "the payee got exactly the price");
    assert_eq!(after.1, before.1 - PRICE);
    // Two signatures and ⌈1 µL × 20,000 CU / 10⁶⌉ = 1 lamport of priority fee.
    let fee = before.2 - after.2;
    assert_eq!(fee, 10_001, "the fee payer paid the transaction's fee only");
    assert_eq!(env.runs.load(Ordering::SeqCst), 1);

    // The same payment again: refused, not served, nothing moves.
    let again = env.pay("/paid", &header).await;
    assert_eq!(again.reason(), reason::DUPLICATE_SETTLEMENT);
    assert!(again.headers.get("payment-response").is_none());
    assert_eq!(env.runs.load(Ordering::SeqCst), 1);
    assert_eq!(env.balances().await, after);

    // A legacy message pays too.
    let tx = env
        .legacy(&env.stock(PRICE), &env.fee_payer(), &[&env.client])
        .await;
    let a = env.pay("/paid", &env.header(offer, &tx)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(env.balances().await.0, after.0 + PRICE);

    // Measured: sequential exact requests (each a new transaction).
    const N: usize = 20;
    let before = env.balances().await;
    let mut exact_ms = Vec::with_capacity(N);
    for _ in 0..N {
        let tx = env.v0(&env.stock(PRICE), &[], &[&env.client]).await;
        let a = env.pay("/paid", &env.header(offer, &tx)).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text());
        exact_ms.push(a.elapsed.as_secs_f64() * 1e3);
    }
    let after = env.balances().await;
    assert_eq!(after.0, before.0 + PRICE * N as u64);
    let lamports_per_request = (before.2 - after.2) / N as u64;
    assert_eq!(lamports_per_request, 10_001);

    // The same through `paychan` (a voucher checked against the channel in
    // memory; no transaction).
    let paychan_offer = env.get("/channel", &[]).await.required().accepts[0].clone();
    let mut paychan_ms = Vec::with_capacity(N);
    for i in 1..=N as u64 {
        let voucher = env.channel.voucher(i * PRICE);
        let header = common::pay_v2(&voucher, &paychan_offer);
        let a = env.pay("/channel", &header).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text());
        paychan_ms.push(a.elapsed.as_secs_f64() * 1e3);
    }
    assert_eq!(
        env.balances().await.2,
        after.2,
        "paychan requests cost no SOL"
    );
    let stats = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        (mean, v[v.len() / 2], v[v.len() - 1])
    };
    let (e, p) = (stats(&mut exact_ms), stats(&mut paychan_ms));
    println!(
        "exact:   {N} requests, round trip mean {:.1} ms, p50 {:.1} ms, max {:.1} ms; \
         {lamports_per_request} lamports per request (fee payer)",
        e.0, e.1, e.2
    );
    println!(
        "paychan: {N} requests, round trip mean {:.2} ms, p50 {:.2} ms, max {:.2} ms; \
         0 lamports per request (settled later, in batches)",
        p.0, p.1, p.2
    );
}

/// Every MUST of the scheme, each broken once: refused with the
/// reference's reason, nothing sent (no token and no lamport moves), the
/// handler never runs. Then the startup errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_refuses_with_the_reference_reason_and_costs_nothing() {
    let env = Env::start().await;
    let offer = env.offer("/paid").await;
    let before = env.balances().await;
    let (client, fee_payer, mint) = (&env.client, env.fee_payer(), env.mint());
    let transfer = |amount: u64| {
        transfer_checked(
            env.client_tokens,
            mint,
            env.payee_tokens,
            client.pubkey(),
            amount,
            6,
        )
    };
    let with = |third: Instruction, rest: Vec<Instruction>| {
        let mut ixs = vec![cu_limit(20_000), cu_price(1), third];
        ixs.extend(rest);
        ixs
    };
    let stranger = Keypair::new();
    let cases: Vec<(&str, Vec<Instruction>, Vec<&Keypair>, &str)> = vec![
        (
            "fee payer in an instruction's accounts",
            with(transfer(PRICE), vec![memo(&nonce(), &[fee_payer])]),
            vec![client],
            reason::FEE_PAYER_NOT_ISOLATED,
        ),
        (
            "fee payer as the transfer's authority",
            with(
                transfer_checked(
                    env.payee_tokens,
                    mint,
                    env.payee_tokens,
                    fee_payer,
                    PRICE,
                    6,
                ),
                vec![memo(&nonce(), &[])],
            ),
            vec![],
            reason::FEE_PAYER_TRANSFERRING_FUNDS,
        ),
        (
            "another mint",
            with(
                transfer_checked(
                    env.client_tokens,
                    Pubkey::new_unique(),
                    env.payee_tokens,
                    client.pubkey(),
                    PRICE,
                    6,
                ),
                vec![memo(&nonce(), &[])],
            ),
            vec![client],
            reason::MINT_MISMATCH,
        ),
        (
            "another recipient",
            with(
                transfer_checked(
                    env.client_tokens,
                    mint,
                    env.client_tokens,
                    client.pubkey(),
                    PRICE,
                    6,
                ),
                vec![memo(&nonce(), &[])],
            ),
            vec![client],
            reason::RECIPIENT_MISMATCH,
        ),
        (
            "less than the price",
            with(transfer(PRICE - 1), vec![memo(&nonce(), &[])]),
            vec![client],
            reason::AMOUNT_MISMATCH,
        ),
        (
            "an unknown fourth instruction",
            with(
                transfer(PRICE),
                vec![Instruction::new_with_bytes(
                    Pubkey::from_str_const("11111111111111111111111111111111"),
                    &[2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
                    vec![
                        AccountMeta::new(client.pubkey(), true),
                        AccountMeta::new(Pubkey::new_unique(), false),
                    ],
                )],
            ),
            vec![client],
            reason::UNKNOWN_FOURTH_INSTRUCTION,
        ),
        (
            "a memo then an unknown fifth instruction",
            with(transfer(PRICE), vec![memo(&nonce(), &[]), cu_price(1)]),
            vec![client],
            reason::UNKNOWN_FIFTH_INSTRUCTION,
        ),
        (
            "no transfer",
            with(memo(&nonce(), &[]), vec![memo(&nonce(), &[])]),
            vec![],
            reason::NO_TRANSFER_INSTRUCTION,
        ),
        (
            "a compute-unit price above the cap",
            vec![
                cu_limit(20_000),
                cu_price(50_001),
                transfer(PRICE),
                memo(&nonce(), &[]),
            ],
            vec![client],
            reason::COMPUTE_PRICE_INSTRUCTION_TOO_HIGH,
        ),
        (
            "a compute-unit limit above the cap",
            vec![
                cu_limit(50_001),
                cu_price(1),
                transfer(PRICE),
                memo(&nonce(), &[]),
            ],
            vec![client],
            reason::COMPUTE_LIMIT_INSTRUCTION_TOO_HIGH,
        ),
        (
            "no compute-unit limit",
            vec![cu_price(1), cu_price(1), transfer(PRICE)],
            vec![client],
            reason::COMPUTE_LIMIT_INSTRUCTION,
        ),
        (
            "no compute-unit price",
            vec![cu_limit(20_000), cu_limit(20_000), transfer(PRICE)],
            vec![client],
            reason::COMPUTE_PRICE_INSTRUCTION,
        ),
        (
            "the client's signature missing",
            with(transfer(PRICE), vec![memo(&nonce(), &[])]),
            vec![],
            reason::SIGNATURE_INVALID,
        ),
        (
            "a signer beyond the client and the fee payer",
            with(transfer(PRICE), vec![memo(&nonce(), &[stranger.pubkey()])]),
            vec![client, &stranger],
            reason::EXCESSIVE_SIGNERS,
        ),
        (
            "the mint's decimals wrong",
            with(
                transfer_checked(
                    env.client_tokens,
                    mint,
                    env.payee_tokens,
                    client.pubkey(),
                    PRICE,
                    9,
                ),
                vec![memo(&nonce(), &[])],
            ),
            vec![client],
            reason::TRANSACTION_SIMULATION_FAILED,
        ),
        (
            "more than the client holds (simulation)",
            with(transfer(CLIENT_TOKENS + 1), vec![memo(&nonce(), &[])]),
            vec![client],
            reason::TRANSACTION_SIMULATION_FAILED,
        ),
    ];
    for (what, ixs, signers, expected) in cases {
        let tx = env.v0(&ixs, &[], &signers).await;
        let a = env.pay("/paid", &env.header(&offer, &tx)).await;
        assert_eq!(a.reason(), expected, "{what}: {}", a.text());
        let ext = &a.required().extensions.unwrap()["exact"];
        assert_eq!(ext["reason"], expected, "{what}");
        assert!(ext["message"].as_str().is_some_and(|m| !m.is_empty()));
    }

    // A signature that does not verify (another key signed the client's slot).
    let mut tx = env.v0(&env.stock(PRICE), &[], &[client]).await;
    tx.signatures[1] = stranger.sign_message(&tx.message.serialize());
    let a = env.pay("/paid", &env.header(&offer, &tx)).await;
    assert_eq!(a.reason(), reason::SIGNATURE_INVALID);
    // Another fee payer.
    let tx = env
        .legacy(&env.stock(PRICE), &stranger.pubkey(), &[client])
        .await;
    let a = env.pay("/paid", &env.header(&offer, &tx)).await;
    assert_eq!(a.reason(), reason::FEE_PAYER_MISMATCH);
    // Not a transaction.
    let a = env.pay("/paid", &env.header_b64(&offer, "AAEC")).await;
    assert_eq!(a.reason(), reason::TRANSACTION_COULD_NOT_BE_DECODED);
    let a = env
        .pay("/paid", &env.header_b64(&offer, &"A".repeat(2_000)))
        .await;
    assert_eq!(a.reason(), reason::TRANSACTION_COULD_NOT_BE_DECODED);
    // Another network in `accepted`.
    let mut elsewhere = offer.clone();
    elsewhere.network = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1".into();
    let tx = env.v0(&env.stock(PRICE), &[], &[client]).await;
    let a = env.pay("/paid", &env.header(&elsewhere, &tx)).await;
    assert_eq!(a.reason(), reason::NETWORK_MISMATCH);
    // A malformed payload is a 400 naming the field.
    let bad = codec::encode(&json!({
        "x402Version": 2, "accepted": offer, "payload": {"tx": "AAEC"},
    }))
    .unwrap();
    let a = env.pay("/paid", &bad).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let body: Value = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(body["field"], "payload.transaction");

    // `extra.memo` set: exactly one Memo, with exactly that text.
    let memo_offer = env.offer("/memo").await;
    assert_eq!(memo_offer.extra.as_ref().unwrap()["memo"], MEMO);
    let cases = [
        (vec![memo(&nonce(), &[])], reason::MEMO_MISMATCH),
        (vec![], reason::MEMO_COUNT),
        (
            vec![memo(MEMO.as_bytes(), &[]), memo(MEMO.as_bytes(), &[])],
            reason::MEMO_COUNT,
        ),
    ];
    for (rest, expected) in cases {
        let tx = env.v0(&with(transfer(PRICE), rest), &[], &[client]).await;
        let a = env.pay("/memo", &env.header(&memo_offer, &tx)).await;
        assert_eq!(a.reason(), expected);
    }
    assert_eq!(env.runs.load(Ordering::SeqCst), 0);
    assert_eq!(
        env.balances().await,
        before,
        "no refusal moved a token or a lamport"
    );
    let tx = env
        .v0(
            &with(transfer(PRICE), vec![memo(MEMO.as_bytes(), &[])]),
            &[],
            &[client],
        )
        .await;
    let a = env.pay("/memo", &env.header(&memo_offer, &tx)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(env.balances().await.0, before.0 + PRICE);

    // Startup: a payee without an associated token account, an unfunded fee payer.
    let config = |pay_to: Pubkey, fee_payer: Keypair| ExactConfig {
        network: env.network.clone(),
        pay_to,
        mint,
        fee_payer,
        memo: None,
        limits: ExactLimits::default(),
    };
    let nobody = Pubkey::new_unique();
    match ExactSettler::connect(
        env.chain.rpc_url(),
        config(nobody, env.payee.insecure_clone()),
    )
    .await
    {
        Err(e @ ExactSetupError::MissingPayToAccount { .. }) => {
            let text = e.to_string();
            assert!(text.contains(&nobody.to_string()), "{text}");
            assert!(text.contains("associated token account"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    match ExactSettler::connect(
        env.chain.rpc_url(),
        config(env.payee.pubkey(), Keypair::new()),
    )
    .await
    {
        Err(ExactSetupError::FeePayerUnfunded {
            lamports: 0,
            needed: 12_500,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

/// A v0 message's lookup tables are fetched before any account rule: the
/// fee payer hidden in a table is found (and refused), and a transfer whose
/// destination comes from a table settles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_tables_are_resolved_before_any_account_rule() {
    use solana_address_lookup_table_interface::instruction::{
        create_lookup_table, extend_lookup_table,
    };
    let env = Env::start().await;
    let offer = env.offer("/paid").await;
    let funder = Keypair::new();
    env.chain.fund_sol(&funder.pubkey(), SOL).await.unwrap();
    let slot = env.chain.rpc_client().get_slot().await.unwrap();
    let (create, table) = create_lookup_table(funder.pubkey(), funder.pubkey(), slot);
    let addresses = vec![env.payee_tokens, env.fee_payer(), env.mint()];
    let extend = extend_lookup_table(
        table,
        funder.pubkey(),
        Some(funder.pubkey()),
        addresses.clone(),
    );
    env.chain
        .send(&[create, extend], &funder, &[])
        .await
        .unwrap();
    // The table's addresses are usable from the next slot.
    env.chain
        .send(&[memo(b"next slot", &[funder.pubkey()])], &funder, &[])
        .await
        .unwrap();
    let before = env.balances().await;

    // The fee payer loaded from the table into the Memo's accounts: only
    // visible once the table is resolved.
    let message = |memo_accounts: Vec<u8>, readonly: Vec<u8>, blockhash: Hash| {
        let keys = vec![
            env.fee_payer(),
            env.client.pubkey(),
            env.client_tokens,
            COMPUTE_BUDGET_PROGRAM,
            TOKEN_PROGRAM,
            MEMO_PROGRAM,
        ];
        // 6 static keys; the table's writable index 0 (payee's tokens) is
        // 6, its readonly indexes 2 (mint) and, when loaded, 1 (fee payer)
        // are 7 and 8.
        let mut data = vec![12];
        data.extend_from_slice(&PRICE.to_le_bytes());
        data.push(6);
        VersionedMessage::V0(v0::Message {
            header: MessageHeader {
                num_required_signatures: 2,
                num_readonly_signed_accounts: 1,
                num_readonly_unsigned_accounts: 3,
            },
            account_keys: keys,
            recent_blockhash: blockhash,
            instructions: vec![
                CompiledInstruction::new_from_raw_parts(3, cu_limit(20_000).data, vec![]),
                CompiledInstruction::new_from_raw_parts(3, cu_price(1).data, vec![]),
                CompiledInstruction::new_from_raw_parts(4, data, vec![2, 7, 6, 1]),
                CompiledInstruction::new_from_raw_parts(5, nonce(), memo_accounts),
            ],
            address_table_lookups: vec![MessageAddressTableLookup {
                account_key: table,
                writable_indexes: vec![0],
                readonly_indexes: readonly,
            }],
        })
    };
    let hidden = partially_sign(
        message(vec![8], vec![2, 1], env.blockhash().await),
        &[&env.client],
    );
    let a = env.pay("/paid", &env.header(&offer, &hidden)).await;
    assert_eq!(a.reason(), reason::FEE_PAYER_NOT_ISOLATED, "{}", a.text());
    assert_eq!(env.balances().await, before);

    // A table that is not one.
    let mut fake = message(vec![], vec![2], env.blockhash().await);
    if let VersionedMessage::V0(m) = &mut fake {
        m.address_table_lookups[0].account_key = env.client_tokens;
    }
    let fake = partially_sign(fake, &[&env.client]);
    let a = env.pay("/paid", &env.header(&offer, &fake)).await;
    assert_eq!(a.reason(), reason::ALT_RESOLUTION_FAILED, "{}", a.text());

    // The same transfer without the hidden fee payer: settled, the
    // destination loaded from the table.
    let good = partially_sign(
        message(vec![], vec![2], env.blockhash().await),
        &[&env.client],
    );
    let a = env.pay("/paid", &env.header(&offer, &good)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert!(env.landed(&a.settle().transaction).await);
    assert_eq!(env.balances().await.0, before.0 + PRICE);
    // And one compiled by the library with the table.
    let table = AddressLookupTableAccount {
        key: table,
        addresses,
    };
    let tx = env
        .v0(
            &env.stock(PRICE),
            std::slice::from_ref(&table),
            &[&env.client],
        )
        .await;
    assert!(matches!(&tx.message, VersionedMessage::V0(m) if !m.address_table_lookups.is_empty()));
    let a = env.pay("/paid", &env.header(&offer, &tx)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(env.balances().await.0, before.0 + 2 * PRICE);
}

/// Paid once, served once: a settled payment whose handler failed (5xx) is
/// a credit its retry uses without a second settlement; a served payment
/// is replayed only for its `Idempotency-Key` and request; concurrent
/// copies of one payment settle and serve exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_is_a_credit_and_copies_never_settle_twice() {
    let env = Env::start().await;
    let offer = env.offer("/flaky").await;
    let before = env.balances().await;
    let tx = env.v0(&env.stock(PRICE), &[], &[&env.client]).await;
    let header = env.header(&offer, &tx);
    let a = env.pay("/flaky", &header).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(a.headers.get("payment-response").is_none());
    assert_eq!(
        serde_json::from_slice::<Value>(&a.body).unwrap()["error"],
        "handler_failed"
    );
    let settled = env.balances().await;
    assert_eq!(
        settled.0,
        before.0 + PRICE,
        "settled before the handler ran"
    );
    // The retry is served from the credit: no second transaction.
    let a = env.pay("/flaky", &header).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert!(env.landed(&a.settle().transaction).await);
    assert_eq!(env.balances().await, settled);
    // Spent now.
    let a = env.pay("/flaky", &header).await;
    assert_eq!(a.reason(), reason::DUPLICATE_SETTLEMENT);
    assert_eq!(env.flaky.load(Ordering::SeqCst), 2);

    // With an Idempotency-Key: the stored answer, for that key only.
    let offer = env.offer("/paid").await;
    let tx = env.v0(&env.stock(PRICE), &[], &[&env.client]).await;
    let header = env.header(&offer, &tx);
    let keyed = |key: &'static str| {
        let (env, header) = (&env, header.as_str());
        async move {
            env.get(
                "/paid",
                &[("PAYMENT-SIGNATURE", header), ("Idempotency-Key", key)],
            )
            .await
        }
    };
    let first = keyed("k1").await;
    assert_eq!(first.status, StatusCode::OK);
    let again = keyed("k1").await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.body, first.body);
    assert_eq!(again.settle(), first.settle());
    let other = keyed("k2").await;
    assert_eq!(other.reason(), reason::DUPLICATE_SETTLEMENT);
    assert_eq!(env.runs.load(Ordering::SeqCst), 1);

    // Eight copies of one payment at once: one transaction, one run.
    let before = env.balances().await;
    let tx = env.v0(&env.stock(PRICE), &[], &[&env.client]).await;
    let header = env.header(&offer, &tx);
    let answers = futures_util::future::join_all((0..8).map(|_| env.pay("/paid", &header))).await;
    let served = answers
        .iter()
        .filter(|a| a.status == StatusCode::OK)
        .count();
    let duplicates = answers
        .iter()
        .filter(|a| {
            a.status == StatusCode::PAYMENT_REQUIRED && a.reason() == reason::DUPLICATE_SETTLEMENT
        })
        .count();
    assert_eq!((served, duplicates), (1, 7));
    assert_eq!(env.runs.load(Ordering::SeqCst), 2);
    let after = env.balances().await;
    assert_eq!(after.0, before.0 + PRICE);
    assert_eq!(before.2 - after.2, 10_001, "one fee");

    // Settlements in flight are bounded: with one at a time, six different
    // payments at once are settled or refused 503 (`Overloaded`) at once,
    // and the fee payer pays exactly for those settled.
    let one = Arc::new(
        ExactSettler::connect(
            env.chain.rpc_url(),
            ExactConfig {
                network: env.network.clone(),
                pay_to: env.payee.pubkey(),
                mint: env.mint(),
                fee_payer: env.payee.insecure_clone(),
                memo: None,
                limits: ExactLimits {
                    max_in_flight: 1,
                    ..ExactLimits::default()
                },
            },
        )
        .await
        .unwrap(),
    );
    let mut txs = Vec::new();
    for _ in 0..6 {
        let tx = env.v0(&env.stock(PRICE), &[], &[&env.client]).await;
        txs.push(exact::encode_transaction(&tx).unwrap());
    }
    let before = env.balances().await;
    let results =
        futures_util::future::join_all(txs.iter().map(|tx| one.settle(tx, PRICE, None))).await;
    let settled = results
        .iter()
        .filter(|r| matches!(r, Ok(c) if c.first))
        .count();
    let overloaded = results
        .iter()
        .filter(|r| matches!(r, Err(exact::ExactError::Overloaded)))
        .count();
    assert_eq!(settled + overloaded, 6, "{results:?}");
    assert!(settled >= 1 && overloaded >= 1, "{results:?}");
    let after = env.balances().await;
    assert_eq!(after.0, before.0 + PRICE * settled as u64);
    assert_eq!(before.2 - after.2, 10_001 * settled as u64);
    // A refused one was forgotten: it settles once there is room.
    let retry = results
        .iter()
        .position(|r| r.is_err())
        .map(|i| &txs[i])
        .unwrap();
    assert!(one.settle(retry, PRICE, None).await.unwrap().first);
}

/// The facilitator: `/supported` lists `exact` with the fee payer,
/// `/verify` checks without settling, `/settle` settles once and names the
/// transaction, a second `/settle` is `duplicate_settlement`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_facilitator_verifies_and_settles_exact_payments() {
    let env = Env::start().await;
    let a = env.get("/facilitator/supported", &[]).await;
    let supported: v2::SupportedResponse = serde_json::from_slice(&a.body).unwrap();
    let kind = supported
        .kinds
        .iter()
        .find(|k| k.scheme == "exact")
        .expect("the exact kind");
    assert_eq!(
        (kind.x402_version, kind.network.as_str()),
        (2, env.network.as_str())
    );
    assert_eq!(
        kind.extra,
        Some(json!({ "feePayer": env.fee_payer().to_string() }))
    );
    assert_eq!(supported.signers["solana:*"], [env.fee_payer().to_string()]);

    let offer = env.offer("/paid").await;
    let post = |path: &'static str, body: Value| {
        let req = env
            .http
            .post(format!("{}/facilitator/{path}", env.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        async move {
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), reqwest::StatusCode::OK);
            serde_json::from_slice::<Value>(&res.bytes().await.unwrap()).unwrap()
        }
    };
    let request = |tx: &VersionedTransaction, requirements: &v2::PaymentRequirements| {
        json!({
            "x402Version": 2,
            "paymentPayload": {
                "x402Version": 2,
                "accepted": requirements,
                "payload": { "transaction": exact::encode_transaction(tx).unwrap() },
            },
            "paymentRequirements": requirements,
        })
    };
    let before = env.balances().await;
    let tx = env.v0(&env.stock(PRICE), &[], &[&env.client]).await;
    let verified = post("verify", request(&tx, &offer)).await;
    assert_eq!(verified["isValid"], true, "{verified}");
    assert_eq!(verified["payer"], env.client.pubkey().to_string());
    assert_eq!(env.balances().await, before, "/verify settles nothing");

    let settled = post("settle", request(&tx, &offer)).await;
    assert_eq!(settled["success"], true, "{settled}");
    let signature = settled["transaction"].as_str().unwrap();
    assert!(env.landed(signature).await);
    assert_eq!(env.balances().await.0, before.0 + PRICE);
    let again = post("settle", request(&tx, &offer)).await;
    assert_eq!(again["success"], false);
    assert_eq!(again["errorReason"], reason::DUPLICATE_SETTLEMENT);

    // Refusals carry the reference's reasons.
    let low = env.v0(&env.stock(PRICE - 1), &[], &[&env.client]).await;
    let v = post("verify", request(&low, &offer)).await;
    assert_eq!(
        (v["isValid"].clone(), v["invalidReason"].clone()),
        (json!(false), json!(reason::AMOUNT_MISMATCH))
    );
    assert_eq!(v["extensions"]["exact"]["code"], reason::AMOUNT_MISMATCH);
    let mut other_payer = offer.clone();
    other_payer.extra = Some(json!({ "feePayer": Pubkey::new_unique().to_string() }));
    let v = post("verify", request(&tx, &other_payer)).await;
    assert_eq!(v["invalidReason"], reason::FEE_PAYER_NOT_MANAGED);
    let mut no_payer = offer.clone();
    no_payer.extra = None;
    let v = post("settle", request(&tx, &no_payer)).await;
    assert_eq!(v["errorReason"], reason::MISSING_FEE_PAYER);
    let mut cheap = offer.clone();
    cheap.amount = "999".into();
    let v = post("verify", request(&low, &cheap)).await;
    assert_eq!(v["invalidReason"], "invalid_payment_requirements");
    // A requirement's memo is enforced.
    let mut with_memo = offer.clone();
    with_memo.extra = Some(json!({ "feePayer": env.fee_payer().to_string(), "memo": MEMO }));
    let fresh = env.v0(&env.stock(PRICE), &[], &[&env.client]).await;
    let v = post("verify", request(&fresh, &with_memo)).await;
    assert_eq!(v["invalidReason"], reason::MEMO_MISMATCH);
    assert_eq!(env.balances().await.0, before.0 + PRICE);
}
