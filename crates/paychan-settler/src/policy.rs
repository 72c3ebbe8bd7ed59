//! Which channels to settle now: a pure function of the voucher, the
//! on-chain channel, the chain's clock and the configuration.
use paychan_sdk::Pubkey;
use paychan_sdk::state::{Channel, ChannelStatus};
use paychan_verifier::store::Accepted;

/// Why a channel is settled in this run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SettleReason {
    /// The payer requested a close and `close_on_request` is on: close the
    /// channel now with the payee's `close` (with the voucher when it is
    /// ahead of `settled`, else without), refunding the payer at once.
    CloseRequested,
    /// The payer requested a close and the grace period ends within the
    /// configured margin: settle before `finalize` refunds the escrow.
    Closing,
    /// The voucher expires within the configured margin.
    Expiring,
    /// Someone asked for it through the urgent queue.
    Urgent,
    /// The unsettled value reached the mint's threshold.
    Threshold,
    /// A periodic sweep: everything ahead of the chain.
    Sweep,
}

/// Why a channel is not settled in this run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SkipReason {
    /// Below the threshold and not otherwise due (a later run settles it).
    NotDue,
    /// The chain already holds this voucher's amount (or more).
    AlreadySettled,
    /// The channel account does not exist (never opened, or reclaimed).
    Gone,
    /// The account is not a channel of this program.
    NotAChannel,
    /// The channel is closed.
    Closed,
    /// The channel is closing and its grace period has ended: only
    /// `finalize` remains. The voucher's value is lost.
    GraceEnded,
    /// The voucher has expired. Its value (above `settled`) is lost.
    Expired,
    /// The channel pays another payee.
    OtherPayee,
    /// The channel's mint is not configured.
    UnknownMint,
    /// The voucher's signer is not the channel's authorized signer.
    WrongSigner,
    /// The voucher exceeds the channel's deposit.
    ExceedsDeposit,
    /// Not attempted: the run stopped early (RPC unavailable).
    Deferred,
    /// The payer asked for a close, but has no usable associated token
    /// account in the channel's mint to refund to, and no voucher is ahead
    /// of the chain. The settler does not create that account (the payee
    /// would pay its rent and the payer could close it and keep it): the
    /// payer's own `finalize` refunds the channel after the grace period.
    NoRefundAccount,
}

impl SkipReason {
    /// A short label (logs, metrics).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotDue => "not_due",
            Self::AlreadySettled => "already_settled",
            Self::Gone => "gone",
            Self::NotAChannel => "not_a_channel",
            Self::Closed => "closed",
            Self::GraceEnded => "grace_ended",
            Self::Expired => "expired",
            Self::OtherPayee => "other_payee",
            Self::UnknownMint => "unknown_mint",
            Self::WrongSigner => "wrong_signer",
            Self::ExceedsDeposit => "exceeds_deposit",
            Self::Deferred => "deferred",
            Self::NoRefundAccount => "no_refund_account",
        }
    }
}

/// The policy's parameters for one decision.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// The payee whose channels are settled.
    pub payee: Pubkey,
    /// Settle when `cumulative − settled ≥ threshold` (per mint).
    pub threshold: Option<u64>,
    /// Seconds before the grace period's end from which a closing channel
    /// is due regardless of the threshold.
    pub grace_margin_secs: i64,
    /// Seconds before a voucher's expiry from which it is due.
    pub expiry_margin_secs: i64,
    /// Settle everything ahead (sweep) regardless of the threshold.
    pub sweep: bool,
    /// This channel was asked for through the urgent queue.
    pub urgent: bool,
    /// Close a closing channel at once ([`SettleReason::CloseRequested`]).
    pub close_on_request: bool,
}

/// The on-chain side of a decision.
#[derive(Clone, Copy, Debug)]
pub enum OnChain<'a> {
    /// No account.
    Missing,
    /// An account that does not decode as a channel of the program.
    NotAChannel,
    /// The decoded channel.
    Channel(&'a Channel),
}

