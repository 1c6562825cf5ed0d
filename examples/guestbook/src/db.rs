//! The entries in MariaDB (MySQL). The pool is made for the address Consul gives; when a query
//! fails for want of a connection the pool is dropped and MySQL located again, so a MySQL task
//! that is replaced (on a new port, with its data on a host volume) is found again.

use std::time::Duration;

use mysql_async::prelude::*;
use mysql_async::{OptsBuilder, Pool, PoolConstraints, PoolOpts};
use tokio::sync::Mutex;

use crate::discovery::Locator;
use crate::entry::{Entry, NewEntry};

/// How long a query may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// How many entries the page shows.
pub const PAGE: usize = 100;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS entries (\
    id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, \
    name VARCHAR(64) NOT NULL, \
    message VARCHAR(1000) NOT NULL, \
    created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP\
) CHARACTER SET utf8mb4";

/// Why the database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// MySQL could not be located.
    #[error(transparent)]
    Locate(#[from] crate::discovery::LocateError),
    /// MySQL refused or the connection broke.
    #[error("mysql at {addr}: {reason}")]
    Mysql {
        /// Where it was.
        addr: String,
        /// What went wrong.
        reason: String,
    },
}

/// Login details.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
    /// Database (schema) name.
    pub database: String,
}

/// The entries store.
pub struct Db {
    locator: Locator,
    http: reqwest::Client,
    credentials: Credentials,
    pool: Mutex<Option<(String, Pool)>>,
}

impl Db {
    /// A store that connects on first use.
    pub fn new(locator: Locator, http: reqwest::Client, credentials: Credentials) -> Db {
        Db { locator, http, credentials, pool: Mutex::new(None) }
    }

    /// The current pool, making one (and the schema) when there is none.
    async fn pool(&self) -> Result<(String, Pool), DbError> {
        let mut guard = self.pool.lock().await;
        if let Some((addr, pool)) = guard.as_ref() {
            return Ok((addr.clone(), pool.clone()));
        }
        let addr = self.locator.locate(&self.http).await?;
        let (host, port) = addr.rsplit_once(':').unwrap_or((addr.as_str(), "3306"));
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let fail = |reason: String| DbError::Mysql { addr: addr.clone(), reason };
        let port: u16 = port.parse().map_err(|_| fail(format!("bad port {port:?}")))?;
        let constraints = PoolConstraints::new(0, 8).ok_or_else(|| fail("bad pool size".into()))?;
        let opts = OptsBuilder::default()
            .ip_or_hostname(host)
            .tcp_port(port)
            .user(Some(&self.credentials.user))
            .pass(Some(&self.credentials.password))
            .db_name(Some(&self.credentials.database))
            .prefer_socket(false)
            .pool_opts(PoolOpts::default().with_constraints(constraints));
        let pool = Pool::new(opts);
        let mut conn = tokio::time::timeout(Duration::from_secs(3), pool.get_conn())
            .await
            .map_err(|_| fail("no connection within 3s".into()))?
            .map_err(|e| fail(e.to_string()))?;
        conn.query_drop(SCHEMA).await.map_err(|e| fail(e.to_string()))?;
        tracing::info!(%addr, "connected to mysql, schema ready");
        *guard = Some((addr.clone(), pool.clone()));
        Ok((addr, pool))
    }

    /// Forgets the pool after a failure so the next call locates MySQL again.
    async fn reset(&self, addr: &str) {
        let mut guard = self.pool.lock().await;
        if guard.as_ref().is_some_and(|(a, _)| a == addr)
            && let Some((_, pool)) = guard.take()
        {
            tokio::spawn(async move { drop(pool.disconnect().await) });
        }
    }

    /// A connection. Getting one is tried twice, the second time on a freshly located MySQL.
    async fn conn(&self) -> Result<(String, mysql_async::Conn), DbError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (addr, pool) = self.pool().await?;
            let reason = match tokio::time::timeout(Duration::from_secs(3), pool.get_conn()).await {
                Ok(Ok(conn)) => return Ok((addr, conn)),
                Ok(Err(e)) => e.to_string(),
                Err(_) => "no connection within 3s".to_string(),
            };
            tracing::warn!(%addr, %reason, "cannot reach mysql; locating it again");
            self.reset(&addr).await;
            if attempt == 2 {
                return Err(DbError::Mysql { addr, reason });
            }
        }
    }

    /// The outcome of a query (run once, so a write is never repeated); a failure drops the pool.
    async fn outcome<T>(
        &self,
        addr: String,
        result: Result<Result<T, mysql_async::Error>, tokio::time::error::Elapsed>,
    ) -> Result<T, DbError> {
        let reason = match result {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no answer within 10s".to_string(),
        };
        tracing::warn!(%addr, %reason, "mysql query failed");
        self.reset(&addr).await;
        Err(DbError::Mysql { addr, reason })
    }

    /// The newest entries, newest first.
    pub async fn recent(&self) -> Result<Vec<Entry>, DbError> {
        let sql = format!("SELECT id, name, message, DATE_FORMAT(created, '%Y-%m-%d %H:%i:%s') FROM entries ORDER BY id DESC LIMIT {PAGE}");
        let (addr, mut c) = self.conn().await?;
        let rows = tokio::time::timeout(
            QUERY_TIMEOUT,
            c.query_map(sql, |(id, name, message, created): (u64, String, String, String)| Entry { id, name, message, created }),
        )
        .await;
        self.outcome(addr, rows).await
    }

    /// Stores a validated entry; its id.
    pub async fn add(&self, entry: &NewEntry) -> Result<u64, DbError> {
        let (addr, mut c) = self.conn().await?;
        let done = tokio::time::timeout(
            QUERY_TIMEOUT,
            c.exec_drop("INSERT INTO entries (name, message) VALUES (?, ?)", (&entry.name, &entry.message)),
        )
        .await;
        self.outcome(addr, done).await?;
        Ok(c.last_insert_id().unwrap_or(0))
    }

    /// Whether MySQL answers.
    pub async fn ping(&self) -> bool {
        let Ok((addr, mut c)) = self.conn().await else { return false };
        let pong = tokio::time::timeout(QUERY_TIMEOUT, c.ping()).await;
        self.outcome(addr, pong).await.is_ok()
    }
}
