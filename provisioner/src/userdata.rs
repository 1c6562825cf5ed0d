//! The boot scripts (EC2 user-data) each role's instances run at first start.
//!
//! The AMI is expected to carry ZooKeeper (Debian layout: /etc/zookeeper/conf,
//! /var/lib/zookeeper), Mesos (`mesos-master`, `mesos-agent` in /usr/sbin), Docker, Consul,
//! the `framework` binary in /usr/local/bin, the AWS CLI, curl and iproute2. The scripts only
//! configure and start them.
//!
//! ZooKeeper ids: instances of an Auto Scaling Group are interchangeable, so a ZooKeeper node
//! cannot be told its id in advance. The cluster file lists one fixed private address per node
//! (`zookeeper.private_ips`); node *n* of the ensemble is whoever holds address *n*. At boot a
//! ZooKeeper instance walks that list and asks EC2 to assign each address as a secondary private
//! IP of its own network interface (`aws ec2 assign-private-ip-addresses`, without reassignment).
//! EC2 refuses addresses that belong to another subnet or are held by a live instance, so the
//! first address it grants is free and in this instance's subnet, and its position in the list
//! (1-based) is the node's `myid`. EC2 serializes the assignments, so two instances booting at
//! once cannot take the same address. When an instance dies its interface is deleted, which
//! frees the address for its replacement: the replacement gets the same id and the quorum list
//! never changes. An instance that finds no free address in its subnet (more ZooKeeper
//! instances in one zone than addresses there) marks itself unhealthy so that the group
//! replaces it, usually in another zone. The instance profile needs
//! `ec2:AssignPrivateIpAddresses` and `autoscaling:SetInstanceHealth`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::cluster::Cluster;
use crate::model::TAG_CONSUL_JOIN;
use crate::role::Role;

/// The ZooKeeper client port.
pub const ZK_CLIENT_PORT: u16 = 2181;
/// The ZooKeeper peer port.
pub const ZK_PEER_PORT: u16 = 2888;
/// The ZooKeeper leader election port.
pub const ZK_ELECTION_PORT: u16 = 3888;
/// The Mesos master port.
pub const MESOS_MASTER_PORT: u16 = 5050;
/// The Mesos agent port.
pub const MESOS_AGENT_PORT: u16 = 5051;
/// The framework's Marathon API port.
pub const FRAMEWORK_PORT: u16 = 8080;

/// What the boot scripts need to know about the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootContext {
    /// Cluster name.
    pub cluster: String,
    /// The ZooKeeper quorum addresses; node `i + 1` holds `zk_ips[i]`.
    pub zk_ips: Vec<Ipv4Addr>,
    /// How many masters run (their quorum is a majority of these).
    pub masters: u32,
    /// Mesos attributes of the agents.
    pub agent_attributes: BTreeMap<String, String>,
    /// Consul datacenter.
    pub consul_datacenter: String,
}

impl BootContext {
    /// The context of a validated cluster.
    pub fn of(cluster: &Cluster) -> Self {
        let role = |r: Role| cluster.roles.get(&r);
        Self {
            cluster: cluster.name.clone(),
            zk_ips: role(Role::Zookeeper).map(|s| s.private_ips.clone()).unwrap_or_default(),
            masters: role(Role::Master).map_or(1, |s| s.count),
            agent_attributes: role(Role::Agent).map(|s| s.attributes.clone()).unwrap_or_default(),
            consul_datacenter: cluster.consul_datacenter.clone(),
        }
    }

    /// `server.N=ip:2888:3888` lines of zoo.cfg, N from 1 in list order.
    pub fn zk_servers(&self) -> Vec<String> {
        self.zk_ips.iter().enumerate().map(|(i, ip)| format!("server.{}={ip}:{ZK_PEER_PORT}:{ZK_ELECTION_PORT}", i + 1)).collect()
    }

    /// The ZooKeeper connection string, `ip:2181,ip:2181,...`.
    pub fn zk_hosts(&self) -> String {
        self.zk_ips.iter().map(|ip| format!("{ip}:{ZK_CLIENT_PORT}")).collect::<Vec<_>>().join(",")
    }

    /// The `zk://` URL under which the Mesos masters elect their leader.
    pub fn mesos_zk(&self) -> String {
        format!("zk://{}/mesos", self.zk_hosts())
    }

    /// The masters' replicated-log quorum: a majority of them.
    pub fn mesos_quorum(&self) -> u32 {
        self.masters / 2 + 1
    }

    /// The agents' `--attributes` value (`k:v;k:v`), empty when there are none.
    pub fn agent_attributes_flag(&self) -> String {
        self.agent_attributes.iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join(";")
    }
}

