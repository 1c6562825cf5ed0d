//! The plain model of a cluster's AWS resources, shared by the desired state (from the cluster
//! file) and the observed state (read from AWS). Resources refer to each other symbolically (by
//! role or subnet name), so the two states compare without knowing AWS ids.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::cluster::HealthCheck;
use crate::role::Role;

/// Tag naming the cluster a resource belongs to.
pub const TAG_CLUSTER: &str = "framework:cluster";
/// Tag naming the role a resource serves.
pub const TAG_ROLE: &str = "framework:role";
/// Tag naming which resource of the model it is ([`ResourceId`]'s text form).
pub const TAG_RESOURCE: &str = "framework:resource";
/// Tag the Consul agents join by (cloud auto-join); set on the masters, the Consul servers.
pub const TAG_CONSUL_JOIN: &str = "framework:consul-join";

/// Which resource of the cluster: the key that desired and observed states are compared by.
/// The order is the order of creation; deletion goes the other way.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceId {
    /// The created VPC.
    Vpc,
    /// The created VPC's internet gateway (with the default route in the main route table).
    InternetGateway,
    /// A created subnet, by name.
    Subnet(String),
    /// A role's security group (the group itself).
    SecurityGroup(Role),
    /// A role's security group's ingress rules (after every group exists, since rules name
    /// other groups; revoked before any group is deleted).
    IngressRules(Role),
    /// A role's launch template.
    LaunchTemplate(Role),
    /// A role's Auto Scaling Group.
    AutoScalingGroup(Role),
}

impl ResourceId {
    /// The role it serves, if any.
    pub fn role(&self) -> Option<Role> {
        match self {
            ResourceId::SecurityGroup(r)
            | ResourceId::IngressRules(r)
            | ResourceId::LaunchTemplate(r)
            | ResourceId::AutoScalingGroup(r) => Some(*r),
            _ => None,
        }
    }

    /// Parses the text form (as in the `framework:resource` tag).
    pub fn parse(s: &str) -> Option<ResourceId> {
        let (kind, arg) = s.split_once('/').map_or((s, None), |(k, a)| (k, Some(a)));
        let role = || arg.and_then(Role::parse);
        match kind {
            "vpc" if arg.is_none() => Some(ResourceId::Vpc),
            "internet-gateway" if arg.is_none() => Some(ResourceId::InternetGateway),
            "subnet" => arg.filter(|a| !a.is_empty()).map(|a| ResourceId::Subnet(a.to_string())),
            "security-group" => role().map(ResourceId::SecurityGroup),
            "ingress-rules" => role().map(ResourceId::IngressRules),
            "launch-template" => role().map(ResourceId::LaunchTemplate),
            "auto-scaling-group" => role().map(ResourceId::AutoScalingGroup),
            _ => None,
        }
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResourceId::Vpc => f.write_str("vpc"),
            ResourceId::InternetGateway => f.write_str("internet-gateway"),
            ResourceId::Subnet(n) => write!(f, "subnet/{n}"),
            ResourceId::SecurityGroup(r) => write!(f, "security-group/{r}"),
            ResourceId::IngressRules(r) => write!(f, "ingress-rules/{r}"),
            ResourceId::LaunchTemplate(r) => write!(f, "launch-template/{r}"),
            ResourceId::AutoScalingGroup(r) => write!(f, "auto-scaling-group/{r}"),
        }
    }
}

/// The VPC a security group lives in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VpcRef {
    /// The cluster's created VPC.
    Created,
    /// An existing VPC, by id.
    Existing(String),
}

/// A subnet an ASG spans.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SubnetRef {
    /// A created subnet, by name.
    Created(String),
    /// An existing subnet, by id.
    Existing(String),
}

impl fmt::Display for SubnetRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubnetRef::Created(n) => write!(f, "subnet/{n}"),
            SubnetRef::Existing(id) => f.write_str(id),
        }
    }
}

/// IP protocol of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// Where ingress traffic may come from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// A CIDR block.
    Cidr(String),
    /// Instances in a role's security group.
    Group(Role),
    /// A security group that is not one of the cluster's (seen only in observed state; such
    /// rules are revoked).
    OtherGroup(String),
}

/// One ingress rule: a port range from a source.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rule {
    /// Protocol.
    pub protocol: Protocol,
    /// First port.
    pub from_port: u16,
    /// Last port.
    pub to_port: u16,
    /// Source.
    pub source: Source,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ports =
            if self.from_port == self.to_port { self.from_port.to_string() } else { format!("{}-{}", self.from_port, self.to_port) };
        let source = match &self.source {
            Source::Cidr(c) => c.clone(),
            Source::Group(r) => format!("security-group/{r}"),
            Source::OtherGroup(id) => id.clone(),
        };
        write!(f, "{} {ports} from {source}", self.protocol.as_str())
    }
}

