//! `framework-cli`: the command line for a `framework` (or Marathon) server.
//!
//! Exit codes: 0 success; 1 the server refused or could not be reached; 2 bad usage;
//! 3 a deployment failed, was cancelled or timed out while waiting; 4 an app or task name did not
//! resolve (unknown or ambiguous).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use futures_util::StreamExt as _;
use serde_json::{Value, json};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned columns for people.
    Table,
    /// The server's JSON.
    Json,
}

/// Command line of `framework-cli`.
#[derive(Debug, Parser)]
#[command(
    name = "framework-cli",
    version,
    about = "Drive a framework (Marathon-compatible) server",
    after_help = "Exit codes: 0 success; 1 the server refused or could not be reached; 2 bad usage; \
                  3 a deployment failed, was cancelled or timed out; 4 an app or task name did not resolve."
)]
pub struct Cli {
    /// Server URL (else FRAMEWORK_URL, else MARATHON_URL, else http://127.0.0.1:8080).
    #[arg(long, global = true)]
    pub url: Option<String>,
    /// HTTP basic credentials `user:password` (else FRAMEWORK_CREDENTIALS).
    #[arg(long, global = true, env = "FRAMEWORK_CREDENTIALS", hide_env_values = true)]
    pub credentials: Option<String>,
    /// Bearer token (else FRAMEWORK_TOKEN).
    #[arg(long, global = true, env = "FRAMEWORK_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// PEM CA certificates to trust for an HTTPS server (else FRAMEWORK_CA_CERT; the system's
    /// roots without it).
    #[arg(long, global = true, env = "FRAMEWORK_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Do not verify the HTTPS server's certificate (for tests only: anyone on the path can
    /// read and change what is sent, credentials included).
    #[arg(long, global = true)]
    pub insecure_skip_tls_verify: bool,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value = "table")]
    pub output: Output,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List apps, or show one.
    Apps {
        /// An app to show.
        app: Option<String>,
    },
    /// Create or update an app or a group from a JSON file, or every JSON file of a directory.
    Deploy {
        /// File or directory.
        path: PathBuf,
        /// Follow the deployment until it finishes.
        #[arg(long)]
        wait: bool,
        /// Override deployments in progress.
        #[arg(long)]
        force: bool,
        /// Seconds to wait with --wait.
        #[arg(long, default_value_t = 600, env = "FRAMEWORK_WAIT_TIMEOUT")]
        timeout: u64,
    },
    /// Set an app's instance count.
    Scale {
        /// App (id or short name).
        app: String,
        /// Instances.
        instances: u32,
        /// Follow the deployment.
        #[arg(long)]
        wait: bool,
        /// Override deployments in progress.
        #[arg(long)]
        force: bool,
        /// Seconds to wait with --wait.
        #[arg(long, default_value_t = 600, env = "FRAMEWORK_WAIT_TIMEOUT")]
        timeout: u64,
    },
    /// Replace every task of an app (rolling, per its upgrade strategy).
    Restart {
        /// App.
        app: String,
        /// Follow the deployment.
        #[arg(long)]
        wait: bool,
        /// Seconds to wait with --wait.
        #[arg(long, default_value_t = 600, env = "FRAMEWORK_WAIT_TIMEOUT")]
        timeout: u64,
    },
    /// Delete an app and kill its tasks.
    Destroy {
        /// App.
        app: String,
        /// Follow the deployment.
        #[arg(long)]
        wait: bool,
    },
    /// List tasks (of one app).
    Tasks {
        /// App.
        app: Option<String>,
    },
    /// Kill a task (it is replaced, unless --scale).
    Kill {
        /// Task id.
        task: String,
        /// Shrink the app instead of replacing the task.
        #[arg(long)]
        scale: bool,
    },
    /// List, watch or cancel deployments.
    Deployments {
        /// What to do.
        #[command(subcommand)]
        action: Option<DeploymentAction>,
    },
    /// Apps waiting for offers, and why offers were not used.
    Queue,
    /// The current leader.
    Leader,
    /// Server information.
    Info,
    /// Tail the event stream.
    Events {
        /// Only these event types (repeatable).
        #[arg(long = "type")]
        types: Vec<String>,
    },
    /// Shell completion script.
    Completions {
        /// Shell.
        shell: clap_complete::Shell,
    },
}

