//! The showcase end to end on real components: ZooKeeper, Consul, Docker, nginx and the local
//! cluster. The guestbook group is deployed by the GoCD pipeline's own deploy command, used
//! through nginx, scaled and restarted with `framework-cli`, and survives losing its MySQL task.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use integration_tests::consul::ConsulAgent;
use integration_tests::docker::{container_of, containers, guestbook_ready};
use integration_tests::framework::{Framework, binary};
use integration_tests::zk::ZkServer;
use integration_tests::{cluster, task_ids, until, work_dir};
use reqwest::Method;
use serde_json::{Value as Json, json};

const WAIT: Duration = Duration::from_secs(120);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_default()
}

/// The deploy job's command and arguments, read from the pipeline file.
fn pipeline_deploy_command() -> anyhow::Result<(String, Vec<String>)> {
    let yaml = std::fs::read_to_string(root().join("examples/gocd/guestbook.gocd.yaml"))?;
    let deploy = yaml.split("- deploy:").nth(1).context("the pipeline has no deploy stage")?;
    let field = |name: &str| {
        deploy
            .lines()
            .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()))
            .with_context(|| format!("the deploy job has no {name}"))
    };
    let command = field("command:")?;
    let args = field("arguments:")?;
    let args = args.trim_start_matches('[').trim_end_matches(']').split(',').map(|a| a.trim().to_string()).collect();
    Ok((command, args))
}

/// Runs the deploy job as GoCD would: in a checkout (`workspace`), with `framework-cli` on the
/// PATH and the cluster URL in the environment. Returns (exit code, stderr).
async fn run_deploy_job(workspace: &Path, url: &str, timeout_secs: u32) -> anyhow::Result<(i32, String)> {
    let (command, args) = pipeline_deploy_command()?;
    let bin_dir = binary().parent().context("target dir")?.to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let out = tokio::process::Command::new(&command)
        .args(&args)
        .current_dir(workspace)
        .env("PATH", path)
        .env("FRAMEWORK_URL", url)
        .env("FRAMEWORK_WAIT_TIMEOUT", timeout_secs.to_string())
        .env_remove("MARATHON_URL")
        .output()
        .await
        .with_context(|| format!("run {command}"))?;
    Ok((out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned()))
}

async fn cli(url: &str, args: &[&str]) -> anyhow::Result<(i32, String, String)> {
    let out = tokio::process::Command::new(binary().with_file_name("framework-cli"))
        .args(args)
        .env("FRAMEWORK_URL", url)
        .env_remove("MARATHON_URL")
        .output()
        .await?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// A checkout of the repository's examples with the settings of this machine filled in: the
/// Consul agent, the MySQL data directory and the load balancer's port.
fn checkout(dir: &Path, consul: &str, mysql_data: &Path, lb_port: u64, tune: impl Fn(&mut Json)) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(root().join("examples/guestbook/guestbook.json"))?;
    let mut group: Json = serde_json::from_str(&text)?;
    for app in group["apps"].as_array_mut().context("apps")? {
        if app["env"]["CONSUL_HTTP_ADDR"].is_string() {
            app["env"]["CONSUL_HTTP_ADDR"] = json!(consul);
        }
        if let Some(v) = app["container"]["volumes"].as_array_mut() {
            v[0]["hostPath"] = json!(mysql_data.display().to_string());
        }
        if app["requirePorts"] == true {
            app["portDefinitions"][0]["port"] = json!(lb_port);
        }
        tune(app);
    }
    let target = dir.join("examples/guestbook");
    std::fs::create_dir_all(&target)?;
    std::fs::write(target.join("guestbook.json"), serde_json::to_string_pretty(&group)?)?;
    Ok(())
}

