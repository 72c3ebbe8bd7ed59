//! Closing a channel at once when its payer asked for its money back:
//! `[create the payer's ATA (idempotent, when missing)], [ed25519 (1 record)], close`.
use std::time::Instant;

use anchor_lang::prelude::Pubkey;
use paychan::state::Channel;
use paychan_sdk::{
    Instruction,
    ix::{self, ChannelAccounts},
};
use paychan_verifier::store::{Accepted, VoucherStore};
use solana_signature::Signature;
use solana_signer::Signer;

use crate::{
    ChainChannel, CloseTx, Item, MintAccounts, SettleError, SettleReason, Settler, Skipped, policy,
    submit::ChunkEnd,
};

/// The payer's associated token account in `mint` (where the refund goes).
pub(crate) fn payer_refund_account(channel: &Channel, token_program: &Pubkey) -> Pubkey {
    spl_associated_token_account_interface::address::get_associated_token_address_with_program_id(
        &channel.payer,
        &channel.mint,
        token_program,
    )
}

/// What a close is expected to move, from the channel state it is built on.
struct Plan {
    instructions: Vec<Instruction>,
    with_voucher: bool,
    paid: u64,
    refunded: u64,
    payer_tokens: Pubkey,
    before: Channel,
}

impl<S: VoucherStore> Settler<S> {
    /// Closes one channel whose payer requested it (re-reading it before
    /// every attempt). `Unavailable` when transient errors outlast the retries.
    pub(crate) async fn close_channel(
        &self,
        mut item: Item,
        mint: &MintAccounts,
        report: &mut crate::SweepReport,
    ) -> ChunkEnd {
        let mut last_error = String::new();
        let mut attempt: u32 = 0;
        while attempt < self.config.max_attempts {
            attempt = attempt.saturating_add(1);
            let plan = match self.plan_close(&mut item, mint, report).await {
                Ok(Some(plan)) => plan,
                Ok(None) => return ChunkEnd::Done,
                Err(e) => {
                    last_error = e.to_string();
                    tokio::time::sleep(self.config.backoff_for(attempt)).await;
                    continue;
                }
            };
            let failure = match self
                .send_and_confirm(&plan.instructions, "close", None, report)
                .await
            {
                Ok((signature, sent, _)) => {
                    self.record_close(signature, &item, &plan, report, sent)
                        .await;
                    return ChunkEnd::Done;
                }
                Err(f) => f,
            };
            if let Some(give_up) = self
                .retry_or_give_up(failure, attempt, &mut last_error)
                .await
            {
                self.fail_items(
                    std::slice::from_ref(&item),
                    &give_up.into_error().to_string(),
                    report,
                );
                return ChunkEnd::Done;
            }
        }
        let error = SettleError::RetriesExhausted {
            attempts: attempt,
            last: last_error,
        };
        self.fail_items(std::slice::from_ref(&item), &error.to_string(), report);
        ChunkEnd::Unavailable
    }

