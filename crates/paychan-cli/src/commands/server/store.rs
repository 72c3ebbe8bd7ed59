//! The voucher store of a server: its spec (`redb:<path>` or
//! `redis://…`), redb's durability, and [`AnyStore`], the one store type
//! the verifier and settler are built over.
use std::{future::Future, path::PathBuf, str::FromStr, time::Duration};

use futures_util::future::Either;
use paychan_sdk::Pubkey;
use paychan_verifier::{
    AcceptOutcome, Accepted, SignedVoucher, StoreError, VoucherStore,
    store::{Durability, RedbStore, RedisStore},
};

use crate::error::CliError;

/// Where accepted vouchers live.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// An embedded redb file (one process at a time).
    Redb(PathBuf),
    /// A Redis server shared by replicas.
    Redis(String),
}

/// A Redis URL may carry a password: only its scheme, host and port are shown.
impl std::fmt::Debug for StoreSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Redb(path) => f.debug_tuple("Redb").field(path).finish(),
            Self::Redis(url) => f
                .debug_tuple("Redis")
                .field(&paychan_verifier::redact::url(url))
                .finish(),
        }
    }
}

impl FromStr for StoreSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Some(path) = s.strip_prefix("redb:") {
            if path.is_empty() {
                return Err("redb: needs a file path".into());
            }
            return Ok(Self::Redb(PathBuf::from(path)));
        }
        if s.starts_with("redis://") || s.starts_with("redis+unix://") {
            return Ok(Self::Redis(s.to_string()));
        }
        Err(format!(
            "store {:?} must be redb:<path> or redis://host:port/db",
            paychan_verifier::redact::text(s)
        ))
    }
}

/// Parses `sync` or `batched:<ms>` (1..=1000 ms).
pub fn parse_durability(s: &str) -> Result<Durability, String> {
    match s.trim() {
        "sync" => Ok(Durability::Sync),
        other => {
            let ms = other
                .strip_prefix("batched:")
                .and_then(|ms| ms.parse::<u64>().ok())
                .filter(|ms| (1..=1_000).contains(ms))
                .ok_or_else(|| {
                    format!("durability {other:?} must be sync or batched:<1..=1000 ms>")
                })?;
            Ok(Durability::Batched {
                interval: Duration::from_millis(ms),
            })
        }
    }
}

/// The store behind `--store`: redb or Redis.
// One per process, behind an `Arc`: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum AnyStore {
    /// redb.
    Redb(RedbStore),
    /// Redis.
    Redis(RedisStore),
}

impl std::fmt::Debug for AnyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Redb(_) => f.write_str("AnyStore::Redb"),
            Self::Redis(r) => write!(f, "AnyStore::{r:?}"),
        }
    }
}

impl VoucherStore for AnyStore {
    fn accept(
        &self,
        voucher: &SignedVoucher,
        floor: u64,
        min_increment: u64,
    ) -> impl Future<Output = Result<AcceptOutcome, StoreError>> + Send {
        match self {
            Self::Redb(s) => Either::Left(s.accept(voucher, floor, min_increment)),
            Self::Redis(s) => Either::Right(s.accept(voucher, floor, min_increment)),
        }
    }

    fn latest(&self, channel: &Pubkey) -> Result<Option<Accepted>, StoreError> {
        match self {
            Self::Redb(s) => s.latest(channel),
            Self::Redis(s) => s.latest(channel),
        }
    }

    fn fetch_latest(
        &self,
        channel: &Pubkey,
    ) -> impl Future<Output = Result<Option<Accepted>, StoreError>> + Send {
        match self {
            Self::Redb(s) => Either::Left(s.fetch_latest(channel)),
            Self::Redis(s) => Either::Right(s.fetch_latest(channel)),
        }
    }

    fn cached(&self, channel: &Pubkey) -> Option<paychan_verifier::Latest> {
        match self {
            Self::Redb(s) => s.cached(channel),
            Self::Redis(s) => s.cached(channel),
        }
    }

    fn all_latest(&self) -> Result<Vec<Accepted>, StoreError> {
        match self {
            Self::Redb(s) => s.all_latest(),
            Self::Redis(s) => s.all_latest(),
        }
    }
}

/// Opens the store (Redis connects synchronously, off the async workers).
pub fn open_store(spec: &StoreSpec, durability: Durability) -> Result<AnyStore, CliError> {
    let fail = |what: String, e: StoreError| CliError::Usage(format!("{what}: {e}"));
    match spec {
        StoreSpec::Redb(path) => RedbStore::open(path, durability)
            .map(AnyStore::Redb)
            .map_err(|e| fail(format!("opening the redb store {}", path.display()), e)),
        StoreSpec::Redis(url) => {
            let connect = || RedisStore::connect(url);
            let store = match tokio::runtime::Handle::try_current() {
                Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                    tokio::task::block_in_place(connect)
                }
                _ => connect(),
            };
            store.map(AnyStore::Redis).map_err(|e| {
                let url = paychan_verifier::redact::url(url);
                fail(format!("connecting to the Redis store {url}"), e)
            })
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_durabilities_are_validated() {
        assert_eq!(
            "redb:/tmp/v.redb".parse::<StoreSpec>(),
            Ok(StoreSpec::Redb("/tmp/v.redb".into()))
        );
        assert_eq!(
            "redis://127.0.0.1:6379/0".parse::<StoreSpec>(),
            Ok(StoreSpec::Redis("redis://127.0.0.1:6379/0".into()))
        );
        assert!("redb:".parse::<StoreSpec>().is_err());
        assert!("/tmp/v.redb".parse::<StoreSpec>().is_err());
        assert_eq!(parse_durability("sync"), Ok(Durability::Sync));
        assert_eq!(
            parse_durability("batched:5"),
            Ok(Durability::Batched {
                interval: Duration::from_millis(5)
            })
        );
        for bad in ["batched", "batched:0", "batched:1001", "fast"] {
            assert!(parse_durability(bad).is_err(), "{bad}");
        }
    }
}
