//! Deployment planning: the ordered steps that take a set of apps from an original state to a
//! target state, and the conflicts between deployments.
//!
//! Marathon's source is `core/deployment/DeploymentPlan.scala` (`DeploymentPlan.apply`):
//! 1. one step stopping every app missing from the target;
//! 2. one step starting every new app with 0 instances;
//! 3. one step per dependency depth (the longest dependency path of the app in the target,
//!    counted in apps: an app without dependencies has depth 1), holding for each new or changed
//!    app: new → scale to its instances; only `instances` changed, or scaled to 0 → scale
//!    (with the instances to kill, if any); config changed → restart; unchanged → nothing.
//!
//! Empty steps are dropped. Steps run one after the other; the actions of a step run together.
//! Marathon refuses dependency cycles when validating the root group; here planning does.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::ids::{AppId, DeploymentId, InstanceId};

/// What planning needs to know about an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedApp {
    /// The app.
    pub id: AppId,
    /// Its instance count.
    pub instances: u32,
    /// The apps it depends on (group dependencies already resolved to apps). Dependencies on
    /// apps outside the target are ignored.
    pub dependencies: Vec<AppId>,
    /// Opaque: two versions of the app need a restart between them exactly when their keys
    /// differ (everything but `instances`, typically the config version).
    pub config_key: String,
}

/// One step of a plan: actions that run together.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Step {
    /// The actions, ordered by app id.
    pub actions: Vec<Action>,
}

/// One deployment action on one app (stored with running deployments, so it is serializable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Register a new app (with 0 instances; a later step scales it).
    StartApplication {
        /// The app.
        app: AppId,
    },
    /// Kill all instances of an app that is being removed.
    StopApplication {
        /// The app.
        app: AppId,
    },
    /// Bring an app to `instances` instances, killing `to_kill` first.
    ScaleApplication {
        /// The app.
        app: AppId,
        /// The target instance count.
        instances: u32,
        /// Instances to kill first (kill-and-scale); empty otherwise.
        to_kill: Vec<InstanceId>,
    },
    /// Replace all instances of an app by instances of its new config (rolling upgrade).
    RestartApplication {
        /// The app.
        app: AppId,
    },
}

impl Action {
    /// Marathon's action name (`StartApplication`, `StopApplication`, `ScaleApplication`,
    /// `RestartApplication`).
    pub fn name(&self) -> &'static str {
        match self {
            Action::StartApplication { .. } => "StartApplication",
            Action::StopApplication { .. } => "StopApplication",
            Action::ScaleApplication { .. } => "ScaleApplication",
            Action::RestartApplication { .. } => "RestartApplication",
        }
    }

    /// The app the action is about.
    pub fn app(&self) -> &AppId {
        match self {
            Action::StartApplication { app }
            | Action::StopApplication { app }
            | Action::ScaleApplication { app, .. }
            | Action::RestartApplication { app } => app,
        }
    }
}

/// Why no plan could be made.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PlanError {
    /// The target's dependencies form a cycle.
    #[error("dependency graph has cyclic dependencies between {}; remove one of these dependencies", list(.apps))]
    Cycle {
        /// The apps on a cycle (or between two cycles), by id.
        apps: Vec<AppId>,
    },
    /// The same app id appears twice in the original or the target.
    #[error("app '{0}' is listed twice; every app id must be unique")]
    DuplicateApp(AppId),
}

