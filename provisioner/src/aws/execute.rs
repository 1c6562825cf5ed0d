//! Carries out a plan's actions against AWS, in the plan's order.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_autoscaling::types::{LaunchTemplateSpecification, Tag as AsgTag};
use aws_sdk_ec2::types::{
    AttributeBooleanValue, Filter, InstanceType, IpPermission, IpRange, LaunchTemplateIamInstanceProfileSpecificationRequest,
    LaunchTemplateTagSpecificationRequest, RequestLaunchTemplateData, ResourceType, Tag, TagSpecification, UserIdGroupPair,
};
use base64::Engine as _;

use super::observe::Observed;
use super::{Aws, code, fail};
use crate::Error;
use crate::desired::{identity_tags, resource_name};
use crate::model::{AsgSpec, LaunchTemplateSpec, ResourceId, Rule, Source, Spec, SubnetRef, VpcRef};
use crate::plan::Action;

/// Executes actions, remembering the AWS ids of what it creates.
pub struct Executor<'a> {
    aws: &'a Aws,
    cluster: String,
    ids: BTreeMap<ResourceId, String>,
    /// How long deletions wait for dependencies (terminating instances) to go.
    pub timeout: Duration,
    /// How often they look.
    pub poll: Duration,
}

fn ec2_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

fn tag_spec(kind: ResourceType, tags: &BTreeMap<String, String>) -> TagSpecification {
    TagSpecification::builder().resource_type(kind).set_tags(Some(ec2_tags(tags))).build()
}

impl<'a> Executor<'a> {
    /// An executor starting from what was observed.
    pub fn new(aws: &'a Aws, cluster: &str, observed: &Observed) -> Self {
        Self {
            aws,
            cluster: cluster.to_string(),
            ids: observed.ids.clone(),
            timeout: Duration::from_secs(600),
            poll: Duration::from_secs(5),
        }
    }

    fn id(&self, id: &ResourceId) -> Result<String, Error> {
        self.ids.get(id).cloned().ok_or_else(|| Error::Observe {
            resource: id.to_string(),
            problem: "needed but not found".to_string(),
            fix: "run apply again; if it persists, check that the resource carries its framework: tags".to_string(),
        })
    }

    fn vpc_id(&self, vpc: &VpcRef) -> Result<String, Error> {
        match vpc {
            VpcRef::Created => self.id(&ResourceId::Vpc),
            VpcRef::Existing(id) => Ok(id.clone()),
        }
    }

    fn tags(&self, id: &ResourceId) -> BTreeMap<String, String> {
        identity_tags(&self.cluster, id)
    }

    /// Runs every action in order; `progress` receives one line per action.
    pub async fn run(&mut self, actions: &[Action], progress: &mut dyn FnMut(String)) -> Result<(), Error> {
        for a in actions {
            match a {
                Action::Create { id, spec } => {
                    progress(format!("creating {id}"));
                    self.create(id, spec).await?;
                }
                Action::Update { id, from, to, .. } => {
                    progress(format!("updating {id}"));
                    self.update(id, from, to).await?;
                }
                Action::Delete { id, spec } => {
                    progress(format!("deleting {id}"));
                    self.delete(id, spec).await?;
                }
            }
        }
        Ok(())
    }

