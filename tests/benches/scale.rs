//! Launch throughput and API latency at scale on the local cluster's simulated agents (tasks
//! start without processes): one app of N instances from POST to all TASK_RUNNING, then
//! GET /v2/apps/{id} and GET /v2/apps latencies, and the `framework` process's RSS. (It has no
//! same-run baseline yet; see BENCHMARKS.md.)
//!
//! Run: `cargo build --release -p framework && cargo bench -p integration-tests --bench scale`

use std::time::{Duration, Instant};

use integration_tests::framework::Framework;
use integration_tests::work_dir;
use reqwest::Method;
use serde_json::json;

const AGENTS: usize = 50;
const TASKS: u32 = 5000;

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn pct(mut v: Vec<Duration>, q: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * q).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        println!("scale benchmark: run it with `cargo bench -p integration-tests --bench scale`");
        return Ok(());
    }
    let c = integration_tests::cluster("bench-scale", AGENTS, |cfg| {
        cfg.simulated = true;
        for a in &mut cfg.agents {
            a.resources =
                mesos_local::Resources::new(&[("cpus", 200.0), ("mem", 100_000.0), ("disk", 100_000.0)], &[("ports", &[(20000, 30000)])]);
        }
    })
    .await;
    let fw = Framework::start(&c.url(), &work_dir("bench-scale"), &[]).await?;
    let app = json!({"id": "/scale", "cmd": "sleep 1000", "cpus": 0.01, "mem": 1, "instances": TASKS, "portDefinitions": []});
    let t = Instant::now();
    fw.request(Method::POST, "/v2/apps", Some(&app)).await?;
    loop {
        let r = fw.get("/v2/apps?embed=apps.counts").await?;
        if r.json["apps"][0]["tasksRunning"] == TASKS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let launch = t.elapsed();
    let mut one = Vec::new();
    let mut all = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        fw.get("/v2/apps/scale").await?;
        one.push(t.elapsed());
        let t = Instant::now();
        fw.get("/v2/apps").await?;
        all.push(t.elapsed());
    }
    let rss = fw.pid().map(rss_mib).unwrap_or(0.0);
    println!("| measurement ({AGENTS} simulated agents, {TASKS} tasks) | value |");
    println!("|---|---|");
    println!("| POST → all TASK_RUNNING | {launch:.2?} ({:.0} tasks/s) |", f64::from(TASKS) / launch.as_secs_f64());
    println!("| GET /v2/apps/scale (all {TASKS} tasks embedded) p50 / p99 | {:.2?} / {:.2?} |", pct(one.clone(), 0.5), pct(one, 0.99));
    println!("| GET /v2/apps p50 / p99 | {:.2?} / {:.2?} |", pct(all.clone(), 0.5), pct(all, 0.99));
    println!("| framework RSS | {rss:.0} MiB |");
    c.shutdown().await;
    Ok(())
}
