//! The program's accounts: layouts, discriminators and decoding.
//!
//! Every decoder checks the 8-byte Anchor discriminator and the exact length
//! first; none panics on any input.
use bytemuck::{Pod, Zeroable};

use crate::{
    Pubkey,
    constants::{CHANNEL_VERSION, MIN_CHANNEL_VERSION},
};

/// Why account data is not the account asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// The data does not start with the account's discriminator.
    #[error("not a paychan {0} account (discriminator)")]
    Discriminator(&'static str),
    /// The data has the wrong length for the account.
    #[error("a paychan {account} account is {expected} bytes, not {actual}")]
    Length {
        /// The account type.
        account: &'static str,
        /// Its size, discriminator included.
        expected: usize,
        /// The size found.
        actual: usize,
    },
    /// The status byte is not a [`ChannelStatus`].
    #[error("channel status {0} is not a status")]
    Status(u8),
    /// An amount does not add up (deposit below what was paid out).
    #[error("channel amounts are inconsistent")]
    Amounts,
}

/// Lifecycle of a channel, stored as a `u8` (zero is never a status).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ChannelStatus {
    /// Accepting top-ups and settlements.
    Open = 1,
    /// The payer requested a close; settlements are accepted until the
    /// grace period ends, then anyone may finalize.
    Closing = 2,
    /// Paid out and refunded; only `reclaim` remains.
    Closed = 3,
}

impl ChannelStatus {
    /// Decodes a stored status byte.
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::Open),
            2 => Some(Self::Closing),
            3 => Some(Self::Closed),
            _ => None,
        }
    }
}

impl TryFrom<u8> for ChannelStatus {
    type Error = AccountError;

    fn try_from(v: u8) -> Result<Self, AccountError> {
        Self::from_u8(v).ok_or(AccountError::Status(v))
    }
}

/// One payer → payee escrow channel (the program's zero-copy `Channel`,
/// 224 bytes after the discriminator).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct Channel {
    /// Funds the deposit; may top up and request a close; receives refunds.
    pub payer: Pubkey,
    /// Receives settled value; may close cooperatively.
    pub payee: Pubkey,
    /// The escrowed token's mint.
    pub mint: Pubkey,
    /// The Ed25519 key whose vouchers this channel honours.
    pub authorized_signer: Pubkey,
    /// Paid the account's rent; gets it back on reclaim.
    pub rent_payer: Pubkey,
    /// Total escrowed so far (open + top-ups).
    pub deposit: u64,
    /// Cumulative amount paid to the payee.
    pub settled: u64,
    /// Amount returned to the payer at close.
    pub refunded: u64,
    /// Payer-chosen salt (PDA seed).
    pub salt: u64,
    /// Recent slot chosen at open (PDA seed).
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
    /// `sha256("account:Channel")[..8]`.
    pub const DISCRIMINATOR: [u8; 8] = [49, 159, 99, 106, 220, 87, 219, 88];
    /// Size after the discriminator.
    pub const LEN: usize = core::mem::size_of::<Self>();
    /// Size of the account data, discriminator included.
    pub const SIZE: usize = 8 + Self::LEN;

    /// Decodes a channel account's data.
    pub fn decode(data: &[u8]) -> Result<Self, AccountError> {
        let body = body(data, &Self::DISCRIMINATOR, Self::SIZE, "channel")?;
        bytemuck::try_pod_read_unaligned(body).map_err(|_| AccountError::Length {
            account: "channel",
            expected: Self::SIZE,
            actual: data.len(),
        })
    }

    /// The account data of this channel (discriminator included).
    pub fn encode(&self) -> Vec<u8> {
        let mut data = Vec::with_capacity(Self::SIZE);
        data.extend_from_slice(&Self::DISCRIMINATOR);
        data.extend_from_slice(bytemuck::bytes_of(self));
        data
    }

    /// The decoded status.
    pub fn status(&self) -> Result<ChannelStatus, AccountError> {
        ChannelStatus::try_from(self.status)
    }

    /// Escrow the channel still holds: deposit − settled − refunded.
    pub fn remaining(&self) -> Result<u64, AccountError> {
        self.settled
            .checked_add(self.refunded)
            .and_then(|spent| self.deposit.checked_sub(spent))
            .ok_or(AccountError::Amounts)
    }

    /// When `finalize` becomes possible (meaningful while closing); `None`
    /// on overflow.
    pub fn grace_ends_at(&self) -> Option<i64> {
        self.closure_started_at.checked_add(self.grace_period)
    }

    /// Whether the program accepts the layout version this account carries.
    pub fn version_supported(&self) -> bool {
        (MIN_CHANNEL_VERSION..=CHANNEL_VERSION).contains(&self.version)
    }
}