/// `a, b, c` for an error message.
fn list(apps: &[AppId]) -> String {
    apps.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// The apps by id; an error on a repeated id.
fn index(apps: &[PlannedApp]) -> Result<BTreeMap<&AppId, &PlannedApp>, PlanError> {
    let mut by_id = BTreeMap::new();
    for app in apps {
        if by_id.insert(&app.id, app).is_some() {
            return Err(PlanError::DuplicateApp(app.id.clone()));
        }
    }
    Ok(by_id)
}

/// The dependency depth of every app in `apps`: 1 without dependencies, else one more than the
/// deepest dependency (the longest path in apps, as Marathon's `runSpecsGroupedByLongestPath`).
/// Iterative (Kahn's algorithm), so deep chains cannot overflow the stack.
fn dependency_depths<'a>(apps: &BTreeMap<&'a AppId, &'a PlannedApp>) -> Result<BTreeMap<&'a AppId, usize>, PlanError> {
    let mut waiting_on: BTreeMap<&AppId, usize> = BTreeMap::new();
    let mut dependents: BTreeMap<&AppId, Vec<&AppId>> = BTreeMap::new();
    for (&id, app) in apps {
        let deps: BTreeSet<&AppId> = app.dependencies.iter().filter(|d| apps.contains_key(d)).collect();
        waiting_on.insert(id, deps.len());
        for dep in deps {
            dependents.entry(dep).or_default().push(id);
        }
    }
    let mut depth: BTreeMap<&AppId, usize> = apps.keys().map(|&id| (id, 1)).collect();
    let mut ready: VecDeque<&AppId> = waiting_on.iter().filter(|(_, n)| **n == 0).map(|(&id, _)| id).collect();
    while let Some(id) = ready.pop_front() {
        let next = depth.get(id).copied().unwrap_or(1).saturating_add(1);
        for &dependent in dependents.get(id).map(Vec::as_slice).unwrap_or_default() {
            if let Some(d) = depth.get_mut(dependent) {
                *d = (*d).max(next);
            }
            if let Some(n) = waiting_on.get_mut(dependent) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    ready.push_back(dependent);
                }
            }
        }
    }
    let stuck: BTreeSet<&AppId> = waiting_on.iter().filter(|(_, n)| **n > 0).map(|(&id, _)| id).collect();
    if stuck.is_empty() {
        return Ok(depth);
    }
    Err(PlanError::Cycle { apps: cycle_members(apps, &stuck) })
}

/// Of the apps stuck behind a cycle, those on a cycle or between cycles: apps that only depend
/// on a cycle (nothing stuck depends on them) are pruned, repeatedly.
fn cycle_members(apps: &BTreeMap<&AppId, &PlannedApp>, stuck: &BTreeSet<&AppId>) -> Vec<AppId> {
    let deps_in = |id: &AppId| -> BTreeSet<&AppId> {
        apps.get(id).map(|a| a.dependencies.iter().filter(|d| stuck.contains(d)).collect()).unwrap_or_default()
    };
    let mut depended_on: BTreeMap<&AppId, usize> = stuck.iter().map(|&id| (id, 0)).collect();
    for &id in stuck {
        for dep in deps_in(id) {
            if let Some(n) = depended_on.get_mut(dep) {
                *n += 1;
            }
        }
    }
    let mut prune: Vec<&AppId> = depended_on.iter().filter(|(_, n)| **n == 0).map(|(&id, _)| id).collect();
    let mut pruned: BTreeSet<&AppId> = BTreeSet::new();
    while let Some(id) = prune.pop() {
        pruned.insert(id);
        for dep in deps_in(id) {
            if let Some(n) = depended_on.get_mut(dep) {
                *n = n.saturating_sub(1);
                if *n == 0 && !pruned.contains(dep) {
                    prune.push(dep);
                }
            }
        }
    }
    stuck.iter().filter(|id| !pruned.contains(*id)).map(|&id| id.clone()).collect()
}

