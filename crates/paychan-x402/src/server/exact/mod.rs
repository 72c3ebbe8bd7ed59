//! The x402 `exact` scheme on Solana (`scheme_exact_svm`), settled by this
//! server: no outside facilitator. A stock client (`@x402/svm` 2.27) pays a
//! route by sending a partially signed transaction — compute-unit limit,
//! compute-unit price, one `TransferChecked` of the asset to the payee's
//! associated token account, a Memo — in which this server's key is the fee
//! payer (`extra.feePayer`). [`ExactSettler`] checks it as the reference
//! facilitator does (same refusal reasons, [`reason`]), simulates it,
//! co-signs it, sends it and waits for `confirmed` before the paid answer.
//!
//! **It costs the payee SOL on every request**: the transaction's fee (5,000
//! lamports per signature — the client's and the fee payer's — plus the
//! priority fee the client chose within [`ExactLimits`]), about 10,000
//! lamports for a stock client, at most [`ExactSettler::max_fee`]. It is
//! opt-in per route ([`super::PaywallLayer::exact`]) and per facilitator
//! ([`super::facilitator::router_with_exact`]).
//!
//! What the payee is protected by:
//! - every rule is checked before anything is signed; the fee payer appears
//!   in no instruction (lookup tables resolved first), so its signature
//!   authorizes nothing but the fee; compute units and their price are
//!   capped; only the client's and the fee payer's signatures are required;
//! - the transaction is simulated (unsigned by the fee payer) and never
//!   co-signed when that fails;
//! - settlements in flight are bounded ([`ExactLimits::max_in_flight`],
//!   then 503) and a transaction is settled at most once: its message hash
//!   is remembered ([`ExactLimits::dedup_window`], at least 120 s) and its
//!   signature is looked up on chain before it is sent.
//!
//! Startup ([`ExactSettler::connect`]) reads the mint (its token program
//! and decimals), requires the payee's associated token account to exist
//! (a clear error instead of every payment failing simulation) and the fee
//! payer to hold at least one worst-case fee.
use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use base64::Engine;
use paychan_verifier::Pubkey;
use solana_account_decoder_client_types::{UiAccountEncoding, UiDataSliceConfig};
use solana_commitment_config::CommitmentConfig;
use solana_keypair::Keypair;
use solana_rpc_client::nonblocking::rpc_client::RpcClient;
use solana_rpc_client_api::{
    client_error::{Error as ClientError, ErrorKind},
    config::{RpcAccountInfoConfig, RpcSendTransactionConfig, RpcSimulateTransactionConfig},
    request::RpcError,
};
use solana_signature::Signature;
use solana_signer::Signer;
use solana_transaction_status_client_types::UiTransactionEncoding;

use crate::{
    scheme::{EXACT, ExactExtra, MAX_EXACT_MEMO_BYTES},
    v2,
};

mod check;
mod ledger;
pub mod reason;

pub use check::{
    COMPUTE_BUDGET_PROGRAM, LAMPORTS_PER_SIGNATURE, LIGHTHOUSE_PROGRAM, LOOKUP_TABLE_PROGRAM,
    MAX_INSTRUCTIONS, MAX_REQUIRED_SIGNATURES, MAX_TRANSACTION_BASE64, MAX_TRANSACTION_BYTES,
    MEMO_PROGRAM, MIN_INSTRUCTIONS, TOKEN_2022_PROGRAM, TOKEN_PROGRAM,
};
pub use ledger::Settlement;
use ledger::{Begin, End, Ledger};

/// The shortest duplicate window: twice a blockhash's lifetime (the
/// reference's `SETTLEMENT_TTL_MS`).
pub const MIN_DEDUP_WINDOW: Duration = Duration::from_secs(120);
/// Largest lookup-table account read: its metadata and 256 addresses.
pub const MAX_LOOKUP_TABLE_BYTES: usize = 56 + 32 * 256;

/// What the fee payer accepts to pay for, and how much the settler takes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExactLimits {
    /// Highest compute-unit limit a transaction may set (default 50,000;
    /// the stock client sets 20,000).
    pub max_compute_units: u32,
    /// Highest compute-unit price, micro-lamports (default 50,000, the
    /// spec's reference default; the stock client sets 1).
    pub max_compute_unit_price: u64,
    /// Settlements (and `/verify` simulations) in flight at once (default
    /// 16); more are answered 503 at once.
    pub max_in_flight: usize,
    /// How long a decided transaction is remembered (default and minimum
    /// 120 s): a duplicate within it is `duplicate_settlement`, and a
    /// settled payment whose handler failed is a credit for that long.
    pub dedup_window: Duration,
    /// Transactions remembered at once (default 65,536); when all are
    /// within their window, new settlements are answered 503.
    pub max_remembered: usize,
    /// How long a sent transaction is polled for `confirmed` before it is
    /// reported `settlement_pending` (default 60 s).
    pub confirm_timeout: Duration,
    /// Lookup tables a v0 transaction may name (default 4).
    pub max_lookup_tables: usize,
    /// Each RPC call's timeout (default 10 s).
    pub rpc_timeout: Duration,
}

