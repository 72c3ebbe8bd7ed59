//! Per-channel state, its voucher sequencing rules, the budget, and the state
//! directory (atomic writes: temp file, fsync, rename, fsync of the directory).
use std::{
    fs::{self, File, OpenOptions},
    io::{Read, Write},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use ed25519_dalek::SigningKey;
use paychan_sdk::Pubkey;
use paychan_voucher::{SignedVoucher, SignedVoucherJson, VoucherV1, sign_v1};
use serde::{Deserialize, Serialize};

use crate::error::ClientError;

/// Version of the state file layout.
pub const STATE_VERSION: u32 = 1;
/// Largest state file read back.
const MAX_STATE_FILE: u64 = 64 * 1024;

/// Where a channel is in its life, as far as this client knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The `open` transaction was (or is about to be) sent; not confirmed.
    Opening,
    /// Open on chain: usable.
    Open,
    /// The payer requested the close; the grace period runs.
    Closing,
    /// Closed on chain (or finalized).
    Closed,
}

/// Everything the client persists about one channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelState {
    /// Layout version ([`STATE_VERSION`]).
    pub version: u32,
    /// The channel PDA.
    #[serde(with = "b58")]
    pub address: Pubkey,
    /// Who gets paid.
    #[serde(with = "b58")]
    pub payee: Pubkey,
    /// The escrowed mint.
    #[serde(with = "b58")]
    pub mint: Pubkey,
    /// The paychan program.
    #[serde(with = "b58")]
    pub program_id: Pubkey,
    /// The mint's token program.
    #[serde(with = "b58")]
    pub token_program: Pubkey,
    /// The session key's public half (the channel's `authorized_signer`).
    #[serde(with = "b58")]
    pub signer: Pubkey,
    /// CAIP-2 network.
    pub network: String,
    /// `open` salt.
    pub salt: u64,
    /// `open` slot.
    pub open_slot: u64,
    /// Grace period, seconds.
    pub grace_period: i64,
    /// Escrowed so far (our deposits and top-ups; refreshed from chain).
    pub deposit: u64,
    /// Settled on chain, as last read.
    pub settled: u64,
    /// Highest cumulative amount the server is known to have accepted.
    pub accepted: u64,
    /// Highest cumulative amount ever signed (what the payee could claim).
    pub signed: u64,
    /// The last voucher signed (re-sent as is when its amount is due again).
    #[serde(default)]
    pub last_voucher: Option<SignedVoucherJson>,
    /// `last_voucher` was not confirmed as paid (a 5xx, no confirming
    /// `PAYMENT-RESPONSE`, an answer from another origin): it is a credit,
    /// re-sent as is.
    #[serde(default)]
    pub credit: bool,
    /// Life-cycle phase.
    pub phase: Phase,
}

mod b58 {
    use std::str::FromStr;

    use paychan_sdk::Pubkey;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(key: &Pubkey, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(key)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Pubkey, D::Error> {
        let s = String::deserialize(d)?;
        Pubkey::from_str(&s).map_err(D::Error::custom)
    }
}

/// Adds `amount` to `total` unless the sum passes `limit` (then refuses it,
/// saying what was left: `limit - total`).
fn add_within(total: &mut u64, amount: u64, limit: u64) -> Result<(), ClientError> {
    let sum = total.checked_add(amount).ok_or(ClientError::Overflow)?;
    if sum > limit {
        return Err(ClientError::BudgetExhausted {
            needed: amount,
            remaining: limit.saturating_sub(*total),
        });
    }
    *total = sum;
    Ok(())
}

/// Budget accounting: `committed` (deposits of live channels and the final
/// amounts of closed ones) and `spent` (cumulative amounts signed) both stay
/// within `limit`; `spent ≤ committed` since no voucher exceeds its deposit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Budget {
    /// The configured budget.
    pub limit: u64,
    /// Σ over channels of the highest signed cumulative amount.
    pub spent: u64,
    /// Σ over channels of what they can still cost at most.
    pub committed: u64,
}

impl Budget {
    /// A budget with nothing spent.
    #[must_use]
    pub fn new(limit: u64) -> Self {
        Self {
            limit,
            spent: 0,
            committed: 0,
        }
    }

    /// Value that may still be paid (signed).
    #[must_use]
    pub fn remaining_to_spend(&self) -> u64 {
        self.limit.saturating_sub(self.spent)
    }

    /// Value that may still be escrowed.
    #[must_use]
    pub fn remaining_to_commit(&self) -> u64 {
        self.limit.saturating_sub(self.committed)
    }

    /// Records `amount` more signed value, or refuses it.
    pub fn spend(&mut self, amount: u64) -> Result<(), ClientError> {
        add_within(&mut self.spent, amount, self.limit)
    }

