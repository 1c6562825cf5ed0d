//! Fitting tasks of one app into one offer: resources, ports and constraints together.
//!
//! For each task, in the manner of Marathon's `ResourceMatcher.matchResources`:
//! 1. cpus, mem, disk and gpus are taken from admitted resources in offer order (a request may
//!    be split across several resources of the same name); a zero request takes nothing;
//! 2. the constraints are checked against the already placed instances plus the tasks matched
//!    earlier in this offer;
//! 3. only if both pass are host ports picked.
//!
//! A task either gets everything it needs or nothing. The first task that does not fit ends the
//! match, and the reasons it did not fit are reported as Marathon reports them in `/v2/queue`.

use std::fmt;

use mesos_proto::v1::{Offer, Resource};

use super::constraint::{Constraint, Placed};
use super::index::PlacementIndex;
use super::placement::{Placement, placement_of};
use super::ports::{PortPool, PortRequest, port_resources};
use super::resources::{RoleFilter, ScalarPool, from_milli, to_milli};

/// What one task of an app needs from an offer.
#[derive(Debug, Clone, Default)]
pub struct TaskRequest {
    /// CPUs (Mesos `cpus`); non-finite or negative counts as zero.
    pub cpus: f64,
    /// Memory in MiB (Mesos `mem`); non-finite or negative counts as zero.
    pub mem: f64,
    /// Disk in MiB (Mesos `disk`); non-finite or negative counts as zero.
    pub disk: f64,
    /// Whole GPUs (Mesos `gpus`).
    pub gpus: u32,
    /// The host ports, in the order the task's ports are declared.
    pub host_ports: Vec<PortRequest>,
    /// The app's placement constraints.
    pub constraints: Vec<Constraint>,
    /// Roles whose resources the task may use (`acceptedResourceRoles`); empty means unreserved
    /// (`"*"`) and the framework's role.
    pub accepted_roles: Vec<String>,
    /// Decline offers that hold GPUs: GPU agents are kept for tasks that need GPUs (Marathon's
    /// `--gpu_scheduling_behavior restricted`, for a task with no GPUs).
    pub keep_off_gpu_agents: bool,
    /// The master's fault-domain region: offers from agents in another region are declined
    /// unless a constraint names `@region` (Marathon launches in the home region by default).
    /// Agents without a fault domain count as home.
    pub home_region: Option<String>,
}

/// Why a task did not fit into an offer, as `/v2/queue` names it in `processedOffersSummary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// The offer holds no resource with a role the task accepts.
    UnfulfilledRole,
    /// A placement constraint refused the agent.
    UnfulfilledConstraint,
    /// Not enough CPUs in accepted roles.
    InsufficientCpus,
    /// Not enough memory in accepted roles.
    InsufficientMemory,
    /// Not enough disk in accepted roles.
    InsufficientDisk,
    /// Not enough GPUs in accepted roles.
    InsufficientGpus,
    /// The host ports are not offered (or already taken by an earlier task of this offer).
    InsufficientPorts,
    /// The offer holds GPUs, which are kept for tasks that need them.
    DeclinedScarceResources,
}

