//! The group tree: what a group update, a group rollback or an app change does to the apps and
//! groups that exist, decided as plain data (no store, no clock).
//!
//! Marathon 1.10's rules (`GroupConversion`, `GroupApiService`, `RootGroup`):
//! - a group body is an update of the group it names: `apps` given replaces the group's direct
//!   apps (apps not listed are removed); `groups` given lists every direct subgroup (each listed
//!   one is updated by its own body, every other one is removed with all it holds); a field that is
//!   absent keeps what the group has, and so does every group the body does not reach;
//! - a group exists on its own (an empty group stays), and every ancestor of an app or group
//!   exists;
//! - an app and a group may not share an id, and an app cannot hold anything;
//! - a rollback `{"version": v}` is the update that gives the group exactly as it was at `v`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::app::{AppDefinition, GroupDefinition, Violation};
use crate::ids::{AppId, PathId, Timestamp};

/// A group's own fields (what it holds is found from the ids of apps and groups).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupNode {
    /// The group id.
    pub id: PathId,
    /// Apps or groups whose apps deploy before this group's (absolute ids).
    #[serde(default)]
    pub dependencies: Vec<PathId>,
    /// Whether the group's apps must run under the group's role.
    #[serde(default)]
    pub enforce_role: bool,
    /// The version of the last change within the group.
    pub version: Timestamp,
}

impl GroupNode {
    /// A group with no dependencies, created at `version`.
    pub fn new(id: PathId, version: Timestamp) -> Self {
        Self { id, dependencies: Vec::new(), enforce_role: false, version }
    }
}

/// The part of the tree a change looks at: at least every app and group within the group it
/// changes.
#[derive(Debug, Clone, Default)]
pub struct TreeView {
    /// App ids.
    pub apps: BTreeSet<AppId>,
    /// Groups by id.
    pub groups: BTreeMap<PathId, GroupNode>,
}

impl TreeView {
    /// The direct apps of `group`.
    fn apps_in<'a>(&'a self, group: &'a PathId) -> impl Iterator<Item = &'a AppId> + 'a {
        self.apps.iter().filter(move |a| !a.is_root() && &a.parent() == group)
    }

    /// The direct subgroups of `group`.
    fn groups_in<'a>(&'a self, group: &'a PathId) -> impl Iterator<Item = &'a PathId> + 'a {
        self.groups.keys().filter(move |g| !g.is_root() && &g.parent() == group)
    }
}

/// What a change does to the tree.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TreeChange {
    /// Apps created or replaced, as given.
    pub put_apps: Vec<AppDefinition>,
    /// Apps removed.
    pub delete_apps: Vec<AppId>,
    /// Groups created or changed (their version is the change's).
    pub put_groups: Vec<GroupNode>,
    /// Groups removed, with everything in them.
    pub delete_groups: Vec<PathId>,
}

/// What the group update `update` does to `current` at `version`.
pub fn apply_update(current: &TreeView, update: &GroupDefinition, version: Timestamp) -> TreeChange {
    let mut change = TreeChange::default();
    update_group(current, update, version, &mut change);
    change
}

fn update_group(current: &TreeView, update: &GroupDefinition, version: Timestamp, change: &mut TreeChange) {
    let gid = &update.id;
    let existing = current.groups.get(gid);
    change.put_groups.push(GroupNode {
        id: gid.clone(),
        dependencies: update.dependencies.clone().or_else(|| existing.map(|g| g.dependencies.clone())).unwrap_or_default(),
        enforce_role: update.enforce_role.or(existing.map(|g| g.enforce_role)).unwrap_or(false),
        version,
    });
    if let Some(apps) = &update.apps {
        let listed: BTreeSet<&AppId> = apps.iter().map(|a| &a.id).collect();
        change.delete_apps.extend(current.apps_in(gid).filter(|a| !listed.contains(a)).cloned());
        change.put_apps.extend(apps.iter().cloned());
    }
    if let Some(groups) = &update.groups {
        let listed: BTreeSet<&PathId> = groups.iter().map(|g| &g.id).collect();
        for gone in current.groups_in(gid).filter(|g| !listed.contains(g)) {
            remove_subtree(current, gone, change);
        }
        for sub in groups {
            update_group(current, sub, version, change);
        }
    }
}