impl Default for ExactLimits {
    fn default() -> Self {
        Self {
            max_compute_units: 50_000,
            max_compute_unit_price: 50_000,
            max_in_flight: 16,
            dedup_window: MIN_DEDUP_WINDOW,
            max_remembered: 65_536,
            confirm_timeout: Duration::from_secs(60),
            max_lookup_tables: 4,
            rpc_timeout: Duration::from_secs(10),
        }
    }
}

/// What an [`ExactSettler`] settles.
pub struct ExactConfig {
    /// CAIP-2 network of the offers (the same as the `paychan` offers').
    pub network: String,
    /// The payee (`payTo`): payments go to its associated token account.
    pub pay_to: Pubkey,
    /// The asset.
    pub mint: Pubkey,
    /// Signs every settled transaction as fee payer and pays its fee.
    pub fee_payer: Keypair,
    /// `extra.memo` of the offers: when set, every transaction must carry
    /// exactly one Memo with exactly this text (at most 256 bytes).
    pub memo: Option<String>,
    /// Limits.
    pub limits: ExactLimits,
}

impl fmt::Debug for ExactConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExactConfig")
            .field("network", &self.network)
            .field("pay_to", &self.pay_to)
            .field("mint", &self.mint)
            .field("fee_payer", &self.fee_payer.pubkey())
            .field("memo", &self.memo)
            .field("limits", &self.limits)
            .finish()
    }
}

/// Why an [`ExactSettler`] cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExactSetupError {
    /// The payee has no associated token account in the mint.
    #[error(
        "the payee {pay_to} has no associated token account in {mint} ({ata} does not exist): \
         exact payments go there, so create it before offering exact"
    )]
    MissingPayToAccount {
        /// The payee.
        pay_to: Pubkey,
        /// The mint.
        mint: Pubkey,
        /// The missing account.
        ata: Pubkey,
    },
    /// The payee's associated token account cannot receive the payments.
    #[error("the payee's associated token account {ata}: {problem}")]
    BadPayToAccount {
        /// The account.
        ata: Pubkey,
        /// What is wrong.
        problem: String,
    },
    /// The mint cannot be paid in with `exact`.
    #[error("mint {mint}: {problem}")]
    Mint {
        /// The mint.
        mint: Pubkey,
        /// What is wrong.
        problem: String,
    },
    /// The fee payer cannot pay one settlement's fee.
    #[error(
        "the fee payer {fee_payer} holds {lamports} lamports, less than one exact settlement \
         may cost ({needed})"
    )]
    FeePayerUnfunded {
        /// The fee payer.
        fee_payer: Pubkey,
        /// Its balance.
        lamports: u64,
        /// The worst-case fee.
        needed: u64,
    },
    /// A configuration value is out of range.
    #[error("{0}")]
    Config(String),
    /// The RPC node could not be read.
    #[error("reading {what} over RPC: {error}")]
    Rpc {
        /// What was read.
        what: String,
        /// The error (URLs redacted).
        error: String,
    },
}

/// Why an `exact` payment is refused, in the reference's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExactRefusal {
    /// The x402 `invalidReason` / `errorReason` ([`reason`]).
    pub reason: &'static str,
    /// What exactly is wrong.
    pub message: String,
    /// The transfer's authority, once known.
    pub payer: Option<Pubkey>,
}

impl ExactRefusal {
    pub(crate) fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
            payer: None,
        }
    }
}

impl fmt::Display for ExactRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

/// Why an `exact` payment did not settle.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExactError {
    /// It does not pay (HTTP 402, or `isValid: false`).
    #[error("{0}")]
    Refused(ExactRefusal),
    /// Sent, not confirmed in time: presenting the same payment again asks
    /// the chain again (`settlement_pending`).
    #[error("{signature} was sent and is not confirmed yet")]
    Pending {
        /// The transaction's signature.
        signature: Signature,
    },
    /// Another request is settling the same transaction and did not finish
    /// within the wait (HTTP 409).
    #[error("the same transaction is being settled by another request")]
    InFlight,
    /// Too many settlements in flight, or the duplicate memory is full (503).
    #[error("too many exact settlements in flight")]
    Overloaded,
    /// The RPC node failed (503); nothing was sent.
    #[error("the RPC node is unavailable: {0}")]
    Unavailable(String),
}

