//! One settler per store: a lease a settler must hold before each run.
//!
//! Several server replicas sharing a Redis store each run a settler of the
//! same payee; without coordination every one of them would scan the whole
//! store and send the same transactions. With [`SettleLease::Redis`] only
//! the replica holding `paychan:v1:settler-lease:<payee>` runs; the others
//! stand by (their runs are skipped, logged at debug and counted in
//! `paychan_settler_lease_skipped_runs_total`) and take over within a
//! renewal period once the holder releases the lease (on shutdown) or lets
//! it expire (a crash, a partition).
//!
//! The embedded redb store is used by one process by construction, and a
//! memory store by one settler: they need no lease ([`SettleLease::None`]).
use std::time::Duration;

/// Whether a settler must hold a lease before each run.
#[derive(Debug, Default)]
#[non_exhaustive]
pub enum SettleLease {
    /// No lease: this settler is the only one of its store (redb, memory).
    #[default]
    None,
    /// A lease in the Redis server of the shared store.
    #[cfg(feature = "redis")]
    Redis(RedisLease),
}

/// The lease could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("settler lease: {0}")]
pub struct LeaseError(pub String);

impl SettleLease {
    /// Takes the lease when it is free, renews it when this settler holds
    /// it: `true` when this settler may run, `false` when another holds it.
    pub async fn hold(&self) -> Result<bool, LeaseError> {
        match self {
            Self::None => Ok(true),
            #[cfg(feature = "redis")]
            Self::Redis(lease) => lease.hold().await,
        }
    }

    /// Gives the lease up (when this settler holds it) so another settler
    /// can take over at once instead of after the time to live.
    pub async fn release(&self) -> Result<(), LeaseError> {
        match self {
            Self::None => Ok(()),
            #[cfg(feature = "redis")]
            Self::Redis(lease) => lease.release().await,
        }
    }

    /// How often a holder renews the lease (during and between runs), and
    /// a standby settler tries to take it; `None` without a lease.
    pub fn renew_every(&self) -> Option<Duration> {
        match self {
            Self::None => None,
            #[cfg(feature = "redis")]
            Self::Redis(lease) => Some(lease.renew_every()),
        }
    }

    /// Whether there is a lease to hold.
    pub fn is_some(&self) -> bool {
        !matches!(self, Self::None)
    }
}

#[cfg(feature = "redis")]
pub use redis_lease::RedisLease;

#[cfg(feature = "redis")]
mod redis_lease {
    use std::time::Duration;

    use paychan_sdk::Pubkey;
    use redis::{
        Client, Script,
        aio::{ConnectionManager, ConnectionManagerConfig},
    };

    use super::LeaseError;

    /// Takes a free lease (`SET key owner NX PX ttl`) or renews this
    /// owner's (compare-and-set `PEXPIRE`), atomically. `KEYS[1]`: the
    /// lease; `ARGV[1]`: the owner id; `ARGV[2]`: the time to live (ms).
    /// Replies 1 when the owner holds the lease afterwards, else 0.
    const HOLD_LUA: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if holder then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
";

    /// Deletes the lease only if this owner holds it. Replies 1 when deleted.
    const RELEASE_LUA: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

    fn lease_error(what: &str, e: impl std::fmt::Display) -> LeaseError {
        LeaseError(format!("{what}: {e}"))
    }

    /// A settler lease in Redis, one per payee: the key
    /// `paychan:v1:settler-lease:<payee base58>` holds the owner id of the
    /// settler allowed to run, with a time to live.
    pub struct RedisLease {
        key: String,
        owner: String,
        ttl: Duration,
        connection: ConnectionManager,
        hold: Script,
        release: Script,
    }

    impl std::fmt::Debug for RedisLease {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("RedisLease")
                .field("key", &self.key)
                .field("owner", &self.owner)
                .field("ttl", &self.ttl)
                .finish_non_exhaustive()
        }
    }

    impl RedisLease {
        /// Prefix of the lease keys.
        pub const KEY_PREFIX: &str = "paychan:v1:settler-lease:";
        /// The default time to live: a crashed holder is replaced within it.
        pub const DEFAULT_TTL: Duration = Duration::from_secs(30);
        /// Connect and reply timeout.
        pub const TIMEOUT: Duration = Duration::from_secs(5);

        /// The lease key of `payee`'s settlers.
        #[must_use]
        pub fn key(payee: &Pubkey) -> String {
            format!("{}{payee}", Self::KEY_PREFIX)
        }

        /// Connects to `url` (`redis://host:port/db`) for the lease of
        /// `payee`'s settlers, under a fresh random owner id, with the time
        /// to live `ttl` (at least 30 ms; renewed every third of it).
        /// Must be called inside a tokio runtime, which then drives the
        /// connection.
        pub async fn connect(url: &str, payee: &Pubkey, ttl: Duration) -> Result<Self, LeaseError> {
            if ttl < Duration::from_millis(30) {
                return Err(LeaseError(format!(
                    "a time to live of {ttl:?} is too short"
                )));
            }
            let client = Client::open(url).map_err(|e| lease_error("redis URL", e))?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Self::TIMEOUT))
                .set_response_timeout(Some(Self::TIMEOUT))
                .set_number_of_retries(2)
                .set_min_delay(Duration::from_millis(50))
                .set_max_delay(Duration::from_secs(1));
            let connection = client
                .get_connection_manager_with_config(config)
                .await
                .map_err(|e| lease_error("connecting", e))?;
            let owner = format!("{}-{:032x}", std::process::id(), rand::random::<u128>());
            Ok(Self {
                key: Self::key(payee),
                owner,
                ttl,
                connection,
                hold: Script::new(HOLD_LUA),
                release: Script::new(RELEASE_LUA),
            })
        }

        /// This settler's owner id (the value of the key while it holds the lease).
        pub fn owner(&self) -> &str {
            &self.owner
        }

        /// The lease key.
        pub fn lease_key(&self) -> &str {
            &self.key
        }

        /// The time to live.
        pub fn ttl(&self) -> Duration {
            self.ttl
        }

        pub(crate) fn renew_every(&self) -> Duration {
            self.ttl / 3
        }

        fn ttl_ms(&self) -> u64 {
            u64::try_from(self.ttl.as_millis())
                .unwrap_or(u64::MAX)
                .max(1)
        }

        /// Takes or renews the lease: `true` when this settler holds it.
        pub async fn hold(&self) -> Result<bool, LeaseError> {
            let mut connection = self.connection.clone();
            let held: i64 = self
                .hold
                .key(&self.key)
                .arg(&self.owner)
                .arg(self.ttl_ms())
                .invoke_async(&mut connection)
                .await
                .map_err(|e| lease_error("holding", e))?;
            Ok(held == 1)
        }

        /// Releases the lease if this settler holds it.
        pub async fn release(&self) -> Result<(), LeaseError> {
            let mut connection = self.connection.clone();
            let _deleted: i64 = self
                .release
                .key(&self.key)
                .arg(&self.owner)
                .invoke_async(&mut connection)
                .await
                .map_err(|e| lease_error("releasing", e))?;
            Ok(())
        }
    }
}
