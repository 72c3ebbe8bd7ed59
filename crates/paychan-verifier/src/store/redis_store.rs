//! The Redis store: one Redis shared by every server replica.
//!
//! Each channel's latest accepted voucher lives at
//! `paychan:v1:latest:<channel base58>` as the 154-byte [`Accepted::encode`]
//! record. [`VoucherStore::accept`] is a single Lua script (run with
//! `EVALSHA`, loaded on demand) that applies [`decide`](super::decide) and
//! writes the new record atomically on the server, so any number of
//! replicas can accept vouchers of the same channel concurrently.
//!
//! Amounts are `u64`, but Lua numbers are doubles (exact only below 2^53):
//! the script handles each amount as two 32-bit halves, read from and
//! written as little-endian bytes, so every value and every intermediate
//! sum it computes stays below 2^33 and is exact.
//!
//! ## Durability
//! `accept` answers once Redis has acknowledged the script, that is once
//! the write is applied in Redis's memory. What survives a crash is the
//! server's persistence configuration:
//!
//! - `appendonly yes` + `appendfsync always`: Redis writes and fsyncs the
//!   AOF before it sends the replies of an event-loop iteration, so an
//!   acknowledged voucher is on disk, like [`RedbStore`](super::RedbStore)'s
//!   `Sync`. Recommended.
//! - `appendfsync everysec`: a crash of the Redis process loses nothing
//!   acknowledged; a crash of its host loses up to about two seconds.
//! - no AOF (RDB snapshots only): everything since the last snapshot.
//!
//! Replication is asynchronous and this store issues no `WAIT`/`WAITAOF`: a
//! failover to a replica can lose the vouchers it had not received yet.
//! A lost voucher is service given without payment, never a double charge
//! of a settled voucher: the settler can only claim what is stored.
//!
//! A timeout or a dropped connection makes `accept` fail although the
//! script may have run; the client's retry of the same voucher is then a
//! [`Duplicate`](AcceptOutcome::Duplicate), charged once.
//!
//! ## What a replica remembers
//! Each replica keeps, per channel (bounded, [`RedisStore::LOCAL_CHANNELS`]),
//! the latest voucher Redis reported to *it* as accepted or duplicate. That
//! is a floor of the shared state — cumulative amounts only grow — so
//! [`VoucherStore::cached`] lets the verifier refuse a stale voucher, or
//! answer a retry, without a round trip; everything else still goes to the
//! script, which has the last word.
//!
//! ## Connections
//! The async side runs on a dedicated I/O thread with its own tokio runtime,
//! so `accept`'s future works on any executor. It talks through a
//! [`ConnectionManager`], which reconnects after a failure (the failed
//! request itself is not retried); [`VoucherStore::fetch_latest`] (the
//! request path's read) goes the same way. [`VoucherStore::latest`] and
//! [`VoucherStore::all_latest`] are synchronous (tools and the settler):
//! they use a small pool of blocking connections (one per concurrent
//! caller, a broken one is dropped). Reads go to Redis and cache nothing, so
//! every replica sees every replica's writes.
use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, mpsc},
    thread::JoinHandle,
    time::Duration,
};

use parking_lot::Mutex;
use paychan_sdk::Pubkey;
use paychan_voucher::SignedVoucher;
use redis::{
    Client, Connection, Script,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use tokio::{runtime::Handle, sync::oneshot};

use super::{
    ACCEPTED_LEN, AcceptFuture, AcceptOutcome, Accepted, Latest, LatestFuture, StoreError,
    VoucherStore,
};

/// Blocking connections kept idle for `latest`/`all_latest`.
const MAX_IDLE: usize = 16;
/// Keys per `SCAN` step and per `MGET` in `all_latest`.
const BATCH: usize = 512;

/// The compare-and-swap: [`decide`](super::decide), applied server-side.
///
/// `KEYS[1]`: the channel's key. `ARGV[1]`: the new record (its `previous`
/// is rewritten here); `ARGV[2]`: the floor; `ARGV[3]`: the required
/// increment (≥ 1); amounts as 8 little-endian bytes.
/// Reply `{code, last (8 LE bytes or ""), record or ""}`: 1 accepted (the
/// record written), 2 duplicate (the stored record), 3 stale, 4 conflict,
/// 0 the stored record is corrupt.
const ACCEPT_LUA: &str = r"
local LEN, VOUCHER_LEN, AMOUNT_AT, TWO32 = 154, 146, 35, 4294967296
-- A u64 is {hi, lo}: two 32-bit halves, each exact in a double.
local function from_le(s, at)
  local b1, b2, b3, b4, b5, b6, b7, b8 = string.byte(s, at, at + 7)
  return {((b8 * 256 + b7) * 256 + b6) * 256 + b5, ((b4 * 256 + b3) * 256 + b2) * 256 + b1}
end
local function to_le(v)
  local out = {}
  for _, half in ipairs({v[2], v[1]}) do
    for _ = 1, 4 do
      local byte = half % 256
      out[#out + 1] = byte
      half = (half - byte) / 256
    end
  end
  return string.char(unpack(out))
end
local function less(a, b)
  return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2])