impl From<ExactRefusal> for ExactError {
    fn from(r: ExactRefusal) -> Self {
        Self::Refused(r)
    }
}

/// A transaction that would settle (`/verify`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The transfer's authority.
    pub payer: Pubkey,
    /// What the transfer moves.
    pub amount: u64,
    /// What the fee payer would pay, lamports.
    pub fee: u64,
}

/// A settled payment, and whether this call is the first to be answered
/// for it (later ones are retries of the same payment).
#[derive(Clone, Debug)]
pub struct Claimed {
    /// The settlement.
    pub settlement: Arc<Settlement>,
    /// The first answer for it: serve it. `false`: a retry.
    pub first: bool,
}

/// What the paid handler finds in the request's extensions after an
/// `exact` payment (a `paychan` payment leaves a [`super::Receipt`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExactReceipt {
    /// The transaction's signature.
    pub signature: Signature,
    /// The transfer's authority.
    pub payer: Pubkey,
    /// What it moved to the payee.
    pub amount: u64,
    /// What the fee payer paid for it, lamports.
    pub fee: u64,
}

/// Settles `exact` payments; see the module docs.
pub struct ExactSettler {
    rpc: RpcClient,
    fee_payer: Keypair,
    fee_payer_key: Pubkey,
    network: String,
    pay_to: Pubkey,
    mint: Pubkey,
    token_program: Pubkey,
    decimals: u8,
    destination: Pubkey,
    memo: Option<String>,
    limits: ExactLimits,
    ledger: Arc<Ledger>,
    permits: Arc<tokio::sync::Semaphore>,
    commitment: CommitmentConfig,
}

impl fmt::Debug for ExactSettler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExactSettler")
            .field("rpc", &paychan_verifier::redact::url(&self.rpc.url()))
            .field("fee_payer", &self.fee_payer_key)
            .field("network", &self.network)
            .field("pay_to", &self.pay_to)
            .field("mint", &self.mint)
            .field("destination", &self.destination)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// How a settlement attempt ended well.
enum Landed {
    Settled(Arc<Settlement>),
    Pending(Arc<Settlement>),
}

/// How it ended otherwise.
enum Failed {
    Refused(ExactRefusal),
    Fault(String),
}

impl From<ExactRefusal> for Failed {
    fn from(r: ExactRefusal) -> Self {
        Self::Refused(r)
    }
}

/// What polling a sent transaction gave.
enum Confirmation {
    Landed(Result<(), String>),
    Expired,
    TimedOut,
}

fn redacted(e: &ClientError) -> String {
    paychan_verifier::redact::text(&e.to_string())
}

