//! The state store on `redb`, a well-kept embedded B-tree database, measured against
//! [`crate::store::FileStore`] (see BENCHMARKS.md, "Store comparison"). Chosen with
//! `--store-engine redb`.
//!
//! One database file, `state.redb`, under the data directory, with two tables: `durable` for keys
//! written by `put`/`put_many_deferred` and `relaxed` for the records reconciliation can restore
//! (instances). Deferred and relaxed writes commit without flushing (`Durability::None`); a
//! `sync` is an empty commit with `Durability::Immediate`, which makes every commit before it
//! durable, as the file store's journal does.

use std::path::Path;
use std::sync::Arc;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use crate::store::StoreError;

const DURABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("durable");
const RELAXED: TableDefinition<&str, &[u8]> = TableDefinition::new("relaxed");
const FILE: &str = "state.redb";
/// redb's page cache (its default, 1 GiB, made the scheduler's RSS 2.5 times the file store's
/// on the scale bench).
const CACHE_BYTES: usize = 64 << 20;

/// The state in one redb database.
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Database>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedbStore")
    }
}

fn io(op: &'static str, key: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::new(op, key, std::io::Error::other(e.to_string()))
}

/// One write to a table: a value, or a deletion.
type Change = (String, Option<Vec<u8>>);

impl RedbStore {
    /// Opens (or creates) `state.redb` under `root`.
    pub async fn open(root: &Path) -> Result<Self, StoreError> {
        let root = root.to_path_buf();
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&root).map_err(|e| StoreError::new("create", &root.display().to_string(), e))?;
            let db = Database::builder().set_cache_size(CACHE_BYTES).create(root.join(FILE)).map_err(|e| io("open", FILE, e))?;
            let txn = db.begin_write().map_err(|e| io("open", FILE, e))?;
            txn.open_table(DURABLE).map_err(|e| io("open", FILE, e))?;
            txn.open_table(RELAXED).map_err(|e| io("open", FILE, e))?;
            txn.commit().map_err(|e| io("open", FILE, e))?;
            Ok(Self { db: Arc::new(db) })
        })
        .await
        .map_err(|e| io("open", FILE, e))?
    }

    /// Commits `changes` to `table`, flushed to disk before returning only if `durable`.
    async fn write(
        &self,
        op: &'static str,
        table: TableDefinition<'static, &'static str, &'static [u8]>,
        changes: Vec<Change>,
        durable: bool,
    ) -> Result<(), StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let mut txn = db.begin_write().map_err(|e| io(op, FILE, e))?;
            txn.set_durability(if durable { Durability::Immediate } else { Durability::None }).map_err(|e| io(op, FILE, e))?;
            {
                let mut t = txn.open_table(table).map_err(|e| io(op, FILE, e))?;
                for (key, value) in &changes {
                    match value {
                        Some(v) => t.insert(key.as_str(), v.as_slice()).map(drop),
                        None => t.remove(key.as_str()).map(drop),
                    }
                    .map_err(|e| io(op, key, e))?;
                }
            }
            txn.commit().map_err(|e| io(op, FILE, e))
        })
        .await
        .map_err(|e| io(op, FILE, e))?
    }

    /// Writes `value` under `key` durably.
    pub async fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.write("put", DURABLE, vec![(key.to_owned(), Some(value.to_vec()))], true).await
    }

    /// Removes `key` durably.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.write("delete", DURABLE, vec![(key.to_owned(), None)], true).await
    }

    /// Writes keys, durable at the next [`RedbStore::sync`].
    pub async fn put_deferred(&self, items: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        self.write("put", DURABLE, items.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect(), false).await
    }

    /// Removes keys, durable at the next [`RedbStore::sync`].
    pub async fn delete_deferred(&self, keys: &[String]) -> Result<(), StoreError> {
        self.write("delete", DURABLE, keys.iter().map(|k| (k.clone(), None)).collect(), false).await
    }

    /// Makes every earlier commit durable.
    pub async fn sync(&self) -> Result<(), StoreError> {
        self.write("sync", DURABLE, Vec::new(), true).await
    }

    /// Writes records reconciliation can restore, without flushing.
    pub async fn put_relaxed(&self, items: Vec<(String, Vec<u8>)>) -> Result<(), StoreError> {
        self.write("put", RELAXED, items.into_iter().map(|(k, v)| (k, Some(v))).collect(), false).await
    }

    /// Removes relaxed records, without flushing.
    pub async fn delete_relaxed(&self, keys: Vec<String>) -> Result<(), StoreError> {
        self.write("delete", RELAXED, keys.into_iter().map(|k| (k, None)).collect(), false).await
    }

    /// Reads `key` (a relaxed record first, as the file store does).
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let db = self.db.clone();
        let key = key.to_owned();
        tokio::task::spawn_blocking(move || {
            let txn = db.begin_read().map_err(|e| io("get", &key, e))?;
            for table in [RELAXED, DURABLE] {
                let t = txn.open_table(table).map_err(|e| io("get", &key, e))?;
                if let Some(v) = t.get(key.as_str()).map_err(|e| io("get", &key, e))? {
                    return Ok(Some(v.value().to_vec()));
                }
            }
            Ok(None)
        })
        .await
        .map_err(|e| io("get", FILE, e))?
    }

    /// Keys (and values, if `values`) directly under `prefix` in the given tables, sorted; a
    /// later table's value wins.
    async fn scan(
        &self,
        prefix: &str,
        tables: &'static [TableDefinition<'static, &'static str, &'static [u8]>],
        values: bool,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let db = self.db.clone();
        let under = format!("{prefix}/");
        tokio::task::spawn_blocking(move || {
            let mut out = std::collections::BTreeMap::new();
            let txn = db.begin_read().map_err(|e| io("list", &under, e))?;
            for table in tables {
                let t = txn.open_table(*table).map_err(|e| io("list", &under, e))?;
                for entry in t.range(under.as_str()..).map_err(|e| io("list", &under, e))? {
                    let (k, v) = entry.map_err(|e| io("list", &under, e))?;
                    let k = k.value();
                    if !k.starts_with(&under) {
                        break;
                    }
                    if !k[under.len()..].contains('/') {
                        out.insert(k.to_owned(), if values { v.value().to_vec() } else { Vec::new() });
                    }
                }
            }
            Ok(out.into_iter().collect())
        })
        .await
        .map_err(|e| io("list", prefix, e))?
    }

    /// Every key directly under `prefix` with its value.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.scan(prefix, &[DURABLE, RELAXED], true).await
    }

    /// The durable keys directly under `prefix`.
    pub async fn keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self.scan(prefix, &[DURABLE], false).await?.into_iter().map(|(k, _)| k).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_see_durable_and_relaxed_writes_and_survive_a_reopen() {
        let root = std::env::temp_dir().join(format!("framework-redb-{}", uuid::Uuid::new_v4()));
        {
            let s = RedbStore::open(&root).await.unwrap();
            s.put("apps/a", b"1").await.unwrap();
            s.put_deferred(&[("apps/b".into(), b"2".to_vec()), ("apps/b/versions".into(), b"x".to_vec())]).await.unwrap();
            s.put_relaxed(vec![("instances/i1".into(), b"r".to_vec()), ("instances/i2".into(), b"s".to_vec())]).await.unwrap();
            s.delete_relaxed(vec!["instances/i2".into()]).await.unwrap();
            s.delete_deferred(&["apps/a".into()]).await.unwrap();
            s.sync().await.unwrap();
        }
        let s = RedbStore::open(&root).await.unwrap();
        assert_eq!(s.get("apps/a").await.unwrap(), None);
        assert_eq!(s.get("apps/b").await.unwrap().as_deref(), Some(&b"2"[..]));
        assert_eq!(s.keys("apps").await.unwrap(), ["apps/b"], "only keys directly under the folder");
        assert_eq!(s.list("instances").await.unwrap(), [("instances/i1".to_string(), b"r".to_vec())]);
        assert!(s.keys("instances").await.unwrap().is_empty(), "relaxed records are not listed as durable keys");
        drop(s);
        std::fs::remove_dir_all(root).unwrap();
    }
}
