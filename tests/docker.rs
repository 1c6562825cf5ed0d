//! Docker tasks end to end: `framework` launches apps with a Docker container as Marathon does
//! (a TaskInfo with a DOCKER container and no executor), which the local agents' Docker
//! containerizer runs (with `framework-executor` in the part of Mesos's Docker executor), or,
//! where asked for, through `framework-executor` as a custom executor; against the real Docker
//! daemon, images built locally, and a real registry on loopback for pulls.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Context as _;
use integration_tests::docker::{container_of, containers, executor_pid, ready};
use integration_tests::framework::Framework;
use integration_tests::{cluster, task_ids, work_dir};
use reqwest::Method;
use serde_json::{Value as Json, json};

const WAIT: Duration = Duration::from_secs(90);

fn nginx(id: &str, health_path: &str, failures: u32) -> Json {
    json!({
        "id": id, "cmd": "exec nginx -g 'daemon off;'", "cpus": 0.1, "mem": 64,
        "container": {"type": "DOCKER", "docker": {"image": "framework/nginx:latest"}, "portMappings": [{"containerPort": 80, "hostPort": 0, "name": "http"}]},
        "networks": [{"mode": "container/bridge"}],
        "healthChecks": [{"protocol": "HTTP", "path": health_path, "portIndex": 0, "gracePeriodSeconds": 20, "intervalSeconds": 1, "timeoutSeconds": 2, "maxConsecutiveFailures": failures, "delaySeconds": 0}]
    })
}

async fn start(name: &str) -> anyhow::Result<(mesos_local::LocalCluster, Framework)> {
    ready("nginx")?;
    let c = cluster(name, 1, |_| {}).await;
    let fw = Framework::start(&c.url(), &work_dir(name), &[]).await?;
    Ok((c, fw))
}

/// Deletes the app, waits until its containers are gone, stops the cluster.
async fn teardown(fw: &Framework, cluster: mesos_local::LocalCluster, app: &str) -> anyhow::Result<()> {
    assert_eq!(fw.request(Method::DELETE, &format!("/v2/apps/{app}"), None).await?.status, 200);
    fw.wait_until("/v2/tasks", WAIT, "no tasks", |j| j["tasks"].as_array().is_some_and(Vec::is_empty)).await?;
    wait_gone(&format!("{app}.instance-")).await?;
    cluster.shutdown().await;
    Ok(())
}

async fn wait_gone(part: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !containers(part)?.is_empty() {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "container {part} was not removed");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}

#[tokio::test]
async fn nginx_in_bridge_mode_serves_on_its_host_port_and_is_removed_when_killed() -> anyhow::Result<()> {
    let (cluster, fw) = start("docker-nginx").await?;
    assert_eq!(fw.request(Method::POST, "/v2/apps", Some(&nginx("/nginx", "/", 3))).await?.status, 201);
    let j = fw.wait_until("/v2/apps/nginx", WAIT, "a healthy nginx", |j| j["app"]["tasksHealthy"] == 1).await?;
    let task = j["app"]["tasks"][0].clone();
    let id = task["id"].as_str().context("task id")?.to_string();
    let port = task["ports"][0].as_u64().context("host port")?;
    let body = reqwest::get(format!("http://127.0.0.1:{port}/")).await?.text().await?;
    assert!(body.contains("nginx"), "nginx answers on the host port: {body}");
    assert_eq!(containers(&id)?, vec![id.clone()], "the container is named after the task");
    // Sent as Marathon sends it: no executor in the TaskInfo (the agent's Docker containerizer
    // runs it), and the container's address reported in the task's container_status.
    let state = cluster.state().await?;
    let on_master = state["frameworks"][0]["tasks"].as_array().into_iter().flatten().find(|t| t["id"] == id.as_str()).cloned();
    assert_eq!(on_master.as_ref().map(|t| t["executor_id"].clone()), Some(json!("")), "no executor: {on_master:?}");
    let ip = task["ipAddresses"][0]["ipAddress"].as_str().context("the container's IP address")?;
    let inspect: Json = serde_json::from_slice(&std::process::Command::new("docker").args(["inspect", &id]).output()?.stdout)?;
    assert_eq!(inspect[0]["NetworkSettings"]["Networks"]["bridge"]["IPAddress"], ip, "the bridge address");

    // Killing the task stops and removes its container; the app gets a new one.
    assert_eq!(fw.request(Method::DELETE, &format!("/v2/apps/nginx/tasks/{id}"), None).await?.status, 200);
    wait_gone(&id).await?;
    fw.wait_until("/v2/apps/nginx", WAIT, "a replacement", |j| j["app"]["tasksHealthy"] == 1 && !task_ids(j).contains(&id)).await?;
    teardown(&fw, cluster, "nginx").await
}

