//! The plan: the actions that turn the observed state into the desired one, in an order that
//! keeps every reference valid at every step (creations and updates from the VPC up to the
//! ASGs, then deletions from the ASGs down to the VPC).

use std::collections::BTreeSet;
use std::fmt;

use crate::model::{AsgSpec, LaunchTemplateSpec, ResourceId, Spec, State};

/// One change to one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create a resource that does not exist.
    Create {
        /// Which.
        id: ResourceId,
        /// As what.
        spec: Spec,
    },
    /// Change a resource in place.
    Update {
        /// Which.
        id: ResourceId,
        /// What it is.
        from: Spec,
        /// What it becomes.
        to: Spec,
        /// The differences, for people.
        changes: Vec<String>,
    },
    /// Delete a resource the file no longer asks for.
    Delete {
        /// Which.
        id: ResourceId,
        /// What it was.
        spec: Spec,
    },
}

impl Action {
    /// The resource it acts on.
    pub fn id(&self) -> &ResourceId {
        match self {
            Action::Create { id, .. } | Action::Update { id, .. } | Action::Delete { id, .. } => id,
        }
    }
}

/// Why the desired state cannot be reached by changing resources in place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A field AWS cannot change on an existing resource.
    #[error(
        "{id}: {field} would change from {from} to {to}, which AWS cannot do in place; revert {field} in the cluster file, or run destroy and then apply"
    )]
    Immutable {
        /// The resource.
        id: ResourceId,
        /// The field.
        field: &'static str,
        /// Its current value.
        from: String,
        /// Its desired value.
        to: String,
    },
}

/// The ordered actions of a plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// In execution order.
    pub actions: Vec<Action>,
}

impl Plan {
    /// Whether nothing needs doing.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// How many creations, updates and deletions.
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for a in &self.actions {
            match a {
                Action::Create { .. } => c.0 += 1,
                Action::Update { .. } => c.1 += 1,
                Action::Delete { .. } => c.2 += 1,
            }
        }
        c
    }
}

/// Computes the plan from `observed` to `desired`.
pub fn plan(desired: &State, observed: &State) -> Result<Plan, PlanError> {
    let mut forward = Vec::new();
    for (id, want) in desired {
        match observed.get(id) {
            None => forward.push(Action::Create { id: id.clone(), spec: want.clone() }),
            Some(have) if have == want => {}
            Some(have) => {
                forward.push(Action::Update { id: id.clone(), from: have.clone(), to: want.clone(), changes: changes(id, have, want)? })
            }
        }
    }
    let deletes = observed
        .iter()
        .rev()
        .filter(|(id, _)| !desired.contains_key(*id))
        .map(|(id, spec)| Action::Delete { id: id.clone(), spec: spec.clone() });
    forward.extend(deletes);
    Ok(Plan { actions: forward })
}

/// The state after `action` (what the AWS shell makes of it, in the model).
pub fn simulate(state: &mut State, action: &Action) {
    match action {
        Action::Create { id, spec } | Action::Update { id, to: spec, .. } => {
            state.insert(id.clone(), spec.clone());
        }
        Action::Delete { id, .. } => {
            state.remove(id);
        }
    }
}

fn changes(id: &ResourceId, have: &Spec, want: &Spec) -> Result<Vec<String>, PlanError> {
    let immutable = |field: &'static str, from: String, to: String| Err(PlanError::Immutable { id: id.clone(), field, from, to });
    let mut out = Vec::new();
    let mut field = |name: &str, from: String, to: String| {
        if from != to {
            out.push(format!("{name}: {from} → {to}"));
        }
    };
    match (have, want) {
        (Spec::Vpc { cidr: a }, Spec::Vpc { cidr: b }) => return immutable("network.vpc_cidr", a.clone(), b.clone()),
        (Spec::Subnet { cidr: a, .. }, Spec::Subnet { cidr: b, .. }) if a != b => return immutable("cidr", a.clone(), b.clone()),
        (Spec::Subnet { availability_zone: a, .. }, Spec::Subnet { availability_zone: b, .. }) => {
            return immutable("availability_zone", a.clone(), b.clone());
        }
        (Spec::SecurityGroup { vpc: a }, Spec::SecurityGroup { vpc: b }) => return immutable("vpc", format!("{a:?}"), format!("{b:?}")),
        (Spec::IngressRules(a), Spec::IngressRules(b)) => {
            for r in b.difference(a) {
                out.push(format!("+ {r}"));
            }
            for r in a.difference(b) {
                out.push(format!("- {r}"));
            }
        }
        (Spec::LaunchTemplate(a), Spec::LaunchTemplate(b)) => launch_template_changes(a, b, &mut field),
        (Spec::AutoScalingGroup(a), Spec::AutoScalingGroup(b)) => asg_changes(a, b, &mut field),
        (a, b) => return immutable("kind", format!("{a:?}"), format!("{b:?}")),
    }
    Ok(out)
}

