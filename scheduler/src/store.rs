//! Durable state: a small key-value store of JSON documents. Keys are `/`-separated paths such
//! as `apps/shop_web` or `instances/<id>`. The embedded backend keeps one file per key under the
//! data directory, written atomically (temporary file, rename), with a journal that makes a batch
//! of changes durable with one flush (see [`FileStore`]); records that reconciliation can restore
//! (instances) are appended to a [`RecordLog`] without a flush.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use thiserror::Error;

use crate::record_log::{Change, RecordLog};

/// A store operation failed.
#[derive(Debug, Error)]
#[error("state store: {op} '{key}' failed: {source}; check that the data directory is writable and has space")]
pub struct StoreError {
    op: &'static str,
    key: String,
    #[source]
    source: std::io::Error,
}

impl StoreError {
    /// An error of operation `op` on `key`.
    pub fn new(op: &'static str, key: &str, source: std::io::Error) -> Self {
        Self { op, key: key.to_string(), source }
    }
}

/// The most bytes of keys and values [`Store::put_many_relaxed`] puts in one ZooKeeper request.
pub const RELAXED_BATCH_BYTES: usize = 512 * 1024;

/// The state store in use.
#[derive(Debug, Clone)]
pub enum Store {
    /// Files under a data directory.
    Files(FileStore),
    /// ZooKeeper nodes, fenced by our election node.
    Zk(Box<crate::zk::store::ZkStore>),
    /// One redb database under a data directory (`--store-engine redb`).
    Redb(crate::redb_store::RedbStore),
}

impl Store {
    /// Writes `value` under `key`, durably, before returning.
    pub async fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        match self {
            Store::Files(f) => f.put(key, value).await,
            Store::Redb(r) => r.put(key, value).await,
            Store::Zk(z) => z.put(key, value).await,
        }
    }

    /// Removes `key` (absent keys are fine). Keys written by [`Store::put_many_relaxed`] are
    /// removed by [`Store::delete_many_relaxed`].
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self {
            Store::Files(f) => f.delete(key).await,
            Store::Redb(r) => r.delete(key).await,
            Store::Zk(z) => z.delete(key).await,
        }
    }

    /// Reads `key`.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Store::Files(f) => f.get(key).await,
            Store::Redb(r) => r.get(key).await,
            Store::Zk(z) => z.get(key).await,
        }
    }

    /// Writes several keys, to be made durable by the next [`Store::sync`]: a batch of changes
    /// then waits for the disk once, not once per change. On ZooKeeper the write is durable at
    /// once (one multi-op). On files each key is replaced atomically at the sync; until then
    /// reads see the old value, and a later put or delete of the key supersedes it.
    pub async fn put_many_deferred(&self, items: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        match self {
            Store::Files(f) => f.put_deferred(items),
            Store::Redb(r) => r.put_deferred(items).await,
            Store::Zk(z) => z.put_many(items).await,
        }
    }

    /// Makes every [`Store::put_many_deferred`] write durable. A failure leaves their outcome
    /// unknown: the caller must not acknowledge them and should stop.
    pub async fn sync(&self) -> Result<(), StoreError> {
        match self {
            Store::Files(f) => f.sync().await,
            Store::Redb(r) => r.sync().await,
            Store::Zk(_) => Ok(()),
        }
    }

    /// Writes several records that reconciliation can restore: on files appended to the record
    /// log without waiting for the disk; on ZooKeeper in multi-ops of at most
    /// [`RELAXED_BATCH_BYTES`] each (it refuses a request above its `jute.maxbuffer`, 1 MiB by
    /// default).
    pub async fn put_many_relaxed(&self, items: Vec<(String, Vec<u8>)>) -> Result<(), StoreError> {
        match self {
            Store::Files(f) => f.put_relaxed(items).await,
            Store::Redb(r) => r.put_relaxed(items).await,
            Store::Zk(z) => {
                let mut rest = &items[..];
                while !rest.is_empty() {
                    let mut bytes = 0;
                    let n = rest
                        .iter()
                        .take_while(|(k, v)| {
                            bytes += k.len() + v.len();
                            bytes <= RELAXED_BATCH_BYTES
                        })
                        .count()
                        .max(1);
                    z.put_many(&rest[..n]).await?;
                    rest = &rest[n..];
                }
                Ok(())
            }
        }
    }

    /// Removes records written by [`Store::put_many_relaxed`] (absent keys are fine): on files
    /// with one append to the record log.
    pub async fn delete_many_relaxed(&self, keys: Vec<String>) -> Result<(), StoreError> {
        match self {
            Store::Files(f) => f.delete_relaxed(keys).await,
            Store::Redb(r) => r.delete_relaxed(keys).await,
            Store::Zk(z) => {
                for key in &keys {
                    z.delete(key).await?;
                }
                Ok(())
            }
        }
    }

    /// Every key directly under `prefix` with its value, sorted by key.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        match self {
            Store::Files(f) => f.list(prefix).await,
            Store::Redb(r) => r.list(prefix).await,
            Store::Zk(z) => z.list(prefix).await,
        }
    }

    /// The keys directly under `prefix`, sorted, without reading their values. Only for keys
    /// written durably ([`Store::put`], [`Store::put_many_deferred`]): relaxed records (the
    /// record log's) are not looked at, so listing stays cheap beside 100,000s of instances.
    pub async fn keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        match self {
            Store::Files(f) => f.keys(prefix).await,
            Store::Redb(r) => r.keys(prefix).await,
            Store::Zk(z) => z.keys(prefix).await,
        }
    }

    /// Removes several keys written durably, made durable by the next [`Store::sync`] like
    /// [`Store::put_many_deferred`] (on ZooKeeper at once). Absent keys are fine.
    pub async fn delete_many_deferred(&self, keys: &[String]) -> Result<(), StoreError> {
        match self {
            Store::Files(f) => f.delete_deferred(keys),
            Store::Redb(r) => r.delete_deferred(keys).await,
            Store::Zk(z) => {
                for key in keys {
                    z.delete(key).await?;
                }
                Ok(())
            }
        }
    }
}

