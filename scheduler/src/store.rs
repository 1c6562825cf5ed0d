//! Durable state: a small key-value store of JSON documents. Keys are `/`-separated paths such
//! as `apps/shop_web` or `instances/<id>`. The embedded backend keeps one file per key under the
//! data directory, written atomically (temporary file, fsync, rename).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use thiserror::Error;

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
}

impl Store {
    /// Writes `value` under `key`, durably, before returning.
    pub async fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        match self {
            Store::Files(f) => f.put(key, value).await,
            Store::Zk(z) => z.put(key, value).await,
        }
    }

    /// Removes `key` (absent keys are fine).
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self {
            Store::Files(f) => f.delete(key).await,
            Store::Zk(z) => z.delete(key).await,
        }
    }

    /// Reads `key`.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Store::Files(f) => f.get(key).await,
            Store::Zk(z) => z.get(key).await,
        }
    }

    /// Writes several keys, to be made durable by the next [`Store::sync`]: a batch of changes
    /// then waits for the disk once, not once per change. On ZooKeeper the write is durable at
    /// once (one multi-op). On files each key is replaced atomically at the sync; until then
    /// reads see the old value, and a later put or delete of the key supersedes it.
    pub async fn put_many_deferred(&self, items: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        match self {
            Store::Files(f) => f.put_deferred(items).await,
            Store::Zk(z) => z.put_many(items).await,
        }
    }

    /// Makes every [`Store::put_many_deferred`] write durable. A failure leaves their outcome
    /// unknown: the caller must not acknowledge them and should stop.
    pub async fn sync(&self) -> Result<(), StoreError> {
        match self {
            Store::Files(f) => f.sync().await,
            Store::Zk(_) => Ok(()),
        }
    }

    /// Writes several records that reconciliation can restore: on files atomically per key but
    /// without waiting for the disk; on ZooKeeper in multi-ops of at most
    /// [`RELAXED_BATCH_BYTES`] each (it refuses a request above its `jute.maxbuffer`, 1 MiB by
    /// default).
    pub async fn put_many_relaxed(&self, items: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        match self {
            Store::Files(f) => f.put_all(items, false).await,
            Store::Zk(z) => {
                let mut rest = items;
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

    /// Every key directly under `prefix` with its value, sorted by key.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        match self {
            Store::Files(f) => f.list(prefix).await,
            Store::Zk(z) => z.list(prefix).await,
        }
    }
}

/// One file per key under a root directory.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
    /// Deferred writes: key → its written temporary file, renamed into place by the next sync.
    pending: Arc<Mutex<BTreeMap<String, PathBuf>>>,
}

/// Where a key's value is written before it is renamed into place.
fn temp_path(root: &Path, key: &str) -> (PathBuf, PathBuf, PathBuf) {
    let path = root.join(key);
    let dir = path.parent().unwrap_or(root).to_path_buf();
    let tmp = dir.join(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("key")));
    (path, dir, tmp)
}

/// Keys may only use characters that are safe in file names and cannot climb out of the root.
fn check_key(key: &str) -> Result<(), StoreError> {
    let ok = !key.is_empty()
        && key.split('/').all(|seg| !seg.is_empty() && seg != "." && seg != "..")
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StoreError { op: "check", key: key.to_string(), source: std::io::Error::other("invalid key") })
    }
}

impl FileStore {
    /// A store rooted at `root` (created if missing).
    pub async fn open(root: &Path) -> Result<Self, StoreError> {
        tokio::fs::create_dir_all(root)
            .await
            .map_err(|source| StoreError { op: "create", key: root.display().to_string(), source })?;
        Ok(Self { root: root.to_path_buf(), pending: Arc::default() })
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.put_all(&[(key.to_string(), value.to_vec())], true).await
    }

