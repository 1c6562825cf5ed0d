//! Service discovery against a real Consul agent and a real nginx: `framework --consul` registers
//! running tasks, `framework lb` keeps nginx upstreams in step.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Context as _;
use integration_tests::consul::{ConsulAgent, Nginx};
use integration_tests::framework::{Framework, binary};
use integration_tests::{mesos, task_ids, until, work_dir};
use reqwest::Method;
use serde_json::{Value as Json, json};

const WAIT: Duration = Duration::from_secs(60);

async fn get_json(url: String) -> anyhow::Result<Json> {
    Ok(serde_json::from_str(&reqwest::get(url).await?.text().await?)?)
}

/// Our registrations in Consul (their ids).
async fn registered(consul: &ConsulAgent) -> anyhow::Result<BTreeSet<String>> {
    let all: Json = get_json(format!("{}/v1/agent/services", consul.url())).await?;
    Ok(all
        .as_object()
        .context("services")?
        .iter()
        .filter(|(_, s)| s["Meta"]["framework"] == "marathon")
        .map(|(id, _)| id.clone())
        .collect())
}

/// Distinct bodies of `n` requests through nginx.
async fn through_nginx(nginx: &Nginx, n: usize) -> anyhow::Result<BTreeSet<String>> {
    let mut seen = BTreeSet::new();
    for _ in 0..n {
        let r = reqwest::get(format!("http://127.0.0.1:{}/id.txt", nginx.port)).await?;
        if r.status().is_success() {
            seen.insert(r.text().await?.trim().to_string());
        }
    }
    Ok(seen)
}