/// The myid of the node holding `ip`: its 1-based position in the quorum list.
pub fn zk_myid(zk_ips: &[Ipv4Addr], ip: Ipv4Addr) -> Option<usize> {
    zk_ips.iter().position(|x| *x == ip).map(|i| i + 1)
}

/// The boot script of `role`'s instances.
pub fn render(ctx: &BootContext, role: Role) -> String {
    let mut s = prelude(ctx, role);
    match role {
        Role::Zookeeper => zookeeper(ctx, &mut s),
        Role::Master => master(ctx, &mut s),
        Role::Agent => agent(ctx, &mut s),
    }
    consul(ctx, role, &mut s);
    s.push_str("echo \"framework bootstrap: $ROLE ready\"\n");
    s
}

fn prelude(ctx: &BootContext, role: Role) -> String {
    format!(
        "#!/bin/bash\n\
         # Boot script of a {role} instance of framework cluster {cluster}.\n\
         # Rendered by framework-provisioner from the cluster file: change the file and apply, not this script.\n\
         set -euo pipefail\n\
         exec > >(tee -a /var/log/framework-bootstrap.log) 2>&1\n\
         ROLE={role}\n\
         CLUSTER={cluster}\n\
         IMDS=http://169.254.169.254/latest\n\
         TOKEN=$(curl -sf -X PUT \"$IMDS/api/token\" -H 'X-aws-ec2-metadata-token-ttl-seconds: 3600')\n\
         md() {{ curl -sf -H \"X-aws-ec2-metadata-token: $TOKEN\" \"$IMDS/meta-data/$1\"; }}\n\
         LOCAL_IP=$(md local-ipv4)\n\
         INSTANCE_ID=$(md instance-id)\n\
         REGION=$(md placement/region)\n\
         ZK_HOSTS={hosts}\n",
        cluster = ctx.cluster,
        hosts = ctx.zk_hosts(),
    )
}

fn systemd_unit(s: &mut String, name: &str, description: &str, exec: &str) {
    let _ = write!(
        s,
        "cat > /etc/systemd/system/{name}.service <<UNIT\n\
         [Unit]\n\
         Description={description}\n\
         After=network-online.target\n\
         Wants=network-online.target\n\n\
         [Service]\n\
         ExecStart={exec}\n\
         Restart=always\n\
         RestartSec=5\n\n\
         [Install]\n\
         WantedBy=multi-user.target\n\
         UNIT\n\
         systemctl daemon-reload\n\
         systemctl enable --now {name}.service\n"
    );
}

fn zookeeper(ctx: &BootContext, s: &mut String) {
    let ips = ctx.zk_ips.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ");
    let _ = write!(
        s,
        "\n# ZooKeeper id: this node's id is the 1-based position, in ZK_IPS, of the fixed quorum address\n\
         # it manages to claim as a secondary private IP of its own interface. EC2 grants only\n\
         # addresses of this instance's subnet that no live instance holds, one claimant at a time,\n\
         # so the id is unique; a replacement instance reclaims the address (and id) its\n\
         # predecessor held. No free address here: mark this instance unhealthy so the group\n\
         # replaces it (usually in another zone).\n\
         ZK_IPS=({ips})\n\
         MAC=$(md mac)\n\
         ENI=$(md network/interfaces/macs/$MAC/interface-id)\n\
         PREFIX=$(md network/interfaces/macs/$MAC/subnet-ipv4-cidr-block | cut -d/ -f2)\n\
         MYID=\n\
         for attempt in $(seq 1 30); do\n\
         \x20 for i in \"${{!ZK_IPS[@]}}\"; do\n\
         \x20   if aws ec2 assign-private-ip-addresses --region \"$REGION\" --network-interface-id \"$ENI\" \\\n\
         \x20       --private-ip-addresses \"${{ZK_IPS[$i]}}\" >/dev/null 2>&1; then\n\
         \x20     MYID=$((i + 1))\n\
         \x20     ZK_IP=${{ZK_IPS[$i]}}\n\
         \x20     break 2\n\
         \x20   fi\n\
         \x20 done\n\
         \x20 sleep 10\n\
         done\n\
         if [ -z \"$MYID\" ]; then\n\
         \x20 echo \"no ZooKeeper address of ${{ZK_IPS[*]}} is free in this subnet; asking for a replacement\"\n\
         \x20 aws autoscaling set-instance-health --region \"$REGION\" --instance-id \"$INSTANCE_ID\" --health-status Unhealthy\n\
         \x20 exit 1\n\
         fi\n\
         DEV=$(ip -o link | awk -v mac=\"$MAC\" 'index($0, mac) {{ sub(\":\", \"\", $2); print $2; exit }}')\n\
         ip addr add \"$ZK_IP/$PREFIX\" dev \"$DEV\" || true\n\
         mkdir -p /var/lib/zookeeper\n\
         echo \"$MYID\" > /var/lib/zookeeper/myid\n\
         ln -sf /var/lib/zookeeper/myid /etc/zookeeper/conf/myid\n\
         cat > /etc/zookeeper/conf/zoo.cfg <<CFG\n\
         tickTime=2000\n\
         initLimit=10\n\
         syncLimit=5\n\
         dataDir=/var/lib/zookeeper\n\
         clientPort={ZK_CLIENT_PORT}\n\
         quorumListenOnAllIPs=true\n\
         autopurge.snapRetainCount=5\n\
         autopurge.purgeInterval=24\n\
         {servers}\n\
         CFG\n\
         systemctl enable zookeeper\n\
         systemctl restart zookeeper\n",
        servers = ctx.zk_servers().join("\n"),
    );
}