/// Deployment subcommands.
#[derive(Debug, Subcommand)]
pub enum DeploymentAction {
    /// List them (the default).
    List,
    /// Print the list every second until interrupted.
    Watch,
    /// Cancel one: roll back, or just stop it with --force.
    Cancel {
        /// Deployment id.
        id: String,
        /// Stop without rollback.
        #[arg(long)]
        force: bool,
    },
}

/// A failure with its exit code.
#[derive(Debug)]
pub struct Failure {
    /// Exit code.
    pub code: i32,
    /// What went wrong and what to do.
    pub message: String,
}

fn fail(code: i32, message: impl Into<String>) -> Failure {
    Failure { code, message: message.into() }
}

/// How long a request keeps being retried while the server answers 503 (no leader).
const NO_LEADER_PATIENCE: Duration = Duration::from_secs(30);

/// The HTTP side.
struct Client {
    base: String,
    http: reqwest::Client,
    credentials: Option<String>,
    token: Option<String>,
}

impl Client {
    fn new(cli: &Cli) -> Result<Self, Failure> {
        let base = cli
            .url
            .clone()
            .or_else(|| std::env::var("FRAMEWORK_URL").ok())
            .or_else(|| std::env::var("MARATHON_URL").ok())
            .unwrap_or_else(|| "http://127.0.0.1:8080".to_string());
        let builder = crate::tls::client_builder(cli.ca_cert.as_deref()).map_err(|e| fail(2, format!("--ca-cert: {e}")))?;
        let http = builder
            .connect_timeout(Duration::from_secs(5))
            .tls_danger_accept_invalid_certs(cli.insecure_skip_tls_verify)
            .build()
            .map_err(|e| fail(2, format!("cannot set up the HTTP client: {}", chain(&e))))?;
        Ok(Self { base: base.trim_end_matches('/').to_string(), http, credentials: cli.credentials.clone(), token: cli.token.clone() })
    }