impl ExactSettler {
    /// Reads the mint and the payee's associated token account and checks
    /// the fee payer's balance (see the module docs), over `rpc_url`.
    pub async fn connect(
        rpc_url: impl Into<String>,
        config: ExactConfig,
    ) -> Result<Self, ExactSetupError> {
        let ExactConfig {
            network,
            pay_to,
            mint,
            fee_payer,
            memo,
            limits,
        } = config;
        let memo = memo.filter(|m| !m.is_empty());
        if let Some(m) = &memo
            && m.len() > MAX_EXACT_MEMO_BYTES
        {
            return Err(ExactSetupError::Config(format!(
                "the exact memo is {} bytes; at most {MAX_EXACT_MEMO_BYTES}",
                m.len()
            )));
        }
        if limits.max_in_flight == 0 || limits.max_remembered == 0 {
            return Err(ExactSetupError::Config(
                "exact max_in_flight and max_remembered must be above 0".into(),
            ));
        }
        let limits = ExactLimits {
            dedup_window: limits.dedup_window.max(MIN_DEDUP_WINDOW),
            ..limits
        };
        let commitment = CommitmentConfig::confirmed();
        let rpc = RpcClient::new_with_timeout_and_commitment(
            rpc_url.into(),
            limits.rpc_timeout,
            commitment,
        );
        let rpc_error = |what: String| {
            move |e: ClientError| ExactSetupError::Rpc {
                what,
                error: redacted(&e),
            }
        };
        let mint_account = rpc
            .get_account_with_commitment(&mint, commitment)
            .await
            .map_err(rpc_error(format!("the mint {mint}")))?
            .value;
        let mint_problem = |problem: &str| ExactSetupError::Mint {
            mint,
            problem: problem.to_owned(),
        };
        let mint_account = mint_account.ok_or_else(|| mint_problem("does not exist"))?;
        let token_program = mint_account.owner;
        if token_program != TOKEN_PROGRAM && token_program != TOKEN_2022_PROGRAM {
            return Err(mint_problem("is not owned by SPL Token or Token-2022"));
        }
        let decimals = mint_decimals(&mint_account.data).map_err(|p| mint_problem(&p))?;
        if token_program == TOKEN_2022_PROGRAM {
            refuse_mint_extensions(&mint_account.data).map_err(|p| mint_problem(&p))?;
        }
        let destination =
            paychan_sdk::pda::associated_token_account(&pay_to, &mint, &token_program);
        let ata = rpc
            .get_account_with_commitment(&destination, commitment)
            .await
            .map_err(rpc_error(format!(
                "the payee's token account {destination}"
            )))?
            .value
            .ok_or(ExactSetupError::MissingPayToAccount {
                pay_to,
                mint,
                ata: destination,
            })?;
        let bad_ata = |problem: &str| ExactSetupError::BadPayToAccount {
            ata: destination,
            problem: problem.to_owned(),
        };
        if ata.owner != token_program {
            return Err(bad_ata(
                "is not a token account of the mint's token program",
            ));
        }
        match (ata.data.get(..32), ata.data.get(32..64), ata.data.get(108)) {
            (Some(m), Some(o), Some(state))
                if m == mint.as_ref() && o == pay_to.as_ref() && *state == 1 => {}
            (_, _, Some(2)) => return Err(bad_ata("is frozen")),
            _ => {
                return Err(bad_ata(
                    "is not an initialized account of the payee in the mint",
                ));
            }
        }
        let fee_payer_key = fee_payer.pubkey();
        let needed = check::fee(
            MAX_REQUIRED_SIGNATURES,
            limits.max_compute_units,
            limits.max_compute_unit_price,
        );
        let lamports = rpc
            .get_balance_with_commitment(&fee_payer_key, commitment)
            .await
            .map_err(rpc_error(format!("the fee payer {fee_payer_key}")))?
            .value;
        if lamports < needed {
            return Err(ExactSetupError::FeePayerUnfunded {
                fee_payer: fee_payer_key,
                lamports,
                needed,
            });
        }
        tracing::info!(
            %fee_payer_key, %pay_to, %mint, %destination, lamports, max_fee = needed,
            "exact settlement ready"
        );
        Ok(Self {
            rpc,
            fee_payer,
            fee_payer_key,
            network,
            pay_to,
            mint,
            token_program,
            decimals,
            destination,
            memo,
            ledger: Arc::new(Ledger::new(limits.dedup_window, limits.max_remembered)),
            permits: Arc::new(tokio::sync::Semaphore::new(limits.max_in_flight)),
            limits,
            commitment,
        })
    }

    /// The fee payer (`extra.feePayer`).
    pub fn fee_payer(&self) -> Pubkey {
        self.fee_payer_key
    }

    /// The CAIP-2 network.
    pub fn network(&self) -> &str {
        &self.network
    }

    /// The payee (`payTo`).
    pub fn pay_to(&self) -> Pubkey {
        self.pay_to
    }

    /// The asset.
    pub fn mint(&self) -> Pubkey {
        self.mint
    }

    /// The mint's token program.
    pub fn token_program(&self) -> Pubkey {
        self.token_program
    }

    /// The mint's decimals.
    pub fn decimals(&self) -> u8 {
        self.decimals
    }

    /// Where payments go: the payee's associated token account.
    pub fn destination(&self) -> Pubkey {
        self.destination
    }

    /// The offers' `extra.memo`.
    pub fn memo(&self) -> Option<&str> {
        self.memo.as_deref()
    }

    /// The limits.
    pub fn limits(&self) -> &ExactLimits {
        &self.limits
    }

    /// The most one settlement can cost the fee payer, lamports: two
    /// signatures and the priority fee at both caps.
    pub fn max_fee(&self) -> u64 {
        check::fee(
            MAX_REQUIRED_SIGNATURES,
            self.limits.max_compute_units,
            self.limits.max_compute_unit_price,
        )
    }

    /// The offers' `extra`.
    pub fn extra(&self) -> ExactExtra {
        ExactExtra {
            fee_payer: self.fee_payer_key.to_string(),
            memo: self.memo.clone(),
        }
    }