/// One file per key under a root directory, plus a journal for deferred writes and a record log
/// for relaxed ones.
///
/// A key is written either always durably ([`Store::put`], [`Store::put_many_deferred`]) or always
/// relaxed ([`Store::put_many_relaxed`], kept in the [`RecordLog`] under `log/`): where both
/// hold a value, reads return the log's.
///
/// [`Store::put_many_deferred`] only notes a change; [`Store::sync`] writes all noted changes as
/// one journal file under `journal/` (one flush to disk, however many keys) and returns. The
/// applier thread then writes them to the key files without flushing those (reads meanwhile see
/// them from memory); every [`CHECKPOINT_EVERY`] journal files it flushes the key files written
/// and removes those journal files. Opening the store replays whatever journal files remain
/// (after a crash) before anything is read.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
    journal: Arc<Mutex<Journal>>,
    log: Arc<Mutex<RecordLog>>,
    applier: Arc<Applier>,
}

/// One synced journal file for the applier: its sequence number, path and records.
type Synced = (u64, PathBuf, Vec<(String, Option<Vec<u8>>)>);

/// The thread that applies synced journal files to the key files, in order, off the syncing
/// caller's path, and checkpoints them. Dropping the last handle lets it finish and waits for it.
#[derive(Debug)]
struct Applier {
    tx: Option<std::sync::mpsc::Sender<Synced>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Applier {
    fn start(root: PathBuf, journal: Arc<Mutex<Journal>>) -> Result<Self, StoreError> {
        let (tx, rx) = std::sync::mpsc::channel::<Synced>();
        let thread = std::thread::Builder::new()
            .name("state-applier".into())
            .spawn(move || {
                for (seq, path, records) in rx {
                    let result = apply(&root, &records);
                    let mut j = lock_journal(&journal);
                    if let Err(e) = result {
                        tracing::error!(error = %e, "could not apply the state journal to the state files; the journal keeps the changes");
                        j.apply_failed = Some(e.to_string());
                        return;
                    }
                    for (key, _) in &records {
                        if j.unapplied.get(key).is_some_and(|(s, _)| *s == seq) {
                            j.unapplied.remove(key);
                        }
                    }
                    j.unflushed.push((seq, path));
                    let due = j.unflushed.len() >= CHECKPOINT_EVERY;
                    let keys: Vec<String> =
                        if due { j.journaled.iter().filter(|(_, s)| **s <= seq).map(|(k, _)| k.clone()).collect() } else { Vec::new() };
                    drop(j);
                    if due {
                        checkpoint(&root, &journal, seq, &keys);
                    }
                }
            })
            .map_err(|e| StoreError::new("start", JOURNAL_DIR, e))?;
        Ok(Self { tx: Some(tx), thread: Some(thread) })
    }

    fn send(&self, synced: Synced) {
        if let Some(tx) = &self.tx {
            // A stopped applier has recorded why in `apply_failed`, which the next sync reports.
            let _ = tx.send(synced);
        }
    }
}

impl Drop for Applier {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock_journal(journal: &Mutex<Journal>) -> std::sync::MutexGuard<'_, Journal> {
    journal.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Flushes the key files written by journal files up to `upto`, then removes those journal
/// files. A key rewritten meanwhile has a newer journal file, which stays.
fn checkpoint(root: &Path, journal: &Mutex<Journal>, upto: u64, keys: &[String]) {
    if let Err(e) = flush_keys(root, keys) {
        tracing::warn!(error = %e, "could not flush state files; the journal keeps them and the flush is retried");
        return;
    }
    let mut j = lock_journal(journal);
    let (done, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut j.unflushed).into_iter().partition(|(seq, _)| *seq <= upto);
    j.unflushed = kept;
    j.journaled.retain(|_, seq| *seq > upto);
    drop(j);
    for (_, path) in done {
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!(error = %e, path = %path.display(), "could not remove a flushed journal file");
        }
    }
}

/// The journal's bookkeeping (behind the store's one lock; no I/O happens under it).
#[derive(Debug, Default)]
struct Journal {
    /// Changes noted since the last sync: key → new value (None: deleted).
    pending: BTreeMap<String, Option<Vec<u8>>>,
    /// Sequence number of the next journal file.
    next_seq: u64,
    /// Journal files applied to the key files whose flush is still due, oldest first.
    unflushed: Vec<(u64, PathBuf)>,
    /// Keys written by journal files not yet checkpointed, with the newest journal that wrote each.
    journaled: BTreeMap<String, u64>,
    /// Synced changes the applier has not written to the key files yet: key → (journal, value).
    /// Reads look here first.
    unapplied: BTreeMap<String, (u64, Option<Vec<u8>>)>,
    /// Why the applier stopped, if it did.
    apply_failed: Option<String>,
}

/// A background checkpoint starts once this many journal files wait.
pub const CHECKPOINT_EVERY: usize = 32;

/// One journal file: the changes of one sync, in order.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct JournalFile {
    /// `(key, value in base64)`, or `(key, null)` for a deletion.
    records: Vec<(String, Option<String>)>,
}

