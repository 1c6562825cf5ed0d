//! Property tests for offer matching (test builds only):
//! (a) matches never take more than an offer holds, per name and role, and ports are distinct
//!     and offered; (b) placing tasks offer by offer never breaks a constraint;
//! (c) nothing panics on arbitrary offers, requests and placements; (d) a [`PlacementIndex`]
//!     gives the same answers as the placed instances it counts.

#![allow(deprecated)]

use std::collections::{BTreeMap, BTreeSet, HashMap};

use mesos_proto::v1::domain_info::FaultDomain;
use mesos_proto::v1::domain_info::fault_domain::{RegionInfo, ZoneInfo};
use mesos_proto::v1::value::{Range, Ranges, Scalar, Set, Text};
use mesos_proto::v1::{Attribute, DomainInfo, Offer, Resource};
use proptest::prelude::*;

use super::constraint::Placed;
use super::fixtures::{allocated, offer, ports, reserved, scalar, text};
use super::resources::{reservation_role, to_milli};
use super::{Constraint, Placement, PlacementIndex, PortRequest, TaskRequest, match_offer, match_offer_indexed, placement_of};

/// What identifies "the same kind" of resource: name, reservation role, allocation role.
type Key = (String, String, Option<String>);

fn key(r: &Resource) -> Key {
    (r.name.clone(), reservation_role(r).to_string(), r.allocation_info.as_ref().and_then(|a| a.role.clone()))
}

fn role_strategy() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![6 => Just(None), 2 => Just(Some("marathon")), 1 => Just(Some("other"))]
}

/// A resource called `name` (a `ports` one if so named), with random amount and roles.
fn named_resource(name: &'static str) -> impl Strategy<Value = Resource> {
    let ranges = prop::collection::vec((0u64..120, 0u64..30), 0..4);
    (0u32..6000, ranges, role_strategy(), role_strategy()).prop_map(move |(milli, ranges, reservation, allocation)| {
        let r = if name == "ports" {
            ports(&ranges.iter().map(|&(b, len)| (b, b + len)).collect::<Vec<_>>())
        } else {
            // A hair over the thousandth, which Mesos's fixed point (and ours) ignores.
            scalar(name, f64::from(milli) / 1000.0 + 0.0001)
        };
        let r = match reservation {
            Some(role) => reserved(r, role),
            None => r,
        };
        match allocation {
            Some(role) => allocated(r, role),
            None => r,
        }
    })
}

fn resource_strategy() -> impl Strategy<Value = Resource> {
    prop_oneof![named_resource("cpus"), named_resource("mem"), named_resource("disk"), named_resource("gpus"), named_resource("ports"),]
}

/// An offer's resources: one of each kind, then a random assortment.
fn resources_strategy() -> impl Strategy<Value = Vec<Resource>> {
    let each = (named_resource("cpus"), named_resource("mem"), named_resource("disk"), named_resource("gpus"), named_resource("ports"));
    (each, prop::collection::vec(resource_strategy(), 0..10)).prop_map(|((c, m, d, g, p), mut more)| {
        let mut all = vec![c, m, d, g, p];
        all.append(&mut more);
        all
    })
}

fn port_request_strategy() -> impl Strategy<Value = PortRequest> {
    prop_oneof![4 => Just(PortRequest::Any), 1 => (0u32..130).prop_map(PortRequest::Exact)]
}

fn request_strategy() -> impl Strategy<Value = TaskRequest> {
    // Mostly small or zero amounts, so that a fair share of cases launch several tasks.
    let milli = || prop_oneof![1 => Just(0u32), 2 => 1u32..1500];
    (
        (milli(), milli(), milli()),
        prop_oneof![4 => Just(0u32), 1 => 1u32..3],
        prop::collection::vec(port_request_strategy(), 0..3),
        prop_oneof![
            2 => Just(vec![]),
            1 => prop::collection::vec(prop_oneof![Just("*"), Just("marathon"), Just("other")], 1..3),
        ],
    )
        .prop_map(|((cpus, mem, disk), gpus, host_ports, roles)| TaskRequest {
            cpus: f64::from(cpus) / 1000.0,
            mem: f64::from(mem) / 1000.0,
            disk: f64::from(disk) / 1000.0,
            gpus,
            host_ports,
            constraints: vec![],
            accepted_roles: roles.into_iter().map(String::from).collect(),
            keep_off_gpu_agents: false,
            home_region: None,
        })
}