    /// What to tell the user when a request could not be sent at all.
    fn unreachable(&self, e: &reqwest::Error) -> Failure {
        let why = chain(e);
        let hint = if why.contains("certificate") || why.contains("InvalidCertificate") || why.contains("UnknownIssuer") {
            "The server's certificate is not trusted: pass its CA with --ca-cert FILE (or FRAMEWORK_CA_CERT)."
        } else if self.base.starts_with("http://") && (why.contains("connection closed") || why.contains("reset")) {
            "Is the server serving HTTPS? Then use an https:// URL."
        } else {
            "Is it running? Set --url or FRAMEWORK_URL."
        };
        fail(1, format!("cannot reach the server at {}: {why}. {hint}", self.base))
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some((user, pass)) = self.credentials.as_deref().and_then(|c| c.split_once(':')) {
            req = req.basic_auth(user, Some(pass));
        }
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        req
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Result<(Value, Option<String>), Failure> {
        // A 503 means no instance leads right now (an election is under way) and nothing was
        // done: retry for a while, as a deploy job started during a failover should succeed.
        let started = Instant::now();
        let resp = loop {
            let mut req = self.request(method.clone(), path).timeout(Duration::from_secs(30));
            if let Some(b) = body {
                req = req.header("Content-Type", "application/json").body(b.to_string());
            }
            let resp = req.send().await.map_err(|e| self.unreachable(&e))?;
            if resp.status().as_u16() != 503 || started.elapsed() > NO_LEADER_PATIENCE {
                break resp;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        let status = resp.status().as_u16();
        let deployment = resp.headers().get("Marathon-Deployment-Id").and_then(|v| v.to_str().ok()).map(str::to_string);
        let text = resp.text().await.unwrap_or_default();
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status >= 400 {
            let message = json["message"].as_str().unwrap_or(text.trim());
            let details: Vec<String> = json["details"]
                .as_array()
                .map(|d| d.iter().map(|x| format!("  {}: {}", x["path"].as_str().unwrap_or("/"), x["errors"])).collect())
                .unwrap_or_default();
            let hint = match status {
                401 | 403 => " (check --credentials or --token)",
                409 => " (wait for the deployment, cancel it with `framework-cli deployments cancel ID`, or use --force)",
                422 | 400 => " (fix the JSON and try again)",
                503 => " (the server has no leader right now; retry shortly)",
                _ => "",
            };
            let mut msg = format!("{method} {path} failed with {status}: {message}{hint}");
            for d in details {
                msg.push('\n');
                msg.push_str(&d);
            }
            return Err(fail(if status == 404 { 4 } else { 1 }, msg));
        }
        Ok((json, deployment))
    }

    async fn get(&self, path: &str) -> Result<Value, Failure> {
        self.call(reqwest::Method::GET, path, None).await.map(|(v, _)| v)
    }
}

/// Resolves a short name to an app id: an exact id, else the unique app whose last segment
/// matches.
fn resolve(ids: &[String], name: &str) -> Result<String, Failure> {
    let wanted = if name.starts_with('/') { name.to_string() } else { format!("/{name}") };
    if ids.contains(&wanted) {
        return Ok(wanted);
    }
    let last = name.trim_start_matches('/');
    let candidates: Vec<&String> = ids.iter().filter(|id| id.rsplit('/').next() == Some(last)).collect();
    match candidates.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(fail(4, format!("no app named '{name}'; `framework-cli apps` lists them"))),
        many => Err(fail(
            4,
            format!("'{name}' is ambiguous: {}; give the full id", many.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")),
        )),
    }
}

async fn app_id(client: &Client, name: &str) -> Result<String, Failure> {
    let apps = client.get("/v2/apps").await?;
    let ids: Vec<String> =
        apps["apps"].as_array().map(|a| a.iter().filter_map(|x| x["id"].as_str().map(str::to_string)).collect()).unwrap_or_default();
    resolve(&ids, name)
}

fn table(rows: Vec<Vec<String>>) -> String {
    let widths: Vec<usize> =
        (0..rows.first().map_or(0, Vec::len)).map(|c| rows.iter().map(|r| r.get(c).map_or(0, String::len)).max().unwrap_or(0)).collect();
    rows.iter()
        .map(|r| r.iter().enumerate().map(|(i, c)| format!("{c:<w$}", w = widths[i])).collect::<Vec<_>>().join("  ").trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn print(output: Output, json: &Value, rows: impl FnOnce() -> Vec<Vec<String>>) {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(json).unwrap_or_default()),
        Output::Table => println!("{}", table(rows())),
    }
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

/// An error with its causes, `: `-separated (reqwest's own message names only the URL).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Follows deployment `id` of the apps `apps` until it ends; fails with the reason on timeout
/// or when it disappears with the apps not at their target.
async fn wait(client: &Client, id: &str, apps: &[String], timeout: Duration) -> Result<(), Failure> {
    let started = Instant::now();
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} healthy")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    loop {
        let deps = client.get("/v2/deployments").await?;
        let current = deps.as_array().and_then(|d| d.iter().find(|x| x["id"] == id)).cloned();
        let (mut healthy, mut total) = (0, 0);
        let mut failure = None;
        for app in apps {
            if let Ok(j) = client.get(&format!("/v2/apps{app}")).await {
                let a = &j["app"];
                total += a["instances"].as_u64().unwrap_or(0);
                let has_checks = a["healthChecks"].as_array().is_some_and(|h| !h.is_empty());
                healthy += if has_checks { a["tasksHealthy"].as_u64() } else { a["tasksRunning"].as_u64() }.unwrap_or(0);
                if let Some(f) = a["lastTaskFailure"].as_object() {
                    failure = Some(format!(
                        "{}: {} on {} ({})",
                        s(&f["taskId"].clone()),
                        s(&f["state"].clone()),
                        s(&f["host"].clone()),
                        s(&f["message"].clone())
                    ));
                }
            }
        }
        bar.set_length(total);
        bar.set_position(healthy.min(total));
        let Some(d) = current else {
            bar.finish_and_clear();
            // Gone: finished, unless it was cancelled (then a rollback or nothing replaced it).
            return Ok(());
        };
        bar.set_message(format!("step {}/{}", s(&d["currentStep"]), s(&d["totalSteps"])));
        if started.elapsed() > timeout {
            bar.finish_and_clear();
            let queue = client.get("/v2/queue").await.unwrap_or(Value::Null);
            let reasons: BTreeSet<String> = queue["queue"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|q| q["processedOffersSummary"]["rejectSummaryLastOffers"].as_array().cloned().unwrap_or_default())
                .filter_map(|r| r["reason"].as_str().map(str::to_string))
                .collect();
            let mut why = format!("deployment {id} did not finish within {}s ({healthy}/{total} healthy)", timeout.as_secs());
            if let Some(f) = failure {
                why.push_str(&format!("; last task failure: {f}"));
            }
            if !reasons.is_empty() {
                why.push_str(&format!("; offers declined for: {}", reasons.into_iter().collect::<Vec<_>>().join(", ")));
            }
            why.push_str(". Check the app's health check and resources; `framework-cli deployments cancel` rolls it back.");
            return Err(fail(3, why));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The app and group documents a path holds, in order.
fn documents(path: &Path) -> Result<Vec<(PathBuf, Value)>, Failure> {
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut f: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| fail(1, format!("cannot read {}: {e}", path.display())))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        f.sort();
        f
    } else {
        vec![path.to_path_buf()]
    };
    if files.is_empty() {
        return Err(fail(2, format!("{} holds no .json file to deploy", path.display())));
    }
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).map_err(|e| fail(1, format!("cannot read {}: {e}", f.display())))?;
            let v: Value = serde_json::from_str(&text).map_err(|e| fail(2, format!("{} is not valid JSON: {e}", f.display())))?;
            Ok((f, v))
        })
        .collect()
}

