//! Building, sending and confirming one settle transaction.
use std::time::Instant;

use paychan_sdk::{
    Instruction, Pubkey,
    events::Event,
    ix::{SettleAccounts, compute_unit_limit, compute_unit_price, settle_with_vouchers},
};
use paychan_verifier::store::VoucherStore;
use paychan_voucher::SignedVoucher;
use solana_message::{AddressLookupTableAccount, VersionedMessage, v0};
use solana_rpc_client_api::config::{RpcSendTransactionConfig, RpcTransactionConfig};
use solana_signature::Signature;
use solana_signer::Signer;
use solana_transaction::{Transaction, versioned::VersionedTransaction};
use solana_transaction_error::TransactionError;
use solana_transaction_status_client_types::UiTransactionEncoding;

use crate::{
    ChainChannel, Failed, FailureKind, Item, MintAccounts, SettleError, SettleTx, Settler,
    SettlerConfig, Skipped, VoucherPath,
    error::{Failure, classify_client_error, classify_transaction_error},
    policy,
};

/// Largest serialized transaction (the packet data size).
pub const PACKET_DATA_SIZE: usize = 1232;
/// Poll the block height (for blockhash expiry) every this many status polls.
const HEIGHT_CHECK_EVERY: u32 = 8;

/// Why a retry loop gives up on what it sends.
pub(crate) enum GiveUp {
    /// The program refused a voucher.
    Voucher(TransactionError),
    /// Retrying cannot help.
    Fatal(SettleError),
}

impl GiveUp {
    /// The error recorded for the items given up on.
    pub(crate) fn into_error(self) -> SettleError {
        match self {
            Self::Voucher(error) => SettleError::Transaction {
                signature: None,
                error,
            },
            Self::Fatal(error) => error,
        }
    }
}

/// How a chunk ended.
pub(crate) enum ChunkEnd {
    /// Settled, skipped or failed; all recorded in the report.
    Done,
    /// A voucher in it was refused: settle these one per transaction.
    Split(Vec<Item>),
    /// Transient errors outlasted the retries: stop the run.
    Unavailable,
}

/// A confirmed settle transaction, before accounting.
struct Landed {
    signature: Signature,
    sent: Instant,
    size: usize,
    lookup_table: Option<Pubkey>,
    path: VoucherPath,
}

/// The compute-budget instructions a transaction on `path` with `vouchers`
/// vouchers starts with (`with_close`: a close's final voucher): the limit
/// and, when configured, the compute-unit price. None for the precompile
/// path without a price (as before `settle_signed` existed).
pub(crate) fn compute_budget(
    config: &SettlerConfig,
    path: VoucherPath,
    vouchers: usize,
    with_close: bool,
) -> Vec<Instruction> {
    let mut out = Vec::with_capacity(2);
    if let Some(limit) = config.compute_unit_limit(path, vouchers, with_close) {
        out.push(compute_unit_limit(limit));
    }
    if config.compute_unit_price > 0 {
        out.push(compute_unit_price(config.compute_unit_price));
    }
    out
}

/// The instructions of a settle transaction on `path`.
pub(crate) fn settle_instructions(
    config: &SettlerConfig,
    path: VoucherPath,
    accounts: &SettleAccounts,
    vouchers: &[SignedVoucher],
) -> Result<Vec<Instruction>, SettleError> {
    let mut instructions = compute_budget(config, path, vouchers.len(), false);
    match path {
        VoucherPath::Precompile => instructions.extend(settle_with_vouchers(accounts, vouchers)?),
        VoucherPath::Program => instructions.push(accounts.settle_signed_ix(vouchers)),
    }
    Ok(instructions)
}

/// How a sent transaction ended.
enum Confirmation {
    Landed(Result<(), TransactionError>),
    /// Its blockhash expired without it landing.
    Expired,
    /// No verdict within `confirm_timeout`.
    TimedOut,
}