/// Removes a group with everything within it.
fn remove_subtree(current: &TreeView, gid: &PathId, change: &mut TreeChange) {
    change.delete_apps.extend(current.apps.iter().filter(|a| a.is_within(gid)).cloned());
    change.delete_groups.extend(current.groups.keys().filter(|g| g.is_within(gid)).cloned());
}

/// What deleting the group `gid` does: the root is emptied (it always exists), any other group
/// goes with everything within it.
pub fn delete_group(current: &TreeView, gid: &PathId) -> TreeChange {
    let mut change = TreeChange::default();
    if gid.is_root() {
        change.delete_apps.extend(current.apps.iter().cloned());
        change.delete_groups.extend(current.groups.keys().filter(|g| !g.is_root()).cloned());
    } else {
        remove_subtree(current, gid, &mut change);
    }
    change
}

/// The ids of a change that clash with the tree as it will be: an app whose id is a group, a
/// group whose id is an app, or an app among the ancestors of either (it would have to be a
/// group). `is_app` and `is_group` answer for the tree after the change.
pub fn clashes<'a>(
    put_apps: impl IntoIterator<Item = &'a AppId>,
    put_groups: impl IntoIterator<Item = &'a PathId>,
    is_app: impl Fn(&PathId) -> bool,
    is_group: impl Fn(&PathId) -> bool,
) -> Vec<PathId> {
    let mut out = BTreeSet::new();
    let ancestors_are_groups = |id: &PathId, out: &mut BTreeSet<PathId>| {
        let mut up = id.parent();
        while !up.is_root() {
            if is_app(&up) {
                out.insert(up.clone());
            }
            up = up.parent();
        }
    };
    for app in put_apps {
        if is_group(app) {
            out.insert(app.clone());
        }
        ancestors_are_groups(app, &mut out);
    }
    for group in put_groups {
        if is_app(group) {
            out.insert(group.clone());
        }
        ancestors_are_groups(group, &mut out);
    }
    out.into_iter().collect()
}

/// Marathon's violation for ids shared by an app and a group.
pub fn clash_violation(ids: &[PathId]) -> Violation {
    let listed: Vec<String> = ids.iter().map(ToString::to_string).collect();
    Violation {
        path: "/".to_string(),
        errors: vec![format!("Groups and Applications may not have the same identifier. ({})", listed.join(", "))],
    }
}

/// A group exactly as it was at one version, apps included: what a group version holds and
/// what a rollback restores. Serialized in the shape of Marathon's group JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupVersion {
    /// The group id.
    pub id: PathId,
    /// The version.
    pub version: Timestamp,
    /// The group's dependencies.
    #[serde(default)]
    pub dependencies: Vec<PathId>,
    /// Whether the group enforces its role.
    #[serde(default)]
    pub enforce_role: bool,
    /// The direct apps as they were.
    #[serde(default)]
    pub apps: Vec<AppDefinition>,
    /// The direct subgroups as they were.
    #[serde(default)]
    pub groups: Vec<GroupVersion>,
}

