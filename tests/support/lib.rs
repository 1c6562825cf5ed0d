//! Helpers for the integration tests: a local cluster on loopback, and a raw scheduler API
//! client that speaks JSON or protobuf bytes over HTTP (deliberately not our scheduler's client).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use futures_util::StreamExt;
use mesos_local::{ClusterConfig, LocalCluster};
use mesos_proto::codec::{self, Encoding};
use mesos_proto::json;
use mesos_proto::stream::RecordStream;
use mesos_proto::v1::scheduler;
use serde_json::{Value as Json, json};
use tokio::sync::mpsc;

pub mod consul;
pub mod docker;
pub mod framework;
pub mod real_mesos;
pub mod registry;
pub mod tls;
pub mod zk;

/// How long a test waits for an expected event before failing.
pub const WAIT: Duration = Duration::from_secs(20);

/// The ids of the tasks in a `GET /v2/apps/{id}` answer.
pub fn task_ids(app: &Json) -> std::collections::BTreeSet<String> {
    app["app"]["tasks"].as_array().map(|t| t.iter().filter_map(|t| t["id"].as_str().map(str::to_string)).collect()).unwrap_or_default()
}

/// Polls `check` every 200 ms until it answers true; fails as soon as it fails, or after
/// `within` naming `what`.
pub async fn until<F: std::future::Future<Output = anyhow::Result<bool>>>(
    what: &str,
    within: Duration,
    mut check: impl FnMut() -> F,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await? {
            return Ok(());
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "timed out after {within:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A fresh sandbox root for one test.
pub fn work_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("framework-tests-{name}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Starts a local cluster of `agents` agents on a free loopback port, with short timers.
pub async fn cluster(name: &str, agents: usize, tune: impl FnOnce(&mut ClusterConfig)) -> LocalCluster {
    let mut config =
        ClusterConfig::uniform("127.0.0.1:0".parse().expect("addr"), agents, 2.0, 1024.0, 4096.0, free_port_range(), work_dir(name));
    config.heartbeat_interval = Duration::from_secs(1);
    config.allocation_interval = Duration::from_millis(100);
    config.update_retry = Duration::from_secs(2);
    tune(&mut config);
    LocalCluster::start(config).await.expect("local cluster starts")
}

/// The Mesos a scheduler-facing test runs against: our local cluster, or with
/// `FRAMEWORK_TEST_MESOS=real` the real Mesos 1.11 of `scripts/real-mesos` (issue 20).
pub enum TestMesos {
    /// Our local cluster, in the test process.
    Local(LocalCluster),
    /// A real Mesos master and agents.
    Real(real_mesos::RealMesos),
}

impl TestMesos {
    /// The master's URL.
    pub fn url(&self) -> String {
        match self {
            TestMesos::Local(c) => c.url(),
            TestMesos::Real(r) => r.url(),
        }
    }

    /// The master's `/master/state`.
    pub async fn state(&self) -> anyhow::Result<Json> {
        match self {
            TestMesos::Local(c) => c.state().await,
            TestMesos::Real(r) => Ok(serde_json::from_slice(&reqwest::get(format!("{}/master/state", r.url())).await?.bytes().await?)?),
        }
    }

    /// The hostname the master has for its first agent (the local cluster's agents are
    /// `localhost`, the real ones `127.0.0.1`).
    pub async fn agent_hostname(&self) -> anyhow::Result<String> {
        let state = self.state().await?;
        state["slaves"][0]["hostname"].as_str().map(str::to_owned).context("no agent in the master's state")
    }

    /// The ids of the tasks the master has as live (running, staging or starting).
    pub async fn alive(&self) -> anyhow::Result<std::collections::BTreeSet<String>> {
        Ok(alive_in(&self.state().await?))
    }

    /// Stops it.
    pub async fn shutdown(self) {
        match self {
            TestMesos::Local(c) => c.shutdown().await,
            TestMesos::Real(mut r) => r.stop().await,
        }
    }
}

/// Starts the Mesos the scheduler-facing tests use (see [`TestMesos`]): `agents` agents of 2
/// cpus, 1 GiB, 4 GiB of disk and 10 ports each.
pub async fn mesos(name: &str, agents: usize) -> TestMesos {
    mesos_with(name, agents, "mesos").await
}

/// [`mesos`] whose real agents also run the Docker containerizer (`docker,mesos`; it needs a
/// running Docker daemon); the local agents always do.
pub async fn mesos_with_docker(name: &str, agents: usize) -> TestMesos {
    mesos_with(name, agents, "docker,mesos").await
}

async fn mesos_with(name: &str, agents: usize, containerizers: &str) -> TestMesos {
    match std::env::var("FRAMEWORK_TEST_MESOS").as_deref() {
        Ok("real") => {
            let (lo, hi) = free_port_range();
            let resources = format!("cpus:2;mem:1024;disk:4096;ports:[{lo}-{hi}]");
            TestMesos::Real(
                real_mesos::RealMesos::start_with(name, agents, &resources, containerizers).await.expect("the real Mesos starts"),
            )
        }
        Ok("local") | Err(_) => TestMesos::Local(cluster(name, agents, |_| {}).await),
        Ok(other) => panic!("FRAMEWORK_TEST_MESOS={other}: use `local` (the default) or `real`"),
    }
}

/// A port range unlikely to collide between tests running in parallel.
fn free_port_range() -> (u64, u64) {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let slot = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % 40;
    let base = 20000 + (u64::from(std::process::id()) % 20) * 400 + slot * 10;
    (base, base + 9)
}

/// A raw scheduler API session: one SUBSCRIBE stream plus calls on other connections.
pub struct Session {
    /// Master base URL.
    pub url: String,
    /// The `Mesos-Stream-Id` of the subscription.
    pub stream_id: String,
    /// The framework id from SUBSCRIBED.
    pub framework_id: String,
    /// Encoding of calls and events.
    pub encoding: Encoding,
    events: mpsc::UnboundedReceiver<Json>,
    http: reqwest::Client,
    /// Ends the stream when dropped.
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Posts a call given as Mesos JSON, encoded as `encoding`, and returns status and body.
pub async fn post(
    http: &reqwest::Client,
    url: &str,
    call: &Json,
    encoding: Encoding,
    stream_id: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    let body = match encoding {
        Encoding::Json => serde_json::to_vec(call)?,
        // Protobuf bodies are built from the same JSON through the stout mapping.
        Encoding::Protobuf => codec::encode(&json::from_json::<scheduler::Call>(call)?, Encoding::Protobuf),
    };
    let mut req = http.post(format!("{url}/api/v1/scheduler")).header("Content-Type", encoding.content_type()).body(body);
    if let Some(id) = stream_id {
        req = req.header("Mesos-Stream-Id", id);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await.unwrap_or_default()))
}

/// A SUBSCRIBE call body for a framework.
pub fn subscribe_call(framework_id: Option<&str>, failover_timeout: f64, capabilities: &[&str]) -> Json {
    let mut info = json!({
        "user": "root",
        "name": "conformance",
        "failover_timeout": failover_timeout,
        "capabilities": capabilities.iter().map(|c| json!({"type": c})).collect::<Vec<_>>(),
    });
    let mut call = json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": info.clone()}});
    if let Some(id) = framework_id {
        info["id"] = json!({"value": id});
        call = json!({"type": "SUBSCRIBE", "framework_id": {"value": id}, "subscribe": {"framework_info": info}});
    }
    call
}

impl Session {
    /// Subscribes and waits for SUBSCRIBED (or fails with the ERROR message).
    pub async fn subscribe(url: &str, call: Json, encoding: Encoding) -> anyhow::Result<Self> {
        let (stream_id, mut events, reader) = open_stream(url, &call, encoding).await?;
        let first = tokio::time::timeout(WAIT, events.recv()).await.context("no first event")?.context("stream ended before any event")?;
        if first["type"] == "ERROR" {
            bail!("subscription refused: {}", first["error"]["message"]);
        }
        anyhow::ensure!(first["type"] == "SUBSCRIBED", "first event was {first}");
        let framework_id = first["subscribed"]["framework_id"]["value"].as_str().context("framework id")?.to_owned();
        Ok(Self { url: url.to_owned(), stream_id, framework_id, encoding, events, http: reqwest::Client::new(), reader })
    }

    /// Sends a call (framework id and stream id filled in); returns the HTTP status.
    pub async fn call(&self, mut call: Json) -> anyhow::Result<u16> {
        call["framework_id"] = json!({"value": self.framework_id});
        let (status, body) = post(&self.http, &self.url, &call, self.encoding, Some(&self.stream_id)).await?;
        if status != 202 {
            eprintln!("call {} answered {status}: {body}", call["type"]);
        }
        Ok(status)
    }

    /// The next event of any type, if one arrives within `within`.
    pub async fn next_any(&mut self, within: Duration) -> Option<Json> {
        tokio::time::timeout(within, self.events.recv()).await.ok().flatten()
    }

    /// The next event of type `ty`, skipping others (HEARTBEATs among them).
    pub async fn next(&mut self, ty: &str) -> anyhow::Result<Json> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let ev = tokio::time::timeout_at(deadline, self.events.recv()).await.with_context(|| format!("timed out waiting for {ty}"))?;
            let ev = ev.with_context(|| format!("stream ended while waiting for {ty}"))?;
            if ev["type"] == ty {
                return Ok(ev);
            }
        }
    }

    /// Whether an event of type `ty` arrives within `within`.
    pub async fn sees_within(&mut self, ty: &str, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(ev)) if ev["type"] == ty => return true,
                Ok(Some(_)) => continue,
                _ => return false,
            }
        }
    }

    /// The next UPDATE for `task_id` with `state`; acknowledges every update with a uuid on the way.
    pub async fn wait_state(&mut self, task_id: &str, state: &str) -> anyhow::Result<Json> {
        loop {
            let ev = self.next("UPDATE").await?;
            let status = ev["update"]["status"].clone();
            if status["uuid"].is_string() {
                self.ack(&status).await?;
            }
            if status["task_id"]["value"] == task_id && status["state"] == state {
                return Ok(status);
            }
        }
    }

    /// Acknowledges one status update.
    pub async fn ack(&self, status: &Json) -> anyhow::Result<()> {
        let code = self
            .call(json!({"type": "ACKNOWLEDGE", "acknowledge": {"agent_id": status["agent_id"], "task_id": status["task_id"], "uuid": status["uuid"]}}))
            .await?;
        anyhow::ensure!(code == 202, "ACKNOWLEDGE answered {code}");
        Ok(())
    }

    /// Launches one command task on the first offer received; returns (task id, agent id, offer).
    pub async fn launch(&mut self, name: &str, command: Json, extra: Json) -> anyhow::Result<(String, String, Json)> {
        let offers = self.next("OFFERS").await?;
        let offer = offers["offers"]["offers"][0].clone();
        let task_id = format!("{name}.{}", uuid::Uuid::new_v4());
        let mut task = json!({
            "name": name,
            "task_id": {"value": task_id},
            "agent_id": offer["agent_id"],
            "resources": [
                {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}
            ],
            "command": command,
        });
        if let (Some(t), Some(e)) = (task.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                t.insert(k.clone(), v.clone());
            }
        }
        let code = self
            .call(json!({"type": "ACCEPT", "accept": {"offer_ids": [offer["id"]], "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}], "filters": {"refuse_seconds": 1}}}))
            .await?;
        anyhow::ensure!(code == 202, "ACCEPT answered {code}");
        Ok((task_id, offer["agent_id"]["value"].as_str().unwrap_or_default().to_owned(), offer))
    }
}

/// Opens a SUBSCRIBE stream; every event is checked to be strictly under the official schema.
pub async fn open_stream(
    url: &str,
    call: &Json,
    encoding: Encoding,
) -> anyhow::Result<(String, mpsc::UnboundedReceiver<Json>, tokio::task::JoinHandle<()>)> {
    let body = match encoding {
        Encoding::Json => serde_json::to_vec(call)?,
        Encoding::Protobuf => codec::encode(&json::from_json::<scheduler::Call>(call)?, Encoding::Protobuf),
    };
    let resp = reqwest::Client::new()
        .post(format!("{url}/api/v1/scheduler"))
        .header("Content-Type", encoding.content_type())
        .header("Accept", encoding.content_type())
        .body(body)
        .send()
        .await?;
    anyhow::ensure!(resp.status().as_u16() == 200, "SUBSCRIBE answered {}: {}", resp.status(), resp.text().await.unwrap_or_default());
    let content_type = resp.headers().get("Content-Type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    anyhow::ensure!(content_type == encoding.content_type(), "stream Content-Type {content_type}");
    let stream_id = resp.headers().get("Mesos-Stream-Id").and_then(|v| v.to_str().ok()).context("Mesos-Stream-Id header")?.to_owned();
    uuid::Uuid::parse_str(&stream_id).context("Mesos-Stream-Id is a UUID")?;
    let (tx, rx) = mpsc::unbounded_channel();
    let mut records = RecordStream::new(Box::pin(resp.bytes_stream()), 16 << 20);
    let reader = tokio::spawn(async move {
        while let Some(Ok(record)) = records.next().await {
            let ev = match encoding {
                Encoding::Json => {
                    let j: Json = serde_json::from_slice(&record).expect("event is JSON");
                    let unknown = json::unknown_keys::<scheduler::Event>(&j);
                    assert!(unknown.is_empty(), "event has keys outside the official schema: {unknown:?} in {j}");
                    json::from_json::<scheduler::Event>(&j).unwrap_or_else(|e| panic!("event does not parse strictly: {e}: {j}"));
                    j
                }
                Encoding::Protobuf => {
                    let ev: scheduler::Event = codec::decode(&record, Encoding::Protobuf).expect("event decodes under the official protos");
                    json::to_json(&ev)
                }
            };
            if tx.send(ev).is_err() {
                return;
            }
        }
    });
    Ok((stream_id, rx, reader))
}

/// Ids of the tasks the master considers alive (staging, starting or running), over all
/// frameworks.
pub async fn alive_on_master(cluster: &LocalCluster) -> anyhow::Result<std::collections::BTreeSet<String>> {
    Ok(alive_in(&cluster.state().await?))
}

/// The live task ids in a master's `/master/state`.
pub fn alive_in(state: &Json) -> std::collections::BTreeSet<String> {
    state["frameworks"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|f| f["tasks"].as_array().cloned().unwrap_or_default())
        .filter(|t| matches!(t["state"].as_str(), Some("TASK_RUNNING" | "TASK_STAGING" | "TASK_STARTING")))
        .filter_map(|t| t["id"].as_str().map(str::to_string))
        .collect()
}