    /// The `exact` requirement of a request costing `price` (what the
    /// paywall lists after the `paychan` one).
    pub fn requirements(&self, price: u64) -> v2::PaymentRequirements {
        v2::PaymentRequirements {
            scheme: EXACT.to_owned(),
            network: self.network.clone(),
            amount: price.to_string(),
            asset: self.mint.to_string(),
            pay_to: self.pay_to.to_string(),
            max_timeout_seconds: super::MAX_TIMEOUT_SECONDS,
            extra: serde_json::to_value(self.extra()).ok(),
        }
    }

    fn policy(&self, price: u64, memo: Option<&str>) -> check::Policy {
        check::Policy {
            fee_payer: self.fee_payer_key,
            mint: self.mint,
            token_program: self.token_program,
            decimals: self.decimals,
            destination: self.destination,
            amount: price,
            memo: memo.map(str::to_owned),
            max_compute_units: self.limits.max_compute_units,
            max_compute_unit_price: self.limits.max_compute_unit_price,
        }
    }

    /// The transaction decoded, its signatures checked (the signer rules).
    fn decode_signed(&self, transaction: &str) -> Result<check::Decoded, ExactRefusal> {
        let decoded = check::decode(transaction)?;
        check::signatures(&decoded, &self.fee_payer_key)?;
        Ok(decoded)
    }

    /// Checks a payment as `/settle` would, without settling anything:
    /// every rule, then a simulation. `memo` is the requirement's
    /// `extra.memo`.
    pub async fn verify(
        &self,
        transaction: &str,
        price: u64,
        memo: Option<&str>,
    ) -> Result<Verified, ExactError> {
        let decoded = self.decode_signed(transaction)?;
        let Ok(_permit) = self.permits.clone().try_acquire_owned() else {
            return Err(ExactError::Overloaded);
        };
        match self.inspect(&decoded, &self.policy(price, memo)).await {
            Ok(c) => Ok(Verified {
                payer: c.payer,
                amount: c.amount,
                fee: c.fee,
            }),
            Err(Failed::Refused(r)) => Err(ExactError::Refused(r)),
            Err(Failed::Fault(e)) => Err(ExactError::Unavailable(e)),
        }
    }

