//! The scheduler against a real Apache Mesos 1.11 master (`scripts/real-mesos`, issue 20): what
//! our local cluster is trusted to imitate, checked on the real thing. Fails, never skips, when
//! the real Mesos cannot start (`scripts/test-all` installs it).

use std::time::Duration;

use anyhow::Context as _;
use integration_tests::framework::Framework;
use integration_tests::real_mesos::RealMesos;
use integration_tests::work_dir;
use serde_json::Value as Json;

const WITHIN: Duration = Duration::from_secs(40);

async fn master_frameworks(mesos: &RealMesos) -> anyhow::Result<Json> {
    let body = reqwest::get(format!("{}/master/frameworks", mesos.url())).await?.bytes().await?;
    Ok(serde_json::from_slice(&body)?)
}

/// Polls the real master's `/master/frameworks` until `pred` holds for our framework's entry.
async fn until_master_shows(mesos: &RealMesos, id: &str, what: &str, pred: impl Fn(&Json) -> bool) -> anyhow::Result<Json> {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let all = master_frameworks(mesos).await?;
        if let Some(fw) = all["frameworks"].as_array().and_then(|f| f.iter().find(|f| f["id"] == id))
            && pred(fw)
        {
            return Ok(fw.clone());
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the real master never showed {what}; it has {all}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_framework_registers_with_a_real_mesos_and_fails_over_under_the_same_id() -> anyhow::Result<()> {
    let mut mesos = RealMesos::start("register", 1, "cpus:2;mem:1024;disk:4096;ports:[31000-31009]").await?;
    let mut fw = Framework::start(&mesos.url(), &work_dir("real-register"), &[]).await?;
    let info = fw.wait_until("/v2/info", WITHIN, "a framework id from the real master", |j| j["frameworkId"].is_string()).await?;
    let id = info["frameworkId"].as_str().context("frameworkId")?.to_owned();
    let registered = until_master_shows(&mesos, &id, "our framework, active", |f| f["active"] == true).await?;
    assert_eq!(registered["name"], "marathon");
    assert_eq!(registered["checkpoint"], true);
    assert_eq!(registered["failover_timeout"], 604_800.0);
    let caps: Vec<&str> = registered["capabilities"].as_array().context("capabilities")?.iter().filter_map(Json::as_str).collect();
    for cap in ["MULTI_ROLE", "PARTITION_AWARE", "TASK_KILLING_STATE"] {
        assert!(caps.contains(&cap), "{cap} missing from {caps:?}");
    }
    assert_eq!(info["elected"], true);

    // Failover: a killed scheduler comes back under the id it stored, and the real master takes
    // it as the same framework (one framework, active again), not a second one.
    fw.crash().await;
    until_master_shows(&mesos, &id, "our framework inactive after the kill", |f| f["active"] == false).await?;
    fw.restart().await?;
    let again = fw.wait_until("/v2/info", WITHIN, "the framework id after the restart", |j| j["frameworkId"].is_string()).await?;
    assert_eq!(again["frameworkId"], id.as_str(), "a restart must re-subscribe with the stored framework id");
    until_master_shows(&mesos, &id, "our framework active again", |f| f["active"] == true).await?;
    let all = master_frameworks(&mesos).await?;
    assert_eq!(all["frameworks"].as_array().map(Vec::len), Some(1), "exactly one framework: {all}");
    drop(fw);
    mesos.stop().await;
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Differential checks: one scenario against the real master and against our local cluster, and
// what the scheduler receives compared. A difference is a bug of the local cluster.

use integration_tests::{Session, cluster, subscribe_call};
use mesos_proto::codec::Encoding;

/// What a scheduler sees right after subscribing: the event types within 1.5 s of SUBSCRIBED.
async fn first_events(url: &str) -> anyhow::Result<Vec<String>> {
    let mut s = Session::subscribe(url, subscribe_call(None, 60.0, &["PARTITION_AWARE"]), Encoding::Json).await?;
    let mut seen = vec!["SUBSCRIBED".to_owned()];
    let until = tokio::time::Instant::now() + Duration::from_millis(1500);
    while let Some(ev) = s.next_any(until.saturating_duration_since(tokio::time::Instant::now())).await {
        seen.push(ev["type"].as_str().unwrap_or_default().to_owned());
    }
    Ok(seen)
}

/// ACCEPT of an offer id the master never made: the update the task gets.
async fn launch_on_unknown_offer(url: &str) -> anyhow::Result<Json> {
    let mut s = Session::subscribe(url, subscribe_call(None, 60.0, &["PARTITION_AWARE"]), Encoding::Json).await?;
    let offer = s.next("OFFERS").await?;
    let agent = offer["offers"]["offers"][0]["agent_id"].clone();
    let call = serde_json::json!({
        "type": "ACCEPT",
        "accept": {
            "offer_ids": [{"value": "no-such-offer"}],
            "operations": [{"type": "LAUNCH", "launch": {"task_infos": [{
                "name": "t", "task_id": {"value": "t1"}, "agent_id": agent,
                "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}}],
                "command": {"value": "sleep 10"}
            }]}}]
        }
    });
    anyhow::ensure!(s.call(call).await? == 202, "ACCEPT was not accepted for processing");
    let update = s.next("UPDATE").await?;
    let st = &update["update"]["status"];
    Ok(serde_json::json!({"state": st["state"], "reason": st["reason"], "source": st["source"], "task": st["task_id"]}))
}

#[tokio::test]
async fn differential_the_first_events_and_a_launch_on_an_unknown_offer() -> anyhow::Result<()> {
    let mut mesos = RealMesos::start("differential", 1, "cpus:2;mem:1024;disk:4096;ports:[31000-31009]").await?;
    let local = cluster("differential", 1, |_| {}).await;

    let (real_first, local_first) = (first_events(&mesos.url()).await?, first_events(&local.url()).await?);
    // Mesos starts the framework's heartbeater right after SUBSCRIBED; its first HEARTBEAT races
    // the allocator's first OFFERS (both are separate libprocess actors), so the order of those two
    // varies on the real master too. What holds on both: SUBSCRIBED first, then a HEARTBEAT and
    // OFFERS within the window, with the first HEARTBEAT among the first three events.
    for (who, first) in [("real master", &real_first), ("local cluster", &local_first)] {
        assert_eq!(first[0], "SUBSCRIBED", "{who}: {first:?}");
        assert!(first[1..3.min(first.len())].contains(&"HEARTBEAT".to_owned()), "{who}: no HEARTBEAT right after SUBSCRIBED: {first:?}");
        assert!(first.contains(&"OFFERS".to_owned()), "{who}: no OFFERS within 1.5 s: {first:?}");
    }

    let real = launch_on_unknown_offer(&mesos.url()).await?;
    let ours = launch_on_unknown_offer(&local.url()).await?;
    assert_eq!(real["state"], "TASK_DROPPED", "real master: {real}");
    assert_eq!(ours, real, "local cluster differs from the real master");

    local.shutdown().await;
    mesos.stop().await;
    Ok(())
}

#[tokio::test]
async fn command_apps_run_scale_and_stop_on_the_real_agents() -> anyhow::Result<()> {
    use reqwest::Method;
    let mut mesos = RealMesos::start("apps", 2, "cpus:2;mem:1024;disk:4096;ports:[31000-31009]").await?;
    let fw = Framework::start(&mesos.url(), &work_dir("real-apps"), &[]).await?;
    let app = serde_json::json!({"id": "/real/sleeper", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16, "instances": 3});
    let r = fw.request(Method::POST, "/v2/apps", Some(&app)).await?;
    assert_eq!(r.status, 201, "{}", r.text);
    let j = fw.wait_until("/v2/apps/real/sleeper", WITHIN, "3 running tasks", |j| j["app"]["tasksRunning"] == 3).await?;
    let ours = integration_tests::task_ids(&j);
    let on_master = |state: &'static str| {
        let url = mesos.url();
        async move {
            let body = reqwest::get(format!("{url}/master/tasks")).await?.bytes().await?;
            let all: Json = serde_json::from_slice(&body)?;
            anyhow::Ok(
                all["tasks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|t| t["state"] == state)
                    .filter_map(|t| t["id"].as_str().map(str::to_owned))
                    .collect::<std::collections::BTreeSet<String>>(),
            )
        }
    };
    assert_eq!(on_master("TASK_RUNNING").await?, ours, "the real master runs exactly our tasks");

    // Scale down: the real agents' command executors kill two tasks.
    let r = fw.request(Method::PUT, "/v2/apps/real/sleeper", Some(&serde_json::json!({"instances": 1}))).await?;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = fw
        .wait_until("/v2/apps/real/sleeper", WITHIN, "1 task left", |j| {
            j["app"]["tasksRunning"] == 1 && j["app"]["deployments"].as_array().is_some_and(Vec::is_empty)
        })
        .await?;
    let left = integration_tests::task_ids(&j);
    let deadline = tokio::time::Instant::now() + WITHIN;
    while on_master("TASK_RUNNING").await? != left {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the real master still runs {:?}", on_master("TASK_RUNNING").await?);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(r.status, 200);
    let r = fw.request(Method::DELETE, "/v2/apps/real/sleeper", None).await?;
    assert_eq!(r.status, 200, "{}", r.text);
    while !on_master("TASK_RUNNING").await?.is_empty() {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "tasks left running after the delete");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(fw);
    mesos.stop().await;
    Ok(())
}

/// A task that exits with status 3: the terminal update the scheduler gets.
async fn failing_task(url: &str) -> anyhow::Result<Json> {
    let mut s = Session::subscribe(url, subscribe_call(None, 60.0, &["PARTITION_AWARE", "TASK_KILLING_STATE"]), Encoding::Json).await?;
    s.launch("fails", serde_json::json!({"value": "exit 3"}), serde_json::json!({})).await?;
    let mut last = Json::Null;
    for _ in 0..5 {
        last = s.next("UPDATE").await?;
        let st = &last["update"]["status"];
        if st["state"] == "TASK_FAILED" {
            return Ok(serde_json::json!({"state": st["state"], "message": st["message"], "source": st["source"], "reason": st["reason"]}));
        }
        s.ack(&last["update"]["status"]).await?;
    }
    anyhow::bail!("no TASK_FAILED: {last}")
}

#[tokio::test]
async fn differential_a_command_task_that_fails() -> anyhow::Result<()> {
    let mut mesos = RealMesos::start("differential-exit", 1, "cpus:2;mem:1024;disk:4096;ports:[31000-31009]").await?;
    let local = cluster("differential-exit", 1, |_| {}).await;
    let real = failing_task(&mesos.url()).await?;
    assert_eq!(real["message"], "Command exited with status 3", "real agent: {real}");
    let ours = failing_task(&local.url()).await?;
    assert_eq!(ours, real, "local cluster differs from the real agent");
    local.shutdown().await;
    mesos.stop().await;
    Ok(())
}

/// The terminal update of a command task killed for failing its health check.
async fn health_killed_task(url: &str) -> anyhow::Result<Json> {
    let mut s = Session::subscribe(url, subscribe_call(None, 60.0, &["PARTITION_AWARE", "TASK_KILLING_STATE"]), Encoding::Json).await?;
    let check = serde_json::json!({"health_check": {"type": "COMMAND", "command": {"value": "false"}, "delay_seconds": 0,
        "interval_seconds": 0.5, "grace_period_seconds": 0, "timeout_seconds": 2, "consecutive_failures": 1}});
    s.launch("unhealthy", serde_json::json!({"value": "sleep 1000"}), check).await?;
    let mut last = Json::Null;
    for _ in 0..10 {
        last = s.next("UPDATE").await?;
        let st = &last["update"]["status"];
        if st["state"] == "TASK_KILLED" {
            return Ok(serde_json::json!({"state": st["state"], "reason": st["reason"], "healthy": st["healthy"], "source": st["source"]}));
        }
        s.ack(&last["update"]["status"]).await?;
    }
    anyhow::bail!("no TASK_KILLED: {last}")
}

/// A task killed for failing its health check ends TASK_KILLED with `healthy: false` and no
/// reason, as Mesos's command executor sends it (launcher/executor.cpp); the local agents sent
/// REASON_TASK_HEALTH_CHECK_STATUS_UPDATED, and the scheduler only recognised a health kill by
/// that reason (found by this check; both fixed).
#[tokio::test]
async fn differential_a_task_killed_by_its_health_check() -> anyhow::Result<()> {
    let mut mesos = RealMesos::start("differential-health", 1, "cpus:2;mem:1024;disk:4096;ports:[31000-31009]").await?;
    let local = cluster("differential-health", 1, |_| {}).await;
    let real = health_killed_task(&mesos.url()).await?;
    assert_eq!((real["healthy"].clone(), real["reason"].clone()), (Json::Bool(false), Json::Null), "real agent: {real}");
    let ours = health_killed_task(&local.url()).await?;
    assert_eq!(ours, real, "local cluster differs from the real agent");
    local.shutdown().await;
    mesos.stop().await;
    Ok(())
}

/// The first UPDATE a scenario gets (its state, reason and source), after subscribing with
/// PARTITION_AWARE and taking the first offer.
async fn first_update_of(url: &str, scenario: &str) -> anyhow::Result<Json> {
    let mut s = Session::subscribe(url, subscribe_call(None, 60.0, &["PARTITION_AWARE"]), Encoding::Json).await?;
    let offers = s.next("OFFERS").await?;
    let offer = offers["offers"]["offers"][0].clone();
    let cpus = serde_json::json!({"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}});
    let mut task = serde_json::json!({
        "name": "t", "task_id": {"value": format!("{scenario}-1")}, "agent_id": offer["agent_id"],
        "resources": [cpus], "command": {"value": "sleep 30"}
    });
    match scenario {
        "kill-unknown" => {
            let code = s
                .call(serde_json::json!({"type": "KILL", "kill": {"task_id": {"value": "nobody"}, "agent_id": offer["agent_id"]}}))
                .await?;
            anyhow::ensure!(code == 202, "KILL answered {code}");
            let u = s.next("UPDATE").await?;
            let st = &u["update"]["status"];
            return Ok(serde_json::json!({"state": st["state"], "reason": st["reason"], "source": st["source"]}));
        }
        "negative-grace" => task["kill_policy"] = serde_json::json!({"grace_period": {"nanoseconds": -1}}),
        "too-many-cpus" => task["resources"] = serde_json::json!([{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1000.0}}]),
        "command-and-executor" => {
            task["executor"] = serde_json::json!({"executor_id": {"value": "e"}, "command": {"value": "sleep 30"}});
        }
        "no-command" => {
            task.as_object_mut().map(|t| t.remove("command"));
        }
        "duplicate-task-id" => {
            let twin = task.clone();
            let code = s
                .call(serde_json::json!({"type": "ACCEPT", "accept": {"offer_ids": [offer["id"]], "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task, twin]}}]}}))
                .await?;
            anyhow::ensure!(code == 202, "ACCEPT answered {code}");
            let u = s.next("UPDATE").await?;
            let st = &u["update"]["status"];
            return Ok(serde_json::json!({"state": st["state"], "reason": st["reason"], "source": st["source"]}));
        }
        "http-check-without-http" => task["health_check"] = serde_json::json!({"type": "HTTP"}),
        "negative-check-interval" => {
            task["health_check"] = serde_json::json!({"type": "COMMAND", "command": {"value": "true"}, "interval_seconds": -1.0});
        }
        "docker-without-docker" => task["container"] = serde_json::json!({"type": "DOCKER"}),
        "executor-without-command" => {
            task.as_object_mut().map(|t| t.remove("command"));
            task["executor"] = serde_json::json!({"executor_id": {"value": "e"}, "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}}]});
        }
        other => anyhow::bail!("no scenario {other}"),
    }
    let code = s
        .call(serde_json::json!({"type": "ACCEPT", "accept": {"offer_ids": [offer["id"]], "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}]}}))
        .await?;
    anyhow::ensure!(code == 202, "ACCEPT answered {code}");
    let u = s.next("UPDATE").await?;
    let st = &u["update"]["status"];
    Ok(serde_json::json!({"state": st["state"], "reason": st["reason"], "source": st["source"]}))
}

#[tokio::test]
async fn differential_invalid_launches_and_a_kill_of_an_unknown_task() -> anyhow::Result<()> {
    let mut mesos = RealMesos::start("differential-invalid", 1, "cpus:2;mem:1024;disk:4096;ports:[31000-31009]").await?;
    let local = cluster("differential-invalid", 1, |_| {}).await;
    let mut differences = Vec::new();
    for scenario in [
        "kill-unknown",
        "negative-grace",
        "too-many-cpus",
        "command-and-executor",
        "no-command",
        "duplicate-task-id",
        "http-check-without-http",
        "negative-check-interval",
        "docker-without-docker",
        "executor-without-command",
    ] {
        let real = first_update_of(&mesos.url(), scenario).await?;
        let ours = first_update_of(&local.url(), scenario).await?;
        eprintln!("{scenario}: real {real}, local {ours}");
        if real != ours {
            differences.push(format!("{scenario}: real master {real}, local cluster {ours}"));
        }
    }
    assert!(differences.is_empty(), "the local cluster differs from the real master:\n{}", differences.join("\n"));
    local.shutdown().await;
    mesos.stop().await;
    Ok(())
}

#[tokio::test]
async fn mesos_health_checks_report_and_replace_on_the_real_agents() -> anyhow::Result<()> {
    use reqwest::Method;
    let mut mesos = RealMesos::start("health", 1, "cpus:2;mem:1024;disk:4096;ports:[31000-31009]").await?;
    let fw = Framework::start(&mesos.url(), &work_dir("real-health"), &[]).await?;
    let check = |cmd: &str| {
        serde_json::json!([{"protocol": "COMMAND", "command": {"value": cmd}, "delaySeconds": 0, "intervalSeconds": 1,
            "timeoutSeconds": 2, "gracePeriodSeconds": 2, "maxConsecutiveFailures": 2}])
    };
    let good =
        serde_json::json!({"id": "/real/good", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16, "instances": 2, "healthChecks": check("true")});
    assert_eq!(fw.request(Method::POST, "/v2/apps", Some(&good)).await?.status, 201);
    fw.wait_until("/v2/apps/real/good", WITHIN, "2 healthy tasks", |j| j["app"]["tasksHealthy"] == 2).await?;

    // A check that always fails: the real agent's executor kills the task after the grace period
    // and two failures, and the scheduler replaces it.
    let bad =
        serde_json::json!({"id": "/real/bad", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16, "instances": 1, "healthChecks": check("false")});
    assert_eq!(fw.request(Method::POST, "/v2/apps", Some(&bad)).await?.status, 201);
    let first =
        fw.wait_until("/v2/apps/real/bad", WITHIN, "a task", |j| j["app"]["tasks"].as_array().is_some_and(|t| !t.is_empty())).await?;
    let first = integration_tests::task_ids(&first);
    fw.wait_until("/v2/apps/real/bad", WITHIN, "the unhealthy task replaced", |j| {
        let now = integration_tests::task_ids(j);
        !now.is_empty() && now.is_disjoint(&first)
    })
    .await?;
    drop(fw);
    mesos.stop().await;
    Ok(())
}

/// A counter or gauge of framework's /metrics/prometheus.
async fn metric(fw: &Framework, name: &str) -> anyhow::Result<f64> {
    let text = fw.get("/metrics/prometheus").await?.text;
    let prefix = format!("{name} ");
    text.lines().find_map(|l| l.strip_prefix(prefix.as_str())).and_then(|v| v.parse().ok()).with_context(|| format!("no {name}"))
}

/// A crash of the real Mesos (master and agents killed at once, then started again): the master
/// recovers its agents from its registry but knows none of their tasks until they re-register,
/// and says nothing about them meanwhile; the agent recovers its checkpointed executors, which
/// ran on. framework subscribes again and asks about its tasks until each has answered (issue
/// 21), and the same tasks run on: none lost, none duplicated.
#[tokio::test]
async fn a_mesos_restart_keeps_every_task_and_reconciliation_completes() -> anyhow::Result<()> {
    let mut mesos = RealMesos::start_persistent("restart", 1, "cpus:2;mem:1024;disk:4096;ports:[31000-31009]", "mesos").await?;
    let fw = Framework::start(&mesos.url(), &work_dir("real-restart"), &[]).await?;
    let app = serde_json::json!({"id": "/kept", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16, "instances": 2});
    assert_eq!(fw.request(reqwest::Method::POST, "/v2/apps", Some(&app)).await?.status, 201);
    let running = |j: &Json| j["app"]["tasks"].as_array().is_some_and(|t| t.len() == 2 && t.iter().all(|t| t["state"] == "TASK_RUNNING"));
    let before = integration_tests::task_ids(&fw.wait_until("/v2/apps/kept", Duration::from_secs(60), "two running tasks", running).await?);
    let subscriptions = metric(&fw, "marathon_mesos_subscriptions_total").await?;
    let rounds = metric(&fw, "marathon_reconciliation_rounds_total").await?;

    mesos.restart(Duration::ZERO).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let resubscribed = metric(&fw, "marathon_mesos_subscriptions_total").await? > subscriptions;
        let reconciled = metric(&fw, "marathon_reconciliation_rounds_total").await? > rounds
            && metric(&fw, "marathon_reconciliation_pending_gauge").await? == 0.0;
        if resubscribed && reconciled {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no completed reconciliation after the restart; log:\n{}",
            mesos.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let after = fw.wait_until("/v2/apps/kept", Duration::from_secs(60), "the tasks running", running).await?;
    assert_eq!(integration_tests::task_ids(&after), before, "the same tasks run on");
    let state: Json = serde_json::from_slice(&reqwest::get(format!("{}/master/state", mesos.url())).await?.bytes().await?)?;
    assert_eq!(integration_tests::alive_in(&state), before, "the master knows exactly these tasks again");
    drop(fw);
    mesos.stop().await;
    Ok(())
}

/// The real agents down for longer than 15 s (issue 21: agents hand executors
/// MESOS_RECOVERY_TIMEOUT=15mins, which an executor reading it as 15 seconds gives up on): a
/// command task (the command executor) and a Docker task (the agent's Docker containerizer and
/// our `mesos-docker-executor` stand-in, which registers over libprocess as Mesos's own does:
/// the Docker containerizer recovers no other kind) run on through the restart under their ids,
/// the container never restarted.
#[tokio::test]
async fn tasks_survive_the_real_agents_down_for_longer_than_15_seconds() -> anyhow::Result<()> {
    integration_tests::docker::ready("nginx")?;
    let mut mesos = RealMesos::start_persistent("long-restart", 1, "cpus:2;mem:1024;disk:4096;ports:[31000-31009]", "docker,mesos").await?;
    let fw = Framework::start(&mesos.url(), &work_dir("real-long-restart"), &[]).await?;
    let cmd = serde_json::json!({"id": "/cmd", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16, "instances": 1});
    assert_eq!(fw.request(reqwest::Method::POST, "/v2/apps", Some(&cmd)).await?.status, 201);
    let web = serde_json::json!({
        "id": "/web", "cmd": "exec nginx -g 'daemon off;'", "cpus": 0.1, "mem": 64, "instances": 1,
        "container": {"type": "DOCKER", "docker": {"image": "framework/nginx:latest"}, "portMappings": [{"containerPort": 80, "hostPort": 0}]},
        "networks": [{"mode": "container/bridge"}]
    });
    assert_eq!(fw.request(reqwest::Method::POST, "/v2/apps", Some(&web)).await?.status, 201);
    let running = |j: &Json| j["app"]["tasks"].as_array().is_some_and(|t| t.len() == 1 && t[0]["state"] == "TASK_RUNNING");
    let web_task =
        integration_tests::task_ids(&fw.wait_until("/v2/apps/web", Duration::from_secs(90), "a running container", running).await?);
    let web_id = web_task.iter().next().cloned().context("the Docker task's id")?;
    let started_at = |id: &str| -> anyhow::Result<String> {
        let name = integration_tests::docker::container_of(id)?.with_context(|| format!("no container for {id}"))?;
        let out = std::process::Command::new("docker").args(["inspect", "-f", "{{.State.StartedAt}}", &name]).output()?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let container_started = started_at(&web_id)?;
    let mut before = integration_tests::task_ids(&fw.wait_until("/v2/apps/cmd", Duration::from_secs(60), "a running task", running).await?);
    before.extend(web_task.iter().cloned());
    mesos.restart(Duration::from_secs(17)).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let state: Json = serde_json::from_slice(&reqwest::get(format!("{}/master/state", mesos.url())).await?.bytes().await?)?;
        let alive = integration_tests::alive_in(&state);
        if alive == before {
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the task {before:?} did not come back; master has {alive:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut after =
        integration_tests::task_ids(&fw.wait_until("/v2/apps/cmd", Duration::from_secs(60), "the task running", running).await?);
    after.extend(integration_tests::task_ids(
        &fw.wait_until("/v2/apps/web", Duration::from_secs(60), "the container running", running).await?,
    ));
    assert_eq!(after, before, "the same tasks run on");
    assert_eq!(started_at(&web_id)?, container_started, "the same container, never restarted");
    // The recovered executor still serves its task: a kill reaches it and the container goes.
    assert_eq!(fw.request(reqwest::Method::DELETE, "/v2/apps/web", None).await?.status, 200);
    integration_tests::until("the recovered Docker task's container removed", Duration::from_secs(60), || async {
        Ok(integration_tests::docker::container_of(&web_id)?.is_none())
    })
    .await
    .with_context(|| format!("log:\n{}", mesos.log_tail()))?;
    drop(fw);
    mesos.stop().await;
    Ok(())
}