fn master(ctx: &BootContext, s: &mut String) {
    let exec = format!(
        "/usr/sbin/mesos-master --zk={zk} --quorum={quorum} --work_dir=/var/lib/mesos/master --cluster={cluster} \
         --ip=$LOCAL_IP --advertise_ip=$LOCAL_IP --hostname=$LOCAL_IP --port={MESOS_MASTER_PORT}",
        zk = ctx.mesos_zk(),
        quorum = ctx.mesos_quorum(),
        cluster = ctx.cluster,
    );
    s.push_str("\nmkdir -p /var/lib/mesos/master\n");
    systemd_unit(s, "mesos-master", "Mesos master", &exec);
    let framework = format!(
        "/usr/local/bin/framework --master {zk} --zk zk://{hosts}/framework --http-address 0.0.0.0:{FRAMEWORK_PORT} \
         --hostname $LOCAL_IP --consul http://127.0.0.1:8500 --data-dir /var/lib/framework --api-token-file /etc/framework/api-token",
        zk = ctx.mesos_zk(),
        hosts = ctx.zk_hosts(),
    );
    s.push_str(
        "mkdir -p /var/lib/framework /etc/framework\n\
         # The API token comes with the AMI or a later configuration step; without one the API refuses every call.\n\
         [ -f /etc/framework/api-token ] || (umask 077 && head -c 32 /dev/urandom | base64 > /etc/framework/api-token)\n",
    );
    systemd_unit(s, "framework", "framework (Marathon-compatible scheduler)", &framework);
}

fn agent(ctx: &BootContext, s: &mut String) {
    let attributes = ctx.agent_attributes_flag();
    let attributes = if attributes.is_empty() { String::new() } else { format!(" --attributes={attributes}") };
    let exec = format!(
        "/usr/sbin/mesos-agent --master={zk} --containerizers=docker,mesos --work_dir=/var/lib/mesos/agent \
         --ip=$LOCAL_IP --advertise_ip=$LOCAL_IP --hostname=$LOCAL_IP --port={MESOS_AGENT_PORT} \
         --executor_registration_timeout=5mins{attributes}",
        zk = ctx.mesos_zk(),
    );
    s.push_str("\nmkdir -p /var/lib/mesos/agent\nsystemctl enable --now docker\n");
    systemd_unit(s, "mesos-agent", "Mesos agent", &exec);
}

fn consul(ctx: &BootContext, role: Role, s: &mut String) {
    let server = if role == Role::Master {
        format!("server = true\nbootstrap_expect = {}\nui_config {{ enabled = true }}\n", ctx.masters)
    } else {
        "server = false\n".to_string()
    };
    let _ = write!(
        s,
        "\n# Consul: servers on the masters, clients elsewhere; every agent finds the servers by the\n\
         # {TAG_CONSUL_JOIN} tag that the masters' group puts on its instances.\n\
         mkdir -p /etc/consul.d /var/lib/consul\n\
         cat > /etc/consul.d/framework.hcl <<HCL\n\
         datacenter = \"{dc}\"\n\
         data_dir = \"/var/lib/consul\"\n\
         bind_addr = \"$LOCAL_IP\"\n\
         client_addr = \"127.0.0.1\"\n\
         retry_join = [\"provider=aws region=$REGION tag_key={TAG_CONSUL_JOIN} tag_value={join}\"]\n\
         {server}HCL\n",
        dc = ctx.consul_datacenter,
        join = consul_join_value(&ctx.cluster),
    );
    systemd_unit(s, "consul", "Consul agent", "/usr/bin/consul agent -config-dir=/etc/consul.d");
}

