//! A real ZooKeeper server (Debian's `zookeeper` package) started by hand on a loopback port,
//! with its data in a temporary folder. Tests fail, never skip, when it cannot start.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::{Child, Command};

/// Where Debian installs ZooKeeper's classes.
const CLASSPATH: &str = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar";

/// A running ZooKeeper server.
pub struct ZkServer {
    child: Option<Child>,
    /// Its client port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
}

impl ZkServer {
    /// Starts a standalone server with a short tick (sessions from 0.5 s to 10 s).
    pub async fn start(name: &str) -> anyhow::Result<Self> {
        let dir = crate::work_dir(&format!("zk-{name}"));
        let port = crate::framework::free_port();
        std::fs::create_dir_all(dir.join("data"))?;
        std::fs::write(
            dir.join("zoo.cfg"),
            format!(
                "tickTime=250\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n\
                 4lw.commands.whitelist=ruok,srvr,stat,mntr\nminSessionTimeout=500\nmaxSessionTimeout=10000\n",
                dir.join("data").display()
            ),
        )?;
        let mut server = Self { child: None, port, dir };
        server.spawn().await?;
        Ok(server)
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(
            std::path::Path::new("/usr/share/java/zookeeper.jar").exists(),
            "ZooKeeper is not installed: run ./scripts/test-all (it installs Debian's zookeeper package)"
        );
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("zk.log"))?;
        let child = Command::new("java")
            .args(["-Xmx256m", "-cp", CLASSPATH, "org.apache.zookeeper.server.ZooKeeperServerMain"])
            .arg(self.dir.join("zoo.cfg"))
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("cannot run java for ZooKeeper")?;
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(reply) = self.four_letter("srvr").await
                && reply.contains("Mode: standalone")
            {
                return Ok(());
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                bail!("ZooKeeper exited with {status}; see {}", self.dir.join("zk.log").display());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("ZooKeeper did not answer on port {} within 30 s; see {}", self.port, self.dir.join("zk.log").display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends a four-letter word; bounded, since a server that is still starting may accept the
    /// connection and never answer.
    async fn four_letter(&self, word: &str) -> anyhow::Result<String> {
        let ask = async {
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await?;
            s.write_all(word.as_bytes()).await?;
            let mut out = String::new();
            s.read_to_string(&mut out).await?;
            anyhow::Ok(out)
        };
        tokio::time::timeout(Duration::from_secs(2), ask).await.context("no answer within 2 s")?
    }

    /// `host:port` for clients.
    pub fn hosts(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A `zk://` URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("zk://127.0.0.1:{}{path}", self.port)
    }

    /// Stops the server abruptly (its data stays).
    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }

    /// Starts it again on the same port with the same data.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop().await;
        self.spawn().await
    }
}
