//! Mesos health checks as an agent runs them, shared by `framework-executor` (Docker tasks) and
//! the local agents (command tasks), so that both read a `HealthCheck` the same way:
//! - [`Policy`]: Mesos's defaults for the timing fields (`delay_seconds` 15, `interval_seconds`
//!   10, `timeout_seconds` 20, `grace_period_seconds` 10, `consecutive_failures` 3);
//! - [`Tracker`]: what a result means: failures before the first success inside the grace
//!   period do not count, a flip of health is reported, and `consecutive_failures` failures in
//!   a row kill the task (0: never);
//! - [`probe_network`]: the HTTP and TCP probes on the task's port (HTTP healthy on the
//!   `statuses` given, else on 200–399, as Mesos's checker). Command checks run where the task
//!   runs, so each caller runs those itself.

use std::time::Duration;

use mesos_proto::v1::{HealthCheck, health_check};

/// The timing of a health check, with Mesos's defaults for absent fields.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Before the first check.
    pub delay: Duration,
    /// Between checks.
    pub interval: Duration,
    /// How long one check may take.
    pub timeout: Duration,
    /// After the task starts, failures before the first success do not count for this long.
    pub grace: Duration,
    /// Failures in a row that kill the task (0: never).
    pub max_failures: u32,
}

impl Policy {
    /// The policy of `check`; negative or non-finite times count as absent.
    pub fn of(check: &HealthCheck) -> Self {
        let secs = |v: Option<f64>, default: f64| {
            Duration::try_from_secs_f64(v.filter(|s| s.is_finite() && *s >= 0.0).unwrap_or(default)).unwrap_or_default()
        };
        Self {
            delay: secs(check.delay_seconds, 15.0),
            interval: secs(check.interval_seconds, 10.0).max(Duration::from_millis(10)),
            timeout: secs(check.timeout_seconds, 20.0).max(Duration::from_millis(10)),
            grace: secs(check.grace_period_seconds, 10.0),
            max_failures: check.consecutive_failures.unwrap_or(3),
        }
    }
}

/// What one result means for the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to report.
    Unchanged,
    /// Health is known for the first time, or flipped.
    Changed(bool),
    /// Too many failures in a row: kill the task.
    Kill,
}

/// The state of one task's check: results folded in as they come.
#[derive(Debug, Clone)]
pub struct Tracker {
    policy: Policy,
    failures: u32,
    healthy: Option<bool>,
}

impl Tracker {
    /// A task not checked yet.
    pub fn new(policy: Policy) -> Self {
        Self { policy, failures: 0, healthy: None }
    }

    /// The policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Folds one result in, `since_start` after the task started.
    pub fn record(&mut self, ok: bool, since_start: Duration) -> Verdict {
        if ok {
            self.failures = 0;
            if self.healthy == Some(true) {
                return Verdict::Unchanged;
            }
            self.healthy = Some(true);
            return Verdict::Changed(true);
        }
        if self.healthy.is_none() && since_start < self.policy.grace {
            return Verdict::Unchanged;
        }
        self.failures += 1;
        if self.policy.max_failures > 0 && self.failures >= self.policy.max_failures {
            return Verdict::Kill;
        }
        if self.healthy == Some(false) {
            return Verdict::Unchanged;
        }
        self.healthy = Some(false);
        Verdict::Changed(false)
    }
}

/// Whether an HTTP answer is healthy: one of `statuses` when the check names any, otherwise
/// 200–399.
pub fn http_healthy(statuses: &[u32], code: u16) -> bool {
    let code = u32::from(code);
    if statuses.is_empty() { (200..400).contains(&code) } else { statuses.contains(&code) }
}

