//! The provisioner against moto's server mode through the real AWS SDK (endpoint override):
//! apply, idempotence, scaling one group, destroy by tags, existing networks, invalid files.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use provisioner::aws::aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use provisioner::aws::{Aws, Connection};
use provisioner::commands::{self, Options};
use provisioner::{Action, Error, Role};
use support::Moto;

const EXAMPLE: &str = include_str!("../cluster.example.toml");

fn options(moto: &Moto) -> Options {
    Options {
        connection: Connection {
            region: Some("us-east-1".into()),
            endpoint_url: Some(moto.url()),
            static_credentials: Some(("testing".into(), "testing".into())),
        },
        wait_timeout: Duration::from_secs(60),
        poll_interval: Duration::from_millis(200),
    }
}

/// Writes the example cluster file under `name` (with `edit` applied) into a fresh folder.
fn cluster_file(name: &str, edit: impl FnOnce(String) -> String) -> PathBuf {
    let path = support::work_dir(&format!("provisioner-{name}")).join("cluster.toml");
    std::fs::write(&path, edit(EXAMPLE.replace("name = \"demo\"", &format!("name = \"{name}\"")))).expect("test setup");
    path
}

async fn aws(moto: &Moto) -> Aws {
    Aws::connect(&options(moto).connection).await.expect("test setup")
}

fn by_cluster(name: &str) -> Filter {
    Filter::builder().name("tag:framework:cluster").values(name).build()
}

fn tag(tags: &[Tag], key: &str) -> Option<String> {
    tags.iter().find(|t| t.key() == Some(key)).and_then(|t| t.value()).map(str::to_string)
}

fn progress() -> impl FnMut(String) {
    |line| eprintln!("{line}")
}

/// (min, max, desired, health check, subnet count, instances InService) per role's group.
async fn groups(aws: &Aws, cluster: &str) -> BTreeMap<String, (i32, i32, i32, String, usize, usize)> {
    let out = aws.autoscaling.describe_auto_scaling_groups().send().await.expect("moto answers");
    out.auto_scaling_groups()
        .iter()
        .filter(|g| g.tags().iter().any(|t| t.key() == Some("framework:cluster") && t.value() == Some(cluster)))
        .map(|g| {
            let in_service = g.instances().iter().filter(|i| i.lifecycle_state().map(|s| s.as_str()) == Some("InService")).count();
            (
                g.auto_scaling_group_name().expect("moto answers").to_string(),
                (
                    g.min_size().expect("moto answers"),
                    g.max_size().expect("moto answers"),
                    g.desired_capacity().expect("moto answers"),
                    g.health_check_type().expect("moto answers").to_string(),
                    g.vpc_zone_identifier().expect("moto answers").split(',').count(),
                    in_service,
                ),
            )
        })
        .collect()
}

/// How many resources of each kind still carry the cluster's tag.
async fn tagged(aws: &Aws, cluster: &str) -> BTreeMap<&'static str, usize> {
    let ec2 = &aws.ec2;
    BTreeMap::from([
        ("vpc", ec2.describe_vpcs().filters(by_cluster(cluster)).send().await.expect("moto answers").vpcs().len()),
        ("subnet", ec2.describe_subnets().filters(by_cluster(cluster)).send().await.expect("moto answers").subnets().len()),
        (
            "internet-gateway",
            ec2.describe_internet_gateways().filters(by_cluster(cluster)).send().await.expect("moto answers").internet_gateways().len(),
        ),
        (
            "security-group",
            ec2.describe_security_groups().filters(by_cluster(cluster)).send().await.expect("moto answers").security_groups().len(),
        ),
        (
            "launch-template",
            ec2.describe_launch_templates().filters(by_cluster(cluster)).send().await.expect("moto answers").launch_templates().len(),
        ),
        ("auto-scaling-group", groups(aws, cluster).await.len()),
    ])
}

