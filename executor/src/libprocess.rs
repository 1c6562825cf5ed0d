//! The executor driver's link to its agent as Mesos's own executors speak it (libprocess
//! messages: protobuf bodies POSTed to `/<process>/<message name>`, the sender named in a
//! `Libprocess-From` header), used by our `mesos-docker-executor` stand-in.
//!
//! It matters for agent restarts: a Mesos agent's Docker containerizer recovers only executors
//! that registered with a libprocess pid (`src/slave/containerizer/docker.cpp`, `_recover`
//! skips runs without one), and after its restart the agent asks each of them to reconnect
//! (`ReconnectExecutorMessage`). An executor on the v1 HTTP API is never recovered there, and
//! its task ends when the agent comes back.
//!
//! The message types are Mesos's internal ones (`src/messages/messages.proto`), whose field
//! numbers are kept here; their `mesos.*` fields are wire-compatible with our `mesos.v1.*` types.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use mesos_proto::v1;
use prost::Message as _;
use tokio::io::AsyncReadExt as _;
use tokio::sync::mpsc;

/// A libprocess process id: `name@host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upid {
    /// The process's name (`slave(1)`, `executor(1)`).
    pub id: String,
    /// `host:port` of the process's HTTP server.
    pub addr: String,
}

impl Upid {
    /// Parses `name@host:port`; `None` when either part is missing.
    pub fn parse(text: &str) -> Option<Self> {
        let (id, addr) = text.trim().split_once('@')?;
        (!id.is_empty() && addr.contains(':')).then(|| Upid { id: id.to_string(), addr: addr.to_string() })
    }

    fn url(&self, message: &str) -> String {
        format!("http://{}/{}/{message}", self.addr, self.id)
    }
}

impl fmt::Display for Upid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.id, self.addr)
    }
}

/// `mesos.internal.RegisterExecutorMessage`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RegisterExecutorMessage {
    #[prost(message, optional, tag = "1")]
    pub framework_id: Option<v1::FrameworkId>,
    #[prost(message, optional, tag = "2")]
    pub executor_id: Option<v1::ExecutorId>,
}

/// `mesos.internal.ExecutorRegisteredMessage` (only the agent's id is read).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExecutorRegisteredMessage {
    #[prost(message, optional, tag = "5")]
    pub slave_id: Option<v1::AgentId>,
}

/// `mesos.internal.ExecutorReregisteredMessage` and `ReconnectExecutorMessage` (both carry
/// the agent's id as field 1).
#[derive(Clone, PartialEq, prost::Message)]
pub struct AgentIdMessage {
    #[prost(message, optional, tag = "1")]
    pub slave_id: Option<v1::AgentId>,
}

/// `mesos.internal.ReregisterExecutorMessage`: the executor's answer to a reconnect request,
/// with what the agent may have lost.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReregisterExecutorMessage {
    #[prost(message, optional, tag = "1")]
    pub executor_id: Option<v1::ExecutorId>,
    #[prost(message, optional, tag = "2")]
    pub framework_id: Option<v1::FrameworkId>,
    #[prost(message, repeated, tag = "3")]
    pub tasks: Vec<v1::TaskInfo>,
    #[prost(message, repeated, tag = "4")]
    pub updates: Vec<StatusUpdate>,
}

/// `mesos.internal.RunTaskMessage` (the task is what is read).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RunTaskMessage {
    #[prost(message, optional, tag = "4")]
    pub task: Option<v1::TaskInfo>,
}

/// `mesos.internal.KillTaskMessage`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KillTaskMessage {
    #[prost(message, optional, tag = "1")]
    pub framework_id: Option<v1::FrameworkId>,
    #[prost(message, optional, tag = "2")]
    pub task_id: Option<v1::TaskId>,
    #[prost(message, optional, tag = "3")]
    pub kill_policy: Option<v1::KillPolicy>,
}

/// `mesos.internal.StatusUpdate`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusUpdate {
    #[prost(message, optional, tag = "1")]
    pub framework_id: Option<v1::FrameworkId>,
    #[prost(message, optional, tag = "2")]
    pub executor_id: Option<v1::ExecutorId>,
    #[prost(message, optional, tag = "3")]
    pub slave_id: Option<v1::AgentId>,
    #[prost(message, optional, tag = "4")]
    pub status: Option<v1::TaskStatus>,
    #[prost(double, optional, tag = "5")]
    pub timestamp: Option<f64>,
    #[prost(bytes = "vec", optional, tag = "6")]
    pub uuid: Option<Vec<u8>>,
}

