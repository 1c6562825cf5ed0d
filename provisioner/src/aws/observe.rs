//! Reads the cluster's resources (found by the `framework:cluster` tag) into the plain model.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_autoscaling::types::Filter as AsgFilter;
use aws_sdk_ec2::types::{Filter, IpPermission, Tag};
use base64::Engine as _;

use super::{Aws, fail};
use crate::Error;
use crate::cluster::HealthCheck;
use crate::desired::resource_name;
use crate::model::{
    AsgSpec, LaunchTemplateSpec, Protocol, ResourceId, Rule, Source, Spec, State, SubnetRef, TAG_CLUSTER, TAG_RESOURCE, VpcRef,
};
use crate::role::Role;

/// What AWS holds for a cluster: the model, and the AWS id of each resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// The resources, in the model's terms.
    pub state: State,
    /// AWS ids (VPC, subnet, group, launch template ids; ASG names).
    pub ids: BTreeMap<ResourceId, String>,
}

impl Observed {
    fn add(&mut self, id: ResourceId, aws_id: String, spec: Spec) -> Result<(), Error> {
        if let Some(other) = self.ids.get(&id) {
            return Err(Error::Observe {
                resource: id.to_string(),
                problem: format!("two resources carry its tags ({other} and {aws_id})"),
                fix: format!("delete or untag the one that should not be part of the cluster ({TAG_RESOURCE}={id})"),
            });
        }
        self.ids.insert(id.clone(), aws_id);
        self.state.insert(id, spec);
        Ok(())
    }
}

fn cluster_filter(cluster: &str) -> Filter {
    Filter::builder().name(format!("tag:{TAG_CLUSTER}")).values(cluster).build()
}

fn tag<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter().find(|t| t.key() == Some(key)).and_then(|t| t.value())
}

/// The resource a tagged EC2 resource is, if its tag names one.
fn resource_of(tags: &[Tag]) -> Option<ResourceId> {
    tag(tags, TAG_RESOURCE).and_then(ResourceId::parse)
}

