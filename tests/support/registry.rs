//! A real image registry (Debian's `docker-registry` package, the CNCF distribution registry)
//! started by hand on a loopback port, its storage in a temporary folder. The Docker daemon
//! pushes to and pulls from loopback registries without TLS. Tests fail, never skip, when it
//! cannot start.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::process::{Child, Command};

/// Where Debian installs the registry.
const BINARY: &str = "/usr/bin/docker-registry";

/// A running registry.
pub struct Registry {
    _child: Child,
    /// `127.0.0.1:<port>`, the prefix of its images' names.
    pub addr: String,
    dir: PathBuf,
}

impl Registry {
    /// Starts a registry with filesystem storage and waits until its API answers.
    pub async fn start(name: &str) -> anyhow::Result<Self> {
        anyhow::ensure!(
            std::path::Path::new(BINARY).exists(),
            "the image registry is not installed: run ./scripts/test-all (it installs Debian's docker-registry package)"
        );
        let dir = crate::work_dir(&format!("registry-{name}"));
        std::fs::create_dir_all(dir.join("data"))?;
        let addr = format!("127.0.0.1:{}", crate::framework::free_port());
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
                dir.join("data").display()
            ),
        )?;
        let log = std::fs::File::create(dir.join("registry.log"))?;
        let mut child = Command::new(BINARY)
            .arg("serve")
            .arg(&config)
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("cannot run docker-registry")?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = reqwest::get(format!("http://{addr}/v2/")).await
                && r.status().is_success()
            {
                return Ok(Self { _child: child, addr, dir });
            }
            if let Some(status) = child.try_wait()? {
                bail!("docker-registry exited with {status}; see {}", dir.join("registry.log").display());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("docker-registry did not answer on {addr} within 30 s; see {}", dir.join("registry.log").display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // The process goes with its handle (kill_on_drop); its storage goes here.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