    /// Reserves `amount` more escrow, or refuses it.
    pub fn commit(&mut self, amount: u64) -> Result<(), ClientError> {
        add_within(&mut self.committed, amount, self.limit)
    }

    /// Gives back a reservation (a deposit that did not happen, a refund).
    pub fn release(&mut self, amount: u64) {
        self.committed = self.committed.saturating_sub(amount);
    }

    /// Adds a channel read back from disk.
    pub fn add_existing(&mut self, state: &ChannelState) {
        self.spent = self.spent.saturating_add(state.signed);
        self.committed = self.committed.saturating_add(state.exposure());
    }
}

impl ChannelState {
    /// The most this channel can cost: its deposit while it lives, the
    /// highest signed amount once closed.
    #[must_use]
    pub fn exposure(&self) -> u64 {
        match self.phase {
            Phase::Opening | Phase::Open | Phase::Closing => self.deposit,
            Phase::Closed => self.signed.max(self.settled),
        }
    }

    /// Whether a request of `price` can be paid without a top-up.
    #[must_use]
    pub fn can_pay(&self, price: u64) -> bool {
        self.phase == Phase::Open
            && (self.credit && self.last_voucher.is_some()
                || self
                    .accepted
                    .checked_add(price)
                    .is_some_and(|t| t <= self.deposit))
    }

    /// Escrow left above what the server accepted.
    #[must_use]
    pub fn headroom(&self) -> u64 {
        self.deposit.saturating_sub(self.accepted)
    }

    /// The voucher for the next request of `price`: the credit if there is
    /// one, else cumulative `accepted + price` (the identical voucher when
    /// that amount was signed last, so a retry is byte-for-byte the same).
    /// New signed value is charged to `budget`; the caller persists the
    /// state before sending the voucher.
    pub fn next_voucher(
        &mut self,
        key: &SigningKey,
        price: u64,
        now: i64,
        ttl: Option<Duration>,
        budget: &mut Budget,
    ) -> Result<SignedVoucher, ClientError> {
        if self.phase != Phase::Open {
            return Err(ClientError::ChannelNotOpen(self.address));
        }
        if self.credit
            && let Some(j) = &self.last_voucher
        {
            return Ok(SignedVoucher::try_from(j)?);
        }
        let target = self
            .accepted
            .checked_add(price)
            .ok_or(ClientError::Overflow)?;
        if target > self.deposit {
            return Err(ClientError::BudgetExhausted {
                needed: target.saturating_sub(self.deposit),
                remaining: self.headroom(),
            });
        }
        if let Some(j) = &self.last_voucher {
            let last = SignedVoucher::try_from(j)?;
            let fresh = match (last.voucher.expires_at, ttl) {
                (0, None) => true,
                (0, Some(_)) | (_, None) => false,
                (at, Some(ttl)) => {
                    let half = i64::try_from(ttl.as_secs() / 2).unwrap_or(i64::MAX);
                    at.saturating_sub(now) >= half
                }
            };
            if last.voucher.cumulative_amount == target && fresh {
                return Ok(last);
            }
        }
        budget.spend(target.saturating_sub(self.signed))?;
        let expires_at = match ttl {
            None => 0,
            Some(ttl) => now
                .checked_add(i64::try_from(ttl.as_secs()).map_err(|_| ClientError::Overflow)?)
                .ok_or(ClientError::Overflow)?,
        };
        let voucher = sign_v1(
            key,
            &VoucherV1 {
                channel_id: self.address.to_bytes(),
                cumulative_amount: target,
                expires_at,
            },
        );
        self.signed = self.signed.max(target);
        self.last_voucher = Some(SignedVoucherJson::try_from(&voucher)?);
        Ok(voucher)
    }

    /// The server served a request paid by a voucher for `cumulative`.
    pub fn on_paid(&mut self, cumulative: u64) {
        self.accepted = self.accepted.max(cumulative);
        self.credit = false;
    }

    /// The last voucher was not confirmed as paid (a 5xx, no confirming
    /// `PAYMENT-RESPONSE`, an answer from another origin): keep it as a
    /// credit, `accepted` unchanged.
    pub fn on_server_error(&mut self) {
        self.credit = self.last_voucher.is_some();
    }

    /// The server refused the last voucher without a resync hint.
    pub fn on_rejected(&mut self) {
        self.credit = false;
    }

    /// Follows a server's `lastAccepted` hint. Only values the client could
    /// have produced are followed: at least what it knows was accepted (and
    /// what settled on chain), at most what it ever signed. A server can
    /// therefore only claim vouchers the client really signed (and budgeted).
    pub fn resync(&mut self, hint: u64) -> Result<(), ClientError> {
        if hint < self.accepted || hint < self.settled || hint > self.signed {
            return Err(ClientError::UntrustedResync {
                hint,
                accepted: self.accepted,
                signed: self.signed,
            });
        }
        self.accepted = hint;
        self.credit = false;
        Ok(())
    }
}