/// `mesos.internal.StatusUpdateMessage`: `pid` is the executor's own (the agent marks updates
/// without one as its own).
#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusUpdateMessage {
    #[prost(message, optional, tag = "1")]
    pub update: Option<StatusUpdate>,
    #[prost(string, optional, tag = "2")]
    pub pid: Option<String>,
}

/// `mesos.internal.StatusUpdateAcknowledgementMessage`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusUpdateAcknowledgementMessage {
    #[prost(message, optional, tag = "1")]
    pub slave_id: Option<v1::AgentId>,
    #[prost(message, optional, tag = "2")]
    pub framework_id: Option<v1::FrameworkId>,
    #[prost(message, optional, tag = "3")]
    pub task_id: Option<v1::TaskId>,
    #[prost(bytes = "vec", optional, tag = "4")]
    pub uuid: Option<Vec<u8>>,
}

/// What the agent told the executor.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// The agent registered us (first registration) or re-registered us (after a reconnect).
    Registered { agent_id: String },
    /// The restarted agent asks us to re-register.
    Reconnect { agent_id: String },
    /// Run this task.
    Launch(Box<v1::TaskInfo>),
    /// Kill this task, with the policy's grace period if given.
    Kill { task_id: String, kill_policy: Option<v1::KillPolicy> },
    /// The scheduler acknowledged this update.
    Acknowledged { task_id: String, uuid: Vec<u8> },
    /// Kill everything and exit.
    Shutdown,
    /// The connection we hold to the agent closed: it may be restarting.
    Disconnected,
}

/// Decodes one message the agent sent; `None` for names we do not act on.
pub fn decode(name: &str, body: &[u8]) -> Result<Option<Inbound>, prost::DecodeError> {
    let agent = |id: Option<v1::AgentId>| id.map(|a| a.value).unwrap_or_default();
    Ok(Some(match name.strip_prefix("mesos.internal.").unwrap_or(name) {
        "ExecutorRegisteredMessage" => Inbound::Registered { agent_id: agent(ExecutorRegisteredMessage::decode(body)?.slave_id) },
        "ExecutorReregisteredMessage" => Inbound::Registered { agent_id: agent(AgentIdMessage::decode(body)?.slave_id) },
        "ReconnectExecutorMessage" => Inbound::Reconnect { agent_id: agent(AgentIdMessage::decode(body)?.slave_id) },
        "RunTaskMessage" => match RunTaskMessage::decode(body)?.task {
            Some(task) => Inbound::Launch(Box::new(task)),
            None => return Ok(None),
        },
        "KillTaskMessage" => {
            let m = KillTaskMessage::decode(body)?;
            Inbound::Kill { task_id: m.task_id.map(|t| t.value).unwrap_or_default(), kill_policy: m.kill_policy }
        }
        "StatusUpdateAcknowledgementMessage" => {
            let m = StatusUpdateAcknowledgementMessage::decode(body)?;
            Inbound::Acknowledged { task_id: m.task_id.map(|t| t.value).unwrap_or_default(), uuid: m.uuid.unwrap_or_default() }
        }
        "ShutdownExecutorMessage" => Inbound::Shutdown,
        _ => return Ok(None),
    }))
}

/// Our end of the link: our process id, the agent's, and how to send to it.
#[derive(Clone)]
pub struct Link {
    /// Our process id, which the agent checkpoints and sends to.
    pub me: Upid,
    /// The agent's process id (`MESOS_SLAVE_PID`).
    pub agent: Upid,
    http: reqwest::Client,
    inbound: mpsc::UnboundedSender<Inbound>,
}

