//! Service ports, as Marathon assigns them: `portDefinitions[].port` (host networking) and
//! `portMappings[].servicePort` (container networking) of 0 get a port from
//! `--local-port-min`..`--local-port-max` (the lowest free one), unique across all apps, and
//! kept when an update asks for 0 again at the same position; an explicit port another app
//! holds is refused. Service routers (marathon-lb and the like) key on them, so an app keeps
//! its ports across updates, restarts and leader changes (they are stored with the app).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use crate::app::{AppDefinition, NetworkMode};
use crate::ids::AppId;
use crate::scheduler::Rejection;

/// The service ports an app holds, in order (0: none assigned).
pub fn of(app: &AppDefinition) -> Vec<u32> {
    slots(app).iter().map(|s| **s).collect()
}

/// Whether the app uses host networking (the default): its service ports are its port
/// definitions' ports; else its port mappings' service ports.
fn host_networking(app: &AppDefinition) -> bool {
    app.networks.first().is_none_or(|n| n.mode == NetworkMode::Host)
}

fn slots(app: &AppDefinition) -> Vec<&u32> {
    if host_networking(app) {
        app.port_definitions.iter().flatten().map(|p| &p.port).collect()
    } else {
        app.container.iter().flat_map(|c| c.port_mappings.iter().flatten()).map(|m| &m.service_port).collect()
    }
}

fn slots_mut(app: &mut AppDefinition) -> Vec<&mut u32> {
    if host_networking(app) {
        app.port_definitions.iter_mut().flatten().map(|p| &mut p.port).collect()
    } else {
        app.container.iter_mut().flat_map(|c| c.port_mappings.iter_mut().flatten()).map(|m| &mut m.service_port).collect()
    }
}

/// Which app holds each service port (the index [`assign`] reads; the scheduler keeps it
/// in step with its apps).
pub type Holders = BTreeMap<u32, AppId>;

/// The index of `apps`' service ports.
pub fn holders<'a>(apps: impl IntoIterator<Item = &'a AppDefinition>) -> Holders {
    let mut h = Holders::new();
    for app in apps {
        for p in of(app).into_iter().filter(|p| *p != 0) {
            h.insert(p, app.id.clone());
        }
    }
    h
}