/// Through nginx: the entries' messages, the `X-Cache` header and who served them.
async fn entries(lb: &str) -> anyhow::Result<(Vec<String>, String, String)> {
    let r = reqwest::get(format!("{lb}/api/entries")).await?;
    anyhow::ensure!(r.status() == 200, "GET /api/entries through nginx: {}", r.status());
    let header = |n: &str| r.headers().get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let (cache, by) = (header("x-cache"), header("x-served-by"));
    let list: Json = serde_json::from_str(&r.text().await?)?;
    let messages = list.as_array().context("a list")?.iter().filter_map(|e| e["message"].as_str().map(str::to_string)).collect();
    Ok((messages, cache, by))
}

async fn sign(lb: &str, name: &str, message: &str) -> anyhow::Result<bool> {
    let r =
        reqwest::Client::new().post(format!("{lb}/api/entries")).body(json!({"name": name, "message": message}).to_string()).send().await?;
    Ok(r.status() == 201)
}

/// Who serves `n` requests through nginx.
async fn served_by(lb: &str, n: usize) -> anyhow::Result<BTreeSet<String>> {
    let mut seen = BTreeSet::new();
    for _ in 0..n {
        seen.insert(entries(lb).await?.2);
    }
    Ok(seen)
}

/// Removes the containers whose name contains its text when dropped, so a failed run leaves no
/// MySQL or nginx behind holding host ports.
struct RemoveContainers(&'static str);

impl Drop for RemoveContainers {
    fn drop(&mut self) {
        if let Ok(names) = containers(self.0)
            && !names.is_empty()
        {
            let _ = std::process::Command::new("docker").arg("rm").arg("-f").args(&names).output();
        }
    }
}

#[tokio::test]
async fn the_guestbook_deploys_scales_restarts_and_survives_losing_mysql() -> anyhow::Result<()> {
    guestbook_ready()?;
    let zk = ZkServer::start("guestbook").await?;
    let consul = ConsulAgent::start("guestbook").await?;
    let _cleanup = RemoveContainers("showcase_");
    // Ports of their own (below the ephemeral range, away from the other tests' ranges); the
    // last is the load balancer's fixed port (dynamic ports are taken from the low end).
    let lo = 28000 + u64::from(std::process::id() % 20) * 50;
    let lb_port = lo + 49;
    let cluster = cluster("guestbook", 1, |c| {
        c.agents[0].resources =
            mesos_local::Resources::new(&[("cpus", 8.0), ("mem", 8192.0), ("disk", 8192.0)], &[("ports", &[(lo, lo + 49)])]);
    })
    .await;
    let fw =
        Framework::start(&cluster.url(), &work_dir("guestbook-fw"), &["--zk", &zk.url("/guestbook"), "--consul", &consul.url()]).await?;
    let workspace = work_dir("guestbook-checkout");
    let mysql_data = work_dir("guestbook-mysql");
    checkout(&workspace, &consul.url(), &mysql_data, lb_port, |_| {})?;
    let lb = format!("http://127.0.0.1:{lb_port}");

    // The GoCD deploy job brings the whole group up and exits 0.
    let (code, err) = run_deploy_job(&workspace, &fw.url, 300).await?;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("/showcase: deployed"), "{err}");

    // An entry signed through nginx is read back; the list is cached until the next write.
    until("nginx to serve the guestbook", WAIT, || async { Ok(sign(&lb, "ada", "hello from the test").await.unwrap_or(false)) }).await?;
    let (list, cache, _) = entries(&lb).await?;
    assert_eq!(list, vec!["hello from the test"]);
    assert_eq!(cache, "miss");
    assert_eq!(entries(&lb).await?.1, "hit");
    assert!(sign(&lb, "bob", "second").await?);
    let (list, cache, _) = entries(&lb).await?;
    assert_eq!((list.len(), cache.as_str()), (2, "miss"), "a write invalidates the cached list");

    // `framework-cli scale guestbook 5`: 5 passing in Consul, 5 servers in nginx's upstream.
    let (code, _, err) = cli(&fw.url, &["scale", "guestbook", "5", "--wait"]).await?;
    assert_eq!(code, 0, "{err}");
    until("5 passing guestbook instances in Consul", WAIT, || async { Ok(consul.passing("guestbook").await.is_ok_and(|n| n == 5)) })
        .await?;
    until("nginx to spread requests over all 5", WAIT, || async { Ok(served_by(&lb, 15).await.is_ok_and(|s| s.len() == 5)) }).await?;
    let lb_task = task_ids(&fw.get("/v2/apps/showcase/nginx").await?.json).into_iter().next().context("the nginx task")?;
    let container = container_of(&lb_task)?.context("the nginx container")?;
    let out = tokio::process::Command::new("docker").args(["exec", &container, "cat", "/tmp/upstreams.conf"]).output().await?;
    let upstreams = String::from_utf8_lossy(&out.stdout);
    assert_eq!(upstreams.matches("server 127.0.0.1:").count(), 5, "{upstreams}");

    // A rolling restart replaces every web instance; the entries stay.
    let before = task_ids(&fw.get("/v2/apps/showcase/guestbook").await?.json);
    let (code, _, err) = cli(&fw.url, &["restart", "guestbook", "--wait"]).await?;
    assert_eq!(code, 0, "{err}");
    let after = task_ids(&fw.get("/v2/apps/showcase/guestbook").await?.json);
    assert_eq!(after.len(), 5);
    assert!(before.is_disjoint(&after), "every instance is new: {before:?} / {after:?}");
    until("nginx to reach only the new instances", WAIT, || async {
        Ok(served_by(&lb, 15).await.is_ok_and(|seen| seen.len() == 5 && seen.is_subset(&after)))
    })
    .await?;
    assert_eq!(entries(&lb).await?.0.len(), 2);

    // Killing the MySQL task: it is replaced (on a new port, the same host volume) and the web
    // tier finds it through Consul; the data is intact.
    let mysql = task_ids(&fw.get("/v2/apps/showcase/mysql").await?.json).into_iter().next().context("the mysql task")?;
    let (code, _, err) = cli(&fw.url, &["kill", &mysql]).await?;
    assert_eq!(code, 0, "{err}");
    fw.wait_until("/v2/apps/showcase/mysql", WAIT, "a healthy replacement", |j| {
        j["app"]["tasksHealthy"] == 1 && !task_ids(j).contains(&mysql) && !task_ids(j).is_empty()
    })
    .await?;
    until("the web tier to write to the new MySQL", WAIT, || async { Ok(sign(&lb, "cy", "after the loss").await.unwrap_or(false)) })
        .await?;
    let (list, cache, _) = entries(&lb).await?;
    assert_eq!(cache, "miss");
    assert_eq!(list, vec!["after the loss", "second", "hello from the test"]);

    // A deploy whose health checks never pass fails the pipeline's deploy job.
    let broken = work_dir("guestbook-broken");
    checkout(&broken, &consul.url(), &mysql_data, lb_port, |app| {
        if app["id"] == "/showcase/guestbook" {
            app["healthChecks"][0]["path"] = json!("/no-such-page");
        }
    })?;
    let (code, err) = run_deploy_job(&broken, &fw.url, 20).await?;
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("did not finish within 20s"), "{err}");
    // The load balancer still serves: the old instances stay until new ones are healthy.
    assert_eq!(entries(&lb).await?.0.len(), 3);

    let r = fw.request(Method::DELETE, "/v2/groups/showcase?force=true", None).await?;
    assert_eq!(r.status, 200, "{}", r.text);
    fw.wait_until("/v2/tasks", WAIT, "no tasks", |j| j["tasks"].as_array().is_some_and(Vec::is_empty)).await?;
    until("the containers to be removed", WAIT, || async { Ok(containers("showcase").is_ok_and(|c| c.is_empty())) }).await?;
    cluster.shutdown().await;
    Ok(())
}