#[tokio::test]
async fn a_container_failing_its_health_check_is_killed_and_replaced() -> anyhow::Result<()> {
    let (cluster, fw) = start("docker-unhealthy").await?;
    let mut app = nginx("/sick", "/missing", 2);
    app["healthChecks"][0]["gracePeriodSeconds"] = json!(0);
    assert_eq!(fw.request(Method::POST, "/v2/apps", Some(&app)).await?.status, 201);
    let j = fw.wait_until("/v2/apps/sick", WAIT, "a task", |j| !task_ids(j).is_empty()).await?;
    let first = task_ids(&j).into_iter().next().context("task")?;
    let j = fw
        .wait_until("/v2/apps/sick", WAIT, "the sick task replaced", |j| !task_ids(j).is_empty() && !task_ids(j).contains(&first))
        .await?;
    assert!(j["app"]["lastTaskFailure"].is_null() || j["app"]["lastTaskFailure"]["taskId"] != first.as_str());
    wait_gone(&first).await?;
    teardown(&fw, cluster, "sick").await
}

#[tokio::test]
async fn a_container_over_its_memory_limit_fails_with_the_oom_reason() -> anyhow::Result<()> {
    let (cluster, fw) = start("docker-oom").await?;
    let app = json!({
        "id": "/hog", "cmd": "head -c 400m /dev/zero | tail", "cpus": 0.1, "mem": 32, "instances": 1,
        "container": {"type": "DOCKER", "docker": {"image": "framework/nginx:latest"}}, "backoffSeconds": 60
    });
    assert_eq!(fw.request(Method::POST, "/v2/apps", Some(&app)).await?.status, 201);
    let j = fw.wait_until("/v2/apps/hog", WAIT, "a task failure", |j| j["app"]["lastTaskFailure"].is_object()).await?;
    let failure = &j["app"]["lastTaskFailure"];
    assert_eq!(failure["state"], "TASK_FAILED");
    assert!(failure["message"].as_str().is_some_and(|m| m.contains("memory limit")), "{failure}");
    wait_gone(failure["taskId"].as_str().unwrap_or("?")).await?;
    teardown(&fw, cluster, "hog").await
}

#[tokio::test]
async fn a_killed_executor_gets_its_task_reported_and_its_container_cleaned_up() -> anyhow::Result<()> {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let (cluster, fw) = start("docker-executor-kill").await?;
    let mut app = nginx("/victim", "/", 3);
    app["backoffSeconds"] = json!(0);
    assert_eq!(fw.request(Method::POST, "/v2/apps", Some(&app)).await?.status, 201);
    let j = fw.wait_until("/v2/apps/victim", WAIT, "a running task", |j| j["app"]["tasksRunning"] == 1).await?;
    let first = task_ids(&j).into_iter().next().context("task")?;
    let pid = executor_pid(&first).context("the executor process")?;
    kill(Pid::from_raw(pid), Signal::SIGKILL)?;
    // The agent reports the task; the app gets a new one, whose executor removes the orphan.
    fw.wait_until("/v2/apps/victim", WAIT, "a replacement", |j| j["app"]["tasksRunning"] == 1 && !task_ids(j).contains(&first)).await?;
    wait_gone(&first).await?;
    teardown(&fw, cluster, "victim").await
}

#[tokio::test]
async fn the_executor_resubscribes_after_an_agent_restart_and_keeps_its_container() -> anyhow::Result<()> {
    let (cluster, fw) = start("docker-agent-restart").await?;
    assert_eq!(fw.request(Method::POST, "/v2/apps", Some(&nginx("/steady", "/", 3))).await?.status, 201);
    let j = fw.wait_until("/v2/apps/steady", WAIT, "a healthy task", |j| j["app"]["tasksHealthy"] == 1).await?;
    let id = task_ids(&j).into_iter().next().context("task")?;
    let agent = cluster.agent_ids()[0].clone();
    // Down for longer than 15 s: agents hand executors MESOS_RECOVERY_TIMEOUT=15mins (a Mesos
    // duration), which an executor reading it as 15 seconds would give up on (issue 21).
    cluster.fault(mesos_local::Fault::RestartAgent(agent, Duration::from_secs(17))).await?;
    // Past the agent's 2 s re-registration window after it is back: an executor that had not
    // re-subscribed would have been killed and its task replaced by now.
    tokio::time::sleep(Duration::from_millis(20_500)).await;
    // Still the same task and container; a kill goes through the re-subscribed executor.
    let j = fw.get("/v2/apps/steady").await?.json;
    assert_eq!(task_ids(&j), BTreeSet::from([id.clone()]));
    assert_eq!(containers(&id)?, vec![id.clone()]);
    assert_eq!(fw.request(Method::DELETE, &format!("/v2/apps/steady/tasks/{id}"), None).await?.status, 200);
    wait_gone(&id).await?;
    teardown(&fw, cluster, "steady").await
}