    /// Settles a payment: the signer rules, then the duplicate check (a
    /// transaction settled within the window is [`Claimed`] again with
    /// `first: false`; one being settled is waited for), then — in a task
    /// of its own, so a client that goes away does not abandon a sent
    /// transaction — every other rule, a simulation, the fee payer's
    /// signature, a look-up of that signature on chain, the send, and the
    /// wait for `confirmed`.
    pub async fn settle(
        self: &Arc<Self>,
        transaction: &str,
        price: u64,
        memo: Option<&str>,
    ) -> Result<Claimed, ExactError> {
        let decoded = self.decode_signed(transaction)?;
        let policy = self.policy(price, memo);
        let wait_until = Instant::now() + self.limits.confirm_timeout + self.limits.rpc_timeout * 4;
        loop {
            match self.ledger.begin(decoded.hash) {
                Begin::Settled(settlement) => {
                    let first = !settlement.claimed.swap(true, Ordering::AcqRel);
                    return Ok(Claimed { settlement, first });
                }
                Begin::Full => return Err(ExactError::Overloaded),
                Begin::Wait(mut done) => {
                    let left = wait_until.saturating_duration_since(Instant::now());
                    match tokio::time::timeout(left, done.wait_for(|d| *d)).await {
                        Ok(_) => continue,
                        Err(_) => return Err(ExactError::InFlight),
                    }
                }
                Begin::Pending(pending) => self.look_again(&decoded, pending).await?,
                Begin::Fresh(slot) => {
                    let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                        drop(slot);
                        return Err(ExactError::Overloaded);
                    };
                    let this = self.clone();
                    let (decoded, policy) = (decoded.clone(), policy.clone());
                    let task = tokio::spawn(async move {
                        let _permit = permit;
                        match this.attempt(&decoded, &policy).await {
                            Ok(Landed::Settled(s)) => {
                                slot.end(End::Settled(s));
                                Ok(())
                            }
                            Ok(Landed::Pending(s)) => {
                                let signature = s.signature;
                                slot.end(End::Pending(s));
                                Err(ExactError::Pending { signature })
                            }
                            Err(Failed::Refused(r)) => {
                                slot.end(End::Forget);
                                Err(ExactError::Refused(r))
                            }
                            Err(Failed::Fault(e)) => {
                                slot.end(End::Forget);
                                Err(ExactError::Unavailable(e))
                            }
                        }
                    });
                    match task.await {
                        Ok(Ok(())) => continue,
                        Ok(Err(e)) => return Err(e),
                        Err(e) => return Err(ExactError::Unavailable(e.to_string())),
                    }
                }
            }
        }
    }

    /// A transaction sent without a confirmation, presented again: its
    /// status now. `Ok` when the ledger moved on (settled, or forgotten).
    async fn look_again(
        &self,
        decoded: &check::Decoded,
        pending: Arc<Settlement>,
    ) -> Result<(), ExactError> {
        let signature = pending.signature;
        let status = self
            .status(&signature)
            .await
            .map_err(ExactError::Unavailable)?;
        let payer = pending.payer;
        let failed = move |message: String| {
            ExactError::Refused(ExactRefusal {
                payer: Some(payer),
                ..ExactRefusal::new(reason::TRANSACTION_FAILED, message)
            })
        };
        match status {
            Some(Ok(true)) => {
                self.ledger
                    .resolve_pending(&decoded.hash, End::Settled(pending));
                Ok(())
            }
            Some(Err(e)) => {
                self.ledger.resolve_pending(&decoded.hash, End::Forget);
                Err(failed(format!("{signature} failed on chain: {e}")))
            }
            Some(Ok(false)) => Err(ExactError::Pending { signature }),
            None => {
                let blockhash = decoded.tx.message.recent_blockhash();
                let valid = self
                    .rpc
                    .is_blockhash_valid(blockhash, CommitmentConfig::processed())
                    .await
                    .map_err(|e| ExactError::Unavailable(redacted(&e)))?;
                if valid {
                    return Err(ExactError::Pending { signature });
                }
                // One last look: it may have landed meanwhile.
                if let Ok(Some(_)) = self.status(&signature).await {
                    return Err(ExactError::Pending { signature });
                }
                self.ledger.resolve_pending(&decoded.hash, End::Forget);
                Err(failed(format!("{signature} expired before it landed")))
            }
        }
    }

    /// Lookup tables, instruction rules, simulation.
    async fn inspect(
        &self,
        decoded: &check::Decoded,
        policy: &check::Policy,
    ) -> Result<check::Checked, Failed> {
        let tables = self.lookup_tables(decoded).await?;
        let keys = decoded.account_keys(&tables)?;
        let checked = check::instructions(decoded, &keys, policy)?;
        let config = RpcSimulateTransactionConfig {
            sig_verify: false,
            replace_recent_blockhash: false,
            commitment: Some(self.commitment),
            encoding: Some(UiTransactionEncoding::Base64),
            ..RpcSimulateTransactionConfig::default()
        };
        let simulated = self
            .rpc
            .simulate_transaction_with_config(&decoded.tx, config)
            .await
            .map_err(|e| Failed::Fault(redacted(&e)))?
            .value;
        if let Some(err) = simulated.err {
            let logs = simulated.logs.unwrap_or_default();
            let tail: Vec<&str> = logs
                .iter()
                .rev()
                .take(3)
                .rev()
                .map(String::as_str)
                .collect();
            return Err(Failed::Refused(ExactRefusal {
                payer: Some(checked.payer),
                ..ExactRefusal::new(
                    reason::TRANSACTION_SIMULATION_FAILED,
                    format!("simulation failed: {err:?}; {}", tail.join(" | ")),
                )
            }));
        }
        Ok(checked)
    }

    /// Every table a v0 message names, fetched (at most
    /// [`MAX_LOOKUP_TABLE_BYTES`] of each) and decoded.
    async fn lookup_tables(
        &self,
        decoded: &check::Decoded,
    ) -> Result<HashMap<Pubkey, Vec<Pubkey>>, Failed> {
        let tables = decoded.lookup_tables();
        if tables.is_empty() {
            return Ok(HashMap::new());
        }
        let refuse = |message: String| {
            Failed::Refused(ExactRefusal::new(reason::ALT_RESOLUTION_FAILED, message))
        };
        if tables.len() > self.limits.max_lookup_tables {
            return Err(refuse(format!(
                "{} lookup tables; at most {}",
                tables.len(),
                self.limits.max_lookup_tables
            )));
        }
        let config = RpcAccountInfoConfig {
            encoding: Some(UiAccountEncoding::Base64),
            data_slice: Some(UiDataSliceConfig {
                offset: 0,
                length: MAX_LOOKUP_TABLE_BYTES,
            }),
            commitment: Some(self.commitment),
            min_context_slot: None,
        };
        let accounts = self
            .rpc
            .get_multiple_ui_accounts_with_config(&tables, config)
            .await
            .map_err(|e| Failed::Fault(redacted(&e)))?
            .value;
        let mut resolved = HashMap::with_capacity(tables.len());
        for (i, key) in tables.iter().enumerate() {
            let Some(Some(ui)) = accounts.get(i) else {
                return Err(refuse(format!("lookup table {key} does not exist")));
            };
            let Some(account) = ui.to_account() else {
                return Err(Failed::Fault(format!(
                    "lookup table {key}: undecodable data"
                )));
            };
            if account.owner != LOOKUP_TABLE_PROGRAM {
                return Err(refuse(format!("{key} is not a lookup table")));
            }
            let table =
                solana_address_lookup_table_interface::state::AddressLookupTable::deserialize(
                    &account.data,
                )
                .map_err(|e| refuse(format!("lookup table {key}: {e}")))?;
            resolved.insert(*key, table.addresses.to_vec());
        }
        Ok(resolved)
    }

    /// [`Self::inspect`], then co-sign, look up, send, confirm.
    async fn attempt(
        &self,
        decoded: &check::Decoded,
        policy: &check::Policy,
    ) -> Result<Landed, Failed> {
        let checked = self.inspect(decoded, policy).await?;
        let mut tx = decoded.tx.clone();
        let signature = self.fee_payer.sign_message(&decoded.message);
        let (Some(slot), Some(client)) = (tx.signatures.get_mut(0), decoded.tx.signatures.get(1))
        else {
            return Err(Failed::Fault(
                "a checked transaction lost its signatures".into(),
            ));
        };
        *slot = signature;
        let settlement = Arc::new(Settlement {
            signature,
            payer: checked.payer,
            amount: checked.amount,
            fee: checked.fee,
            client_signature: (*client).into(),
            message_hash: decoded.hash,
            claimed: std::sync::atomic::AtomicBool::new(false),
        });
        let refuse = |reason: &'static str, message: String| {
            Failed::Refused(ExactRefusal {
                payer: Some(checked.payer),
                ..ExactRefusal::new(reason, message)
            })
        };
        // The same message signed by the same key is the same signature: if
        // the chain knows it, this payment was settled before (outside the
        // window, or by another process).
        if self
            .status(&signature)
            .await
            .map_err(Failed::Fault)?
            .is_some()
        {
            return Err(refuse(
                reason::DUPLICATE_SETTLEMENT,
                format!("{signature} is already on chain"),
            ));
        }
        let config = RpcSendTransactionConfig {
            skip_preflight: true,
            preflight_commitment: Some(self.commitment.commitment),
            encoding: Some(UiTransactionEncoding::Base64),
            ..RpcSendTransactionConfig::default()
        };
        if let Err(e) = self.rpc.send_transaction_with_config(&tx, config).await {
            let refused_by_node = matches!(
                e.kind(),
                ErrorKind::RpcError(RpcError::RpcResponseError { .. })
            );
            if refused_by_node && !matches!(self.status(&signature).await, Ok(Some(_))) {
                return Err(refuse(
                    reason::TRANSACTION_FAILED,
                    format!("the node refused {signature}: {}", redacted(&e)),
                ));
            }
            // It may have left: follow it.
            tracing::debug!(%signature, error = %redacted(&e), "send failed; following the signature");
        }
        match self
            .confirm(&signature, decoded.tx.message.recent_blockhash())
            .await
        {
            Confirmation::Landed(Ok(())) => {
                tracing::info!(
                    %signature, payer = %checked.payer, amount = checked.amount, fee = checked.fee,
                    "exact payment settled"
                );
                Ok(Landed::Settled(settlement))
            }
            Confirmation::Landed(Err(e)) => {
                tracing::warn!(%signature, fee = checked.fee, "exact transaction failed on chain: {e}");
                Err(refuse(
                    reason::TRANSACTION_FAILED,
                    format!("{signature} failed on chain: {e}"),
                ))
            }
            Confirmation::Expired => Err(refuse(
                reason::TRANSACTION_FAILED,
                format!("{signature} expired before it landed"),
            )),
            Confirmation::TimedOut => Ok(Landed::Pending(settlement)),
        }
    }

    /// `Some(Ok(confirmed?))` when the node knows the signature and it
    /// succeeded, `Some(Err)` when it failed, `None` when unknown.
    async fn status(&self, signature: &Signature) -> Result<Option<Result<bool, String>>, String> {
        let response = self
            .rpc
            .get_signature_statuses(&[*signature])
            .await
            .map_err(|e| redacted(&e))?;
        Ok(response
            .value
            .into_iter()
            .next()
            .flatten()
            .map(|s| match &s.err {
                Some(err) => Err(err.to_string()),
                None => Ok(s.satisfies_commitment(self.commitment)),
            }))
    }

    /// Polls the signature (10 ms, doubling up to 500 ms) until it is
    /// confirmed or failed, its blockhash expires, or the timeout.
    async fn confirm(
        &self,
        signature: &Signature,
        blockhash: &solana_message::Hash,
    ) -> Confirmation {
        let started = Instant::now();
        let mut delay = Duration::from_millis(10);
        let mut last_height_check = started;
        loop {
            match self.status(signature).await {
                Ok(Some(Ok(true))) => return Confirmation::Landed(Ok(())),
                Ok(Some(Err(e))) => return Confirmation::Landed(Err(e)),
                Ok(_) => {}
                Err(e) => tracing::debug!(%signature, error = %e, "status poll failed"),
            }
            if started.elapsed() >= self.limits.confirm_timeout {
                return Confirmation::TimedOut;
            }
            if last_height_check.elapsed() >= Duration::from_secs(2) {
                last_height_check = Instant::now();
                if let Ok(false) = self
                    .rpc
                    .is_blockhash_valid(blockhash, CommitmentConfig::processed())
                    .await
                {
                    return match self.status(signature).await {
                        Ok(Some(Ok(_))) => Confirmation::Landed(Ok(())),
                        Ok(Some(Err(e))) => Confirmation::Landed(Err(e)),
                        _ => Confirmation::Expired,
                    };
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(500));
        }
    }
}

