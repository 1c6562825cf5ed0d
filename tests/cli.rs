//! `framework-cli` end to end against a `framework` server (on the Mesos `FRAMEWORK_TEST_MESOS` names).

use std::path::Path;

use integration_tests::framework::{Framework, binary};
use integration_tests::{mesos, work_dir};
use serde_json::{Value as Json, json};

/// Runs the CLI against `url`; returns (exit code, stdout, stderr). Async, so that the local
/// cluster in this test's runtime keeps running meanwhile.
async fn cli(url: &str, args: &[&str]) -> (i32, String, String) {
    let bin = binary().with_file_name("framework-cli");
    let out = tokio::process::Command::new(bin)
        .args(args)
        .env("FRAMEWORK_URL", url)
        .env_remove("MARATHON_URL")
        .output()
        .await
        .expect("run framework-cli");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn write(dir: &Path, name: &str, v: &Json) -> String {
    let p = dir.join(name);
    std::fs::write(&p, v.to_string()).expect("write");
    p.display().to_string()
}

#[tokio::test]
async fn the_cli_drives_apps_through_their_life() -> anyhow::Result<()> {
    let c = mesos("cli", 1).await;
    let fw = Framework::start(&c.url(), &work_dir("cli"), &[]).await?;
    let url = fw.url.clone();
    let files = work_dir("cli-files");
    let app = write(&files, "guestbook.json", &json!({"id": "/guestbook", "cmd": "sleep 1000", "cpus": 0.05, "mem": 16, "instances": 1}));

    let (code, _, err) = cli(&url, &["deploy", &app, "--wait"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("/guestbook: deployed"), "{err}");
    let (code, out, _) = cli(&url, &["apps"]).await;
    assert_eq!(code, 0);
    assert!(out.lines().next().is_some_and(|h| h.starts_with("ID")) && out.contains("/guestbook"), "{out}");
    let (_, out, _) = cli(&url, &["apps", "--output", "json"]).await;
    let j: Json = serde_json::from_str(&out)?;
    assert_eq!(j["apps"][0]["id"], "/guestbook");

    // Short names, scaling and waiting.
    let (code, _, err) = cli(&url, &["scale", "guestbook", "3", "--wait"]).await;
    assert_eq!(code, 0, "{err}");
    let j = fw.get("/v2/apps/guestbook").await?.json;
    assert_eq!(j["app"]["tasksRunning"], 3);
    let (_, out, _) = cli(&url, &["tasks", "guestbook"]).await;
    assert_eq!(out.lines().filter(|l| l.contains("TASK_RUNNING")).count(), 3, "{out}");
    let task = j["app"]["tasks"][0]["id"].as_str().unwrap_or_default().to_string();
    let (code, out, err) = cli(&url, &["kill", &task, "--scale"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("scaled down"), "{out}");
    // The scale-down's deployment ends just after the killed task does; a restart before that
    // is refused (409, as in Marathon).
    fw.wait_until("/v2/apps/guestbook", std::time::Duration::from_secs(30), "2 instances, no deployment", |j| {
        j["app"]["instances"] == 2 && j["app"]["tasksRunning"] == 2 && j["app"]["deployments"].as_array().is_some_and(Vec::is_empty)
    })
    .await?;
    let (code, _, err) = cli(&url, &["restart", "guestbook", "--wait"]).await;
    assert_eq!(code, 0, "{err}");
    for args in [&["deployments"][..], &["queue"], &["leader"], &["info"], &["tasks"]] {
        let (code, _, err) = cli(&url, args).await;
        assert_eq!(code, 0, "{args:?}: {err}");
    }
    let (code, out, _) = cli(&url, &["completions", "bash"]).await;
    assert!(code == 0 && out.contains("framework-cli"));

    // Errors: ambiguous and unknown names, failing deployments, bad files, unreachable servers.
    for id in ["/shop/web", "/blog/web"] {
        let f = write(&files, "web.json", &json!({"id": id, "cmd": "sleep 1000", "cpus": 0.05, "mem": 16, "instances": 0}));
        assert_eq!(cli(&url, &["deploy", &f, "--wait"]).await.0, 0);
    }
    let (code, _, err) = cli(&url, &["scale", "web", "2"]).await;
    assert_eq!(code, 4);
    assert!(err.contains("ambiguous") && err.contains("/shop/web") && err.contains("/blog/web"), "{err}");
    assert_eq!(cli(&url, &["destroy", "nothing"]).await.0, 4);
    let sick = write(
        &files,
        "sick.json",
        &json!({
            "id": "/sick", "cmd": "sleep 1000", "cpus": 0.05, "mem": 16,
            "healthChecks": [{"protocol": "COMMAND", "command": {"value": "false"}, "gracePeriodSeconds": 300, "intervalSeconds": 1, "timeoutSeconds": 1, "maxConsecutiveFailures": 1000}]
        }),
    );
    let (code, _, err) = cli(&url, &["deploy", &sick, "--wait", "--timeout", "4"]).await;
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("did not finish within 4s"), "{err}");
    let bad = files.join("bad.json");
    std::fs::write(&bad, "{ not json")?;
    let (code, _, err) = cli(&url, &["deploy", &bad.display().to_string()]).await;
    assert_eq!(code, 2, "{err}");
    let invalid = write(&files, "invalid.json", &json!({"id": "/x", "cmd": "a", "args": ["b"]}));
    let (code, _, err) = cli(&url, &["deploy", &invalid]).await;
    assert_eq!(code, 1);
    assert!(err.contains("422") && err.contains("fix the JSON"), "{err}");
    let (code, _, err) = cli("http://127.0.0.1:1", &["apps"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("cannot reach the server"), "{err}");
    let (code, _, err) = cli(&url, &["destroy", "guestbook", "--wait"]).await;
    assert_eq!(code, 0, "{err}");
    c.shutdown().await;
    Ok(())
}