/// A payee's pooled vault in one mint (layout version 2, 172 bytes after
/// the discriminator; version 1 ended after `tokens_bump`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PayeeVault {
    /// The payee all channels of this vault pay.
    pub payee: Pubkey,
    /// The escrowed mint.
    pub mint: Pubkey,
    /// The mint's token program.
    pub token_program: Pubkey,
    /// The vault's token account.
    pub tokens: Pubkey,
    /// Escrow owed to live channels.
    pub outstanding: u64,
    /// The mint's decimals.
    pub decimals: u8,
    /// Canonical bump of the vault PDA.
    pub bump: u8,
    /// Canonical bump of the token account PDA.
    pub tokens_bump: u8,
    /// Where payouts go (version 2; `None` in a version-1 vault, which
    /// `migrate_vault` must rewrite before it can pay out again).
    pub payout: Option<Pubkey>,
    /// Layout version (1 for the first layout).
    pub version: u8,
}

impl PayeeVault {
    /// `sha256("account:PayeeVault")[..8]`.
    pub const DISCRIMINATOR: [u8; 8] = [204, 211, 122, 184, 142, 8, 165, 165];
    /// Size of a version-1 vault after the discriminator.
    pub const V1_LEN: usize = 4 * 32 + 8 + 3;
    /// Size of a current (version-2) vault after the discriminator.
    pub const LEN: usize = Self::V1_LEN + 32 + 1;
    /// Size of the account data, discriminator included.
    pub const SIZE: usize = 8 + Self::LEN;

    /// Decodes a vault account's data in either layout.
    pub fn decode(data: &[u8]) -> Result<Self, AccountError> {
        let disc = data.get(..8).ok_or(AccountError::Length {
            account: "vault",
            expected: Self::SIZE,
            actual: data.len(),
        })?;
        if disc != Self::DISCRIMINATOR {
            return Err(AccountError::Discriminator("vault"));
        }
        let body = &data[8..];
        if body.len() != Self::LEN && body.len() != Self::V1_LEN {
            return Err(AccountError::Length {
                account: "vault",
                expected: Self::SIZE,
                actual: data.len(),
            });
        }
        let mut r = Reader(body);
        let (payee, mint, token_program, tokens) = (r.key(), r.key(), r.key(), r.key());
        let outstanding = u64::from_le_bytes(r.array());
        let [decimals, bump, tokens_bump] = r.array();
        let (payout, version) = if body.len() == Self::LEN {
            (Some(r.key()), r.array::<1>()[0])
        } else {
            (None, 1)
        };
        Ok(Self {
            payee,
            mint,
            token_program,
            tokens,
            outstanding,
            decimals,
            bump,
            tokens_bump,
            payout,
            version,
        })
    }
}

/// Reads fixed-size fields from a slice whose length was checked first.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        if let Some((head, rest)) = self.0.split_at_checked(N) {
            out.copy_from_slice(head);
            self.0 = rest;
        }
        out
    }

    fn key(&mut self) -> Pubkey {
        Pubkey::new_from_array(self.array())
    }
}