/// Where a key's value is written before it is renamed into place.
fn temp_path(root: &Path, key: &str) -> (PathBuf, PathBuf, PathBuf) {
    let path = root.join(key);
    let dir = path.parent().unwrap_or(root).to_path_buf();
    let tmp = dir.join(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("key")));
    (path, dir, tmp)
}

/// Writes `value` to a temporary file and renames it over `key`'s file, without flushing.
fn write_key(root: &Path, key: &str, value: &[u8]) -> Result<(), StoreError> {
    use std::io::Write as _;
    let err = |source| StoreError::new("write", key, source);
    let (path, dir, tmp) = temp_path(root, key);
    std::fs::create_dir_all(&dir).map_err(err)?;
    std::fs::File::create(&tmp).and_then(|mut f| f.write_all(value)).map_err(err)?;
    std::fs::rename(&tmp, &path).map_err(err)
}

/// Removes `key`'s file (absent is fine).
fn remove_key(root: &Path, key: &str) -> Result<(), StoreError> {
    match std::fs::remove_file(root.join(key)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StoreError::new("delete", key, e)),
        _ => Ok(()),
    }
}

/// Applies journal records to the key files.
fn apply(root: &Path, records: &[(String, Option<Vec<u8>>)]) -> Result<(), StoreError> {
    for (key, value) in records {
        match value {
            Some(v) => write_key(root, key, v)?,
            None => remove_key(root, key)?,
        }
    }
    Ok(())
}