fn opt(o: &Option<String>) -> String {
    o.clone().unwrap_or_else(|| "(none)".to_string())
}

fn launch_template_changes(a: &LaunchTemplateSpec, b: &LaunchTemplateSpec, field: &mut impl FnMut(&str, String, String)) {
    field("ami", a.ami.clone(), b.ami.clone());
    field("instance_type", a.instance_type.clone(), b.instance_type.clone());
    field("key_name", opt(&a.key_name), opt(&b.key_name));
    field("instance_profile", opt(&a.instance_profile), opt(&b.instance_profile));
    field("security_group", a.security_group.to_string(), b.security_group.to_string());
    field("tags", format!("{:?}", a.tags), format!("{:?}", b.tags));
    if a.user_data != b.user_data {
        let changed = diff_lines(&a.user_data, &b.user_data);
        field("user_data", format!("{} lines", a.user_data.lines().count()), format!("{} lines ({changed})", b.user_data.lines().count()));
    }
}

fn diff_lines(a: &str, b: &str) -> String {
    let old: BTreeSet<&str> = a.lines().collect();
    let new: BTreeSet<&str> = b.lines().collect();
    let added: Vec<&str> = new.difference(&old).copied().collect();
    match added.first() {
        Some(first) => format!("{} changed, first: `{}`", added.len(), first.trim()),
        None => "lines removed".to_string(),
    }
}

fn asg_changes(a: &AsgSpec, b: &AsgSpec, field: &mut impl FnMut(&str, String, String)) {
    field("desired", a.desired.to_string(), b.desired.to_string());
    field("min", a.min.to_string(), b.min.to_string());
    field("max", a.max.to_string(), b.max.to_string());
    field("health_check", a.health_check.as_str().to_string(), b.health_check.as_str().to_string());
    field("health_check_grace_secs", a.grace_secs.to_string(), b.grace_secs.to_string());
    let subnets = |s: &BTreeSet<crate::model::SubnetRef>| s.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
    field("subnets", subnets(&a.subnets), subnets(&b.subnets));
    field("launch_template", a.launch_template.to_string(), b.launch_template.to_string());
    field("tags", format!("{:?}", a.tags), format!("{:?}", b.tags));
}