impl RejectReason {
    /// Marathon's name of the reason.
    pub fn name(&self) -> &'static str {
        match self {
            RejectReason::UnfulfilledRole => "UnfulfilledRole",
            RejectReason::UnfulfilledConstraint => "UnfulfilledConstraint",
            RejectReason::InsufficientCpus => "InsufficientCpus",
            RejectReason::InsufficientMemory => "InsufficientMemory",
            RejectReason::InsufficientDisk => "InsufficientDisk",
            RejectReason::InsufficientGpus => "InsufficientGpus",
            RejectReason::InsufficientPorts => "InsufficientPorts",
            RejectReason::DeclinedScarceResources => "DeclinedScarceResources",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One task that fits.
#[derive(Debug, Clone, PartialEq)]
pub struct Matched {
    /// Exactly what to put in `TaskInfo.resources`: copies of the offered resources the task
    /// takes from (name, role, allocation and reservations kept) holding only this task's
    /// share — scalars for cpus/mem/disk/gpus, ranges for its ports.
    pub resources: Vec<Resource>,
    /// The host ports, in the order of [`TaskRequest::host_ports`].
    pub host_ports: Vec<u32>,
}

/// The result of fitting tasks into one offer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MatchOutcome {
    /// The tasks that fit, in launch order; each later one saw the earlier ones as placed.
    pub launches: Vec<Matched>,
    /// Why the next task did not fit, in Marathon's order (resources, role, constraint,
    /// ports); empty if all requested tasks fit.
    pub rejections: Vec<RejectReason>,
}

/// The scalar resources a task asks for, with the reason given when each falls short.
const SCALARS: [(&str, RejectReason); 4] = [
    ("cpus", RejectReason::InsufficientCpus),
    ("mem", RejectReason::InsufficientMemory),
    ("disk", RejectReason::InsufficientDisk),
    ("gpus", RejectReason::InsufficientGpus),
];

/// Fits up to `count` tasks described by `req` into `offer`.
///
/// `placed` are the agents of the app's active instances; each task matched here is added to
/// them (at this offer's agent) before the next one is tried, and the resources and ports it
/// took are no longer available to the next. `framework_role` is the role the framework
/// launches under: it completes the default accepted roles, and resources allocated to
/// another role are not used.
///
/// Constraints look at every placed instance; a caller matching many offers against the same
/// app can keep a [`PlacementIndex`] and call [`match_offer_indexed`] instead.
pub fn match_offer(offer: &Offer, req: &TaskRequest, placed: &[Placement], framework_role: &str, count: u32) -> MatchOutcome {
    match_against(offer, req, Placed::Slice(placed), framework_role, count)
}

/// [`match_offer`] with the placed instances counted in an index: the same outcome, at a cost
/// that does not grow with the number of placed instances. The index is not changed; the
/// caller adds the placements of the tasks it launches.
pub fn match_offer_indexed(offer: &Offer, req: &TaskRequest, placed: &PlacementIndex, framework_role: &str, count: u32) -> MatchOutcome {
    match_against(offer, req, Placed::Index(placed), framework_role, count)
}

fn match_against(offer: &Offer, req: &TaskRequest, placed: Placed<'_>, framework_role: &str, count: u32) -> MatchOutcome {
    if req.keep_off_gpu_agents && offer.resources.iter().any(|r| r.name == "gpus" && r.scalar.as_ref().is_some_and(|s| s.value > 0.0)) {
        return MatchOutcome { launches: Vec::new(), rejections: vec![RejectReason::DeclinedScarceResources] };
    }
    if let Some(home) = &req.home_region
        && !req.constraints.iter().any(|c| c.field == "@region")
        && let Some(region) = offer.domain.as_ref().and_then(|d| d.fault_domain.as_ref()).map(|f| &f.region.name)
        && region != home
    {
        return MatchOutcome { launches: Vec::new(), rejections: vec![RejectReason::UnfulfilledConstraint] };
    }
    let roles = RoleFilter::new(&req.accepted_roles, framework_role);
    let mut scalars = ScalarPool::new(&offer.resources, &roles);
    let mut ports = PortPool::new(&offer.resources, &roles);
    let any_role_fits = offer.resources.iter().any(|r| roles.admits(r));
    // Only constraints look at the agent.
    let here = (!req.constraints.is_empty()).then(|| placement_of(offer));
    // Tasks matched earlier in this offer count as placed at `here`; counting them instead of
    // appending them to a copy of `placed` keeps the placed instances borrowed.
    let mut placed_here = 0usize;
    let wanted = [to_milli(req.cpus), to_milli(req.mem), to_milli(req.disk), u64::from(req.gpus) * 1000];

    let mut outcome = MatchOutcome::default();
    for _ in 0..count {
        let mut reasons = Vec::new();
        let mut pieces = Vec::new();
        for ((name, reason), milli) in SCALARS.iter().zip(wanted) {
            if milli == 0 {
                continue;
            }
            match scalars.plan(name, milli) {
                Some(plan) => pieces.extend(plan),
                None => reasons.push(*reason),
            }
        }
        let resources_fit = reasons.is_empty();
        if !any_role_fits {
            reasons.push(RejectReason::UnfulfilledRole);
        }
        let constraints_fit = here.as_ref().is_none_or(|here| req.constraints.iter().all(|c| c.accepts_in(here, placed, placed_here)));
        if !constraints_fit {
            reasons.push(RejectReason::UnfulfilledConstraint);
        }
        let port_picks = if resources_fit && constraints_fit { ports.plan(&req.host_ports) } else { None };
        let Some(port_picks) = port_picks else {
            if resources_fit && constraints_fit {
                reasons.push(RejectReason::InsufficientPorts);
            }
            outcome.rejections = reasons;
            break;
        };

        scalars.take(&pieces);
        ports.take(&port_picks);
        let mut resources: Vec<Resource> = pieces
            .iter()
            .filter_map(|&(index, milli)| {
                let source = offer.resources.get(index)?;
                Some(Resource { scalar: Some(from_milli(milli)), ranges: None, set: None, ..source.clone() })
            })
            .collect();
        resources.extend(port_resources(&offer.resources, &port_picks));
        outcome.launches.push(Matched { resources, host_ports: port_picks.iter().map(|(port, _)| *port).collect() });
        placed_here += 1;
    }
    outcome
}

#[cfg(test)]
mod tests {
    #![allow(deprecated)]

