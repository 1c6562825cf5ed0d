//! Failover time: `kill -9` of the leading `framework` → a write accepted through another
//! instance. Baselines measured in the same run: one ZooKeeper write (create + delete) and the
//! configured session timeout (the floor for noticing a crashed leader).
//!
//! Rounds: `FAILOVER_ROUNDS` (default 20); each reports min/median/p95/max.
//!
//! Run: `cargo build --release -p framework && cargo bench -p integration-tests --bench failover`
//! (needs ZooKeeper installed, as
//! `scripts/test-all` does). Under `cargo test` it only says how to run it.

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use integration_tests::framework::Framework;
use integration_tests::zk::ZkServer;
use integration_tests::{cluster, work_dir};
use reqwest::Method;
use serde_json::json;

const SESSION_MS: u64 = 2000;

/// min, median, p95, max.
fn stats(v: &[Duration]) -> (Duration, Duration, Duration, Duration) {
    (common::pct(v, 0.0), common::pct(v, 0.5), common::pct(v, 0.95), common::pct(v, 1.0))
}

async fn leader(fws: &[Framework]) -> usize {
    loop {
        for (i, fw) in fws.iter().enumerate() {
            if fw.pid().is_none() {
                continue;
            }
            if let Ok(r) = fw.get("/v2/leader").await
                && r.status == 200
                && r.json["leader"] == fw.advertised().as_str()
            {
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
    let rounds = common::env_or("FAILOVER_ROUNDS", 20).max(1);
    let load = common::load_average();
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
    let (wmin, w50, w95, wmax) = stats(&writes);

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
    for round in 0..rounds {
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
    let (fmin, f50, f95, fmax) = stats(&failovers);
    println!("\nfailover: {rounds} rounds, 3 instances, ZooKeeper on loopback; load average at start {load}");
    println!("| measurement | min | median | p95 | max |");
    println!("|---|---|---|---|---|");
    println!("| baseline: ZooKeeper create+delete | {wmin:.2?} | {w50:.2?} | {w95:.2?} | {wmax:.2?} |");
    println!("| baseline: ZooKeeper session timeout (configured) | | {SESSION_MS} ms | | |");
    println!("| failover: kill -9 leader → write accepted ({rounds} rounds) | {fmin:.2?} | {f50:.2?} | {f95:.2?} | {fmax:.2?} |");
    println!("| ratio failover / session timeout (median) | | {:.2} | | |", f50.as_secs_f64() * 1000.0 / SESSION_MS as f64);
    cl.shutdown().await;
    Ok(())
}
