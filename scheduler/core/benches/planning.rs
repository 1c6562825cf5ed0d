//! Deployment planning: `deploy::plan` from one version of 1,000 apps to the next (100 removed,
//! 100 added, 100 restarted, 100 scaled, dependency chains ten deep). No meaningful baseline:
//! the figure is plans per second, and apps planned per second.
//!
//! Run: `cargo bench -p framework-core --bench planning`. Under `cargo test` it only says how.

mod common;

use std::collections::BTreeMap;
use std::hint::black_box;

use framework_core::deploy::{PlannedApp, plan};
use framework_core::ids::AppId;

const APPS: usize = 1_000;

fn id(k: usize) -> AppId {
    AppId::parse(&format!("/prod/group-{}/app-{k}", k / 10)).expect("valid id")
}

/// App `k`, depending on the previous app of its group of ten.
fn app(k: usize, instances: u32, config: &str) -> PlannedApp {
    PlannedApp {
        id: id(k),
        instances,
        dependencies: if k.is_multiple_of(10) { Vec::new() } else { vec![id(k - 1)] },
        config_key: config.to_string(),
    }
}

fn main() {
    if !common::wanted("planning") {
        return;
    }
    let original: Vec<PlannedApp> = (0..APPS).map(|k| app(k, 3, "v1")).collect();
    let target: Vec<PlannedApp> = (100..APPS + 100)
        .map(|k| match k {
            k if k < 200 => app(k, 3, "v2"),
            k if k < 300 => app(k, 5, "v1"),
            k => app(k, 3, "v1"),
        })
        .collect();
    let to_kill = BTreeMap::new();
    let steps = plan(&original, &target, &to_kill).expect("a plan");
    let actions: usize = steps.iter().map(|s| s.actions.len()).sum();
    let plans = common::rate(|| {
        black_box(plan(black_box(&original), black_box(&target), &to_kill).ok());
        1
    });
    common::header(&format!("deploy::plan, {APPS} apps → {APPS} apps: {} steps, {actions} actions", steps.len()));
    common::row("plans", plans, "plans/s", None);
    common::row("apps planned (original + target)", plans * (2 * APPS) as f64, "apps/s", None);
}