    /// Forgets deferred writes of these keys (a newer write or a delete supersedes them).
    fn supersede<'a>(&self, keys: impl Iterator<Item = &'a str>) {
        let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for key in keys {
            if let Some(tmp) = pending.remove(key) {
                let _ = std::fs::remove_file(tmp);
            }
        }
    }

    /// Writes the temporary files of `items`; [`FileStore::sync`] renames them into place.
    async fn put_deferred(&self, items: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        for (key, _) in items {
            check_key(key)?;
        }
        self.supersede(items.iter().map(|(k, _)| k.as_str()));
        let root = self.root.clone();
        let items = items.to_vec();
        let written = tokio::task::spawn_blocking(move || -> Result<Vec<(String, PathBuf)>, StoreError> {
            use std::io::Write as _;
            let mut written = Vec::with_capacity(items.len());
            for (key, value) in items {
                let err = |source| StoreError { op: "write", key: key.clone(), source };
                let (_, dir, tmp) = temp_path(&root, &key);
                std::fs::create_dir_all(&dir).map_err(err)?;
                std::fs::File::create(&tmp).and_then(|mut f| f.write_all(&value)).map_err(err)?;
                written.push((key, tmp));
            }
            Ok(written)
        })
        .await
        .map_err(|e| StoreError { op: "write", key: String::new(), source: std::io::Error::other(e) })??;
        self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(written);
        Ok(())
    }

    /// Flushes the deferred writes to disk and renames them into place, then flushes their
    /// directories.
    async fn sync(&self) -> Result<(), StoreError> {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        if pending.is_empty() {
            return Ok(());
        }
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
            for (key, tmp) in &pending {
                std::fs::File::open(tmp).and_then(|f| f.sync_all()).map_err(|source| StoreError::new("sync", key, source))?;
            }
            let mut dirs = BTreeMap::new();
            for (key, tmp) in &pending {
                let (path, dir, _) = temp_path(&root, key);
                std::fs::rename(tmp, &path).map_err(|source| StoreError::new("sync", key, source))?;
                dirs.entry(dir).or_insert(key);
            }
            for (dir, key) in dirs {
                std::fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(|source| StoreError::new("sync", key, source))?;
            }
            Ok(())
        })
        .await
        .map_err(|e| StoreError { op: "sync", key: String::new(), source: std::io::Error::other(e) })?
    }

    /// Writes each key atomically (temporary file, rename); `durable` also waits for the disk.
    async fn put_all(&self, items: &[(String, Vec<u8>)], durable: bool) -> Result<(), StoreError> {
        for (key, _) in items {
            check_key(key)?;
        }
        self.supersede(items.iter().map(|(k, _)| k.as_str()));
        let first = items.first().map(|(k, _)| k.clone()).unwrap_or_default();
        let root = self.root.clone();
        let items = items.to_vec();
        tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
            use std::io::Write as _;
            // All temporary files first, then (if durable) their contents to disk, then the
            // renames, then each directory once: a file system journal commits the lot in one or
            // two flushes instead of two per key. Files are closed as they are written (a batch
            // can hold thousands of records) and reopened for the flush.
            let mut renames = Vec::with_capacity(items.len());
            for (key, value) in &items {
                let err = |source| StoreError { op: "write", key: key.clone(), source };
                let (path, dir, tmp) = temp_path(&root, key);
                std::fs::create_dir_all(&dir).map_err(err)?;
                std::fs::File::create(&tmp).and_then(|mut f| f.write_all(value)).map_err(err)?;
                renames.push((key, tmp, path, dir));
            }
            if durable {
                for (key, tmp, ..) in &renames {
                    std::fs::File::open(tmp).and_then(|f| f.sync_all()).map_err(|source| StoreError { op: "write", key: (*key).clone(), source })?;
                }
            }
            let mut dirs = BTreeMap::new();
            for (key, tmp, path, dir) in renames {
                std::fs::rename(&tmp, &path).map_err(|source| StoreError { op: "write", key: key.clone(), source })?;
                dirs.entry(dir).or_insert(key);
            }
            if durable {
                for (dir, key) in dirs {
                    std::fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(|source| StoreError { op: "write", key: key.clone(), source })?;
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| StoreError { op: "write", key: first, source: std::io::Error::other(e) })?
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        check_key(key)?;
        self.supersede(std::iter::once(key));
        match tokio::fs::remove_file(self.root.join(key)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StoreError { op: "delete", key: key.to_string(), source: e }),
            _ => Ok(()),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_key(key)?;
        match tokio::fs::read(self.root.join(key)).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError { op: "read", key: key.to_string(), source: e }),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        check_key(prefix)?;
        let err = |source| StoreError { op: "list", key: prefix.to_string(), source };
        let mut dir = match tokio::fs::read_dir(self.root.join(prefix)).await {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(err(e)),
        };
        let mut out = Vec::new();
        while let Some(entry) = dir.next_entry().await.map_err(err)? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !entry.file_type().await.map_err(err)?.is_file() {
                continue;
            }
            let value = tokio::fs::read(entry.path()).await.map_err(err)?;
            out.push((format!("{prefix}/{name}"), value));
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    async fn deferred_writes_appear_at_the_sync_unless_superseded() {
        let dir = std::env::temp_dir().join(format!("framework-store-{}", uuid::Uuid::new_v4()));
        let store = Store::Files(FileStore::open(&dir).await.unwrap());
        store.put("apps/a", b"old").await.unwrap();
        let batch = [("apps/a".to_string(), b"new".to_vec()), ("apps/b".to_string(), b"b".to_vec()), ("deployments/d".to_string(), b"d".to_vec())];
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
        let mut files: Vec<String> = std::fs::read_dir(dir.join("apps")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        files.sort();
        assert_eq!(files, ["a", "b"], "no temporary file is left behind");
        store.sync().await.unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }
}
