//! The channel account.
use anchor_lang::prelude::*;

use crate::{error::PaychanError, math};

/// Lifecycle of a channel. Stored as a `u8`; zero is never a valid state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ChannelStatus {
    /// Accepting top-ups and settlements.
    Open = 1,
    /// The payer requested a close; settlements are accepted until the grace
    /// period ends, then anyone may finalize.
    Closing = 2,
    /// Paid out and refunded; only `reclaim` remains.
    Closed = 3,
}

impl ChannelStatus {
    /// Decodes a stored status byte.
    pub fn from_u8(v: u8) -> Result<Self> {
        match v {
            1 => Ok(Self::Open),
            2 => Ok(Self::Closing),
            3 => Ok(Self::Closed),
            _ => err!(PaychanError::InvariantViolated),
        }
    }
}

/// One payer → payee escrow channel. PDA with seeds
/// `[SEED_CHANNEL, payer, payee, mint, authorized_signer, salt LE, open_slot LE]`.
///
/// Zero-copy, 224 bytes of data (232 with the discriminator).
#[account(zero_copy)]
#[derive(Debug, PartialEq, Eq)]
pub struct Channel {
    /// Funds the deposit; may top up and request a close; receives refunds.
    pub payer: Pubkey,
    /// Receives settled value; may close cooperatively.
    pub payee: Pubkey,
    /// The escrowed token's mint.
    pub mint: Pubkey,
    /// The Ed25519 key whose vouchers this channel honours (a session key).
    pub authorized_signer: Pubkey,
    /// Paid this account's rent; gets it back on reclaim.
    pub rent_payer: Pubkey,
    /// Total escrowed so far (open + top-ups).
    pub deposit: u64,
    /// Cumulative amount paid to the payee (the settled watermark).
    pub settled: u64,
    /// Amount returned to the payer at close.
    pub refunded: u64,
    /// Payer-chosen salt (PDA seed).
    pub salt: u64,
    /// Recent slot chosen at open (PDA seed); makes every incarnation unique.
    pub open_slot: u64,
    /// Unix time of `request_close`; 0 when none.
    pub closure_started_at: i64,
    /// Seconds between `request_close` and the earliest `finalize`.
    pub grace_period: i64,
    /// Layout version.
    pub version: u8,
    /// Canonical PDA bump.
    pub bump: u8,
    /// A [`ChannelStatus`] as `u8`.
    pub status: u8,
    /// Reserved, zero.
    pub reserved: [u8; 5],
}

impl Channel {
    /// Size of the account data after the 8-byte discriminator.
    pub const LEN: usize = core::mem::size_of::<Channel>();
}

// The whole account (discriminator included) stays within 256 bytes.
const _: () = assert!(8 + Channel::LEN <= 256);

impl Channel {
    /// The decoded status.
    pub fn status(&self) -> Result<ChannelStatus> {
        ChannelStatus::from_u8(self.status)
    }

    /// Escrow this channel still holds in the vault: deposit − settled − refunded.
    pub fn remaining(&self) -> Result<u64> {
        math::remaining(self.deposit, self.settled, self.refunded)
    }

    /// When finalize becomes possible (only meaningful while closing).
    pub fn grace_ends_at(&self) -> Result<i64> {
        math::grace_ends_at(self.closure_started_at, self.grace_period)
    }

    /// Fails unless a voucher may be settled now: open, or closing with the
    /// grace period still running.
    pub fn require_settleable(&self, now: i64) -> Result<()> {
        match self.status()? {
            ChannelStatus::Open => Ok(()),
            ChannelStatus::Closing => {
                require!(now < self.grace_ends_at()?, PaychanError::GracePeriodEnded);
                Ok(())
            }
            ChannelStatus::Closed => err!(PaychanError::ChannelClosed),
        }
    }

    /// Whether this program accepts the layout version the account was
    /// written with (`MIN_CHANNEL_VERSION..=CHANNEL_VERSION`): a new version
    /// never strands the channels opened under an older one.
    pub fn version_supported(&self) -> bool {
        (crate::constants::MIN_CHANNEL_VERSION..=crate::constants::CHANNEL_VERSION)
            .contains(&self.version)
    }

