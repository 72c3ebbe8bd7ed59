//! The settler as the server commands and `paychan settle` run it: its
//! options, the lease it holds over a shared store, and the task it runs in.
use std::{sync::Arc, time::Duration};

use paychan_sdk::Pubkey;
use paychan_settler::{MintAccounts, RedisLease, SettleLease, Settler, SettlerConfig};
use paychan_verifier::VoucherStore;
use solana_keypair::Keypair;
use solana_rpc_client::nonblocking::rpc_client::RpcClient;

use super::store::StoreSpec;
use crate::error::CliError;

/// How the settler runs (flags shared by `serve`, `facilitator` and `settle`).
#[derive(Clone, Debug)]
pub struct SettlerOptions {
    /// Per-channel threshold, base units.
    pub threshold: u64,
    /// Seconds between due-checks.
    pub interval: Duration,
    /// Seconds between sweeps.
    pub sweep_interval: Duration,
    /// Close a channel at once when its payer requests it.
    pub close_on_request: bool,
    /// Address lookup table for settle transactions.
    pub lookup_table: paychan_settler::LookupTableMode,
    /// Sweep every channel when the settler starts.
    pub sweep_on_start: bool,
    /// How often a sent transaction's status is polled [default: the
    /// settler's].
    pub confirm_poll: Option<Duration>,
}

/// A settler of `payee`'s channels in `mint`, over its own RPC client.
pub fn build_settler<S: VoucherStore>(
    rpc_url: &str,
    commitment: solana_commitment_config::CommitmentConfig,
    payee: Keypair,
    mint: MintAccounts,
    options: &SettlerOptions,
    store: S,
) -> Result<Settler<S>, CliError> {
    let mut config = SettlerConfig::new(payee, mint);
    config.interval = options.interval;
    config.sweep_interval = options.sweep_interval;
    config.close_on_request = options.close_on_request;
    config.lookup_table = options.lookup_table;
    config.sweep_on_start = options.sweep_on_start;
    if let Some(poll) = options.confirm_poll {
        config.confirm_poll = poll;
    }
    if options.lookup_table != paychan_settler::LookupTableMode::Off {
        config.max_vouchers_per_tx = paychan_settler::MAX_VOUCHERS_PER_TX_WITH_TABLE;
    }
    config.commitment = commitment;
    let rpc = Arc::new(RpcClient::new_with_commitment(
        rpc_url.to_string(),
        commitment,
    ));
    Settler::new(config, store, rpc)
        .map_err(|e| CliError::Usage(format!("configuring the settler: {e}")))
}

/// The lease a settler of `payee`'s channels in this store must hold to
/// run: with a Redis store shared by replicas, one settler per payee at a
/// time ([`RedisLease`], the others stand by and take over when it stops);
/// a redb store is used by one process by construction and needs none.
pub async fn settler_lease(spec: &StoreSpec, payee: &Pubkey) -> Result<SettleLease, CliError> {
    match spec {
        StoreSpec::Redb(_) => Ok(SettleLease::None),
        StoreSpec::Redis(url) => RedisLease::connect(url, payee, RedisLease::DEFAULT_TTL)
            .await
            .map(SettleLease::Redis)
            .map_err(|e| CliError::Usage(format!("the settler lease in {url}: {e}"))),
    }
}

/// Runs [`Settler::run`] in a task until `stop` fires (or is dropped).
pub fn spawn_settler<S: VoucherStore + 'static>(
    settler: Arc<Settler<S>>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut stop = stop;
        settler
            .run(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// A free loopback port (bound, then released).
    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// A Redis store gets a Redis settler lease of the payee (one settler
    /// among the replicas); a redb store none; an unreachable Redis is a
    /// usage error naming the lease.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn settlers_of_a_redis_store_take_a_lease() {
        let payee = Pubkey::new_unique();
        let redb = settler_lease(&StoreSpec::Redb("v.redb".into()), &payee).await;
        assert!(matches!(redb, Ok(SettleLease::None)), "{redb:?}");

        let closed = format!("redis://127.0.0.1:{}/", free_port());
        match settler_lease(&StoreSpec::Redis(closed), &payee).await {
            Err(CliError::Usage(m)) => assert!(m.contains("settler lease"), "{m}"),
            other => panic!("{other:?}"),
        }

        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let mut server = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server on PATH (apt-get install redis-server)");
        let url = format!("redis://127.0.0.1:{port}/");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let lease = loop {
            match settler_lease(&StoreSpec::Redis(url.clone()), &payee).await {
                Ok(lease) => break lease,
                Err(e) => {
                    assert!(std::time::Instant::now() < deadline, "{e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        let other = settler_lease(&StoreSpec::Redis(url), &payee).await.unwrap();
        let held = (lease.hold().await, other.hold().await);
        let _ = server.kill();
        let _ = server.wait();
        let SettleLease::Redis(redis) = &lease else {
            panic!("{lease:?}");
        };
        assert_eq!(redis.lease_key(), RedisLease::key(&payee));
        assert_eq!(redis.ttl(), RedisLease::DEFAULT_TTL);
        assert_eq!(
            (held.0.unwrap(), held.1.unwrap()),
            (true, false),
            "one settler of the payee holds it"
        );
    }
}
