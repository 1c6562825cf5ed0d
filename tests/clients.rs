//! Real third-party Marathon clients against `framework` (issue 19): Prometheus's Marathon
//! service discovery (Debian's `prometheus`) and a router keyed by service ports, the way
//! marathon-lb works (Debian's `haproxy`, configured from `/v2/apps?embed=apps.tasks`). Each
//! is started by the test on loopback ports and fails, never skips, when it cannot run.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use integration_tests::framework::{Framework, free_port};
use integration_tests::{TestMesos, mesos, work_dir};
use reqwest::Method;
use serde_json::{Value as Json, json};
use tokio::process::{Child, Command};

const WAIT: Duration = Duration::from_secs(60);

/// A process the test started, killed when dropped, with its working directory.
struct Daemon {
    _child: Child,
    dir: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `program` with `args` in `dir`, its output in `dir/<name>.log`.
fn spawn(program: &str, args: &[String], dir: &Path, name: &str) -> anyhow::Result<Daemon> {
    anyhow::ensure!(
        Path::new(program).exists(),
        "{program} is not installed: run ./scripts/test-all (it installs Debian's prometheus and haproxy packages)"
    );
    let log = std::fs::File::create(dir.join(format!("{name}.log")))?;
    let child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot run {program}"))?;
    Ok(Daemon { _child: child, dir: dir.to_path_buf() })
}

/// `host:port` of each running task's ports of `app`, as framework reports them.
async fn task_addresses(fw: &Framework, app: &str) -> anyhow::Result<BTreeSet<String>> {
    let j = fw.get(&format!("/v2/apps/{app}")).await?.json;
    let mut out = BTreeSet::new();
    for t in j["app"]["tasks"].as_array().into_iter().flatten().filter(|t| t["state"] == "TASK_RUNNING") {
        let host = t["host"].as_str().unwrap_or_default();
        for p in t["ports"].as_array().into_iter().flatten() {
            out.insert(format!("{host}:{}", p.as_u64().unwrap_or_default()));
        }
    }
    Ok(out)
}

/// A web app whose tasks answer on their port with their own task id.
fn web(id: &str, instances: u32) -> Json {
    json!({
        "id": id, "cpus": 0.05, "mem": 32, "instances": instances,
        "cmd": "mkdir -p www && echo \"$MESOS_TASK_ID\" > www/index.html && cd www && exec python3 -m http.server \"$PORT0\" --bind 0.0.0.0",
        "portDefinitions": [{"port": 0, "name": "http"}],
        "healthChecks": [{"protocol": "HTTP", "path": "/", "portIndex": 0, "gracePeriodSeconds": 30, "intervalSeconds": 1, "timeoutSeconds": 2, "maxConsecutiveFailures": 3, "delaySeconds": 0}]
    })
}

async fn healthy(fw: &Framework, app: &str, n: u64) -> anyhow::Result<Json> {
    fw.wait_until(&format!("/v2/apps/{app}"), WAIT, &format!("{app}: {n} healthy tasks"), |j| {
        j["app"]["tasksHealthy"] == n
            && j["app"]["tasks"].as_array().map(Vec::len) == Some(n as usize)
            && j["app"]["deployments"].as_array().is_some_and(Vec::is_empty)
    })
    .await
}

async fn start(name: &str) -> anyhow::Result<(TestMesos, Framework)> {
    let c = mesos(name, 1).await;
    let fw = Framework::start(&c.url(), &work_dir(name), &[]).await?;
    Ok((c, fw))
}

/// Prometheus's `marathon_sd_configs` pointed at framework discovers exactly the running tasks'
/// ports as targets, and follows a scale-up and a scale-down.
#[tokio::test]
async fn prometheus_discovers_exactly_the_running_tasks() -> anyhow::Result<()> {
    let (cluster, fw) = start("prometheus").await?;
    assert_eq!(fw.request(Method::POST, "/v2/apps", Some(&web("/prom/web", 2))).await?.status, 201);
    healthy(&fw, "prom/web", 2).await?;

    let dir = work_dir("prometheus-server");
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: marathon\n    marathon_sd_configs:\n      - servers: [\"{}\"]\n        refresh_interval: 1s\n",
            fw.url
        ),
    )?;
    let port = free_port();
    let _prometheus = spawn(
        "/usr/bin/prometheus",
        &[
            format!("--config.file={}", dir.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ],
        &dir,
        "prometheus",
    )?;
    let targets = |want: BTreeSet<String>| {
        let url = format!("http://127.0.0.1:{port}/api/v1/targets");
        async move {
            let deadline = tokio::time::Instant::now() + WAIT;
            let mut last = BTreeSet::new();
            loop {
                if let Ok(r) = reqwest::get(&url).await
                    && let Ok(bytes) = r.bytes().await
                    && let Ok(j) = serde_json::from_slice::<Json>(&bytes)
                {
                    last = j["data"]["activeTargets"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|t| t["discoveredLabels"]["__address__"].as_str().map(str::to_owned))
                        .collect();
                    if last == want {
                        return Ok(last);
                    }
                }
                if tokio::time::Instant::now() > deadline {
                    bail!("Prometheus's targets {last:?} never became the running tasks {want:?}");
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    };
    let want = task_addresses(&fw, "prom/web").await?;
    assert_eq!(want.len(), 2);
    targets(want).await?;

    fw.request(Method::PUT, "/v2/apps/prom/web", Some(&json!({"instances": 3}))).await?;
    healthy(&fw, "prom/web", 3).await?;
    targets(task_addresses(&fw, "prom/web").await?).await?;
    fw.request(Method::PUT, "/v2/apps/prom/web", Some(&json!({"instances": 1}))).await?;
    healthy(&fw, "prom/web", 1).await?;
    targets(task_addresses(&fw, "prom/web").await?).await?;
    cluster.shutdown().await;
    Ok(())
}

/// An HAProxy configuration keyed by service ports, as marathon-lb writes one: a frontend on
/// each app's service port on 127.0.0.1, balancing over its running tasks' host ports.
fn haproxy_config(apps: &Json) -> String {
    let mut cfg =
        String::from("global\n  maxconn 256\ndefaults\n  mode http\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n");
    for app in apps["apps"].as_array().into_iter().flatten() {
        let id = app["id"].as_str().unwrap_or_default().trim_start_matches('/').replace('/', "_");
        let service_ports: Vec<u64> = app["portDefinitions"].as_array().into_iter().flatten().filter_map(|p| p["port"].as_u64()).collect();
        for (i, svc) in service_ports.iter().enumerate() {
            cfg.push_str(&format!(
                "frontend {id}_{svc}\n  bind 127.0.0.1:{svc}\n  default_backend {id}_{svc}\nbackend {id}_{svc}\n  balance roundrobin\n"
            ));
            for t in app["tasks"].as_array().into_iter().flatten().filter(|t| t["state"] == "TASK_RUNNING") {
                let host = t["host"].as_str().unwrap_or_default();
                let host = if host == "localhost" { "127.0.0.1" } else { host };
                if let Some(port) = t["ports"][i].as_u64() {
                    let name = t["id"].as_str().unwrap_or_default().replace(['.', '/'], "_");
                    cfg.push_str(&format!("  server {name} {host}:{port}\n"));
                }
            }
        }
    }
    cfg
}

/// The task ids answering on 127.0.0.1:`port` over `n` requests (each task serves its id).
async fn answering(port: u64, n: usize) -> BTreeSet<String> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap_or_default();
    let mut seen = BTreeSet::new();
    for _ in 0..n {
        if let Ok(r) = http.get(format!("http://127.0.0.1:{port}/")).send().await
            && let Ok(text) = r.text().await
        {
            seen.insert(text.trim().to_owned());
        }
    }
    seen
}

/// A router keyed by service ports, the way marathon-lb works: HAProxy configured from
/// `/v2/apps?embed=apps.tasks` reaches two apps through their service ports, and after a
/// scale-up (configuration written again, HAProxy restarted) reaches the new task too.
#[tokio::test]
async fn haproxy_keyed_by_service_ports_reaches_the_apps_and_follows_a_scale_up() -> anyhow::Result<()> {
    // Service ports from a range of this test's own, away from the other tests' ports.
    let lo = 26_000 + (std::process::id() % 40) * 20;
    let c = mesos("haproxy", 1).await;
    let range = [format!("--local-port-min={lo}"), format!("--local-port-max={}", lo + 20)];
    let fw = Framework::start(&c.url(), &work_dir("haproxy"), &[range[0].as_str(), range[1].as_str()]).await?;
    assert_eq!(fw.request(Method::POST, "/v2/apps", Some(&web("/lb/a", 2))).await?.status, 201);
    assert_eq!(fw.request(Method::POST, "/v2/apps", Some(&web("/lb/b", 1))).await?.status, 201);
    healthy(&fw, "lb/a", 2).await?;
    healthy(&fw, "lb/b", 1).await?;

    let dir = work_dir("haproxy-server");
    let cfg = dir.join("haproxy.cfg");
    let run = |apps: &Json| -> anyhow::Result<Daemon> {
        std::fs::write(&cfg, haproxy_config(apps))?;
        spawn("/usr/sbin/haproxy", &["-db".to_owned(), "-f".to_owned(), cfg.display().to_string()], &dir, "haproxy")
    };
    let apps = fw.get("/v2/apps?embed=apps.tasks").await?.json;
    let svc = |apps: &Json, id: &str| -> Option<u64> {
        apps["apps"].as_array()?.iter().find(|a| a["id"] == id)?["portDefinitions"][0]["port"].as_u64()
    };
    let (svc_a, svc_b) = (svc(&apps, "/lb/a").context("a's service port")?, svc(&apps, "/lb/b").context("b's service port")?);
    assert!((u64::from(lo)..u64::from(lo) + 20).contains(&svc_a) && svc_a != svc_b, "service ports {svc_a}, {svc_b} from the range");
    let haproxy = run(&apps)?;
    let tasks = |app: &str| {
        let fw = &fw;
        let app = app.to_owned();
        async move { anyhow::Ok(integration_tests::task_ids(&fw.get(&format!("/v2/apps/{app}")).await?.json)) }
    };
    let until_seen = |port: u64, want: BTreeSet<String>| async move {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let seen = answering(port, 12).await;
            if seen == want {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("service port {port} reached {seen:?}, not {want:?}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    until_seen(svc_a, tasks("lb/a").await?).await?;
    until_seen(svc_b, tasks("lb/b").await?).await?;

    fw.request(Method::PUT, "/v2/apps/lb/a", Some(&json!({"instances": 3}))).await?;
    healthy(&fw, "lb/a", 3).await?;
    drop(haproxy);
    let apps = fw.get("/v2/apps?embed=apps.tasks").await?.json;
    assert_eq!(svc(&apps, "/lb/a"), Some(svc_a), "the scale-up kept the service port");
    std::fs::create_dir_all(&dir)?;
    let _haproxy = run(&apps)?;
    let three = tasks("lb/a").await?;
    assert_eq!(three.len(), 3);
    until_seen(svc_a, three).await?;
    c.shutdown().await;
    Ok(())
}

/// marathon-python 0.13 (PyPI `marathon`, in a venv made by `scripts/marathon-python-install`):
/// `tests/python/marathon_client.py` calls every client method that maps to an endpoint we
/// serve (apps, tasks, kills, versions, rollback, restart, deployments, queue, delay, groups,
/// events, info, leader, ping) and checks what comes back.
#[tokio::test]
async fn marathon_python_calls_every_endpoint_we_serve() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).context("repository root")?;
    let install =
        std::process::Command::new(root.join("scripts/marathon-python-install")).output().context("run scripts/marathon-python-install")?;
    anyhow::ensure!(install.status.success(), "scripts/marathon-python-install failed: {}", String::from_utf8_lossy(&install.stderr));
    let python = String::from_utf8_lossy(&install.stdout).trim().to_owned();
    let (cluster, fw) = start("marathon-python").await?;
    let run = Command::new(&python).arg(root.join("tests/python/marathon_client.py")).arg(&fw.url).kill_on_drop(true).output();
    let out =
        tokio::time::timeout(Duration::from_secs(600), run).await.context("marathon_client.py did not finish within 10 minutes")??;
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "marathon_client.py failed ({}):\n{stdout}\n{stderr}", out.status);
    assert!(stdout.contains("all calls answered as Marathon's"), "{stdout}");
    cluster.shutdown().await;
    Ok(())
}