/// What to do with one channel's latest voucher.
pub fn decide(
    policy: &Policy,
    accepted: &Accepted,
    chain: OnChain<'_>,
    now: i64,
) -> Result<SettleReason, SkipReason> {
    let channel = match chain {
        OnChain::Missing => return Err(SkipReason::Gone),
        OnChain::NotAChannel => return Err(SkipReason::NotAChannel),
        OnChain::Channel(c) => c,
    };
    let voucher = &accepted.voucher.voucher;
    if channel.payee != policy.payee {
        return Err(SkipReason::OtherPayee);
    }
    let Some(threshold) = policy.threshold else {
        return Err(SkipReason::UnknownMint);
    };
    if channel.authorized_signer.to_bytes() != accepted.voucher.signer {
        return Err(SkipReason::WrongSigner);
    }
    let status = channel.status().map_err(|_| SkipReason::NotAChannel)?;
    if status == ChannelStatus::Closed {
        return Err(SkipReason::Closed);
    }
    let cumulative = voucher.cumulative_amount;
    if status == ChannelStatus::Closing && policy.close_on_request {
        let grace_ends = channel
            .closure_started_at
            .checked_add(channel.grace_period)
            .ok_or(SkipReason::NotAChannel)?;
        // `close` with a final voucher needs `now < grace_ends`; after that
        // the payer's `finalize` is the way out.
        if now < grace_ends {
            if cumulative <= channel.settled {
                // Nothing ahead: close without a voucher.
                return Ok(SettleReason::CloseRequested);
            }
            if cumulative > channel.deposit {
                return Err(SkipReason::ExceedsDeposit);
            }
            if voucher.is_expired(now) {
                return Err(SkipReason::Expired);
            }
            return Ok(SettleReason::CloseRequested);
        }
    }
    let Some(ahead) = cumulative.checked_sub(channel.settled).filter(|a| *a > 0) else {
        return Err(SkipReason::AlreadySettled);
    };
    if cumulative > channel.deposit {
        return Err(SkipReason::ExceedsDeposit);
    }
    if voucher.is_expired(now) {
        return Err(SkipReason::Expired);
    }
    if status == ChannelStatus::Closing {
        let grace_ends = channel
            .closure_started_at
            .checked_add(channel.grace_period)
            .ok_or(SkipReason::NotAChannel)?;
        // The program accepts a settlement while `now < grace_ends`.
        if now >= grace_ends {
            return Err(SkipReason::GraceEnded);
        }
        if now >= grace_ends.saturating_sub(policy.grace_margin_secs) {
            return Ok(SettleReason::Closing);
        }
    }
    if voucher.expires_at != 0
        && now >= voucher.expires_at.saturating_sub(policy.expiry_margin_secs)
    {
        return Ok(SettleReason::Expiring);
    }
    if policy.urgent {
        return Ok(SettleReason::Urgent);
    }
    if ahead >= threshold {
        return Ok(SettleReason::Threshold);
    }
    if policy.sweep {
        return Ok(SettleReason::Sweep);
    }
    Err(SkipReason::NotDue)
}

#[cfg(test)]
mod tests {
    use paychan_voucher::{SignedVoucher, VoucherV1};

    use super::*;

    const PAYEE: Pubkey = Pubkey::new_from_array([7; 32]);
    const SIGNER: [u8; 32] = [9; 32];

    fn channel(status: ChannelStatus, settled: u64) -> Channel {
        Channel {
            payer: Pubkey::new_from_array([1; 32]),
            payee: PAYEE,
            mint: Pubkey::new_from_array([2; 32]),
            authorized_signer: Pubkey::new_from_array(SIGNER),
            rent_payer: Pubkey::new_from_array([1; 32]),
            deposit: 1_000,
            settled,
            refunded: 0,
            salt: 0,
            open_slot: 0,
            closure_started_at: if status == ChannelStatus::Closing {
                10_000
            } else {
                0
            },
            grace_period: 600,
            version: 1,
            bump: 255,
            status: status as u8,
            reserved: [0; 5],
        }
    }

    fn accepted(cumulative: u64, expires_at: i64) -> Accepted {
        Accepted {
            voucher: SignedVoucher {
                voucher: VoucherV1 {
                    channel_id: [3; 32],
                    cumulative_amount: cumulative,
                    expires_at,
                },
                signer: SIGNER,
                signature: [0; 64],
            },
            previous: 0,
        }
    }

    fn policy() -> Policy {
        Policy {
            payee: PAYEE,
            threshold: Some(100),
            grace_margin_secs: 300,
            expiry_margin_secs: 60,
            sweep: false,
            urgent: false,
            close_on_request: false,
        }
    }

    #[test]
    fn threshold_and_sweep() {
        let c = channel(ChannelStatus::Open, 50);
        let d = |p: &Policy, cum| decide(p, &accepted(cum, 0), OnChain::Channel(&c), 0);
        assert_eq!(d(&policy(), 150), Ok(SettleReason::Threshold));
        assert_eq!(d(&policy(), 149), Err(SkipReason::NotDue));
        let sweep = Policy {
            sweep: true,
            ..policy()
        };
        assert_eq!(d(&sweep, 149), Ok(SettleReason::Sweep));
        let urgent = Policy {
            urgent: true,
            ..policy()
        };
        assert_eq!(d(&urgent, 51), Ok(SettleReason::Urgent));
        assert_eq!(d(&sweep, 50), Err(SkipReason::AlreadySettled));
        assert_eq!(d(&sweep, 10), Err(SkipReason::AlreadySettled));
        assert_eq!(d(&sweep, 1_001), Err(SkipReason::ExceedsDeposit));
    }