impl GroupVersion {
    /// The group `gid` as `groups` and `apps` hold it (each holding at least the subtree;
    /// whatever lies outside it is passed over).
    pub fn capture<'a>(
        gid: &PathId,
        groups: impl IntoIterator<Item = &'a GroupNode>,
        apps: impl IntoIterator<Item = &'a AppDefinition>,
    ) -> Option<Self> {
        let within: Vec<&GroupNode> = groups.into_iter().filter(|g| g.id.is_within(gid)).collect();
        let node = within.iter().find(|g| &g.id == gid)?;
        let mut by_group: BTreeMap<PathId, Vec<AppDefinition>> = BTreeMap::new();
        for app in apps.into_iter().filter(|a| a.id.is_within(gid) && &a.id != gid) {
            by_group.entry(app.id.parent()).or_default().push(app.clone());
        }
        Some(Self::build(node, &within, &mut by_group))
    }

    fn build(node: &GroupNode, within: &[&GroupNode], apps: &mut BTreeMap<PathId, Vec<AppDefinition>>) -> Self {
        let groups = within
            .iter()
            .filter(|g| !g.id.is_root() && g.id.parent() == node.id && g.id != node.id)
            .map(|g| Self::build(g, within, apps))
            .collect();
        Self {
            id: node.id.clone(),
            version: node.version,
            dependencies: node.dependencies.clone(),
            enforce_role: node.enforce_role,
            apps: apps.remove(&node.id).unwrap_or_default(),
            groups,
        }
    }

    /// The update that makes a group exactly this (every field given).
    pub fn into_update(self) -> GroupDefinition {
        GroupDefinition {
            id: self.id,
            apps: Some(self.apps),
            groups: Some(self.groups.into_iter().map(Self::into_update).collect()),
            dependencies: Some(self.dependencies),
            enforce_role: Some(self.enforce_role),
            version: None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::app::parse_group;
    use proptest::prelude::*;
    use serde_json::json;

    fn id(s: &str) -> PathId {
        PathId::parse(s).unwrap()
    }

    fn app(s: &str, instances: u32) -> AppDefinition {
        let mut a = AppDefinition::new(id(s));
        a.cmd = Some("sleep 1000".into());
        a.instances = instances;
        a
    }

    /// A whole tree: apps with their definitions and groups.
    #[derive(Debug, Clone, Default)]
    struct Tree {
        apps: BTreeMap<AppId, AppDefinition>,
        groups: BTreeMap<PathId, GroupNode>,
    }

    impl Tree {
        fn new() -> Self {
            let mut t = Self::default();
            t.groups.insert(PathId::root(), GroupNode::new(PathId::root(), Timestamp(0)));
            t
        }

        fn view(&self) -> TreeView {
            TreeView { apps: self.apps.keys().cloned().collect(), groups: self.groups.clone() }
        }

        /// Applies a change as the scheduler does: deletions, then puts, then the ancestors.
        fn apply(&mut self, change: &TreeChange, version: Timestamp) {
            for a in &change.delete_apps {
                self.apps.remove(a);
            }
            for g in &change.delete_groups {
                self.groups.remove(g);
            }
            for g in &change.put_groups {
                self.groups.insert(g.id.clone(), g.clone());
            }
            for a in &change.put_apps {
                self.apps.insert(a.id.clone(), a.clone());
            }
            let ids: Vec<PathId> =
                change.put_apps.iter().map(|a| a.id.parent()).chain(change.put_groups.iter().map(|g| g.id.clone())).collect();
            for mut up in ids {
                loop {
                    self.groups.entry(up.clone()).or_insert_with(|| GroupNode::new(up.clone(), version));
                    if up.is_root() {
                        break;
                    }
                    up = up.parent();
                }
            }
        }
    }

    fn update(body: serde_json::Value, base: &str) -> GroupDefinition {
        parse_group(body.to_string().as_bytes(), &id(base)).unwrap()
    }

    fn seeded() -> Tree {
        let mut t = Tree::new();
        let change = apply_update(
            &t.view(),
            &update(
                json!({"id": "/h", "dependencies": ["db"], "apps": [{"id": "web", "cmd": "run"}],
                    "groups": [{"id": "db", "apps": [{"id": "mysql", "cmd": "run"}]}, {"id": "empty"}]}),
                "/",
            ),
            Timestamp(1),
        );
        t.apply(&change, Timestamp(1));
        t
    }

    #[test]
    fn absent_fields_keep_what_the_group_has() {
        let t = seeded();
        let change = apply_update(&t.view(), &update(json!({"apps": [{"id": "web", "cmd": "run2"}]}), "/h"), Timestamp(2));
        assert_eq!(change.delete_apps, Vec::<AppId>::new());
        assert_eq!(change.delete_groups, Vec::<PathId>::new());
        assert_eq!(
            change.put_groups,
            [GroupNode { id: id("/h"), dependencies: vec![id("/h/db")], enforce_role: false, version: Timestamp(2) }]
        );
        // `{}` changes nothing but the version.
        let change = apply_update(&t.view(), &GroupDefinition::new(id("/h")), Timestamp(2));
        assert!(change.put_apps.is_empty() && change.delete_apps.is_empty() && change.delete_groups.is_empty());
    }

    #[test]
    fn given_lists_replace_and_remove() {
        let t = seeded();
        let change = apply_update(&t.view(), &update(json!({"apps": [], "groups": [{"id": "db"}]}), "/h"), Timestamp(2));
        assert_eq!(change.delete_apps, [id("/h/web")]);
        assert_eq!(change.delete_groups, [id("/h/empty")]);
        // `db` is listed without `apps`: its app stays.
        assert!(!change.delete_apps.contains(&id("/h/db/mysql")));
        let change = apply_update(&t.view(), &update(json!({"groups": []}), "/h"), Timestamp(2));
        assert_eq!(change.delete_apps, [id("/h/db/mysql")]);
        assert_eq!(change.delete_groups, [id("/h/db"), id("/h/empty")]);
    }

    #[test]
    fn a_rollback_restores_the_group_as_it_was() {
        let mut t = seeded();
        let before = GroupVersion::capture(&id("/h"), t.groups.values(), t.apps.values()).unwrap();
        assert_eq!(before.apps.len(), 1);
        assert_eq!(before.groups.iter().map(|g| g.id.to_string()).collect::<Vec<_>>(), ["/h/db", "/h/empty"]);
        let change = apply_update(&t.view(), &update(json!({"apps": [{"id": "other", "cmd": "run3"}], "groups": []}), "/h"), Timestamp(2));
        t.apply(&change, Timestamp(2));
        assert_eq!(t.apps.keys().map(ToString::to_string).collect::<Vec<_>>(), ["/h/other"]);
        let change = apply_update(&t.view(), &before.clone().into_update(), Timestamp(3));
        t.apply(&change, Timestamp(3));
        let after = GroupVersion::capture(&id("/h"), t.groups.values(), t.apps.values()).unwrap();
        assert_eq!(t.apps.keys().map(ToString::to_string).collect::<Vec<_>>(), ["/h/db/mysql", "/h/web"]);
        assert_eq!(after.apps, before.apps);
        assert_eq!(after.dependencies, before.dependencies);
        // The stored form reads back as it was written.
        let stored = serde_json::to_vec(&before).unwrap();
        assert_eq!(serde_json::from_slice::<GroupVersion>(&stored).unwrap(), before);
    }

    #[test]
    fn deleting_the_root_empties_it() {
        let t = seeded();
        let change = delete_group(&t.view(), &PathId::root());
        assert_eq!(change.delete_apps.len(), 2);
        assert!(!change.delete_groups.contains(&PathId::root()));
        let change = delete_group(&t.view(), &id("/h/db"));
        assert_eq!((change.delete_apps, change.delete_groups), (vec![id("/h/db/mysql")], vec![id("/h/db")]));
    }

    #[test]
    fn apps_and_groups_may_not_share_ids() {
        let t = seeded();
        let is_app = |p: &PathId| t.apps.contains_key(p);
        let is_group = |p: &PathId| t.groups.contains_key(p);
        assert_eq!(clashes([&id("/h/db")], [], is_app, is_group), [id("/h/db")]);
        assert_eq!(clashes([&id("/h/web/x")], [], is_app, is_group), [id("/h/web")]);
        assert_eq!(clashes([], [&id("/h/web")], is_app, is_group), [id("/h/web")]);
        assert!(clashes([&id("/h/new")], [&id("/h/g")], is_app, is_group).is_empty());
        assert!(clash_violation(&[id("/h/web")]).errors[0].starts_with("Groups and Applications may not have the same identifier."));
    }

    /// One API call, as the scheduler turns it into a tree change.
    #[derive(Debug, Clone)]
    enum Op {
        /// `PUT /v2/groups/{base}` with a body.
        Group(GroupDefinition),
        /// `PUT /v2/apps/{id}` (create or replace).
        PutApp(AppId, u32),
        /// `DELETE /v2/apps/{id}`.
        DeleteApp(AppId),
        /// `DELETE /v2/groups/{id}`.
        DeleteGroup(PathId),
    }

    /// The apps a call names, by its own words (a spec independent of `apply_update`): the
    /// apps it lists, the direct apps of every group whose `apps` it gives, everything within a
    /// subgroup left out of a `groups` it gives, and everything within a group it deletes.
    fn named(op: &Op, t: &Tree) -> BTreeSet<AppId> {
        fn walk(g: &GroupDefinition, t: &Tree, out: &mut BTreeSet<AppId>) {
            if let Some(apps) = &g.apps {
                out.extend(apps.iter().map(|a| a.id.clone()));
                out.extend(t.apps.keys().filter(|a| a.parent() == g.id).cloned());
            }
            if let Some(groups) = &g.groups {
                let listed: BTreeSet<&PathId> = groups.iter().map(|s| &s.id).collect();
                for a in t.apps.keys() {
                    let mut top = a.clone();
                    while !top.is_root() && top.parent() != g.id {
                        top = top.parent();
                    }
                    if !top.is_root() && top != *a && !listed.contains(&top) {
                        out.insert(a.clone());
                    }
                }
                for s in groups {
                    walk(s, t, out);
                }
            }
        }
        let mut out = BTreeSet::new();
        match op {
            Op::Group(g) => walk(g, t, &mut out),
            Op::PutApp(a, _) | Op::DeleteApp(a) => {
                out.insert(a.clone());
            }
            Op::DeleteGroup(g) => out.extend(t.apps.keys().filter(|a| a.is_within(g)).cloned()),
        }
        out
    }

    fn segment() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["a", "b", "c"]).prop_map(str::to_string)
    }

    fn path() -> impl Strategy<Value = PathId> {
        prop::collection::vec(segment(), 1..4).prop_map(|s| PathId::parse(&format!("/{}", s.join("/"))).unwrap())
    }

    fn body(depth: u32) -> BoxedStrategy<serde_json::Value> {
        let apps = prop::option::of(prop::collection::vec((segment(), 0u32..3), 0..3));
        let deps = prop::option::of(prop::collection::vec(segment(), 0..2));
        if depth == 0 {
            (apps, deps).prop_map(|(apps, deps)| group_json(apps, None, deps)).boxed()
        } else {
            let groups = prop::option::of(prop::collection::vec((segment(), body(depth - 1)), 0..3));
            (apps, groups, deps).prop_map(|(apps, groups, deps)| group_json(apps, groups, deps)).boxed()
        }
    }

    fn group_json(
        apps: Option<Vec<(String, u32)>>,
        groups: Option<Vec<(String, serde_json::Value)>>,
        deps: Option<Vec<String>>,
    ) -> serde_json::Value {
        let mut o = serde_json::Map::new();
        if let Some(apps) = apps {
            o.insert(
                "apps".into(),
                json!(apps.into_iter().map(|(id, n)| json!({"id": id, "cmd": "run", "instances": n})).collect::<Vec<_>>()),
            );
        }
        if let Some(groups) = groups {
            let groups: Vec<serde_json::Value> = groups
                .into_iter()
                .map(|(id, mut g)| {
                    g["id"] = json!(id);
                    g
                })
                .collect();
            o.insert("groups".into(), json!(groups));
        }
        if let Some(deps) = deps {
            o.insert("dependencies".into(), json!(deps));
        }
        serde_json::Value::Object(o)
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (prop::option::of(path()), body(2)).prop_filter_map("a valid group body", |(base, b)| {
                let base = base.unwrap_or_default();
                parse_group(b.to_string().as_bytes(), &base).ok().map(Op::Group)
            }),
            (path(), 0u32..3).prop_map(|(p, n)| Op::PutApp(p, n)),
            path().prop_map(Op::DeleteApp),
            path().prop_map(Op::DeleteGroup),
        ]
    }

    /// The change an op makes, or None where the scheduler refuses it (an id clash, an unknown
    /// app or group).
    fn change_of(op: &Op, t: &Tree, version: Timestamp) -> Option<TreeChange> {
        let change = match op {
            Op::Group(g) => apply_update(&t.view(), g, version),
            Op::PutApp(a, n) => TreeChange { put_apps: vec![app(&a.to_string(), *n)], ..TreeChange::default() },
            Op::DeleteApp(a) => {
                t.apps.contains_key(a).then_some(())?;
                TreeChange { delete_apps: vec![a.clone()], ..TreeChange::default() }
            }
            Op::DeleteGroup(g) => {
                t.groups.contains_key(g).then_some(())?;
                delete_group(&t.view(), g)
            }
        };
        let mut after = t.clone();
        after.apply(&change, version);
        let found = clashes(
            change.put_apps.iter().map(|a| &a.id),
            change.put_groups.iter().map(|g| &g.id),
            |p| after.apps.contains_key(p),
            |p| after.groups.contains_key(p),
        );
        found.is_empty().then_some(change)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// No sequence of app and group calls removes or changes an app the call did not name,
        /// and the tree stays whole: every app's group exists, no app shares an id with a group.
        #[test]
        fn calls_touch_only_the_apps_they_name(ops in prop::collection::vec(op(), 1..12)) {
            let mut t = Tree::new();
            for (i, op) in ops.iter().enumerate() {
                let version = Timestamp(i as i64 + 1);
                let Some(change) = change_of(op, &t, version) else { continue };
                let named = named(op, &t);
                let before = t.apps.clone();
                t.apply(&change, version);
                for (id, app) in &before {
                    if !named.contains(id) {
                        prop_assert_eq!(t.apps.get(id), Some(app), "{:?} touched {} which it does not name", op, id);
                    }
                }
                for id in t.apps.keys() {
                    prop_assert!(t.groups.contains_key(&id.parent()), "{} has no group after {:?}", id, op);
                    prop_assert!(!t.groups.contains_key(id), "{} is an app and a group after {:?}", id, op);
                }
                prop_assert!(t.groups.contains_key(&PathId::root()));
            }
        }

        /// Capturing a group and rolling back to it gives the same group, whatever came between.
        #[test]
        fn rollback_restores_any_captured_group(first in prop::collection::vec(op(), 1..6), then in prop::collection::vec(op(), 0..6), target in path()) {
            let mut t = Tree::new();
            let mut v = 0;
            for op in &first {
                v += 1;
                if let Some(change) = change_of(op, &t, Timestamp(v)) {
                    t.apply(&change, Timestamp(v));
                }
            }
            let Some(captured) = GroupVersion::capture(&target, t.groups.values(), t.apps.values()) else { return Ok(()) };
            for op in &then {
                v += 1;
                if let Some(change) = change_of(op, &t, Timestamp(v)) {
                    t.apply(&change, Timestamp(v));
                }
            }
            v += 1;
            let rollback = Op::Group(captured.clone().into_update());
            if let Some(change) = change_of(&rollback, &t, Timestamp(v)) {
                t.apply(&change, Timestamp(v));
                let now = GroupVersion::capture(&target, t.groups.values(), t.apps.values()).unwrap();
                /// Each group within, with its dependencies and apps (versions aside, which a
                /// rollback sets anew).
                fn flat(g: &GroupVersion, out: &mut Vec<(PathId, Vec<PathId>, Vec<AppDefinition>)>) {
                    out.push((g.id.clone(), g.dependencies.clone(), g.apps.clone()));
                    for s in &g.groups {
                        flat(s, out);
                    }
                }
                let strip = |g: &GroupVersion| {
                    let mut out = Vec::new();
                    flat(g, &mut out);
                    out
                };
                prop_assert_eq!(strip(&now), strip(&captured));
            }
        }
    }
}
