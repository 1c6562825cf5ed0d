//! The Redis read cache: a small RESP client over one connection, re-located (through Consul)
//! whenever the connection breaks. The cache is an optimisation: every failure is a miss.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use crate::discovery::Locator;

/// Largest value accepted from Redis.
const MAX_BULK: usize = 16 << 20;

/// A Redis reply (the kinds the commands used here return).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK` and the like.
    Status(String),
    /// An integer reply.
    Int(i64),
    /// A bulk string; `None` is the null bulk string (a missing key).
    Bulk(Option<Vec<u8>>),
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The connection broke or could not be made.
    #[error("redis: {0}")]
    Io(#[from] std::io::Error),
    /// Redis answered with an error or with something that is not RESP.
    #[error("redis: {0}")]
    Protocol(String),
    /// Redis could not be located.
    #[error(transparent)]
    Locate(#[from] crate::discovery::LocateError),
}

/// The command `args` encoded as a RESP array of bulk strings.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads one reply.
pub async fn read_reply<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> Result<Reply, CacheError> {
    let mut line = String::new();
    if r.read_line(&mut line).await? == 0 {
        return Err(CacheError::Protocol("connection closed".into()));
    }
    let line = line.trim_end_matches(['\r', '\n']);
    let (kind, rest) = line.split_at_checked(1).ok_or_else(|| CacheError::Protocol("empty reply".into()))?;
    match kind {
        "+" => Ok(Reply::Status(rest.to_string())),
        "-" => Err(CacheError::Protocol(rest.to_string())),
        ":" => rest.parse().map(Reply::Int).map_err(|_| CacheError::Protocol(format!("bad integer {rest:?}"))),
        "$" => {
            let len: i64 = rest.parse().map_err(|_| CacheError::Protocol(format!("bad length {rest:?}")))?;
            if len < 0 {
                return Ok(Reply::Bulk(None));
            }
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            if len > MAX_BULK {
                return Err(CacheError::Protocol(format!("a {len}-byte value is more than this client accepts")));
            }
            let mut buf = vec![0; len + 2];
            r.read_exact(&mut buf).await?;
            buf.truncate(len);
            Ok(Reply::Bulk(Some(buf)))
        }
        other => Err(CacheError::Protocol(format!("unexpected reply type {other:?}"))),
    }
}

/// The cache client.
pub struct Cache {
    locator: Locator,
    http: reqwest::Client,
    conn: Mutex<Option<BufReader<TcpStream>>>,
}

impl Cache {
    /// A client that connects on first use.
    pub fn new(locator: Locator, http: reqwest::Client) -> Cache {
        Cache { locator, http, conn: Mutex::new(None) }
    }

    /// Runs one command; a broken connection is dropped so the next command re-locates Redis.
    pub async fn command(&self, args: &[&[u8]]) -> Result<Reply, CacheError> {
        let mut guard = self.conn.lock().await;
        if guard.is_none() {
            let addr = self.locator.locate(&self.http).await?;
            let stream = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(&addr))
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, format!("connecting to {addr}")))??;
            *guard = Some(BufReader::new(stream));
        }
        let Some(conn) = guard.as_mut() else { return Err(CacheError::Protocol("no connection".into())) };
        let result = tokio::time::timeout(Duration::from_secs(2), async {
            conn.get_mut().write_all(&encode(args)).await?;
            read_reply(conn).await
        })
        .await
        .unwrap_or_else(|_| Err(CacheError::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, "no reply"))));
        if matches!(result, Err(CacheError::Io(_)) | Err(CacheError::Protocol(_))) {
            *guard = None;
        }
        result
    }

    /// The value of `key`, if cached.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        match self.command(&[b"GET", key.as_bytes()]).await? {
            Reply::Bulk(v) => Ok(v),
            other => Err(CacheError::Protocol(format!("GET answered {other:?}"))),
        }
    }

    /// Stores `value` under `key` for `ttl`.
    pub async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        let secs = ttl.as_secs().max(1).to_string();
        self.command(&[b"SET", key.as_bytes(), value, b"EX", secs.as_bytes()]).await.map(drop)
    }

    /// Forgets `key`.
    pub async fn delete(&self, key: &str) -> Result<(), CacheError> {
        self.command(&[b"DEL", key.as_bytes()]).await.map(drop)
    }

    /// Whether Redis answers.
    pub async fn ping(&self) -> bool {
        matches!(self.command(&[b"PING"]).await, Ok(Reply::Status(s)) if s == "PONG")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(bytes: &[u8]) -> Result<Reply, CacheError> {
        read_reply(&mut BufReader::new(bytes)).await
    }

    #[test]
    fn encodes_bulk_string_arrays() {
        assert_eq!(encode(&[b"GET", b"k"]), b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
        assert_eq!(encode(&[b"SET", "é".as_bytes()]), b"*2\r\n$3\r\nSET\r\n$2\r\n\xc3\xa9\r\n");
    }

    #[tokio::test]
    async fn reads_each_reply_kind() {
        assert_eq!(parse(b"+PONG\r\n").await.unwrap(), Reply::Status("PONG".into()));
        assert_eq!(parse(b":3\r\n").await.unwrap(), Reply::Int(3));
        assert_eq!(parse(b"$-1\r\n").await.unwrap(), Reply::Bulk(None));
        assert_eq!(parse(b"$5\r\na\r\nbc\r\n").await.unwrap(), Reply::Bulk(Some(b"a\r\nbc".to_vec())));
        assert!(parse(b"-ERR wrong\r\n").await.unwrap_err().to_string().contains("ERR wrong"));
    }

    #[tokio::test]
    async fn bad_input_is_an_error_not_a_panic() {
        for bad in [&b""[..], b"\r\n", b"?x\r\n", b"$abc\r\n", b"$99999999999\r\n", b"$4\r\nab", b":x\r\n"] {
            assert!(parse(bad).await.is_err(), "{bad:?}");
        }
    }
}