#[tokio::test]
async fn apply_creates_the_cluster_and_a_second_apply_changes_nothing() {
    let moto = Moto::start("apply").await.unwrap();
    let file = cluster_file("alpha", |t| t);
    let opts = options(&moto);
    let plan = commands::apply_file(&file, &opts, &mut progress()).await.unwrap();
    assert_eq!(plan.counts(), (17, 0, 0), "{plan}");

    let aws = aws(&moto).await;
    let vpcs = aws.ec2.describe_vpcs().filters(by_cluster("alpha")).send().await.unwrap();
    assert_eq!(vpcs.vpcs().len(), 1);
    let vpc = &vpcs.vpcs()[0];
    assert_eq!(vpc.cidr_block(), Some("10.42.0.0/16"));
    let vpc_id = vpc.vpc_id().unwrap();

    let subnets = aws.ec2.describe_subnets().filters(by_cluster("alpha")).send().await.unwrap();
    let mut cidrs: Vec<(String, String)> =
        subnets.subnets().iter().map(|s| (s.cidr_block().unwrap().to_string(), s.availability_zone().unwrap().to_string())).collect();
    cidrs.sort();
    assert_eq!(
        cidrs,
        [
            ("10.42.1.0/24".into(), "us-east-1a".into()),
            ("10.42.2.0/24".into(), "us-east-1b".into()),
            ("10.42.3.0/24".into(), "us-east-1c".into())
        ]
    );
    assert!(subnets.subnets().iter().all(|s| s.vpc_id() == Some(vpc_id)));

    let igws = aws.ec2.describe_internet_gateways().filters(by_cluster("alpha")).send().await.unwrap();
    assert_eq!(igws.internet_gateways().len(), 1);
    assert_eq!(igws.internet_gateways()[0].attachments().first().and_then(|a| a.vpc_id()), Some(vpc_id));

    let sgs = aws.ec2.describe_security_groups().filters(by_cluster("alpha")).send().await.unwrap();
    let sg_by_role: BTreeMap<String, String> =
        sgs.security_groups().iter().map(|g| (tag(g.tags(), "framework:role").unwrap(), g.group_id().unwrap().to_string())).collect();
    assert_eq!(sg_by_role.keys().cloned().collect::<Vec<_>>(), ["agent", "master", "zookeeper"]);
    let zk = sgs.security_groups().iter().find(|g| tag(g.tags(), "framework:role").as_deref() == Some("zookeeper")).unwrap();
    let from_group = |port: i32, role: &str| {
        zk.ip_permissions()
            .iter()
            .any(|p| p.from_port() == Some(port) && p.user_id_group_pairs().iter().any(|g| g.group_id() == Some(sg_by_role[role].as_str())))
    };
    assert!(from_group(2181, "master") && from_group(2181, "agent") && from_group(2181, "zookeeper"), "{:?}", zk.ip_permissions());
    assert!(from_group(2888, "zookeeper") && from_group(3888, "zookeeper"));
    assert!(!from_group(2888, "agent"), "peer traffic only among ZooKeeper nodes");
    let ssh_from_admin = zk
        .ip_permissions()
        .iter()
        .any(|p| p.from_port() == Some(22) && p.ip_ranges().iter().any(|r| r.cidr_ip() == Some("203.0.113.0/24")));
    assert!(ssh_from_admin);

    let lts = aws.ec2.describe_launch_templates().filters(by_cluster("alpha")).send().await.unwrap();
    assert_eq!(lts.launch_templates().len(), 3);
    for lt in lts.launch_templates() {
        let role = tag(lt.tags(), "framework:role").unwrap();
        let versions = aws
            .ec2
            .describe_launch_template_versions()
            .launch_template_id(lt.launch_template_id().unwrap())
            .versions("$Default")
            .send()
            .await
            .unwrap();
        let data = versions.launch_template_versions()[0].launch_template_data().unwrap();
        assert_eq!(data.image_id(), Some("ami-0123456789abcdef0"));
        assert_eq!(data.key_name(), Some("ops"));
        assert_eq!(data.security_group_ids(), [sg_by_role[&role].clone()]);
        let script = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(data.user_data().unwrap()).unwrap()).unwrap();
        match role.as_str() {
            "zookeeper" => {
                assert_eq!(data.instance_type().map(|t| t.as_str()), Some("t3.medium"));
                assert!(
                    script.contains("ZK_IPS=(10.42.1.10 10.42.2.10 10.42.3.10)") && script.contains("server.3=10.42.3.10:2888:3888"),
                    "{script}"
                );
            }
            "master" => assert!(script.contains("--quorum=2") && script.contains("/usr/local/bin/framework --master zk://"), "{script}"),
            "agent" => assert!(script.contains("--containerizers=docker,mesos") && script.contains("--attributes=rack:r1"), "{script}"),
            other => panic!("unexpected role {other}"),
        }
    }

    let g = groups(&aws, "alpha").await;
    assert_eq!(g["alpha-zookeeper"], (3, 3, 3, "EC2".into(), 3, 3));
    assert_eq!(g["alpha-master"], (3, 3, 3, "EC2".into(), 3, 3));
    assert_eq!(g["alpha-agent"], (1, 20, 5, "EC2".into(), 3, 5));

    let again = commands::plan_file(&file, &opts).await.unwrap();
    assert!(again.is_empty(), "plan after apply: {again}");
    let second = commands::apply_file(&file, &opts, &mut progress()).await.unwrap();
    assert!(second.is_empty(), "second apply: {second}");
    assert_eq!(groups(&aws, "alpha").await, g);
}