/// Serialized size of a (legacy or v0) transaction.
pub(crate) fn transaction_size(tx: &VersionedTransaction) -> usize {
    let signatures = tx.signatures.len();
    let prefix = if signatures < 0x80 { 1 } else { 2 };
    prefix + 64 * signatures + tx.message.serialize().len()
}

/// `instructions` signed by `payer` (also the fee payer): a legacy
/// transaction, or a v0 one loading what it can from `table`.
pub(crate) fn build_transaction(
    payer: &solana_keypair::Keypair,
    instructions: &[Instruction],
    table: Option<&AddressLookupTableAccount>,
    blockhash: solana_message::Hash,
) -> Result<VersionedTransaction, SettleError> {
    match table {
        None => {
            let mut tx = Transaction::new_with_payer(instructions, Some(&payer.pubkey()));
            tx.try_sign(&[payer], blockhash)?;
            Ok(tx.into())
        }
        Some(table) => {
            let message = v0::Message::try_compile(
                &payer.pubkey(),
                instructions,
                std::slice::from_ref(table),
                blockhash,
            )
            .map_err(|e| SettleError::LookupTable(format!("compiling a v0 message: {e}")))?;
            Ok(VersionedTransaction::try_new(
                VersionedMessage::V0(message),
                &[payer],
            )?)
        }
    }
}

impl<S: VoucherStore> Settler<S> {
    pub(crate) async fn settle_chunk(
        &self,
        mut items: Vec<Item>,
        path: VoucherPath,
        mint: &MintAccounts,
        report: &mut crate::SweepReport,
    ) -> ChunkEnd {
        let accounts =
            SettleAccounts::new(&self.config.payee.pubkey(), &mint.mint, mint.token_program);
        let mut last_error = String::new();
        let mut attempt: u32 = 0;
        while attempt < self.config.max_attempts {
            attempt = attempt.saturating_add(1);
            // Re-read: drop whatever the chain already holds (or can no longer take).
            if let Err(e) = self.refresh(&mut items, report).await {
                last_error = e.to_string();
                tokio::time::sleep(self.config.backoff_for(attempt)).await;
                continue;
            }
            if items.is_empty() {
                return ChunkEnd::Done;
            }
            let failure = match self.attempt(&items, path, &accounts, mint, report).await {
                Ok(()) => return ChunkEnd::Done,
                Err(f) => f,
            };
            match self
                .retry_or_give_up(failure, attempt, &mut last_error)
                .await
            {
                None => {}
                Some(GiveUp::Voucher(error)) if items.len() > 1 => {
                    tracing::info!(
                        channels = items.len(),
                        %error,
                        "a voucher was refused; settling one per transaction"
                    );
                    return ChunkEnd::Split(items);
                }
                Some(give_up) => {
                    self.fail_items(&items, &give_up.into_error().to_string(), report);
                    return ChunkEnd::Done;
                }
            }
        }
        let error = SettleError::RetriesExhausted {
            attempts: attempt,
            last: last_error,
        };
        self.fail_items(&items, &error.to_string(), report);
        ChunkEnd::Unavailable
    }

    /// The part of every retry loop's failure handling that does not depend
    /// on what was sent: retryable failures record `last_error` (backing off
    /// first when the node hiccuped) and return `None`; the others say why
    /// the loop must give up.
    pub(crate) async fn retry_or_give_up(
        &self,
        failure: Failure,
        attempt: u32,
        last_error: &mut String,
    ) -> Option<GiveUp> {
        match failure {
            Failure::Transient(e) => {
                self.metrics.fail(FailureKind::Rpc);
                tracing::debug!(attempt, error = %e, "transient failure; backing off");
                *last_error = e;
                tokio::time::sleep(self.config.backoff_for(attempt)).await;
                None
            }
            Failure::Blockhash | Failure::AlreadyProcessed => {
                *last_error = "blockhash expired or not found".into();
                None
            }
            Failure::AlreadySettled => {
                tracing::info!("a voucher was settled by someone else; re-reading");
                *last_error = "cumulative not increasing".into();
                None
            }
            Failure::Voucher(error) => {
                self.metrics.fail(FailureKind::Voucher);
                Some(GiveUp::Voucher(error))
            }
            Failure::Fatal(error) => Some(GiveUp::Fatal(error)),
        }
    }