/// Runs the command line; the error carries the exit code.
pub async fn run(cli: Cli) -> Result<(), Failure> {
    crate::tls::install_provider();
    let client = Client::new(&cli)?;
    let out = cli.output;
    match cli.command {
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "framework-cli", &mut std::io::stdout());
        }
        Command::Apps { app: None } => {
            let j = client.get("/v2/apps").await?;
            print(out, &j, || {
                let mut rows = vec![vec![
                    "ID".into(),
                    "INSTANCES".into(),
                    "RUNNING".into(),
                    "HEALTHY".into(),
                    "CPUS".into(),
                    "MEM".into(),
                    "DEPLOYING".into(),
                ]];
                for a in j["apps"].as_array().into_iter().flatten() {
                    let deploying = a["deployments"].as_array().is_some_and(|d| !d.is_empty());
                    rows.push(vec![
                        s(&a["id"]),
                        s(&a["instances"]),
                        s(&a["tasksRunning"]),
                        s(&a["tasksHealthy"]),
                        s(&a["cpus"]),
                        s(&a["mem"]),
                        deploying.to_string(),
                    ]);
                }
                rows
            });
        }
        Command::Apps { app: Some(name) } => {
            let id = app_id(&client, &name).await?;
            let j = client.get(&format!("/v2/apps{id}")).await?;
            print(out, &j, || {
                let a = &j["app"];
                let mut rows = vec![
                    vec!["id".into(), s(&a["id"])],
                    vec!["cmd".into(), s(&a["cmd"])],
                    vec!["image".into(), s(&a["container"]["docker"]["image"])],
                    vec![
                        "instances".into(),
                        format!("{} ({} running, {} healthy)", s(&a["instances"]), s(&a["tasksRunning"]), s(&a["tasksHealthy"])),
                    ],
                    vec!["version".into(), s(&a["version"])],
                ];
                for t in a["tasks"].as_array().into_iter().flatten() {
                    rows.push(vec!["task".into(), format!("{} {} {}:{}", s(&t["id"]), s(&t["state"]), s(&t["host"]), s(&t["ports"]))]);
                }
                rows
            });
        }
        Command::Deploy { path, wait: follow, force, timeout } => {
            for (file, doc) in documents(&path)? {
                let id = doc["id"].as_str().ok_or_else(|| fail(2, format!("{} has no \"id\"", file.display())))?.to_string();
                let id = if id.starts_with('/') { id } else { format!("/{id}") };
                let group = doc.get("apps").is_some() || doc.get("groups").is_some();
                let path = if group { format!("/v2/groups{id}?force={force}") } else { format!("/v2/apps{id}?force={force}") };
                let (j, header) = client.call(reqwest::Method::PUT, &path, Some(&doc)).await?;
                let dep = j["deploymentId"].as_str().map(str::to_string).or(header).unwrap_or_default();
                eprintln!("{} {id}: deployment {dep}", if group { "group" } else { "app" });
                if follow {
                    let apps: Vec<String> = if group {
                        let g = client.get(&format!("/v2/groups{id}")).await?;
                        let mut ids = Vec::new();
                        collect_apps(&g, &mut ids);
                        ids
                    } else {
                        vec![id.clone()]
                    };
                    wait(&client, &dep, &apps, Duration::from_secs(timeout)).await?;
                    eprintln!("{id}: deployed");
                }
            }
        }
        Command::Scale { app, instances, wait: follow, force, timeout } => {
            let id = app_id(&client, &app).await?;
            let (j, _) =
                client.call(reqwest::Method::PUT, &format!("/v2/apps{id}?force={force}"), Some(&json!({"instances": instances}))).await?;
            let dep = s(&j["deploymentId"]);
            eprintln!("{id}: scaling to {instances} (deployment {dep})");
            if follow {
                wait(&client, &dep, &[id], Duration::from_secs(timeout)).await?;
            }
        }
        Command::Restart { app, wait: follow, timeout } => {
            let id = app_id(&client, &app).await?;
            let (j, _) = client.call(reqwest::Method::POST, &format!("/v2/apps{id}/restart"), None).await?;
            let dep = s(&j["deploymentId"]);
            eprintln!("{id}: restarting (deployment {dep})");
            if follow {
                wait(&client, &dep, &[id], Duration::from_secs(timeout)).await?;
            }
        }
        Command::Destroy { app, wait: follow } => {
            let id = app_id(&client, &app).await?;
            let (j, _) = client.call(reqwest::Method::DELETE, &format!("/v2/apps{id}"), None).await?;
            eprintln!("{id}: destroying (deployment {})", s(&j["deploymentId"]));
            if follow {
                wait(&client, &s(&j["deploymentId"]), &[], Duration::from_secs(600)).await?;
            }
        }
        Command::Tasks { app } => {
            let j = match app {
                Some(name) => client.get(&format!("/v2/apps{}/tasks", app_id(&client, &name).await?)).await?,
                None => client.get("/v2/tasks").await?,
            };
            print(out, &j, || {
                let mut rows = vec![vec!["ID".into(), "APP".into(), "STATE".into(), "HOST".into(), "PORTS".into(), "HEALTHY".into()]];
                for t in j["tasks"].as_array().into_iter().flatten() {
                    let healthy = t["healthCheckResults"][0]["alive"].clone();
                    rows.push(vec![s(&t["id"]), s(&t["appId"]), s(&t["state"]), s(&t["host"]), s(&t["ports"]), s(&healthy)]);
                }
                rows
            });
        }
        Command::Kill { task, scale } => {
            let tasks = client.get("/v2/tasks").await?;
            let app = tasks["tasks"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|t| t["id"] == task.as_str())
                .and_then(|t| t["appId"].as_str().map(str::to_string))
                .ok_or_else(|| fail(4, format!("no task '{task}'; `framework-cli tasks` lists them")))?;
            let (j, _) = client.call(reqwest::Method::DELETE, &format!("/v2/apps{app}/tasks/{task}?scale={scale}"), None).await?;
            print(out, &j, || vec![vec![format!("killed {task}{}", if scale { " (app scaled down)" } else { "" })]]);
        }
        Command::Deployments { action } => match action.unwrap_or(DeploymentAction::List) {
            DeploymentAction::List => list_deployments(&client, out).await?,
            DeploymentAction::Watch => loop {
                list_deployments(&client, out).await?;
                tokio::time::sleep(Duration::from_secs(1)).await;
            },
            DeploymentAction::Cancel { id, force } => {
                let (j, _) = client.call(reqwest::Method::DELETE, &format!("/v2/deployments/{id}?force={force}"), None).await?;
                if force {
                    eprintln!("deployment {id} stopped");
                } else {
                    eprintln!("deployment {id} cancelled; rolling back with deployment {}", s(&j["deploymentId"]));
                }
            }
        },
        Command::Queue => {
            let j = client.get("/v2/queue").await?;
            print(out, &j, || {
                let mut rows = vec![vec!["APP".into(), "WAITING".into(), "DELAY".into(), "OFFERS SEEN".into(), "WHY NOT PLACED".into()]];
                for q in j["queue"].as_array().into_iter().flatten() {
                    let reasons: Vec<String> = q["processedOffersSummary"]["rejectSummaryLastOffers"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|r| format!("{} ({})", s(&r["reason"]), s(&r["declined"])))
                        .collect();
                    rows.push(vec![
                        s(&q["app"]["id"]),
                        s(&q["count"]),
                        format!("{}s", s(&q["delay"]["timeLeftSeconds"])),
                        s(&q["processedOffersSummary"]["processedOffersCount"]),
                        reasons.join(", "),
                    ]);
                }
                rows
            });
        }
        Command::Leader => {
            let j = client.get("/v2/leader").await?;
            print(out, &j, || vec![vec![s(&j["leader"])]]);
        }
        Command::Info => {
            let j = client.get("/v2/info").await?;
            print(out, &j, || {
                vec![
                    vec!["name".into(), s(&j["name"])],
                    vec!["version".into(), s(&j["version"])],
                    vec!["leader".into(), s(&j["leader"])],
                    vec!["framework id".into(), s(&j["frameworkId"])],
                    vec!["master".into(), s(&j["marathon_config"]["master"])],
                ]
            });
        }
        Command::Events { types } => {
            let query: String = types.iter().map(|t| format!("event_type={t}")).collect::<Vec<_>>().join("&");
            let resp = client
                .request(reqwest::Method::GET, &format!("/v2/events?{query}"))
                .header("Accept", "text/event-stream")
                .send()
                .await
                .map_err(|e| client.unreachable(&e))?;
            if !resp.status().is_success() {
                return Err(fail(1, format!("the event stream answered {}", resp.status())));
            }
            let mut body = resp.bytes_stream();
            let mut buf = String::new();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| fail(1, format!("the event stream broke: {e}")))?;
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let frame: String = buf.drain(..end + 2).collect();
                    if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) {
                        println!("{data}");
                    }
                }
            }
        }
    }
    Ok(())
}