/// The value of the Consul join tag for a cluster's servers.
pub fn consul_join_value(cluster: &str) -> String {
    format!("{cluster}-consul-server")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> BootContext {
        BootContext {
            cluster: "demo".into(),
            zk_ips: vec!["10.42.1.10".parse().unwrap(), "10.42.2.10".parse().unwrap(), "10.42.3.10".parse().unwrap()],
            masters: 3,
            agent_attributes: [("rack".to_string(), "r1".to_string()), ("disk".to_string(), "ssd".to_string())].into(),
            consul_datacenter: "dc1".into(),
        }
    }

    fn bash_syntax_ok(script: &str) {
        let dir = std::env::temp_dir().join(format!("provisioner-userdata-{}-{}", std::process::id(), script.len()));
        std::fs::write(&dir, script).unwrap();
        let out = std::process::Command::new("bash").arg("-n").arg(&dir).output().unwrap();
        let _ = std::fs::remove_file(&dir);
        assert!(out.status.success(), "bash -n: {}\n{script}", String::from_utf8_lossy(&out.stderr));
    }

    #[test]
    fn zookeeper_ids_are_positions_in_the_quorum_list() {
        let c = ctx();
        assert_eq!(zk_myid(&c.zk_ips, "10.42.1.10".parse().unwrap()), Some(1));
        assert_eq!(zk_myid(&c.zk_ips, "10.42.3.10".parse().unwrap()), Some(3));
        assert_eq!(zk_myid(&c.zk_ips, "10.42.9.9".parse().unwrap()), None);
        assert_eq!(c.zk_servers(), ["server.1=10.42.1.10:2888:3888", "server.2=10.42.2.10:2888:3888", "server.3=10.42.3.10:2888:3888"]);
    }

    #[test]
    fn zookeeper_script_claims_an_address_and_writes_myid_and_the_quorum() {
        let s = render(&ctx(), Role::Zookeeper);
        assert!(s.starts_with("#!/bin/bash\n"));
        assert!(s.contains("ZK_IPS=(10.42.1.10 10.42.2.10 10.42.3.10)\n"), "{s}");
        assert!(s.contains("aws ec2 assign-private-ip-addresses"));
        assert!(!s.contains("--allow-reassignment"), "an address held by a live node must never be taken over");
        assert!(s.contains("MYID=$((i + 1))"));
        assert!(s.contains("echo \"$MYID\" > /var/lib/zookeeper/myid"));
        assert!(s.contains("--health-status Unhealthy"));
        for line in ctx().zk_servers() {
            assert!(s.contains(&format!("\n{line}\n")), "{line} missing");
        }
        assert!(s.contains("clientPort=2181\n"));
        assert!(s.contains("server = false\n"), "ZooKeeper nodes run a Consul client");
        bash_syntax_ok(&s);
    }

    #[test]
    fn master_script_runs_mesos_master_with_zk_and_quorum_and_the_framework() {
        let s = render(&ctx(), Role::Master);
        assert!(s.contains("/usr/sbin/mesos-master --zk=zk://10.42.1.10:2181,10.42.2.10:2181,10.42.3.10:2181/mesos --quorum=2 "), "{s}");
        assert!(s.contains("--cluster=demo"));
        assert!(s.contains("--port=5050"));
        assert!(s.contains("/usr/local/bin/framework --master zk://10.42.1.10:2181,10.42.2.10:2181,10.42.3.10:2181/mesos --zk zk://10.42.1.10:2181,10.42.2.10:2181,10.42.3.10:2181/framework --http-address 0.0.0.0:8080"));
        assert!(s.contains("server = true\nbootstrap_expect = 3\n"));
        assert!(s.contains("tag_key=framework:consul-join tag_value=demo-consul-server"));
        assert!(!s.contains("ZK_IPS="), "only ZooKeeper nodes claim quorum addresses");
        bash_syntax_ok(&s);
    }

    #[test]
    fn master_quorum_is_a_majority() {
        let mut c = ctx();
        for (masters, quorum) in [(1, 1), (3, 2), (5, 3), (7, 4)] {
            c.masters = masters;
            assert_eq!(c.mesos_quorum(), quorum);
            assert!(render(&c, Role::Master).contains(&format!("--quorum={quorum} ")));
        }
    }

    #[test]
    fn agent_script_runs_mesos_agent_with_containerizers_and_attributes() {
        let s = render(&ctx(), Role::Agent);
        assert!(
            s.contains(
                "/usr/sbin/mesos-agent --master=zk://10.42.1.10:2181,10.42.2.10:2181,10.42.3.10:2181/mesos --containerizers=docker,mesos "
            ),
            "{s}"
        );
        assert!(s.contains("--port=5051"));
        assert!(s.contains(" --attributes=disk:ssd;rack:r1\n"), "{s}");
        assert!(s.contains("systemctl enable --now docker"));
        assert!(s.contains("server = false\n"));
        assert!(!s.contains("mesos-master"));
        assert!(!s.contains("/usr/local/bin/framework"));
        bash_syntax_ok(&s);
    }

    #[test]
    fn agent_script_without_attributes_has_no_attributes_flag() {
        let mut c = ctx();
        c.agent_attributes.clear();
        assert!(!render(&c, Role::Agent).contains("--attributes"));
    }
}
