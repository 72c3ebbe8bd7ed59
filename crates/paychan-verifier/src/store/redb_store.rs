//! The embedded durable store: redb with group commit.
//!
//! The compare-and-swap runs on an in-memory index under one lock (this
//! process owns the file); accepted vouchers are queued, in order, to one
//! writer thread that commits them in batches with `Durability::Immediate`
//! (fsync).
//!
//! The index keeps 32 bytes per channel ([`Latest`]: cumulative, previous,
//! voucher id) in a dense table; full vouchers are read back from the file,
//! or from the small map of vouchers accepted but not yet committed. redb's
//! own page cache is capped ([`DEFAULT_CACHE_BYTES`]): the store only
//! appends and rarely reads.
//!
//! - [`Durability::Sync`]: `accept` answers after the commit that holds the
//!   voucher. Concurrent requests share commits (group commit).
//! - [`Durability::Batched`]: `accept` answers at once; the writer commits
//!   at least every `interval`. A crash loses at most the vouchers
//!   acknowledged during the last `interval` plus one commit.
//!
//! A failed commit poisons the store: every later `accept` fails, so nothing
//! is ever served on the strength of a write that did not reach disk.
use std::{
    collections::HashMap,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use paychan_sdk::Pubkey;
use paychan_voucher::SignedVoucher;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::oneshot;

use super::{AcceptFuture, AcceptOutcome, Accepted, Latest, StoreError, VoucherStore, decide};
use crate::table::DenseMap;

const TABLE: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("latest_voucher");
/// Most vouchers in one commit.
const MAX_BATCH: usize = 4_096;
/// redb's page cache used by [`RedbStore::open`].
pub const DEFAULT_CACHE_BYTES: usize = 8 << 20;

/// When `accept` may answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// After the voucher is committed and fsync'd.
    Sync,
    /// At once; committed within `interval`.
    Batched {
        /// Longest time an acknowledged voucher waits for its commit.
        interval: Duration,
    },
}

/// Resolves once the commit holding a voucher is done.
type CommitWait = oneshot::Receiver<Result<(), String>>;

enum Cmd {
    Put(Accepted, Option<oneshot::Sender<Result<(), String>>>),
    Flush(oneshot::Sender<Result<(), String>>),
}

/// What the store holds in memory.
#[derive(Default)]
struct Index {
    /// Every channel's latest accepted voucher, compactly.
    latest: DenseMap<Latest>,
    /// Accepted vouchers not committed yet (pruned by the writer).
    pending: HashMap<Pubkey, Accepted>,
}