    use super::*;
    use crate::matching::fixtures::{allocated, constraint, offer, ports, reserved, scalar, text};
    use crate::matching::resources::reservation_role;

    fn request(cpus: f64, mem: f64) -> TaskRequest {
        TaskRequest { cpus, mem, ..Default::default() }
    }

    fn amount(m: &Matched, name: &str) -> f64 {
        m.resources.iter().filter(|r| r.name == name).filter_map(|r| r.scalar.as_ref()).map(|s| s.value).sum()
    }

    #[test]
    fn one_task_takes_exactly_what_it_asks() {
        let o = offer("a", vec![scalar("cpus", 4.0), scalar("mem", 1024.0), scalar("disk", 100.0)], vec![]);
        let req = TaskRequest { disk: 10.0, ..request(0.5, 128.0) };
        let outcome = match_offer(&o, &req, &[], "marathon", 1);
        assert_eq!(outcome.rejections, vec![]);
        let m = &outcome.launches[0];
        assert_eq!((amount(m, "cpus"), amount(m, "mem"), amount(m, "disk")), (0.5, 128.0, 10.0));
        assert_eq!(m.resources.len(), 3);
        assert!(m.host_ports.is_empty());
    }

    #[test]
    fn several_tasks_share_an_offer_until_it_runs_out() {
        let o = offer("a", vec![scalar("cpus", 1.0), scalar("mem", 1024.0)], vec![]);
        let outcome = match_offer(&o, &request(0.3, 100.0), &[], "marathon", 5);
        assert_eq!(outcome.launches.len(), 3);
        assert_eq!(outcome.rejections, vec![RejectReason::InsufficientCpus]);
        let all = match_offer(&o, &request(0.25, 100.0), &[], "marathon", 4);
        assert_eq!((all.launches.len(), all.rejections.len()), (4, 0));
        assert_eq!(match_offer(&o, &request(0.25, 100.0), &[], "marathon", 0), MatchOutcome::default());
    }

    #[test]
    fn thousandths_make_floating_point_sums_fit() {
        let o = offer("a", vec![scalar("cpus", 0.3), scalar("mem", 0.3)], vec![]);
        let outcome = match_offer(&o, &request(0.1, 0.1), &[], "marathon", 4);
        assert_eq!(outcome.launches.len(), 3);
        let o = offer("a", vec![scalar("cpus", 0.1 + 0.2)], vec![]);
        assert_eq!(match_offer(&o, &request(0.3, 0.0), &[], "r", 1).launches.len(), 1);
    }

    #[test]
    fn requests_split_across_reserved_and_unreserved_resources() {
        let o = offer(
            "a",
            vec![
                allocated(reserved(scalar("cpus", 0.5), "marathon"), "marathon"),
                allocated(scalar("cpus", 2.0), "marathon"),
                allocated(scalar("mem", 512.0), "marathon"),
            ],
            vec![],
        );
        let outcome = match_offer(&o, &request(1.0, 256.0), &[], "marathon", 1);
        let cpus: Vec<(&str, f64)> = outcome.launches[0]
            .resources
            .iter()
            .filter(|r| r.name == "cpus")
            .map(|r| (reservation_role(r), r.scalar.as_ref().map_or(0.0, |s| s.value)))
            .collect();
        assert_eq!(cpus, vec![("marathon", 0.5), ("*", 0.5)]);
        let first = &outcome.launches[0].resources[0];
        assert_eq!(first.reservations, o.resources[0].reservations);
        assert_eq!(first.allocation_info, o.resources[0].allocation_info);
    }