fn ranges_of(r: &Resource) -> Vec<(u64, u64)> {
    r.ranges.iter().flat_map(|rs| rs.range.iter()).map(|x| (x.begin, x.end)).collect()
}

proptest! {
    // About a third of the cases launch something, so run more of them.
    #![proptest_config(ProptestConfig::with_cases(768))]

    /// (a) The matches of one offer never exceed what it holds, per name and role; ports are
    /// distinct, inside ranges offered under the same role, and as requested.
    #[test]
    fn matches_stay_within_the_offer(
        resources in resources_strategy(),
        req in request_strategy(),
        count in 0u32..8,
    ) {
        let o = offer("agent", resources, vec![]);
        let outcome = match_offer(&o, &req, &[], "marathon", count);
        prop_assert!(outcome.launches.len() <= count as usize);
        prop_assert_eq!(outcome.rejections.is_empty(), outcome.launches.len() == count as usize);

        let mut offered: HashMap<Key, u64> = HashMap::new();
        for r in o.resources.iter().filter(|r| r.scalar.is_some()) {
            *offered.entry(key(r)).or_default() += to_milli(r.scalar.as_ref().map_or(0.0, |s| s.value));
        }
        let mut used: HashMap<Key, u64> = HashMap::new();
        let mut all_ports = BTreeSet::new();
        for m in &outcome.launches {
            prop_assert_eq!(m.host_ports.len(), req.host_ports.len());
            for (asked, got) in req.host_ports.iter().zip(&m.host_ports) {
                if let PortRequest::Exact(p) = asked && *p != 0 {
                    prop_assert_eq!(p, got);
                }
            }
            let mut ports_in_resources = Vec::new();
            for r in &m.resources {
                // Every resource is a copy of an offered one, but for its amount.
                let source_exists = o.resources.iter().any(|s| {
                    Resource { scalar: r.scalar, ranges: r.ranges.clone(), ..s.clone() } == *r
                });
                prop_assert!(source_exists, "{:?} is not from the offer", r);
                if let Some(s) = &r.scalar {
                    prop_assert!(s.value > 0.0);
                    *used.entry(key(r)).or_default() += to_milli(s.value);
                }
                for (begin, end) in ranges_of(r) {
                    for port in begin..=end {
                        ports_in_resources.push(port);
                        let inside = o.resources.iter().filter(|s| key(s) == key(r)).any(|s| {
                            ranges_of(s).iter().any(|&(b, e)| b <= port && port <= e)
                        });
                        prop_assert!(inside, "port {} not offered under {:?}", port, key(r));
                    }
                }
            }
            let mut host_ports: Vec<u64> = m.host_ports.iter().map(|&p| u64::from(p)).collect();
            host_ports.sort_unstable();
            ports_in_resources.sort_unstable();
            prop_assert_eq!(&host_ports, &ports_in_resources);
            for port in host_ports {
                prop_assert!(all_ports.insert(port), "port {} handed out twice", port);
            }
        }
        for (k, amount) in used {
            let available = offered.get(&k).copied().unwrap_or(0);
            prop_assert!(amount <= available, "{:?}: used {} of {}", k, amount, available);
        }
    }
}