#[tokio::test]
async fn changing_the_agent_count_updates_only_that_group() {
    let moto = Moto::start("scale").await.unwrap();
    let file = cluster_file("beta", |t| t);
    let opts = options(&moto);
    commands::apply_file(&file, &opts, &mut progress()).await.unwrap();
    let aws = aws(&moto).await;
    let before = groups(&aws, "beta").await;

    let plan = commands::scale_file(&file, Role::Agent, 8, &opts, &mut progress()).await.unwrap();
    assert_eq!(plan.actions.len(), 1, "{plan}");
    assert!(matches!(&plan.actions[0], Action::Update { id: provisioner::model::ResourceId::AutoScalingGroup(Role::Agent), .. }), "{plan}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("count = 8\n") && text.contains("# min and max default to count"), "the file keeps its comments: {text}");
    let after = groups(&aws, "beta").await;
    assert_eq!(after["beta-agent"], (1, 20, 8, "EC2".into(), 3, 8));
    assert_eq!(after["beta-master"], before["beta-master"]);
    assert_eq!(after["beta-zookeeper"], before["beta-zookeeper"]);

    // The same through an edited file and apply, back down.
    std::fs::write(&file, text.replace("count = 8\n", "count = 2\n")).unwrap();
    let plan = commands::plan_file(&file, &opts).await.unwrap();
    assert_eq!(plan.actions.iter().map(|a| a.id().to_string()).collect::<Vec<_>>(), ["auto-scaling-group/agent"]);
    commands::apply_file(&file, &opts, &mut progress()).await.unwrap();
    assert_eq!(groups(&aws, "beta").await["beta-agent"], (1, 20, 2, "EC2".into(), 3, 2));

    let err = commands::scale_file(&file, Role::Agent, 21, &opts, &mut progress()).await.unwrap_err();
    assert!(err.to_string().contains("agents.count: 21 is outside min 1 .. max 20"), "{err}");
    assert!(std::fs::read_to_string(&file).unwrap().contains("count = 2\n"), "a refused scale leaves the file alone");
}

#[tokio::test]
async fn destroy_removes_what_the_cluster_tagged_and_nothing_else() {
    let moto = Moto::start("destroy").await.unwrap();
    let aws = aws(&moto).await;
    let opts = options(&moto);
    // Things the cluster must not touch: an untagged VPC with a security group, and a second cluster.
    let other_vpc = aws.ec2.create_vpc().cidr_block("10.99.0.0/16").send().await.unwrap().vpc().unwrap().vpc_id().unwrap().to_string();
    let other_sg = aws
        .ec2
        .create_security_group()
        .group_name("bystander")
        .description("not ours")
        .vpc_id(&other_vpc)
        .send()
        .await
        .unwrap()
        .group_id()
        .unwrap()
        .to_string();
    let file = cluster_file("gamma", |t| t);
    let neighbour = cluster_file("delta", |t| t.replace("10.42.", "10.43."));
    commands::apply_file(&file, &opts, &mut progress()).await.unwrap();
    commands::apply_file(&neighbour, &opts, &mut progress()).await.unwrap();
    assert!(tagged(&aws, "gamma").await.values().all(|n| *n > 0));

    let plan = commands::destroy_file(&file, &opts, &mut progress()).await.unwrap();
    assert_eq!(plan.counts(), (0, 0, 17), "{plan}");
    assert!(tagged(&aws, "gamma").await.values().all(|n| *n == 0), "left behind: {:?}", tagged(&aws, "gamma").await);

    let vpcs = aws.ec2.describe_vpcs().vpc_ids(&other_vpc).send().await.unwrap();
    assert_eq!(vpcs.vpcs().len(), 1, "the untagged VPC survives");
    let sgs = aws.ec2.describe_security_groups().group_ids(&other_sg).send().await.unwrap();
    assert_eq!(sgs.security_groups().len(), 1, "the untagged security group survives");
    assert_eq!(
        tagged(&aws, "delta").await,
        BTreeMap::from([
            ("vpc", 1),
            ("subnet", 3),
            ("internet-gateway", 1),
            ("security-group", 3),
            ("launch-template", 3),
            ("auto-scaling-group", 3)
        ])
    );
    assert!(commands::plan_file(&neighbour, &opts).await.unwrap().is_empty(), "the other cluster is untouched");

    let again = commands::destroy_file(&file, &opts, &mut progress()).await.unwrap();
    assert!(again.is_empty(), "a second destroy has nothing to do: {again}");
}

#[tokio::test]
async fn an_existing_vpc_and_subnets_are_used_and_never_deleted() {
    let moto = Moto::start("existing").await.unwrap();
    let aws = aws(&moto).await;
    let opts = options(&moto);
    let vpc = aws.ec2.create_vpc().cidr_block("10.50.0.0/16").send().await.unwrap().vpc().unwrap().vpc_id().unwrap().to_string();
    let mut subnets = Vec::new();
    for (i, az) in ["us-east-1a", "us-east-1b"].into_iter().enumerate() {
        let out = aws
            .ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block(format!("10.50.{}.0/24", i + 1))
            .availability_zone(az)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Subnet)
                    .tags(Tag::builder().key("owner").value("network-team").build())
                    .build(),
            )
            .send()
            .await
            .unwrap();
        subnets.push(out.subnet().unwrap().subnet_id().unwrap().to_string());
    }
    let file = cluster_file("epsilon", |t| {
        let start = t.find("vpc_cidr").unwrap();
        let end = t.find("# ...or use").unwrap();
        let ips = "private_ips = [\"10.50.1.10\", \"10.50.2.10\", \"10.50.1.11\"]";
        format!("{}vpc_id = \"{vpc}\"\nsubnet_ids = [\"{}\", \"{}\"]\n{}", &t[..start], subnets[0], subnets[1], &t[end..])
            .replace("private_ips = [\"10.42.1.10\", \"10.42.2.10\", \"10.42.3.10\"]", ips)
    });
    let plan = commands::apply_file(&file, &opts, &mut progress()).await.unwrap();
    assert_eq!(plan.counts(), (12, 0, 0), "groups, rules, templates and ASGs only: {plan}");
    let sgs = aws.ec2.describe_security_groups().filters(by_cluster("epsilon")).send().await.unwrap();
    assert!(sgs.security_groups().iter().all(|g| g.vpc_id() == Some(vpc.as_str())));
    let out = aws.autoscaling.describe_auto_scaling_groups().auto_scaling_group_names("epsilon-agent").send().await.unwrap();
    let mut used: Vec<String> = out.auto_scaling_groups()[0].vpc_zone_identifier().unwrap().split(',').map(str::to_string).collect();
    used.sort();
    let mut want = subnets.clone();
    want.sort();
    assert_eq!(used, want);
    assert!(commands::plan_file(&file, &opts).await.unwrap().is_empty());

    let destroyed = commands::destroy_file(&file, &opts, &mut progress()).await.unwrap();
    assert_eq!(destroyed.counts(), (0, 0, 12), "{destroyed}");
    assert_eq!(aws.ec2.describe_vpcs().vpc_ids(&vpc).send().await.unwrap().vpcs().len(), 1, "the existing VPC stays");
    assert_eq!(
        aws.ec2.describe_subnets().subnet_ids(&subnets[0]).subnet_ids(&subnets[1]).send().await.unwrap().subnets().len(),
        2,
        "the existing subnets stay"
    );
}