/// Flushes the files of `keys` that exist, and their directories, to disk.
fn flush_keys(root: &Path, keys: &[String]) -> Result<(), StoreError> {
    let mut files = Vec::new();
    let mut dirs = BTreeMap::new();
    for key in keys {
        let (path, dir, _) = temp_path(root, key);
        if path.exists() {
            files.push((key, path));
        }
        dirs.entry(dir).or_insert(key);
    }
    sync_all_parallel(&files)?;
    let dirs: Vec<(&String, PathBuf)> = dirs.into_iter().filter(|(d, _)| d.exists()).map(|(d, k)| (k, d)).collect();
    sync_all_parallel(&dirs)
}

/// Flushes files (or directories) to disk from several threads at once: the file system's
/// journal then commits them together instead of one commit and one device flush after another.
fn sync_all_parallel(paths: &[(&String, PathBuf)]) -> Result<(), StoreError> {
    const THREADS: usize = 8;
    let chunk = paths.len().div_ceil(THREADS).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = paths
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    for (key, path) in part {
                        std::fs::File::open(path).and_then(|f| f.sync_all()).map_err(|source| StoreError::new("sync", key, source))?;
                    }
                    Ok(())
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| {
            w.join().unwrap_or_else(|_| Err(StoreError::new("sync", "", std::io::Error::other("a flush thread panicked"))))
        })
    })
}

/// Keys may only use characters that are safe in file names and cannot climb out of the root.
fn check_key(key: &str) -> Result<(), StoreError> {
    let ok = !key.is_empty()
        && key.split('/').all(|seg| !seg.is_empty() && seg != "." && seg != "..")
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b));
    if ok { Ok(()) } else { Err(StoreError { op: "check", key: key.to_string(), source: std::io::Error::other("invalid key") }) }
}

/// The journal's directory under the root (its name cannot be a key's first segment: keys use
/// the store's own folders).
const JOURNAL_DIR: &str = "journal";
/// The record log's directory under the root (likewise never a key's first segment).
const LOG_DIR: &str = "log";

impl FileStore {
    /// A store rooted at `root` (created if missing); journal files left by a crash are applied
    /// and flushed first.
    pub async fn open(root: &Path) -> Result<Self, StoreError> {
        tokio::fs::create_dir_all(root).await.map_err(|source| StoreError { op: "create", key: root.display().to_string(), source })?;
        let root_owned = root.to_path_buf();
        let log = tokio::task::spawn_blocking(move || {
            Self::recover(&root_owned)?;
            RecordLog::open(&root_owned.join(LOG_DIR)).map_err(|e| StoreError::new("open", LOG_DIR, e))
        })
        .await
        .map_err(|e| StoreError::new("recover", JOURNAL_DIR, std::io::Error::other(e)))??;
        let journal: Arc<Mutex<Journal>> = Arc::default();
        let applier = Arc::new(Applier::start(root.to_path_buf(), journal.clone())?);
        Ok(Self { root: root.to_path_buf(), journal, log: Arc::new(Mutex::new(log)), applier })
    }