    #[test]
    fn roles_limit_what_may_be_taken() {
        let o = offer("a", vec![reserved(scalar("cpus", 4.0), "other"), reserved(scalar("mem", 512.0), "other")], vec![]);
        let outcome = match_offer(&o, &request(1.0, 128.0), &[], "marathon", 1);
        assert_eq!(
            outcome.rejections,
            vec![RejectReason::InsufficientCpus, RejectReason::InsufficientMemory, RejectReason::UnfulfilledRole]
        );
        let accepting = TaskRequest { accepted_roles: vec!["other".into()], ..request(1.0, 128.0) };
        assert_eq!(match_offer(&o, &accepting, &[], "marathon", 1).launches.len(), 1);

        let unreserved = offer("a", vec![scalar("cpus", 4.0), scalar("mem", 512.0)], vec![]);
        let reserved_only = TaskRequest { accepted_roles: vec!["marathon".into()], ..request(1.0, 128.0) };
        let outcome = match_offer(&unreserved, &reserved_only, &[], "marathon", 1);
        assert!(outcome.rejections.contains(&RejectReason::UnfulfilledRole));

        let elsewhere = offer("a", vec![allocated(scalar("cpus", 4.0), "other")], vec![]);
        let outcome = match_offer(&elsewhere, &request(1.0, 0.0), &[], "marathon", 1);
        assert_eq!(outcome.rejections, vec![RejectReason::InsufficientCpus, RejectReason::UnfulfilledRole]);
    }

    #[test]
    fn remote_regions_are_used_only_when_a_constraint_names_the_region() {
        let in_region = |region: &str| {
            let mut o = offer("a", vec![scalar("cpus", 4.0), scalar("mem", 1024.0)], vec![]);
            use mesos_proto::v1;
            o.domain = Some(v1::DomainInfo {
                fault_domain: Some(v1::domain_info::FaultDomain {
                    region: v1::domain_info::fault_domain::RegionInfo { name: region.into() },
                    zone: v1::domain_info::fault_domain::ZoneInfo { name: format!("{region}-1") },
                }),
            });
            o
        };
        let home = TaskRequest { home_region: Some("home".into()), ..request(1.0, 16.0) };
        assert_eq!(match_offer(&in_region("home"), &home, &[], "*", 1).launches.len(), 1);
        let out = match_offer(&in_region("far"), &home, &[], "*", 1);
        assert_eq!((out.launches.len(), out.rejections), (0, vec![RejectReason::UnfulfilledConstraint]));
        let plain = offer("b", vec![scalar("cpus", 4.0), scalar("mem", 1024.0)], vec![]);
        assert_eq!(match_offer(&plain, &home, &[], "*", 1).launches.len(), 1, "no fault domain: home");
        let far = TaskRequest {
            constraints: vec![Constraint::parse(&["@region".to_string(), "IS".to_string(), "far".to_string()]).expect("constraint")],
            ..home.clone()
        };
        assert_eq!(match_offer(&in_region("far"), &far, &[], "*", 1).launches.len(), 1, "a region constraint lifts the default");
        assert!(match_offer(&in_region("home"), &far, &[], "*", 1).launches.is_empty());
    }

    #[test]
    fn gpu_agents_are_kept_for_gpu_tasks_when_asked() {
        let gpu = offer("a", vec![scalar("cpus", 4.0), scalar("mem", 1024.0), scalar("gpus", 1.0)], vec![]);
        let plain = offer("b", vec![scalar("cpus", 4.0), scalar("mem", 1024.0)], vec![]);
        let restricted = TaskRequest { keep_off_gpu_agents: true, ..request(1.0, 16.0) };
        let out = match_offer(&gpu, &restricted, &[], "*", 1);
        assert!(out.launches.is_empty());
        assert_eq!(out.rejections, [RejectReason::DeclinedScarceResources]);
        assert_eq!(match_offer(&plain, &restricted, &[], "*", 1).launches.len(), 1);
        assert_eq!(match_offer(&gpu, &request(1.0, 16.0), &[], "*", 1).launches.len(), 1, "unrestricted: any agent");
    }

    #[test]
    fn gpus_and_disk_are_checked() {
        let o = offer("a", vec![scalar("cpus", 4.0), scalar("gpus", 1.0)], vec![]);
        let req = TaskRequest { gpus: 2, disk: 1.0, ..request(1.0, 0.0) };
        let outcome = match_offer(&o, &req, &[], "r", 1);
        assert_eq!(outcome.rejections, vec![RejectReason::InsufficientDisk, RejectReason::InsufficientGpus]);
        let req = TaskRequest { gpus: 1, ..request(1.0, 0.0) };
        let outcome = match_offer(&o, &req, &[], "r", 2);
        assert_eq!(outcome.launches.len(), 1);
        assert_eq!(amount(&outcome.launches[0], "gpus"), 1.0);
        assert_eq!(outcome.rejections, vec![RejectReason::InsufficientGpus]);
    }