/// The plan from `original` to `target`: a stop step, a start step, then one step per
/// dependency depth, empty steps left out (see the module docs for the rules). `to_kill` names
/// instances a ScaleApplication must kill (kill-and-scale).
///
/// An existing app is changed when its `instances` or its `config_key` differ; dependencies only
/// order the steps (a change of dependencies alone is no change, unless the caller folds them
/// into the key). Fails on a dependency cycle in the target, or when an app id appears twice in
/// either list.
pub fn plan(original: &[PlannedApp], target: &[PlannedApp], to_kill: &BTreeMap<AppId, Vec<InstanceId>>) -> Result<Vec<Step>, PlanError> {
    let before = index(original)?;
    let after = index(target)?;
    let depths = dependency_depths(&after)?;

    let stop = Step {
        actions: before.keys().filter(|id| !after.contains_key(*id)).map(|&id| Action::StopApplication { app: id.clone() }).collect(),
    };
    let start = Step {
        actions: after.keys().filter(|id| !before.contains_key(*id)).map(|&id| Action::StartApplication { app: id.clone() }).collect(),
    };

    let mut by_depth: BTreeMap<usize, Step> = BTreeMap::new();
    for (&id, app) in &after {
        let scale = |to_kill: Vec<InstanceId>| Action::ScaleApplication { app: id.clone(), instances: app.instances, to_kill };
        let action = match before.get(id) {
            None => scale(Vec::new()),
            Some(old) if old.config_key == app.config_key && old.instances == app.instances => continue,
            Some(old) if old.config_key == app.config_key || app.instances == 0 => scale(to_kill.get(id).cloned().unwrap_or_default()),
            Some(_) => Action::RestartApplication { app: id.clone() },
        };
        let depth = depths.get(id).copied().unwrap_or(1);
        by_depth.entry(depth).or_default().actions.push(action);
    }

    let steps = [stop, start].into_iter().chain(by_depth.into_values());
    Ok(steps.filter(|s| !s.actions.is_empty()).collect())
}

/// Every app some action of `steps` is about (a deployment's `affectedApps`).
pub fn affected_apps(steps: &[Step]) -> BTreeSet<AppId> {
    steps.iter().flat_map(|s| s.actions.iter().map(|a| a.app().clone())).collect()
}

