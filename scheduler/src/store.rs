//! Durable state: a small key-value store of JSON documents. Keys are `/`-separated paths such
//! as `apps/shop_web` or `instances/<id>`. The embedded backend keeps one file per key under the
//! data directory, written atomically (temporary file, fsync, rename).

use std::path::{Path, PathBuf};

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

    /// Writes several keys at once (one ZooKeeper multi-op); on files, atomically per key but
    /// without waiting for the disk (for records that reconciliation can restore).
    pub async fn put_many_relaxed(&self, items: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        match self {
            Store::Files(f) => f.put_all(items, false).await,
            Store::Zk(z) => z.put_many(items).await,
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
        Ok(Self { root: root.to_path_buf() })
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.put_all(&[(key.to_string(), value.to_vec())], true).await
    }

    /// Writes each key atomically (temporary file, rename); `durable` also waits for the disk.
    async fn put_all(&self, items: &[(String, Vec<u8>)], durable: bool) -> Result<(), StoreError> {
        for (key, _) in items {
            check_key(key)?;
        }
        let first = items.first().map(|(k, _)| k.clone()).unwrap_or_default();
        let root = self.root.clone();
        let items = items.to_vec();
        tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
            use std::io::Write as _;
            for (key, value) in items {
                let err = |source| StoreError { op: "write", key: key.clone(), source };
                let path = root.join(&key);
                let dir = path.parent().unwrap_or(&root).to_path_buf();
                let tmp = dir.join(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("key")));
                std::fs::create_dir_all(&dir).map_err(err)?;
                let mut f = std::fs::File::create(&tmp).map_err(err)?;
                f.write_all(&value).map_err(err)?;
                if durable {
                    f.sync_all().map_err(err)?;
                }
                std::fs::rename(&tmp, &path).map_err(err)?;
                if durable {
                    std::fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(err)?;
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| StoreError { op: "write", key: first, source: std::io::Error::other(e) })?
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        check_key(key)?;
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
}