#[tokio::test]
async fn an_invalid_cluster_file_is_refused_before_any_api_call() {
    let moto = Moto::start("invalid").await.unwrap();
    let file = cluster_file("zeta", |t| t.replace("count = 5", "count = 0"));
    // Nothing listens on port 1: any API call would fail with a connection error instead.
    let mut unreachable = options(&moto);
    unreachable.connection.endpoint_url = Some("http://127.0.0.1:1".into());
    for opts in [unreachable, options(&moto)] {
        for result in [
            commands::plan_file(&file, &opts).await,
            commands::apply_file(&file, &opts, &mut progress()).await,
            commands::destroy_file(&file, &opts, &mut progress()).await,
        ] {
            let err = result.unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{err:?}");
            let text = err.to_string();
            assert!(
                text.contains(&format!("cluster file {}: agents.count: 0: must be at least 1; set agents.count", file.display())),
                "{text}"
            );
        }
    }
    let aws = aws(&moto).await;
    assert!(tagged(&aws, "zeta").await.values().all(|n| *n == 0));
    let vpcs = aws.ec2.describe_vpcs().send().await.unwrap();
    assert!(vpcs.vpcs().iter().all(|v| v.is_default() == Some(true)), "only moto's default VPC exists: {:?}", vpcs.vpcs());

    let missing = commands::plan_file(&file.with_file_name("absent.toml"), &options(&moto)).await.unwrap_err();
    assert!(missing.to_string().starts_with("cannot read cluster file") && missing.to_string().contains("check the path"), "{missing}");
}