/// The redb-backed store.
pub struct RedbStore {
    index: Arc<Mutex<Index>>,
    db: Arc<Database>,
    tx: Mutex<Option<mpsc::Sender<Cmd>>>,
    durability: Durability,
    poisoned: Arc<AtomicBool>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl RedbStore {
    /// Opens (or creates) the store at `path` with a
    /// [`DEFAULT_CACHE_BYTES`] page cache and loads its index.
    pub fn open(path: impl AsRef<Path>, durability: Durability) -> Result<Self, StoreError> {
        Self::open_with_cache(path, durability, DEFAULT_CACHE_BYTES)
    }

    /// [`Self::open`] with redb's page cache capped at `cache_bytes`.
    pub fn open_with_cache(
        path: impl AsRef<Path>,
        durability: Durability,
        cache_bytes: usize,
    ) -> Result<Self, StoreError> {
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .create(path)
            .map_err(backend)?;
        let mut index = Index::default();
        {
            let w = db.begin_write().map_err(backend)?;
            w.open_table(TABLE).map_err(backend)?;
            w.commit().map_err(backend)?;
            let r = db.begin_read().map_err(backend)?;
            let table = r.open_table(TABLE).map_err(backend)?;
            for row in table.iter().map_err(backend)? {
                let (k, v) = row.map_err(backend)?;
                let accepted = Accepted::decode(v.value())?;
                if accepted.channel().to_bytes() != *k.value() {
                    return Err(StoreError::Corrupt("voucher stored under another channel"));
                }
                index
                    .latest
                    .insert(*k.value(), accepted.latest())
                    .map_err(backend)?;
            }
        }
        let db = Arc::new(db);
        let index = Arc::new(Mutex::new(index));
        let (tx, rx) = mpsc::channel();
        let poisoned = Arc::new(AtomicBool::new(false));
        let interval = match durability {
            Durability::Sync => Duration::ZERO,
            Durability::Batched { interval } => interval,
        };
        let writer = {
            let (db, index, poisoned) = (db.clone(), index.clone(), poisoned.clone());
            std::thread::Builder::new()
                .name("paychan-redb-writer".into())
                .spawn(move || writer_loop(&db, &index, rx, interval, poisoned))
                .map_err(backend)?
        };
        Ok(Self {
            index,
            db,
            tx: Mutex::new(Some(tx)),
            durability,
            poisoned,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// The committed record of `channel`.
    fn read(&self, channel: &Pubkey) -> Result<Option<Accepted>, StoreError> {
        let r = self.db.begin_read().map_err(backend)?;
        let table = r.open_table(TABLE).map_err(backend)?;
        table
            .get(&channel.to_bytes())
            .map_err(backend)?
            .map(|v| Accepted::decode(v.value()))
            .transpose()
    }

    /// Waits until everything accepted so far is committed.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        self.send(Cmd::Flush(done))?;
        wait.await
            .map_err(|_| StoreError::Closed)?
            .map_err(StoreError::Backend)
    }

    /// Commits what is queued and stops the writer.
    pub fn close(&self) {
        self.tx.lock().take();
        if let Some(h) = self.writer.lock().take() {
            let _ = h.join();
        }
    }

    /// Number of channels with an accepted voucher.
    pub fn len(&self) -> usize {
        self.index.lock().latest.len()
    }

    /// Whether no voucher was accepted yet.
    pub fn is_empty(&self) -> bool {
        self.index.lock().latest.is_empty()
    }

    fn send(&self, cmd: Cmd) -> Result<(), StoreError> {
        match self.tx.lock().as_ref() {
            Some(tx) => tx.send(cmd).map_err(|_| StoreError::Closed),
            None => Err(StoreError::Closed),
        }
    }

    /// The compare-and-swap; queues an accepted voucher for the writer while
    /// holding the index lock, so the writer sees vouchers in acceptance order.
    fn accept_and_queue(
        &self,
        voucher: &SignedVoucher,
        floor: u64,
        min_increment: u64,
    ) -> Result<(AcceptOutcome, Option<CommitWait>), StoreError> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(StoreError::Backend("an earlier commit failed".into()));
        }
        let channel = Pubkey::new_from_array(voucher.voucher.channel_id);
        let mut index = self.index.lock();
        let outcome = decide(
            index.latest.get(&channel.to_bytes()),
            voucher,
            floor,
            min_increment,
        );
        let mut wait = None;
        if let AcceptOutcome::Accepted(a) = outcome {
            let notify = match self.durability {
                Durability::Sync => {
                    let (done, rx) = oneshot::channel();
                    wait = Some(rx);
                    Some(done)
                }
                Durability::Batched { .. } => None,
            };
            // The index first: it can refuse (past u32::MAX channels), and
            // then nothing is queued. A failed send means the store is shut
            // down, and every later `accept` fails the same way.
            index
                .latest
                .insert(channel.to_bytes(), a.latest())
                .map_err(backend)?;
            index.pending.insert(channel, a);
            self.send(Cmd::Put(a, notify))?;
        }
        Ok((outcome, wait))
    }
}

impl Drop for RedbStore {
    fn drop(&mut self) {
        self.close();
    }
}

impl VoucherStore for RedbStore {
    fn accept(&self, voucher: &SignedVoucher, floor: u64, min_increment: u64) -> impl AcceptFuture {
        let queued = self.accept_and_queue(voucher, floor, min_increment);
        async move {
            let (outcome, wait) = queued?;
            if let Some(wait) = wait {
                wait.await
                    .map_err(|_| StoreError::Closed)?
                    .map_err(StoreError::Backend)?;
            }
            Ok(outcome)
        }
    }