    /// `decide` with the default policy for a voucher of `cumulative`
    /// expiring at `expires_at` on a `status` channel (nothing settled): not
    /// due just before `from`, due for `reason` from `from` to `to` (both
    /// ends), `after` just after `to`.
    fn due_from_to(
        status: ChannelStatus,
        (cumulative, expires_at): (u64, i64),
        (from, to): (i64, i64),
        reason: SettleReason,
        after: SkipReason,
    ) {
        let (a, c) = (accepted(cumulative, expires_at), channel(status, 0));
        let cases = [
            (from - 1, Err(SkipReason::NotDue)),
            (from, Ok(reason)),
            (to, Ok(reason)),
            (to + 1, Err(after)),
        ];
        for (now, expected) in cases {
            assert_eq!(
                decide(&policy(), &a, OnChain::Channel(&c), now),
                expected,
                "at {now}"
            );
        }
    }

    #[test]
    fn closing_channels_are_due_inside_the_margin() {
        // grace ends at 10_600; margin 300 → due from 10_300.
        due_from_to(
            ChannelStatus::Closing,
            (10, 0),
            (10_300, 10_599),
            SettleReason::Closing,
            SkipReason::GraceEnded,
        );
    }

    #[test]
    fn closing_channels_are_closed_at_once_on_request() {
        let close = Policy {
            close_on_request: true,
            ..policy()
        };
        let mut c = channel(ChannelStatus::Closing, 0);
        let d = |c: &Channel, cum, expires, now| {
            decide(&close, &accepted(cum, expires), OnChain::Channel(c), now)
        };
        // Long before the margin, below the threshold.
        assert_eq!(d(&c, 10, 0, 10_001), Ok(SettleReason::CloseRequested));
        assert_eq!(d(&c, 10, 0, 10_599), Ok(SettleReason::CloseRequested));
        // After the grace period only `finalize` remains.
        assert_eq!(d(&c, 10, 0, 10_600), Err(SkipReason::GraceEnded));
        assert_eq!(d(&c, 1_001, 0, 10_001), Err(SkipReason::ExceedsDeposit));
        assert_eq!(d(&c, 10, 10_000, 10_001), Err(SkipReason::Expired));
        // Nothing ahead: still closed (without a voucher).
        c.settled = 10;
        assert_eq!(d(&c, 10, 0, 10_001), Ok(SettleReason::CloseRequested));
        assert_eq!(d(&c, 10, 0, 10_600), Err(SkipReason::AlreadySettled));
        // Open channels are not closed.
        let open = channel(ChannelStatus::Open, 0);
        assert_eq!(d(&open, 10, 0, 10_001), Err(SkipReason::NotDue));
    }

    #[test]
    fn expiring_and_expired_vouchers() {
        due_from_to(
            ChannelStatus::Open,
            (10, 5_000),
            (4_940, 5_000),
            SettleReason::Expiring,
            SkipReason::Expired,
        );
    }

    #[test]
    fn foreign_closed_and_missing_channels_are_skipped() {
        let a = accepted(500, 0);
        let sweep = Policy {
            sweep: true,
            ..policy()
        };
        assert_eq!(
            decide(&sweep, &a, OnChain::Missing, 0),
            Err(SkipReason::Gone)
        );
        assert_eq!(
            decide(&sweep, &a, OnChain::NotAChannel, 0),
            Err(SkipReason::NotAChannel)
        );
        let closed = channel(ChannelStatus::Closed, 0);
        assert_eq!(
            decide(&sweep, &a, OnChain::Channel(&closed), 0),
            Err(SkipReason::Closed)
        );
        let mut other = channel(ChannelStatus::Open, 0);
        other.payee = Pubkey::new_from_array([8; 32]);
        assert_eq!(
            decide(&sweep, &a, OnChain::Channel(&other), 0),
            Err(SkipReason::OtherPayee)
        );
        let mut rekeyed = channel(ChannelStatus::Open, 0);
        rekeyed.authorized_signer = Pubkey::new_from_array([4; 32]);
        assert_eq!(
            decide(&sweep, &a, OnChain::Channel(&rekeyed), 0),
            Err(SkipReason::WrongSigner)
        );
        let open = channel(ChannelStatus::Open, 0);
        let no_mint = Policy {
            threshold: None,
            ..sweep
        };
        assert_eq!(
            decide(&no_mint, &a, OnChain::Channel(&open), 0),
            Err(SkipReason::UnknownMint)
        );
    }
}