    /// Whether the open-slot window has passed, so the address can never be
    /// opened again and the account may be deleted.
    pub fn reclaimable_at(&self, slot: u64) -> bool {
        math::open_window_passed(self.open_slot, slot)
    }

    /// Holds after every instruction that touches the channel.
    pub fn invariant(&self) -> Result<()> {
        let status = self.status()?;
        let spent = self
            .settled
            .checked_add(self.refunded)
            .ok_or(PaychanError::Overflow)?;
        require!(spent <= self.deposit, PaychanError::InvariantViolated);
        require!(self.version_supported(), PaychanError::UnsupportedVersion);
        match status {
            ChannelStatus::Open => {
                require!(
                    self.closure_started_at == 0 && self.refunded == 0,
                    PaychanError::InvariantViolated
                );
            }
            ChannelStatus::Closing => {
                require!(
                    self.closure_started_at > 0 && self.refunded == 0,
                    PaychanError::InvariantViolated
                );
            }
            ChannelStatus::Closed => {
                require!(spent == self.deposit, PaychanError::InvariantViolated);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(status: ChannelStatus) -> Channel {
        Channel {
            payer: Pubkey::new_unique(),
            payee: Pubkey::new_unique(),
            mint: Pubkey::new_unique(),
            authorized_signer: Pubkey::new_unique(),
            rent_payer: Pubkey::new_unique(),
            deposit: 100,
            settled: 40,
            refunded: 0,
            salt: 1,
            open_slot: 10,
            closure_started_at: 0,
            grace_period: 600,
            version: crate::constants::CHANNEL_VERSION,
            bump: 255,
            status: status as u8,
            reserved: [0; 5],
        }
    }

    #[test]
    fn layout_is_224_bytes() {
        assert_eq!(Channel::LEN, 224);
    }

    #[test]
    fn invariant_holds_for_consistent_states() {
        assert!(channel(ChannelStatus::Open).invariant().is_ok());
        let mut c = channel(ChannelStatus::Closing);
        c.closure_started_at = 1_000;
        assert!(c.invariant().is_ok());
        let mut c = channel(ChannelStatus::Closed);
        c.refunded = 60;
        assert!(c.invariant().is_ok());
    }

    #[test]
    fn invariant_rejects_inconsistent_states() {
        let mut c = channel(ChannelStatus::Open);
        c.settled = 101;
        assert!(c.invariant().is_err(), "settled above deposit");
        let c = channel(ChannelStatus::Closing);
        assert!(c.invariant().is_err(), "closing without a start time");
        let c = channel(ChannelStatus::Closed);
        assert!(c.invariant().is_err(), "closed with escrow left");
        let mut c = channel(ChannelStatus::Open);
        c.status = 0;
        assert!(c.invariant().is_err(), "zero status");
        let mut c = channel(ChannelStatus::Open);
        c.refunded = 1;
        assert!(c.invariant().is_err(), "refund while open");
    }

    #[test]
    fn every_supported_version_is_accepted_and_no_other() {
        use crate::constants::{CHANNEL_VERSION, MIN_CHANNEL_VERSION};
        // Version 1 is what every channel opened so far carries: it must stay
        // accepted for as long as such channels can exist.
        assert_eq!(MIN_CHANNEL_VERSION, 1);
        for version in 0..=u8::MAX {
            let mut c = channel(ChannelStatus::Open);
            c.version = version;
            let supported = (MIN_CHANNEL_VERSION..=CHANNEL_VERSION).contains(&version);
            assert_eq!(c.version_supported(), supported, "version {version}");
            assert_eq!(
                c.invariant().err(),
                (!supported).then(|| PaychanError::UnsupportedVersion.into()),
                "version {version}"
            );
        }
    }

    #[test]
    fn settleable_follows_status_and_grace() {
        let c = channel(ChannelStatus::Open);
        assert!(c.require_settleable(i64::MAX).is_ok());
        let mut c = channel(ChannelStatus::Closing);
        c.closure_started_at = 1_000;
        assert!(c.require_settleable(1_599).is_ok());
        assert_eq!(
            c.require_settleable(1_600).err(),
            Some(PaychanError::GracePeriodEnded.into())
        );
        let c = channel(ChannelStatus::Closed);
        assert_eq!(
            c.require_settleable(0).err(),
            Some(PaychanError::ChannelClosed.into())
        );
    }
}
