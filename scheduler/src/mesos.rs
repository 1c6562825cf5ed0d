//! The Mesos v1 scheduler API client: one task keeps a subscription open (following 307
//! redirects, watching heartbeats, re-subscribing with backoff), another posts the calls the
//! scheduler actor hands over. Both only translate; every decision is the actor's.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use futures_util::StreamExt as _;
use mesos_proto::codec::{self, Encoding};
use mesos_proto::stream::RecordStream;
use mesos_proto::v1::scheduler::{Call, Event, call, event};
use mesos_proto::v1::{FrameworkId, FrameworkInfo};
use tokio::sync::{mpsc, watch};

/// Largest event record we accept (Mesos offers with many agents can be large).
const MAX_RECORD: usize = 64 << 20;

/// Where the leading Mesos master is found.
#[derive(Debug, Clone)]
pub enum MasterSource {
    /// A fixed base URL of any master, e.g. `http://127.0.0.1:5050` (307s are followed).
    Fixed(String),
    /// The leader detected through ZooKeeper (None while no master is registered).
    Detected(watch::Receiver<Option<String>>),
}

impl MasterSource {
    /// The master to subscribe to now, waiting while none is known.
    async fn current(&mut self) -> String {
        match self {
            MasterSource::Fixed(url) => url.trim_end_matches('/').to_string(),
            MasterSource::Detected(rx) => loop {
                if let Some(url) = rx.borrow_and_update().clone() {
                    return url;
                }
                if rx.changed().await.is_err() {
                    // The detector is gone; nothing will ever be found.
                    std::future::pending::<()>().await;
                }
            },
        }
    }

