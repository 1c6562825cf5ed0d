//! Failover time: `kill -9` of the leading `framework` → a write accepted through another
//! instance. Baselines measured in the same run: one ZooKeeper write (create + delete) and the
//! configured session timeout (the floor for noticing a crashed leader).
//!
//! Run: `cargo build --release -p framework && cargo bench -p integration-tests --bench failover`
//! (needs ZooKeeper installed, as
//! `scripts/test-all` does). Under `cargo test` it only says how to run it.

use std::time::{Duration, Instant};

use integration_tests::framework::Framework;
use integration_tests::zk::ZkServer;
use integration_tests::{cluster, work_dir};
use reqwest::Method;
use serde_json::json;

const ROUNDS: usize = 10;
const SESSION_MS: u64 = 2000;

fn stats(mut v: Vec<Duration>) -> (Duration, Duration, Duration) {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.95), v[v.len() - 1])
}

async fn leader(fws: &[Framework]) -> usize {
    loop {
        for (i, fw) in fws.iter().enumerate() {
            if fw.pid().is_none() {
                continue;
            }
            if let Ok(r) = fw.get("/v2/leader").await
                && r.status == 200 && r.json["leader"] == fw.advertised().as_str() {
                    return i;
                }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        println!("failover benchmark: run it with `cargo bench -p integration-tests --bench failover`");
        return Ok(());
    }
    let zk = ZkServer::start("bench-failover").await?;

    // Baseline: a ZooKeeper write round trip.
    let client = zookeeper_client::Client::connect(&zk.hosts()).await?;
    let opts = zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all());
    let mut writes = Vec::new();
    for i in 0..200 {
        let t = Instant::now();
        client.create(&format!("/bench-{i}"), b"x", &opts).await?;
        client.delete(&format!("/bench-{i}"), None).await?;
        writes.push(t.elapsed());
    }
    let (w50, w95, _) = stats(writes);

    let cl = cluster("bench-failover", 1, |_| {}).await;
    let session = SESSION_MS.to_string();
    let mut fws = Vec::new();
    for i in 0..3 {
        let flags = ["--zk", &zk.url("/framework"), "--zk-session-timeout", session.as_str()];
        fws.push(Framework::start(&cl.url(), &work_dir(&format!("bench-failover-{i}")), &flags).await?);
    }
    let l = leader(&fws).await;
    let app = json!({"id": "/bench", "cmd": "sleep 1000", "cpus": 0.01, "mem": 8, "instances": 1});
    fws[l].request(Method::POST, "/v2/apps", Some(&app)).await?;
    let mut failovers = Vec::new();
    for round in 0..ROUNDS {
        let l = leader(&fws).await;
        let other = (l + 1) % 3;
        let t = Instant::now();
        fws[l].crash().await;
        loop {
            let body = json!({"instances": 1 + (round % 2)});
            let r = fws[other].request(Method::PUT, "/v2/apps/bench?force=true", Some(&body)).await?;
            if r.status == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        failovers.push(t.elapsed());
        fws[l].restart().await?;
    }
    let (f50, f95, fmax) = stats(failovers);
    println!("| measurement | median | p95 | max |");
    println!("|---|---|---|---|");
    println!("| baseline: ZooKeeper create+delete | {w50:.2?} | {w95:.2?} | |");
    println!("| baseline: ZooKeeper session timeout (configured) | {SESSION_MS} ms | | |");
    println!("| failover: kill -9 leader → write accepted ({ROUNDS} rounds) | {f50:.2?} | {f95:.2?} | {fmax:.2?} |");
    cl.shutdown().await;
    Ok(())
}
