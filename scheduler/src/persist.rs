//! What the actor reads from the store when it starts ([`load`]), and the instance record writer
//! ([`writer`]) that persists instance records in the background and posts the Mesos calls that
//! wait for them.

use std::collections::{BTreeMap, BTreeSet};

use framework_core::app::AppDefinition;
use framework_core::keys;
use framework_core::scheduler::InstanceWrite;
use framework_core::tree::GroupNode;
use mesos_proto::v1::scheduler::Call;
use tokio::sync::mpsc;

use crate::mesos::MesosCalls;
use crate::state::{Deployment, Instance};
use crate::store::Store;

/// At most this many hand-overs are written together.
const WRITE_BATCH: usize = 64;

/// The state the actor starts from (loaded from the store).
#[derive(Debug, Default)]
pub struct Loaded {
    /// Apps.
    pub apps: Vec<AppDefinition>,
    /// Instances.
    pub instances: Vec<Instance>,
    /// Running deployments.
    pub deployments: Vec<Deployment>,
    /// Groups (stores written before groups were stored have none: they are found from the
    /// apps' ids).
    pub groups: Vec<GroupNode>,
    /// Framework id.
    pub framework_id: Option<String>,
}

/// Reads everything the actor needs from the store.
pub async fn load(store: &Store) -> anyhow::Result<Loaded> {
    use anyhow::Context as _;
    let mut loaded = Loaded::default();
    for (key, bytes) in store.list("apps").await? {
        loaded.apps.push(serde_json::from_slice(&bytes).with_context(|| format!("stored app {key} is unreadable"))?);
    }
    for (key, bytes) in store.list("instances").await? {
        // Instance records are written without waiting for the disk (to the record log; older
        // versions wrote files in place), so a crash can leave one torn: it is skipped, and
        // reconciliation reports its task as unknown.
        match serde_json::from_slice(&bytes) {
            Ok(instance) => loaded.instances.push(instance),
            Err(e) => {
                tracing::warn!(%key, error = %e, "skipping an unreadable instance record (torn by a crash?); its task is reconciled as unknown")
            }
        }
    }
    for (key, bytes) in store.list("groups").await? {
        loaded.groups.push(serde_json::from_slice(&bytes).with_context(|| format!("stored group {key} is unreadable"))?);
    }
    for (key, bytes) in store.list("deployments").await? {
        loaded.deployments.push(serde_json::from_slice(&bytes).with_context(|| format!("stored deployment {key} is unreadable"))?);
    }
    loaded.deployments.sort_by_key(|d| d.version);
    loaded.framework_id =
        store.get(keys::FRAMEWORK_ID).await?.map(|b| String::from_utf8_lossy(&b).trim().to_string()).filter(|s| !s.is_empty());
    Ok(loaded)
}

/// Instance records to write (and delete), and the Mesos calls that must wait until they are.
#[derive(Default)]
pub struct Persist {
    /// Records to write.
    pub writes: Vec<(String, Vec<u8>)>,
    /// Records to delete.
    pub deletes: Vec<String>,
    /// Calls to post once written (ACCEPTs, KILLs, ACKNOWLEDGEs).
    pub then: Vec<Call>,
    /// Calls to post if writing failed (DECLINEs).
    pub otherwise: Vec<Call>,
}

impl From<InstanceWrite> for Persist {
    fn from(w: InstanceWrite) -> Self {
        Persist { deletes: w.deletes, then: w.then, otherwise: w.otherwise, ..Persist::instances(&w.instances) }
    }
}

impl Persist {
    /// The records of these instances.
    pub fn instances<'a>(instances: impl IntoIterator<Item = &'a Instance>) -> Self {
        let writes = instances.into_iter().map(|i| (keys::instance(&i.id), serde_json::to_vec(i).unwrap_or_default())).collect();
        Persist { writes, ..Persist::default() }
    }
}

/// Writes instance records in the order the actor hands them over, batching what queued up, and
/// posts each batch's calls once it is written. Instance records are written without waiting for
/// the disk (on ZooKeeper: as any write): after a crash of the machine, reconciliation with Mesos
/// restores what a lost write held, and tasks we no longer know are killed, so no task is
/// duplicated. The actor never waits for these writes; what depends on them (acknowledging an
/// update, launching a task) waits here instead. A failed write is not retried, and the writer
/// stops, which stops the actor at its next hand-over: the state is reloaded from the store by
/// whoever leads next; Mesos re-sends unacknowledged updates, and unconfirmed launches are
/// reconciled.
pub async fn writer(store: Store, calls: MesosCalls, mut rx: mpsc::Receiver<Persist>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < WRITE_BATCH {
            let Ok(next) = rx.try_recv() else { break };
            batch.push(next);
        }
        // The latest record of each key; a deleted instance is never written again (instance ids
        // are not reused), so deletions can follow all writes.
        let mut writes: BTreeMap<&str, &[u8]> = BTreeMap::new();
        for p in &batch {
            for (key, value) in &p.writes {
                writes.insert(key, value);
            }
        }
        let deletes: BTreeSet<&str> = batch.iter().flat_map(|p| p.deletes.iter().map(String::as_str)).collect();
        writes.retain(|key, _| !deletes.contains(key));
        let items: Vec<(String, Vec<u8>)> = writes.into_iter().map(|(k, v)| (k.to_owned(), v.to_vec())).collect();
        let deletes: Vec<String> = deletes.into_iter().map(str::to_owned).collect();
        let mut result = store.put_many_relaxed(items).await;
        if result.is_ok() && !deletes.is_empty() {
            result = store.delete_many_relaxed(deletes).await;
        }
        if let Err(e) = &result {
            tracing::error!(error = %e, "could not persist instance records; the calls that depend on them are not sent, and the scheduler stops (the next leader, or a restart, reloads the store and reconciles)");
        }
        for p in batch {
            for call in if result.is_ok() { p.then } else { p.otherwise } {
                calls.send(call);
            }
        }
        if result.is_err() {
            // The actor has moved on from records that are not stored: had it gone on, a later
            // re-sent update of the same task would be acknowledged against a record that still
            // says otherwise. Stopping makes it reload the store.
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use framework_core::ids::{AppId, InstanceId};

    use super::*;

    #[tokio::test]
    async fn store_keys_of_any_accepted_id_stay_in_their_folder() {
        let root = std::env::temp_dir().join(format!("framework-keys-{}", uuid::Uuid::new_v4()));
        let store = Store::Files(crate::store::FileStore::open(&root).await.unwrap());
        for raw in ["/a..b", "/x/y.z", "/q-1/..r/s", "/m/./n"] {
            let Ok(id) = AppId::parse(raw) else { continue };
            store.put(&keys::app(&id), b"{}").await.unwrap();
            store.put(&keys::instance(&InstanceId::new(&id, "u")), b"{}").await.unwrap();
        }
        for hostile in ["/../etc", "/a/../../x", "/.hidden", "/a b", "/A"] {
            assert!(AppId::parse(hostile).is_err(), "{hostile}");
        }
        // Closing the store waits until its changes are in the key files.
        drop(store);
        let mut names: Vec<String> =
            std::fs::read_dir(root.join("apps")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        assert_eq!(names, ["a..b", "m_n", "x_y.z"]);
        let written = std::fs::read_dir(&root)
            .unwrap()
            .filter(|e| !["journal", "log"].contains(&e.as_ref().unwrap().file_name().to_str().unwrap()))
            .count();
        assert_eq!(written, 2, "only apps/ and instances/ were written (besides the store's journal and log)");
        let _ = std::fs::remove_dir_all(root);
    }
}