/// The running deployments that touch an app of `new_affected`, each once, in the order given:
/// a new deployment conflicts with them (409 unless forced).
pub fn conflicts(new_affected: &BTreeSet<AppId>, running: &[(DeploymentId, BTreeSet<AppId>)]) -> Vec<DeploymentId> {
    let mut found: Vec<DeploymentId> = Vec::new();
    for (id, apps) in running {
        if !apps.is_disjoint(new_affected) && !found.contains(id) {
            found.push(id.clone());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn app_id(s: &str) -> AppId {
        AppId::parse(s).unwrap_or_default()
    }

    fn app(id: &str, instances: u32, config: &str, deps: &[&str]) -> PlannedApp {
        PlannedApp { id: app_id(id), instances, dependencies: deps.iter().map(|d| app_id(d)).collect(), config_key: config.to_string() }
    }

    /// The plan as `[["ScaleApplication /a", …], …]` for compact assertions.
    fn names(steps: &[Step]) -> Vec<Vec<String>> {
        steps.iter().map(|s| s.actions.iter().map(|a| format!("{} {}", a.name(), a.app())).collect()).collect()
    }

    fn no_kills() -> BTreeMap<AppId, Vec<InstanceId>> {
        BTreeMap::new()
    }

    #[test]
    fn new_app_is_started_then_scaled() -> Result<(), PlanError> {
        let steps = plan(&[], &[app("/a", 3, "v1", &[])], &no_kills())?;
        assert_eq!(names(&steps), vec![vec!["StartApplication /a"], vec!["ScaleApplication /a"]]);
        assert!(matches!(&steps[1].actions[0], Action::ScaleApplication { instances: 3, to_kill, .. } if to_kill.is_empty()));
        Ok(())
    }

    #[test]
    fn removed_app_is_stopped() -> Result<(), PlanError> {
        let steps = plan(&[app("/a", 3, "v1", &[]), app("/b", 1, "v1", &[])], &[app("/b", 1, "v1", &[])], &no_kills())?;
        assert_eq!(names(&steps), vec![vec!["StopApplication /a"]]);
        Ok(())
    }

    #[test]
    fn scale_restart_and_unchanged() -> Result<(), PlanError> {
        let original = [app("/a", 3, "v1", &[]), app("/b", 2, "v1", &[]), app("/c", 1, "v1", &[])];
        let target = [app("/a", 5, "v1", &[]), app("/b", 2, "v2", &[]), app("/c", 1, "v1", &[])];
        let steps = plan(&original, &target, &no_kills())?;
        assert_eq!(names(&steps), vec![vec!["ScaleApplication /a", "RestartApplication /b"]]);
        assert!(plan(&original, &original, &no_kills())?.is_empty());
        Ok(())
    }

    #[test]
    fn scale_carries_the_instances_to_kill_and_scaling_to_zero_is_a_scale() -> Result<(), PlanError> {
        let victim = InstanceId::new(&app_id("/a"), "x");
        let kills = BTreeMap::from([(app_id("/a"), vec![victim.clone()])]);
        let steps = plan(&[app("/a", 3, "v1", &[])], &[app("/a", 2, "v1", &[])], &kills)?;
        assert_eq!(steps[0].actions[0], Action::ScaleApplication { app: app_id("/a"), instances: 2, to_kill: vec![victim] });
        // A config change together with instances 0 scales down instead of restarting.
        let steps = plan(&[app("/a", 3, "v1", &[])], &[app("/a", 0, "v2", &[])], &no_kills())?;
        assert_eq!(steps[0].actions[0], Action::ScaleApplication { app: app_id("/a"), instances: 0, to_kill: vec![] });
        Ok(())
    }

    #[test]
    fn dependencies_order_the_steps_by_longest_path() -> Result<(), PlanError> {
        // /db ← /api ← /web, and /cache with /web depending on it too; /worker depends on /db.
        let target = [
            app("/db", 1, "v1", &[]),
            app("/cache", 1, "v1", &[]),
            app("/api", 1, "v1", &["/db"]),
            app("/web", 1, "v1", &["/api", "/cache"]),
            app("/worker", 1, "v1", &["/db", "/missing"]),
        ];
        let steps = plan(&[], &target, &no_kills())?;
        assert_eq!(
            names(&steps),
            vec![
                vec![
                    "StartApplication /api",
                    "StartApplication /cache",
                    "StartApplication /db",
                    "StartApplication /web",
                    "StartApplication /worker"
                ],
                vec!["ScaleApplication /cache", "ScaleApplication /db"],
                vec!["ScaleApplication /api", "ScaleApplication /worker"],
                vec!["ScaleApplication /web"],
            ]
        );
        // Unchanged apps still count for depth: only /web changes, and it stays alone.
        let mut changed = target.clone();
        changed[3].config_key = "v2".into();
        let steps = plan(&target, &changed, &no_kills())?;
        assert_eq!(names(&steps), vec![vec!["RestartApplication /web"]]);
        Ok(())
    }

    #[test]
    fn stop_and_start_come_first() -> Result<(), PlanError> {
        let original = [app("/old", 1, "v1", &[]), app("/a", 1, "v1", &[])];
        let target = [app("/a", 1, "v2", &[]), app("/new", 2, "v1", &["/a"])];
        let steps = plan(&original, &target, &no_kills())?;
        assert_eq!(
            names(&steps),
            vec![vec!["StopApplication /old"], vec!["StartApplication /new"], vec!["RestartApplication /a"], vec!["ScaleApplication /new"],]
        );
        assert_eq!(affected_apps(&steps), BTreeSet::from([app_id("/a"), app_id("/new"), app_id("/old")]));
        Ok(())
    }

    #[test]
    fn cycles_are_refused_naming_their_members() {
        let target = [
            app("/a", 1, "v1", &["/b"]),
            app("/b", 1, "v1", &["/c"]),
            app("/c", 1, "v1", &["/a"]),
            app("/d", 1, "v1", &["/a"]),
            app("/e", 1, "v1", &[]),
        ];
        let err = plan(&[], &target, &no_kills()).err();
        assert_eq!(err, Some(PlanError::Cycle { apps: vec![app_id("/a"), app_id("/b"), app_id("/c")] }));
        assert!(err.is_some_and(|e| e.to_string().contains("/a, /b, /c")));
        let err = plan(&[], &[app("/self", 1, "v1", &["/self"])], &no_kills()).err();
        assert_eq!(err, Some(PlanError::Cycle { apps: vec![app_id("/self")] }));
    }

    #[test]
    fn duplicate_ids_are_refused() {
        let err = plan(&[], &[app("/a", 1, "v1", &[]), app("/a", 2, "v1", &[])], &no_kills()).err();
        assert_eq!(err, Some(PlanError::DuplicateApp(app_id("/a"))));
    }

    #[test]
    fn deep_chains_do_not_overflow() -> Result<(), PlanError> {
        let ids: Vec<String> = (0..20_000).map(|n| format!("/a{n}")).collect();
        let target: Vec<PlannedApp> = ids
            .iter()
            .enumerate()
            .map(|(n, id)| {
                let deps: Vec<&str> = if n == 0 { vec![] } else { vec![ids[n - 1].as_str()] };
                app(id, 1, "v1", &deps)
            })
            .collect();
        let steps = plan(&[], &target, &no_kills())?;
        assert_eq!(steps.len(), 20_001);
        Ok(())
    }

    #[test]
    fn conflicts_are_deployments_sharing_an_app() {
        let running = vec![
            (DeploymentId("d1".into()), BTreeSet::from([app_id("/a"), app_id("/b")])),
            (DeploymentId("d2".into()), BTreeSet::from([app_id("/c")])),
            (DeploymentId("d1".into()), BTreeSet::from([app_id("/b")])),
            (DeploymentId("d3".into()), BTreeSet::from([app_id("/b")])),
        ];
        let found = conflicts(&BTreeSet::from([app_id("/b")]), &running);
        assert_eq!(found, vec![DeploymentId("d1".into()), DeploymentId("d3".into())]);
        assert!(conflicts(&BTreeSet::from([app_id("/z")]), &running).is_empty());
        assert!(conflicts(&BTreeSet::new(), &running).is_empty());
    }

    proptest! {
        /// Every dependency of an affected app is deployed in an earlier step (or not at all).
        #[test]
        fn acyclic_dependencies_come_first(
            n in 1usize..12,
            edges in proptest::collection::vec((0usize..12, 0usize..12), 0..30),
            changed in proptest::collection::vec(any::<bool>(), 12),
        ) {
            // Only edges from a higher to a lower index: acyclic by construction.
            let ids: Vec<String> = (0..n).map(|i| format!("/app{i}")).collect();
            let deps_of = |i: usize| -> Vec<&str> {
                edges.iter().filter(|(a, b)| *a == i && *b < i && *b < n).map(|(_, b)| ids[*b].as_str()).collect()
            };
            let original: Vec<PlannedApp> = (0..n).map(|i| app(&ids[i], 1, "v1", &deps_of(i))).collect();
            let target: Vec<PlannedApp> = (0..n)
                .map(|i| app(&ids[i], 1, if changed[i] { "v2" } else { "v1" }, &deps_of(i)))
                .collect();
            let steps = plan(&original, &target, &BTreeMap::new()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let step_of: BTreeMap<AppId, usize> = steps
                .iter()
                .enumerate()
                .flat_map(|(s, step)| step.actions.iter().map(move |a| (a.app().clone(), s)))
                .collect();
            prop_assert_eq!(step_of.len(), changed[..n].iter().filter(|c| **c).count());
            for (i, id) in ids.iter().enumerate() {
                let Some(s) = step_of.get(&app_id(id)) else { continue };
                for dep in deps_of(i) {
                    if let Some(d) = step_of.get(&app_id(dep)) {
                        prop_assert!(d < s, "{} in step {} but its dependency {} in step {}", id, s, dep, d);
                    }
                }
            }
        }
    }
}
