//! Leader election: every candidate creates an ephemeral sequential node under
//! `<path>/leader`; the lowest sequence leads. Followers watch the member list, so they always
//! know the current leader's address (for proxying) and notice when they move up.

use zookeeper_client as zk;

use super::ZkUrl;

/// Prefix of election nodes.
const MEMBER: &str = "member-";

/// This process's membership in the election.
#[derive(Debug)]
pub struct Candidate {
    client: zk::Client,
    dir: String,
    name: String,
}

/// What the election says right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// We lead.
    Leader,
    /// Someone else leads; their advertised `host:port`.
    Follower(String),
}

/// The sequence number of a member node name (`member-0000000042` → 42).
fn sequence(name: &str) -> Option<u64> {
    name.strip_prefix(MEMBER)?.parse().ok()
}

/// The members ordered by sequence (unparseable names are ignored).
fn ordered(mut names: Vec<String>) -> Vec<String> {
    names.retain(|n| sequence(n).is_some());
    names.sort_by_key(|n| sequence(n).unwrap_or(u64::MAX));
    names
}

impl Candidate {
    /// Joins the election, advertising `address` (`host:port` of our API).
    pub async fn join(client: zk::Client, url: &ZkUrl, address: &str) -> Result<Self, zk::Error> {
        let dir = format!("{}/leader", url.path);
        super::ensure_path(&client, url, &dir).await?;
        let options = zk::CreateMode::EphemeralSequential.with_acls(super::acls(url));
        let (_, seq) = client.create(&format!("{dir}/{MEMBER}"), address.as_bytes(), &options).await?;
        Ok(Self { client, dir, name: format!("{MEMBER}{seq}") })
    }

    /// The full path of our election node (writes are fenced on it).
    pub fn node(&self) -> String {
        format!("{}/{}", self.dir, self.name)
    }

    /// Where the election stands, and a watcher that fires on the next membership change.
    pub async fn standing(&self) -> Result<(Standing, zk::OneshotWatcher), zk::Error> {
        loop {
            let (children, watcher) = self.client.list_and_watch_children(&self.dir).await?;
            let members = ordered(children);
            if !members.contains(&self.name) {
                // Our ephemeral node is gone: the session expired or we were removed.
                return Err(zk::Error::NoNode);
            }
            let Some(first) = members.first() else { return Err(zk::Error::NoNode) };
            if *first == self.name {
                return Ok((Standing::Leader, watcher));
            }
            match self.client.get_data(&format!("{}/{first}", self.dir)).await {
                Ok((data, _)) => return Ok((Standing::Follower(String::from_utf8_lossy(&data).into_owned()), watcher)),
                // The leader just left; look again.
                Err(zk::Error::NoNode) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Leaves the election (abdication); the next member takes over at once.
    pub async fn resign(&self) -> Result<(), zk::Error> {
        match self.client.delete(&self.node(), None).await {
            Ok(()) | Err(zk::Error::NoNode) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_ordered_by_sequence() {
        let names =
            vec!["member-0000000010".to_string(), "junk".to_string(), "member-0000000002".to_string(), "member-0000000100".to_string()];
        assert_eq!(ordered(names), ["member-0000000002", "member-0000000010", "member-0000000100"]);
        assert_eq!(sequence("member-0000000007"), Some(7));
        assert_eq!(sequence("member-x"), None);
    }
}