/// The state directory: `channels/<address>.json` and `keys/<address>.key`
/// (the 32-byte session key seed, mode 0600).
#[derive(Clone, Debug)]
pub struct StateDir {
    root: Arc<PathBuf>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ClientError + '_ {
    move |source| ClientError::State {
        path: path.display().to_string(),
        source,
    }
}

fn create_dir(path: &Path) -> Result<(), ClientError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path).map_err(io_err(path))
}

/// Writes `bytes` to `dir/name` atomically and durably: a temp file in the
/// same directory (created with `mode`), fsync, rename over the target, fsync
/// of the directory.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> Result<(), ClientError> {
    let tmp = dir.join(format!(".{name}.{:016x}.tmp", rand::random::<u64>()));
    let target = dir.join(name);
    let result = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(mode);
        }
        #[cfg(not(unix))]
        let _ = mode;
        let mut file = options.open(&tmp).map_err(io_err(&tmp))?;
        file.write_all(bytes).map_err(io_err(&tmp))?;
        file.sync_all().map_err(io_err(&tmp))?;
        drop(file);
        fs::rename(&tmp, &target).map_err(io_err(&target))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(dir))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, ClientError> {
    let file = File::open(path).map_err(io_err(path))?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io_err(path))?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > limit {
        return Err(ClientError::CorruptState {
            path: path.display().to_string(),
            reason: format!("larger than {limit} bytes"),
        });
    }
    Ok(bytes)
}

impl StateDir {
    /// Opens (creating, mode 0700) a state directory.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, ClientError> {
        let root = root.into();
        create_dir(&root.join("channels"))?;
        create_dir(&root.join("keys"))?;
        Ok(Self {
            root: Arc::new(root),
        })
    }

    /// The directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.root
    }

    fn channels(&self) -> PathBuf {
        self.root.join("channels")
    }

    fn keys(&self) -> PathBuf {
        self.root.join("keys")
    }

    /// Persists a channel's state atomically.
    pub fn save(&self, state: &ChannelState) -> Result<(), ClientError> {
        let json = serde_json::to_vec_pretty(state).map_err(|e| ClientError::CorruptState {
            path: state.address.to_string(),
            reason: e.to_string(),
        })?;
        write_atomic(
            &self.channels(),
            &format!("{}.json", state.address),
            &json,
            0o600,
        )
    }

    /// Persists a channel's session key (mode 0600) atomically.
    pub fn save_key(&self, channel: &Pubkey, key: &SigningKey) -> Result<(), ClientError> {
        write_atomic(
            &self.keys(),
            &format!("{channel}.key"),
            key.as_bytes(),
            0o600,
        )
    }

    /// Forgets a channel (state and key), e.g. an `open` that never landed.
    pub fn remove(&self, channel: &Pubkey) -> Result<(), ClientError> {
        for path in [
            self.channels().join(format!("{channel}.json")),
            self.keys().join(format!("{channel}.key")),
        ] {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&path)(e)),
            }
        }
        let dir = self.channels();
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(&dir))
    }

    /// Reads one channel back with its session key.
    pub fn load_one(&self, channel: &Pubkey) -> Result<(ChannelState, SigningKey), ClientError> {
        let path = self.channels().join(format!("{channel}.json"));
        let corrupt = |reason: String| ClientError::CorruptState {
            path: path.display().to_string(),
            reason,
        };
        let bytes = read_bounded(&path, MAX_STATE_FILE)?;
        let state: ChannelState =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if state.version != STATE_VERSION {
            return Err(corrupt(format!("version {}", state.version)));
        }
        if state.address != *channel {
            return Err(corrupt(format!("holds channel {}", state.address)));
        }
        let key_path = self.keys().join(format!("{channel}.key"));
        let seed: [u8; 32] = read_bounded(&key_path, 32)?
            .as_slice()
            .try_into()
            .map_err(|_| corrupt("session key is not 32 bytes".into()))?;
        let key = SigningKey::from_bytes(&seed);
        if key.verifying_key().to_bytes() != state.signer.to_bytes() {
            return Err(corrupt("session key does not match the signer".into()));
        }
        Ok((state, key))
    }

    /// Reads every channel back (sorted by address).
    pub fn load(&self) -> Result<Vec<(ChannelState, SigningKey)>, ClientError> {
        let dir = self.channels();
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') {
                continue;
            }
            let Some(stem) = name.strip_suffix(".json") else {
                continue;
            };
            let channel: Pubkey = stem.parse().map_err(|_| ClientError::CorruptState {
                path: entry.path().display().to_string(),
                reason: "file name is not a channel address".into(),
            })?;
            out.push(self.load_one(&channel)?);
        }
        out.sort_by_key(|(s, _)| s.address);
        Ok(out)
    }
}