/// The decimals of an initialized SPL mint (its first 82 bytes).
fn mint_decimals(data: &[u8]) -> Result<u8, String> {
    match (data.get(44), data.get(45)) {
        (Some(decimals), Some(1)) if data.len() >= 82 => Ok(*decimals),
        _ => Err("is not an initialized SPL mint".into()),
    }
}

/// Token-2022 mint extensions that change what an `exact` transfer does:
/// a transfer fee (the payee would receive less than the price) and a
/// transfer hook (a program of the mint's choosing runs at every transfer,
/// after the simulation this server trusts).
fn refuse_mint_extensions(data: &[u8]) -> Result<(), String> {
    const TRANSFER_FEE_CONFIG: u16 = 1;
    const TRANSFER_HOOK: u16 = 14;
    // Base mint (82 bytes), padding to 165, the account type byte, then
    // type-length-value entries.
    let mut at = 166usize;
    while let (Some(t), Some(l)) = (data.get(at..at + 2), data.get(at + 2..at + 4)) {
        let kind = u16::from_le_bytes([t[0], t[1]]);
        let len = usize::from(u16::from_le_bytes([l[0], l[1]]));
        match kind {
            0 => break,
            TRANSFER_FEE_CONFIG => {
                return Err(
                    "has a transfer fee: the payee would receive less than the price".into(),
                );
            }
            TRANSFER_HOOK => {
                return Err("has a transfer hook: every transfer runs the hook's program".into());
            }
            _ => {}
        }
        at = at.saturating_add(4).saturating_add(len);
    }
    Ok(())
}