    pub(crate) fn fail_items(&self, items: &[Item], error: &str, report: &mut crate::SweepReport) {
        for item in items {
            self.metrics.fail(FailureKind::Channel);
            tracing::warn!(channel = %item.channel, %error, "settlement failed");
            report.failed.push(Failed {
                channel: item.channel,
                error: error.to_string(),
            });
        }
    }

    /// Re-reads the items' channels: updates `settled`, drops (as skipped)
    /// those the chain already holds or that can no longer settle.
    async fn refresh(
        &self,
        items: &mut Vec<Item>,
        report: &mut crate::SweepReport,
    ) -> Result<(), SettleError> {
        let addresses: Vec<Pubkey> = items.iter().map(|i| i.channel).collect();
        let chain = self.read_channels(&addresses).await?;
        let now = self.chain_now().await;
        items.retain_mut(|item| {
            let on_chain = chain
                .get(&item.channel)
                .copied()
                .unwrap_or(ChainChannel::Missing);
            // Already chosen: only re-check that it can (still) settle.
            let policy = policy::Policy {
                close_on_request: false,
                ..self.policy(Some(&item_mint(&on_chain)), true, false)
            };
            let accepted = paychan_verifier::store::Accepted {
                voucher: item.voucher,
                previous: 0,
            };
            match policy::decide(&policy, &accepted, on_chain.as_on_chain(), now) {
                Ok(_) => {
                    if let ChainChannel::Channel(c) = on_chain
                        && c.settled > item.settled
                    {
                        // Someone settled part of it.
                        report.unsettled_value = report
                            .unsettled_value
                            .saturating_sub(c.settled.saturating_sub(item.settled));
                        item.settled = c.settled;
                    }
                    true
                }
                Err(reason) => {
                    report.unsettled_value = report.unsettled_value.saturating_sub(item.ahead());
                    tracing::debug!(channel = %item.channel, reason = reason.as_str(), "dropped before sending");
                    report.skipped.push(Skipped {
                        channel: item.channel,
                        reason,
                    });
                    false
                }
            }
        });
        Ok(())
    }

    /// One attempt: build, sign, send, confirm, account.
    async fn attempt(
        &self,
        items: &[Item],
        path: VoucherPath,
        accounts: &SettleAccounts,
        mint: &MintAccounts,
        report: &mut crate::SweepReport,
    ) -> Result<(), Failure> {
        let vouchers: Vec<SignedVoucher> = items.iter().map(|i| i.voucher).collect();
        let instructions =
            settle_instructions(&self.config, path, accounts, &vouchers).map_err(Failure::Fatal)?;
        let table = self.lookup_table(mint).await?;
        let what = match path {
            VoucherPath::Precompile => "settle",
            VoucherPath::Program => "settle_signed",
        };
        let sent = self
            .send_and_confirm(&instructions, what, table.as_ref(), report)
            .await;
        let (signature, sent, size) = match sent {
            Ok(sent) => sent,
            Err(failure) => {
                self.forget_table(&mint.mint, &failure).await;
                return Err(failure);
            }
        };
        let landed = Landed {
            signature,
            sent,
            size,
            lookup_table: table.map(|t| t.key),
            path,
        };
        self.record_success(landed, items, report).await;
        Ok(())
    }

