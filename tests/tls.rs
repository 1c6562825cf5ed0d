//! The API over HTTPS: `framework --tls-cert/--tls-key` serves TLS only, followers proxy to the
//! leader over TLS trusting `--tls-ca`, and `framework-cli` honours `--ca-cert`.

use std::time::Duration;

use integration_tests::framework::{Framework, binary};
use integration_tests::tls::make_pki;
use integration_tests::zk::ZkServer;
use integration_tests::{cluster, work_dir};
use reqwest::Method;
use serde_json::json;

async fn cli(url: &str, args: &[&str]) -> anyhow::Result<(i32, String, String)> {
    let out = tokio::process::Command::new(binary().with_file_name("framework-cli"))
        .args(args)
        .env("FRAMEWORK_URL", url)
        .env_remove("FRAMEWORK_CA_CERT")
        .output()
        .await?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[tokio::test]
async fn https_api_with_a_follower_proxying_to_the_leader_and_the_cli_trusting_a_ca() -> anyhow::Result<()> {
    let pki = make_pki(&work_dir("tls-pki"))?;
    let zk = ZkServer::start("tls").await?;
    let c = cluster("tls", 1, |_| {}).await;
    let (cert, key, ca) = (pki.cert.display().to_string(), pki.key.display().to_string(), pki.ca.display().to_string());
    let zk_url = zk.url("/tls");
    let flags = ["--zk", zk_url.as_str(), "--tls-cert", &cert, "--tls-key", &key, "--tls-ca", &ca];
    let a = Framework::start(&c.url(), &work_dir("tls-a"), &flags).await?;
    let b = Framework::start(&c.url(), &work_dir("tls-b"), &flags).await?;
    let r = a.wait_until_status("/v2/leader", 200, Duration::from_secs(20)).await?;
    let (leader, follower) = if r.json["leader"] == a.advertised() { (&a, &b) } else { (&b, &a) };

    // A write through the follower reaches the leader over HTTPS.
    follower.wait_until_status("/v2/leader", 200, Duration::from_secs(20)).await?;
    let app = json!({"id": "/secure", "cmd": "sleep 1000", "cpus": 0.05, "mem": 16, "instances": 1});
    let r = follower.request(Method::POST, "/v2/apps", Some(&app)).await?;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.header("X-Marathon-Via").is_some_and(|v| v.contains(&follower.advertised())), "proxied");
    assert_eq!(r.header("X-Marathon-Leader"), Some(format!("https://{}", leader.advertised()).as_str()));

    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = follower.url.replacen("https://", "http://", 1);
    let r = reqwest::Client::new().get(format!("{plain}/ping")).timeout(Duration::from_secs(5)).send().await;
    assert!(r.is_err() || r.is_ok_and(|r| !r.status().is_success()), "plain HTTP must not be served");

    // The CLI: trusted with --ca-cert; without it, a message that says what to do.
    let (code, out, err) = cli(&follower.url, &["--ca-cert", &ca, "apps"]).await?;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("/secure"), "{out}");
    let (code, _, err) = cli(&follower.url, &["apps"]).await?;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--ca-cert"), "{err}");

    // A key that does not parse stops the server at start with a message naming the file.
    let bad = work_dir("tls-bad");
    std::fs::write(bad.join("key.pem"), "not a key")?;
    let bad_key = bad.join("key.pem").display().to_string();
    let started = Framework::start(&c.url(), &bad, &["--tls-cert", &cert, "--tls-key", &bad_key]).await;
    assert!(started.is_err(), "a broken key must stop the server");
    let log = std::fs::read_to_string(bad.join("framework.log"))?;
    assert!(log.contains("key.pem") && log.contains("private key"), "{log}");
    c.shutdown().await;
    Ok(())
}
