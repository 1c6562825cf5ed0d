//! Marathon's group and app contract where it can lose data: group rollback, updates that leave
//! out `apps` or `groups`, concurrent creations, stored groups and versions, app/group id
//! clashes, and the routes clients call with a trailing slash. Each case runs `framework` on the
//! local Mesos cluster (or, with FRAMEWORK_TEST_MESOS=real, the real Mesos) and talks to it over HTTP as a Marathon client would.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Context as _;
use integration_tests::framework::Framework;
use integration_tests::{TestMesos, mesos, work_dir};
use reqwest::Method;
use serde_json::{Value as Json, json};

const DEPLOY: Duration = Duration::from_secs(40);

async fn start(name: &str, flags: &[&str]) -> anyhow::Result<(TestMesos, Framework, std::path::PathBuf)> {
    let c = mesos(name, 1).await;
    let dir = work_dir(name);
    let fw = Framework::start(&c.url(), &dir, flags).await?;
    Ok((c, fw, dir))
}

/// Stops everything a test started and removes its data directory.
async fn stop(cluster: TestMesos, fw: Framework, dir: std::path::PathBuf) {
    drop(fw);
    cluster.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// The ids of the apps within a group's JSON, at any depth.
fn app_ids(group: &Json) -> BTreeSet<String> {
    let mut out: BTreeSet<String> =
        group["apps"].as_array().into_iter().flatten().filter_map(|a| a["id"].as_str().map(str::to_string)).collect();
    for g in group["groups"].as_array().into_iter().flatten() {
        out.extend(app_ids(g));
    }
    out
}

fn app(id: &str, cmd: &str) -> Json {
    json!({"id": id, "cmd": cmd, "cpus": 0.01, "mem": 8, "instances": 1})
}

/// Waits until no deployment runs.
async fn idle(fw: &Framework) -> anyhow::Result<()> {
    fw.wait_until("/v2/deployments", DEPLOY, "no deployment", |j| j.as_array().is_some_and(Vec::is_empty)).await?;
    Ok(())
}

#[tokio::test]
async fn group_rollback_restores_the_version_instead_of_deleting_the_group() -> anyhow::Result<()> {
    let (cluster, fw, dir) = start("group-rollback", &[]).await?;
    let v1 = fw
        .request(
            Method::PUT,
            "/v2/groups/h",
            Some(&json!({"apps": [app("web", "sleep 1001")], "groups": [{"id": "db", "apps": [app("redis", "sleep 1002")]}]})),
        )
        .await?;
    assert_eq!(v1.status, 200, "{}", v1.text);
    let v1 = v1.json["version"].as_str().context("version")?.to_string();
    idle(&fw).await?;
    let r = fw
        .request(Method::PUT, "/v2/groups/h", Some(&json!({"apps": [app("web", "sleep 2001"), app("extra", "sleep 2002")], "groups": []})))
        .await?;
    assert_eq!(r.status, 200, "{}", r.text);
    idle(&fw).await?;
    let now = fw.get("/v2/groups/h").await?.json;
    assert_eq!(app_ids(&now), BTreeSet::from(["/h/extra".to_string(), "/h/web".to_string()]));

    // The group's versions list v1, and v1 is the group as it was then.
    let versions = fw.get("/v2/groups/h/versions").await?;
    assert_eq!(versions.status, 200, "{}", versions.text);
    assert!(versions.json.as_array().is_some_and(|v| v.iter().any(|x| x == v1.as_str())), "{v1} in {}", versions.text);
    let stored = fw.get(&format!("/v2/groups/h/versions/{v1}")).await?;
    assert_eq!(stored.status, 200, "{}", stored.text);
    assert_eq!(app_ids(&stored.json), BTreeSet::from(["/h/db/redis".to_string(), "/h/web".to_string()]));

    // Marathon's rollback: `{"version": v1}` makes the group what it was at v1.
    let r = fw.request(Method::PUT, "/v2/groups/h", Some(&json!({"version": v1}))).await?;
    assert_eq!(r.status, 200, "{}", r.text);
    idle(&fw).await?;
    let back = fw.get("/v2/groups/h").await?.json;
    assert_eq!(app_ids(&back), BTreeSet::from(["/h/db/redis".to_string(), "/h/web".to_string()]), "{back}");
    let web = fw.get("/v2/apps/h/web").await?.json;
    assert_eq!(web["app"]["cmd"], "sleep 1001");
    fw.wait_until("/v2/apps/h/db/redis", DEPLOY, "redis running again", |j| j["app"]["tasksRunning"] == 1).await?;

    // An unknown version is refused and changes nothing.
    let r = fw.request(Method::PUT, "/v2/groups/h", Some(&json!({"version": "2001-01-01T00:00:00.000Z"}))).await?;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.json["message"].as_str().is_some_and(|m| m.contains("not available in version")), "{}", r.text);
    assert_eq!(app_ids(&fw.get("/v2/groups/h").await?.json).len(), 2);
    stop(cluster, fw, dir).await;
    Ok(())
}

