//! The state store in ZooKeeper: one node per key under `<path>/state/v1`. Every write is a
//! multi-op that first checks our election node, so a deposed leader (whose election node is
//! gone, or whose session expired) can never overwrite the new leader's state.

use zookeeper_client as zk;

use super::ZkUrl;
use crate::store::StoreError;

/// Largest value we write into one node (ZooKeeper's default limit is 1 MB).
pub const MAX_NODE: usize = 256 * 1024;

/// A fenced ZooKeeper store.
#[derive(Debug, Clone)]
pub struct ZkStore {
    client: zk::Client,
    url: ZkUrl,
    root: String,
    fence: Option<String>,
}

fn err(op: &'static str, key: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::new(op, key, std::io::Error::other(format!("ZooKeeper: {e}")))
}

impl ZkStore {
    /// A store under `<url.path>/state/v1`; writes are fenced by `fence` (our election node).
    pub fn new(client: zk::Client, url: ZkUrl, fence: Option<String>) -> Self {
        let root = format!("{}/state/v1", url.path);
        Self { client, url, root, fence }
    }

    fn path(&self, key: &str) -> String {
        format!("{}/{key}", self.root)
    }

    /// Writes several keys in one multi-op (used for launches: one write per offer, not per task).
    pub async fn put_many(&self, items: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        for (key, value) in items {
            if value.len() > MAX_NODE {
                return Err(err("write", key, format!("value of {} bytes exceeds the {MAX_NODE}-byte node limit", value.len())));
            }
            if let Some((parent, _)) = self.path(key).rsplit_once('/') {
                super::ensure_path(&self.client, &self.url, parent).await.map_err(|e| err("write", key, e))?;
            }
        }
        // Existing keys are set, new ones created; which is which we learn from ZooKeeper.
        let mut reader = self.client.new_multi_reader();
        for (key, _) in items {
            reader.add_get_data(&self.path(key)).map_err(|e| err("read", key, e))?;
        }
        let exists: Vec<bool> = reader
            .commit()
            .await
            .map_err(|e| err("read", &items[0].0, e))?
            .into_iter()
            .map(|r| matches!(r, zk::MultiReadResult::Data { .. }))
            .collect();
        let options = zk::CreateMode::Persistent.with_acls(super::acls(&self.url));
        let mut writer = self.client.new_multi_writer();
        if let Some(fence) = &self.fence {
            writer.add_check_version(fence, 0).map_err(|e| err("write", fence, e))?;
        }
        for ((key, value), exists) in items.iter().zip(exists) {
            let path = self.path(key);
            let added = if exists { writer.add_set_data(&path, value, None) } else { writer.add_create(&path, value, &options) };
            added.map_err(|e| err("write", key, e))?;
        }
        writer.commit().await.map_err(|e| err("write", &items[0].0, fenced(e)))?;
        Ok(())
    }

    /// Writes one key.
    pub async fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.put_many(&[(key.to_string(), value.to_vec())]).await
    }

    /// Removes a key (absent keys are fine).
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let mut writer = self.client.new_multi_writer();
        if let Some(fence) = &self.fence {
            writer.add_check_version(fence, 0).map_err(|e| err("delete", fence, e))?;
        }
        writer.add_delete(&self.path(key), None).map_err(|e| err("delete", key, e))?;
        match writer.commit().await {
            Ok(_) => Ok(()),
            Err(zk::MultiWriteError::OperationFailed { index, source: zk::Error::NoNode })
                if index == usize::from(self.fence.is_some()) =>
            {
                Ok(())
            }
            Err(e) => Err(err("delete", key, fenced(e))),
        }
    }

    /// Reads a key.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.client.get_data(&self.path(key)).await {
            Ok((data, _)) => Ok(Some(data)),
            Err(zk::Error::NoNode) => Ok(None),
            Err(e) => Err(err("read", key, e)),
        }
    }

    /// The keys directly under `prefix`, sorted, without their values.
    pub async fn keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut children = match self.client.list_children(&self.path(prefix)).await {
            Ok(c) => c,
            Err(zk::Error::NoNode) => return Ok(Vec::new()),
            Err(e) => return Err(err("list", prefix, e)),
        };
        children.sort();
        Ok(children.into_iter().map(|child| format!("{prefix}/{child}")).collect())
    }

    /// Every key directly under `prefix` with its value, sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut children = match self.client.list_children(&self.path(prefix)).await {
            Ok(c) => c,
            Err(zk::Error::NoNode) => return Ok(Vec::new()),
            Err(e) => return Err(err("list", prefix, e)),
        };
        children.sort();
        let mut out = Vec::with_capacity(children.len());
        for chunk in children.chunks(256) {
            let mut reader = self.client.new_multi_reader();
            for child in chunk {
                reader.add_get_data(&self.path(&format!("{prefix}/{child}"))).map_err(|e| err("list", prefix, e))?;
            }
            for (child, result) in chunk.iter().zip(reader.commit().await.map_err(|e| err("list", prefix, e))?) {
                if let zk::MultiReadResult::Data { data, .. } = result {
                    out.push((format!("{prefix}/{child}"), data));
                }
            }
        }
        Ok(out)
    }
}

/// Names a failed fence check for what it is.
fn fenced(e: zk::MultiWriteError) -> String {
    match e {
        zk::MultiWriteError::OperationFailed { index: 0, source: zk::Error::NoNode | zk::Error::BadVersion } => {
            "this instance is no longer the leader (its election node is gone); the write was refused".to_string()
        }
        other => other.to_string(),
    }
}