    async fn create(&mut self, id: &ResourceId, spec: &Spec) -> Result<(), Error> {
        let ec2 = &self.aws.ec2;
        let created = match (id, spec) {
            (ResourceId::Vpc, Spec::Vpc { cidr }) => {
                let out = ec2
                    .create_vpc()
                    .cidr_block(cidr)
                    .tag_specifications(tag_spec(ResourceType::Vpc, &self.tags(id)))
                    .send()
                    .await
                    .map_err(|e| fail(id, "ec2:CreateVpc", e))?;
                out.vpc().and_then(|v| v.vpc_id()).map(str::to_string)
            }
            (ResourceId::InternetGateway, Spec::InternetGateway) => {
                let vpc = self.id(&ResourceId::Vpc)?;
                let out = ec2
                    .create_internet_gateway()
                    .tag_specifications(tag_spec(ResourceType::InternetGateway, &self.tags(id)))
                    .send()
                    .await
                    .map_err(|e| fail(id, "ec2:CreateInternetGateway", e))?;
                let igw = out.internet_gateway().and_then(|g| g.internet_gateway_id()).map(str::to_string).unwrap_or_default();
                ec2.attach_internet_gateway()
                    .internet_gateway_id(&igw)
                    .vpc_id(&vpc)
                    .send()
                    .await
                    .map_err(|e| fail(id, "ec2:AttachInternetGateway", e))?;
                let tables = ec2
                    .describe_route_tables()
                    .filters(Filter::builder().name("vpc-id").values(&vpc).build())
                    .filters(Filter::builder().name("association.main").values("true").build())
                    .send()
                    .await
                    .map_err(|e| fail(id, "ec2:DescribeRouteTables", e))?;
                if let Some(table) = tables.route_tables().first().and_then(|t| t.route_table_id()) {
                    ec2.create_route()
                        .route_table_id(table)
                        .destination_cidr_block("0.0.0.0/0")
                        .gateway_id(&igw)
                        .send()
                        .await
                        .map_err(|e| fail(id, "ec2:CreateRoute", e))?;
                }
                Some(igw)
            }
            (ResourceId::Subnet(_), Spec::Subnet { cidr, availability_zone }) => {
                let vpc = self.id(&ResourceId::Vpc)?;
                let out = ec2
                    .create_subnet()
                    .vpc_id(vpc)
                    .cidr_block(cidr)
                    .availability_zone(availability_zone)
                    .tag_specifications(tag_spec(ResourceType::Subnet, &self.tags(id)))
                    .send()
                    .await
                    .map_err(|e| fail(id, "ec2:CreateSubnet", e))?;
                let subnet = out.subnet().and_then(|s| s.subnet_id()).map(str::to_string).unwrap_or_default();
                // Instances get public addresses so that they reach package mirrors and the AWS
                // APIs without a NAT gateway; the security groups decide who reaches them.
                ec2.modify_subnet_attribute()
                    .subnet_id(&subnet)
                    .map_public_ip_on_launch(AttributeBooleanValue::builder().value(true).build())
                    .send()
                    .await
                    .map_err(|e| fail(id, "ec2:ModifySubnetAttribute", e))?;
                Some(subnet)
            }
            (ResourceId::SecurityGroup(role), Spec::SecurityGroup { vpc }) => {
                let vpc = self.vpc_id(vpc)?;
                let out = ec2
                    .create_security_group()
                    .group_name(resource_name(&self.cluster, *role))
                    .description(format!("framework cluster {} {role} nodes", self.cluster))
                    .vpc_id(vpc)
                    .tag_specifications(tag_spec(ResourceType::SecurityGroup, &self.tags(id)))
                    .send()
                    .await
                    .map_err(|e| fail(id, "ec2:CreateSecurityGroup", e))?;
                out.group_id().map(str::to_string)
            }
            (ResourceId::IngressRules(role), Spec::IngressRules(rules)) => {
                let group = self.id(&ResourceId::SecurityGroup(*role))?;
                self.authorize(id, &group, rules.iter()).await?;
                Some(group)
            }
            (ResourceId::LaunchTemplate(role), Spec::LaunchTemplate(lt)) => {
                let data = self.template_data(lt)?;
                let out = ec2
                    .create_launch_template()
                    .launch_template_name(resource_name(&self.cluster, *role))
                    .launch_template_data(data)
                    .tag_specifications(tag_spec(ResourceType::LaunchTemplate, &self.tags(id)))
                    .send()
                    .await
                    .map_err(|e| fail(id, "ec2:CreateLaunchTemplate", e))?;
                out.launch_template().and_then(|t| t.launch_template_id()).map(str::to_string)
            }
            (ResourceId::AutoScalingGroup(role), Spec::AutoScalingGroup(asg)) => {
                let name = resource_name(&self.cluster, *role);
                let template = self.template_ref(asg)?;
                self.aws
                    .autoscaling
                    .create_auto_scaling_group()
                    .auto_scaling_group_name(&name)
                    .launch_template(template)
                    .min_size(i32::try_from(asg.min).unwrap_or(i32::MAX))
                    .max_size(i32::try_from(asg.max).unwrap_or(i32::MAX))
                    .desired_capacity(i32::try_from(asg.desired).unwrap_or(i32::MAX))
                    .health_check_type(asg.health_check.as_str())
                    .health_check_grace_period(i32::try_from(asg.grace_secs).unwrap_or(300))
                    .vpc_zone_identifier(self.subnet_ids(asg)?)
                    .set_tags(Some(asg_tags(&name, &asg.tags)))
                    .send()
                    .await
                    .map_err(|e| fail(id, "autoscaling:CreateAutoScalingGroup", e))?;
                Some(name)
            }
            (id, _) => return Err(mismatch(id)),
        };
        let created = created.ok_or_else(|| Error::Observe {
            resource: id.to_string(),
            problem: "AWS created it but returned no id".to_string(),
            fix: "run apply again".to_string(),
        })?;
        self.ids.insert(id.clone(), created);
        Ok(())
    }

