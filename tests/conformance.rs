//! Conformance of the local Mesos cluster to the v1 scheduler API, driven over HTTP with raw JSON
//! bodies and raw protobuf bytes. The scenarios that need no fault injected into the master run
//! with `mesos()`, so `FRAMEWORK_TEST_MESOS=real` runs the same scenario and the same
//! expectations against the real Mesos 1.11: each is a differential check (issue 20). The rest
//! drive faults or timers only our local cluster has.

use std::time::Duration;

use integration_tests::{Session, TestMesos, WAIT, cluster, mesos, open_stream, post, subscribe_call};
use mesos_local::Fault;
use mesos_proto::codec::Encoding;
use serde_json::{Value as Json, json};

fn sleep_cmd() -> Json {
    json!({"value": "sleep 60", "shell": true})
}

async fn task_state(c: &TestMesos, task_id: &str) -> Option<String> {
    let state = c.state().await.ok()?;
    for fw in state["frameworks"].as_array()? {
        for list in ["tasks", "unreachable_tasks", "completed_tasks"] {
            for t in fw[list].as_array().into_iter().flatten() {
                if t["id"] == task_id {
                    return t["state"].as_str().map(str::to_owned);
                }
            }
        }
    }
    None
}

#[tokio::test]
async fn json_subscribe_launch_ack_kill() {
    let c = mesos("json-lifecycle", 1).await;
    let mut s = Session::subscribe(&c.url(), subscribe_call(None, 3600.0, &[]), Encoding::Json).await.expect("subscribed");
    // Mesos names frameworks `<master id>-NNNN` (the real Mesos's starter took -0000 already).
    let master_id = c.state().await.expect("state")["id"].as_str().expect("master id").to_owned();
    let serial = s.framework_id.strip_prefix(&format!("{master_id}-")).unwrap_or_default();
    assert!(serial.len() == 4 && serial.bytes().all(|b| b.is_ascii_digit()), "Mesos-style framework id: {}", s.framework_id);
    let (task, agent, offer) = s.launch("sleeper", sleep_cmd(), json!({})).await.expect("launched");
    assert_eq!(offer["hostname"].as_str(), Some(c.agent_hostname().await.expect("hostname").as_str()));
    assert!(offer["resources"].as_array().is_some_and(|r| r.iter().any(|r| r["name"] == "ports" && r["type"] == "RANGES")));
    let starting = s.wait_state(&task, "TASK_STARTING").await.expect("starting");
    assert_eq!(starting["source"], "SOURCE_EXECUTOR");
    assert_eq!(starting["agent_id"]["value"], agent.as_str());
    let running = s.wait_state(&task, "TASK_RUNNING").await.expect("running");
    assert_eq!(base64_len(&running["uuid"]), 16, "updates carry a 16-byte uuid");
    assert_eq!(task_state(&c, &task).await.as_deref(), Some("TASK_RUNNING"));
    assert_eq!(s.call(json!({"type": "KILL", "kill": {"task_id": {"value": task}}})).await.expect("kill"), 202);
    let killed = s.wait_state(&task, "TASK_KILLED").await.expect("killed");
    assert_eq!(killed["source"], "SOURCE_EXECUTOR");
    // Once the terminal update is acknowledged the master files the task as completed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let state = c.state().await.expect("state");
    assert!(
        state["frameworks"][0]["completed_tasks"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["id"] == task.as_str() && t["state"] == "TASK_KILLED")),
        "{state}"
    );
    c.shutdown().await;
}

fn base64_len(v: &Json) -> usize {
    use base64::Engine as _;
    v.as_str().and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok()).map_or(0, |b| b.len())
}