end
local function add(a, b) -- nil on overflow
  local lo, hi = a[2] + b[2], a[1] + b[1]
  if lo >= TWO32 then
    lo, hi = lo - TWO32, hi + 1
  end
  if hi >= TWO32 then
    return nil
  end
  return {hi, lo}
end

local new = ARGV[1]
if #new ~= LEN or #ARGV[2] ~= 8 or #ARGV[3] ~= 8 then
  return redis.error_reply('paychan: bad accept arguments')
end
local cumulative = from_le(new, AMOUNT_AT)
local last = from_le(ARGV[2], 1)
local increment = from_le(ARGV[3], 1)
local stored = redis.call('GET', KEYS[1])
if stored then
  if #stored ~= LEN then
    return {0, '', ''}
  end
  local current = from_le(stored, AMOUNT_AT)
  if current[1] == cumulative[1] and current[2] == cumulative[2] then
    if string.sub(stored, 1, VOUCHER_LEN) == string.sub(new, 1, VOUCHER_LEN) then
      return {2, '', stored}
    end
    return {4, '', ''}
  end
  if less(last, current) then
    last = current
  end
end
local required = add(last, increment)
if required == nil or less(cumulative, required) then
  return {3, to_le(last), ''}
end
local record = string.sub(new, 1, VOUCHER_LEN) .. to_le(last)
redis.call('SET', KEYS[1], record)
return {1, to_le(last), record}
";

const CODE_CORRUPT: i64 = 0;
const CODE_ACCEPTED: i64 = 1;
const CODE_DUPLICATE: i64 = 2;
const CODE_STALE: i64 = 3;
const CODE_CONFLICT: i64 = 4;

/// The script's reply: code, last accepted (LE bytes), record.
type Reply = (i64, Vec<u8>, Vec<u8>);
/// A request run on the I/O thread.
type IoFuture<T> = std::pin::Pin<Box<dyn Future<Output = redis::RedisResult<T>> + Send>>;

/// The Redis-backed store, shared by replicas.
pub struct RedisStore {
    client: Client,
    timeout: Duration,
    script: Arc<Script>,
    manager: ConnectionManager,
    io: Handle,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    idle: Mutex<Vec<Connection>>,
    /// The latest voucher Redis reported to this replica, per channel.
    local: Arc<quick_cache::sync::Cache<Pubkey, Latest>>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("server", &self.client.get_connection_info().addr())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl RedisStore {
    /// Prefix of every key this store writes.
    pub const KEY_PREFIX: &str = "paychan:v1:latest:";
    /// Connect, response and read timeout of [`RedisStore::connect`].
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
    /// Channels whose latest voucher a replica remembers (about 80 bytes each).
    pub const LOCAL_CHANNELS: usize = 100_000;

    /// The key of a channel's latest accepted voucher: the prefix and the
    /// channel in base58.
    #[must_use]
    pub fn key(channel: &Pubkey) -> String {
        format!("{}{channel}", Self::KEY_PREFIX)
    }

    /// Connects to `url` (`redis://host:port/db`, `rediss://` is not
    /// compiled in) with [`RedisStore::DEFAULT_TIMEOUT`].
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with_timeout(url, Self::DEFAULT_TIMEOUT)
    }