impl Link {
    /// Serves `executor(1)` on `bind` (port 0: any) and returns the link and what the agent
    /// sends. The server runs until the process exits.
    pub async fn start(agent: Upid, bind: SocketAddr) -> anyhow::Result<(Self, mpsc::UnboundedReceiver<Inbound>)> {
        let listener =
            tokio::net::TcpListener::bind(bind).await.with_context(|| format!("binding the executor's libprocess address {bind}"))?;
        let local = listener.local_addr()?;
        let me = Upid { id: "executor(1)".to_string(), addr: local.to_string() };
        let (tx, rx) = mpsc::unbounded_channel();
        let served = tx.clone();
        let prefix = format!("/{}/", me.id);
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri, body: axum::body::Bytes| {
            let tx = served.clone();
            let prefix = prefix.clone();
            async move {
                let Some(name) = uri.path().strip_prefix(&prefix) else { return axum::http::StatusCode::NOT_FOUND };
                match decode(name, &body) {
                    Ok(Some(msg)) => {
                        let _ = tx.send(msg);
                    }
                    Ok(None) => tracing::debug!(name, "message not acted on"),
                    Err(e) => tracing::warn!(name, error = %e, "undecodable message from the agent"),
                }
                axum::http::StatusCode::ACCEPTED
            }
        });
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the executor's libprocess server stopped");
            }
        });
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
        Ok((Link { me, agent, http, inbound: tx }, rx))
    }

    /// Sends one message to the agent; true when it took it (202).
    pub async fn send(&self, name: &str, message: &impl prost::Message) -> bool {
        let sent = self
            .http
            .post(self.agent.url(&format!("mesos.internal.{name}")))
            .header("Libprocess-From", self.me.to_string())
            .body(message.encode_to_vec())
            .send()
            .await;
        match sent {
            Ok(r) if r.status().as_u16() == 202 => true,
            Ok(r) => {
                tracing::warn!(name, status = %r.status(), "the agent refused the message");
                false
            }
            Err(e) => {
                tracing::warn!(name, error = %e, "the agent is unreachable");
                false
            }
        }
    }

    /// Holds a connection to the agent and reports [`Inbound::Disconnected`] when it closes, as
    /// libprocess's link tells the driver that its agent exited.
    pub fn watch_agent(&self) {
        let addr = self.agent.addr.clone();
        let tx = self.inbound.clone();
        tokio::spawn(async move {
            if let Ok(mut conn) = tokio::net::TcpStream::connect(&addr).await {
                let mut buf = [0u8; 512];
                while matches!(conn.read(&mut buf).await, Ok(n) if n > 0) {}
            }
            let _ = tx.send(Inbound::Disconnected);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upids_parse_as_libprocess_writes_them() {
        assert_eq!(Upid::parse("slave(1)@127.0.0.1:5051"), Some(Upid { id: "slave(1)".into(), addr: "127.0.0.1:5051".into() }));
        assert_eq!(
            Upid::parse("slave(1)@127.0.0.1:5051").map(|u| u.url("mesos.internal.X")).as_deref(),
            Some("http://127.0.0.1:5051/slave(1)/mesos.internal.X")
        );
        for bad in ["", "slave(1)", "@127.0.0.1:5051", "slave(1)@"] {
            assert_eq!(Upid::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn agent_messages_decode_into_what_the_executor_acts_on() {
        let task = v1::TaskInfo { name: "t".into(), task_id: v1::TaskId { value: "t.1".into() }, ..Default::default() };
        // RunTaskMessage: framework (2) and pid (3) precede the task (4) on the wire.
        let mut run = Vec::new();
        prost::encoding::message::encode(2, &v1::FrameworkInfo { user: "u".into(), name: "f".into(), ..Default::default() }, &mut run);
        prost::encoding::string::encode(3, &"scheduler(1)@10.0.0.1:1".to_string(), &mut run);
        prost::encoding::message::encode(4, &task, &mut run);
        assert_eq!(decode("mesos.internal.RunTaskMessage", &run).ok().flatten(), Some(Inbound::Launch(Box::new(task))));

        let ack = StatusUpdateAcknowledgementMessage {
            task_id: Some(v1::TaskId { value: "t.1".into() }),
            uuid: Some(vec![7; 16]),
            ..Default::default()
        };
        assert_eq!(
            decode("mesos.internal.StatusUpdateAcknowledgementMessage", &ack.encode_to_vec()).ok().flatten(),
            Some(Inbound::Acknowledged { task_id: "t.1".into(), uuid: vec![7; 16] })
        );
        let reconnect = AgentIdMessage { slave_id: Some(v1::AgentId { value: "S1".into() }) };
        assert_eq!(
            decode("mesos.internal.ReconnectExecutorMessage", &reconnect.encode_to_vec()).ok().flatten(),
            Some(Inbound::Reconnect { agent_id: "S1".into() })
        );
        assert_eq!(decode("mesos.internal.ShutdownExecutorMessage", &[]).ok().flatten(), Some(Inbound::Shutdown));
        assert_eq!(decode("mesos.internal.FrameworkToExecutorMessage", &[]).ok().flatten(), None);
        assert!(decode("mesos.internal.KillTaskMessage", &[0xff, 0xff]).is_err(), "garbage is an error, never a panic");
    }
}