    /// Signs `instructions` as the payee (also the fee payer) with a fresh
    /// blockhash, checks the size, sends with preflight and polls until
    /// confirmed. Returns the signature, when it was sent and its size; a transaction
    /// that landed with an error is added to `report.failed_transactions`.
    /// With a `table`, the transaction is v0 and loads what it can from it.
    pub(crate) async fn send_and_confirm(
        &self,
        instructions: &[Instruction],
        what: &'static str,
        table: Option<&AddressLookupTableAccount>,
        report: &mut crate::SweepReport,
    ) -> Result<(Signature, Instant, usize), Failure> {
        let (blockhash, last_valid_height) = self
            .rpc
            .get_latest_blockhash_with_commitment(self.config.commitment)
            .await
            .map_err(classify_client_error)?;
        let tx = build_transaction(&self.config.payee, instructions, table, blockhash)
            .map_err(Failure::Fatal)?;
        let size = transaction_size(&tx);
        if size > PACKET_DATA_SIZE {
            return Err(Failure::Fatal(SettleError::TooLarge {
                size,
                limit: PACKET_DATA_SIZE,
            }));
        }
        let Some(signature) = tx.signatures.first().copied() else {
            return Err(Failure::Fatal(SettleError::Config("unsigned".into())));
        };
        let send_config = RpcSendTransactionConfig {
            skip_preflight: false,
            preflight_commitment: Some(self.config.commitment.commitment),
            encoding: Some(UiTransactionEncoding::Base64),
            ..RpcSendTransactionConfig::default()
        };
        tracing::debug!(%signature, what, size, v0 = table.is_some(), "sending");
        let sent = Instant::now();
        match self
            .rpc
            .send_transaction_with_config(&tx, send_config)
            .await
        {
            Ok(_) => {}
            Err(e) => match classify_client_error(e) {
                // Landed before (a retried send): wait for its status.
                Failure::AlreadyProcessed => {}
                // Nodes word "already processed" differently (surfpool: a bare
                // -32002). An identical transaction — same payee, blockhash and
                // vouchers, e.g. from a second settler replica — may have
                // landed: if the signature is known, follow it instead of failing.
                Failure::Fatal(error) => {
                    if !self.signature_known(&signature).await {
                        return Err(Failure::Fatal(error));
                    }
                    tracing::info!(%signature, "the same transaction was sent before; following it");
                }
                other => return Err(other),
            },
        }
        match self.confirm(&signature, last_valid_height).await {
            Confirmation::Landed(Ok(())) => Ok((signature, sent, size)),
            Confirmation::Landed(Err(error)) => {
                self.metrics.fail(FailureKind::Landed);
                report.failed_transactions.push(signature);
                tracing::warn!(%signature, what, %error, "transaction landed with an error");
                Err(classify_transaction_error(error, Some(signature)))
            }
            Confirmation::Expired => {
                self.metrics.fail(FailureKind::Unconfirmed);
                tracing::info!(%signature, what, "blockhash expired before confirmation; rebuilding");
                Err(Failure::Blockhash)
            }
            Confirmation::TimedOut => {
                self.metrics.fail(FailureKind::Unconfirmed);
                Err(Failure::Transient(format!(
                    "{signature} not confirmed within {:?}",
                    self.config.confirm_timeout
                )))
            }
        }
    }

    /// Whether the node knows the signature (landed, with or without error).
    async fn signature_known(&self, signature: &Signature) -> bool {
        matches!(
            self.rpc.get_signature_statuses(&[*signature]).await,
            Ok(response) if matches!(response.value.first(), Some(Some(_)))
        )
    }

