//! The Docker daemon restarting under running Docker tasks (its own test binary: it stops the
//! daemon every other Docker test uses, and test binaries run one at a time). Without
//! live-restore the daemon stops its containers; the tasks end, are replaced once the daemon is
//! back, and no container or task is left over or duplicated.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;
use integration_tests::docker::{containers, ready};
use integration_tests::framework::Framework;
use integration_tests::{alive_on_master, cluster, task_ids, work_dir};
use reqwest::Method;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(120);

fn daemon_answers() -> bool {
    Command::new("docker").arg("info").output().is_ok_and(|o| o.status.success())
}

/// Stops dockerd (SIGTERM, as `systemctl stop docker` does) and waits until it is gone.
async fn stop_daemon() -> anyhow::Result<()> {
    let out = Command::new("pidof").arg("dockerd").output().context("pidof dockerd")?;
    let pids: Vec<i32> = String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|p| p.parse().ok()).collect();
    anyhow::ensure!(!pids.is_empty(), "no dockerd process to restart");
    for pid in &pids {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), nix::sys::signal::Signal::SIGTERM)?;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while pids.iter().any(|p| std::path::Path::new(&format!("/proc/{p}")).exists()) {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "dockerd did not stop within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::ensure!(!daemon_answers(), "the daemon still answers");
    Ok(())
}

#[tokio::test]
async fn docker_tasks_are_replaced_after_a_daemon_restart_without_leftovers() -> anyhow::Result<()> {
    ready("nginx")?;
    let c = cluster("docker-daemon", 1, |_| {}).await;
    let fw = Framework::start(&c.url(), &work_dir("docker-daemon"), &[]).await?;
    let app = json!({
        "id": "/dd", "cmd": "exec nginx -g 'daemon off;'", "cpus": 0.1, "mem": 64, "instances": 2,
        "container": {"type": "DOCKER", "docker": {"image": "framework/nginx:latest"}, "portMappings": [{"containerPort": 80, "hostPort": 0}]},
        "networks": [{"mode": "container/bridge"}],
        "healthChecks": [{"protocol": "HTTP", "path": "/", "portIndex": 0, "gracePeriodSeconds": 20, "intervalSeconds": 1, "timeoutSeconds": 2, "maxConsecutiveFailures": 3}],
        "backoffSeconds": 1, "backoffFactor": 1.5, "maxLaunchDelaySeconds": 5
    });
    assert_eq!(fw.request(Method::POST, "/v2/apps", Some(&app)).await?.status, 201);
    let j = fw.wait_until("/v2/apps/dd", WAIT, "2 healthy", |j| j["app"]["tasksHealthy"] == 2).await?;
    let before = task_ids(&j);

    stop_daemon().await?;
    // Launches fail while it is down (the executor cannot reach it): give the scheduler a few
    // seconds of that before the daemon comes back.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let up = tokio::process::Command::new(
        integration_tests::framework::binary()
            .parent()
            .and_then(|p| p.parent())
            .and_then(|p| p.parent())
            .context("repo root")?
            .join("scripts/docker-up"),
    )
    .status()
    .await?;
    anyhow::ensure!(up.success(), "scripts/docker-up could not start the daemon again");

    let j = fw
        .wait_until("/v2/apps/dd", WAIT, "2 healthy replacements", |j| {
            j["app"]["tasksHealthy"] == 2 && j["app"]["tasks"].as_array().map(Vec::len) == Some(2) && task_ids(j).is_disjoint(&before)
        })
        .await?;
    let after = task_ids(&j);
    // Exactly those two on the master, and exactly their two containers on the daemon.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let alive = alive_on_master(&c).await?;
        let running: BTreeSet<String> = containers("dd.instance-")?.into_iter().collect();
        if alive == after && running == after {
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "master runs {alive:?}, Docker has {running:?}, expected {after:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(fw.request(Method::DELETE, "/v2/apps/dd", None).await?.status, 200);
    fw.wait_until("/v2/tasks", WAIT, "no tasks", |j| j["tasks"].as_array().is_some_and(Vec::is_empty)).await?;
    c.shutdown().await;
    Ok(())
}
