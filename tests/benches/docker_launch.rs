//! Docker task launch: `POST /v2/apps` of a one-instance nginx app → its task TASK_RUNNING (through
//! the offer cycle, the local agent, `framework-executor` and the Docker Engine API), against the
//! baseline of a plain `docker run -d` of the same image and command in the same run.
//!
//! Run: `cargo build --release -p framework -p framework-executor && cargo bench -p integration-tests --bench docker_launch`
//! (needs Docker and the images, as `scripts/test-all` sets up). Under `cargo test` it only says
//! how to run it.

use std::process::Command;
use std::time::{Duration, Instant};

use integration_tests::framework::Framework;
use integration_tests::{cluster, work_dir};
use reqwest::Method;
use serde_json::json;

const ROUNDS: usize = 8;

fn median(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[v.len() - 1])
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        println!("docker launch benchmark: run it with `cargo bench -p integration-tests --bench docker_launch`");
        return Ok(());
    }
    integration_tests::docker::ready("nginx")?;
    let mut baseline = Vec::new();
    for i in 0..ROUNDS {
        let name = format!("bench-docker-run-{i}");
        let t = Instant::now();
        let ok = Command::new("docker")
            .args(["run", "-d", "--name", &name, "-p", "0:80", "framework/nginx:latest", "/bin/sh", "-c", "exec nginx -g 'daemon off;'"])
            .output()?
            .status
            .success();
        baseline.push(t.elapsed());
        anyhow::ensure!(ok, "docker run failed");
        Command::new("docker").args(["rm", "-f", &name]).output()?;
    }
    let c = cluster("bench-docker", 1, |_| {}).await;
    let fw = Framework::start(&c.url(), &work_dir("bench-docker"), &[]).await?;
    let mut ours = Vec::new();
    for i in 0..ROUNDS {
        let id = format!("/bench{i}");
        let app = json!({
            "id": id, "cmd": "exec nginx -g 'daemon off;'", "cpus": 0.1, "mem": 64,
            "container": {"type": "DOCKER", "docker": {"image": "framework/nginx:latest"}, "portMappings": [{"containerPort": 80, "hostPort": 0}]},
            "networks": [{"mode": "container/bridge"}]
        });
        let t = Instant::now();
        fw.request(Method::POST, "/v2/apps", Some(&app)).await?;
        loop {
            let r = fw.get(&format!("/v2/apps{id}")).await?;
            if r.json["app"]["tasksRunning"] == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        ours.push(t.elapsed());
        fw.request(Method::DELETE, &format!("/v2/apps{id}"), None).await?;
    }
    fw.wait_until("/v2/tasks", Duration::from_secs(60), "no tasks", |j| j["tasks"].as_array().is_some_and(Vec::is_empty)).await?;
    let (b50, bmax) = median(baseline);
    let (o50, omax) = median(ours);
    println!("| measurement ({ROUNDS} rounds) | median | max |");
    println!("|---|---|---|");
    println!("| baseline: `docker run -d` (returns when started) | {b50:.2?} | {bmax:.2?} |");
    println!("| POST /v2/apps → TASK_RUNNING (Docker, bridge) | {o50:.2?} | {omax:.2?} |");
    c.shutdown().await;
    Ok(())
}