    async fn update(&mut self, id: &ResourceId, from: &Spec, to: &Spec) -> Result<(), Error> {
        match (id, from, to) {
            (ResourceId::IngressRules(role), Spec::IngressRules(have), Spec::IngressRules(want)) => {
                let group = self.id(&ResourceId::SecurityGroup(*role))?;
                self.authorize(id, &group, want.difference(have)).await?;
                self.revoke(id, &group, have.difference(want)).await
            }
            (ResourceId::LaunchTemplate(_), _, Spec::LaunchTemplate(lt)) => {
                let template = self.id(id)?;
                let out = self
                    .aws
                    .ec2
                    .create_launch_template_version()
                    .launch_template_id(&template)
                    .launch_template_data(self.template_data(lt)?)
                    .send()
                    .await
                    .map_err(|e| fail(id, "ec2:CreateLaunchTemplateVersion", e))?;
                let version = out.launch_template_version().and_then(|v| v.version_number()).unwrap_or_default();
                self.aws
                    .ec2
                    .modify_launch_template()
                    .launch_template_id(&template)
                    .default_version(version.to_string())
                    .send()
                    .await
                    .map_err(|e| fail(id, "ec2:ModifyLaunchTemplate", e))?;
                Ok(())
            }
            (ResourceId::AutoScalingGroup(_), Spec::AutoScalingGroup(have), Spec::AutoScalingGroup(want)) => {
                let name = self.id(id)?;
                let asg = &self.aws.autoscaling;
                asg.update_auto_scaling_group()
                    .auto_scaling_group_name(&name)
                    .launch_template(self.template_ref(want)?)
                    .min_size(i32::try_from(want.min).unwrap_or(i32::MAX))
                    .max_size(i32::try_from(want.max).unwrap_or(i32::MAX))
                    .desired_capacity(i32::try_from(want.desired).unwrap_or(i32::MAX))
                    .health_check_type(want.health_check.as_str())
                    .health_check_grace_period(i32::try_from(want.grace_secs).unwrap_or(300))
                    .vpc_zone_identifier(self.subnet_ids(want)?)
                    .send()
                    .await
                    .map_err(|e| fail(id, "autoscaling:UpdateAutoScalingGroup", e))?;
                let changed: BTreeMap<String, String> =
                    want.tags.iter().filter(|(k, v)| have.tags.get(*k) != Some(*v)).map(|(k, v)| (k.clone(), v.clone())).collect();
                if !changed.is_empty() {
                    asg.create_or_update_tags()
                        .set_tags(Some(asg_tags(&name, &changed)))
                        .send()
                        .await
                        .map_err(|e| fail(id, "autoscaling:CreateOrUpdateTags", e))?;
                }
                let gone: BTreeMap<String, String> =
                    have.tags.iter().filter(|(k, _)| !want.tags.contains_key(*k)).map(|(k, v)| (k.clone(), v.clone())).collect();
                if !gone.is_empty() {
                    asg.delete_tags()
                        .set_tags(Some(asg_tags(&name, &gone)))
                        .send()
                        .await
                        .map_err(|e| fail(id, "autoscaling:DeleteTags", e))?;
                }
                Ok(())
            }
            (id, _, _) => Err(mismatch(id)),
        }
    }