    /// Resolves when the detected leader changes (never for a fixed master).
    async fn changed(&mut self) {
        match self {
            MasterSource::Fixed(_) => std::future::pending().await,
            MasterSource::Detected(rx) => {
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

/// How the client reaches Mesos.
#[derive(Debug, Clone)]
pub struct MesosConfig {
    /// Where the master is.
    pub master: MasterSource,
    /// JSON or protobuf on the wire.
    pub encoding: Encoding,
    /// What we subscribe with (the id is filled in from the last SUBSCRIBED).
    pub framework: FrameworkInfo,
    /// Missed heartbeats after which the connection is considered dead (Marathon: 5).
    pub missed_heartbeats: u32,
    /// Framework authentication to the master (HTTP basic), when it requires it.
    pub credentials: Option<MesosCredentials>,
    /// The CA (PEM) trusted for `https://` masters instead of the system's roots
    /// (`--mesos-ca`); with it, masters detected in ZooKeeper are reached over https too.
    pub ca: Option<std::path::PathBuf>,
}

/// A framework principal and its secret.
#[derive(Clone)]
pub struct MesosCredentials {
    /// The principal (also sent as `FrameworkInfo.principal`).
    pub principal: String,
    /// Its secret.
    pub secret: String,
}

impl std::fmt::Debug for MesosCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MesosCredentials").field("principal", &self.principal).field("secret", &"<redacted>").finish()
    }
}

/// The `Authorization` header for `credentials`, marked sensitive so it is never logged.
fn authorization(credentials: &MesosCredentials) -> Option<reqwest::header::HeaderValue> {
    let token =
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{}:{}", credentials.principal, credentials.secret));
    let mut value = reqwest::header::HeaderValue::from_str(&format!("Basic {token}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// What the client tells the scheduler actor.
#[derive(Debug)]
pub enum MesosUpdate {
    /// A subscription is open and SUBSCRIBED arrived.
    Subscribed {
        /// Our framework id (new, or the one we re-subscribed with).
        framework_id: String,
        /// The master that answered.
        master: String,
        /// The master's fault-domain region, if it has one.
        region: Option<String>,
    },
    /// An event other than SUBSCRIBED and HEARTBEAT.
    Event(Box<Event>),
    /// The subscription ended; the client is re-subscribing.
    Disconnected {
        /// Why.
        reason: String,
    },
    /// Mesos removed this framework (its failover timeout passed, or an operator tore it down)
    /// and refuses its id for good; Mesos has killed its tasks. The client has stopped: only an
    /// operator may register a new framework (see [`FRAMEWORK_REMOVED`]).
    Removed {
        /// The framework id Mesos refused.
        framework_id: String,
        /// Mesos's ERROR message.
        message: String,
    },
}

/// The message of Mesos's ERROR event for a framework id it removed (master.cpp).
pub const FRAMEWORK_REMOVED: &str = "Framework has been removed";

/// How one subscription ended.
enum Ended {
    /// The stream closed, after SUBSCRIBED or (false) before.
    Closed(bool),
    /// Mesos removed the framework: no more subscriptions.
    Removed,
}

/// The live subscription calls are posted on.
#[derive(Debug, Clone)]
struct Session {
    url: String,
    stream_id: String,
    framework_id: String,
}

/// Handle for sending calls; calls made while disconnected are dropped (reconciliation after the
/// next SUBSCRIBED repairs what they would have done).
#[derive(Debug, Clone)]
pub struct MesosCalls {
    tx: mpsc::UnboundedSender<Call>,
}

impl MesosCalls {
    /// Queues a call; the framework id and stream id are filled in when it is posted.
    pub fn send(&self, call: Call) {
        // A closed channel means the client is shutting down; nothing left to do with the call.
        let _ = self.tx.send(call);
    }
}

/// The ERROR events Mesos sent this client (shown by /v2/info and /metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MesosErrors {
    /// How many.
    pub count: u64,
    /// The last one's message, and when it came.
    pub last: Option<(String, framework_core::ids::Timestamp)>,
}

/// The running client; dropping it stops its tasks (and so closes the subscription).
#[derive(Debug)]
pub struct MesosClient {
    /// Where calls go.
    pub calls: MesosCalls,
    /// The ERROR events Mesos sent so far.
    pub errors: watch::Receiver<MesosErrors>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for MesosClient {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts the client tasks. `framework_id` is the persisted id, if any. Fails only when the
/// `--mesos-ca` file cannot be used.
pub fn start(config: MesosConfig, framework_id: Option<String>, updates: mpsc::Sender<MesosUpdate>) -> anyhow::Result<MesosClient> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(value) = config.credentials.as_ref().and_then(authorization) {
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    let http = crate::tls::client_builder(config.ca.as_deref())
        .context("cannot use --mesos-ca")?
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .default_headers(headers)
        .build()
        .context("cannot build the HTTP client for Mesos")?;
    let (session_tx, session_rx) = watch::channel(None);
    let (errors_tx, errors) = watch::channel(MesosErrors::default());
    let (tx, rx) = mpsc::unbounded_channel();
    let tasks = vec![
        tokio::spawn(subscription_loop(http.clone(), config.clone(), framework_id, updates, session_tx, errors_tx)),
        tokio::spawn(call_loop(http, config.encoding, rx, session_rx)),
    ];
    Ok(MesosClient { calls: MesosCalls { tx }, errors, tasks })
}

/// Keeps a subscription open for as long as the process lives.
async fn subscription_loop(
    http: reqwest::Client,
    config: MesosConfig,
    mut framework_id: Option<String>,
    updates: mpsc::Sender<MesosUpdate>,
    session: watch::Sender<Option<Session>>,
    errors: watch::Sender<MesosErrors>,
) {
    let mut retry = crate::retry::Retry::new(Duration::from_millis(250), Duration::from_secs(10));
    let mut source = config.master.clone();
    loop {
        let mut master = source.current().await;
        // Masters detected in ZooKeeper say nothing of TLS; a CA given means https.
        if config.ca.is_some()
            && let Some(rest) = master.strip_prefix("http://")
        {
            master = format!("https://{rest}");
        }
        let result = tokio::select! {
            r = subscribe_once(&http, &config, &mut master, &mut framework_id, &updates, &session, &errors) => r,
            () = source.changed() => Err(anyhow::anyhow!("the leading Mesos master changed")),
        };
        session.send_replace(None);
        let reason = match result {
            Ok(Ended::Removed) => return,
            Ok(Ended::Closed(true)) => {
                retry.reset();
                "the event stream ended".to_string()
            }
            Ok(Ended::Closed(false)) => "the event stream ended before SUBSCRIBED".to_string(),
            Err(e) => format!("{e:#}"),
        };
        let delay = retry.next_delay();
        tracing::warn!(%reason, "disconnected from Mesos; re-subscribing in {delay:?}");
        if updates.send(MesosUpdate::Disconnected { reason }).await.is_err() {
            return;
        }
        tokio::time::sleep(delay).await;
    }
}

/// One subscription; returns how it ended (whether it got as far as SUBSCRIBED).
async fn subscribe_once(
    http: &reqwest::Client,
    config: &MesosConfig,
    master: &mut String,
    framework_id: &mut Option<String>,
    updates: &mpsc::Sender<MesosUpdate>,
    session: &watch::Sender<Option<Session>>,
    errors: &watch::Sender<MesosErrors>,
) -> anyhow::Result<Ended> {
    let mut info = config.framework.clone();
    info.id = framework_id.clone().map(|value| FrameworkId { value });
    let call = Call {
        framework_id: info.id.clone(),
        r#type: Some(call::Type::Subscribe as i32),
        subscribe: Some(call::Subscribe { framework_info: info, ..Default::default() }),
        ..Default::default()
    };
    let body = codec::encode(&call, config.encoding);
    let mut redirects = 0;
    let resp = loop {
        let resp = http
            .post(format!("{master}/api/v1/scheduler"))
            .header("Content-Type", config.encoding.content_type())
            .header("Accept", config.encoding.content_type())
            .body(body.clone())
            .send()
            .await
            .with_context(|| format!("cannot reach the Mesos master at {master}"))?;
        if resp.status().as_u16() == 307 && redirects < 5 {
            redirects += 1;
            let location = resp.headers().get("Location").and_then(|v| v.to_str().ok()).unwrap_or_default();
            let scheme = if master.starts_with("https://") { "https" } else { "http" };
            *master = leader_base(location, scheme).with_context(|| format!("307 from {master} without a usable Location"))?;
            tracing::info!(%master, "following the master's redirect to the leader");
            continue;
        }
        break resp;
    };
    let status = resp.status().as_u16();
    if status != 200 {
        let text = resp.text().await.unwrap_or_default();
        if status == 401 {
            bail!(
                "the Mesos master at {master} requires framework authentication and refused ours: give (or correct) \
                 --mesos-authentication-principal and --mesos-authentication-secret-file"
            );
        }
        bail!("SUBSCRIBE answered {status}: {text}");
    }
    let stream_id = resp
        .headers()
        .get("Mesos-Stream-Id")
        .and_then(|v| v.to_str().ok())
        .context("SUBSCRIBE response without Mesos-Stream-Id")?
        .to_string();
    let mut records = RecordStream::new(Box::pin(resp.bytes_stream()), MAX_RECORD);
    // Until SUBSCRIBED tells us the heartbeat interval, allow the Mesos default.
    let mut silence_limit = Duration::from_secs(15) * config.missed_heartbeats.max(1);
    let mut subscribed = false;
    loop {
        let record = match tokio::time::timeout(silence_limit, records.next()).await {
            Err(_) => bail!("no event (not even a HEARTBEAT) for {silence_limit:?}"),
            Ok(None) => return Ok(Ended::Closed(subscribed)),
            Ok(Some(Err(e))) => bail!("broken event stream: {e}"),
            Ok(Some(Ok(record))) => record,
        };
        let event: Event = codec::decode(&record, config.encoding).context("undecodable event")?;
        match event.r#type() {
            event::Type::Subscribed => {
                let Some(sub) = event.subscribed else { bail!("SUBSCRIBED without its body") };
                let id = sub.framework_id.value;
                let region = sub
                    .master_info
                    .as_ref()
                    .and_then(|m| m.domain.as_ref())
                    .and_then(|d| d.fault_domain.as_ref())
                    .map(|f| f.region.name.clone());
                if let Some(hb) = sub.heartbeat_interval_seconds.filter(|s| s.is_finite() && *s > 0.0) {
                    silence_limit = Duration::from_secs_f64(hb.min(3600.0)) * config.missed_heartbeats.max(1);
                }
                *framework_id = Some(id.clone());
                session.send_replace(Some(Session { url: master.clone(), stream_id: stream_id.clone(), framework_id: id.clone() }));
                subscribed = true;
                updates.send(MesosUpdate::Subscribed { framework_id: id, master: master.clone(), region }).await?;
            }
            event::Type::Heartbeat => {}
            event::Type::Error => {
                let message = event.error.map(|e| e.message).unwrap_or_default();
                if message.contains(FRAMEWORK_REMOVED)
                    && let Some(id) = framework_id.clone()
                {
                    // The master removed this framework and killed its tasks; its id can never
                    // subscribe again. Registering a new framework by ourselves would relaunch
                    // every app under it behind the operator's back: stop instead (as Marathon
                    // does) and leave the decision to an operator.
                    tracing::error!(framework_id = %id, %message, "Mesos removed this framework");
                    updates.send(MesosUpdate::Removed { framework_id: id, message }).await?;
                    return Ok(Ended::Removed);
                }
                // Any other ERROR (a refused subscription: roles, user, authorization, an invalid
                // failover timeout; or "Framework failed over" when another scheduler took our
                // id): counted and shown, and the subscription is tried again with backoff.
                errors.send_modify(|e| {
                    e.count += 1;
                    e.last = Some((message.clone(), crate::actor::now()));
                });
                bail!("Mesos sent ERROR: {message}");
            }
            _ => updates.send(MesosUpdate::Event(Box::new(event))).await?,
        }
    }
}

/// The base URL from a 307 Location, which Mesos writes scheme-relative (`//host:port/...`):
/// then with `scheme`, the one the redirecting master was reached with.
fn leader_base(location: &str, scheme: &str) -> Option<String> {
    let (scheme, rest) = match location.split_once("://") {
        Some((given @ ("http" | "https"), rest)) => (given, rest),
        Some(_) => return None,
        None => (scheme, location.strip_prefix("//")?),
    };
    let host = rest.split('/').next().filter(|h| !h.is_empty())?;
    Some(format!("{scheme}://{host}"))
}

/// Acknowledgements, whose order does not matter, are posted with up to this many in flight; one
/// round trip each would otherwise bound the update rate.
/// How long a call may wait for the master's answer (Mesos answers 202 at once): a stalled call
/// must not hold up every later KILL and ACCEPT. A call given up on counts as lost, which the
/// kill retry, the launch timeout and reconciliation repair.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const UNORDERED_IN_FLIGHT: usize = 64;

/// ACCEPTs (launches) are posted with up to this many in flight.
const LAUNCHES_IN_FLIGHT: u32 = 16;

/// Posts queued calls on the current session. Acknowledgements go alongside everything else;
/// launches (ACCEPT) alongside one another; every other call (KILL, DECLINE, REVIVE, ...) waits
/// until the launches posted before it are answered and is posted in order: a KILL must not
/// overtake the ACCEPT that launched its task, and a DECLINE's long refusal must not land after
/// the REVIVE that was meant to clear it.
async fn call_loop(
    http: reqwest::Client,
    encoding: Encoding,
    mut calls: mpsc::UnboundedReceiver<Call>,
    session: watch::Receiver<Option<Session>>,
) {
    let unordered = Arc::new(tokio::sync::Semaphore::new(UNORDERED_IN_FLIGHT));
    let launches = Arc::new(tokio::sync::Semaphore::new(LAUNCHES_IN_FLIGHT as usize));
    while let Some(mut call) = calls.recv().await {
        let current = session.borrow().clone();
        let Some(s) = current else {
            tracing::debug!(call = ?call.r#type(), "not subscribed; dropping call");
            continue;
        };
        call.framework_id = Some(FrameworkId { value: s.framework_id.clone() });
        let permit = match call.r#type() {
            call::Type::Acknowledge => unordered.clone().acquire_owned().await,
            call::Type::Accept => launches.clone().acquire_owned().await,
            _ => {
                // Every launch permit: all earlier ACCEPTs have been answered.
                let Ok(all) = launches.acquire_many(LAUNCHES_IN_FLIGHT).await else { return };
                post_call(&http, encoding, &s, &call, CALL_TIMEOUT).await;
                drop(all);
                continue;
            }
        };
        let Ok(permit) = permit else { return };
        let http = http.clone();
        tokio::spawn(async move {
            post_call(&http, encoding, &s, &call, CALL_TIMEOUT).await;
            drop(permit);
        });
    }
}

/// Posts one call, waiting at most `timeout` for the answer; a refusal, a failure or no answer
/// is logged (the actor's clocks retry what matters). Returns whether Mesos accepted it.
async fn post_call(http: &reqwest::Client, encoding: Encoding, s: &Session, call: &Call, timeout: Duration) -> bool {
    let kind = call.r#type();
    let result = http
        .post(format!("{}/api/v1/scheduler", s.url))
        .header("Content-Type", encoding.content_type())
        .header("Accept", encoding.content_type())
        .header("Mesos-Stream-Id", &s.stream_id)
        .body(codec::encode(call, encoding))
        .timeout(timeout)
        .send()
        .await;
    match result {
        Ok(resp) if resp.status().as_u16() == 202 => true,
        Ok(resp) => {
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            tracing::warn!(?kind, %status, %text, "Mesos refused a call");
            false
        }
        Err(e) if e.is_timeout() => {
            tracing::warn!(?kind, ?timeout, "Mesos did not answer a call in time; counted as lost (retries and reconciliation repair it)");
            false
        }
        Err(e) => {
            tracing::warn!(?kind, error = %e, "could not post a call to Mesos");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A master that accepts the connection and never answers does not hold the call (and so
    /// every call queued behind it) for longer than the timeout.
    #[tokio::test]
    async fn a_stalled_call_is_given_up_after_the_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((conn, _)) = listener.accept().await {
                held.push(conn);
            }
        });
        let s = Session { url: format!("http://{addr}"), stream_id: "s".into(), framework_id: "f".into() };
        let call = framework_core::calls::reconcile([]);
        // Without the timeout the call would wait forever; the outer bound only keeps a broken
        // build from hanging the suite (no speed is measured here).
        let posted = tokio::time::timeout(
            Duration::from_secs(120),
            post_call(&reqwest::Client::new(), Encoding::Json, &s, &call, Duration::from_millis(300)),
        )
        .await
        .expect("post_call gives up on a master that never answers");
        assert!(!posted, "a call without an answer counts as not accepted");
        hold.abort();
    }

    #[test]
    fn redirect_locations_become_base_urls() {
        assert_eq!(leader_base("//10.0.0.2:5050/api/v1/scheduler", "http").as_deref(), Some("http://10.0.0.2:5050"));
        assert_eq!(leader_base("//10.0.0.2:5050/api/v1/scheduler", "https").as_deref(), Some("https://10.0.0.2:5050"));
        assert_eq!(leader_base("http://m2:5050/master/api/v1/scheduler", "https").as_deref(), Some("http://m2:5050"));
        assert_eq!(leader_base("https://m2:5050/api/v1/scheduler", "http").as_deref(), Some("https://m2:5050"));
        assert_eq!(leader_base("/api/v1/scheduler", "http"), None);
        assert_eq!(leader_base("//", "http"), None);
        assert_eq!(leader_base("ftp://m2/x", "http"), None);
    }
}