    /// Connects to `url`; `timeout` bounds connecting and every reply.
    /// Fails unless the server answers and accepts the script.
    pub fn connect_with_timeout(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        let client = Client::open(url).map_err(backend)?;
        let script = Arc::new(Script::new(ACCEPT_LUA));
        let mut first = open_blocking(&client, timeout)?;
        script.load(&mut first).map_err(backend)?;

        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(3)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1));
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let io_client = client.clone();
        let thread = std::thread::Builder::new()
            .name("paychan-redis-io".into())
            .spawn(move || io_loop(io_client, config, ready_tx, stop_rx))
            .map_err(backend)?;
        let ready = ready_rx
            .recv()
            .map_err(|_| StoreError::Backend("the redis I/O thread stopped".into()));
        let (manager, io) = match ready.and_then(|r| r) {
            Ok(ok) => ok,
            Err(e) => {
                drop(stop_tx);
                let _ = thread.join();
                return Err(e);
            }
        };
        Ok(Self {
            client,
            timeout,
            script,
            manager,
            io,
            stop: Mutex::new(Some(stop_tx)),
            thread: Mutex::new(Some(thread)),
            idle: Mutex::new(vec![first]),
            local: Arc::new(quick_cache::sync::Cache::new(Self::LOCAL_CHANNELS)),
        })
    }

    /// Runs `request` on the I/O thread's connection manager.
    fn on_io<T: Send + 'static>(
        &self,
        request: impl FnOnce(ConnectionManager) -> IoFuture<T>,
    ) -> impl Future<Output = Result<T, StoreError>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let call = request(self.manager.clone());
        // If the I/O thread is stopped, the task (and `tx`) is dropped.
        drop(self.io.spawn(async move {
            let _ = tx.send(call.await);
        }));
        async move { rx.await.map_err(|_| StoreError::Closed)?.map_err(backend) }
    }

    /// Stops the I/O thread: later `accept`s fail with [`StoreError::Closed`].
    /// `latest` and `all_latest` keep working.
    pub fn close(&self) {
        self.stop.lock().take();
        if let Some(h) = self.thread.lock().take() {
            let _ = h.join();
        }
    }

    /// Runs `f` on an idle blocking connection (or a new one). A connection
    /// whose command failed is dropped rather than reused.
    fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, StoreError> {
        let pooled = self.idle.lock().pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => open_blocking(&self.client, self.timeout)?,
        };
        let out = f(&mut conn).map_err(backend)?;
        let mut idle = self.idle.lock();
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
        Ok(out)
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        self.close();
    }
}

fn open_blocking(client: &Client, timeout: Duration) -> Result<Connection, StoreError> {
    let conn = client
        .get_connection_with_timeout(timeout)
        .map_err(backend)?;
    conn.set_read_timeout(Some(timeout)).map_err(backend)?;
    conn.set_write_timeout(Some(timeout)).map_err(backend)?;
    Ok(conn)
}

type Ready = Result<(ConnectionManager, Handle), StoreError>;

/// The I/O thread: a current-thread runtime that drives the connection
/// manager and the `accept` requests until `stop` fires or is dropped.
fn io_loop(
    client: Client,
    config: ConnectionManagerConfig,
    ready: mpsc::Sender<Ready>,
    stop: oneshot::Receiver<()>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let _ = ready.send(Err(backend(e)));
            return;
        }
    };
    runtime.block_on(async move {
        match client.get_connection_manager_with_config(config).await {
            Ok(manager) => {
                if ready.send(Ok((manager, Handle::current()))).is_ok() {
                    let _ = stop.await;
                }
            }
            Err(e) => {
                let _ = ready.send(Err(backend(e)));
            }
        }
    });
}

/// Turns the script's reply into the outcome, checking it fits the request.
fn parse_reply(
    voucher: &SignedVoucher,
    (code, last, record): Reply,
) -> Result<AcceptOutcome, StoreError> {
    let bad = |what: &str| StoreError::Backend(format!("unexpected accept script reply: {what}"));
    let last = || -> Result<u64, StoreError> {
        let bytes: [u8; 8] = last.as_slice().try_into().map_err(|_| bad("last"))?;
        Ok(u64::from_le_bytes(bytes))
    };
    match code {
        CODE_ACCEPTED => {
            let a = Accepted::decode(&record)?;
            if a.voucher != *voucher || a.previous != last()? {
                return Err(bad("the record written is not the voucher sent"));
            }
            Ok(AcceptOutcome::Accepted(a))
        }
        CODE_DUPLICATE => {
            let a = Accepted::decode(&record)?;
            if a.voucher != *voucher {
                return Err(bad("the duplicate is another voucher"));
            }
            Ok(AcceptOutcome::Duplicate(a))
        }
        CODE_STALE => Ok(AcceptOutcome::Stale {
            last_accepted: last()?,
        }),
        CODE_CONFLICT => Ok(AcceptOutcome::Conflict),
        CODE_CORRUPT => Err(StoreError::Corrupt("accepted voucher record")),
        _ => Err(bad("code")),
    }
}

