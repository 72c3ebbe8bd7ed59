//! Closing a channel at once when its payer asked for its money back:
//! `[compute budget, settle_signed (the final voucher), close]` or
//! `[ed25519 (1 record), close (final voucher)]` — whichever
//! [`crate::SettlerConfig::choose_close_path`] finds cheaper, `close` alone
//! when no voucher is ahead — refunding the payer's associated token
//! account — only when that account exists and is a token account of the
//! channel's mint owned by the payer. The settler never creates it: the
//! payee would pay its rent (~2.04M lamports) and the payer could empty and
//! close it and keep that rent, once per channel. Without it the latest
//! voucher is settled with a plain `settle` and the refund is left to the
//! payer's own `finalize` after the grace period.
use std::time::Instant;

use paychan_sdk::Pubkey;
use paychan_sdk::state::Channel;
use paychan_sdk::{
    Instruction,
    ix::{self, ChannelAccounts, SettleAccounts},
};
use paychan_verifier::store::{Accepted, VoucherStore};
use solana_signature::Signature;
use solana_signer::Signer;

use crate::{
    ChainChannel, CloseTx, Item, MintAccounts, SettleError, SettleReason, Settler, Skipped,
    VoucherPath, policy,
    submit::{ChunkEnd, compute_budget},
};

/// The payer's associated token account in `mint` (where the refund goes).
pub(crate) fn payer_refund_account(channel: &Channel, token_program: &Pubkey) -> Pubkey {
    paychan_sdk::pda::associated_token_account(&channel.payer, &channel.mint, token_program)
}

/// Size of an SPL Token account (the base of a Token-2022 one).
const TOKEN_ACCOUNT_LEN: usize = 165;
/// Token-2022's `AccountType::Account`, after the base of an account with extensions.
const TOKEN_2022_ACCOUNT_TYPE: u8 = 2;
/// `AccountState::Initialized` (not frozen) at this offset of a token account.
const TOKEN_ACCOUNT_STATE_AT: usize = 108;
const TOKEN_ACCOUNT_INITIALIZED: u8 = 1;

/// Why the payer's refund account cannot take a close's refund.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unusable {
    /// No account at the address.
    Missing,
    /// Not owned by the mint's token program.
    NotTokenProgram,
    /// Not a token account (size, account type) or not initialized.
    NotTokenAccount,
    /// A token account of another mint.
    OtherMint,
    /// A token account of another owner.
    OtherOwner,
    /// Frozen: the refund's transfer would fail.
    Frozen,
}

impl Unusable {
    fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::NotTokenProgram => "not owned by the mint's token program",
            Self::NotTokenAccount => "not a token account",
            Self::OtherMint => "a token account of another mint",
            Self::OtherOwner => "a token account of another owner",
            Self::Frozen => "frozen",
        }
    }
}

/// Whether an account (its program owner and data; `None` when missing)
/// is an initialized, unfrozen token account of `mint` owned by `payer`
/// under `token_program`: what a close's refund may go to.
pub(crate) fn check_refund_account(
    account: Option<(&Pubkey, &[u8])>,
    payer: &Pubkey,
    mint: &Pubkey,
    token_program: &Pubkey,
) -> Result<(), Unusable> {
    let Some((program, data)) = account else {
        return Err(Unusable::Missing);
    };
    if program != token_program {
        return Err(Unusable::NotTokenProgram);
    }
    let base = match data.len() {
        TOKEN_ACCOUNT_LEN => data,
        len if len > TOKEN_ACCOUNT_LEN
            && data.get(TOKEN_ACCOUNT_LEN) == Some(&TOKEN_2022_ACCOUNT_TYPE) =>
        {
            data.get(..TOKEN_ACCOUNT_LEN)
                .ok_or(Unusable::NotTokenAccount)?
        }
        _ => return Err(Unusable::NotTokenAccount),
    };
    let (account_mint, rest) = base.split_at(32);
    let account_owner = rest.get(..32).ok_or(Unusable::NotTokenAccount)?;
    match base.get(TOKEN_ACCOUNT_STATE_AT) {
        Some(&TOKEN_ACCOUNT_INITIALIZED) => {}
        Some(2) => return Err(Unusable::Frozen),
        _ => return Err(Unusable::NotTokenAccount),
    }
    if account_mint != mint.as_ref() {
        return Err(Unusable::OtherMint);
    }
    if account_owner != payer.as_ref() {
        return Err(Unusable::OtherOwner);
    }
    Ok(())
}