    async fn delete(&mut self, id: &ResourceId, spec: &Spec) -> Result<(), Error> {
        let aws_id = self.id(id)?;
        let ec2 = &self.aws.ec2;
        match (id, spec) {
            (ResourceId::AutoScalingGroup(_), _) => {
                self.aws
                    .autoscaling
                    .delete_auto_scaling_group()
                    .auto_scaling_group_name(&aws_id)
                    .force_delete(true)
                    .send()
                    .await
                    .map_err(|e| fail(id, "autoscaling:DeleteAutoScalingGroup", e))?;
                super::wait::until_gone(self.aws, id, &aws_id, self.timeout, self.poll).await?;
            }
            (ResourceId::LaunchTemplate(_), _) => {
                ec2.delete_launch_template()
                    .launch_template_id(&aws_id)
                    .send()
                    .await
                    .map_err(|e| fail(id, "ec2:DeleteLaunchTemplate", e))?;
            }
            (ResourceId::IngressRules(_), Spec::IngressRules(rules)) => self.revoke(id, &aws_id, rules.iter()).await?,
            (ResourceId::SecurityGroup(_), _) => {
                self.retry_dependency(
                    id,
                    || async { ec2.delete_security_group().group_id(&aws_id).send().await.map(|_| ()) },
                    "ec2:DeleteSecurityGroup",
                )
                .await?;
            }
            (ResourceId::Subnet(_), _) => {
                self.retry_dependency(id, || async { ec2.delete_subnet().subnet_id(&aws_id).send().await.map(|_| ()) }, "ec2:DeleteSubnet")
                    .await?;
            }
            (ResourceId::InternetGateway, _) => {
                if let Ok(vpc) = self.id(&ResourceId::Vpc) {
                    match ec2.detach_internet_gateway().internet_gateway_id(&aws_id).vpc_id(vpc).send().await {
                        Ok(_) => {}
                        Err(e) if code(&e).as_deref() == Some("Gateway.NotAttached") => {}
                        Err(e) => return Err(fail(id, "ec2:DetachInternetGateway", e)),
                    }
                }
                ec2.delete_internet_gateway()
                    .internet_gateway_id(&aws_id)
                    .send()
                    .await
                    .map_err(|e| fail(id, "ec2:DeleteInternetGateway", e))?;
            }
            (ResourceId::Vpc, _) => {
                self.retry_dependency(id, || async { ec2.delete_vpc().vpc_id(&aws_id).send().await.map(|_| ()) }, "ec2:DeleteVpc").await?;
            }
            (id, _) => return Err(mismatch(id)),
        }
        self.ids.remove(id);
        Ok(())
    }