    fn latest(&self, channel: &Pubkey) -> Result<Option<Accepted>, StoreError> {
        // Pruned from `pending` only once committed, so a miss here is on disk.
        if let Some(a) = self.index.lock().pending.get(channel) {
            return Ok(Some(*a));
        }
        self.read(channel)
    }

    fn cached(&self, channel: &Pubkey) -> Option<Latest> {
        self.index.lock().latest.get(&channel.to_bytes()).copied()
    }

    fn all_latest(&self) -> Result<Vec<Accepted>, StoreError> {
        let pending = self.index.lock().pending.clone();
        let r = self.db.begin_read().map_err(backend)?;
        let table = r.open_table(TABLE).map_err(backend)?;
        let mut all = Vec::new();
        for row in table.iter().map_err(backend)? {
            let (k, v) = row.map_err(backend)?;
            let committed = Accepted::decode(v.value())?;
            let key = Pubkey::new_from_array(*k.value());
            // A newer voucher may be accepted and not committed yet.
            all.push(match pending.get(&key) {
                Some(p)
                    if p.voucher.voucher.cumulative_amount
                        > committed.voucher.voucher.cumulative_amount =>
                {
                    *p
                }
                _ => committed,
            });
        }
        let on_disk: std::collections::HashSet<Pubkey> =
            all.iter().map(Accepted::channel).collect();
        all.extend(
            pending
                .into_values()
                .filter(|p| !on_disk.contains(&p.channel())),
        );
        Ok(all)
    }
}

fn writer_loop(
    db: &Database,
    index: &Mutex<Index>,
    rx: mpsc::Receiver<Cmd>,
    interval: Duration,
    poisoned: Arc<AtomicBool>,
) {
    while let Ok(first) = rx.recv() {
        let flush_now = matches!(first, Cmd::Flush(_));
        let mut batch = vec![first];
        let deadline = Instant::now() + interval;
        while !flush_now && batch.len() < MAX_BATCH {
            let now = Instant::now();
            let next = if now >= deadline {
                rx.try_recv().ok()
            } else {
                rx.recv_timeout(deadline - now).ok()
            };
            match next {
                Some(cmd @ Cmd::Flush(_)) => {
                    batch.push(cmd);
                    break;
                }
                Some(cmd) => batch.push(cmd),
                None => break,
            }
        }
        let result = if poisoned.load(Ordering::Acquire) {
            Err("an earlier commit failed".to_string())
        } else {
            commit(db, &batch).map_err(|e| e.to_string())
        };
        if result.is_err() {
            poisoned.store(true, Ordering::Release);
        } else {
            // Committed: readers find these on disk now.
            let mut index = index.lock();
            for cmd in &batch {
                if let Cmd::Put(a, _) = cmd
                    && index.pending.get(&a.channel()).is_some_and(|p| p == a)
                {
                    index.pending.remove(&a.channel());
                }
            }
            // A burst must not pin its peak allocation for the process's life.
            if index.pending.capacity() > 4 * index.pending.len().max(256) {
                index.pending.shrink_to_fit();
            }
        }
        for cmd in batch {
            let waiter = match cmd {
                Cmd::Put(_, w) => w,
                Cmd::Flush(w) => Some(w),
            };
            if let Some(w) = waiter {
                let _ = w.send(result.clone());
            }
        }
    }
}

fn commit(db: &Database, batch: &[Cmd]) -> Result<(), redb::Error> {
    let puts = batch.iter().filter_map(|c| match c {
        Cmd::Put(a, _) => Some(a),
        Cmd::Flush(_) => None,
    });
    let mut w = db.begin_write()?;
    w.set_durability(redb::Durability::Immediate)?;
    {
        let mut table = w.open_table(TABLE)?;
        for a in puts {
            table.insert(&a.channel().to_bytes(), &a.encode()[..])?;
        }
    }
    w.commit()?;
    Ok(())
}