#[tokio::test]
async fn docker_parameters_reach_the_container_and_unknown_ones_are_refused() -> anyhow::Result<()> {
    ready("nginx")?;
    let c = cluster("docker-params", 1, |_| {}).await;
    let fw = Framework::start(&c.url(), &work_dir("docker-params"), &["--docker-parameters-allowed", "*"]).await?;
    let mut app = nginx("/params", "/", 3);
    app["container"]["docker"]["parameters"] = json!([
        {"key": "label", "value": "team=web"}, {"key": "env", "value": "FROM_PARAM=yes"},
        {"key": "hostname", "value": "params-host"}, {"key": "shm-size", "value": "128m"},
        {"key": "ulimit", "value": "nofile=1024:2048"}
    ]);
    assert_eq!(fw.request(Method::POST, "/v2/apps", Some(&app)).await?.status, 201);
    let j = fw.wait_until("/v2/apps/params", WAIT, "a healthy container", |j| j["app"]["tasksHealthy"] == 1).await?;
    let id = task_ids(&j).into_iter().next().context("task")?;
    let out = tokio::process::Command::new("docker").args(["inspect", &id]).output().await?;
    let inspect: Json = serde_json::from_slice(&out.stdout)?;
    let i = &inspect[0];
    assert_eq!(i["Config"]["Labels"]["team"], "web");
    assert!(i["Config"]["Env"].as_array().is_some_and(|e| e.contains(&json!("FROM_PARAM=yes"))));
    assert_eq!(i["Config"]["Hostname"], "params-host");
    assert_eq!(i["HostConfig"]["ShmSize"], 128 * 1024 * 1024);
    assert_eq!(i["HostConfig"]["Ulimits"][0]["Name"], "nofile");
    assert_eq!(i["HostConfig"]["Ulimits"][0]["Hard"], 2048);
    teardown(&fw, c, "params").await?;

    // A parameter the executor cannot apply fails the task with the reason, never silently.
    let c = cluster("docker-params-bad", 1, |_| {}).await;
    let fw = Framework::start(&c.url(), &work_dir("docker-params-bad"), &["--docker-parameters-allowed", "*"]).await?;
    let mut app = nginx("/badparam", "/", 3);
    app["container"]["docker"]["parameters"] = json!([{"key": "cap-add", "value": "NET_ADMIN"}]);
    assert_eq!(fw.request(Method::POST, "/v2/apps", Some(&app)).await?.status, 201);
    let j = fw
        .wait_until("/v2/apps/badparam", WAIT, "the failure reported", |j| {
            j["app"]["lastTaskFailure"]["message"].as_str().is_some_and(|m| m.contains("cap-add"))
        })
        .await?;
    assert_eq!(j["app"]["tasksRunning"], 0);
    c.shutdown().await;
    Ok(())
}

/// The custom executor stays available where an app asks for it (the label), as an executor the
/// TaskInfo names.
#[tokio::test]
async fn an_app_label_runs_its_tasks_through_framework_executor() -> anyhow::Result<()> {
    let (cluster, fw) = start("docker-custom-executor").await?;
    let mut app = nginx("/custom", "/", 3);
    app["labels"] = json!({"FRAMEWORK_EXECUTOR": "framework-executor"});
    assert_eq!(fw.request(Method::POST, "/v2/apps", Some(&app)).await?.status, 201);
    let j = fw.wait_until("/v2/apps/custom", WAIT, "a healthy task", |j| j["app"]["tasksHealthy"] == 1).await?;
    let id = task_ids(&j).into_iter().next().context("task")?;
    let state = cluster.state().await?;
    let on_master = state["frameworks"][0]["tasks"].as_array().into_iter().flatten().find(|t| t["id"] == id.as_str()).cloned();
    assert_eq!(on_master.as_ref().map(|t| t["executor_id"].clone()), Some(json!(id)), "an executor named after the task: {on_master:?}");
    teardown(&fw, cluster, "custom").await
}

