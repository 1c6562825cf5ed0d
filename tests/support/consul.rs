//! A real Consul agent (`consul agent -dev`, Debian bullseye's package installed by
//! `scripts/consul-install`) on loopback ports of its own.

use std::path::PathBuf;
use std::process::Command as StdCommand;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::process::{Child, Command};

use crate::framework::free_port;

/// A loopback port for a Consul agent that stays free while the agent is down.
///
/// A port from [`free_port`] lies in the kernel's ephemeral range, so while a test's agent is
/// stopped another test's outgoing connection may take it as a source port, and the restarted
/// agent then cannot listen. These ports come from 10000–19999 instead (below the ephemeral range
/// and the local clusters' task port ranges), one process-wide counter apart, and each is checked
/// free for both TCP and UDP (Serf uses both).
fn reserved_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = 10_000 + (std::process::id() % 50) as u16 * 200;
    loop {
        let port = 10_000 + (start - 10_000 + NEXT.fetch_add(1, Ordering::SeqCst)) % 10_000;
        let tcp = std::net::TcpListener::bind(("127.0.0.1", port));
        let udp = std::net::UdpSocket::bind(("127.0.0.1", port));
        if tcp.is_ok() && udp.is_ok() {
            return port;
        }
    }
}

/// A running Consul dev agent.
pub struct ConsulAgent {
    child: Option<Child>,
    bin: PathBuf,
    args: Vec<String>,
    /// Its HTTP port.
    pub http_port: u16,
    log: PathBuf,
}

impl ConsulAgent {
    /// Installs Consul if needed and starts a dev agent.
    pub async fn start(name: &str) -> anyhow::Result<Self> {
        Self::start_with(name, &[]).await
    }

    /// A dev agent with ACLs on (default deny) and `token` as its master token.
    pub async fn start_with_acl(name: &str, token: &str) -> anyhow::Result<Self> {
        let acl = format!("-hcl=acl {{ enabled = true\n default_policy = \"deny\"\n tokens {{ master = \"{token}\" }} }}");
        Self::start_with(name, &[acl]).await
    }

    async fn start_with(name: &str, extra: &[String]) -> anyhow::Result<Self> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_default();
        let out = StdCommand::new(root.join("scripts/consul-install")).output().context("run scripts/consul-install")?;
        anyhow::ensure!(out.status.success(), "Consul could not be installed: {}", String::from_utf8_lossy(&out.stderr));
        let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().to_string());
        let http_port = reserved_port();
        let args = vec![
            "agent".to_string(),
            "-dev".to_string(),
            "-bind=127.0.0.1".to_string(),
            "-client=127.0.0.1".to_string(),
            format!("-http-port={http_port}"),
            "-dns-port=-1".to_string(),
            "-grpc-port=-1".to_string(),
            format!("-serf-lan-port={}", reserved_port()),
            format!("-serf-wan-port={}", reserved_port()),
            format!("-server-port={}", reserved_port()),
        ];
        let args = [args, extra.to_vec()].concat();
        let log = crate::work_dir(&format!("consul-{name}")).join("consul.log");
        let mut agent = Self { child: None, bin, args, http_port, log };
        agent.spawn().await?;
        Ok(agent)
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        self.child = Some(
            Command::new(&self.bin)
                .args(&self.args)
                .stdout(log.try_clone()?)
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .context("start consul")?,
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = reqwest::get(format!("{}/v1/status/leader", self.url())).await
                && r.text().await.is_ok_and(|t| t.contains(':'))
            {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("Consul did not elect a leader within 30 s; see {}", self.log.display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// How many instances of `service` pass their checks.
    pub async fn passing(&self, service: &str) -> anyhow::Result<usize> {
        let body = reqwest::get(format!("{}/v1/health/service/{service}?passing=true", self.url())).await?.text().await?;
        Ok(serde_json::from_str::<serde_json::Value>(&body)?.as_array().map(Vec::len).unwrap_or(0))
    }

    /// Stops it (a dev agent forgets everything).
    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }

    /// Starts it again on the same ports.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop().await;
        self.spawn().await
    }
}

/// A real nginx (Debian's) proxying `/` to one upstream, whose definition lives in an included
/// file that `framework lb` rewrites.
pub struct Nginx {
    child: Option<Child>,
    /// The port it listens on.
    pub port: u16,
    /// Its nginx.conf.
    pub conf: PathBuf,
    /// The upstreams file it includes.
    pub upstreams: PathBuf,
}

impl Nginx {
    /// Starts nginx proxying to upstream `upstream` (initially a placeholder server).
    pub async fn start(name: &str, upstream: &str) -> anyhow::Result<Self> {
        let dir = crate::work_dir(&format!("nginx-{name}"));
        let port = free_port();
        let upstreams = dir.join("upstreams.conf");
        std::fs::write(&upstreams, format!("upstream {upstream} {{\n    server 127.0.0.1:1 down;\n}}\n"))?;
        let conf = dir.join("nginx.conf");
        let d = dir.display();
        std::fs::write(
            &conf,
            format!(
                "pid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  \
                 fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  include {};\n  \
                 server {{\n    listen 127.0.0.1:{port};\n    location / {{ proxy_pass http://{upstream}; }}\n  }}\n}}\n",
                upstreams.display()
            ),
        )?;
        let log = std::fs::File::create(dir.join("nginx.out"))?;
        let child = Command::new("nginx")
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off;"])
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("start nginx (Debian's nginx-light)")?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "nginx did not listen on {port}; see {}", dir.display());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Self { child: Some(child), port, conf, upstreams })
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.start_kill();
        }
    }
}
