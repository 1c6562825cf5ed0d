//! End to end with real processes: one app of `PROC_TASKS` (default 1,000) `sleep 600` command
//! tasks from `POST /v2/apps` until the framework counts all of them TASK_RUNNING, on
//! `PROC_AGENTS` (default 4) real agents of the local cluster; beside the baseline of spawning
//! the same processes directly from this process in the same run.
//!
//! What "started" means, the same on both sides: the agent's runner reports TASK_RUNNING right
//! after `tokio::process::Command::spawn` returned, and `spawn` returns only once the child has
//! exec'd (the standard library waits on a close-on-exec pipe for the exec to succeed or fail).
//! The baseline does exactly the runner's per-task work, concurrently as the agent does: create a
//! sandbox directory and its stdout/stderr files, then spawn `/bin/sh -c "sleep 600"` in its own
//! process group with the same redirections. It leaves out everything between POST and the
//! spawn (the API, deployment planning, the offer cycle, ACCEPT, the master, the agent) and the
//! way back of the RUNNING update (agent, master, scheduler, acknowledgement).
//!
//! Everything is cleaned up afterwards: the app is deleted and its tasks are waited out, the
//! direct children are killed (SIGKILL to their process groups) and reaped.
//!
//! Run: `cargo build --release -p framework && cargo bench -p integration-tests --bench processes`

#[path = "common/mod.rs"]
mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use common::{env_or, load_average, metric};
use integration_tests::framework::Framework;
use integration_tests::{cluster, work_dir};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use reqwest::Method;
use serde_json::json;
use tokio::process::{Child, Command};
use tokio::task::JoinSet;

async fn spawn_like_the_runner(sandbox: std::path::PathBuf) -> anyhow::Result<Child> {
    tokio::fs::create_dir_all(&sandbox).await?;
    let stdout = std::fs::File::create(sandbox.join("stdout"))?;
    let stderr = std::fs::File::create(sandbox.join("stderr"))?;
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg("sleep 600")
        .current_dir(&sandbox)
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .process_group(0)
        .kill_on_drop(true)
        .spawn()?;
    Ok(child)
}

/// Spawns `n` processes concurrently; returns the time until every spawn returned, and them.
async fn direct(n: usize) -> anyhow::Result<(Duration, Vec<Child>)> {
    let root = work_dir("bench-processes-direct");
    let t = Instant::now();
    let mut set = JoinSet::new();
    for i in 0..n {
        set.spawn(spawn_like_the_runner(root.join(format!("p{i}"))));
    }
    let mut children = Vec::with_capacity(n);
    while let Some(r) = set.join_next().await {
        children.push(r??);
    }
    Ok((t.elapsed(), children))
}

async fn kill_all(children: Vec<Child>) -> anyhow::Result<()> {
    for c in &children {
        if let Some(pid) = c.id().and_then(|p| i32::try_from(p).ok()) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    for mut c in children {
        c.wait().await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        println!("processes benchmark: run it with `cargo bench -p integration-tests --bench processes`");
        return Ok(());
    }
    let n = env_or("PROC_TASKS", 1000);
    let agents = env_or("PROC_AGENTS", 4).max(1);
    let rounds = env_or("PROC_ROUNDS", 3).max(1);
    let load = load_average();
    let c = cluster("bench-processes", agents, |cfg| {
        for a in &mut cfg.agents {
            a.resources = mesos_local::Resources::new(&[("cpus", 1000.0), ("mem", 1_000_000.0), ("disk", 100_000.0)], &[]);
        }
    })
    .await;
    let fw = Framework::start(&c.url(), &work_dir("bench-processes"), &[]).await?;
    let mut framework_runs = Vec::new();
    let mut direct_runs = Vec::new();
    for round in 0..rounds {
        // Baseline first, cleaned up before the framework's run, so both start from the same
        // number of processes on the machine.
        let (took, children) = direct(n).await?;
        direct_runs.push(took);
        kill_all(children).await?;

        let id = format!("/procs-{round}");
        let app = json!({"id": id, "cmd": "sleep 600", "cpus": 0.01, "mem": 1, "instances": n, "portDefinitions": []});
        let t = Instant::now();
        let r = fw.request(Method::POST, "/v2/apps", Some(&app)).await?;
        anyhow::ensure!(r.status == 201, "POST /v2/apps answered {}: {}", r.status, r.text);
        loop {
            let m = fw.get("/metrics/prometheus").await?;
            if metric(&m.text, "marathon_instances_running_gauge").unwrap_or(0.0) as usize >= n {
                break;
            }
            anyhow::ensure!(t.elapsed() < Duration::from_secs(600), "tasks did not all run within 10 minutes");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        framework_runs.push(t.elapsed());
        eprintln!("round {round}: direct {:.2?}, framework {:.2?}", direct_runs[round], framework_runs[round]);

        let r = fw.request(Method::DELETE, &format!("/v2/apps{id}?force=true"), None).await?;
        anyhow::ensure!(r.status == 200, "DELETE answered {}: {}", r.status, r.text);
        fw.wait_until("/v2/tasks", Duration::from_secs(120), "no tasks left", |j| j["tasks"].as_array().is_some_and(Vec::is_empty)).await?;
        // The master frees a task's resources on its terminal update; let the processes go too.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !integration_tests::alive_on_master(&c).await?.is_empty() {
            anyhow::ensure!(Instant::now() < deadline, "tasks still alive on the master");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (fmin, fmax) = (framework_runs.iter().min().copied().context("runs")?, framework_runs.iter().max().copied().context("runs")?);
    let (dmin, dmax) = (direct_runs.iter().min().copied().context("runs")?, direct_runs.iter().max().copied().context("runs")?);
    let (f50, d50) = (median(&mut framework_runs), median(&mut direct_runs));
    println!("\nprocesses: {n} `sleep 600` tasks, {agents} agents, {rounds} rounds; load average at start {load}");
    println!("| measurement | min | median | max |");
    println!("|---|---|---|---|");
    println!("| baseline: spawn {n} processes directly (same per-task work as the agent's runner) | {dmin:.2?} | {d50:.2?} | {dmax:.2?} |");
    println!("| POST /v2/apps → {n} tasks TASK_RUNNING | {fmin:.2?} | {f50:.2?} | {fmax:.2?} |");
    println!("| ratio (median) | | {:.2} | |", f50.as_secs_f64() / d50.as_secs_f64());
    drop(fw);
    c.shutdown().await;
    Ok(())
}