/// Runs an HTTP or TCP check against `host` within the policy's timeout; `None` for a command
/// check (or one of an unknown type), which the caller runs where the task runs.
pub async fn probe_network(check: &HealthCheck, host: &str, client: &reqwest::Client) -> Option<bool> {
    let timeout = Policy::of(check).timeout;
    let attempt = async {
        match check.r#type() {
            health_check::Type::Http => {
                let Some(http) = &check.http else { return Some(false) };
                let scheme = http.scheme.as_deref().unwrap_or("http");
                let path = http.path.as_deref().unwrap_or("/");
                let slash = if path.starts_with('/') { "" } else { "/" };
                let url = format!("{scheme}://{host}:{}{slash}{path}", http.port);
                Some(match client.get(url).send().await {
                    Ok(r) => http_healthy(&http.statuses, r.status().as_u16()),
                    Err(_) => false,
                })
            }
            health_check::Type::Tcp => {
                let Some(tcp) = &check.tcp else { return Some(false) };
                let Ok(port) = u16::try_from(tcp.port) else { return Some(false) };
                Some(tokio::net::TcpStream::connect((host, port)).await.is_ok())
            }
            _ => None,
        }
    };
    match check.r#type() {
        health_check::Type::Http | health_check::Type::Tcp => tokio::time::timeout(timeout, attempt).await.unwrap_or(Some(false)),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    fn policy(grace: u64, max_failures: u32) -> Policy {
        Policy {
            delay: Duration::ZERO,
            interval: Duration::ZERO,
            timeout: Duration::from_secs(1),
            grace: Duration::from_secs(grace),
            max_failures,
        }
    }

    #[test]
    fn mesos_defaults() {
        let p = Policy::of(&HealthCheck::default());
        assert_eq!(
            (p.delay, p.interval, p.timeout, p.grace, p.max_failures),
            (Duration::from_secs(15), Duration::from_secs(10), Duration::from_secs(20), Duration::from_secs(10), 3)
        );
        let odd = HealthCheck { interval_seconds: Some(-1.0), timeout_seconds: Some(f64::NAN), ..HealthCheck::default() };
        assert_eq!((Policy::of(&odd).interval, Policy::of(&odd).timeout), (Duration::from_secs(10), Duration::from_secs(20)));
    }

    #[test]
    fn grace_flips_and_kills() {
        let mut t = Tracker::new(policy(5, 2));
        assert_eq!(t.record(false, Duration::from_secs(1)), Verdict::Unchanged, "inside the grace period");
        assert_eq!(t.record(true, Duration::from_secs(2)), Verdict::Changed(true));
        assert_eq!(t.record(true, Duration::from_secs(3)), Verdict::Unchanged);
        assert_eq!(t.record(false, Duration::from_secs(4)), Verdict::Changed(false), "grace ends with the first success");
        assert_eq!(t.record(false, Duration::from_secs(5)), Verdict::Kill);
        let mut never = Tracker::new(policy(0, 0));
        for i in 0..10 {
            assert_ne!(never.record(false, Duration::from_secs(i)), Verdict::Kill, "0 failures: never killed");
        }
    }

    #[test]
    fn statuses_decide_http_health() {
        assert!(http_healthy(&[], 302));
        assert!(!http_healthy(&[], 500));
        assert!(http_healthy(&[500, 503], 503));
        assert!(!http_healthy(&[200], 204));
    }

    /// One HTTP server on loopback that answers every request with `code`.
    async fn server(code: u16) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(format!("HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").as_bytes()).await;
            }
        });
        port
    }

    #[tokio::test]
    async fn probes_answer_as_mesos_would() {
        let client = reqwest::Client::new();
        let port = u32::from(server(500).await);
        let http = |statuses: Vec<u32>, path: &str| HealthCheck {
            r#type: Some(health_check::Type::Http as i32),
            http: Some(health_check::HttpCheckInfo { port, path: Some(path.into()), statuses, ..Default::default() }),
            ..HealthCheck::default()
        };
        assert_eq!(probe_network(&http(vec![], "/health"), "127.0.0.1", &client).await, Some(false));
        assert_eq!(probe_network(&http(vec![500], "health"), "127.0.0.1", &client).await, Some(true), "statuses are honoured");
        let tcp = |port: u32| HealthCheck {
            r#type: Some(health_check::Type::Tcp as i32),
            tcp: Some(health_check::TcpCheckInfo { port, ..Default::default() }),
            ..HealthCheck::default()
        };
        assert_eq!(probe_network(&tcp(port), "127.0.0.1", &client).await, Some(true));
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
        assert_eq!(probe_network(&tcp(u32::from(closed)), "127.0.0.1", &client).await, Some(false));
        let command = HealthCheck { r#type: Some(health_check::Type::Command as i32), ..HealthCheck::default() };
        assert_eq!(probe_network(&command, "127.0.0.1", &client).await, None);
    }
}
