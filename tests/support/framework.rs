//! Runs the real `framework` binary as a child process against a cluster, and talks to its
//! Marathon API over HTTP like any client would.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use reqwest::Method;
use serde_json::Value as Json;
use tokio::process::{Child, Command};

use crate::WAIT;

/// The `framework` binary next to the test executables (built by `cargo build --workspace`).
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target directory");
    let bin = dir.join("framework");
    assert!(bin.exists(), "{} is missing: build it first with `cargo build -p framework` (scripts/test-all does)", bin.display());
    bin
}

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A response: status, headers, body as JSON (Null when empty or not JSON) and raw text.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body as JSON.
    pub json: Json,
    /// Body as text.
    pub text: String,
}

impl Reply {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A running `framework` process.
pub struct Framework {
    child: Option<Child>,
    /// API base URL.
    pub url: String,
    /// Its data directory.
    pub data_dir: PathBuf,
    args: Vec<String>,
    port: u16,
    http: reqwest::Client,
}

impl Framework {
    /// Starts `framework --master <master>` with a fresh data directory and `extra` flags, and
    /// waits until its API answers.
    pub async fn start(master: &str, data_dir: &Path, extra: &[&str]) -> anyhow::Result<Self> {
        let port = free_port();
        let mut args: Vec<String> = vec![
            "--master".into(),
            master.into(),
            "--http-address".into(),
            format!("127.0.0.1:{port}"),
            "--data-dir".into(),
            data_dir.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        // With --tls-cert the API is HTTPS; the harness trusts the --tls-ca the instance gets.
        let tls = extra.contains(&"--tls-cert");
        let ca = extra.iter().position(|a| *a == "--tls-ca").and_then(|i| extra.get(i + 1));
        let http = match ca {
            Some(ca) => crate::tls::client_trusting(Path::new(ca))?,
            None => reqwest::Client::new(),
        };
        let url = if tls { format!("https://localhost:{port}") } else { format!("http://127.0.0.1:{port}") };
        let mut fw = Self { child: None, url, data_dir: data_dir.to_path_buf(), args, port, http };
        fw.spawn().await?;
        Ok(fw)
    }

    /// Starts the process with its flags, its output appended to `framework.log` in the data
    /// directory; the process and the log's length before it started.
    fn launch(&self) -> anyhow::Result<(Child, u64)> {
        std::fs::create_dir_all(&self.data_dir)?;
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.data_dir.join("framework.log"))?;
        let start = log.metadata()?.len();
        let child = Command::new(binary())
            .args(&self.args)
            .env("RUST_LOG", "info")
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("spawn framework")?;
        Ok((child, start))
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let (child, _) = self.launch()?;
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Ok(r) = self.http.get(format!("{}/ping", self.url)).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!("framework exited with {status}; see {}", self.data_dir.join("framework.log").display());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("framework did not answer /ping on port {} within {WAIT:?}", self.port);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Our `host:port` as the API advertises it (`localhost:<port>`).
    pub fn advertised(&self) -> String {
        format!("localhost:{}", self.port)
    }

    /// Kills the process abruptly (SIGKILL), as a crash would.
    pub async fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts the process again with the same flags and data directory.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.crash().await;
        self.spawn().await
    }

    /// Adds flags for every later start.
    pub fn add_flags(&mut self, extra: &[&str]) {
        self.args.extend(extra.iter().map(|s| s.to_string()));
    }

    /// Starts the process again with the same flags and data directory, and waits up to
    /// `within` for it to exit by itself: its exit status and what it logged in this run.
    pub async fn run_until_exit(&mut self, within: Duration) -> anyhow::Result<(std::process::ExitStatus, String)> {
        self.crash().await;
        let path = self.data_dir.join("framework.log");
        let (mut child, start) = self.launch()?;
        let status = match tokio::time::timeout(within, child.wait()).await {
            Ok(status) => status?,
            Err(_) => bail!("framework did not exit within {within:?}; see {}", path.display()),
        };
        let text = std::fs::read(&path)?;
        Ok((status, String::from_utf8_lossy(&text[start as usize..]).into_owned()))
    }

    /// Sends a request with an optional JSON body.
    pub async fn request(&self, method: Method, path: &str, body: Option<&Json>) -> anyhow::Result<Reply> {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b.to_string());
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await?;
        let json = serde_json::from_str(&text).unwrap_or(Json::Null);
        Ok(Reply { status, headers, json, text })
    }

    /// Sends a raw body.
    pub async fn request_raw(&self, method: Method, path: &str, body: &str) -> anyhow::Result<Reply> {
        let resp = self
            .http
            .request(method, format!("{}{path}", self.url))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await?;
        let json = serde_json::from_str(&text).unwrap_or(Json::Null);
        Ok(Reply { status, headers, json, text })
    }

    /// GET returning JSON.
    pub async fn get(&self, path: &str) -> anyhow::Result<Reply> {
        self.request(Method::GET, path, None).await
    }

    /// Polls `GET path` until it answers `status`, or fails after `within`.
    pub async fn wait_until_status(&self, path: &str, status: u16, within: Duration) -> anyhow::Result<Reply> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Ok(r) = self.get(path).await
                && r.status == status
            {
                return Ok(r);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("GET {path} did not answer {status} within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Polls `GET path` until `pred` holds on its JSON, or fails after `within`.
    pub async fn wait_until(&self, path: &str, within: Duration, what: &str, pred: impl Fn(&Json) -> bool) -> anyhow::Result<Json> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let r = self.get(path).await?;
            if r.status == 200 && pred(&r.json) {
                return Ok(r.json);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("timed out after {within:?} waiting for {what}; last {path}: {} {}", r.status, r.text);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
