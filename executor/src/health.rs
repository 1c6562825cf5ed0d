//! Health checks of a running container, as Mesos's checker runs them: HTTP or TCP on the task's
//! port (the probes and the timing and failure rules are `mesos-health`'s, shared with the local
//! agents), or a command inside the container.

use std::time::Duration;

use bollard::Docker;
use mesos_proto::v1::{HealthCheck, health_check};
use tokio::sync::mpsc;

/// What the checker reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Health changed (first result, or a flip).
    Healthy(bool),
    /// Too many failures: kill the task.
    Kill,
}

/// One check: HTTP and TCP as every agent runs them (`mesos-health`), a command inside the
/// container.
async fn probe(check: &HealthCheck, docker: &Docker, container: &str, timeout: Duration, client: &reqwest::Client) -> bool {
    if let Some(ok) = mesos_health::probe_network(check, "127.0.0.1", client).await {
        return ok;
    }
    let attempt = async {
        if check.r#type() != health_check::Type::Command {
            return false;
        }
        let Some(cmd) = check.command.as_ref().and_then(|c| c.value.clone()) else { return false };
        crate::docker::exec(docker, container, &cmd).await.is_ok_and(|code| code == 0)
    };
    tokio::time::timeout(timeout, attempt).await.unwrap_or(false)
}

/// Runs the checks until the receiver goes away or a kill verdict is sent.
pub async fn run(check: HealthCheck, docker: Docker, container: String, verdicts: mpsc::Sender<Verdict>) {
    let policy = mesos_health::Policy::of(&check);
    let mut tracker = mesos_health::Tracker::new(policy);
    let client = reqwest::Client::new();
    let started = tokio::time::Instant::now();
    tokio::time::sleep(policy.delay).await;
    loop {
        let ok = probe(&check, &docker, &container, policy.timeout, &client).await;
        let verdict = match tracker.record(ok, started.elapsed()) {
            mesos_health::Verdict::Unchanged => None,
            mesos_health::Verdict::Changed(healthy) => Some(Verdict::Healthy(healthy)),
            mesos_health::Verdict::Kill => Some(Verdict::Kill),
        };
        if let Some(v) = verdict {
            let kill = v == Verdict::Kill;
            if verdicts.send(v).await.is_err() || kill {
                return;
            }
        }
        tokio::time::sleep(policy.interval).await;
    }
}