/// Keeps `a` as this replica's floor of its channel's latest voucher, unless
/// it already knows a higher one (replies may arrive out of order).
fn remember(local: &quick_cache::sync::Cache<Pubkey, Latest>, a: &Accepted) {
    let channel = a.channel();
    let latest = a.latest();
    if local
        .get(&channel)
        .is_none_or(|known| known.cumulative < latest.cumulative)
    {
        local.insert(channel, latest);
    }
}

/// Decodes a stored record and checks it belongs to the key it was read from.
fn decode_stored(key: &[u8], bytes: &[u8]) -> Result<Accepted, StoreError> {
    let a = Accepted::decode(bytes)?;
    if RedisStore::key(&a.channel()).as_bytes() != key {
        return Err(StoreError::Corrupt("voucher stored under another channel"));
    }
    Ok(a)
}

impl VoucherStore for RedisStore {
    fn accept(&self, voucher: &SignedVoucher, floor: u64, min_increment: u64) -> impl AcceptFuture {
        let channel = Pubkey::new_from_array(voucher.voucher.channel_id);
        let key = RedisStore::key(&channel);
        let record: [u8; ACCEPTED_LEN] = Accepted {
            voucher: *voucher,
            previous: 0,
        }
        .encode();
        let increment = min_increment.max(1);
        let script = self.script.clone();
        let reply = self.on_io(move |mut manager| {
            Box::pin(async move {
                let mut call = script.prepare_invoke();
                call.key(key)
                    .arg(&record[..])
                    .arg(&floor.to_le_bytes()[..])
                    .arg(&increment.to_le_bytes()[..]);
                call.invoke_async::<Reply>(&mut manager).await
            })
        });
        let voucher = *voucher;
        let local = self.local.clone();
        async move {
            let outcome = parse_reply(&voucher, reply.await?)?;
            if let AcceptOutcome::Accepted(a) | AcceptOutcome::Duplicate(a) = &outcome {
                remember(&local, a);
            }
            Ok(outcome)
        }
    }

    fn latest(&self, channel: &Pubkey) -> Result<Option<Accepted>, StoreError> {
        let key = RedisStore::key(channel);
        let bytes: Option<Vec<u8>> = self.with_conn(|c| redis::cmd("GET").arg(&key).query(c))?;
        bytes.map(|b| decode_stored(key.as_bytes(), &b)).transpose()
    }

    fn fetch_latest(&self, channel: &Pubkey) -> impl LatestFuture {
        let key = RedisStore::key(channel);
        let get_key = key.clone();
        let bytes = self.on_io(move |mut manager| {
            Box::pin(async move {
                redis::cmd("GET")
                    .arg(&get_key)
                    .query_async::<Option<Vec<u8>>>(&mut manager)
                    .await
            })
        });
        async move {
            bytes
                .await?
                .map(|b| decode_stored(key.as_bytes(), &b))
                .transpose()
        }
    }

    fn cached(&self, channel: &Pubkey) -> Option<Latest> {
        self.local.get(channel)
    }

    fn all_latest(&self) -> Result<Vec<Accepted>, StoreError> {
        let pattern = format!("{}*", Self::KEY_PREFIX);
        self.with_conn(|c| {
            let mut found = HashMap::new();
            let mut cursor = 0u64;
            loop {
                let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(BATCH)
                    .query(c)?;
                if !keys.is_empty() {
                    let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET").arg(&keys).query(c)?;
                    // A key deleted since the SCAN reads as nil; SCAN may repeat a key.
                    for (key, value) in keys.into_iter().zip(values) {
                        if let Some(value) = value {
                            found.insert(key, value);
                        }
                    }
                }
                cursor = next;
                if cursor == 0 {
                    return Ok(found);
                }
            }
        })?
        .iter()
        .map(|(key, value)| decode_stored(key, value))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use paychan_voucher::VoucherV1;

    /// The script reads the cumulative amount at this offset (1-based 35).
    #[test]
    fn the_script_reads_the_cumulative_where_the_encoding_puts_it() {
        let v = VoucherV1 {
            channel_id: [7; 32],
            cumulative_amount: 0x0102_0304_0506_0708,
            expires_at: -1,
        };
        assert_eq!(v.encode()[34..42], v.cumulative_amount.to_le_bytes());
        assert!(super::ACCEPT_LUA.contains("AMOUNT_AT, TWO32 = 154, 146, 35,"));
        assert_eq!(super::ACCEPTED_LEN, 154);
    }
}