/// Assigns the service ports of `put` (the apps a change writes), given the ports `held` now
/// (those of apps in `put` or `removed` are given up) and each changed app's `previous` ports,
/// from `range` (`min..max`, max excluded as in Marathon). Refuses (422) explicit ports another
/// app holds, and a range with no port left. Costs O(ports held) at most, not a scan of apps.
pub fn assign(
    range: (u32, u32),
    held: &Holders,
    previous: &dyn Fn(&AppId) -> Vec<u32>,
    put: &mut [AppDefinition],
    removed: &BTreeSet<AppId>,
) -> Result<(), Rejection> {
    let changing: BTreeSet<AppId> = put.iter().map(|a| a.id.clone()).collect();
    let gone = |id: &AppId| changing.contains(id) || removed.contains(id);
    // Ports claimed by this change.
    let mut claimed: BTreeMap<u32, AppId> = BTreeMap::new();
    let holder = |p: u32, claimed: &BTreeMap<u32, AppId>| -> Option<AppId> {
        claimed.get(&p).cloned().or_else(|| held.get(&p).filter(|id| !gone(id)).cloned())
    };
    // Explicit ports: never one another app holds, nor one two changed apps both ask for.
    let mut errors = Vec::new();
    for app in put.iter() {
        for p in of(app).into_iter().filter(|p| *p != 0) {
            match holder(p, &claimed) {
                Some(other) if other != app.id => {
                    errors.push(format!("Requested service port {p} conflicts with a service port in app {other}"));
                }
                _ => {
                    claimed.insert(p, app.id.clone());
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(Rejection {
            status: 422,
            body: json!({"message": "Object is not valid", "details": [{"path": "/", "errors": errors}]}),
        });
    }
    // Zeros: first every position whose earlier port is still free keeps it; then the others
    // get the lowest free ones (so a new port never takes one a later position keeps).
    let (min, max) = range;
    for app in put.iter_mut() {
        let before = previous(&app.id);
        let id = app.id.clone();
        let mut slots = slots_mut(app);
        for (i, slot) in slots.iter_mut().enumerate() {
            if **slot == 0
                && let Some(p) = before.get(i).copied().filter(|p| *p != 0 && holder(*p, &claimed).is_none())
            {
                **slot = p;
                claimed.insert(p, id.clone());
            }
        }
        for slot in slots.iter_mut().filter(|s| ***s == 0) {
            let Some(port) = lowest_free(min, max, held, &gone, &claimed) else {
                return Err(Rejection {
                    status: 422,
                    body: json!({"message": "Object is not valid", "details": [{"path": "/", "errors": [
                        format!("no service port is left for {id} in {min}..{max}: free some, or widen --local-port-min/--local-port-max")
                    ]}]}),
                });
            };
            **slot = port;
            claimed.insert(port, id.clone());
        }
    }
    Ok(())
}

/// The lowest port in `min..max` neither held (by an app that keeps it) nor claimed, walking
/// the held ports in order.
fn lowest_free(min: u32, max: u32, held: &Holders, gone: &dyn Fn(&AppId) -> bool, claimed: &BTreeMap<u32, AppId>) -> Option<u32> {
    let mut p = min;
    for (&q, id) in held.range(min..max) {
        while p < q {
            if !claimed.contains_key(&p) {
                return Some(p);
            }
            p += 1;
        }
        if gone(id) && !claimed.contains_key(&p) {
            return Some(p);
        }
        p = q + 1;
    }
    (p..max).find(|p| !claimed.contains_key(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(json: &str) -> AppDefinition {
        serde_json::from_str(json).expect("app")
    }

    fn host(id: &str, ports: &[u32]) -> AppDefinition {
        let defs: Vec<String> = ports.iter().map(|p| format!(r#"{{"port":{p}}}"#)).collect();
        app(&format!(r#"{{"id":"{id}","cmd":"x","portDefinitions":[{}]}}"#, defs.join(",")))
    }

    fn run_removing(current: &[AppDefinition], put: &mut [AppDefinition], removed: &BTreeSet<AppId>) -> Result<(), Rejection> {
        let previous = |id: &AppId| current.iter().find(|a| &a.id == id).map(of).unwrap_or_default();
        assign((10000, 10005), &holders(current), &previous, put, removed)
    }

    fn run(current: &[AppDefinition], put: &mut [AppDefinition]) -> Result<(), Rejection> {
        run_removing(current, put, &BTreeSet::new())
    }

    #[test]
    fn zeros_get_the_lowest_free_ports_unique_across_apps() {
        let current = [host("/a", &[10000, 10002])];
        let mut put = [host("/b", &[0, 0]), host("/c", &[0])];
        run(&current, &mut put).expect("assigned");
        assert_eq!(of(&put[0]), [10001, 10003]);
        assert_eq!(of(&put[1]), [10004]);
    }

    #[test]
    fn an_update_asking_for_zero_keeps_the_ports_it_had() {
        let current = [host("/a", &[10003, 10001]), host("/b", &[10000])];
        let mut put = [host("/a", &[0, 0, 0])];
        run(&current, &mut put).expect("assigned");
        assert_eq!(of(&put[0]), [10003, 10001, 10002], "kept by position; a new one for the new position");
    }

    #[test]
    fn explicit_ports_of_other_apps_are_refused_with_marathons_message() {
        let current = [host("/a", &[10001])];
        let e = run(&current, &mut [host("/b", &[10001])]).expect_err("conflict");
        assert_eq!(e.status, 422);
        assert_eq!(e.body["details"][0]["errors"][0], "Requested service port 10001 conflicts with a service port in app /a");
        // Its own port again is fine, and so is one a removed app gave up.
        run(&current, &mut [host("/a", &[10001])]).expect("its own");
        let removed = BTreeSet::from([AppId::parse("/a").expect("id")]);
        run_removing(&current, &mut [host("/b", &[10001])], &removed).expect("freed");
        // Two changed apps asking for one port.
        let e = run(&[], &mut [host("/x", &[10002]), host("/y", &[10002])]).expect_err("conflict");
        assert_eq!(e.body["details"][0]["errors"][0], "Requested service port 10002 conflicts with a service port in app /x");
    }

    #[test]
    fn container_networking_assigns_service_ports_of_port_mappings() {
        let mut put = [app(r#"{"id":"/web","cmd":"x","networks":[{"mode":"container/bridge"}],
                "container":{"type":"DOCKER","docker":{"image":"nginx"},"portMappings":[{"containerPort":80,"hostPort":0,"servicePort":0},{"containerPort":443,"servicePort":10004}]}}"#)];
        run(&[], &mut put).expect("assigned");
        assert_eq!(of(&put[0]), [10000, 10004]);
    }

    #[test]
    fn an_exhausted_range_is_refused_with_what_to_do() {
        let current = [host("/a", &[10000, 10001, 10002, 10003, 10004])];
        let e = run(&current, &mut [host("/b", &[0])]).expect_err("none left");
        assert!(e.body["details"][0]["errors"][0].as_str().is_some_and(|m| m.contains("--local-port-max")), "{}", e.body);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            /// Put app `id` with these ports (0: assign me one).
            Put(u8, Vec<u32>),
            Delete(u8),
        }

        fn op() -> impl Strategy<Value = Op> {
            let port = prop_oneof![3 => Just(0u32), 1 => 10_000u32..10_012];
            prop_oneof![
                4 => (0u8..6, proptest::collection::vec(port, 0..4)).prop_map(|(id, ports)| Op::Put(id, ports)),
                1 => (0u8..6).prop_map(Op::Delete),
            ]
        }

        proptest! {
            /// Whatever sequence of puts and deletes: ports are unique across apps and in range,
            /// a zero at a position the app had keeps its port, refusals change nothing, and the
            /// index always equals the apps' ports.
            #[test]
            fn ports_stay_unique_in_range_and_kept(ops in proptest::collection::vec(op(), 1..40)) {
                let mut apps: BTreeMap<AppId, AppDefinition> = BTreeMap::new();
                let mut held = Holders::new();
                for op in ops {
                    match op {
                        Op::Put(n, ports) => {
                            // Validation refuses an app repeating an explicit port before this.
                            let explicit: Vec<u32> = ports.iter().copied().filter(|p| *p != 0).collect();
                            if explicit.iter().collect::<BTreeSet<_>>().len() != explicit.len() {
                                continue;
                            }
                            let id = format!("/app{n}");
                            let mut put = [host(&id, &ports)];
                            let previous = |id: &AppId| apps.get(id).map(of).unwrap_or_default();
                            let before = previous(&put[0].id);
                            if assign((10_000, 10_010), &held, &previous, &mut put, &BTreeSet::new()).is_ok() {
                                let after = of(&put[0]);
                                for (i, (asked, got)) in ports.iter().zip(&after).enumerate() {
                                    prop_assert!(*got != 0 && (10_000..10_012).contains(got));
                                    if *asked == 0 {
                                        prop_assert!(*got < 10_010 || before.get(i) == Some(got), "a new port out of range: {got}");
                                        if let Some(old) = before.get(i).filter(|p| **p != 0) {
                                            // Kept, unless another app holds it or this one asks for it elsewhere.
                                            prop_assert!(
                                                got == old || ports.contains(old) || held.get(old).is_some_and(|h| h.to_string() != id),
                                                "position {i} lost {old} for {got}"
                                            );
                                        }
                                    } else {
                                        prop_assert_eq!(got, asked);
                                    }
                                }
                                apps.insert(put[0].id.clone(), put[0].clone());
                                held = holders(apps.values());
                            }
                        }
                        Op::Delete(n) => {
                            apps.remove(&AppId::parse(&format!("/app{n}")).expect("id"));
                            held = holders(apps.values());
                        }
                    }
                    let all: Vec<u32> = apps.values().flat_map(of).collect();
                    let unique: BTreeSet<u32> = all.iter().copied().collect();
                    prop_assert_eq!(all.len(), unique.len(), "a port held twice: {:?}", all);
                }
            }
        }
    }
}