fn collect_apps(group: &Value, out: &mut Vec<String>) {
    for a in group["apps"].as_array().into_iter().flatten() {
        if let Some(id) = a["id"].as_str() {
            out.push(id.to_string());
        }
    }
    for g in group["groups"].as_array().into_iter().flatten() {
        collect_apps(g, out);
    }
}

async fn list_deployments(client: &Client, out: Output) -> Result<(), Failure> {
    let j = client.get("/v2/deployments").await?;
    print(out, &j, || {
        let mut rows = vec![vec!["ID".into(), "APPS".into(), "STEP".into(), "ACTIONS".into()]];
        for d in j.as_array().into_iter().flatten() {
            let apps: Vec<String> = d["affectedApps"].as_array().into_iter().flatten().map(s).collect();
            let actions: Vec<String> =
                d["currentActions"].as_array().into_iter().flatten().map(|a| format!("{} {}", s(&a["action"]), s(&a["app"]))).collect();
            rows.push(vec![s(&d["id"]), apps.join(","), format!("{}/{}", s(&d["currentStep"]), s(&d["totalSteps"])), actions.join(", ")]);
        }
        rows
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_resolve_or_list_candidates() {
        let ids = vec!["/guestbook".to_string(), "/shop/web".to_string(), "/blog/web".to_string(), "/shop/db".to_string()];
        assert_eq!(resolve(&ids, "guestbook").unwrap(), "/guestbook");
        assert_eq!(resolve(&ids, "db").unwrap(), "/shop/db");
        assert_eq!(resolve(&ids, "/shop/web").unwrap(), "/shop/web");
        let e = resolve(&ids, "web").unwrap_err();
        assert_eq!(e.code, 4);
        assert!(e.message.contains("/shop/web") && e.message.contains("/blog/web"), "{}", e.message);
        assert_eq!(resolve(&ids, "nope").unwrap_err().code, 4);
    }

    #[test]
    fn tables_align() {
        assert_eq!(table(vec![vec!["A".into(), "BB".into()], vec!["ccc".into(), "d".into()]]), "A    BB\nccc  d");
    }
}