/// A launch template's default version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchTemplateSpec {
    /// AMI id.
    pub ami: String,
    /// Instance type.
    pub instance_type: String,
    /// Key pair.
    pub key_name: Option<String>,
    /// Instance profile name.
    pub instance_profile: Option<String>,
    /// The boot script, as text.
    pub user_data: String,
    /// The role whose security group the instances get.
    pub security_group: Role,
    /// Tags for the instances and volumes it launches.
    pub tags: BTreeMap<String, String>,
}

/// An Auto Scaling Group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsgSpec {
    /// Minimum size.
    pub min: u32,
    /// Maximum size.
    pub max: u32,
    /// Desired capacity.
    pub desired: u32,
    /// Health check type.
    pub health_check: HealthCheck,
    /// Health check grace period in seconds.
    pub grace_secs: u32,
    /// Subnets it spans.
    pub subnets: BTreeSet<SubnetRef>,
    /// The role whose launch template (default version) it launches.
    pub launch_template: Role,
    /// Tags, all propagated to instances at launch.
    pub tags: BTreeMap<String, String>,
}

/// What a resource should be (desired) or is (observed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// A VPC.
    Vpc {
        /// Its block.
        cidr: String,
    },
    /// An internet gateway attached to the created VPC.
    InternetGateway,
    /// A subnet of the created VPC.
    Subnet {
        /// Its block.
        cidr: String,
        /// Its zone.
        availability_zone: String,
    },
    /// A security group.
    SecurityGroup {
        /// Its VPC.
        vpc: VpcRef,
    },
    /// A security group's ingress rules.
    IngressRules(BTreeSet<Rule>),
    /// A launch template.
    LaunchTemplate(LaunchTemplateSpec),
    /// An Auto Scaling Group.
    AutoScalingGroup(AsgSpec),
}

/// A whole cluster's resources by id.
pub type State = BTreeMap<ResourceId, Spec>;

/// The ids that a resource's spec refers to (and which must exist while it does).
pub fn references(spec: &Spec) -> Vec<ResourceId> {
    match spec {
        Spec::Vpc { .. } => vec![],
        Spec::InternetGateway | Spec::Subnet { .. } => vec![ResourceId::Vpc],
        Spec::SecurityGroup { vpc: VpcRef::Created } => vec![ResourceId::Vpc],
        Spec::SecurityGroup { vpc: VpcRef::Existing(_) } => vec![],
        Spec::IngressRules(rules) => rules
            .iter()
            .filter_map(|r| match r.source {
                Source::Group(role) => Some(ResourceId::SecurityGroup(role)),
                _ => None,
            })
            .collect(),
        Spec::LaunchTemplate(lt) => vec![ResourceId::SecurityGroup(lt.security_group)],
        Spec::AutoScalingGroup(asg) => asg
            .subnets
            .iter()
            .filter_map(|s| match s {
                SubnetRef::Created(n) => Some(ResourceId::Subnet(n.clone())),
                SubnetRef::Existing(_) => None,
            })
            .chain([ResourceId::LaunchTemplate(asg.launch_template)])
            .collect(),
    }
}

/// The resources a spec needs that the state lacks. Ingress rules also need their own group.
pub fn dangling(state: &State) -> Vec<(ResourceId, ResourceId)> {
    let mut out = Vec::new();
    for (id, spec) in state {
        let mut needs = references(spec);
        if let ResourceId::IngressRules(role) = id {
            needs.push(ResourceId::SecurityGroup(*role));
        }
        for need in needs {
            if !state.contains_key(&need) {
                out.push((id.clone(), need));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_ids_round_trip_through_their_text() {
        let ids = [
            ResourceId::Vpc,
            ResourceId::InternetGateway,
            ResourceId::Subnet("a".into()),
            ResourceId::SecurityGroup(Role::Zookeeper),
            ResourceId::IngressRules(Role::Master),
            ResourceId::LaunchTemplate(Role::Agent),
            ResourceId::AutoScalingGroup(Role::Agent),
        ];
        for id in ids {
            assert_eq!(ResourceId::parse(&id.to_string()), Some(id.clone()), "{id}");
        }
        assert_eq!(ResourceId::parse("subnet/"), None);
        assert_eq!(ResourceId::parse("launch-template/web"), None);
        assert_eq!(ResourceId::parse("vpc/x"), None);
    }
}
