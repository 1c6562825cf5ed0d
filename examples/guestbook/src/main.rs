//! `guestbook`: the showcase web app. It lists and adds guestbook entries, stores them in
//! MariaDB (MySQL) and caches the list in Redis (invalidated on every write). Both are found
//! through Consul, where `framework --consul` registers every healthy task.
//!
//! Settings (environment): `PORT0` or `PORT` (listen port, default 8000), `CONSUL_HTTP_ADDR`
//! (default `http://127.0.0.1:8500`), `MYSQL_SERVICE` / `REDIS_SERVICE` (Consul service names,
//! default `guestbook-mysql` / `guestbook-redis`), or `MYSQL_ADDR` / `REDIS_ADDR` (`host:port`,
//! bypassing Consul), `MYSQL_USER`, `MYSQL_PASSWORD`, `MYSQL_DATABASE` (default `guestbook` each).

mod cache;
mod db;
mod discovery;
mod entry;
mod page;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Json, Router};
use serde_json::json;

use cache::Cache;
use db::{Credentials, Db};
use discovery::Locator;
use entry::{Entry, NewEntry};

/// The cache key of the entry list (bump the suffix when `Entry` changes shape).
const LIST_KEY: &str = "guestbook:entries:v1";
/// How long a cached list lives even without writes.
const LIST_TTL: Duration = Duration::from_secs(300);

/// What every handler shares.
struct App {
    db: Db,
    cache: Cache,
    /// This instance (the Mesos task id when run by the framework), sent as `X-Served-By`.
    served_by: String,
}

/// Where the list came from.
enum Source {
    Cache,
    Database,
}

impl App {
    /// The recent entries, from the cache when it has them.
    async fn entries(&self) -> Result<(Vec<Entry>, Source), db::DbError> {
        match self.cache.get(LIST_KEY).await {
            Ok(Some(bytes)) => {
                if let Ok(list) = serde_json::from_slice::<Vec<Entry>>(&bytes) {
                    return Ok((list, Source::Cache));
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cache unavailable; reading from mysql"),
        }
        let list = self.db.recent().await?;
        if let Ok(bytes) = serde_json::to_vec(&list)
            && let Err(e) = self.cache.set(LIST_KEY, &bytes, LIST_TTL).await
        {
            tracing::warn!(error = %e, "cannot fill the cache");
        }
        Ok((list, Source::Database))
    }

    /// Stores an entry and invalidates the cached list.
    async fn add(&self, entry: &NewEntry) -> Result<u64, db::DbError> {
        let id = self.db.add(entry).await?;
        if let Err(e) = self.cache.delete(LIST_KEY).await {
            // The TTL bounds how stale the list can get; say so loudly.
            tracing::error!(error = %e, "cannot invalidate the cached list; it may be stale for up to {}s", LIST_TTL.as_secs());
        }
        Ok(id)
    }

    fn headers(&self, source: Option<&Source>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&self.served_by) {
            h.insert("x-served-by", v);
        }
        if let Some(s) = source {
            h.insert("x-cache", HeaderValue::from_static(if matches!(s, Source::Cache) { "hit" } else { "miss" }));
        }
        h
    }
}

fn unavailable(app: &App, e: &db::DbError) -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, app.headers(None), Json(json!({"message": format!("the guestbook cannot reach its database: {e}")})))
        .into_response()
}

async fn index(State(app): State<Arc<App>>) -> Response {
    match app.entries().await {
        Ok((list, source)) => (app.headers(Some(&source)), axum::response::Html(page::render(&list, None, &app.served_by))).into_response(),
        Err(e) => {
            let html = page::render(&[], Some(&format!("The guestbook is unavailable: {e}")), &app.served_by);
            (StatusCode::SERVICE_UNAVAILABLE, app.headers(None), axum::response::Html(html)).into_response()
        }
    }
}