fn body<'a>(
    data: &'a [u8],
    discriminator: &[u8; 8],
    size: usize,
    account: &'static str,
) -> Result<&'a [u8], AccountError> {
    if data.len() != size {
        return Err(AccountError::Length {
            account,
            expected: size,
            actual: data.len(),
        });
    }
    match data.split_at_checked(8) {
        Some((disc, body)) if disc == discriminator => Ok(body),
        _ => Err(AccountError::Discriminator(account)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn channel() -> Channel {
        Channel {
            payer: Pubkey::new_unique(),
            payee: Pubkey::new_unique(),
            mint: Pubkey::new_unique(),
            authorized_signer: Pubkey::new_unique(),
            rent_payer: Pubkey::new_unique(),
            deposit: 100,
            settled: 40,
            refunded: 0,
            salt: 7,
            open_slot: 9,
            closure_started_at: 0,
            grace_period: 600,
            version: CHANNEL_VERSION,
            bump: 254,
            status: ChannelStatus::Open as u8,
            reserved: [0; 5],
        }
    }

    #[test]
    fn a_channel_round_trips_and_nothing_else_decodes() {
        let c = channel();
        let data = c.encode();
        assert_eq!(data.len(), 232);
        assert_eq!(Channel::decode(&data), Ok(c));
        assert_eq!(c.remaining(), Ok(60));
        assert_eq!(c.status(), Ok(ChannelStatus::Open));

        let mut wrong = data.clone();
        wrong[0] ^= 1;
        assert_eq!(
            Channel::decode(&wrong),
            Err(AccountError::Discriminator("channel"))
        );
        assert!(matches!(
            Channel::decode(&data[..231]),
            Err(AccountError::Length { actual: 231, .. })
        ));
        let mut vault = PayeeVault::DISCRIMINATOR.to_vec();
        vault.resize(232, 0);
        assert_eq!(
            Channel::decode(&vault),
            Err(AccountError::Discriminator("channel"))
        );
    }

    #[test]
    fn bad_status_and_amounts_are_errors() {
        let mut c = channel();
        c.status = 0;
        assert_eq!(c.status(), Err(AccountError::Status(0)));
        c.refunded = 61;
        assert_eq!(c.remaining(), Err(AccountError::Amounts));
        c.settled = u64::MAX;
        assert_eq!(c.remaining(), Err(AccountError::Amounts));
        c.closure_started_at = i64::MAX;
        assert_eq!(c.grace_ends_at(), None);
    }

    #[test]
    fn vaults_decode_in_both_layouts() {
        let keys: Vec<Pubkey> = (0..5).map(|_| Pubkey::new_unique()).collect();
        let mut v2 = PayeeVault::DISCRIMINATOR.to_vec();
        for k in &keys[..4] {
            v2.extend_from_slice(k.as_ref());
        }
        v2.extend_from_slice(&77u64.to_le_bytes());
        v2.extend_from_slice(&[6, 255, 253]);
        let v1 = v2.clone();
        v2.extend_from_slice(keys[4].as_ref());
        v2.push(2);
        let vault = PayeeVault::decode(&v2).unwrap();
        assert_eq!(
            (vault.payee, vault.tokens, vault.outstanding, vault.decimals),
            (keys[0], keys[3], 77, 6)
        );
        assert_eq!((vault.bump, vault.tokens_bump), (255, 253));
        assert_eq!((vault.payout, vault.version), (Some(keys[4]), 2));
        let old = PayeeVault::decode(&v1).unwrap();
        assert_eq!((old.payout, old.version, old.outstanding), (None, 1, 77));
        assert!(PayeeVault::decode(&v2[..v2.len() - 1]).is_err());
        assert!(PayeeVault::decode(&v2[..5]).is_err());
    }

    proptest! {
        /// No input panics a decoder.
        #[test]
        fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300), disc in 0u8..3) {
            let mut data = data;
            let prefix: &[u8] = match disc {
                0 => &Channel::DISCRIMINATOR,
                1 => &PayeeVault::DISCRIMINATOR,
                _ => &[],
            };
            for (d, p) in data.iter_mut().zip(prefix) {
                *d = *p;
            }
            let _ = Channel::decode(&data).map(|c| (c.status(), c.remaining(), c.grace_ends_at()));
            let _ = PayeeVault::decode(&data);
        }
    }
}