#[tokio::test]
async fn group_updates_keep_what_the_body_leaves_out() -> anyhow::Result<()> {
    let (cluster, fw, dir) = start("group-absent-keys", &[]).await?;
    let r = fw
        .request(
            Method::POST,
            "/v2/groups",
            Some(&json!({"id": "/g", "apps": [app("a", "sleep 1001")], "groups": [{"id": "sub", "apps": [app("b", "sleep 1002")]}]})),
        )
        .await?;
    assert_eq!(r.status, 201, "{}", r.text);
    idle(&fw).await?;

    // `apps` given, `groups` absent: the subgroup and its app stay.
    let r = fw.request(Method::PUT, "/v2/groups/g", Some(&json!({"apps": [app("a", "sleep 1003")]}))).await?;
    assert_eq!(r.status, 200, "{}", r.text);
    idle(&fw).await?;
    let g = fw.get("/v2/groups/g").await?.json;
    assert_eq!(app_ids(&g), BTreeSet::from(["/g/a".to_string(), "/g/sub/b".to_string()]), "{g}");
    assert_eq!(fw.get("/v2/apps/g/a").await?.json["app"]["cmd"], "sleep 1003");

    // Only `dependencies`: no app changes.
    let before = fw.get("/v2/apps/g/sub/b").await?.json["app"]["version"].clone();
    let r = fw.request(Method::PUT, "/v2/groups/g", Some(&json!({"dependencies": ["/other"]}))).await?;
    assert_eq!(r.status, 200, "{}", r.text);
    let g = fw.get("/v2/groups/g").await?.json;
    assert_eq!(g["dependencies"], json!(["/other"]));
    assert_eq!(app_ids(&g).len(), 2);
    assert_eq!(fw.get("/v2/apps/g/sub/b").await?.json["app"]["version"], before);

    // `groups: []` given: the subgroup goes, with its app.
    idle(&fw).await?;
    let r = fw.request(Method::PUT, "/v2/groups/g", Some(&json!({"groups": []}))).await?;
    assert_eq!(r.status, 200, "{}", r.text);
    idle(&fw).await?;
    assert_eq!(app_ids(&fw.get("/v2/groups/g").await?.json), BTreeSet::from(["/g/a".to_string()]));
    assert_eq!(fw.get("/v2/groups/g/sub").await?.status, 404);

    // scaleBy and a dry run touch only the group's own apps.
    let r = fw.request(Method::PUT, "/v2/groups/g?dryRun=true", Some(&json!({"apps": []}))).await?;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("StopApplication"), "{}", r.text);
    assert_eq!(fw.get("/v2/apps/g/a").await?.status, 200, "a dry run changes nothing");
    stop(cluster, fw, dir).await;
    Ok(())
}