fn describe(spec: &Spec) -> String {
    match spec {
        Spec::Vpc { cidr } => cidr.clone(),
        Spec::InternetGateway => "with a default route".to_string(),
        Spec::Subnet { cidr, availability_zone } => format!("{cidr} in {availability_zone}"),
        Spec::SecurityGroup { vpc } => format!("in {vpc:?}"),
        Spec::IngressRules(rules) => format!("{} rules", rules.len()),
        Spec::LaunchTemplate(lt) => format!("{} {}", lt.ami, lt.instance_type),
        Spec::AutoScalingGroup(a) => format!("desired {} (min {}, max {})", a.desired, a.min, a.max),
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for a in &self.actions {
            match a {
                Action::Create { id, spec } => writeln!(f, "+ create {id}: {}", describe(spec))?,
                Action::Delete { id, spec } => writeln!(f, "- delete {id}: {}", describe(spec))?,
                Action::Update { id, changes, .. } => {
                    writeln!(f, "~ update {id}")?;
                    for c in changes {
                        writeln!(f, "    {c}")?;
                    }
                }
            }
        }
        let (c, u, d) = self.counts();
        if self.is_empty() {
            writeln!(f, "No changes: AWS matches the cluster file.")
        } else {
            writeln!(f, "Plan: {c} to create, {u} to update, {d} to delete.")
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::cluster::{Cluster, Network, parse};
    use crate::desired::desired;
    use crate::model::dangling;
    use crate::role::Role;

    fn example() -> Cluster {
        parse("cluster.example.toml", include_str!("../cluster.example.toml")).unwrap()
    }

    fn variant(agents: u32, masters: u32, instance_type: &str, subnets: usize, existing: bool, rack: &str) -> Cluster {
        let mut c = example();
        if let Some(a) = c.roles.get_mut(&Role::Agent) {
            a.count = agents;
            a.max = a.max.max(agents);
            a.instance_type = instance_type.to_string();
            a.attributes.insert("rack".into(), rack.into());
        }
        if let Some(m) = c.roles.get_mut(&Role::Master) {
            (m.count, m.min, m.max) = (masters, masters, masters);
        }
        if existing {
            c.network = Network::Existing { vpc_id: "vpc-1".into(), subnet_ids: (0..subnets).map(|i| format!("subnet-{i}")).collect() };
        } else if let Network::Create { subnets: s, .. } = &mut c.network {
            s.truncate(subnets);
        }
        c
    }

    /// `state` without `remove` and without everything that depends on what is gone.
    fn without(mut state: State, remove: &[ResourceId]) -> State {
        for id in remove {
            state.remove(id);
        }
        loop {
            let broken: Vec<ResourceId> = dangling(&state).into_iter().map(|(id, _)| id).collect();
            if broken.is_empty() {
                return state;
            }
            for id in broken {
                state.remove(&id);
            }
        }
    }

    /// Runs the plan in the model, checking that no step leaves a reference dangling.
    fn run(observed: &State, plan: &Plan) -> State {
        let mut state = observed.clone();
        for a in &plan.actions {
            simulate(&mut state, a);
            assert_eq!(dangling(&state), vec![], "after {a:?}");
        }
        state
    }

    #[test]
    fn from_nothing_everything_is_created_in_dependency_order() {
        let want = desired(&example());
        let p = plan(&want, &State::new()).unwrap();
        assert_eq!(p.counts(), (want.len(), 0, 0));
        // VPC, gateway, 3 subnets, and per role a group, its rules, a template and an ASG.
        assert_eq!(want.len(), 5 + 3 * 4);
        assert_eq!(run(&State::new(), &p), want);
        assert!(p.to_string().contains("+ create auto-scaling-group/agent: desired 5 (min 1, max 20)"), "{p}");
    }

    #[test]
    fn the_same_state_needs_nothing() {
        let want = desired(&example());
        let p = plan(&want, &want).unwrap();
        assert!(p.is_empty());
        assert!(p.to_string().starts_with("No changes"));
    }

    #[test]
    fn changing_the_agent_count_updates_only_the_agents_group() {
        let have = desired(&example());
        let mut c = example();
        if let Some(a) = c.roles.get_mut(&Role::Agent) {
            a.count = 7;
        }
        let p = plan(&desired(&c), &have).unwrap();
        assert_eq!(p.actions.len(), 1, "{p}");
        assert!(
            matches!(&p.actions[0], Action::Update { id: ResourceId::AutoScalingGroup(Role::Agent), changes, .. } if changes == &["desired: 5 → 7"]),
            "{p}"
        );
    }

    #[test]
    fn changing_the_master_count_updates_their_group_and_boot_script() {
        let have = desired(&example());
        let p = plan(&desired(&variant(5, 5, "m5.large", 3, false, "r1")), &have).unwrap();
        let ids: Vec<String> = p.actions.iter().map(|a| a.id().to_string()).collect();
        assert_eq!(ids, ["launch-template/master", "auto-scaling-group/master"]);
        assert!(p.to_string().contains("--quorum=3"), "{p}");
    }

    #[test]
    fn destroy_deletes_everything_in_reverse_order() {
        let have = desired(&example());
        let p = plan(&State::new(), &have).unwrap();
        assert_eq!(p.counts(), (0, 0, have.len()));
        assert_eq!(p.actions.first().map(|a| a.id().clone()), Some(ResourceId::AutoScalingGroup(Role::Agent)));
        assert_eq!(p.actions.last().map(|a| a.id().clone()), Some(ResourceId::Vpc));
        assert!(run(&have, &p).is_empty());
    }

    #[test]
    fn a_moved_subnet_is_refused_with_the_fix() {
        let have = desired(&example());
        let mut want = have.clone();
        want.insert(ResourceId::Subnet("a".into()), Spec::Subnet { cidr: "10.42.9.0/24".into(), availability_zone: "us-east-1a".into() });
        let err = plan(&want, &have).unwrap_err();
        assert!(err.to_string().contains("subnet/a: cidr would change from 10.42.1.0/24 to 10.42.9.0/24"), "{err}");
        assert!(err.to_string().contains("run destroy and then apply"), "{err}");
    }

    #[test]
    fn a_removed_subnet_leaves_the_group_before_it_is_deleted() {
        let have = desired(&example());
        let p = plan(&desired(&variant(5, 3, "m5.large", 2, false, "r1")), &have).unwrap();
        let ids: Vec<String> = p.actions.iter().map(|a| a.id().to_string()).collect();
        let asg = ids.iter().position(|i| i == "auto-scaling-group/agent").unwrap();
        let subnet = ids.iter().position(|i| i == "subnet/c").unwrap();
        assert!(asg < subnet, "{ids:?}");
        run(&have, &p);
    }

    #[test]
    fn foreign_rules_are_revoked() {
        let have = desired(&example());
        let mut observed = have.clone();
        if let Some(Spec::IngressRules(rules)) = observed.get_mut(&ResourceId::IngressRules(Role::Agent)) {
            rules.insert(crate::model::Rule {
                protocol: crate::model::Protocol::Tcp,
                from_port: 80,
                to_port: 80,
                source: crate::model::Source::OtherGroup("sg-x".into()),
            });
        }
        let p = plan(&have, &observed).unwrap();
        assert!(p.to_string().contains("- tcp 80 from sg-x"), "{p}");
    }

    fn arb_cluster(existing: bool) -> impl Strategy<Value = Cluster> {
        (
            1u32..=20,
            prop::sample::select(vec![1u32, 3, 5]),
            prop::sample::select(vec!["m5.large", "c5.xlarge"]),
            1usize..=3,
            prop::sample::select(vec!["r1", "r2"]),
        )
            .prop_map(move |(agents, masters, itype, subnets, rack)| variant(agents, masters, itype, subnets, existing, rack))
    }

    fn arb_pair() -> impl Strategy<Value = (Cluster, Cluster, Vec<usize>)> {
        any::<bool>().prop_flat_map(|existing| (arb_cluster(existing), arb_cluster(existing), prop::collection::vec(0usize..20, 0..6)))
    }

    proptest! {
        /// From any consistent partial state of any cluster of the same kind, the plan keeps
        /// every reference valid at every step, ends in the desired state, and a second plan
        /// is empty.
        #[test]
        fn a_plan_reaches_the_desired_state_and_then_nothing_is_left_to_do((want, had, drop) in arb_pair()) {
            let desired_state = desired(&want);
            let before = desired(&had);
            let ids: Vec<ResourceId> = before.keys().cloned().collect();
            let remove: Vec<ResourceId> = drop.iter().filter_map(|i| ids.get(*i).cloned()).collect();
            let observed = without(before, &remove);
            prop_assert_eq!(dangling(&observed), vec![]);
            let p = plan(&desired_state, &observed).unwrap();
            let after = run(&observed, &p);
            prop_assert_eq!(&after, &desired_state);
            prop_assert!(plan(&desired_state, &after).unwrap().is_empty());
        }

        /// Destroying any consistent state deletes it all, one valid step at a time.
        #[test]
        fn destroy_from_any_state_leaves_nothing((_, had, drop) in arb_pair()) {
            let before = desired(&had);
            let ids: Vec<ResourceId> = before.keys().cloned().collect();
            let remove: Vec<ResourceId> = drop.iter().filter_map(|i| ids.get(*i).cloned()).collect();
            let observed = without(before, &remove);
            let p = plan(&State::new(), &observed).unwrap();
            let only_deletes = p.actions.iter().all(|a| matches!(a, Action::Delete { .. }));
            prop_assert!(only_deletes, "{}", p);
            prop_assert!(run(&observed, &p).is_empty());
        }
    }
}
