//! The three roles of a cluster, each one Auto Scaling Group.

use std::fmt;

/// What the instances of one Auto Scaling Group do. The order is the order of creation:
/// ZooKeeper first (masters and agents find each other through it), then masters, then agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// ZooKeeper ensemble members (Mesos master election, framework state).
    Zookeeper,
    /// Mesos masters, each also running the `framework` scheduler and a Consul server.
    Master,
    /// Mesos agents running tasks with the docker and mesos containerizers.
    Agent,
}

impl Role {
    /// Every role, in creation order.
    pub const ALL: [Role; 3] = [Role::Zookeeper, Role::Master, Role::Agent];

    /// The singular name used in resource names and tags (`zookeeper`, `master`, `agent`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Zookeeper => "zookeeper",
            Role::Master => "master",
            Role::Agent => "agent",
        }
    }

    /// The cluster file's table for this role (`zookeeper`, `masters`, `agents`).
    pub fn section(self) -> &'static str {
        match self {
            Role::Zookeeper => "zookeeper",
            Role::Master => "masters",
            Role::Agent => "agents",
        }
    }

    /// Parses a role by its singular name, its section name, or `zk`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "zookeeper" | "zk" => Some(Role::Zookeeper),
            "master" | "masters" => Some(Role::Master),
            "agent" | "agents" => Some(Role::Agent),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
