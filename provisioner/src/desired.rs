//! The desired state: what a validated cluster file asks AWS to hold.

use std::collections::{BTreeMap, BTreeSet};

use crate::cluster::{Cluster, Network};
use crate::model::{
    AsgSpec, LaunchTemplateSpec, Protocol, ResourceId, Rule, Source, Spec, State, SubnetRef, TAG_CLUSTER, TAG_CONSUL_JOIN, TAG_RESOURCE,
    TAG_ROLE, VpcRef,
};
use crate::role::Role;
use crate::userdata::{
    self, BootContext, FRAMEWORK_PORT, MESOS_AGENT_PORT, MESOS_MASTER_PORT, ZK_CLIENT_PORT, ZK_ELECTION_PORT, ZK_PEER_PORT,
};

/// Consul's server RPC, Serf LAN and Serf WAN ports (8300-8302) and its HTTP API (8500).
pub const CONSUL_PORTS: (u16, u16) = (8300, 8302);
/// Consul's HTTP API port.
pub const CONSUL_HTTP_PORT: u16 = 8500;
/// SSH.
pub const SSH_PORT: u16 = 22;
/// The port range Mesos agents offer to tasks by default.
pub const TASK_PORTS: (u16, u16) = (31000, 32000);

/// The name of a role's security group, launch template and Auto Scaling Group.
pub fn resource_name(cluster: &str, role: Role) -> String {
    format!("{cluster}-{role}")
}

/// The tags that identify a resource as the cluster's: cluster, resource id, role, Name.
pub fn identity_tags(cluster: &str, id: &ResourceId) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::from([
        (TAG_CLUSTER.to_string(), cluster.to_string()),
        (TAG_RESOURCE.to_string(), id.to_string()),
        ("Name".to_string(), format!("{cluster}-{}", id.to_string().replace('/', "-"))),
    ]);
    if let Some(role) = id.role() {
        tags.insert(TAG_ROLE.to_string(), role.to_string());
    }
    tags
}

/// Ingress rules of a role's security group. Every rule among cluster members names a role's
/// group, so rules follow instances as groups scale.
pub fn ingress_rules(role: Role, admin_cidr: &str) -> BTreeSet<Rule> {
    let tcp = |from: u16, to: u16, source: Source| Rule { protocol: Protocol::Tcp, from_port: from, to_port: to, source };
    let udp = |from: u16, to: u16, source: Source| Rule { protocol: Protocol::Udp, from_port: from, to_port: to, source };
    let admin = || Source::Cidr(admin_cidr.to_string());
    let mut rules = BTreeSet::new();
    rules.insert(tcp(SSH_PORT, SSH_PORT, admin()));
    for peer in Role::ALL {
        rules.insert(tcp(CONSUL_PORTS.0, CONSUL_PORTS.1, Source::Group(peer)));
        rules.insert(udp(CONSUL_PORTS.0 + 1, CONSUL_PORTS.1, Source::Group(peer)));
        rules.insert(tcp(CONSUL_HTTP_PORT, CONSUL_HTTP_PORT, Source::Group(peer)));
    }
    match role {
        Role::Zookeeper => {
            for peer in Role::ALL {
                // Masters elect through ZooKeeper, the framework on the masters keeps its state
                // there, and agents find the leading master there.
                rules.insert(tcp(ZK_CLIENT_PORT, ZK_CLIENT_PORT, Source::Group(peer)));
            }
            rules.insert(tcp(ZK_PEER_PORT, ZK_PEER_PORT, Source::Group(Role::Zookeeper)));
            rules.insert(tcp(ZK_ELECTION_PORT, ZK_ELECTION_PORT, Source::Group(Role::Zookeeper)));
        }
        Role::Master => {
            for source in [Source::Group(Role::Master), Source::Group(Role::Agent), admin()] {
                rules.insert(tcp(MESOS_MASTER_PORT, MESOS_MASTER_PORT, source.clone()));
                rules.insert(tcp(FRAMEWORK_PORT, FRAMEWORK_PORT, source));
            }
            rules.insert(tcp(CONSUL_HTTP_PORT, CONSUL_HTTP_PORT, admin()));
        }
        Role::Agent => {
            for source in [Source::Group(Role::Master), Source::Group(Role::Agent), admin()] {
                rules.insert(tcp(MESOS_AGENT_PORT, MESOS_AGENT_PORT, source));
            }
            for source in [Source::Group(Role::Master), Source::Group(Role::Agent)] {
                rules.insert(tcp(TASK_PORTS.0, TASK_PORTS.1, source));
            }
        }
    }
    rules
}

/// Every resource the cluster file asks for.
pub fn desired(cluster: &Cluster) -> State {
    let mut state = State::new();
    let name = &cluster.name;
    let (vpc, subnets) = match &cluster.network {
        Network::Create { vpc_cidr, subnets } => {
            state.insert(ResourceId::Vpc, Spec::Vpc { cidr: vpc_cidr.to_string() });
            state.insert(ResourceId::InternetGateway, Spec::InternetGateway);
            for s in subnets {
                state.insert(
                    ResourceId::Subnet(s.name.clone()),
                    Spec::Subnet { cidr: s.cidr.to_string(), availability_zone: s.availability_zone.clone() },
                );
            }
            (VpcRef::Created, subnets.iter().map(|s| SubnetRef::Created(s.name.clone())).collect::<BTreeSet<_>>())
        }
        Network::Existing { vpc_id, subnet_ids } => {
            (VpcRef::Existing(vpc_id.clone()), subnet_ids.iter().cloned().map(SubnetRef::Existing).collect())
        }
    };
    let boot = BootContext::of(cluster);
    for (role, spec) in &cluster.roles {
        let role = *role;
        state.insert(ResourceId::SecurityGroup(role), Spec::SecurityGroup { vpc: vpc.clone() });
        state.insert(ResourceId::IngressRules(role), Spec::IngressRules(ingress_rules(role, &cluster.admin_cidr.to_string())));
        let mut instance_tags = spec.tags.clone();
        instance_tags.insert(TAG_CLUSTER.to_string(), name.clone());
        instance_tags.insert(TAG_ROLE.to_string(), role.to_string());
        state.insert(
            ResourceId::LaunchTemplate(role),
            Spec::LaunchTemplate(LaunchTemplateSpec {
                ami: spec.ami.clone(),
                instance_type: spec.instance_type.clone(),
                key_name: spec.key_name.clone(),
                instance_profile: spec.instance_profile.clone(),
                user_data: userdata::render(&boot, role),
                security_group: role,
                tags: instance_tags,
            }),
        );
        let id = ResourceId::AutoScalingGroup(role);
        let mut tags = spec.tags.clone();
        tags.extend(identity_tags(name, &id));
        tags.insert("Name".to_string(), resource_name(name, role));
        if role == Role::Master {
            tags.insert(TAG_CONSUL_JOIN.to_string(), userdata::consul_join_value(name));
        }
        state.insert(
            id,
            Spec::AutoScalingGroup(AsgSpec {
                min: spec.min,
                max: spec.max,
                desired: spec.count,
                health_check: spec.health_check,
                grace_secs: spec.health_check_grace_secs,
                subnets: subnets.clone(),
                launch_template: role,
                tags,
            }),
        );
    }
    state
}
