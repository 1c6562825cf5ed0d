//! Mesos master detection through ZooKeeper: masters register ephemeral sequential
//! `json.info_<seq>` nodes holding their `MasterInfo` as JSON; the lowest sequence leads.

use mesos_proto::v1::MasterInfo;
use tokio::sync::watch;
use zookeeper_client as zk;

use super::ZkUrl;

/// Prefix of master registration nodes.
pub const PREFIX: &str = "json.info_";

/// The base URL of a master from its `MasterInfo` JSON.
pub fn master_url(json: &[u8]) -> Option<String> {
    let info: MasterInfo = mesos_proto::json::from_json_slice(json).ok()?;
    let (host, port) = match &info.address {
        Some(a) => (a.hostname.clone().or_else(|| a.ip.clone())?, a.port),
        None => (info.hostname.clone()?, i32::try_from(info.port).ok()?),
    };
    Some(format!("http://{host}:{port}"))
}

/// The leading master's URL among `children` of the detection path, read with `read`.
fn leading(children: &[String]) -> Option<&String> {
    children.iter().filter(|c| c.starts_with(PREFIX)).min_by_key(|c| c[PREFIX.len()..].parse::<u64>().unwrap_or(u64::MAX))
}

/// Follows the leading master under `url.path` for as long as the process lives, publishing
/// its URL (None while no master is registered or ZooKeeper is unreachable).
pub async fn follow(url: ZkUrl, leader: watch::Sender<Option<String>>) {
    let mut retry = crate::retry::Retry::new(std::time::Duration::from_millis(200), std::time::Duration::from_secs(5));
    loop {
        let client = match super::connect(&url, std::time::Duration::from_secs(10)).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot reach ZooKeeper to detect the Mesos master; retrying");
                leader.send_replace(None);
                retry.wait().await;
                continue;
            }
        };
        retry.reset();
        loop {
            let (children, watcher) = match client.list_and_watch_children(&url.path).await {
                Ok(x) => x,
                Err(zk::Error::NoNode) => match client.check_and_watch_stat(&url.path).await {
                    Ok((None, w)) => {
                        leader.send_replace(None);
                        w.changed().await;
                        continue;
                    }
                    Ok((Some(_), _)) => continue,
                    Err(_) => break,
                },
                Err(_) => break,
            };
            let current = match leading(&children) {
                Some(node) => match client.get_data(&format!("{}/{node}", url.path)).await {
                    Ok((data, _)) => master_url(&data),
                    Err(_) => continue,
                },
                None => None,
            };
            if *leader.borrow() != current {
                tracing::info!(master = ?current, "leading Mesos master detected");
                leader.send_replace(current);
            }
            let event = watcher.changed().await;
            if matches!(event.session_state, zk::SessionState::Expired | zk::SessionState::Closed | zk::SessionState::AuthFailed) {
                break;
            }
        }
        leader.send_replace(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masters_are_read_from_their_json_info() {
        let json = br#"{"id":"m1","ip":16777343,"port":5050,"hostname":"m1.local","address":{"hostname":"m1.local","ip":"127.0.0.1","port":5050}}"#;
        assert_eq!(master_url(json).as_deref(), Some("http://m1.local:5050"));
        assert_eq!(master_url(b"not json"), None);
        let children = vec!["json.info_0000000012".to_string(), "log_replicas".to_string(), "json.info_0000000003".to_string()];
        assert_eq!(leading(&children).map(String::as_str), Some("json.info_0000000003"));
    }
}