/// A constraint for the simulation, before the agents are known.
#[derive(Debug, Clone)]
enum Rule {
    Parsed(Vec<&'static str>),
    /// GROUP_BY rack with the number of distinct racks among the agents.
    GroupByAllRacks,
}

fn rule_strategy() -> impl Strategy<Value = Rule> {
    let p = |v: &[&'static str]| Just(Rule::Parsed(v.to_vec()));
    prop_oneof![
        p(&["hostname", "UNIQUE"]),
        p(&["rack", "UNIQUE"]),
        p(&["@zone", "UNIQUE"]),
        p(&["hostname", "MAX_PER", "2"]),
        p(&["rack", "MAX_PER", "1"]),
        p(&["rack", "MAX_PER", "3"]),
        p(&["rack", "CLUSTER", "r1"]),
        p(&["rack", "CLUSTER"]),
        p(&["hostname", "CLUSTER"]),
        p(&["rack", "IS", "r0"]),
        p(&["@zone", "IS", "z1"]),
        p(&["rack", "LIKE", "r[01]"]),
        p(&["rack", "UNLIKE", "r[01]"]),
        p(&["@zone", "UNLIKE", "z0"]),
        p(&["rack", "GROUP_BY"]),
        p(&["hostname", "GROUP_BY"]),
        Just(Rule::GroupByAllRacks),
    ]
}

/// An agent: optional rack attribute and optional zone.
fn agent_offer(index: usize, rack: Option<u8>, zone: Option<u8>) -> Offer {
    let attributes = rack.map(|r| vec![text("rack", &format!("r{r}"))]).unwrap_or_default();
    let mut o = offer(&format!("agent-{index}"), vec![scalar("cpus", 8.0), scalar("mem", 8192.0), ports(&[(31000, 31100)])], attributes);
    o.domain = zone.map(|z| DomainInfo {
        fault_domain: Some(FaultDomain { region: RegionInfo { name: "region".into() }, zone: ZoneInfo { name: format!("z{z}") } }),
    });
    o
}

fn field_of<'p>(field: &str, p: &'p Placement) -> Option<&'p str> {
    match field {
        "hostname" | "@hostname" => Some(&p.hostname),
        "@zone" => p.zone.as_deref(),
        "@region" => p.region.as_deref(),
        name => p.attribute(name),
    }
}

fn counts<'p>(field: &str, placed: &'p [Placement]) -> BTreeMap<Option<&'p str>, usize> {
    let mut groups = BTreeMap::new();
    for p in placed {
        *groups.entry(field_of(field, p)).or_default() += 1;
    }
    groups
}

/// Checks the whole placement set against one constraint; `Err` says what is violated.
fn check(c: &Constraint, placed: &[Placement]) -> Result<(), String> {
    let values: Vec<Option<&str>> = placed.iter().map(|p| field_of(&c.field, p)).collect();
    let present = || values.iter().all(Option::is_some);
    let value = c.value.as_deref().unwrap_or("");
    let ok = match c.operator {
        super::Operator::Unique => present() && counts(&c.field, placed).values().all(|&n| n == 1),
        super::Operator::MaxPer => {
            let max = c.count.unwrap_or(0) as usize;
            present() && counts(&c.field, placed).values().all(|&n| n <= max)
        }
        super::Operator::Cluster if value.is_empty() => present() && counts(&c.field, placed).len() <= 1,
        super::Operator::Cluster | super::Operator::Is => values.iter().all(|v| *v == Some(value)),
        super::Operator::Like => values.iter().all(|v| v.is_some_and(|v| c.regex.as_ref().is_some_and(|r| r.is_match(v)))),
        super::Operator::Unlike => values.iter().all(|v| v.is_none_or(|v| c.regex.as_ref().is_some_and(|r| !r.is_match(v)))),
        super::Operator::GroupBy => {
            let groups = counts(&c.field, placed);
            let expected = c.count.unwrap_or(0) as usize;
            let (min, max) = (groups.values().min().copied(), groups.values().max().copied());
            present()
                && (expected == 0
                    || if groups.len() < expected { max.unwrap_or(0) <= 1 } else { max.zip(min).is_none_or(|(a, b)| a - b <= 1) })
        }
    };
    if ok { Ok(()) } else { Err(format!("{c} violated by {values:?}")) }
}