/// What to do with a channel whose payer requested a close.
enum CloseStep {
    /// Close it (the refund account is usable).
    Close(Box<Plan>),
    /// No usable refund account: settle the voucher that is ahead with a
    /// plain `settle`; the payer's `finalize` refunds the rest.
    Settle,
    /// Nothing to do (recorded in the report).
    Done,
}

/// What a close is expected to move, from the channel state it is built on.
struct Plan {
    instructions: Vec<Instruction>,
    with_voucher: bool,
    /// How the final voucher is verified (`None` without one).
    path: Option<VoucherPath>,
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
                Ok(CloseStep::Close(plan)) => plan,
                // One item: never split.
                Ok(CloseStep::Settle) => {
                    let with_table = self.config.lookup_table != crate::LookupTableMode::Off;
                    let (path, _) = self.config.choose_path(1, with_table);
                    return self.settle_chunk(vec![item], path, mint, report).await;
                }
                Ok(CloseStep::Done) => return ChunkEnd::Done,
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

    /// Re-reads the channel and the payer's refund account and decides:
    /// close, settle the voucher only (no usable refund account), or
    /// nothing (recorded as skipped). A refund account that cannot be read
    /// is an error (retried): nothing is created in its stead.
    async fn plan_close(
        &self,
        item: &mut Item,
        mint: &MintAccounts,
        report: &mut crate::SweepReport,
    ) -> Result<CloseStep, SettleError> {
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
                return Ok(CloseStep::Done);
            }
            (Err(reason), _) => {
                report.unsettled_value = report.unsettled_value.saturating_sub(item.ahead());
                tracing::debug!(channel = %item.channel, reason = reason.as_str(), "not closed");
                report.skipped.push(Skipped {
                    channel: item.channel,
                    reason,
                });
                return Ok(CloseStep::Done);
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
        // A failed read is retried by the caller: never guessed at.
        let account = self
            .rpc
            .get_account_with_commitment(&payer_tokens, self.config.commitment)
            .await
            .inspect_err(|_| self.metrics.fail(crate::FailureKind::Rpc))?
            .value;
        let usable = check_refund_account(
            account.as_ref().map(|a| (&a.owner, a.data.as_slice())),
            &channel.payer,
            &channel.mint,
            &mint.token_program,
        );
        if let Err(why) = usable {
            if item.ahead() > 0 {
                tracing::info!(
                    channel = %item.channel,
                    %payer_tokens,
                    refund_account = why.as_str(),
                    "the payer asked for a close but has no usable associated token account: \
                     settling the voucher; the payer's finalize refunds the rest"
                );
                return Ok(CloseStep::Settle);
            }
            tracing::debug!(
                channel = %item.channel,
                %payer_tokens,
                refund_account = why.as_str(),
                "not closed: no usable refund account; the payer's finalize refunds it"
            );
            report.skipped.push(Skipped {
                channel: item.channel,
                reason: crate::SkipReason::NoRefundAccount,
            });
            return Ok(CloseStep::Done);
        }
        let with_voucher = item.ahead() > 0;
        let accounts = ChannelAccounts {
            channel: item.channel,
            payee,
            mint: channel.mint,
            token_program: mint.token_program,
            payer_tokens,
            rent_payer: channel.rent_payer,
        };
        let path = with_voucher.then(|| self.config.choose_close_path());
        let mut instructions = Vec::with_capacity(4);
        match path {
            // The voucher by `settle_signed`, then `close` without one, in
            // one transaction: one signature (a voucher someone settled in
            // the meantime is a no-op, and the close still refunds).
            Some(VoucherPath::Program) => {
                instructions.extend(compute_budget(&self.config, VoucherPath::Program, 1, true));
                let settle = SettleAccounts::new(&payee, &channel.mint, mint.token_program);
                instructions.push(settle.settle_signed_ix(&[item.voucher]));
                instructions.push(ix::close(&accounts, false));
            }
            Some(VoucherPath::Precompile) => {
                instructions.extend(compute_budget(
                    &self.config,
                    VoucherPath::Precompile,
                    1,
                    true,
                ));
                instructions.push(ix::ed25519_for_vouchers(&[item.voucher])?);
                instructions.push(ix::close(&accounts, true));
            }
            None => instructions.push(ix::close(&accounts, false)),
        }
        let paid = item.ahead();
        let settled_after = channel.settled.saturating_add(paid);
        let refunded = channel
            .deposit
            .saturating_sub(settled_after)
            .saturating_sub(channel.refunded);
        Ok(CloseStep::Close(Box::new(Plan {
            instructions,
            with_voucher,
            path,
            paid,
            refunded,
            payer_tokens,
            before: channel,
        })))
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
        let estimate = match plan.path {
            Some(path) => self.config.estimated_fee(path, 1, true),
            None => self.config.lamports_per_signature,
        };
        let landing = self.landing(&signature, estimate).await;
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
            path = plan.path.map_or("none", VoucherPath::as_str),
            "closed on the payer's request"
        );
        report.closes.push(CloseTx {
            signature,
            channel: item.channel,
            with_voucher: plan.with_voucher,
            path: plan.path,
            paid,
            refunded,
            payer_tokens: plan.payer_tokens,
            fee_lamports: fee,
            compute_units,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: Pubkey = paychan_sdk::TOKEN_PROGRAM_ID;
    const PAYER: Pubkey = Pubkey::new_from_array([1; 32]);
    const MINT: Pubkey = Pubkey::new_from_array([2; 32]);

    /// An SPL Token account (165 bytes) of `mint` owned by `owner` in `state`.
    fn token_account(mint: &Pubkey, owner: &Pubkey, state: u8) -> Vec<u8> {
        let mut data = vec![0u8; TOKEN_ACCOUNT_LEN];
        data[..32].copy_from_slice(mint.as_ref());
        data[32..64].copy_from_slice(owner.as_ref());
        data[64..72].copy_from_slice(&500u64.to_le_bytes());
        data[TOKEN_ACCOUNT_STATE_AT] = state;
        data
    }

    fn check(program: &Pubkey, data: &[u8]) -> Result<(), Unusable> {
        check_refund_account(Some((program, data)), &PAYER, &MINT, &TOKEN)
    }

    #[test]
    fn only_the_payers_token_account_of_the_mint_takes_a_refund() {
        assert_eq!(check(&TOKEN, &token_account(&MINT, &PAYER, 1)), Ok(()));
        assert_eq!(
            check_refund_account(None, &PAYER, &MINT, &TOKEN),
            Err(Unusable::Missing)
        );
        let other = Pubkey::new_from_array([3; 32]);
        for (program, data, unusable) in [
            (
                other,
                token_account(&MINT, &PAYER, 1),
                Unusable::NotTokenProgram,
            ),
            (TOKEN, token_account(&other, &PAYER, 1), Unusable::OtherMint),
            (TOKEN, token_account(&MINT, &other, 1), Unusable::OtherOwner),
            (TOKEN, token_account(&MINT, &PAYER, 2), Unusable::Frozen),
            (
                TOKEN,
                token_account(&MINT, &PAYER, 0),
                Unusable::NotTokenAccount,
            ),
        ] {
            assert_eq!(check(&program, &data), Err(unusable), "{unusable:?}");
        }
        // Wrong sizes: empty, a mint (82 bytes), a truncated account.
        for len in [0, 82, 164] {
            assert_eq!(
                check(&TOKEN, &vec![1u8; len]),
                Err(Unusable::NotTokenAccount),
                "{len} bytes"
            );
        }
    }

    #[test]
    fn token_2022_accounts_with_extensions_are_read_by_their_account_type() {
        let mut with_extensions = token_account(&MINT, &PAYER, 1);
        with_extensions.push(TOKEN_2022_ACCOUNT_TYPE);
        with_extensions.extend_from_slice(&[0; 12]);
        assert_eq!(check(&TOKEN, &with_extensions), Ok(()));
        // A mint with extensions is padded to the same size, type 1.
        with_extensions[TOKEN_ACCOUNT_LEN] = 1;
        assert_eq!(
            check(&TOKEN, &with_extensions),
            Err(Unusable::NotTokenAccount)
        );
    }
}
