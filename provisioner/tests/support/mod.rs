//! A real moto server (`moto_server`, installed into .cache/moto by `scripts/moto-install`)
//! on a free loopback port: a local stand-in for the EC2 and Auto Scaling APIs that the
//! provisioner's tests reach through the real AWS SDK. Tests fail, never skip, when it cannot
//! start.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::process::{Child, Command};

/// A fresh folder for one test's files.
pub fn work_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("provisioner-tests-{name}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A free loopback port (bound and released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// A running moto server; killed when dropped.
pub struct Moto {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    log: PathBuf,
}

impl Moto {
    /// Installs moto if needed (cached) and starts a server with empty state.
    pub async fn start(name: &str) -> anyhow::Result<Self> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_default();
        let bin = root.join(".cache/moto/bin/moto_server");
        if !bin.exists() {
            let out = std::process::Command::new(root.join("scripts/moto-install")).output().context("run scripts/moto-install")?;
            anyhow::ensure!(out.status.success(), "moto could not be installed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let port = free_port();
        let log = work_dir(&format!("moto-{name}")).join("moto.log");
        let file = std::fs::File::create(&log)?;
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(file.try_clone()?)
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        let moto = Self { child, port, log };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = reqwest::get(format!("{}/moto-api/", moto.url())).await
                && r.status().is_success()
            {
                return Ok(moto);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("moto_server did not answer on port {port} within 30 s; see {}", moto.log.display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Its endpoint URL, for the SDK's endpoint override.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
