//! The embedded durable store: redb with group commit.
//!
//! The compare-and-swap runs on an in-memory index under one lock (this
//! process owns the file); accepted vouchers are queued, in order, to one
//! writer thread that commits them in batches with `Durability::Immediate`
//! (fsync).
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
    future::Future,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anchor_lang::prelude::Pubkey;
use parking_lot::Mutex;
use paychan_voucher::SignedVoucher;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::oneshot;

use super::{AcceptOutcome, Accepted, StoreError, VoucherStore, decide};

const TABLE: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("latest_voucher");
/// Most vouchers in one commit.
const MAX_BATCH: usize = 4_096;

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

/// The redb-backed store.
pub struct RedbStore {
    index: Mutex<HashMap<Pubkey, Accepted>>,
    tx: Mutex<Option<mpsc::Sender<Cmd>>>,
    durability: Durability,
    poisoned: Arc<AtomicBool>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl RedbStore {
    /// Opens (or creates) the store at `path` and loads its index.
    pub fn open(path: impl AsRef<Path>, durability: Durability) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(backend)?;
        let mut index = HashMap::new();
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
                index.insert(accepted.channel(), accepted);
            }
        }
        let (tx, rx) = mpsc::channel();
        let poisoned = Arc::new(AtomicBool::new(false));
        let interval = match durability {
            Durability::Sync => Duration::ZERO,
            Durability::Batched { interval } => interval,
        };
        let writer = {
            let poisoned = poisoned.clone();
            std::thread::Builder::new()
                .name("paychan-redb-writer".into())
                .spawn(move || writer_loop(db, rx, interval, poisoned))
                .map_err(backend)?
        };
        Ok(Self {
            index: Mutex::new(index),
            tx: Mutex::new(Some(tx)),
            durability,
            poisoned,
            writer: Mutex::new(Some(writer)),
        })
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
        self.index.lock().len()
    }

    /// Whether no voucher was accepted yet.
    pub fn is_empty(&self) -> bool {
        self.index.lock().is_empty()
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
        let outcome = decide(index.get(&channel), voucher, floor, min_increment);
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
            self.send(Cmd::Put(a, notify))?;
            index.insert(channel, a);
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
    fn accept(
        &self,
        voucher: &SignedVoucher,
        floor: u64,
        min_increment: u64,
    ) -> impl Future<Output = Result<AcceptOutcome, StoreError>> + Send {
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
        Ok(self.cached(channel))
    }

    fn cached(&self, channel: &Pubkey) -> Option<Accepted> {
        self.index.lock().get(channel).copied()
    }

    fn all_latest(&self) -> Result<Vec<Accepted>, StoreError> {
        Ok(self.index.lock().values().copied().collect())
    }
}

fn writer_loop(
    db: Database,
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
            commit(&db, &batch).map_err(|e| e.to_string())
        };
        if result.is_err() {
            poisoned.store(true, Ordering::Release);
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