/// Reads everything tagged for `cluster`.
pub async fn observe(aws: &Aws, cluster: &str) -> Result<Observed, Error> {
    let mut o = Observed::default();
    let ec2 = &aws.ec2;
    let what = format!("cluster {cluster}");

    let vpcs = ec2.describe_vpcs().filters(cluster_filter(cluster)).send().await.map_err(|e| fail(&what, "ec2:DescribeVpcs", e))?;
    for v in vpcs.vpcs() {
        if let (Some(ResourceId::Vpc), Some(id)) = (resource_of(v.tags()), v.vpc_id()) {
            o.add(ResourceId::Vpc, id.to_string(), Spec::Vpc { cidr: v.cidr_block().unwrap_or_default().to_string() })?;
        }
    }
    let igws = ec2
        .describe_internet_gateways()
        .filters(cluster_filter(cluster))
        .send()
        .await
        .map_err(|e| fail(&what, "ec2:DescribeInternetGateways", e))?;
    for g in igws.internet_gateways() {
        if let (Some(ResourceId::InternetGateway), Some(id)) = (resource_of(g.tags()), g.internet_gateway_id()) {
            o.add(ResourceId::InternetGateway, id.to_string(), Spec::InternetGateway)?;
        }
    }
    let mut subnet_names = BTreeMap::new();
    let mut token = None;
    loop {
        let page = ec2
            .describe_subnets()
            .filters(cluster_filter(cluster))
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| fail(&what, "ec2:DescribeSubnets", e))?;
        for s in page.subnets() {
            if let (Some(ResourceId::Subnet(name)), Some(id)) = (resource_of(s.tags()), s.subnet_id()) {
                subnet_names.insert(id.to_string(), name.clone());
                o.add(
                    ResourceId::Subnet(name),
                    id.to_string(),
                    Spec::Subnet {
                        cidr: s.cidr_block().unwrap_or_default().to_string(),
                        availability_zone: s.availability_zone().unwrap_or_default().to_string(),
                    },
                )?;
            }
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    let created_vpc = o.ids.get(&ResourceId::Vpc).cloned();

    let groups = ec2
        .describe_security_groups()
        .filters(cluster_filter(cluster))
        .send()
        .await
        .map_err(|e| fail(&what, "ec2:DescribeSecurityGroups", e))?;
    let mut group_roles = BTreeMap::new();
    let mut group_permissions = Vec::new();
    for g in groups.security_groups() {
        if let (Some(ResourceId::SecurityGroup(role)), Some(id)) = (resource_of(g.tags()), g.group_id()) {
            let vpc_id = g.vpc_id().unwrap_or_default().to_string();
            let vpc = if created_vpc.as_deref() == Some(vpc_id.as_str()) { VpcRef::Created } else { VpcRef::Existing(vpc_id) };
            o.add(ResourceId::SecurityGroup(role), id.to_string(), Spec::SecurityGroup { vpc })?;
            group_roles.insert(id.to_string(), role);
            group_permissions.push((role, id.to_string(), g.ip_permissions().to_vec()));
        }
    }
    for (role, id, permissions) in group_permissions {
        let rules = rules_of(&permissions, &group_roles);
        if !rules.is_empty() {
            o.add(ResourceId::IngressRules(role), id, Spec::IngressRules(rules))?;
        }
    }

    let templates = ec2
        .describe_launch_templates()
        .filters(cluster_filter(cluster))
        .send()
        .await
        .map_err(|e| fail(&what, "ec2:DescribeLaunchTemplates", e))?;
    let mut template_roles = BTreeMap::new();
    for t in templates.launch_templates() {
        let (Some(ResourceId::LaunchTemplate(role)), Some(id)) = (resource_of(t.tags()), t.launch_template_id()) else { continue };
        let rid = ResourceId::LaunchTemplate(role);
        let versions = ec2
            .describe_launch_template_versions()
            .launch_template_id(id)
            .versions("$Default")
            .send()
            .await
            .map_err(|e| fail(&rid, "ec2:DescribeLaunchTemplateVersions", e))?;
        let Some(data) = versions.launch_template_versions().first().and_then(|v| v.launch_template_data()) else { continue };
        let user_data = data
            .user_data()
            .map(|u| {
                base64::engine::general_purpose::STANDARD.decode(u).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
            })
            .unwrap_or_default();
        let security_group = data.security_group_ids().iter().find_map(|g| group_roles.get(g).copied()).unwrap_or(role);
        let mut tags = BTreeMap::new();
        for spec in data.tag_specifications() {
            if spec.resource_type().map(|r| r.as_str()) == Some("instance") {
                for t in spec.tags() {
                    tags.insert(t.key().unwrap_or_default().to_string(), t.value().unwrap_or_default().to_string());
                }
            }
        }
        template_roles.insert(t.launch_template_name().unwrap_or_default().to_string(), role);
        template_roles.insert(id.to_string(), role);
        o.add(
            rid,
            id.to_string(),
            Spec::LaunchTemplate(LaunchTemplateSpec {
                ami: data.image_id().unwrap_or_default().to_string(),
                instance_type: data.instance_type().map(|t| t.as_str().to_string()).unwrap_or_default(),
                key_name: data.key_name().map(str::to_string),
                instance_profile: data.iam_instance_profile().and_then(|p| p.name()).map(str::to_string),
                user_data,
                security_group,
                tags,
            }),
        )?;
    }

    let mut token = None;
    loop {
        let page = aws
            .autoscaling
            .describe_auto_scaling_groups()
            .filters(AsgFilter::builder().name(format!("tag:{TAG_CLUSTER}")).values(cluster).build())
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| fail(&what, "autoscaling:DescribeAutoScalingGroups", e))?;
        for g in page.auto_scaling_groups() {
            let tags: BTreeMap<String, String> =
                g.tags().iter().map(|t| (t.key().unwrap_or_default().to_string(), t.value().unwrap_or_default().to_string())).collect();
            if tags.get(TAG_CLUSTER).map(String::as_str) != Some(cluster) {
                continue;
            }
            let Some(ResourceId::AutoScalingGroup(role)) = tags.get(TAG_RESOURCE).and_then(|r| ResourceId::parse(r)) else { continue };
            let subnets: BTreeSet<SubnetRef> = g
                .vpc_zone_identifier()
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|id| subnet_names.get(id).map_or_else(|| SubnetRef::Existing(id.to_string()), |n| SubnetRef::Created(n.clone())))
                .collect();
            let template = g.launch_template().and_then(|t| t.launch_template_name().or(t.launch_template_id())).unwrap_or_default();
            let launch_template = template_roles
                .get(template)
                .copied()
                .unwrap_or_else(|| if template == resource_name(cluster, role) { role } else { Role::Agent });
            let count = |n: Option<i32>| n.and_then(|n| u32::try_from(n).ok()).unwrap_or(0);
            o.add(
                ResourceId::AutoScalingGroup(role),
                g.auto_scaling_group_name().unwrap_or_default().to_string(),
                Spec::AutoScalingGroup(AsgSpec {
                    min: count(g.min_size()),
                    max: count(g.max_size()),
                    desired: count(g.desired_capacity()),
                    health_check: g.health_check_type().and_then(HealthCheck::parse).unwrap_or(HealthCheck::Ec2),
                    grace_secs: count(g.health_check_grace_period()),
                    subnets,
                    launch_template,
                    tags,
                }),
            )?;
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    Ok(o)
}

/// The model's rules for a group's ingress permissions (TCP and UDP only; others are ignored).
pub fn rules_of(permissions: &[IpPermission], group_roles: &BTreeMap<String, Role>) -> BTreeSet<Rule> {
    let mut rules = BTreeSet::new();
    for p in permissions {
        let protocol = match p.ip_protocol() {
            Some("tcp" | "6") => Protocol::Tcp,
            Some("udp" | "17") => Protocol::Udp,
            _ => continue,
        };
        let (Some(from), Some(to)) = (p.from_port().and_then(|n| u16::try_from(n).ok()), p.to_port().and_then(|n| u16::try_from(n).ok()))
        else {
            continue;
        };
        let rule = |source| Rule { protocol, from_port: from, to_port: to, source };
        for r in p.ip_ranges() {
            if let Some(c) = r.cidr_ip() {
                rules.insert(rule(Source::Cidr(c.to_string())));
            }
        }
        for g in p.user_id_group_pairs() {
            if let Some(id) = g.group_id() {
                rules.insert(rule(group_roles.get(id).map_or_else(|| Source::OtherGroup(id.to_string()), |r| Source::Group(*r))));
            }
        }
    }
    rules
}