    #[test]
    fn ports_are_picked_per_task_and_never_twice() {
        let o = offer("a", vec![scalar("cpus", 4.0), ports(&[(31000, 31002)])], vec![]);
        let req = TaskRequest { host_ports: vec![PortRequest::Any], ..request(0.1, 0.0) };
        let outcome = match_offer(&o, &req, &[], "r", 5);
        let picked: Vec<Vec<u32>> = outcome.launches.iter().map(|m| m.host_ports.clone()).collect();
        assert_eq!(picked, vec![vec![31000], vec![31001], vec![31002]]);
        assert_eq!(outcome.rejections, vec![RejectReason::InsufficientPorts]);
        let port_resource = outcome.launches[1].resources.iter().find(|r| r.name == "ports");
        let ranges = port_resource.and_then(|r| r.ranges.as_ref()).map(|r| r.range.clone());
        assert_eq!(ranges.map(|r| (r[0].begin, r[0].end)), Some((31001, 31001)));
    }

    #[test]
    fn exact_ports_fit_once_per_offer() {
        let o = offer("a", vec![scalar("cpus", 4.0), ports(&[(80, 80), (31000, 31100)])], vec![]);
        let req = TaskRequest { host_ports: vec![PortRequest::Any, PortRequest::Exact(80)], ..request(0.1, 0.0) };
        let outcome = match_offer(&o, &req, &[], "r", 2);
        assert_eq!(outcome.launches.len(), 1);
        assert_eq!(outcome.launches[0].host_ports, vec![31000, 80]);
        assert_eq!(outcome.rejections, vec![RejectReason::InsufficientPorts]);
    }

    #[test]
    fn ports_are_not_checked_when_resources_or_constraints_fail() {
        let o = offer("a", vec![scalar("cpus", 0.1)], vec![]);
        let req = TaskRequest { host_ports: vec![PortRequest::Exact(80)], ..request(1.0, 0.0) };
        assert_eq!(match_offer(&o, &req, &[], "r", 1).rejections, vec![RejectReason::InsufficientCpus]);
    }

    #[test]
    fn constraints_see_tasks_matched_earlier_in_the_same_offer() {
        let o = offer("a", vec![scalar("cpus", 4.0)], vec![text("rack", "r1")]);
        let unique = TaskRequest { constraints: vec![constraint(&["hostname", "UNIQUE"])], ..request(0.1, 0.0) };
        let outcome = match_offer(&o, &unique, &[], "r", 3);
        assert_eq!(outcome.launches.len(), 1);
        assert_eq!(outcome.rejections, vec![RejectReason::UnfulfilledConstraint]);

        let max_two = TaskRequest { constraints: vec![constraint(&["rack", "MAX_PER", "2"])], ..request(0.1, 0.0) };
        let already = [placement_of(&o)];
        let outcome = match_offer(&o, &max_two, &already, "r", 3);
        assert_eq!(outcome.launches.len(), 1);

        let elsewhere = TaskRequest { constraints: vec![constraint(&["rack", "IS", "r2"])], ..request(9.0, 0.0) };
        let outcome = match_offer(&o, &elsewhere, &[], "r", 1);
        assert_eq!(outcome.rejections, vec![RejectReason::InsufficientCpus, RejectReason::UnfulfilledConstraint]);
    }

    #[test]
    fn an_empty_request_fits_even_without_resources() {
        let o = offer("a", vec![], vec![]);
        let outcome = match_offer(&o, &TaskRequest::default(), &[], "r", 2);
        assert_eq!((outcome.launches.len(), outcome.rejections.len()), (2, 0));
        assert!(outcome.launches.iter().all(|m| m.resources.is_empty()));
    }

    #[test]
    fn reasons_have_marathons_names() {
        let names: Vec<&str> = [
            RejectReason::UnfulfilledRole,
            RejectReason::UnfulfilledConstraint,
            RejectReason::InsufficientCpus,
            RejectReason::InsufficientMemory,
            RejectReason::InsufficientDisk,
            RejectReason::InsufficientGpus,
            RejectReason::InsufficientPorts,
        ]
        .iter()
        .map(RejectReason::name)
        .collect();
        assert_eq!(
            names,
            [
                "UnfulfilledRole",
                "UnfulfilledConstraint",
                "InsufficientCpus",
                "InsufficientMemory",
                "InsufficientDisk",
                "InsufficientGpus",
                "InsufficientPorts"
            ]
        );
        assert_eq!(RejectReason::InsufficientPorts.to_string(), "InsufficientPorts");
    }
}
