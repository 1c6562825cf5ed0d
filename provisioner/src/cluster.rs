//! The cluster file (TOML): its raw shape as written, and its validation into a [`Cluster`]
//! that every later step can trust. Validation happens before any AWS call.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;

use serde::Deserialize;

use crate::cidr::Cidr;
use crate::role::Role;

/// The cluster file as written, before validation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// Cluster name: tags every resource (`framework:cluster`) and prefixes resource names.
    pub name: String,
    /// AWS region; without it the standard AWS chain (AWS_REGION, profile) decides.
    pub region: Option<String>,
    /// Who may reach SSH (22), the Mesos UIs (5050, 5051) and the framework API (8080).
    pub admin_cidr: String,
    /// VPC and subnets.
    pub network: NetworkFile,
    /// Defaults for every role's launch template.
    pub instances: InstancesFile,
    /// Consul settings.
    #[serde(default)]
    pub consul: ConsulFile,
    /// The ZooKeeper group.
    pub zookeeper: RoleFile,
    /// The Mesos masters group.
    pub masters: RoleFile,
    /// The Mesos agents group.
    pub agents: RoleFile,
}

/// `[network]`: either `vpc_cidr` with `[[network.subnets]]` (created), or `vpc_id` with
/// `subnet_ids` (existing, never modified or deleted).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkFile {
    /// CIDR of a VPC to create.
    pub vpc_cidr: Option<String>,
    /// Subnets to create in it.
    #[serde(default)]
    pub subnets: Vec<SubnetFile>,
    /// Id of an existing VPC.
    pub vpc_id: Option<String>,
    /// Ids of existing subnets in that VPC.
    #[serde(default)]
    pub subnet_ids: Vec<String>,
}

/// One `[[network.subnets]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetFile {
    /// Short name, unique in the file (`a`, `b`, ...).
    pub name: String,
    /// Its CIDR block, inside the VPC's.
    pub cidr: String,
    /// Its availability zone (`us-east-1a`).
    pub availability_zone: String,
}

/// `[instances]`: launch template settings shared by every role unless the role overrides them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstancesFile {
    /// AMI id.
    pub ami: Option<String>,
    /// EC2 instance type.
    pub instance_type: Option<String>,
    /// EC2 key pair name for SSH.
    pub key_name: Option<String>,
    /// IAM instance profile name.
    pub instance_profile: Option<String>,
    /// Extra tags on every resource and instance.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// `[consul]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsulFile {
    /// Consul datacenter name (default `dc1`).
    pub datacenter: Option<String>,
}

/// `[zookeeper]`, `[masters]`, `[agents]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleFile {
    /// Desired number of instances.
    pub count: Option<i64>,
    /// ASG minimum (default: count).
    pub min: Option<i64>,
    /// ASG maximum (default: count).
    pub max: Option<i64>,
    /// Overrides `instances.ami`.
    pub ami: Option<String>,
    /// Overrides `instances.instance_type`.
    pub instance_type: Option<String>,
    /// Overrides `instances.key_name`.
    pub key_name: Option<String>,
    /// Overrides `instances.instance_profile`.
    pub instance_profile: Option<String>,
    /// `EC2` (default) or `ELB`.
    pub health_check: Option<String>,
    /// Seconds before the first health check (default 300).
    pub health_check_grace_secs: Option<i64>,
    /// Extra tags for this role's resources and instances.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// ZooKeeper only: the fixed quorum addresses, one per node (see README: ZooKeeper ids).
    #[serde(default)]
    pub private_ips: Vec<String>,
    /// Agents only: Mesos attributes (`rack = "r1"`).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// A validated cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// Cluster name (`[a-z][a-z0-9-]{0,27}`).
    pub name: String,
    /// Region from the file, if it names one.
    pub region: Option<String>,
    /// The admin network.
    pub admin_cidr: Cidr,
    /// VPC and subnets.
    pub network: Network,
    /// Consul datacenter.
    pub consul_datacenter: String,
    /// One entry per role, always all three.
    pub roles: BTreeMap<Role, RoleSpec>,
}