#[tokio::test]
async fn concurrent_creations_of_one_id_give_exactly_one_201() -> anyhow::Result<()> {
    let (cluster, fw, dir) = start("concurrent-posts", &[]).await?;
    let http = reqwest::Client::new();
    for round in 0..3 {
        let id = format!("/race-{round}");
        let posts = (0..6).map(|i| {
            let body = json!({"id": id, "cmd": format!("sleep {}", 1000 + i), "cpus": 0.01, "mem": 8, "instances": 0});
            http.post(format!("{}/v2/apps", fw.url)).header("Content-Type", "application/json").body(body.to_string()).send()
        });
        let replies = futures_util::future::join_all(posts).await;
        let mut statuses = Vec::new();
        let mut winner = None;
        for (i, r) in replies.into_iter().enumerate() {
            let r = r?;
            statuses.push(r.status().as_u16());
            if r.status() == 201 {
                winner = Some(1000 + i);
            } else {
                let body: Json = serde_json::from_str(&r.text().await?)?;
                assert_eq!(body["message"], format!("An app with id [{id}] already exists."), "{body}");
            }
        }
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 409, 409, 409, 409, 409], "round {round}");
        // The app is the winner's, not replaced by a later POST.
        let stored = fw.get(&format!("/v2/apps{id}")).await?.json;
        assert_eq!(stored["app"]["cmd"], format!("sleep {}", winner.context("a winner")?));
    }
    stop(cluster, fw, dir).await;
    Ok(())
}

#[tokio::test]
async fn groups_are_stored_and_ids_do_not_clash() -> anyhow::Result<()> {
    let (cluster, mut fw, dir) = start("stored-groups", &[]).await?;
    // An empty group exists after its POST, and a second POST is a conflict.
    let r = fw.request(Method::POST, "/v2/groups", Some(&json!({"id": "/empty", "dependencies": ["/x"]}))).await?;
    assert_eq!(r.status, 201, "{}", r.text);
    let g = fw.get("/v2/groups/empty").await?;
    assert_eq!(g.status, 200, "{}", g.text);
    assert_eq!((g.json["apps"].clone(), g.json["groups"].clone(), g.json["dependencies"].clone()), (json!([]), json!([]), json!(["/x"])));
    let r = fw.request(Method::POST, "/v2/groups", Some(&json!({"id": "/empty"}))).await?;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.json["message"], "Group /empty is already created. Use PUT to change this group.");

    // An app may not take a group's id, nor a group an app's, nor an app live below an app.
    let r = fw.request(Method::POST, "/v2/apps", Some(&app("/empty", "sleep 1000"))).await?;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(
        r.json["details"][0]["errors"][0]
            .as_str()
            .is_some_and(|e| e.starts_with("Groups and Applications may not have the same identifier.")),
        "{}",
        r.text
    );
    let r = fw.request(Method::POST, "/v2/apps", Some(&app("/solo", "sleep 1000"))).await?;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = fw.request(Method::POST, "/v2/apps", Some(&app("/solo/inner", "sleep 1000"))).await?;
    assert_eq!(r.status, 422, "{}", r.text);
    let r = fw.request(Method::PUT, "/v2/groups/solo", Some(&json!({"apps": []}))).await?;
    assert_eq!(r.status, 422, "{}", r.text);
    let r = fw.request(Method::POST, "/v2/groups", Some(&json!({"id": "/solo"}))).await?;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.json["message"], "An app with the path /solo already exists.");

    // PATCH sets enforceRole of a top-level group without a deployment.
    let r = fw.request(Method::PATCH, "/v2/groups/empty", Some(&json!({"enforceRole": true}))).await?;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(fw.get("/v2/groups/empty").await?.json["enforceRole"], true);

    // GET /v2/groups/{id}/apps lists every app within the group.
    let r =
        fw.request(Method::PUT, "/v2/groups/empty", Some(&json!({"groups": [{"id": "in", "apps": [app("deep", "sleep 1000")]}]}))).await?;
    assert_eq!(r.status, 200, "{}", r.text);
    let apps = fw.get("/v2/groups/empty/apps").await?;
    assert_eq!(
        apps.json.as_array().map(|a| a.iter().filter_map(|x| x["id"].as_str()).collect::<Vec<_>>()),
        Some(vec!["/empty/in/deep"]),
        "{}",
        apps.text
    );

    // Deleting an app leaves its group; groups and their fields survive a restart.
    idle(&fw).await?;
    let r = fw.request(Method::DELETE, "/v2/apps/empty/in/deep", None).await?;
    assert_eq!(r.status, 200, "{}", r.text);
    idle(&fw).await?;
    fw.restart().await?;
    let g = fw.wait_until_status("/v2/groups/empty", 200, DEPLOY).await?;
    assert_eq!((g.json["enforceRole"].clone(), g.json["dependencies"].clone()), (json!(true), json!(["/x"])), "{}", g.text);
    assert_eq!(g.json["groups"][0]["id"], "/empty/in");
    assert_eq!(app_ids(&g.json), BTreeSet::new());
    stop(cluster, fw, dir).await;
    Ok(())
}

