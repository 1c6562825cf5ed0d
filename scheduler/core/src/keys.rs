//! Where the scheduler's records live in the state store (files under `--data-dir`, or nodes
//! under the `--zk` path): one key layout for both.

use crate::ids::{AppId, DeploymentId, InstanceId, PathId, Timestamp};

/// A group's name in keys (the root's is `_`, which no other group's can be).
fn group_name(id: &PathId) -> String {
    if id.is_root() { "_".to_string() } else { id.safe_name() }
}
/// Where a group's own fields live.
pub fn group(id: &PathId) -> String {
    format!("groups/{}", group_name(id))
}
/// The folder of a group's stored versions.
pub fn group_versions(id: &PathId) -> String {
    format!("group-versions/{}", group_name(id))
}
/// One stored version of a group (the whole group as it was, apps included).
pub fn group_version(id: &PathId, v: Timestamp) -> String {
    format!("group-versions/{}/{v}", group_name(id))
}

/// Where the current definition of an app lives.
pub fn app(id: &AppId) -> String {
    format!("apps/{}", id.safe_name())
}
/// Where one stored version of an app lives.
pub fn app_version(id: &AppId, v: Timestamp) -> String {
    format!("app-versions/{}/{v}", id.safe_name())
}
/// The folder of an app's versions.
pub fn app_versions(id: &AppId) -> String {
    format!("app-versions/{}", id.safe_name())
}
/// An instance.
pub fn instance(id: &InstanceId) -> String {
    format!("instances/{id}")
}
/// A deployment.
pub fn deployment(id: &DeploymentId) -> String {
    format!("deployments/{id}")
}
/// The framework id.
pub const FRAMEWORK_ID: &str = "framework-id";
