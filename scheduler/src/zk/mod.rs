//! ZooKeeper: the `zk://` URLs, the state store, leader election and Mesos master detection.
//!
//! Layout under the `--zk` path (version 1), e.g. `/framework`:
//! - `leader/member-<seq>`: ephemeral sequential election nodes, data `host:port` of the API;
//!   the lowest sequence leads.
//! - `state/v1/<key>`: one node per store key (`apps/<app>`, `app-versions/<app>/<version>`,
//!   `instances/<id>`, `deployments/<id>`, `framework-id`), JSON, at most 256 KiB each.

pub mod detector;
pub mod election;
pub mod store;

use std::time::Duration;

use thiserror::Error;
use zookeeper_client as zk;

/// A `zk://` URL could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("'{0}' is not a ZooKeeper URL: use zk://host1:2181,host2:2181/path (optionally zk://user:password@hosts/path)")]
pub struct BadZkUrl(pub String);

/// A parsed `zk://[user:password@]host:port[,host:port...]/path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkUrl {
    /// `host:port,host:port` as the client takes it.
    pub hosts: String,
    /// The path, without a trailing slash (`/framework`).
    pub path: String,
    /// Digest credentials (`user:password`), if given.
    pub digest: Option<String>,
}

impl ZkUrl {
    /// Parses a `zk://` URL.
    pub fn parse(raw: &str) -> Result<Self, BadZkUrl> {
        let bad = || BadZkUrl(raw.to_string());
        let rest = raw.strip_prefix("zk://").ok_or_else(bad)?;
        let (authority, path) = rest.split_once('/').ok_or_else(bad)?;
        let (digest, hosts) = match authority.rsplit_once('@') {
            Some((cred, hosts)) if cred.contains(':') => (Some(cred.to_string()), hosts),
            Some(_) => return Err(bad()),
            None => (None, authority),
        };
        let path = format!("/{}", path.trim_matches('/'));
        let hosts_ok = !hosts.is_empty()
            && hosts.split(',').all(|h| h.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok()));
        if !hosts_ok || path == "/" || path.contains("//") {
            return Err(bad());
        }
        Ok(Self { hosts: hosts.to_string(), path, digest })
    }
}

/// Connects a new session (with digest auth if the URL has credentials).
pub async fn connect(url: &ZkUrl, session_timeout: Duration) -> Result<zk::Client, zk::Error> {
    let mut connector = zk::Client::connector();
    connector.session_timeout(session_timeout);
    connector.connection_timeout(session_timeout.min(Duration::from_secs(5)));
    if let Some(d) = &url.digest {
        connector.auth("digest".to_string(), d.as_bytes().to_vec());
    }
    connector.connect(&url.hosts).await
}

/// ACLs for nodes we create: only us when authenticated, anyone otherwise.
pub fn acls(url: &ZkUrl) -> zk::Acls<'static> {
    if url.digest.is_some() { zk::Acls::creator_all() } else { zk::Acls::anyone_all() }
}

/// Creates `path` and its missing ancestors as persistent nodes.
pub async fn ensure_path(client: &zk::Client, url: &ZkUrl, path: &str) -> Result<(), zk::Error> {
    match client.mkdir(path, &zk::CreateMode::Persistent.with_acls(acls(url))).await {
        Ok(()) | Err(zk::Error::NodeExists) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zk_urls() {
        let u = ZkUrl::parse("zk://127.0.0.1:2181,10.0.0.2:2181/framework/").unwrap();
        assert_eq!(u.hosts, "127.0.0.1:2181,10.0.0.2:2181");
        assert_eq!(u.path, "/framework");
        assert_eq!(u.digest, None);
        let u = ZkUrl::parse("zk://ops:secret@zk1:2181/a/b").unwrap();
        assert_eq!((u.digest.as_deref(), u.path.as_str()), (Some("ops:secret"), "/a/b"));
        for bad in ["http://x:1/a", "zk://x:1", "zk://x/a", "zk://x:1/", "zk://x:notaport/a", "zk://u@x:1/a", "zk://:1/a"] {
            assert!(ZkUrl::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