    /// Polls `getSignatureStatuses` until the transaction reaches the
    /// configured commitment, fails, or its blockhash expires.
    async fn confirm(&self, signature: &Signature, last_valid_height: u64) -> Confirmation {
        let deadline = Instant::now() + self.config.confirm_timeout;
        let mut polls: u32 = 0;
        loop {
            match self.rpc.get_signature_statuses(&[*signature]).await {
                Ok(response) => {
                    if let Some(Some(status)) = response.value.first() {
                        if let Some(err) = &status.err {
                            return Confirmation::Landed(Err(err.clone()));
                        }
                        if status.satisfies_commitment(self.config.commitment) {
                            return Confirmation::Landed(Ok(()));
                        }
                    }
                }
                Err(e) => {
                    self.metrics.fail(FailureKind::Rpc);
                    tracing::debug!(%signature, error = %e, "status poll failed");
                }
            }
            if Instant::now() >= deadline {
                return Confirmation::TimedOut;
            }
            polls = polls.wrapping_add(1);
            if polls.is_multiple_of(HEIGHT_CHECK_EVERY)
                && let Ok(height) = self
                    .rpc
                    .get_block_height_with_commitment(self.config.commitment)
                    .await
                && height > last_valid_height
            {
                // One last look: it may have landed in the meantime.
                if let Ok(response) = self.rpc.get_signature_statuses(&[*signature]).await
                    && let Some(Some(status)) = response.value.first()
                {
                    return Confirmation::Landed(match &status.err {
                        Some(err) => Err(err.clone()),
                        None => Ok(()),
                    });
                }
                return Confirmation::Expired;
            }
            tokio::time::sleep(self.config.confirm_poll).await;
        }
    }