async fn sign(State(app): State<Arc<App>>, Form(entry): Form<NewEntry>) -> Response {
    let entry = match entry.validated() {
        Ok(e) => e,
        Err(why) => {
            let list = app.entries().await.map(|(l, _)| l).unwrap_or_default();
            return (StatusCode::UNPROCESSABLE_ENTITY, axum::response::Html(page::render(&list, Some(&why), &app.served_by)))
                .into_response();
        }
    };
    match app.add(&entry).await {
        Ok(_) => Redirect::to("/").into_response(),
        Err(e) => unavailable(&app, &e),
    }
}

async fn list(State(app): State<Arc<App>>) -> Response {
    match app.entries().await {
        Ok((list, source)) => (app.headers(Some(&source)), Json(list)).into_response(),
        Err(e) => unavailable(&app, &e),
    }
}

async fn create(State(app): State<Arc<App>>, body: String) -> Response {
    let entry = match serde_json::from_str::<NewEntry>(&body)
        .map_err(|e| format!("expected {{\"name\": ..., \"message\": ...}}: {e}"))
        .and_then(NewEntry::validated)
    {
        Ok(e) => e,
        Err(why) => return (StatusCode::UNPROCESSABLE_ENTITY, app.headers(None), Json(json!({"message": why}))).into_response(),
    };
    match app.add(&entry).await {
        Ok(id) => {
            (StatusCode::CREATED, app.headers(None), Json(json!({"id": id, "name": entry.name, "message": entry.message}))).into_response()
        }
        Err(e) => unavailable(&app, &e),
    }
}

/// Liveness: 200 while this process serves. The body tells whether MySQL and Redis answer, but a
/// database outage does not fail the check: killing every web instance for it would only add a
/// restart storm to the outage.
async fn health(State(app): State<Arc<App>>) -> Response {
    let (mysql, redis) = tokio::join!(app.db.ping(), app.cache.ping());
    (app.headers(None), [(header::CACHE_CONTROL, "no-store")], Json(json!({"status": "up", "mysql": mysql, "redis": redis})))
        .into_response()
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_string())
}

fn locator(addr_var: &str, service_var: &str, default_service: &str, consul: &str) -> Locator {
    match std::env::var(addr_var).ok().filter(|v| !v.is_empty()) {
        Some(addr) => Locator::Fixed(addr),
        None => Locator::Consul { consul: consul.to_string(), service: env_or(service_var, default_service) },
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let port: u16 = env_or("PORT0", &env_or("PORT", "8000")).parse().context("PORT0/PORT must be a port number")?;
    let consul = env_or("CONSUL_HTTP_ADDR", "http://127.0.0.1:8500");
    let consul = if consul.contains("://") { consul } else { format!("http://{consul}") };
    let http = reqwest::Client::new();
    let credentials = Credentials {
        user: env_or("MYSQL_USER", "guestbook"),
        password: env_or("MYSQL_PASSWORD", "guestbook"),
        database: env_or("MYSQL_DATABASE", "guestbook"),
    };
    let app = Arc::new(App {
        db: Db::new(locator("MYSQL_ADDR", "MYSQL_SERVICE", "guestbook-mysql", &consul), http.clone(), credentials),
        cache: Cache::new(locator("REDIS_ADDR", "REDIS_SERVICE", "guestbook-redis", &consul), http),
        served_by: env_or("MESOS_TASK_ID", &format!("guestbook:{port}")),
    });
    let router = Router::new()
        .route("/", get(index).post(sign))
        .route("/api/entries", get(list).post(create))
        .route("/health", get(health))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await.with_context(|| format!("cannot listen on port {port}"))?;
    tracing::info!(port, "guestbook serving");
    axum::serve(listener, router).with_graceful_shutdown(shutdown()).await?;
    Ok(())
}

/// Resolves on SIGTERM (what `docker stop` and the executor send) or SIGINT.
async fn shutdown() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => drop(tokio::signal::ctrl_c().await),
    }
    tracing::info!("shutting down");
}
