//! Health checks of a running container, as Mesos's checker runs them: HTTP or TCP on the task's
//! port, or a command inside the container; after the grace period, `consecutive_failures`
//! failures in a row kill the task.

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

/// Mesos's defaults for the timing fields.
fn secs(v: Option<f64>, default: f64) -> Duration {
    Duration::try_from_secs_f64(v.filter(|s| s.is_finite() && *s >= 0.0).unwrap_or(default)).unwrap_or_default()
}

/// One check.
async fn probe(check: &HealthCheck, docker: &Docker, container: &str, timeout: Duration) -> bool {
    let attempt = async {
        match check.r#type() {
            health_check::Type::Http => {
                let Some(http) = &check.http else { return false };
                let scheme = http.scheme.clone().unwrap_or_else(|| "http".to_string());
                let path = http.path.clone().unwrap_or_else(|| "/".to_string());
                let url = format!("{scheme}://127.0.0.1:{}{path}", http.port);
                let client = reqwest::Client::new();
                match client.get(url).send().await {
                    Ok(r) => {
                        let code = r.status().as_u16();
                        (200..400).contains(&code)
                    }
                    Err(_) => false,
                }
            }
            health_check::Type::Tcp => {
                let Some(tcp) = &check.tcp else { return false };
                tokio::net::TcpStream::connect(("127.0.0.1", u16::try_from(tcp.port).unwrap_or(0))).await.is_ok()
            }
            health_check::Type::Command => {
                let Some(cmd) = check.command.as_ref().and_then(|c| c.value.clone()) else { return false };
                crate::docker::exec(docker, container, &cmd).await.is_ok_and(|code| code == 0)
            }
            _ => false,
        }
    };
    tokio::time::timeout(timeout, attempt).await.unwrap_or(false)
}

/// Runs the checks until the receiver goes away or a kill verdict is sent.
pub async fn run(check: HealthCheck, docker: Docker, container: String, verdicts: mpsc::Sender<Verdict>) {
    let delay = secs(check.delay_seconds, 15.0);
    let interval = secs(check.interval_seconds, 10.0).max(Duration::from_millis(100));
    let timeout = secs(check.timeout_seconds, 20.0).max(Duration::from_millis(100));
    let grace = secs(check.grace_period_seconds, 10.0);
    let limit = check.consecutive_failures.unwrap_or(3).max(1);
    let started = tokio::time::Instant::now();
    tokio::time::sleep(delay).await;
    let mut healthy: Option<bool> = None;
    let mut failures = 0u32;
    loop {
        let ok = probe(&check, &docker, &container, timeout).await;
        if ok {
            failures = 0;
            if healthy != Some(true) {
                healthy = Some(true);
                if verdicts.send(Verdict::Healthy(true)).await.is_err() {
                    return;
                }
            }
        } else {
            let in_grace = healthy.is_none() && started.elapsed() < grace;
            if !in_grace {
                failures += 1;
                if healthy != Some(false) {
                    healthy = Some(false);
                    if verdicts.send(Verdict::Healthy(false)).await.is_err() {
                        return;
                    }
                }
                if failures >= limit {
                    let _ = verdicts.send(Verdict::Kill).await;
                    return;
                }
            }
        }
        tokio::time::sleep(interval).await;
    }
}