    /// Retries a deletion while AWS answers `DependencyViolation` (instances still terminating).
    async fn retry_dependency<F, Fut, E>(&self, id: &ResourceId, mut f: F, operation: &'static str) -> Result<(), Error>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(), aws_sdk_ec2::error::SdkError<E, aws_sdk_ec2::config::http::HttpResponse>>>,
        E: aws_sdk_ec2::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            match f().await {
                Ok(()) => return Ok(()),
                Err(e) if code(&e).as_deref() == Some("DependencyViolation") && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(self.poll).await;
                }
                Err(e) => return Err(fail(id, operation, e)),
            }
        }
    }

    fn permissions<'r>(&self, rules: impl Iterator<Item = &'r Rule>) -> Result<Vec<IpPermission>, Error> {
        let mut out = Vec::new();
        for r in rules {
            let p =
                IpPermission::builder().ip_protocol(r.protocol.as_str()).from_port(i32::from(r.from_port)).to_port(i32::from(r.to_port));
            let p = match &r.source {
                Source::Cidr(c) => p.ip_ranges(IpRange::builder().cidr_ip(c).build()),
                Source::Group(role) => {
                    p.user_id_group_pairs(UserIdGroupPair::builder().group_id(self.id(&ResourceId::SecurityGroup(*role))?).build())
                }
                Source::OtherGroup(g) => p.user_id_group_pairs(UserIdGroupPair::builder().group_id(g).build()),
            };
            out.push(p.build());
        }
        Ok(out)
    }

    async fn authorize<'r>(&self, id: &ResourceId, group: &str, rules: impl Iterator<Item = &'r Rule>) -> Result<(), Error> {
        let permissions = self.permissions(rules)?;
        if permissions.is_empty() {
            return Ok(());
        }
        self.aws
            .ec2
            .authorize_security_group_ingress()
            .group_id(group)
            .set_ip_permissions(Some(permissions))
            .send()
            .await
            .map_err(|e| fail(id, "ec2:AuthorizeSecurityGroupIngress", e))?;
        Ok(())
    }

    async fn revoke<'r>(&self, id: &ResourceId, group: &str, rules: impl Iterator<Item = &'r Rule>) -> Result<(), Error> {
        let permissions = self.permissions(rules)?;
        if permissions.is_empty() {
            return Ok(());
        }
        self.aws
            .ec2
            .revoke_security_group_ingress()
            .group_id(group)
            .set_ip_permissions(Some(permissions))
            .send()
            .await
            .map_err(|e| fail(id, "ec2:RevokeSecurityGroupIngress", e))?;
        Ok(())
    }

    fn template_data(&self, lt: &LaunchTemplateSpec) -> Result<RequestLaunchTemplateData, Error> {
        let instance_tags = ec2_tags(&lt.tags);
        let tags =
            |kind| LaunchTemplateTagSpecificationRequest::builder().resource_type(kind).set_tags(Some(instance_tags.clone())).build();
        Ok(RequestLaunchTemplateData::builder()
            .image_id(&lt.ami)
            .instance_type(InstanceType::from(lt.instance_type.as_str()))
            .set_key_name(lt.key_name.clone())
            .set_iam_instance_profile(
                lt.instance_profile.as_ref().map(|p| LaunchTemplateIamInstanceProfileSpecificationRequest::builder().name(p).build()),
            )
            .user_data(base64::engine::general_purpose::STANDARD.encode(&lt.user_data))
            .security_group_ids(self.id(&ResourceId::SecurityGroup(lt.security_group))?)
            .tag_specifications(tags(ResourceType::Instance))
            .tag_specifications(tags(ResourceType::Volume))
            .build())
    }

    fn template_ref(&self, asg: &AsgSpec) -> Result<LaunchTemplateSpecification, Error> {
        Ok(LaunchTemplateSpecification::builder()
            .launch_template_id(self.id(&ResourceId::LaunchTemplate(asg.launch_template))?)
            .version("$Default")
            .build())
    }

    fn subnet_ids(&self, asg: &AsgSpec) -> Result<String, Error> {
        let mut ids = Vec::new();
        for s in &asg.subnets {
            ids.push(match s {
                SubnetRef::Created(name) => self.id(&ResourceId::Subnet(name.clone()))?,
                SubnetRef::Existing(id) => id.clone(),
            });
        }
        Ok(ids.join(","))
    }
}

fn asg_tags(name: &str, tags: &BTreeMap<String, String>) -> Vec<AsgTag> {
    tags.iter()
        .map(|(k, v)| {
            AsgTag::builder().resource_id(name).resource_type("auto-scaling-group").key(k).value(v).propagate_at_launch(true).build()
        })
        .collect()
}

fn mismatch(id: &ResourceId) -> Error {
    Error::Observe {
        resource: id.to_string(),
        problem: "its tags name a different kind of resource".to_string(),
        fix: "untag or delete the mistagged resource".to_string(),
    }
}