proptest! {
    /// (b) Placing tasks one offer at a time over random agents never produces a placement set
    /// that violates a constraint; GROUP_BY without a count only ever adds to a new or a
    /// smallest group.
    #[test]
    fn offer_by_offer_placement_keeps_constraints(
        agents in prop::collection::vec((prop::option::of(0u8..3), prop::option::of(0u8..3)), 1..8),
        rules in prop::collection::vec(rule_strategy(), 1..3),
        steps in prop::collection::vec((any::<prop::sample::Index>(), 1u32..4), 0..30),
    ) {
        let offers: Vec<Offer> = agents.iter().enumerate().map(|(i, &(rack, zone))| agent_offer(i, rack, zone)).collect();
        let racks: BTreeSet<u8> = agents.iter().filter_map(|(rack, _)| *rack).collect();
        let all_racks = racks.len().to_string();
        let constraints: Vec<Constraint> = rules
            .iter()
            .map(|rule| {
                let parts: Vec<String> = match rule {
                    Rule::Parsed(p) => p.iter().map(|s| s.to_string()).collect(),
                    Rule::GroupByAllRacks => vec!["rack".into(), "GROUP_BY".into(), all_racks.clone()],
                };
                Constraint::parse(&parts)
            })
            .collect::<Result<_, _>>()
            .map_err(TestCaseError::fail)?;
        let req = TaskRequest {
            cpus: 0.1,
            mem: 32.0,
            host_ports: vec![PortRequest::Any],
            constraints: constraints.clone(),
            ..Default::default()
        };
        let mut placed: Vec<Placement> = Vec::new();
        for (agent, count) in steps {
            let o = &offers[agent.index(offers.len())];
            let here = placement_of(o);
            let outcome = match_offer(o, &req, &placed, "marathon", count);
            let indexed = match_offer_indexed(o, &req, &PlacementIndex::new(&placed), "marathon", count);
            prop_assert_eq!(&indexed, &outcome);
            for _ in &outcome.launches {
                for c in constraints.iter().filter(|c| c.operator == super::Operator::GroupBy && c.count.is_none()) {
                    let groups = counts(&c.field, &placed);
                    let smallest = groups.values().min().copied().unwrap_or(0);
                    let mine = groups.get(&field_of(&c.field, &here)).copied();
                    prop_assert!(mine.is_none_or(|n| n == smallest), "{} stacked onto a larger group", c);
                }
                placed.push(here.clone());
            }
            for c in &constraints {
                check(c, &placed).map_err(TestCaseError::fail)?;
            }
        }
    }
}

fn any_scalar() -> impl Strategy<Value = f64> {
    prop_oneof![any::<f64>(), Just(f64::NAN), Just(-1.0), Just(f64::INFINITY), 0.0..100.0]
}

fn any_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("cpus".to_string()),
        Just("mem".to_string()),
        Just("ports".to_string()),
        Just("gpus".to_string()),
        Just("*".to_string()),
        ".{0,6}",
    ]
}

fn any_ranges() -> impl Strategy<Value = Option<Ranges>> {
    prop::option::of(
        prop::collection::vec((any::<u64>(), any::<u64>()), 0..4)
            .prop_map(|rs| Ranges { range: rs.into_iter().map(|(begin, end)| Range { begin, end }).collect() }),
    )
}

