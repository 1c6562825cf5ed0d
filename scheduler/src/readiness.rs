//! Readiness checks: during deployments a new instance counts only once its readiness check
//! (an HTTP GET on one of its ports) answers with a ready status. Each check runs as a small task
//! that reports the first success to the actor and ends; the actor aborts checks of instances
//! that went away.

use std::time::Duration;

use framework_core::readiness::Probe;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::actor::Command;

/// Starts polling a probe's URL (where it polls is the core's decision,
/// [`framework_core::readiness::probe`]); the first ready answer is sent to the actor.
pub fn spawn(probe: Probe, actor: mpsc::Sender<Command>, http: reqwest::Client) -> AbortHandle {
    let Probe { instance, url, check } = probe;
    let interval = Duration::from_secs(u64::from(check.interval_seconds.max(1)));
    let timeout = Duration::from_secs(u64::from(check.timeout_seconds.max(1)));
    let task = tokio::spawn(async move {
        loop {
            if let Ok(Ok(resp)) = tokio::time::timeout(timeout, http.get(&url).send()).await
                && check.http_status_codes_for_ready.contains(&resp.status().as_u16())
            {
                let _ = actor.send(Command::Ready { instance }).await;
                return;
            }
            tokio::time::sleep(interval).await;
        }
    });
    task.abort_handle()
}
