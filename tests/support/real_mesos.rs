//! A real Apache Mesos 1.11 master and agents (`scripts/real-mesos run`: libmesos's local mode)
//! on a free loopback port. The agents' launcher dir is the build's target directory, with our
//! stand-ins for the agent's helper binaries (`mesos-containerizer`, `mesos-executor`: the crate
//! `mesos-helpers` in `mesos-local/helpers/`). Tests fail, never skip,
//! when it cannot start: `scripts/real-mesos setup` (run by `scripts/test-all`) installs it.
//!
//! Its limits: no TLS (libmesos runs on OpenSSL stubs), and the agents share the master's port
//! (their endpoints are under `/slave(N)/`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::Value as Json;
use tokio::process::{Child, Command};

/// A running real Mesos cluster.
pub struct RealMesos {
    child: Option<Child>,
    /// The master's port on 127.0.0.1 (the agents share it).
    pub port: u16,
    dir: PathBuf,
    /// The environment `scripts/real-mesos run` gets.
    env: Vec<(String, String)>,
    agents: usize,
}

/// The repository's root (tests run with the `tests/` package as their directory).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

impl RealMesos {
    /// Starts a master and `agents` agents, each offering `resources` (Mesos's resource text,
    /// e.g. `cpus:2;mem:1024;disk:4096;ports:[31000-31009]`), and waits until every agent has
    /// registered.
    pub async fn start(name: &str, agents: usize, resources: &str) -> anyhow::Result<Self> {
        Self::start_with(name, agents, resources, "mesos").await
    }

    /// [`RealMesos::start`] with the agents' `--containerizers` (`docker,mesos` runs Docker
    /// tasks through the Docker daemon, with our `mesos-docker-executor` stand-in).
    pub async fn start_with(name: &str, agents: usize, resources: &str, containerizers: &str) -> anyhow::Result<Self> {
        let env = vec![("MESOS_CONTAINERIZERS".to_owned(), containerizers.to_owned())];
        Self::launch(name, agents, resources, env).await
    }

    /// [`RealMesos::start`] with the master's registry in a replicated log under its work
    /// directory, so that [`RealMesos::restart`] brings back a master that knows its agents.
    /// `containerizers` as in [`RealMesos::start_with`].
    pub async fn start_persistent(name: &str, agents: usize, resources: &str, containerizers: &str) -> anyhow::Result<Self> {
        let env = vec![
            ("MESOS_REGISTRY".to_owned(), "replicated_log".to_owned()),
            ("MESOS_QUORUM".to_owned(), "1".to_owned()),
            ("MESOS_CONTAINERIZERS".to_owned(), containerizers.to_owned()),
        ];
        Self::launch(name, agents, resources, env).await
    }

    async fn launch(name: &str, agents: usize, resources: &str, mut env: Vec<(String, String)>) -> anyhow::Result<Self> {
        let dir = crate::work_dir(&format!("real-mesos-{name}"));
        let port = crate::framework::free_port();
        let launcher_dir = crate::framework::binary().parent().map(Path::to_path_buf).context("target directory")?;
        for helper in ["mesos-containerizer", "mesos-executor", "mesos-docker-executor"] {
            anyhow::ensure!(
                launcher_dir.join(helper).exists(),
                "{helper} is not built in {}: run `cargo build --workspace` first",
                launcher_dir.display()
            );
        }
        env.extend([
            ("PORT".to_owned(), port.to_string()),
            ("NUM_AGENTS".to_owned(), agents.to_string()),
            ("LAUNCHER_DIR".to_owned(), launcher_dir.display().to_string()),
            ("MESOS_WORK_DIR".to_owned(), dir.join("work").display().to_string()),
            ("MESOS_RESOURCES".to_owned(), resources.to_owned()),
            // Short timers, as the local cluster's tests use.
            ("MESOS_ALLOCATION_INTERVAL".to_owned(), "100ms".to_owned()),
        ]);
        let mut me = Self { child: None, port, dir, env, agents };
        me.spawn().await?;
        Ok(me)
    }

    /// Starts the process and waits until every agent has registered.
    async fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("real-mesos.log"))?;
        let mut cmd = Command::new(repo_root().join("scripts/real-mesos"));
        cmd.arg("run").envs(self.env.iter().cloned()).stdout(log.try_clone()?).stderr(log).kill_on_drop(true).process_group(0);
        self.child = Some(cmd.spawn().context("cannot start scripts/real-mesos")?);
        let agents = self.agents;
        let me = self;
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(child) = me.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "the real Mesos exited ({status}) before its agents registered; install it with `scripts/real-mesos setup`; log:\n{}",
                    me.log_tail()
                );
            }
            if let Ok(resp) = http.get(format!("{}/master/slaves", me.url())).timeout(Duration::from_secs(2)).send().await
                && let Ok(bytes) = resp.bytes().await
                && let Ok(body) = serde_json::from_slice::<Json>(&bytes)
                && body["slaves"].as_array().is_some_and(|s| s.iter().filter(|a| a["active"] == true).count() >= agents)
            {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("the real Mesos's agents did not register within 60 s; log:\n{}", me.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills the master and agents at once (SIGKILL, as a crash of the machine's Mesos would)
    /// and starts them again on the same port and work directory: the master recovers its
    /// registry (see [`RealMesos::start_persistent`]) and the agents their checkpointed
    /// executors, which ran on in sessions of their own.
    /// They stay down for `down`.
    pub async fn restart(&mut self, down: Duration) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take()
            && let Some(pid) = child.id()
        {
            let group = nix::unistd::Pid::from_raw(-i32::try_from(pid).unwrap_or(i32::MAX));
            let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait().await;
        }
        tokio::time::sleep(down).await;
        self.spawn().await
    }

    /// The master's URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The last lines of the cluster's output.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("real-mesos.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Stops the cluster (SIGTERM to its process group, SIGKILL after 5 s) and removes its files.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take()
            && let Some(pid) = child.id()
        {
            let group = nix::unistd::Pid::from_raw(-i32::try_from(pid).unwrap_or(i32::MAX));
            let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGTERM);
            if tokio::time::timeout(Duration::from_secs(5), child.wait()).await.is_err() {
                let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
                let _ = child.wait().await;
            }
        }
        reap_executors(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Kills the executors the agents started with sandboxes under `dir`, and removes the Docker
/// containers they ran. The agents start executors in sessions of their own, so they outlive
/// the cluster's process group; a checkpointing framework's executor would wait 15 minutes for
/// its agent to come back, holding its container and ports.
fn reap_executors(dir: &Path) {
    let marker = dir.display().to_string();
    let mut containers = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse::<i32>().ok()) else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let args: Vec<String> = cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        let env = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        let in_sandbox = args.iter().any(|a| a.contains(&marker))
            || env.split(|b| *b == 0).any(|v| v.starts_with(b"MESOS_SANDBOX=") && String::from_utf8_lossy(v).contains(&marker));
        if !in_sandbox {
            continue;
        }
        containers.extend(args.iter().filter_map(|a| a.strip_prefix("--container=").map(str::to_owned)));
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
    if !containers.is_empty() {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f"])
            .args(&containers)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

impl Drop for RealMesos {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut()
            && let Some(pid) = child.id()
        {
            let group = nix::unistd::Pid::from_raw(-i32::try_from(pid).unwrap_or(i32::MAX));
            let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        }
        reap_executors(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