fn any_resource() -> impl Strategy<Value = Resource> {
    (any_string(), -1i32..5, prop::option::of(any_scalar()), any_ranges(), prop::option::of(any_string()), prop::option::of(any_string()))
        .prop_map(|(name, kind, value, ranges, role, allocation)| {
            let mut r = Resource { name, r#type: kind, scalar: value.map(|value| Scalar { value }), ranges, role, ..Default::default() };
            if let Some(a) = allocation {
                r = allocated(r, &a);
            }
            r
        })
}

fn any_attribute() -> impl Strategy<Value = Attribute> {
    (
        any_string(),
        -1i32..5,
        prop::option::of(any_scalar()),
        any_ranges(),
        prop::option::of(prop::collection::vec(any_string(), 0..3)),
        prop::option::of(any_string()),
    )
        .prop_map(|(name, kind, value, ranges, set, text)| Attribute {
            name,
            r#type: kind,
            scalar: value.map(|value| Scalar { value }),
            ranges,
            set: set.map(|item| Set { item }),
            text: text.map(|value| Text { value }),
        })
}

fn any_constraint() -> impl Strategy<Value = Option<Constraint>> {
    (
        prop_oneof![Just("hostname".to_string()), Just("@zone".to_string()), any_string()],
        prop_oneof![Just("UNIQUE"), Just("CLUSTER"), Just("GROUP_BY"), Just("LIKE"), Just("UNLIKE"), Just("MAX_PER"), Just("IS")],
        prop::option::of(prop_oneof![Just("1".to_string()), Just("0.5".to_string()), any_string()]),
    )
        .prop_map(|(field, op, value)| {
            let mut parts = vec![field, op.to_string()];
            parts.extend(value);
            Constraint::parse(&parts).ok()
        })
}

proptest! {
    /// (c) Nothing panics on arbitrary offers, requests and placements.
    #[test]
    fn arbitrary_input_never_panics(
        hostname in any_string(),
        resources in prop::collection::vec(any_resource(), 0..6),
        attributes in prop::collection::vec(any_attribute(), 0..4),
        cpus in any_scalar(),
        mem in any_scalar(),
        gpus in any::<u32>(),
        host_ports in prop::collection::vec(prop_oneof![Just(PortRequest::Any), any::<u32>().prop_map(PortRequest::Exact)], 0..4),
        constraints in prop::collection::vec(any_constraint(), 0..3),
        roles in prop::collection::vec(any_string(), 0..2),
        framework_role in any_string(),
        count in 0u32..5,
    ) {
        let o = offer(&hostname, resources, attributes);
        let here = placement_of(&o);
        let placed = vec![here.clone(), Placement::default()];
        let constraints: Vec<Constraint> = constraints.into_iter().flatten().collect();
        for c in &constraints {
            let _ = c.accepts(&here, &placed);
        }
        let req = TaskRequest { cpus, mem, disk: mem, gpus, host_ports, constraints, accepted_roles: roles, keep_off_gpu_agents: false, home_region: None };
        let outcome = match_offer(&o, &req, &placed, &framework_role, count);
        prop_assert!(outcome.launches.len() <= count as usize);
    }
}

proptest! {
    /// (d) Every constraint answers the same against placed instances as a slice, as an index,
    /// and with the last of them given as a number of extra instances at the candidate.
    #[test]
    fn an_index_answers_like_the_slice(
        agents in prop::collection::vec((prop::option::of(0u8..3), prop::option::of(0u8..3)), 1..6),
        rule in rule_strategy(),
        placed_at in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        candidate in any::<prop::sample::Index>(),
        extra in 0usize..3,
    ) {
        let agents: Vec<Placement> = agents
            .iter()
            .enumerate()
            .map(|(i, &(rack, zone))| placement_of(&agent_offer(i, rack, zone)))
            .collect();
        let parts: Vec<String> = match &rule {
            Rule::Parsed(p) => p.iter().map(|s| s.to_string()).collect(),
            Rule::GroupByAllRacks => vec!["rack".into(), "GROUP_BY".into(), "2".into()],
        };
        let c = Constraint::parse(&parts).map_err(TestCaseError::fail)?;
        let here = &agents[candidate.index(agents.len())];
        let placed: Vec<Placement> = placed_at.iter().map(|i| agents[i.index(agents.len())].clone()).collect();
        let mut with_extra = placed.clone();
        with_extra.extend(std::iter::repeat_n(here.clone(), extra));
        let expected = c.accepts(here, &with_extra);
        let index = PlacementIndex::new(&placed);
        prop_assert_eq!(c.accepts_in(here, Placed::Index(&index), extra), expected, "index, {}", c);
        prop_assert_eq!(c.accepts_in(here, Placed::Slice(&placed), extra), expected, "slice, {}", c);
        prop_assert_eq!(c.accepts_in(here, Placed::Index(&PlacementIndex::new(&with_extra)), 0), expected);
    }
}