    /// Runs `f` on the record log in a blocking thread (appends and compactions do file I/O).
    async fn with_log<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&mut RecordLog) -> std::io::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let log = self.log.clone();
        tokio::task::spawn_blocking(move || f(&mut log.lock().unwrap_or_else(std::sync::PoisonError::into_inner)))
            .await
            .map_err(|e| StoreError::new(op, LOG_DIR, std::io::Error::other(e)))?
            .map_err(|e| StoreError::new(op, LOG_DIR, e))
    }

    /// Replays the journal files in `root`, in order, flushes what they wrote and removes them.
    fn recover(root: &Path) -> Result<(), StoreError> {
        use base64::Engine as _;
        let dir = root.join(JOURNAL_DIR);
        let mut files: Vec<(u64, PathBuf)> = match std::fs::read_dir(&dir) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u64>().ok()).map(|seq| (seq, e.path())))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StoreError::new("recover", JOURNAL_DIR, e)),
        };
        files.sort();
        let mut touched = Vec::new();
        for (_, path) in &files {
            let bytes = std::fs::read(path).map_err(|e| StoreError::new("recover", JOURNAL_DIR, e))?;
            let file: JournalFile = serde_json::from_slice(&bytes)
                .map_err(|e| StoreError::new("recover", &path.display().to_string(), std::io::Error::other(e)))?;
            let mut records = Vec::with_capacity(file.records.len());
            for (key, value) in file.records {
                check_key(&key)?;
                let value = match value {
                    Some(v) => Some(
                        base64::engine::general_purpose::STANDARD
                            .decode(v)
                            .map_err(|e| StoreError::new("recover", &key, std::io::Error::other(e)))?,
                    ),
                    None => None,
                };
                touched.push(key.clone());
                records.push((key, value));
            }
            apply(root, &records)?;
        }
        flush_keys(root, &touched)?;
        for (_, path) in &files {
            std::fs::remove_file(path).map_err(|e| StoreError::new("recover", JOURNAL_DIR, e))?;
        }
        if !files.is_empty() {
            tracing::info!(files = files.len(), "applied the state journal left by the last run");
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Journal> {
        lock_journal(&self.journal)
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.put_deferred(&[(key.to_string(), value.to_vec())])?;
        self.sync().await
    }

    /// Notes changes for the next [`FileStore::sync`].
    fn put_deferred(&self, items: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        for (key, _) in items {
            check_key(key)?;
        }
        let mut journal = self.lock();
        for (key, value) in items {
            journal.pending.insert(key.clone(), Some(value.clone()));
        }
        Ok(())
    }

    fn delete_deferred(&self, keys: &[String]) -> Result<(), StoreError> {
        for key in keys {
            check_key(key)?;
        }
        let mut journal = self.lock();
        for key in keys {
            journal.pending.insert(key.clone(), None);
        }
        Ok(())
    }

    async fn keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        check_key(prefix)?;
        let err = |source| StoreError { op: "list", key: prefix.to_string(), source };
        let under = format!("{prefix}/");
        let unapplied: Vec<(String, bool)> = {
            let journal = self.lock();
            journal
                .unapplied
                .range(under.clone()..)
                .take_while(|(k, _)| k.starts_with(&under))
                .filter(|(k, _)| !k[under.len()..].contains('/'))
                .map(|(k, (_, v))| (k.clone(), v.is_some()))
                .collect()
        };
        let mut out = BTreeSet::new();
        match tokio::fs::read_dir(self.root.join(prefix)).await {
            Ok(mut dir) => {
                while let Some(entry) = dir.next_entry().await.map_err(err)? {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if !name.starts_with('.') && entry.file_type().await.map_err(err)?.is_file() {
                        out.insert(format!("{prefix}/{name}"));
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(e)),
        }
        for (key, present) in unapplied {
            if present {
                out.insert(key);
            } else {
                out.remove(&key);
            }
        }
        Ok(out.into_iter().collect())
    }

    /// Writes the noted changes as one journal file and flushes it. The applier thread then
    /// writes them to the key files (reads see them meanwhile) and, every [`CHECKPOINT_EVERY`]
    /// journal files, flushes those and removes the journal files. Fails if the applier stopped.
    async fn sync(&self) -> Result<(), StoreError> {
        use base64::Engine as _;
        let (seq, records) = {
            let mut journal = self.lock();
            if let Some(why) = &journal.apply_failed {
                return Err(StoreError::new("apply", JOURNAL_DIR, std::io::Error::other(why.clone())));
            }
            if journal.pending.is_empty() {
                return Ok(());
            }
            let seq = journal.next_seq;
            journal.next_seq += 1;
            (seq, std::mem::take(&mut journal.pending).into_iter().collect::<Vec<_>>())
        };
        let file = JournalFile {
            records: records
                .iter()
                .map(|(k, v)| (k.clone(), v.as_ref().map(|v| base64::engine::general_purpose::STANDARD.encode(v))))
                .collect(),
        };
        let bytes = serde_json::to_vec(&file).map_err(|e| StoreError::new("sync", JOURNAL_DIR, std::io::Error::other(e)))?;
        let root = self.root.clone();
        let path = tokio::task::spawn_blocking(move || -> Result<PathBuf, StoreError> {
            use std::io::Write as _;
            let dir = root.join(JOURNAL_DIR);
            let err = |source| StoreError::new("sync", JOURNAL_DIR, source);
            std::fs::create_dir_all(&dir).map_err(err)?;
            let tmp = dir.join(format!(".{seq:020}.tmp"));
            let path = dir.join(format!("{seq:020}"));
            let mut f = std::fs::File::create(&tmp).map_err(err)?;
            f.write_all(&bytes).and_then(|()| f.sync_all()).map_err(err)?;
            std::fs::rename(&tmp, &path).map_err(err)?;
            std::fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(err)?;
            Ok(path)
        })
        .await
        .map_err(|e| StoreError::new("sync", JOURNAL_DIR, std::io::Error::other(e)))??;
        // Durable from here on; the key files follow.
        {
            let mut journal = self.lock();
            for (key, value) in &records {
                journal.journaled.insert(key.clone(), seq);
                journal.unapplied.insert(key.clone(), (seq, value.clone()));
            }
        }
        self.applier.send((seq, path, records));
        Ok(())
    }

    /// Appends records to the record log, without waiting for the disk. A crash can lose or tear
    /// the newest ones; opening the log drops a torn end, and reconciliation treats the tasks of
    /// lost records as unknown.
    async fn put_relaxed(&self, items: Vec<(String, Vec<u8>)>) -> Result<(), StoreError> {
        for (key, _) in &items {
            check_key(key)?;
        }
        self.with_log("write", move |log| log.append(&items.iter().map(|(k, v)| Change::Put(k, v)).collect::<Vec<_>>())).await
    }

    /// Removes relaxed records with one append to the log, and any file a key had before it was
    /// kept in the log.
    async fn delete_relaxed(&self, keys: Vec<String>) -> Result<(), StoreError> {
        for key in &keys {
            check_key(key)?;
        }
        let root = self.root.clone();
        self.with_log("delete", move |log| {
            log.append(&keys.iter().map(|k| Change::Delete(k)).collect::<Vec<_>>())?;
            for key in &keys {
                match std::fs::remove_file(root.join(key)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            Ok(())
        })
        .await
    }

    /// Removes the key's file now, or, if the key is in the journal, notes the deletion there
    /// (made durable by the next sync, then applied in order), so that neither replaying the
    /// journal nor the applier can bring it back. Records in the log are removed by
    /// [`Store::delete_many_relaxed`] instead (this never waits for the log, which a compaction
    /// can hold for a while).
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        check_key(key)?;
        {
            let mut journal = self.lock();
            if journal.pending.contains_key(key) || journal.journaled.contains_key(key) {
                journal.pending.insert(key.to_string(), None);
                // Reads see the deletion now; the next sync (this sequence number) makes it
                // durable, and its application ends this entry.
                let next = journal.next_seq;
                journal.unapplied.insert(key.to_string(), (next, None));
                return Ok(());
            }
        }
        match tokio::fs::remove_file(self.root.join(key)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StoreError { op: "delete", key: key.to_string(), source: e }),
            _ => Ok(()),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_key(key)?;
        if let Some((_, value)) = self.lock().unapplied.get(key) {
            return Ok(value.clone());
        }
        let key_owned = key.to_string();
        if let Some(value) = self.with_log("read", move |log| log.get(&key_owned)).await? {
            return Ok(Some(value));
        }
        match tokio::fs::read(self.root.join(key)).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError { op: "read", key: key.to_string(), source: e }),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        check_key(prefix)?;
        let err = |source| StoreError { op: "list", key: prefix.to_string(), source };
        let under = format!("{prefix}/");
        let direct = |key: &str| !key[under.len()..].contains('/');
        // Synced changes not yet in the files, taken before the files are read: a change the
        // applier writes meanwhile is then in one or the other.
        let unapplied: Vec<(String, Option<Vec<u8>>)> = {
            let journal = self.lock();
            journal
                .unapplied
                .range(under.clone()..)
                .take_while(|(k, _)| k.starts_with(&under))
                .filter(|(k, _)| direct(k))
                .map(|(k, (_, v))| (k.clone(), v.clone()))
                .collect()
        };
        let scan_prefix = under.clone();
        let mut out = self
            .with_log("list", move |log| log.scan(&scan_prefix))
            .await?
            .into_iter()
            .filter(|(key, _)| direct(key))
            .collect::<BTreeMap<_, _>>();
        match tokio::fs::read_dir(self.root.join(prefix)).await {
            Ok(mut dir) => {
                while let Some(entry) = dir.next_entry().await.map_err(err)? {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let key = format!("{prefix}/{name}");
                    if name.starts_with('.') || out.contains_key(&key) || !entry.file_type().await.map_err(err)?.is_file() {
                        continue;
                    }
                    let value = tokio::fs::read(entry.path()).await.map_err(err)?;
                    out.insert(key, value);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(e)),
        }
        for (key, value) in unapplied {
            match value {
                Some(v) => out.insert(key, v),
                None => out.remove(&key),
            };
        }
        Ok(out.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl FileStore {
        /// Waits until the applier has written every synced change to the key files.
        async fn wait_applied(&self) {
            for _ in 0..500 {
                if self.lock().unapplied.is_empty() {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            panic!("the applier did not catch up");
        }
    }

    #[tokio::test]
    async fn files_round_trip_and_list() {
        let dir = std::env::temp_dir().join(format!("framework-store-{}", uuid::Uuid::new_v4()));
        let store = Store::Files(FileStore::open(&dir).await.unwrap());
        store.put("apps/a", b"1").await.unwrap();
        store.put("apps/b", b"2").await.unwrap();
        store.put("apps/a", b"3").await.unwrap();
        assert_eq!(store.get("apps/a").await.unwrap().as_deref(), Some(&b"3"[..]));
        let keys: Vec<_> = store.list("apps").await.unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["apps/a", "apps/b"]);
        store.delete("apps/a").await.unwrap();
        store.delete("apps/a").await.unwrap();
        assert_eq!(store.get("apps/a").await.unwrap(), None);
        assert!(store.list("none").await.unwrap().is_empty());
        assert!(store.put("../x", b"").await.is_err());
        assert!(store.put("a//b", b"").await.is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn relaxed_records_live_in_the_log_and_win_over_files_of_older_versions() {
        let dir = std::env::temp_dir().join(format!("framework-store-{}", uuid::Uuid::new_v4()));
        // A data directory of an older version kept an instance as a file.
        std::fs::create_dir_all(dir.join("instances")).unwrap();
        std::fs::write(dir.join("instances/old"), b"file").unwrap();
        std::fs::write(dir.join("instances/kept"), b"kept").unwrap();
        let store = Store::Files(FileStore::open(&dir).await.unwrap());
        let batch = [("instances/old".to_string(), b"logged".to_vec()), ("instances/new".to_string(), b"n".to_vec())];
        store.put_many_relaxed(batch.to_vec()).await.unwrap();
        assert_eq!(store.get("instances/old").await.unwrap().as_deref(), Some(&b"logged"[..]));
        let listed = store.list("instances").await.unwrap();
        let expected: Vec<(String, Vec<u8>)> = vec![
            ("instances/kept".into(), b"kept".to_vec()),
            ("instances/new".into(), b"n".to_vec()),
            ("instances/old".into(), b"logged".to_vec()),
        ];
        assert_eq!(listed, expected);
        assert_eq!(std::fs::read_dir(dir.join("instances")).unwrap().count(), 2, "no file is written per record");
        store
            .delete_many_relaxed(vec!["instances/old".to_string(), "instances/kept".to_string(), "instances/none".to_string()])
            .await
            .unwrap();
        drop(store);
        let store = Store::Files(FileStore::open(&dir).await.unwrap());
        assert_eq!(store.list("instances").await.unwrap(), vec![("instances/new".to_string(), b"n".to_vec())]);
        assert_eq!(store.get("instances/old").await.unwrap(), None, "the log's deletion and the old file's removal both hold");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_change_the_applier_cannot_write_fails_the_next_sync() {
        let dir = std::env::temp_dir().join(format!("framework-store-{}", uuid::Uuid::new_v4()));
        let store = FileStore::open(&dir).await.unwrap();
        // A file where the key's folder must go: the journal takes the change, the key file cannot.
        std::fs::write(dir.join("apps"), b"in the way").unwrap();
        store.put_deferred(&[("apps/a".into(), b"1".to_vec())]).unwrap();
        store.sync().await.expect("the journal is durable");
        assert_eq!(store.get("apps/a").await.unwrap().as_deref(), Some(&b"1"[..]), "reads see the synced change");
        let mut failed = None;
        for _ in 0..200 {
            store.put_deferred(&[("deployments/d".into(), b"d".to_vec())]).unwrap();
            if let Err(e) = store.sync().await {
                failed = Some(e);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let e = failed.expect("a sync reports that the applier stopped");
        assert!(e.to_string().contains("apply"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn deferred_writes_appear_at_the_sync_unless_superseded() {
        let dir = std::env::temp_dir().join(format!("framework-store-{}", uuid::Uuid::new_v4()));
        let store = Store::Files(FileStore::open(&dir).await.unwrap());
        store.put("apps/a", b"old").await.unwrap();
        let batch =
            [("apps/a".to_string(), b"new".to_vec()), ("apps/b".to_string(), b"b".to_vec()), ("deployments/d".to_string(), b"d".to_vec())];
        store.put_many_deferred(&batch).await.unwrap();
        assert_eq!(store.get("apps/a").await.unwrap().as_deref(), Some(&b"old"[..]), "not yet synced");
        assert_eq!(store.get("apps/b").await.unwrap(), None);
        // A delete and a durable put of pending keys win over the deferred writes.
        store.delete("deployments/d").await.unwrap();
        store.put("apps/b", b"durable").await.unwrap();
        store.sync().await.unwrap();
        assert_eq!(store.get("apps/a").await.unwrap().as_deref(), Some(&b"new"[..]));
        assert_eq!(store.get("apps/b").await.unwrap().as_deref(), Some(&b"durable"[..]));
        assert_eq!(store.get("deployments/d").await.unwrap(), None);
        let Store::Files(files) = &store else { unreachable!() };
        files.wait_applied().await;
        let mut files: Vec<String> =
            std::fs::read_dir(dir.join("apps")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        files.sort();
        assert_eq!(files, ["a", "b"], "no temporary file is left behind");
        store.sync().await.unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn the_journal_restores_what_a_crash_lost_and_is_trimmed_by_checkpoints() {
        let dir = std::env::temp_dir().join(format!("framework-store-{}", uuid::Uuid::new_v4()));
        let store = FileStore::open(&dir).await.unwrap();
        store.put_deferred(&[("apps/a".into(), b"1".to_vec()), ("deployments/d".into(), b"d".to_vec())]).unwrap();
        store.sync().await.unwrap();
        store.put_deferred(&[("apps/a".into(), b"2".to_vec())]).unwrap();
        store.delete("deployments/d").await.unwrap();
        store.sync().await.unwrap();
        // A crash before the key files reached the disk: they are gone or stale.
        std::fs::remove_file(dir.join("apps/a")).unwrap();
        std::fs::write(dir.join("deployments/d"), b"stale").unwrap();
        drop(store);
        let store = Store::Files(FileStore::open(&dir).await.unwrap());
        assert_eq!(store.get("apps/a").await.unwrap().as_deref(), Some(&b"2"[..]), "the newest journal entry wins");
        assert_eq!(store.get("deployments/d").await.unwrap(), None, "a journaled deletion stays deleted");
        assert_eq!(std::fs::read_dir(dir.join(JOURNAL_DIR)).unwrap().count(), 0, "replayed journal files are removed");

        // Enough syncs start a checkpoint, which removes the journal files it covered.
        let Store::Files(files) = &store else { unreachable!() };
        for n in 0..CHECKPOINT_EVERY {
            files.put_deferred(&[(format!("apps/k{n}"), n.to_string().into_bytes())]).unwrap();
            files.sync().await.unwrap();
        }
        let journal_files = || std::fs::read_dir(dir.join(JOURNAL_DIR)).unwrap().count();
        for _ in 0..100 {
            if journal_files() == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(journal_files(), 0, "the checkpoint removed the journal files");
        assert_eq!(store.list("apps").await.unwrap().len(), CHECKPOINT_EVERY + 1);
        let _ = std::fs::remove_dir_all(dir);
    }
}