fn docker(args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new("docker").args(args).output().with_context(|| format!("docker {args:?}"))?;
    anyhow::ensure!(out.status.success(), "docker {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Images are pulled as Mesos's Docker containerizer pulls them: an app naming an image in a
/// registry (Debian's docker-registry on loopback) that the daemon does not have runs; and with
/// `forcePullImage`, a new task runs the image pushed anew under the same tag, which the daemon
/// would otherwise take from its own copy.
#[tokio::test]
async fn images_are_pulled_from_a_registry_and_force_pull_takes_a_new_push() -> anyhow::Result<()> {
    ready("nginx")?;
    let registry = integration_tests::registry::Registry::start("pull").await?;
    let image = format!("{}/pulltest-{}:v1", registry.addr, std::process::id());
    docker(&["tag", "framework/nginx:latest", &image])?;
    docker(&["push", &image])?;
    docker(&["rmi", &image])?;
    let (cluster, fw) = start("docker-pull").await?;
    let mut app = nginx("/pulled", "/", 3);
    app["container"]["docker"]["image"] = json!(image);
    assert_eq!(fw.request(Method::POST, "/v2/apps", Some(&app)).await?.status, 201);
    fw.wait_until("/v2/apps/pulled", WAIT, "a healthy task from the pulled image", |j| j["app"]["tasksHealthy"] == 1).await?;
    let first = docker(&["image", "inspect", "-f", "{{.Id}}", &image])?;

    // A new image under the same tag in the registry; the daemon keeps the first under the tag.
    let scratch = format!("pulltest-build-{}", std::process::id());
    docker(&["run", "--name", &scratch, &image, "/bin/sh", "-c", "echo v2 > /version"])?;
    docker(&["commit", &scratch, &image])?;
    docker(&["rm", &scratch])?;
    let second = docker(&["image", "inspect", "-f", "{{.Id}}", &image])?;
    assert_ne!(first, second);
    docker(&["push", &image])?;
    docker(&["tag", &first, &image])?;

    app["container"]["docker"]["forcePullImage"] = json!(true);
    assert_eq!(fw.request(Method::PUT, "/v2/apps/pulled", Some(&app)).await?.status, 200);
    let j = fw
        .wait_until("/v2/apps/pulled", WAIT, "the forcePullImage version healthy", |j| {
            j["app"]["tasksHealthy"] == 1
                && j["app"]["tasks"].as_array().is_some_and(|t| t.len() == 1)
                && j["app"]["deployments"].as_array().is_some_and(Vec::is_empty)
        })
        .await?;
    let id = task_ids(&j).into_iter().next().context("task")?;
    let container = container_of(&id)?.context("the new task's container")?;
    assert_eq!(docker(&["inspect", "-f", "{{.Image}}", &container])?, second, "the new task runs the image pulled anew");
    teardown(&fw, cluster, "pulled").await?;
    let _ = docker(&["rmi", "-f", &image, &first, &second]);
    Ok(())
}

/// Agents that authenticate executors (Mesos's `--authenticate_http_executors`) hand each one a
/// token in `MESOS_EXECUTOR_AUTHENTICATION_TOKEN` and refuse its calls without it: the executor
/// sends it, so its task runs; a call without it gets 401.
#[tokio::test]
async fn executors_authenticate_to_agents_that_require_it() -> anyhow::Result<()> {
    ready("nginx")?;
    let c = cluster("docker-executor-auth", 1, |cfg| cfg.authenticate_http_executors = true).await;
    let fw = Framework::start(&c.url(), &work_dir("docker-executor-auth"), &[]).await?;
    assert_eq!(fw.request(Method::POST, "/v2/apps", Some(&nginx("/authed", "/", 3))).await?.status, 201);
    let j = fw.wait_until("/v2/apps/authed", WAIT, "a healthy task", |j| j["app"]["tasksHealthy"] == 1).await?;
    let id = task_ids(&j).into_iter().next().context("task")?;
    let framework_id = fw.get("/v2/info").await?.json["frameworkId"].as_str().context("framework id")?.to_string();
    let agent = c.agent_addr(0).context("the agent's address")?;
    let call = json!({"type": "SUBSCRIBE", "framework_id": {"value": framework_id}, "executor_id": {"value": id}, "subscribe": {}});
    let r = reqwest::Client::new()
        .post(format!("http://{agent}/api/v1/executor"))
        .header("Content-Type", "application/json")
        .body(call.to_string())
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 401, "a call without the token is refused");
    teardown(&fw, c, "authed").await
}