/// Where the cluster lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// A VPC (with an internet gateway) and subnets created for the cluster.
    Create {
        /// VPC CIDR.
        vpc_cidr: Cidr,
        /// Subnets, in file order.
        subnets: Vec<SubnetSpec>,
    },
    /// An existing VPC and subnets, used as they are.
    Existing {
        /// VPC id.
        vpc_id: String,
        /// Subnet ids.
        subnet_ids: Vec<String>,
    },
}

/// A subnet to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetSpec {
    /// Its short name.
    pub name: String,
    /// Its block.
    pub cidr: Cidr,
    /// Its availability zone.
    pub availability_zone: String,
}

/// EC2 or ELB health checks for an ASG.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HealthCheck {
    /// Instance status checks.
    Ec2,
    /// Load balancer health checks.
    Elb,
}

impl HealthCheck {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthCheck::Ec2 => "EC2",
            HealthCheck::Elb => "ELB",
        }
    }

    /// Parses the API's spelling.
    pub fn parse(s: &str) -> Option<HealthCheck> {
        match s {
            "EC2" => Some(HealthCheck::Ec2),
            "ELB" => Some(HealthCheck::Elb),
            _ => None,
        }
    }
}

/// One role's validated settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSpec {
    /// Desired capacity.
    pub count: u32,
    /// ASG minimum.
    pub min: u32,
    /// ASG maximum.
    pub max: u32,
    /// AMI id.
    pub ami: String,
    /// Instance type.
    pub instance_type: String,
    /// Key pair, if any.
    pub key_name: Option<String>,
    /// Instance profile name, if any.
    pub instance_profile: Option<String>,
    /// Health check type.
    pub health_check: HealthCheck,
    /// Grace period in seconds.
    pub health_check_grace_secs: u32,
    /// User tags (shared ones merged with the role's).
    pub tags: BTreeMap<String, String>,
    /// ZooKeeper quorum addresses (empty for other roles).
    pub private_ips: Vec<Ipv4Addr>,
    /// Mesos agent attributes (empty for other roles).
    pub attributes: BTreeMap<String, String>,
}

/// One thing wrong with the cluster file, with the way to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The field, dotted (`agents.count`).
    pub field: String,
    /// What is wrong.
    pub problem: String,
    /// What to do.
    pub fix: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}; {}", self.field, self.problem, self.fix)
    }
}

/// Why a cluster file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Not TOML, or not the cluster file's shape (unknown or mistyped keys).
    #[error("cluster file {file}: {message}\n(see provisioner/cluster.example.toml for the format)")]
    Syntax {
        /// The file.
        file: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// Well-formed but invalid; every problem found is listed.
    #[error("cluster file {file}: {}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\ncluster file {file}: "))]
    Invalid {
        /// The file.
        file: String,
        /// What is wrong, one entry per problem.
        problems: Vec<Problem>,
    },
}

/// Parses and validates a cluster file's text; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Cluster, ConfigError> {
    let raw: ClusterFile =
        toml::from_str(text).map_err(|e| ConfigError::Syntax { file: file.to_string(), message: e.to_string().trim_end().to_string() })?;
    validate(file, &raw)
}

/// Tags the provisioner manages itself; users may not set them.
const RESERVED_TAG_PREFIXES: [&str; 2] = ["framework:", "aws:"];