    /// Accounts a confirmed transaction: fee and compute units from
    /// `getTransaction`, `settled` re-read to check what the chain holds.
    async fn record_success(
        &self,
        landed: Landed,
        items: &[Item],
        report: &mut crate::SweepReport,
    ) {
        let Landed {
            signature,
            sent,
            size,
            lookup_table,
            path,
        } = landed;
        let estimate = self.config.estimated_fee(path, items.len(), false);
        let landing = self.landing(&signature, estimate).await;
        let (fee, compute_units) = (landing.fee, landing.compute_units);
        let addresses: Vec<Pubkey> = items.iter().map(|i| i.channel).collect();
        match self.read_channels(&addresses).await {
            Ok(after) => {
                for item in items {
                    if let Some(ChainChannel::Channel(c)) = after.get(&item.channel)
                        && c.settled < item.voucher.voucher.cumulative_amount
                    {
                        tracing::error!(
                            channel = %item.channel,
                            settled = c.settled,
                            voucher = item.voucher.voucher.cumulative_amount,
                            "confirmed, yet the chain is behind the voucher"
                        );
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot re-read settled channels"),
        }
        // What each channel released: the program's `ChannelSettled` events
        // (a voucher someone settled first is a no-op and releases nothing);
        // without the logs, what was ahead when the transaction was built.
        let released = |item: &Item| match &landing.settled {
            Some(events) => events.get(&item.channel).copied().unwrap_or(0),
            None => item.ahead(),
        };
        let channels: Vec<(Pubkey, u64)> = items
            .iter()
            .map(|i| (i.channel, released(i)))
            .filter(|(_, v)| *v > 0)
            .collect();
        let value = channels
            .iter()
            .map(|(_, v)| *v)
            .fold(0u64, u64::saturating_add);
        let ahead = items
            .iter()
            .map(Item::ahead)
            .fold(0u64, u64::saturating_add);
        report.unsettled_value = report.unsettled_value.saturating_sub(ahead);
        self.metrics.transactions.inc();
        self.metrics.vouchers.inc_by(channels.len() as u64);
        self.metrics.value.inc_by(value);
        self.metrics.fees.inc_by(fee);
        tracing::info!(
            %signature,
            path = path.as_str(),
            vouchers = items.len(),
            value,
            fee_lamports = fee,
            compute_units = compute_units.unwrap_or_default(),
            size,
            v0 = lookup_table.is_some(),
            confirm_ms = u64::try_from(sent.elapsed().as_millis()).unwrap_or(u64::MAX),
            "settled"
        );
        report.transactions.push(SettleTx {
            signature,
            channels,
            path,
            fee_lamports: fee,
            compute_units,
            size,
            lookup_table,
        });
    }

    /// The fee, compute units and settlement events of a confirmed
    /// transaction (`getTransaction`); the fee is `estimated_fee` when it
    /// cannot be read.
    pub(crate) async fn landing(&self, signature: &Signature, estimated_fee: u64) -> Landing {
        let estimate = Landing {
            fee: estimated_fee,
            compute_units: None,
            settled: None,
        };
        let config = RpcTransactionConfig {
            encoding: Some(UiTransactionEncoding::Base64),
            commitment: Some(self.config.commitment),
            max_supported_transaction_version: Some(0),
        };
        match self
            .rpc
            .get_transaction_with_config(signature, config)
            .await
        {
            Ok(tx) => match tx.transaction.meta {
                Some(meta) => Landing {
                    fee: meta.fee,
                    compute_units: Option::from(meta.compute_units_consumed),
                    settled: Option::<Vec<String>>::from(meta.log_messages)
                        .map(|logs| settled_events(&logs)),
                },
                None => estimate,
            },
            Err(e) => {
                tracing::debug!(%signature, error = %e, "getTransaction failed; estimating the fee");
                estimate
            }
        }
    }
}

/// What `getTransaction` says of a confirmed transaction.
pub(crate) struct Landing {
    pub(crate) fee: u64,
    pub(crate) compute_units: Option<u64>,
    /// Value released per channel (`ChannelSettled` events), when the logs
    /// could be read.
    pub(crate) settled: Option<std::collections::HashMap<Pubkey, u64>>,
}

/// The `ChannelSettled` events paychan logged in a transaction: amount per
/// channel.
pub(crate) fn settled_events(logs: &[String]) -> std::collections::HashMap<Pubkey, u64> {
    let mut out = std::collections::HashMap::new();
    for event in Event::from_logs(logs) {
        if let Event::Settled(e) = event {
            let total = out.entry(e.channel).or_insert(0u64);
            *total = total.saturating_add(e.amount);
        }
    }
    out
}

pub(crate) fn item_mint(chain: &ChainChannel) -> Pubkey {
    match chain {
        ChainChannel::Channel(c) => c.mint,
        _ => Pubkey::default(),
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;
    use paychan_voucher::{VoucherV1, sign_v1};
    use solana_keypair::Keypair;

    use super::*;

    /// A signed `[ed25519 ×n, settle]`: legacy, or v0 with a lookup table
    /// holding the shared accounts (as `LookupTableMode::Create` makes it).
    fn signed_settle(n: u8, with_table: bool) -> VersionedTransaction {
        path_tx(VoucherPath::Precompile, n, with_table, 0)
    }

    /// The settler's own transaction on `path` with `n` vouchers (and a
    /// compute-unit price when `price > 0`): legacy, or v0 with the
    /// settler's lookup table.
    fn path_tx(path: VoucherPath, n: u8, with_table: bool, price: u64) -> VersionedTransaction {
        let payee = Keypair::new();
        let mint = MintAccounts::new(Pubkey::new_unique(), paychan_sdk::TOKEN_PROGRAM_ID, 0);
        let mut config = crate::SettlerConfig::new(payee.insecure_clone(), mint);
        config.compute_unit_price = price;
        let accounts = SettleAccounts::new(&payee.pubkey(), &mint.mint, mint.token_program);
        let vouchers: Vec<SignedVoucher> = (0..n)
            .map(|i| {
                sign_v1(
                    &SigningKey::from_bytes(&[i.wrapping_add(1); 32]),
                    &VoucherV1 {
                        channel_id: Pubkey::new_unique().to_bytes(),
                        cumulative_amount: u64::MAX,
                        expires_at: i64::MAX,
                    },
                )
            })
            .collect();
        let ixs = settle_instructions(&config, path, &accounts, &vouchers).unwrap_or_default();
        let table = AddressLookupTableAccount {
            key: Pubkey::new_unique(),
            addresses: crate::lookup::shared_accounts(&payee.pubkey(), &mint),
        };
        let tx = build_transaction(
            &payee,
            &ixs,
            with_table.then_some(&table),
            solana_message::Hash::new_unique(),
        );
        assert!(tx.is_ok(), "{tx:?}");
        let tx = tx.unwrap_or_else(|_| unreachable!());
        assert_eq!(
            matches!(tx.message, VersionedMessage::V0(_)),
            with_table,
            "v0 exactly with a table"
        );
        tx
    }

    #[test]
    fn five_vouchers_fit_a_v0_transaction_with_a_table_six_do_not() {
        let five = transaction_size(&signed_settle(5, true));
        let six = transaction_size(&signed_settle(6, true));
        assert!(five <= PACKET_DATA_SIZE, "{five}");
        assert!(six > PACKET_DATA_SIZE, "{six}");
        println!("settle v0 + lookup table: N=5 {five} B, N=6 {six} B");
        assert_eq!(five, 1_228, "measured size of v0 [ed25519 ×5, settle]");
        assert_eq!(crate::MAX_VOUCHERS_PER_TX_WITH_TABLE, 5);
    }

    #[test]
    fn settle_signed_fits_seven_legacy_and_eight_with_the_table() {
        for price in [0, 1_000] {
            let size = |n, table| transaction_size(&path_tx(VoucherPath::Program, n, table, price));
            let (seven, eight) = (size(7, false), size(8, false));
            assert!(
                seven <= PACKET_DATA_SIZE && eight > PACKET_DATA_SIZE,
                "{seven} {eight}"
            );
            let (eight, nine) = (size(8, true), size(9, true));
            assert!(
                eight <= PACKET_DATA_SIZE && nine > PACKET_DATA_SIZE,
                "{eight} {nine}"
            );
            println!("settle_signed, price {price}: legacy N=7 {seven} B, v0 N=8 {eight} B");
        }
        assert_eq!(crate::MAX_SIGNED_VOUCHERS_PER_TX, 7);
        assert_eq!(crate::MAX_SIGNED_VOUCHERS_PER_TX_WITH_TABLE, 8);
    }

    #[test]
    fn a_compute_unit_price_leaves_room_for_three_settle_vouchers_or_four_with_the_table() {
        let size = |n, table| transaction_size(&path_tx(VoucherPath::Precompile, n, table, 1));
        assert!(size(3, false) <= PACKET_DATA_SIZE && size(4, false) > PACKET_DATA_SIZE);
        assert!(size(4, true) <= PACKET_DATA_SIZE && size(5, true) > PACKET_DATA_SIZE);
        assert_eq!(crate::MAX_VOUCHERS_PER_TX_PRICED, 3);
        assert_eq!(crate::MAX_VOUCHERS_PER_TX_PRICED_WITH_TABLE, 4);
        // Without a price the precompile path carries no compute-budget
        // instruction: exactly the transaction it always was.
        let config = crate::SettlerConfig::new(
            Keypair::new(),
            MintAccounts::new(Pubkey::new_unique(), paychan_sdk::TOKEN_PROGRAM_ID, 0),
        );
        assert!(compute_budget(&config, VoucherPath::Precompile, 4, false).is_empty());
        assert_eq!(
            compute_budget(&config, VoucherPath::Program, 4, false).len(),
            1
        );
    }

    #[test]
    fn four_vouchers_fit_a_legacy_transaction_five_do_not() {
        let four = transaction_size(&signed_settle(4, false));
        let five = transaction_size(&signed_settle(5, false));
        assert_eq!(four, 1_185, "measured size of [ed25519 ×4, settle]");
        assert!(four <= PACKET_DATA_SIZE);
        assert!(five > PACKET_DATA_SIZE, "{five}");
        assert_eq!(
            crate::MAX_VOUCHERS_PER_TX,
            4,
            "the limit follows the measurement"
        );
    }
}