#[tokio::test]
async fn group_dependencies_order_deployments() -> anyhow::Result<()> {
    let (cluster, fw, dir) = start("group-deps", &[]).await?;
    let body = json!({"id": "/stack", "groups": [
        {"id": "front", "dependencies": ["../back"], "apps": [app("web", "sleep 1000")]},
        {"id": "back", "apps": [app("db", "sleep 1000")]}
    ]});
    let dry = fw.request(Method::PUT, "/v2/groups/stack?dryRun=true", Some(&body)).await?;
    assert_eq!(dry.status, 200, "{}", dry.text);
    let step_of = |app: &str| {
        dry.json["steps"].as_array().and_then(|steps| {
            steps.iter().position(|s| {
                s["actions"].as_array().is_some_and(|a| a.iter().any(|x| x["action"] == "ScaleApplication" && x["app"] == app))
            })
        })
    };
    let (db, web) = (step_of("/stack/back/db").context("db step")?, step_of("/stack/front/web").context("web step")?);
    assert!(db < web, "the group dependency orders the steps: {}", dry.text);
    stop(cluster, fw, dir).await;
    Ok(())
}

#[tokio::test]
async fn app_versions_are_bounded_and_go_with_their_app() -> anyhow::Result<()> {
    let (cluster, fw, dir) = start("app-versions", &["--zk-max-versions", "3"]).await?;
    let r = fw.request(Method::POST, "/v2/apps", Some(&json!({"id": "/v", "cmd": "sleep 1000", "instances": 0}))).await?;
    assert_eq!(r.status, 201, "{}", r.text);
    for i in 1..=4 {
        let r = fw.request(Method::PUT, "/v2/apps/v?force=true", Some(&json!({"cmd": format!("sleep {}", 1000 + i)}))).await?;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let versions = fw.get("/v2/apps/v/versions").await?.json;
    let list = versions["versions"].as_array().context("versions")?;
    assert_eq!(list.len(), 3, "{versions}");
    let newest = list[0].as_str().context("a version")?;
    assert_eq!(fw.get(&format!("/v2/apps/v/versions/{newest}")).await?.json["cmd"], "sleep 1004");

    idle(&fw).await?;
    assert_eq!(fw.request(Method::DELETE, "/v2/apps/v", None).await?.status, 200);
    idle(&fw).await?;
    let r = fw.request(Method::POST, "/v2/apps", Some(&json!({"id": "/v", "cmd": "sleep 2000", "instances": 0}))).await?;
    assert_eq!(r.status, 201, "{}", r.text);
    let versions = fw.get("/v2/apps/v/versions").await?.json;
    assert_eq!(versions["versions"].as_array().map(Vec::len), Some(1), "versions of the deleted app went with it: {versions}");
    stop(cluster, fw, dir).await;
    Ok(())
}

#[tokio::test]
async fn routes_with_a_trailing_slash_and_pods() -> anyhow::Result<()> {
    let (cluster, fw, dir) = start("trailing-slash", &[]).await?;
    let r = fw.request(Method::POST, "/v2/apps/", Some(&app("/ts", "sleep 1000"))).await?;
    assert_eq!(r.status, 201, "{}", r.text);
    fw.wait_until("/v2/apps/ts", DEPLOY, "ts running", |j| j["app"]["tasksRunning"] == 1).await?;
    // What Prometheus's Marathon service discovery asks for.
    let r = fw.get("/v2/apps/?embed=apps.tasks").await?;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["apps"][0]["tasks"].as_array().map(Vec::len), Some(1), "{}", r.text);
    for path in ["/v2/apps/", "/v2/groups/", "/v2/tasks/", "/v2/deployments/", "/v2/info/", "/v2/apps/ts/"] {
        let r = fw.get(path).await?;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
    }
    // A Marathon without pods answers 404 on the pods routes (HEAD is how clients probe).
    for method in [Method::HEAD, Method::GET] {
        let r = fw.request(method.clone(), "/v2/pods", None).await?;
        assert_eq!(r.status, 404, "{method} /v2/pods: {}", r.text);
    }
    assert_eq!(fw.get("/v2/pods/::status").await?.status, 404);
    // A method a route does not take: 405 with Marathon's JSON body.
    let r = fw.request(Method::DELETE, "/v2/info", None).await?;
    assert_eq!((r.status, r.json["message"].as_str()), (405, Some("HTTP 405 Method Not Allowed")), "{}", r.text);
    let r = fw.get("/v2/plugins").await?;
    assert_eq!((r.status, r.json.clone()), (200, json!({"plugins": []})), "{}", r.text);
    // POST /v2/tasks/delete skips well-formed ids of tasks that are gone, as Marathon does.
    let gone = "ts.instance-00000000-0000-0000-0000-000000000000._app.1";
    let r = fw.request(Method::POST, "/v2/tasks/delete", Some(&json!({"ids": [gone]}))).await?;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["tasks"], json!([]), "{}", r.text);
    assert_eq!(fw.request(Method::POST, "/v2/tasks/delete", Some(&json!({"ids": ["not a task id"]}))).await?.status, 400);
    stop(cluster, fw, dir).await;
    Ok(())
}