/// Validates a parsed file, collecting every problem.
pub fn validate(file: &str, raw: &ClusterFile) -> Result<Cluster, ConfigError> {
    let mut v = Validator::default();
    let name = raw.name.trim().to_string();
    if !valid_name(&name, 28) {
        v.problem(
            "name",
            format!("`{}` is not a valid cluster name", raw.name),
            "use 1 to 28 lowercase letters, digits and dashes, starting with a letter",
        );
    }
    if let Some(region) = &raw.region
        && (region.is_empty() || !region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
    {
        v.problem(
            "region",
            format!("`{region}` is not an AWS region name"),
            "set region to a name like us-east-1, or remove it to use AWS_REGION / the profile's region",
        );
    }
    let admin_cidr =
        v.cidr("admin_cidr", &raw.admin_cidr, "set admin_cidr to the network allowed to reach SSH and the UIs, like 203.0.113.0/24");
    let network = v.network(&raw.network);
    let consul_datacenter = raw.consul.datacenter.clone().unwrap_or_else(|| "dc1".to_string());
    if !valid_name(&consul_datacenter, 64) {
        v.problem(
            "consul.datacenter",
            format!("`{consul_datacenter}` is not a valid datacenter name"),
            "use lowercase letters, digits and dashes",
        );
    }
    v.tags("instances.tags", &raw.instances.tags);
    let mut roles = BTreeMap::new();
    for role in Role::ALL {
        let section = match role {
            Role::Zookeeper => &raw.zookeeper,
            Role::Master => &raw.masters,
            Role::Agent => &raw.agents,
        };
        if let Some(spec) = v.role(role, section, &raw.instances, network.as_ref()) {
            roles.insert(role, spec);
        }
    }
    match (v.problems.is_empty(), admin_cidr, network) {
        (true, Some(admin_cidr), Some(network)) if roles.len() == Role::ALL.len() => {
            Ok(Cluster { name, region: raw.region.clone(), admin_cidr, network, consul_datacenter, roles })
        }
        _ => Err(ConfigError::Invalid { file: file.to_string(), problems: v.problems }),
    }
}

fn valid_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[derive(Default)]
struct Validator {
    problems: Vec<Problem>,
}

impl Validator {
    fn problem(&mut self, field: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) {
        self.problems.push(Problem { field: field.into(), problem: problem.into(), fix: fix.into() });
    }

    fn cidr(&mut self, field: &str, s: &str, fix: &str) -> Option<Cidr> {
        match s.parse::<Cidr>() {
            Ok(c) => Some(c),
            Err(e) => {
                self.problem(field, e.to_string(), fix);
                None
            }
        }
    }

    fn tags(&mut self, field: &str, tags: &BTreeMap<String, String>) {
        for (k, val) in tags {
            if RESERVED_TAG_PREFIXES.iter().any(|p| k.starts_with(p)) {
                self.problem(format!("{field}.{k}"), "tag keys starting with framework: or aws: are reserved", "rename the tag");
            } else if k.is_empty() || k.len() > 127 || val.len() > 255 {
                self.problem(format!("{field}.{k}"), "tag keys must have 1 to 127 characters and values at most 255", "shorten the tag");
            }
        }
    }

    fn network(&mut self, n: &NetworkFile) -> Option<Network> {
        match (&n.vpc_cidr, &n.vpc_id) {
            (Some(_), Some(_)) => {
                self.problem(
                    "network",
                    "both vpc_cidr and vpc_id are set",
                    "set vpc_cidr (with [[network.subnets]]) to create a VPC, or vpc_id (with subnet_ids) to use an existing one",
                );
                None
            }
            (None, None) => {
                self.problem(
                    "network",
                    "neither vpc_cidr nor vpc_id is set",
                    "set vpc_cidr (with [[network.subnets]]) to create a VPC, or vpc_id (with subnet_ids) to use an existing one",
                );
                None
            }
            (Some(vpc_cidr), None) => {
                if !n.subnet_ids.is_empty() {
                    self.problem(
                        "network.subnet_ids",
                        "existing subnets cannot be used in a VPC that is created",
                        "list subnets to create under [[network.subnets]], or use vpc_id",
                    );
                }
                let vpc = self.cidr("network.vpc_cidr", vpc_cidr, "set network.vpc_cidr to a block like 10.42.0.0/16");
                if let Some(vpc) = vpc
                    && !(16..=28).contains(&vpc.prefix())
                {
                    self.problem(
                        "network.vpc_cidr",
                        format!("/{} is outside what AWS allows for a VPC", vpc.prefix()),
                        "use a prefix from /16 to /28",
                    );
                }
                if n.subnets.is_empty() {
                    self.problem(
                        "network.subnets",
                        "no subnets",
                        "add at least one [[network.subnets]] with name, cidr and availability_zone (one per zone you want)",
                    );
                }
                let mut subnets: Vec<SubnetSpec> = Vec::new();
                for (i, s) in n.subnets.iter().enumerate() {
                    let field = format!("network.subnets[{i}]");
                    if !valid_name(&s.name, 16) {
                        self.problem(
                            format!("{field}.name"),
                            format!("`{}` is not a valid subnet name", s.name),
                            "use 1 to 16 lowercase letters, digits and dashes",
                        );
                    } else if subnets.iter().any(|o| o.name == s.name) {
                        self.problem(format!("{field}.name"), format!("`{}` is used twice", s.name), "give each subnet its own name");
                    }
                    if s.availability_zone.trim().is_empty() {
                        self.problem(format!("{field}.availability_zone"), "empty", "set it to a zone of the region, like us-east-1a");
                    }
                    let Some(cidr) =
                        self.cidr(&format!("{field}.cidr"), &s.cidr, "set it to a block inside network.vpc_cidr, like 10.42.1.0/24")
                    else {
                        continue;
                    };
                    if let Some(vpc) = vpc
                        && !vpc.covers(cidr)
                    {
                        self.problem(
                            format!("{field}.cidr"),
                            format!("{cidr} is not inside the VPC's {vpc}"),
                            "pick a block inside network.vpc_cidr",
                        );
                    }
                    if let Some(o) = subnets.iter().find(|o| o.cidr.overlaps(cidr)) {
                        self.problem(
                            format!("{field}.cidr"),
                            format!("{cidr} overlaps subnet `{}` ({})", o.name, o.cidr),
                            "give each subnet its own block",
                        );
                    }
                    subnets.push(SubnetSpec { name: s.name.clone(), cidr, availability_zone: s.availability_zone.trim().to_string() });
                }
                vpc.map(|vpc_cidr| Network::Create { vpc_cidr, subnets })
            }
            (None, Some(vpc_id)) => {
                if !n.subnets.is_empty() {
                    self.problem(
                        "network.subnets",
                        "subnets cannot be created in an existing VPC by this file",
                        "list the existing subnets' ids in network.subnet_ids, or use vpc_cidr",
                    );
                }
                if !vpc_id.starts_with("vpc-") {
                    self.problem("network.vpc_id", format!("`{vpc_id}` is not a VPC id"), "use an id like vpc-0123456789abcdef0");
                }
                if n.subnet_ids.is_empty() {
                    self.problem("network.subnet_ids", "no subnets", "list at least one existing subnet id of the VPC");
                }
                let mut seen = BTreeSet::new();
                for (i, id) in n.subnet_ids.iter().enumerate() {
                    if !id.starts_with("subnet-") {
                        self.problem(
                            format!("network.subnet_ids[{i}]"),
                            format!("`{id}` is not a subnet id"),
                            "use ids like subnet-0123456789abcdef0",
                        );
                    } else if !seen.insert(id) {
                        self.problem(format!("network.subnet_ids[{i}]"), format!("`{id}` is listed twice"), "list each subnet once");
                    }
                }
                Some(Network::Existing { vpc_id: vpc_id.clone(), subnet_ids: n.subnet_ids.clone() })
            }
        }
    }

    fn count(&mut self, field: String, value: Option<i64>) -> Option<u32> {
        match value {
            None => None,
            Some(n) if (0..=10_000).contains(&n) => u32::try_from(n).ok(),
            Some(n) => {
                self.problem(field, format!("{n} is out of range"), "use a number from 0 to 10000");
                None
            }
        }
    }

    fn role(&mut self, role: Role, r: &RoleFile, shared: &InstancesFile, network: Option<&Network>) -> Option<RoleSpec> {
        let s = role.section();
        let before = self.problems.len();
        let count = match self.count(format!("{s}.count"), r.count) {
            Some(0) => {
                self.problem(format!("{s}.count"), "0: must be at least 1", format!("set {s}.count"));
                0
            }
            Some(n) => n,
            None => {
                if r.count.is_none() {
                    self.problem(
                        format!("{s}.count"),
                        "missing",
                        format!("set {s}.count (the seed cluster has 3 zookeeper, 3 masters, 5 agents)"),
                    );
                }
                0
            }
        };
        let min = self.count(format!("{s}.min"), r.min).unwrap_or(count);
        let max = self.count(format!("{s}.max"), r.max).unwrap_or(count);
        if count > 0 && !(min <= count && count <= max) {
            self.problem(
                format!("{s}.count"),
                format!("{count} is outside min {min} .. max {max}"),
                format!("set {s}.count between {s}.min and {s}.max, or widen them"),
            );
        }
        if matches!(role, Role::Zookeeper | Role::Master) && count > 0 && count % 2 == 0 {
            self.problem(
                format!("{s}.count"),
                format!("{count}: must be odd so that a majority survives the loss of a node"),
                format!("set {s}.count to 1, 3 or 5"),
            );
        }
        if matches!(role, Role::Zookeeper | Role::Master) && (min != count || max != count) {
            self.problem(
                format!("{s}.min/max"),
                "a quorum group has a fixed size",
                format!("remove {s}.min and {s}.max (they default to {s}.count)"),
            );
        }
        let ami = r.ami.clone().or_else(|| shared.ami.clone()).unwrap_or_default();
        if ami.is_empty() {
            self.problem(
                format!("{s}.ami"),
                "no AMI",
                "set instances.ami (or this role's ami) to an AMI with ZooKeeper, Mesos, Docker, Consul and framework installed",
            );
        } else if !ami.starts_with("ami-") {
            self.problem(format!("{s}.ami"), format!("`{ami}` is not an AMI id"), "use an id like ami-0123456789abcdef0");
        }
        let instance_type = r.instance_type.clone().or_else(|| shared.instance_type.clone()).unwrap_or_default();
        if instance_type.is_empty() || !instance_type.contains('.') {
            self.problem(
                format!("{s}.instance_type"),
                format!("`{instance_type}` is not an instance type"),
                "set instances.instance_type (or this role's) to a type like m5.large",
            );
        }
        let health_check = match r.health_check.as_deref() {
            None => HealthCheck::Ec2,
            Some(h) => HealthCheck::parse(h).unwrap_or_else(|| {
                self.problem(format!("{s}.health_check"), format!("`{h}` is not a health check type"), "use EC2 or ELB");
                HealthCheck::Ec2
            }),
        };
        let grace = match r.health_check_grace_secs {
            None => 300,
            Some(g) if (0..=7200).contains(&g) => u32::try_from(g).unwrap_or(300),
            Some(g) => {
                self.problem(format!("{s}.health_check_grace_secs"), format!("{g} is out of range"), "use 0 to 7200 seconds");
                300
            }
        };
        self.tags(&format!("{s}.tags"), &r.tags);
        let mut tags = shared.tags.clone();
        tags.extend(r.tags.clone());
        let mut private_ips = Vec::new();
        if role == Role::Zookeeper {
            for (i, ip) in r.private_ips.iter().enumerate() {
                let field = format!("zookeeper.private_ips[{i}]");
                let Ok(addr) = ip.parse::<Ipv4Addr>() else {
                    self.problem(field, format!("`{ip}` is not an IPv4 address"), "write addresses like 10.42.1.10");
                    continue;
                };
                if private_ips.contains(&addr) {
                    self.problem(field, format!("{addr} is listed twice"), "give each ZooKeeper node its own address");
                    continue;
                }
                if let Some(Network::Create { subnets, .. }) = network {
                    match subnets.iter().find(|sn| sn.cidr.contains(addr)) {
                        None => self.problem(
                            field,
                            format!("{addr} is in none of the subnets"),
                            "pick an address inside one of network.subnets (one per zone spreads the ensemble)",
                        ),
                        Some(sn) if sn.cidr.aws_reserved(addr) => self.problem(
                            field,
                            format!("{addr} is reserved by AWS in subnet `{}` ({})", sn.name, sn.cidr),
                            "skip the first four and the last address of the subnet",
                        ),
                        Some(_) => {}
                    }
                }
                private_ips.push(addr);
            }
            if count > 0 && r.private_ips.len() != count as usize {
                self.problem(
                    "zookeeper.private_ips",
                    format!("{} addresses for {count} nodes", r.private_ips.len()),
                    "list exactly one fixed private address per ZooKeeper node (zookeeper.count of them)",
                );
            }
        } else if !r.private_ips.is_empty() {
            self.problem(format!("{s}.private_ips"), "only zookeeper takes private_ips", "remove it");
        }
        if role == Role::Agent {
            for (k, val) in &r.attributes {
                let bad = |x: &str| x.is_empty() || x.contains([';', ':', '\'', '"', '\n', ' ']);
                if bad(k) || bad(val) {
                    self.problem(
                        format!("agents.attributes.{k}"),
                        "attribute names and values must be non-empty without spaces, quotes, `;` or `:`",
                        "rename it",
                    );
                }
            }
        } else if !r.attributes.is_empty() {
            self.problem(format!("{s}.attributes"), "only agents take Mesos attributes", "move them to [agents.attributes]");
        }
        (self.problems.len() == before).then(|| RoleSpec {
            count,
            min,
            max,
            ami,
            instance_type,
            key_name: r.key_name.clone().or_else(|| shared.key_name.clone()),
            instance_profile: r.instance_profile.clone().or_else(|| shared.instance_profile.clone()),
            health_check,
            health_check_grace_secs: grace,
            tags,
            private_ips,
            attributes: r.attributes.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../cluster.example.toml");

    fn problems(text: &str) -> Vec<Problem> {
        match parse("c.toml", text) {
            Err(ConfigError::Invalid { problems, .. }) => problems,
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    fn fields(text: &str) -> Vec<String> {
        problems(text).into_iter().map(|p| p.field).collect()
    }

    #[test]
    fn the_example_file_is_valid() {
        let c = parse("cluster.example.toml", EXAMPLE).unwrap();
        assert_eq!(c.name, "demo");
        assert_eq!(c.roles[&Role::Zookeeper].count, 3);
        assert_eq!(c.roles[&Role::Zookeeper].instance_type, "t3.medium");
        assert_eq!(c.roles[&Role::Master].count, 3);
        assert_eq!(c.roles[&Role::Master].instance_type, "m5.large");
        let agents = &c.roles[&Role::Agent];
        assert_eq!((agents.count, agents.min, agents.max), (5, 1, 20));
        assert_eq!(agents.tags.get("team").map(String::as_str), Some("platform"));
        assert!(matches!(&c.network, Network::Create { subnets, .. } if subnets.len() == 3));
    }

    #[test]
    fn zero_agents_is_refused_with_the_field_and_the_fix() {
        let err = parse("cluster.toml", &EXAMPLE.replace("count = 5", "count = 0")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("cluster file cluster.toml: agents.count: 0: must be at least 1; set agents.count"), "{text}");
    }

    #[test]
    fn syntax_and_unknown_keys_name_the_file_and_line() {
        let err = parse("c.toml", "name = \"x\"\nadmin_cidr = \"1.2.3.0/24\"\nbogus = 1\n").unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { .. }));
        assert!(err.to_string().contains("bogus"), "{err}");
        assert!(parse("c.toml", "name = ").is_err());
    }

    #[test]
    fn quorum_groups_must_be_odd_and_fixed() {
        let f = fields(&EXAMPLE.replace(
            "[masters]\n# Odd: the Mesos replicated log needs a majority (quorum = count / 2 + 1).\ncount = 3",
            "[masters]\ncount = 4\nmax = 6",
        ));
        assert!(f.contains(&"masters.count".to_string()), "{f:?}");
        assert!(f.contains(&"masters.min/max".to_string()), "{f:?}");
    }

    #[test]
    fn zookeeper_addresses_match_the_count_and_lie_in_subnets() {
        let f = fields(&EXAMPLE.replace(
            "[\"10.42.1.10\", \"10.42.2.10\", \"10.42.3.10\"]",
            "[\"10.42.1.10\", \"10.99.2.10\", \"10.42.3.255\", \"10.42.1.10\"]",
        ));
        assert!(f.contains(&"zookeeper.private_ips[1]".to_string()), "outside every subnet: {f:?}");
        assert!(f.contains(&"zookeeper.private_ips[2]".to_string()), "reserved by AWS: {f:?}");
        assert!(f.contains(&"zookeeper.private_ips[3]".to_string()), "listed twice: {f:?}");
        assert!(f.contains(&"zookeeper.private_ips".to_string()), "4 addresses for 3 nodes: {f:?}");
    }

    #[test]
    fn network_must_be_created_or_existing_not_both() {
        let both = EXAMPLE.replace("vpc_cidr = \"10.42.0.0/16\"", "vpc_cidr = \"10.42.0.0/16\"\nvpc_id = \"vpc-1\"");
        assert_eq!(fields(&both), ["network"]);
        let subnet_outside = EXAMPLE.replace("cidr = \"10.42.3.0/24\"", "cidr = \"10.43.3.0/24\"");
        let f = fields(&subnet_outside);
        assert!(f.contains(&"network.subnets[2].cidr".to_string()), "{f:?}");
        let overlap = EXAMPLE.replace("cidr = \"10.42.2.0/24\"", "cidr = \"10.42.1.128/25\"");
        assert!(fields(&overlap).contains(&"network.subnets[1].cidr".to_string()));
    }

    #[test]
    fn existing_network_takes_ids() {
        let start = EXAMPLE.find("vpc_cidr").unwrap();
        let end = EXAMPLE.find("# ...or use").unwrap();
        let text = format!("{}vpc_id = \"vpc-0abc\"\nsubnet_ids = [\"subnet-1\", \"subnet-2\"]\n{}", &EXAMPLE[..start], &EXAMPLE[end..]);
        let c = parse("c.toml", &text).unwrap();
        assert_eq!(c.network, Network::Existing { vpc_id: "vpc-0abc".into(), subnet_ids: vec!["subnet-1".into(), "subnet-2".into()] });
        let bad = text.replace("\"subnet-2\"", "\"sn-2\"");
        assert_eq!(fields(&bad), ["network.subnet_ids[1]"]);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = EXAMPLE
            .replace("name = \"demo\"", "name = \"Demo_1\"")
            .replace("admin_cidr = \"203.0.113.0/24\"", "admin_cidr = \"203.0.113.7/24\"")
            .replace("ami = \"ami-0123456789abcdef0\"", "ami = \"linux\"");
        let f = fields(&text);
        for want in ["name", "admin_cidr", "zookeeper.ami", "masters.ami", "agents.ami"] {
            assert!(f.contains(&want.to_string()), "{want} missing from {f:?}");
        }
    }

    #[test]
    fn reserved_tags_and_misplaced_settings_are_refused() {
        let text = EXAMPLE
            .replace("tags = { team = \"platform\" }", "tags = { \"framework:cluster\" = \"other\" }")
            .replace("count = 3\nhealth_check = \"EC2\"", "count = 3\nhealth_check = \"HTTP\"\nattributes = { a = \"b\" }");
        let f = fields(&text);
        assert!(f.contains(&"instances.tags.framework:cluster".to_string()), "{f:?}");
        assert!(f.contains(&"masters.health_check".to_string()), "{f:?}");
        assert!(f.contains(&"masters.attributes".to_string()), "{f:?}");
    }
}