    /// Re-reads the channel and builds the close; `None` (recorded as
    /// skipped) when it can no longer be closed on request.
    async fn plan_close(
        &self,
        item: &mut Item,
        mint: &MintAccounts,
        report: &mut crate::SweepReport,
    ) -> Result<Option<Plan>, SettleError> {
        let chain = self.read_channels(&[item.channel]).await?;
        let now = self.chain_now().await;
        let on_chain = chain
            .get(&item.channel)
            .copied()
            .unwrap_or(ChainChannel::Missing);
        let accepted = Accepted {
            voucher: item.voucher,
            previous: 0,
        };
        let policy = self.policy(Some(&crate::submit::item_mint(&on_chain)), true, false);
        let decision = policy::decide(&policy, &accepted, on_chain.as_on_chain(), now);
        let channel = match (decision, on_chain) {
            (Ok(SettleReason::CloseRequested), ChainChannel::Channel(c)) => c,
            (Ok(_), _) => {
                // Not closing any more (cannot happen: Closing only moves to Closed).
                report.unsettled_value = report.unsettled_value.saturating_sub(item.ahead());
                return Ok(None);
            }
            (Err(reason), _) => {
                report.unsettled_value = report.unsettled_value.saturating_sub(item.ahead());
                tracing::debug!(channel = %item.channel, reason = reason.as_str(), "not closed");
                report.skipped.push(Skipped {
                    channel: item.channel,
                    reason,
                });
                return Ok(None);
            }
        };
        if channel.settled > item.settled {
            report.unsettled_value = report
                .unsettled_value
                .saturating_sub(channel.settled.saturating_sub(item.settled));
            item.settled = channel.settled;
        }
        let payee = self.config.payee.pubkey();
        let payer_tokens = payer_refund_account(&channel, &mint.token_program);
        let mut instructions = Vec::with_capacity(3);
        let exists = match self
            .rpc
            .get_account_with_commitment(&payer_tokens, self.config.commitment)
            .await
        {
            Ok(response) => response.value.is_some(),
            // Unknown: the idempotent create is harmless.
            Err(_) => false,
        };
        if !exists {
            instructions.push(
                spl_associated_token_account_interface::instruction::create_associated_token_account_idempotent(
                    &payee,
                    &channel.payer,
                    &channel.mint,
                    &mint.token_program,
                ),
            );
        }
        let with_voucher = item.ahead() > 0;
        if with_voucher {
            instructions.push(ix::ed25519_for_vouchers(&[item.voucher])?);
        }
        let accounts = ChannelAccounts {
            channel: item.channel,
            payee,
            mint: channel.mint,
            token_program: mint.token_program,
            payer_tokens,
            rent_payer: channel.rent_payer,
        };
        instructions.push(ix::close(&accounts, with_voucher));
        let paid = item.ahead();
        let settled_after = channel.settled.saturating_add(paid);
        let refunded = channel
            .deposit
            .saturating_sub(settled_after)
            .saturating_sub(channel.refunded);
        Ok(Some(Plan {
            instructions,
            with_voucher,
            paid,
            refunded,
            payer_tokens,
            before: channel,
        }))
    }

    /// Accounts a confirmed close. The channel is re-read when it still
    /// exists (the program deletes it once its open-slot window has passed)
    /// so the report holds what the chain did.
    async fn record_close(
        &self,
        signature: Signature,
        item: &Item,
        plan: &Plan,
        report: &mut crate::SweepReport,
        sent: Instant,
    ) {
        let vouchers = usize::from(plan.with_voucher);
        let landing = self.landing(&signature, vouchers).await;
        let (fee, compute_units) = (landing.fee, landing.compute_units);
        let (mut paid, mut refunded) = (plan.paid, plan.refunded);
        if let Ok(after) = self.read_channels(&[item.channel]).await
            && let Some(ChainChannel::Channel(c)) = after.get(&item.channel)
        {
            paid = c.settled.saturating_sub(plan.before.settled);
            refunded = c.refunded.saturating_sub(plan.before.refunded);
        }
        report.unsettled_value = report.unsettled_value.saturating_sub(item.ahead());
        self.metrics.closes.inc();
        if plan.with_voucher {
            self.metrics.vouchers.inc_by(1);
        }
        self.metrics.value.inc_by(paid);
        self.metrics.fees.inc_by(fee);
        tracing::info!(
            %signature,
            channel = %item.channel,
            paid,
            refunded,
            payer_tokens = %plan.payer_tokens,
            fee_lamports = fee,
            compute_units = compute_units.unwrap_or_default(),
            confirm_ms = u64::try_from(sent.elapsed().as_millis()).unwrap_or(u64::MAX),
            "closed on the payer's request"
        );
        report.closes.push(CloseTx {
            signature,
            channel: item.channel,
            with_voucher: plan.with_voucher,
            paid,
            refunded,
            payer_tokens: plan.payer_tokens,
            fee_lamports: fee,
            compute_units,
        });
    }
}