#[tokio::test]
async fn resetting_a_launch_delay_answers_204() -> anyhow::Result<()> {
    let (cluster, fw, dir) = start("reset-delay", &[]).await?;
    // A task that fails at once puts its app into the backoff delay (60 s here).
    let app = json!({"id": "/flaky", "cmd": "exit 1", "cpus": 0.01, "mem": 8, "instances": 1, "backoffSeconds": 60});
    assert_eq!(fw.request(Method::POST, "/v2/apps", Some(&app)).await?.status, 201);
    fw.wait_until("/v2/queue", DEPLOY, "a delayed launch", |j| {
        j["queue"].as_array().is_some_and(|q| q.iter().any(|e| e["delay"]["timeLeftSeconds"].as_f64().is_some_and(|s| s > 0.0)))
    })
    .await?;
    let r = fw.request(Method::DELETE, "/v2/queue/flaky/delay", None).await?;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(fw.request(Method::DELETE, "/v2/queue/nothing/delay", None).await?.status, 404);
    stop(cluster, fw, dir).await;
    Ok(())
}

/// The service ports of an app as its JSON shows them (host networking: its port definitions).
fn service_ports(app: &Json) -> Vec<u64> {
    app["portDefinitions"].as_array().into_iter().flatten().filter_map(|p| p["port"].as_u64()).collect()
}

