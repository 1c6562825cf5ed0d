//! The Redis read cache, through the `redis` crate over one multiplexed connection, re-located
//! (through Consul) whenever a command fails. The cache is an optimisation: every failure is a
//! miss.

use std::time::Duration;

use redis::AsyncCommands as _;
use redis::aio::MultiplexedConnection;
use tokio::sync::Mutex;

use crate::discovery::Locator;

/// How long a command, or a connection attempt, may take.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// Redis failed the command, or could not be reached.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis did not answer in time.
    #[error("redis: no answer within {0:?}")]
    Timeout(Duration),
    /// Redis could not be located.
    #[error(transparent)]
    Locate(#[from] crate::discovery::LocateError),
}

/// The cache client.
pub struct Cache {
    locator: Locator,
    http: reqwest::Client,
    conn: Mutex<Option<MultiplexedConnection>>,
}

impl Cache {
    /// A client that connects on first use.
    pub fn new(locator: Locator, http: reqwest::Client) -> Cache {
        Cache { locator, http, conn: Mutex::new(None) }
    }

    /// The connection, made (after locating Redis) if there is none.
    async fn connection(&self) -> Result<MultiplexedConnection, CacheError> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        let addr = self.locator.locate(&self.http).await?;
        let client = redis::Client::open(format!("redis://{addr}/"))?;
        let conn =
            tokio::time::timeout(TIMEOUT, client.get_multiplexed_async_connection()).await.map_err(|_| CacheError::Timeout(TIMEOUT))??;
        *guard = Some(conn.clone());
        Ok(conn)
    }

    /// Runs one command; after a failure the connection is dropped, so the next command
    /// re-locates Redis (a replaced Redis task is found on its new address).
    async fn run<T>(&self, command: impl AsyncFnOnce(&mut MultiplexedConnection) -> redis::RedisResult<T>) -> Result<T, CacheError> {
        let mut conn = self.connection().await?;
        let result = match tokio::time::timeout(TIMEOUT, command(&mut conn)).await {
            Ok(r) => r.map_err(CacheError::from),
            Err(_) => Err(CacheError::Timeout(TIMEOUT)),
        };
        if result.is_err() {
            *self.conn.lock().await = None;
        }
        result
    }

    /// The value of `key`, if cached.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.run(async |c| c.get(key).await).await
    }

    /// Stores `value` under `key` for `ttl`.
    pub async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        self.run(async |c| c.set_ex(key, value, ttl.as_secs().max(1)).await).await
    }

    /// Forgets `key`.
    pub async fn delete(&self, key: &str) -> Result<(), CacheError> {
        self.run(async |c| c.del(key).await).await
    }

    /// Whether Redis answers.
    pub async fn ping(&self) -> bool {
        self.run(async |c| redis::cmd("PING").query_async::<String>(c).await).await.is_ok_and(|s| s == "PONG")
    }
}
