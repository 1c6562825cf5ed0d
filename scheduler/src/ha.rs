//! High availability: campaign for leadership in ZooKeeper, lead while the session is healthy,
//! step down the moment it is not (or when asked), and tell the front door who serves the API.

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use zookeeper_client as zk;

use crate::front::Mode;
use crate::store::Store;
use crate::zk::election::{Candidate, Standing};
use crate::zk::store::ZkStore;
use crate::zk::{self as zkmod, ZkUrl};
use crate::{Context, Leadership};

/// Runs the election for the life of the process.
pub async fn campaign(ctx: Context, url: ZkUrl, session_timeout: Duration, mode: watch::Sender<Mode>, mut abdicate: mpsc::Receiver<()>) {
    let mut retry = crate::retry::Retry::new(Duration::from_millis(200), Duration::from_secs(5));
    loop {
        let client = match zkmod::connect(&url, session_timeout).await {
            Ok(c) => c,
            Err(e) => {
                mode.send_replace(Mode::NoLeader(format!("ZooKeeper at {} is unreachable: {e}", url.hosts)));
                retry.wait().await;
                continue;
            }
        };
        retry.reset();
        let candidate = match Candidate::join(client.clone(), &url, &ctx.info.advertised).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot join the leader election");
                mode.send_replace(Mode::NoLeader(format!("cannot join the leader election: {e}")));
                retry.wait().await;
                continue;
            }
        };
        let removed = serve_term(&ctx, &url, &client, &candidate, &mode, &mut abdicate).await;
        // Leave cleanly if we still can; a lost session removes the node by itself.
        let _ = tokio::time::timeout(Duration::from_secs(1), candidate.resign()).await;
        drop(client);
        if removed {
            // Mesos removed the framework: no instance leads again until an operator decides
            // (the API answers 503 with what to do).
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One ZooKeeper session's worth of election: follow until we lead, lead until the session
/// falters or we are asked to step down; true if Mesos removed the framework while we led.
async fn serve_term(
    ctx: &Context,
    url: &ZkUrl,
    client: &zk::Client,
    candidate: &Candidate,
    mode: &watch::Sender<Mode>,
    abdicate: &mut mpsc::Receiver<()>,
) -> bool {
    let mut state = client.state_watcher();
    loop {
        let (standing, watcher) = match candidate.standing().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "lost track of the election; re-joining");
                mode.send_replace(Mode::NoLeader(format!("re-joining the leader election after: {e}")));
                return false;
            }
        };
        match standing {
            Standing::Follower(leader) => {
                if !matches!(&*mode.borrow(), Mode::Follower(l) if *l == leader) {
                    tracing::info!(%leader, "following the leader");
                }
                mode.send_replace(Mode::Follower(leader));
                tokio::select! {
                    _ = watcher.changed() => {}
                    s = state.changed() => {
                        if s != zk::SessionState::SyncConnected {
                            mode.send_replace(Mode::NoLeader(format!("the ZooKeeper session is {s:?}")));
                            return false;
                        }
                    }
                    // Only the leader abdicates; a follower ignores stray requests.
                    _ = abdicate.recv() => {}
                }
            }
            Standing::Leader => {
                mode.send_replace(Mode::NoLeader("this instance is taking over leadership".into()));
                let store = Store::Zk(Box::new(ZkStore::new(client.clone(), url.clone(), Some(candidate.node()))));
                let mut leadership = match Leadership::start(ctx, store).await {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "could not take over leadership; stepping down");
                        mode.send_replace(Mode::NoLeader(format!("the elected instance failed to start: {e}")));
                        return false;
                    }
                };
                tracing::info!("elected leader");
                mode.send_replace(Mode::Leader(leadership.router.clone()));
                let (why, removed) = tokio::select! {
                    s = state.changed() => (format!("the ZooKeeper session is {s:?}"), false),
                    _ = abdicate.recv() => ("asked to abdicate".to_string(), false),
                    stopped = leadership.finished() => {
                        let removed = matches!(stopped, crate::actor::Stopped::FrameworkRemoved { .. });
                        (stopped.explain(&format!("the framework-id node under {}/state/v1 in ZooKeeper", url.path)), removed)
                    }
                };
                // Stop acting before anything else: the actor and the Mesos subscription go now.
                drop(leadership);
                tracing::warn!(%why, "abdicated leadership");
                mode.send_replace(Mode::NoLeader(format!("the leader abdicated: {why}")));
                return removed;
            }
        }
    }
}