/// Service ports as Marathon assigns them (issue 19, part 2): port 0 gets the lowest free port
/// of `--local-port-min`..`--local-port-max`, unique across apps (in groups too), shown in the
/// app and in its tasks' `servicePorts`; an update asking for 0 again keeps the port; a port
/// another app holds is a 422 with Marathon's message; ports survive a restart (they are
/// stored); a full range is a 422 that says which flags to change.
#[tokio::test]
async fn service_ports_are_assigned_unique_kept_and_checked() -> anyhow::Result<()> {
    let (cluster, mut fw, dir) = start("service-ports", &["--local_port_min", "12000", "--local_port_max", "12004"]).await?;
    let info = fw.get("/v2/info").await?.json;
    assert_eq!(
        (info["marathon_config"]["local_port_min"].as_u64(), info["marathon_config"]["local_port_max"].as_u64()),
        (Some(12000), Some(12004))
    );
    let two =
        json!({"id": "/svc/a", "cmd": "sleep 1000", "cpus": 0.01, "mem": 8, "instances": 1, "portDefinitions": [{"port": 0}, {"port": 0}]});
    let r = fw.request(Method::POST, "/v2/apps", Some(&two)).await?;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(service_ports(&r.json), [12000, 12001], "assigned in the answer");
    let group = json!({"id": "/svc/g", "apps": [{"id": "b", "cmd": "sleep 1000", "cpus": 0.01, "mem": 8, "instances": 1, "portDefinitions": [{"port": 0}]}]});
    assert_eq!(fw.request(Method::POST, "/v2/groups", Some(&group)).await?.status, 201);
    idle(&fw).await?;
    let b = fw.get("/v2/apps/svc/g/b").await?.json;
    assert_eq!(service_ports(&b["app"]), [12002]);
    let tasks = fw.wait_until("/v2/apps/svc/a", DEPLOY, "a task", |j| j["app"]["tasks"].as_array().is_some_and(|t| t.len() == 1)).await?;
    assert_eq!(tasks["app"]["tasks"][0]["servicePorts"], json!([12000, 12001]));

    // An update that asks for 0 again keeps the ports; a new position gets a free one.
    let mut update = two.clone();
    update["portDefinitions"] = json!([{"port": 0}, {"port": 0}, {"port": 0}]);
    assert_eq!(fw.request(Method::PUT, "/v2/apps/svc/a", Some(&update)).await?.status, 200);
    idle(&fw).await?;
    assert_eq!(service_ports(&fw.get("/v2/apps/svc/a").await?.json["app"]), [12000, 12001, 12003]);

    // A port another app holds; and a full range.
    let taken = json!({"id": "/svc/c", "cmd": "sleep 1000", "cpus": 0.01, "mem": 8, "portDefinitions": [{"port": 12002}]});
    let r = fw.request(Method::POST, "/v2/apps", Some(&taken)).await?;
    assert_eq!(r.status, 422);
    assert_eq!(r.json["details"][0]["errors"][0], "Requested service port 12002 conflicts with a service port in app /svc/g/b");
    let full = json!({"id": "/svc/d", "cmd": "sleep 1000", "cpus": 0.01, "mem": 8, "portDefinitions": [{"port": 0}]});
    let r = fw.request(Method::POST, "/v2/apps", Some(&full)).await?;
    assert_eq!(r.status, 422);
    assert!(r.json["details"][0]["errors"][0].as_str().is_some_and(|m| m.contains("--local-port-max")), "{}", r.text);
    assert_eq!(fw.get("/v2/apps/svc/c").await?.status, 404, "nothing was created");

    // Deleting an app frees its ports; a restart keeps the others.
    assert_eq!(fw.request(Method::DELETE, "/v2/apps/svc/g/b", None).await?.status, 200);
    idle(&fw).await?;
    let r = fw.request(Method::POST, "/v2/apps", Some(&full)).await?;
    assert_eq!((r.status, service_ports(&r.json)), (201, vec![12002]));
    fw.restart().await?;
    assert_eq!(service_ports(&fw.get("/v2/apps/svc/a").await?.json["app"]), [12000, 12001, 12003]);
    assert_eq!(fw.request(Method::POST, "/v2/apps", Some(&taken)).await?.status, 422, "the index is rebuilt from the store");
    stop(cluster, fw, dir).await;
    Ok(())
}