#[tokio::test]
async fn running_tasks_are_registered_and_nginx_follows() -> anyhow::Result<()> {
    let consul = ConsulAgent::start("follow").await?;
    let cluster = mesos("consul-follow", 1).await;
    let fw = Framework::start(&cluster.url(), &work_dir("consul-follow"), &["--consul", &consul.url()]).await?;
    let nginx = Nginx::start("follow", "web").await?;
    let _lb = tokio::process::Command::new(binary())
        .args(["lb", "--consul", &consul.url(), "--upstreams"])
        .arg(&nginx.upstreams)
        .arg("--nginx-conf")
        .arg(&nginx.conf)
        .kill_on_drop(true)
        .spawn()?;
    let app = json!({
        "id": "/web", "cmd": "echo $MESOS_TASK_ID > id.txt && exec python3 -m http.server $PORT0", "cpus": 0.1, "mem": 32, "instances": 3,
        "portDefinitions": [{"port": 0, "name": "http"}], "labels": {"tier": "front"},
        "healthChecks": [{"protocol": "HTTP", "path": "/id.txt", "portIndex": 0, "intervalSeconds": 1, "timeoutSeconds": 1, "gracePeriodSeconds": 30}]
    });
    assert_eq!(fw.request(Method::POST, "/v2/apps", Some(&app)).await?.status, 201);
    until("3 passing instances in Consul", WAIT, || async { Ok(consul.passing("web").await? == 3) }).await?;
    let svc: Json = get_json(format!("{}/v1/agent/services", consul.url())).await?;
    let one = svc.as_object().and_then(|m| m.values().next()).context("a service")?;
    assert_eq!(one["Service"], "web");
    assert!(one["Tags"].as_array().is_some_and(|t| t.contains(&json!("tier=front"))), "{one}");
    assert!(one["Meta"]["task_id"].as_str().is_some_and(|t| t.starts_with("web.instance-")));
    until("nginx to reach all 3", WAIT, || async { Ok(through_nginx(&nginx, 30).await?.len() == 3) }).await?;
    let upstreams = std::fs::read_to_string(&nginx.upstreams)?;
    assert_eq!(upstreams.matches("server 127.0.0.1:").count(), 3, "{upstreams}");

    // Scale down: Consul and nginx follow.
    fw.wait_until("/v2/deployments", WAIT, "the deployment to finish", |j| j.as_array().is_some_and(Vec::is_empty)).await?;
    let r = fw.request(Method::PUT, "/v2/apps/web", Some(&json!({"instances": 1}))).await?;
    assert_eq!(r.status, 200, "{}", r.text);
    until("1 instance in Consul", WAIT, || async { Ok(registered(&consul).await?.len() == 1 && consul.passing("web").await? == 1) })
        .await?;
    until("nginx to reach only 1", WAIT, || async { Ok(through_nginx(&nginx, 10).await?.len() == 1) }).await?;

    // A killed task's registration goes; its replacement's comes.
    let j = fw.get("/v2/apps/web").await?.json;
    let old = task_ids(&j).into_iter().next().context("task")?;
    assert_eq!(fw.request(Method::DELETE, &format!("/v2/apps/web/tasks/{old}"), None).await?.status, 200);
    until("the replacement registered instead", WAIT, || async {
        let r = registered(&consul).await?;
        Ok(r.len() == 1 && !r.contains(&format!("{old}-0")) && consul.passing("web").await? == 1)
    })
    .await?;
    // nginx follows once `framework lb` has seen the change; until then it may still point at the
    // killed task (a 502) or at nothing.
    until("nginx to reach only the replacement", WAIT, || async {
        let served = through_nginx(&nginx, 5).await?;
        Ok(served.len() == 1 && !served.contains(&old))
    })
    .await?;
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn consul_outage_delays_but_never_loses_registrations() -> anyhow::Result<()> {
    let mut consul = ConsulAgent::start("outage").await?;
    let cluster = mesos("consul-outage", 1).await;
    let fw = Framework::start(&cluster.url(), &work_dir("consul-outage"), &["--consul", &consul.url()]).await?;
    let app = json!({"id": "/svc", "cmd": "sleep 1000", "cpus": 0.05, "mem": 16, "instances": 1, "portDefinitions": [{"port": 0}]});
    assert_eq!(fw.request(Method::POST, "/v2/apps", Some(&app)).await?.status, 201);
    until("1 registration", WAIT, || async { Ok(registered(&consul).await?.len() == 1) }).await?;

    consul.stop().await;
    fw.request(Method::PUT, "/v2/apps/svc", Some(&json!({"instances": 3}))).await?;
    let j = fw.wait_until("/v2/apps/svc", WAIT, "3 running tasks", |j| j["app"]["tasksRunning"] == 3).await?;
    let expected: BTreeSet<String> = task_ids(&j).into_iter().map(|t| format!("{t}-0")).collect();
    consul.restart().await?;
    // A leftover registration of ours that no task backs must go.
    let stale = json!({"ID": "svc.instance-gone._app.1-0", "Name": "svc", "Port": 1, "Meta": {"framework": "marathon", "task_id": "svc.instance-gone._app.1"}});
    reqwest::Client::new()
        .put(format!("{}/v1/agent/service/register", consul.url()))
        .body(stale.to_string())
        .send()
        .await?
        .error_for_status()?;
    until("exactly the running tasks registered", WAIT, || async { Ok(registered(&consul).await? == expected) }).await?;
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn registrations_carry_the_acl_token() -> anyhow::Result<()> {
    let consul = ConsulAgent::start_with_acl("acl", "root-token").await?;
    let http = reqwest::Client::new();
    // ACLs are on: without a token nothing can be registered.
    let probe = json!({"ID": "probe", "Name": "probe", "Port": 1});
    let r = http.put(format!("{}/v1/agent/service/register", consul.url())).body(probe.to_string()).send().await?;
    assert_eq!(r.status().as_u16(), 403, "{}", r.text().await?);

    let cluster = mesos("consul-acl", 1).await;
    let fw =
        Framework::start(&cluster.url(), &work_dir("consul-acl"), &["--consul", &consul.url(), "--consul-token", "root-token"]).await?;
    let app = json!({"id": "/acl", "cmd": "sleep 1000", "cpus": 0.05, "mem": 16, "instances": 2, "portDefinitions": [{"port": 0}]});
    assert_eq!(fw.request(Method::POST, "/v2/apps", Some(&app)).await?.status, 201);
    until("2 registrations made with the token", WAIT, || async {
        let body =
            http.get(format!("{}/v1/agent/services", consul.url())).header("X-Consul-Token", "root-token").send().await?.text().await?;
        let all: Json = serde_json::from_str(&body)?;
        Ok(all.as_object().is_some_and(|m| m.values().filter(|s| s["Meta"]["framework"] == "marathon").count() == 2))
    })
    .await?;
    cluster.shutdown().await;
    Ok(())
}
