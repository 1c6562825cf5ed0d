//! High availability against a real ZooKeeper: election, proxying, abdication, repeated leader
//! crashes, a ZooKeeper outage, a frozen (partitioned) leader, and Mesos master detection.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Context as _;
use integration_tests::framework::Framework;
use integration_tests::zk::ZkServer;
use integration_tests::{cluster, mesos, task_ids, work_dir};
use reqwest::Method;
use serde_json::{Value as Json, json};

const WAIT: Duration = Duration::from_secs(60);
/// Short sessions so that failover is quick.
const SESSION_MS: &str = "2000";

async fn start_ha(name: &str, n: usize, master: &str, zk: &ZkServer) -> anyhow::Result<Vec<Framework>> {
    let mut out = Vec::new();
    for i in 0..n {
        let dir = work_dir(&format!("{name}-{i}"));
        out.push(Framework::start(master, &dir, &["--zk", &zk.url("/framework"), "--zk-session-timeout", SESSION_MS]).await?);
    }
    Ok(out)
}

/// The index of the leader, once every running instance agrees on it.
async fn leader(fws: &[Framework]) -> anyhow::Result<usize> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut named = BTreeSet::new();
        let mut all = true;
        for fw in fws.iter().filter(|f| f.pid().is_some()) {
            match fw.get("/v2/leader").await {
                Ok(r) if r.status == 200 => {
                    named.insert(r.json["leader"].as_str().unwrap_or_default().to_string());
                }
                _ => all = false,
            }
        }
        if all && named.len() == 1 {
            let name = named.into_iter().next().unwrap_or_default();
            if let Some(i) = fws.iter().position(|f| f.advertised() == name && f.pid().is_some()) {
                return Ok(i);
            }
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "no agreed leader within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Retries a write until the (possibly changing) leader accepts it.
async fn write(fw: &Framework, method: Method, path: &str, body: &Json) -> anyhow::Result<Json> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = fw.request(method.clone(), path, Some(body)).await?;
        if r.status == 200 || r.status == 201 {
            return Ok(r.json);
        }
        anyhow::ensure!(r.status == 503 || r.status == 502, "{method} {path} answered {}: {}", r.status, r.text);
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "{method} {path} never accepted: {}", r.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `app` runs exactly `n` tasks with no deployment (reads retried across failovers).
async fn settled(fw: &Framework, app: &str, n: usize) -> anyhow::Result<BTreeSet<String>> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = fw.get(&format!("/v2/apps/{app}")).await?;
        if r.status == 200 {
            let running = r.json["app"]["tasks"].as_array().map(|t| t.iter().filter(|t| t["state"] == "TASK_RUNNING").count()).unwrap_or(0);
            if running == n && task_ids(&r.json).len() == n && r.json["app"]["deployments"].as_array().is_some_and(Vec::is_empty) {
                return Ok(task_ids(&r.json));
            }
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "{app} did not settle at {n} tasks: {} {}", r.status, r.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn app(id: &str, instances: u32) -> Json {
    json!({"id": id, "cmd": "sleep 1000", "cpus": 0.01, "mem": 8, "instances": instances})
}

#[tokio::test]
async fn followers_proxy_and_the_leader_abdicates_on_request() -> anyhow::Result<()> {
    let zk = ZkServer::start("election").await?;
    let cluster = mesos("election", 1).await;
    let fws = start_ha("election", 3, &cluster.url(), &zk).await?;
    let l = leader(&fws).await?;
    let f = (l + 1) % 3;
    let r = fws[f].request(Method::POST, "/v2/apps", Some(&app("/web", 2))).await?;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.header("X-Marathon-Via").is_some_and(|v| v.contains(&fws[f].advertised())), "proxied answers say so");
    assert_eq!(r.header("X-Marathon-Leader"), Some(format!("http://{}", fws[l].advertised()).as_str()));
    let before = settled(&fws[f], "web", 2).await?;

    // Events are not proxied but redirected to the leader.
    let no_redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let r = no_redirect
        .get(format!("{}/v2/events?event_type=deployment_success", fws[f].url))
        .header("Accept", "text/event-stream")
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 302);
    assert_eq!(
        r.headers().get("Location").and_then(|v| v.to_str().ok()),
        Some(format!("http://{}/v2/events?event_type=deployment_success", fws[l].advertised()).as_str())
    );

    // Abdication hands over to another instance without touching tasks.
    let r = fws[l].request(Method::DELETE, "/v2/leader", None).await?;
    assert_eq!((r.status, r.json["message"].as_str()), (200, Some("Leadership abdicated")));
    let deadline = tokio::time::Instant::now() + WAIT;
    let new = loop {
        let n = leader(&fws).await?;
        if n != l {
            break n;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "leadership did not move");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(settled(&fws[new], "web", 2).await?, before);
    assert_eq!(cluster.alive().await?, before);
    write(&fws[l], Method::PUT, "/v2/apps/web", &json!({"instances": 3})).await?;
    settled(&fws[l], "web", 3).await?;
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn repeated_leader_crashes_lose_and_duplicate_nothing() -> anyhow::Result<()> {
    let zk = ZkServer::start("crashes").await?;
    let cluster = mesos("crashes", 2).await;
    let mut fws = start_ha("crashes", 3, &cluster.url(), &zk).await?;
    let l = leader(&fws).await?;
    write(&fws[l], Method::POST, "/v2/apps", &app("/stable", 2)).await?;
    write(&fws[l], Method::POST, "/v2/apps", &app("/churn", 1)).await?;
    let stable = settled(&fws[l], "stable", 2).await?;
    let mut desired = 1;
    for round in 0..20 {
        let l = leader(&fws).await?;
        let other = (l + 1) % 3;
        desired = (round % 4) + 1;
        write(&fws[other], Method::PUT, "/v2/apps/churn?force=true", &json!({"instances": desired})).await?;
        if round % 5 == 4 {
            // Now and then let a deployment finish before the crash, and check the other app.
            settled(&fws[other], "churn", desired as usize).await?;
            assert_eq!(settled(&fws[other], "stable", 2).await?, stable, "a stable app's tasks were touched in round {round}");
        }
        fws[l].crash().await;
        fws[l].restart().await?;
    }
    let l = leader(&fws).await?;
    let churn = settled(&fws[l], "churn", desired as usize).await?;
    assert_eq!(settled(&fws[l], "stable", 2).await?, stable, "the stable app's tasks survived every failover");
    let alive = cluster.alive().await?;
    let ours: BTreeSet<String> = churn.union(&stable).cloned().collect();
    assert_eq!(alive, ours, "the master runs exactly the tasks the framework knows");
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn zookeeper_outage_abdicates_without_killing_and_recovers() -> anyhow::Result<()> {
    let mut zk = ZkServer::start("outage").await?;
    let cluster = mesos("outage", 1).await;
    let fws = start_ha("outage", 2, &cluster.url(), &zk).await?;
    let l = leader(&fws).await?;
    write(&fws[l], Method::POST, "/v2/apps", &app("/keep", 2)).await?;
    let tasks = settled(&fws[l], "keep", 2).await?;

    zk.stop().await;
    for fw in &fws {
        let r = fw
            .wait_until_status("/v2/apps", 503, WAIT)
            .await
            .with_context(|| format!("{} kept serving without ZooKeeper", fw.advertised()))?;
        assert!(r.json["message"].as_str().is_some_and(|m| m.contains("no leader")), "{}", r.text);
    }
    // Without a leader nothing acts on the tasks.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(cluster.alive().await?, tasks, "tasks were killed during the outage");

    zk.restart().await?;
    let l = leader(&fws).await?;
    assert_eq!(settled(&fws[l], "keep", 2).await?, tasks);
    write(&fws[l], Method::PUT, "/v2/apps/keep", &json!({"instances": 3})).await?;
    let after = settled(&fws[l], "keep", 3).await?;
    assert!(tasks.is_subset(&after));
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_frozen_old_leader_cannot_change_state() -> anyhow::Result<()> {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let zk = ZkServer::start("frozen").await?;
    let cluster = mesos("frozen", 1).await;
    let fws = start_ha("frozen", 2, &cluster.url(), &zk).await?;
    let old = leader(&fws).await?;
    let new = 1 - old;
    write(&fws[old], Method::POST, "/v2/apps", &app("/a", 1)).await?;
    settled(&fws[old], "a", 1).await?;
    let pid = Pid::from_raw(i32::try_from(fws[old].pid().context("pid")?)?);

    // Freeze the leader (as a partition would): its session expires, the other takes over.
    kill(pid, Signal::SIGSTOP)?;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = fws[new].get("/v2/leader").await?;
        if r.status == 200 && r.json["leader"] == fws[new].advertised().as_str() {
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "no new leader while the old one is frozen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    write(&fws[new], Method::PUT, "/v2/apps/a", &json!({"instances": 3})).await?;
    let tasks = settled(&fws[new], "a", 3).await?;

    // Thaw it: it must find itself deposed and change nothing.
    kill(pid, Signal::SIGCONT)?;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = fws[old].get("/v2/leader").await?;
        if r.status == 200 && r.json["leader"] == fws[new].advertised().as_str() {
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the thawed instance does not follow the new leader");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let r = fws[new].get("/v2/apps/a").await?;
    assert_eq!(r.json["app"]["instances"], 3);
    assert_eq!(task_ids(&r.json), tasks);
    assert_eq!(cluster.alive().await?, tasks);
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn mesos_master_is_found_through_zookeeper_and_followed_on_handover() -> anyhow::Result<()> {
    let zk = ZkServer::start("detect").await?;
    let first = cluster("detect-1", 1, |_| {}).await;
    let second = cluster("detect-2", 1, |_| {}).await;
    let reg1 = first.register_in_zookeeper(&zk.hosts(), "/mesos").await?;
    let _reg2 = second.register_in_zookeeper(&zk.hosts(), "/mesos").await?;
    let fw = Framework::start(&zk.url("/mesos"), &work_dir("detect"), &[]).await?;
    assert_eq!(fw.request(Method::POST, "/v2/apps", Some(&app("/d", 1))).await?.status, 201);
    settled(&fw, "d", 1).await?;
    let on = fw.get("/v2/apps/d").await?.json["app"]["tasks"][0]["slaveId"].as_str().unwrap_or_default().to_string();
    assert!(first.agent_ids().contains(&on), "the lowest registration leads");

    // The leading master goes away; the next one in ZooKeeper takes over.
    drop(reg1);
    first.shutdown().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let j = fw.get("/v2/apps/d").await?.json;
        let agents: Vec<String> = j["app"]["tasks"]
            .as_array()
            .map(|t| t.iter().filter(|t| t["state"] == "TASK_RUNNING").filter_map(|t| t["slaveId"].as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        if agents.len() == 1 && second.agent_ids().contains(&agents[0]) {
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the app did not move to the new master: {j}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        fw.get("/v2/info").await?.json["marathon_config"]["mesos_leader_ui_url"],
        format!("{}/", second.url()).replace("127.0.0.1", "localhost")
    );
    second.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn zookeeper_digest_auth_keeps_the_state_to_its_owner() -> anyhow::Result<()> {
    let zk = ZkServer::start("digest").await?;
    let cluster = mesos("digest", 1).await;
    let url = format!("zk://marathon:s3cret@{}/secure", zk.hosts());
    let fw = Framework::start(&cluster.url(), &work_dir("digest"), &["--zk", &url, "--zk-session-timeout", SESSION_MS]).await?;
    fw.wait_until_status("/v2/leader", 200, WAIT).await?;
    let app = json!({"id": "/d", "cmd": "sleep 1000", "cpus": 0.05, "mem": 16, "instances": 1});
    assert_eq!(fw.request(Method::POST, "/v2/apps", Some(&app)).await?.status, 201);

    // Another client without the credentials cannot read or change the state; with them it can.
    let stranger = zookeeper_client::Client::connect(&zk.hosts()).await?;
    assert!(matches!(stranger.get_children("/secure/state/v1").await, Err(zookeeper_client::Error::NoAuth)));
    assert!(matches!(stranger.delete("/secure/state/v1", None).await, Err(zookeeper_client::Error::NoAuth)));
    let owner = zookeeper_client::Client::connector().with_auth("digest", b"marathon:s3cret").connect(&zk.hosts()).await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (children, _) = owner.get_children("/secure/state/v1").await?;
        if children.iter().any(|c| c.contains("d")) {
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the app's record never appeared: {children:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cluster.shutdown().await;
    Ok(())
}