#[tokio::test]
async fn protobuf_http_server_task_on_offered_port_with_health_check() {
    let c = mesos("proto-http", 1).await;
    let mut s = Session::subscribe(&c.url(), subscribe_call(None, 3600.0, &[]), Encoding::Protobuf).await.expect("subscribed");
    let offers = s.next("OFFERS").await.expect("offers");
    let offer = offers["offers"]["offers"][0].clone();
    let range = offer["resources"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["name"] == "ports"))
        .map(|r| r["ranges"]["range"][0].clone())
        .expect("ports offered");
    let port = range["begin"].as_u64().expect("port");
    let task_id = "web.1";
    let task = json!({
        "name": "web",
        "task_id": {"value": task_id},
        "agent_id": offer["agent_id"],
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 64}},
            {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": port, "end": port}]}}
        ],
        "command": {"value": "exec python3 -m http.server $PORT0 --bind 127.0.0.1", "environment": {"variables": [{"name": "PORT0", "value": port.to_string()}]}},
        "health_check": {"type": "HTTP", "http": {"port": port, "path": "/"}, "delay_seconds": 0, "interval_seconds": 0.5, "grace_period_seconds": 30, "timeout_seconds": 2}
    });
    let code = s.call(json!({"type": "ACCEPT", "accept": {"offer_ids": [offer["id"]], "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}]}})).await.expect("accept");
    assert_eq!(code, 202);
    s.wait_state(task_id, "TASK_RUNNING").await.expect("running");
    // The health check result arrives as a RUNNING update with healthy = true.
    loop {
        let st = s.wait_state(task_id, "TASK_RUNNING").await.expect("health update");
        if st["healthy"] == true {
            assert_eq!(st["reason"], "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED");
            break;
        }
    }
    let body = reqwest::get(format!("http://127.0.0.1:{port}/")).await.expect("task answers on its port");
    assert_eq!(body.status().as_u16(), 200);
    s.call(json!({"type": "KILL", "kill": {"task_id": {"value": task_id}}})).await.expect("kill");
    s.wait_state(task_id, "TASK_KILLED").await.expect("killed");
    assert!(reqwest::get(format!("http://127.0.0.1:{port}/")).await.is_err(), "the process is gone after the kill");
    c.shutdown().await;
}

#[tokio::test]
async fn command_exit_codes_map_to_finished_and_failed() {
    let c = mesos("exit-codes", 1).await;
    let mut s = Session::subscribe(&c.url(), subscribe_call(None, 3600.0, &[]), Encoding::Json).await.expect("subscribed");
    let (ok, _, _) = s.launch("ok", json!({"value": "true"}), json!({})).await.expect("launch");
    s.wait_state(&ok, "TASK_FINISHED").await.expect("finished");
    let (bad, _, _) =
        s.launch("bad", json!({"value": "/bin/sh", "shell": false, "arguments": ["sh", "-c", "exit 3"]}), json!({})).await.expect("launch");
    let failed = s.wait_state(&bad, "TASK_FAILED").await.expect("failed");
    assert!(failed["message"].as_str().is_some_and(|m| m.contains("status 3")), "{failed}");
    c.shutdown().await;
}

#[tokio::test]
async fn decline_filters_are_honoured_and_revive_clears_them() {
    let c = mesos("decline", 1).await;
    let mut s = Session::subscribe(&c.url(), subscribe_call(None, 3600.0, &[]), Encoding::Json).await.expect("subscribed");
    let offer = s.next("OFFERS").await.expect("offer")["offers"]["offers"][0].clone();
    s.call(json!({"type": "DECLINE", "decline": {"offer_ids": [offer["id"]], "filters": {"refuse_seconds": 2.0}}})).await.expect("decline");
    assert!(!s.sees_within("OFFERS", Duration::from_millis(1200)).await, "the agent is filtered while refuse_seconds lasts");
    let again = s.next("OFFERS").await.expect("offers come back after refuse_seconds");
    let again_id = again["offers"]["offers"][0]["id"].clone();
    s.call(json!({"type": "DECLINE", "decline": {"offer_ids": [again_id], "filters": {"refuse_seconds": 3600}}})).await.expect("decline");
    s.call(json!({"type": "SUPPRESS", "suppress": {}})).await.expect("suppress");
    assert!(!s.sees_within("OFFERS", Duration::from_millis(800)).await, "no offers while suppressed");
    assert_eq!(s.call(json!({"type": "REVIVE"})).await.expect("revive"), 202);
    assert!(s.sees_within("OFFERS", WAIT).await, "REVIVE clears filters and suppression");
    c.shutdown().await;
}

#[tokio::test]
async fn bad_calls_get_mesos_status_codes() {
    let c = mesos("status-codes", 1).await;
    let url = c.url();
    let http = reqwest::Client::new();
    let s = Session::subscribe(&url, subscribe_call(None, 3600.0, &[]), Encoding::Json).await.expect("subscribed");
    let revive = json!({"type": "REVIVE", "framework_id": {"value": s.framework_id}});
    // No Mesos-Stream-Id, or a wrong one: 400.
    assert_eq!(post(&http, &url, &revive, Encoding::Json, None).await.expect("post").0, 400);
    assert_eq!(post(&http, &url, &revive, Encoding::Json, Some("not-the-stream")).await.expect("post").0, 400);
    // SUBSCRIBE must not carry a stream id.
    assert_eq!(post(&http, &url, &subscribe_call(None, 1.0, &[]), Encoding::Json, Some(&s.stream_id)).await.expect("post").0, 400);
    // Unknown framework: 400.
    let other = json!({"type": "REVIVE", "framework_id": {"value": "no-such-framework"}});
    assert_eq!(post(&http, &url, &other, Encoding::Json, Some(&s.stream_id)).await.expect("post").0, 400);
    // Media types and methods.
    let api = format!("{url}/api/v1/scheduler");
    assert_eq!(http.post(&api).body("{}").send().await.expect("send").status().as_u16(), 400, "missing Content-Type");
    assert_eq!(http.post(&api).header("Content-Type", "text/plain").body("{}").send().await.expect("send").status().as_u16(), 415);
    assert_eq!(http.get(&api).send().await.expect("send").status().as_u16(), 405);
    let sub = serde_json::to_vec(&subscribe_call(None, 1.0, &[])).expect("json");
    let resp =
        http.post(&api).header("Content-Type", "application/json").header("Accept", "text/html").body(sub).send().await.expect("send");
    assert_eq!(resp.status().as_u16(), 406);
    // Malformed bodies: 400, never a panic.
    for body in [&b"{"[..], b"[]", b"{\"type\":7}", b"\xff\xfe", b"{\"type\":\"SUBSCRIBE\",\"subscribe\":{}}"] {
        let resp = http.post(&api).header("Content-Type", "application/json").body(body.to_vec()).send().await.expect("send");
        assert_eq!(resp.status().as_u16(), 400, "{:?}", String::from_utf8_lossy(body));
    }
    let resp = http.post(&api).header("Content-Type", "application/x-protobuf").body(vec![0x1a, 0x05, 0x0a]).send().await.expect("send");
    assert_eq!(resp.status().as_u16(), 400, "truncated protobuf");
    // A framework whose stream went away (but within failover_timeout) gets 403.
    let fid = s.framework_id.clone();
    let stream = s.stream_id.clone();
    drop(s);
    let revive = json!({"type": "REVIVE", "framework_id": {"value": fid}});
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut code = 0;
    while tokio::time::Instant::now() < deadline {
        code = post(&http, &url, &revive, Encoding::Json, Some(&stream)).await.expect("post").0;
        if code != 202 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(code, 403, "a disconnected framework's calls are forbidden");
    // Role rules: roles without MULTI_ROLE is refused with an ERROR event.
    let mut call = subscribe_call(None, 1.0, &[]);
    call["subscribe"]["framework_info"]["roles"] = json!(["web"]);
    let err = Session::subscribe(&url, call, Encoding::Json).await.err().expect("refused");
    assert!(err.to_string().contains("MULTI_ROLE"), "{err}");
    c.shutdown().await;
}

#[tokio::test]
async fn failover_within_timeout_keeps_tasks_and_old_stream_gets_error() {
    let c = mesos("failover-in", 1).await;
    let mut s = Session::subscribe(&c.url(), subscribe_call(None, 3600.0, &[]), Encoding::Json).await.expect("subscribed");
    let (task, agent, _) = s.launch("keeper", sleep_cmd(), json!({})).await.expect("launch");
    s.wait_state(&task, "TASK_RUNNING").await.expect("running");
    let fid = s.framework_id.clone();
    // A second subscription with the same id takes over; the first stream gets ERROR.
    let s2 = Session::subscribe(&c.url(), subscribe_call(Some(&fid), 3600.0, &[]), Encoding::Json).await.expect("re-subscribed");
    assert_eq!(s2.framework_id, fid);
    assert_ne!(s2.stream_id, s.stream_id, "a new subscription gets a new stream id");
    let err = s.next("ERROR").await.expect("old stream told");
    assert_eq!(err["error"]["message"], "Framework failed over");
    // The old stream id is stale now.
    assert_eq!(s.call(json!({"type": "REVIVE"})).await.expect("post"), 400);
    drop(s);
    // Drop the new stream too, and come back within the timeout: the task survives.
    drop(s2);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut s3 = Session::subscribe(&c.url(), subscribe_call(Some(&fid), 3600.0, &[]), Encoding::Json).await.expect("re-subscribed");
    s3.call(json!({"type": "RECONCILE", "reconcile": {"tasks": [{"task_id": {"value": task}, "agent_id": {"value": agent}}]}}))
        .await
        .expect("reconcile");
    let st = s3.next("UPDATE").await.expect("reconciliation")["update"]["status"].clone();
    assert_eq!(st["state"], "TASK_RUNNING");
    assert_eq!(st["reason"], "REASON_RECONCILIATION");
    assert!(st.get("uuid").is_none(), "reconciliation updates carry no uuid");
    c.shutdown().await;
}

#[tokio::test]
async fn failover_timeout_removes_the_framework_and_kills_its_tasks() {
    let c = mesos("failover-out", 1).await;
    let mut s = Session::subscribe(&c.url(), subscribe_call(None, 1.0, &[]), Encoding::Json).await.expect("subscribed");
    let (task, _, _) = s.launch("doomed", sleep_cmd(), json!({})).await.expect("launch");
    s.wait_state(&task, "TASK_RUNNING").await.expect("running");
    let fid = s.framework_id.clone();
    drop(s);
    // Wait until the master has noticed the disconnection and the timeout has run out.
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        let state = c.state().await.expect("state");
        if state["completed_frameworks"].as_array().is_some_and(|f| f.iter().any(|f| f["id"] == fid.as_str())) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(task_state(&c, &task).await, None, "the removed framework's tasks are gone from the master");
    let err = Session::subscribe(&c.url(), subscribe_call(Some(&fid), 1.0, &[]), Encoding::Json).await.err().expect("refused");
    assert!(err.to_string().contains("Framework has been removed"), "{err}");
    let state = c.state().await.expect("state");
    assert!(state["completed_frameworks"].as_array().is_some_and(|f| f.iter().any(|f| f["id"] == fid.as_str())));
    c.shutdown().await;
}

#[tokio::test]
async fn reconciliation_explicit_and_implicit() {
    let c = mesos("reconcile", 1).await;
    let mut s = Session::subscribe(&c.url(), subscribe_call(None, 3600.0, &["PARTITION_AWARE"]), Encoding::Json).await.expect("subscribed");
    let (task, agent, _) = s.launch("r", sleep_cmd(), json!({})).await.expect("launch");
    s.wait_state(&task, "TASK_RUNNING").await.expect("running");
    s.call(json!({"type": "RECONCILE", "reconcile": {"tasks": [{"task_id": {"value": "ghost"}, "agent_id": {"value": agent}}]}}))
        .await
        .expect("reconcile");
    let st = s.next("UPDATE").await.expect("reply")["update"]["status"].clone();
    assert_eq!((st["task_id"]["value"].as_str(), st["state"].as_str()), (Some("ghost"), Some("TASK_GONE")));
    s.call(
        json!({"type": "RECONCILE", "reconcile": {"tasks": [{"task_id": {"value": "ghost2"}, "agent_id": {"value": "no-such-agent"}}]}}),
    )
    .await
    .expect("reconcile");
    let st = s.next("UPDATE").await.expect("reply")["update"]["status"].clone();
    assert_eq!(st["state"], "TASK_UNKNOWN");
    s.call(json!({"type": "RECONCILE", "reconcile": {}})).await.expect("implicit");
    let st = s.next("UPDATE").await.expect("reply")["update"]["status"].clone();
    assert_eq!((st["task_id"]["value"].as_str(), st["state"].as_str()), (Some(task.as_str()), Some("TASK_RUNNING")));
    assert_eq!(st["source"], "SOURCE_MASTER");
    c.shutdown().await;
}

#[tokio::test]
async fn invalid_launches_are_refused_with_mesos_updates() {
    let c = mesos("invalid", 1).await;
    let mut s = Session::subscribe(&c.url(), subscribe_call(None, 3600.0, &[]), Encoding::Json).await.expect("subscribed");
    let offer = s.next("OFFERS").await.expect("offer")["offers"]["offers"][0].clone();
    let task = |id: &str, cpus: f64| {
        json!({"name": id, "task_id": {"value": id}, "agent_id": offer["agent_id"],
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}}], "command": {"value": "sleep 5"}})
    };
    // Unknown offer: TASK_LOST with REASON_INVALID_OFFERS from the master, no uuid.
    s.call(json!({"type": "ACCEPT", "accept": {"offer_ids": [{"value": "no-such-offer"}], "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task("lost", 0.1)]}}]}})).await.expect("accept");
    let st = s.next("UPDATE").await.expect("update")["update"]["status"].clone();
    assert_eq!(
        (st["state"].as_str(), st["reason"].as_str(), st["source"].as_str()),
        (Some("TASK_LOST"), Some("REASON_INVALID_OFFERS"), Some("SOURCE_MASTER"))
    );
    assert!(st.get("uuid").is_none());
    // More cpus than offered, and a task with both command and executor: TASK_ERROR.
    let mut both = task("both", 0.1);
    both["executor"] = json!({"executor_id": {"value": "e"}, "command": {"value": "true"}});
    s.call(json!({"type": "ACCEPT", "accept": {"offer_ids": [offer["id"]], "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task("greedy", 64.0), both]}}]}})).await.expect("accept");
    for _ in 0..2 {
        let st = s.next("UPDATE").await.expect("update")["update"]["status"].clone();
        assert_eq!((st["state"].as_str(), st["reason"].as_str()), (Some("TASK_ERROR"), Some("REASON_TASK_INVALID")), "{st}");
    }
    // The offer is used up now: accepting it again is an invalid offer.
    s.call(json!({"type": "ACCEPT", "accept": {"offer_ids": [offer["id"]], "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task("late", 0.1)]}}]}})).await.expect("accept");
    let st = s.next("UPDATE").await.expect("update")["update"]["status"].clone();
    assert_eq!(st["reason"], "REASON_INVALID_OFFERS");
    c.shutdown().await;
}

#[tokio::test]
async fn unacknowledged_updates_are_resent_one_at_a_time() {
    let c = cluster("resend", 1, |cfg| cfg.update_retry = Duration::from_millis(300)).await;
    let mut s = Session::subscribe(&c.url(), subscribe_call(None, 3600.0, &[]), Encoding::Json).await.expect("subscribed");
    let (task, _, _) = s.launch("slowack", sleep_cmd(), json!({})).await.expect("launch");
    let first = s.next("UPDATE").await.expect("first")["update"]["status"].clone();
    assert_eq!(first["state"], "TASK_STARTING");
    // Not acknowledged: the same update (same uuid) comes again, and RUNNING waits behind it.
    let again = s.next("UPDATE").await.expect("resent")["update"]["status"].clone();
    assert_eq!(again["uuid"], first["uuid"]);
    assert_eq!(again["state"], "TASK_STARTING");
    s.ack(&again).await.expect("ack");
    s.wait_state(&task, "TASK_RUNNING").await.expect("running after ack");
    c.shutdown().await;
}

#[tokio::test]
async fn agent_partition_and_removal() {
    let c = cluster("agent-loss", 2, |_| {}).await;
    let mut s = Session::subscribe(&c.url(), subscribe_call(None, 3600.0, &["PARTITION_AWARE"]), Encoding::Json).await.expect("subscribed");
    let (task, agent, _) = s.launch("p", sleep_cmd(), json!({})).await.expect("launch");
    s.wait_state(&task, "TASK_RUNNING").await.expect("running");
    c.fault(Fault::PartitionAgent(agent.clone())).await.expect("partition");
    let st = s.wait_state(&task, "TASK_UNREACHABLE").await.expect("unreachable");
    assert!(st["unreachable_time"]["nanoseconds"].is_number());
    assert!(s.next("FAILURE").await.expect("failure")["failure"]["agent_id"]["value"] == agent.as_str());
    c.fault(Fault::HealAgent(agent.clone())).await.expect("heal");
    c.fault(Fault::RemoveAgent(agent.clone())).await.expect("remove");
    s.wait_state(&task, "TASK_GONE").await.expect("gone");
    let state = c.state().await.expect("state");
    assert!(state["slaves"].as_array().is_some_and(|a| a.iter().any(|a| a["id"] == agent.as_str() && a["active"] == false)));
    c.shutdown().await;
}

#[tokio::test]
async fn teardown_kills_tasks_and_retires_the_framework_id() {
    let c = mesos("teardown", 1).await;
    let mut s = Session::subscribe(&c.url(), subscribe_call(None, 3600.0, &[]), Encoding::Json).await.expect("subscribed");
    let (task, _, _) = s.launch("t", json!({"value": "sleep 60"}), json!({})).await.expect("launch");
    s.wait_state(&task, "TASK_RUNNING").await.expect("running");
    assert_eq!(s.call(json!({"type": "TEARDOWN"})).await.expect("teardown"), 202);
    let fid = s.framework_id.clone();
    let err = Session::subscribe(&c.url(), subscribe_call(Some(&fid), 3600.0, &[]), Encoding::Json).await.err().expect("refused");
    assert!(err.to_string().contains("Framework has been removed"));
    // Raw stream open still answers 200 with an ERROR event first (Mesos reports it on the stream).
    let (_, mut events, _reader) = open_stream(&c.url(), &subscribe_call(Some(&fid), 1.0, &[]), Encoding::Json).await.expect("stream");
    let first = tokio::time::timeout(WAIT, events.recv()).await.expect("in time").expect("event");
    assert_eq!(first["type"], "ERROR");
    c.shutdown().await;
}

fn executor_info(id: &str, log: &std::path::Path) -> Json {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/echo_executor.py");
    json!({
        "executor_id": {"value": id},
        "type": "CUSTOM",
        "command": {"value": format!("exec python3 {script}"), "environment": {"variables": [{"name": "EXECUTOR_EVENT_LOG", "value": log.display().to_string()}]}},
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.05}}, {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}},
            {"name": "disk", "type": "SCALAR", "scalar": {"value": 8}}]
    })
}

fn logged_events(log: &std::path::Path) -> Vec<Json> {
    std::fs::read_to_string(log).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

#[tokio::test]
async fn custom_executor_over_the_executor_api() {
    let c = mesos("executor", 1).await;
    let log = integration_tests::work_dir("executor-log").join("events.jsonl");
    let mut s = Session::subscribe(&c.url(), subscribe_call(None, 3600.0, &[]), Encoding::Json).await.expect("subscribed");
    let (task, _, _) =
        s.launch("on-exec", Json::Null, json!({"command": null, "executor": executor_info("echo-exec", &log)})).await.expect("launch");
    let starting = s.wait_state(&task, "TASK_STARTING").await.expect("starting from the executor");
    assert_eq!(starting["source"], "SOURCE_EXECUTOR");
    assert_eq!(starting["executor_id"]["value"], "echo-exec");
    s.wait_state(&task, "TASK_RUNNING").await.expect("running");
    s.call(json!({"type": "KILL", "kill": {"task_id": {"value": task}}})).await.expect("kill");
    s.wait_state(&task, "TASK_KILLED").await.expect("killed by the executor");
    // The executor saw SUBSCRIBED (with framework and agent info), LAUNCH, KILL and the acknowledgements.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = logged_events(&log);
    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(types.first(), Some(&"SUBSCRIBED"), "{types:?}");
    assert!(events[0]["subscribed"]["framework_info"]["id"]["value"] == s.framework_id.as_str());
    assert!(events[0]["subscribed"]["agent_info"]["hostname"].is_string());
    assert!(types.contains(&"LAUNCH") && types.contains(&"KILL"), "{types:?}");
    assert!(types.iter().filter(|t| **t == "ACKNOWLEDGED").count() >= 2, "{types:?}");
    // SHUTDOWN: the executor exits and the scheduler hears FAILURE for it.
    let agent = starting["agent_id"].clone();
    s.call(json!({"type": "SHUTDOWN", "shutdown": {"executor_id": {"value": "echo-exec"}, "agent_id": agent}})).await.expect("shutdown");
    let failure = s.next("FAILURE").await.expect("executor terminated");
    assert_eq!(failure["failure"]["executor_id"]["value"], "echo-exec");
    c.shutdown().await;
}

#[tokio::test]
async fn launch_group_runs_every_task_on_the_executor() {
    let c = mesos("group", 1).await;
    let log = integration_tests::work_dir("group-log").join("events.jsonl");
    let mut s = Session::subscribe(&c.url(), subscribe_call(None, 3600.0, &[]), Encoding::Json).await.expect("subscribed");
    // An ACCEPT of `offer` launching tasks `ids` as one group on `executor`.
    let accept_group = |offer: &Json, executor: &Json, ids: [&str; 2]| {
        let tasks: Vec<Json> = ids
            .iter()
            .map(|id| {
                json!({"name": id, "task_id": {"value": id}, "agent_id": offer["agent_id"],
                "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}}, {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}]})
            })
            .collect();
        let op = json!({"type": "LAUNCH_GROUP", "launch_group": {"executor": executor, "task_group": {"tasks": tasks}}});
        json!({"type": "ACCEPT", "accept": {"offer_ids": [offer["id"]], "operations": [op], "filters": {"refuse_seconds": 0}}})
    };
    let offer = s.next("OFFERS").await.expect("offer")["offers"]["offers"][0].clone();
    // Mesos's master fills in the executor's framework id for LAUNCH, not for LAUNCH_GROUP:
    // without it every task of the group is refused, and nothing is acknowledged (the master's
    // updates carry no uuid).
    let mut executor = executor_info("group-exec", &log);
    assert_eq!(s.call(accept_group(&offer, &executor, ["g1", "g2"])).await.expect("accept"), 202);
    for id in ["g1", "g2"] {
        let st = s.wait_state(id, "TASK_ERROR").await.expect("refused");
        assert_eq!(st["reason"], "REASON_TASK_GROUP_INVALID", "{st}");
        assert_eq!(st["message"], "'ExecutorInfo.framework_id' must be set", "{st}");
        assert!(st.get("uuid").is_none(), "{st}");
    }
    executor["framework_id"] = json!({"value": s.framework_id});
    let offer = s.next("OFFERS").await.expect("the resources offered again")["offers"]["offers"][0].clone();
    assert_eq!(s.call(accept_group(&offer, &executor, ["g3", "g4"])).await.expect("accept"), 202);
    let mut running = std::collections::BTreeSet::new();
    while running.len() < 2 {
        let ev = s.next("UPDATE").await.expect("update");
        let st = &ev["update"]["status"];
        assert_eq!(st["state"], "TASK_RUNNING", "{st}");
        s.ack(st).await.expect("ack");
        running.insert(st["task_id"]["value"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(running.into_iter().collect::<Vec<_>>(), vec!["g3".to_owned(), "g4".to_owned()]);
    c.shutdown().await;
}

#[tokio::test]
async fn held_status_updates_are_delivered_when_delivery_resumes() {
    let c = cluster("hold", 1, |_| {}).await;
    let agent = c.agent_ids()[0].clone();
    let mut s = Session::subscribe(&c.url(), subscribe_call(None, 3600.0, &[]), Encoding::Json).await.expect("subscribed");
    c.fault(Fault::UpdateDelivery(agent.clone(), mesos_local::UpdateDelivery::Hold)).await.expect("hold");
    let (task, _, _) = s.launch("held", sleep_cmd(), json!({})).await.expect("launch");
    assert!(!s.sees_within("UPDATE", Duration::from_millis(800)).await, "no update while delivery is held");
    c.fault(Fault::UpdateDelivery(agent, mesos_local::UpdateDelivery::Normal)).await.expect("resume");
    s.wait_state(&task, "TASK_STARTING").await.expect("held update arrives");
    s.wait_state(&task, "TASK_RUNNING").await.expect("then the next");
    c.shutdown().await;
}

#[tokio::test]
async fn simulated_agents_run_tasks_without_processes() {
    let c = cluster("simulated", 3, |cfg| cfg.simulated = true).await;
    let mut s = Session::subscribe(&c.url(), subscribe_call(None, 3600.0, &[]), Encoding::Json).await.expect("subscribed");
    let (task, _, _) = s.launch("sim", json!({"value": "/no/such/binary"}), json!({})).await.expect("launch");
    s.wait_state(&task, "TASK_RUNNING").await.expect("running without a process");
    s.call(json!({"type": "KILL", "kill": {"task_id": {"value": task}}})).await.expect("kill");
    s.wait_state(&task, "TASK_KILLED").await.expect("killed");
    c.shutdown().await;
}

#[tokio::test]
async fn agent_restart_keeps_tasks_and_executors_resubscribe() {
    let c = cluster("restart", 1, |_| {}).await;
    let agent = c.agent_ids()[0].clone();
    let log = integration_tests::work_dir("restart-log").join("events.jsonl");
    let mut s = Session::subscribe(&c.url(), subscribe_call(None, 3600.0, &[]), Encoding::Json).await.expect("subscribed");
    let (on_exec, _, _) =
        s.launch("on-exec", Json::Null, json!({"command": null, "executor": executor_info("restart-exec", &log)})).await.expect("launch");
    s.wait_state(&on_exec, "TASK_RUNNING").await.expect("executor task running");
    let (cmd, _, _) = s.launch("cmd", sleep_cmd(), json!({})).await.expect("launch");
    s.wait_state(&cmd, "TASK_RUNNING").await.expect("command task running");

    c.fault(Fault::RestartAgent(agent, Duration::from_millis(800))).await.expect("restart");
    // Both tasks survive: after recovery the executor re-subscribes and kills reach both.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.call(json!({"type": "KILL", "kill": {"task_id": {"value": on_exec}}})).await.expect("kill");
    s.wait_state(&on_exec, "TASK_KILLED").await.expect("killed by the re-subscribed executor");
    s.call(json!({"type": "KILL", "kill": {"task_id": {"value": cmd}}})).await.expect("kill");
    s.wait_state(&cmd, "TASK_KILLED").await.expect("command task killed");
    let subscribed = logged_events(&log).iter().filter(|e| e["type"] == "SUBSCRIBED").count();
    assert_eq!(subscribed, 2, "the executor subscribed again after the restart");
    c.shutdown().await;
}

/// Every offer a session gets within `window`.
async fn offers_within(s: &mut Session, window: Duration) -> Vec<Json> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + window;
    while tokio::time::Instant::now() < deadline {
        if let Some(ev) = s.next_any(Duration::from_millis(500)).await
            && ev["type"] == "OFFERS"
        {
            seen.extend(ev["offers"]["offers"].as_array().into_iter().flatten().cloned());
        }
    }
    seen
}

/// The first offer of `agent` a session gets.
async fn offer_of(s: &mut Session, agent: &str) -> Json {
    loop {
        let ev = s.next("OFFERS").await.expect("offers");
        if let Some(o) = ev["offers"]["offers"].as_array().into_iter().flatten().find(|o| o["agent_id"]["value"] == agent) {
            return o.clone();
        }
    }
}

/// As Mesos with its default `--filter_gpu_resources`: an agent with GPUs is offered only to
/// frameworks with the GPU_RESOURCES capability (the whole agent, not just its GPUs).
#[tokio::test]
async fn gpu_agents_are_offered_only_to_gpu_capable_frameworks() {
    let c = cluster("gpu-filter", 2, |cfg| cfg.agents[1].resources.add(&mesos_local::Resources::new(&[("gpus", 1.0)], &[]))).await;
    let gpu_agent = c.agent_ids()[1].clone();
    let mut plain = Session::subscribe(&c.url(), subscribe_call(None, 3600.0, &["MULTI_ROLE"]), Encoding::Json).await.expect("subscribed");
    let seen: Vec<String> = offers_within(&mut plain, Duration::from_secs(4))
        .await
        .iter()
        .filter_map(|o| o["agent_id"]["value"].as_str().map(str::to_owned))
        .collect();
    assert!(!seen.is_empty(), "the agent without GPUs is offered");
    assert!(!seen.contains(&gpu_agent), "the GPU agent is never offered without GPU_RESOURCES: {seen:?}");

    let mut gpu = Session::subscribe(&c.url(), subscribe_call(None, 3600.0, &["MULTI_ROLE", "GPU_RESOURCES"]), Encoding::Json)
        .await
        .expect("subscribed");
    let offer = offer_of(&mut gpu, &gpu_agent).await;
    let gpus = offer["resources"].as_array().into_iter().flatten().find(|r| r["name"] == "gpus").map(|r| r["scalar"]["value"].clone());
    assert_eq!(gpus, Some(json!(1.0)), "the GPU agent's offer holds its GPU: {offer}");
    c.shutdown().await;
}

/// As Mesos: with a master in a fault domain, an agent in another region is offered only to
/// REGION_AWARE frameworks, and offers carry the agent's domain.
#[tokio::test]
async fn remote_region_agents_are_offered_only_to_region_aware_frameworks() {
    let c = cluster("regions", 2, |cfg| {
        cfg.master_domain = Some(("home".into(), "home-a".into()));
        cfg.agents[0].domain = Some(("home".into(), "home-a".into()));
        cfg.agents[1].domain = Some(("far".into(), "far-a".into()));
    })
    .await;
    let far_agent = c.agent_ids()[1].clone();
    let mut plain = Session::subscribe(&c.url(), subscribe_call(None, 3600.0, &["MULTI_ROLE"]), Encoding::Json).await.expect("subscribed");
    let seen = offers_within(&mut plain, Duration::from_secs(4)).await;
    assert!(!seen.is_empty(), "the home agent is offered");
    assert!(seen.iter().all(|o| o["agent_id"]["value"] != far_agent.as_str()), "no remote agent without REGION_AWARE: {seen:?}");
    assert_eq!(seen[0]["domain"]["fault_domain"]["region"]["name"], "home");

    let mut aware = Session::subscribe(&c.url(), subscribe_call(None, 3600.0, &["MULTI_ROLE", "REGION_AWARE"]), Encoding::Json)
        .await
        .expect("subscribed");
    let offer = offer_of(&mut aware, &far_agent).await;
    assert_eq!(offer["domain"]["fault_domain"]["region"]["name"], "far");
    c.shutdown().await;
}