/// Base64 of a transaction's wire bytes (tests and clients building payloads).
pub fn encode_transaction(
    tx: &solana_transaction::versioned::VersionedTransaction,
) -> Result<String, String> {
    wincode::serialize(tx)
        .map(|bytes| base64::engine::general_purpose::STANDARD.encode(bytes))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn mint_extensions_that_change_a_transfer_are_refused() {
        let mut mint = vec![0u8; 82];
        mint[44] = 6;
        mint[45] = 1;
        assert_eq!(mint_decimals(&mint), Ok(6));
        assert!(mint_decimals(&mint[..60]).is_err());
        assert!(refuse_mint_extensions(&mint).is_ok());
        let with = |kind: u16| {
            let mut data = mint.clone();
            data.resize(166, 0);
            data[165] = 1;
            // Metadata pointer (18), then `kind`.
            data.extend_from_slice(&18u16.to_le_bytes());
            data.extend_from_slice(&64u16.to_le_bytes());
            data.extend_from_slice(&[7; 64]);
            data.extend_from_slice(&kind.to_le_bytes());
            data.extend_from_slice(&8u16.to_le_bytes());
            data.extend_from_slice(&[0; 8]);
            data
        };
        assert!(refuse_mint_extensions(&with(3)).is_ok());
        assert!(refuse_mint_extensions(&with(1)).is_err());
        assert!(refuse_mint_extensions(&with(14)).is_err());
    }
}
