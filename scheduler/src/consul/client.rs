//! A small Consul HTTP API client (agent services, health, catalog, blocking queries).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

/// A Consul call failed.
#[derive(Debug, Error)]
pub enum ConsulError {
    /// Not reachable.
    #[error("Consul at {url} is unreachable: {source}")]
    Unreachable {
        /// Base URL.
        url: String,
        /// Cause.
        #[source]
        source: reqwest::Error,
    },
    /// It answered with an error.
    #[error("Consul answered {status} to {what}: {body}")]
    Refused {
        /// What we asked.
        what: String,
        /// Status.
        status: u16,
        /// Its message.
        body: String,
    },
}

/// Where Consul is and how to talk to it.
#[derive(Debug, Clone)]
pub struct ConsulConfig {
    /// Base URL, e.g. `http://127.0.0.1:8500`.
    pub url: String,
    /// ACL token (`X-Consul-Token`).
    pub token: Option<String>,
    /// Datacenter for catalog and health queries.
    pub datacenter: Option<String>,
}

/// A service registration as the agent API takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Registration {
    /// Unique id (ours: `<task id>-<port index>`).
    #[serde(rename = "ID")]
    pub id: String,
    /// Service name.
    pub name: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Address of the instance.
    pub address: String,
    /// Port of the instance.
    pub port: u32,
    /// Metadata (`framework`, `task_id`, `app_id`, `app_version`).
    pub meta: BTreeMap<String, String>,
    /// The health check, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<Value>,
}

/// A service as the agent lists it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AgentService {
    /// Id.
    #[serde(rename = "ID")]
    pub id: String,
    /// Name.
    pub service: String,
    /// Port.
    #[serde(default)]
    pub port: u32,
    /// Address.
    #[serde(default)]
    pub address: String,
    /// Metadata.
    #[serde(default)]
    pub meta: Option<BTreeMap<String, String>>,
}

/// A Consul client.
#[derive(Debug, Clone)]
pub struct Consul {
    config: ConsulConfig,
    http: reqwest::Client,
}

impl Consul {
    /// A client for `config`.
    pub fn new(config: ConsulConfig) -> Self {
        let http = reqwest::Client::builder().connect_timeout(Duration::from_secs(3)).build().unwrap_or_default();
        Self { config, http }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut req =
            self.http.request(method, format!("{}{path}", self.config.url.trim_end_matches('/'))).timeout(Duration::from_secs(70));
        if let Some(t) = &self.config.token {
            req = req.header("X-Consul-Token", t);
        }
        req
    }

    async fn send(&self, what: &str, req: reqwest::RequestBuilder) -> Result<reqwest::Response, ConsulError> {
        let resp = req.send().await.map_err(|source| ConsulError::Unreachable { url: self.config.url.clone(), source })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        Err(ConsulError::Refused { what: what.to_string(), status, body })
    }

    async fn json<T: serde::de::DeserializeOwned>(&self, what: &str, req: reqwest::RequestBuilder) -> Result<(T, u64), ConsulError> {
        let resp = self.send(what, req).await?;
        let index = resp.headers().get("X-Consul-Index").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
        let bytes = resp.bytes().await.map_err(|source| ConsulError::Unreachable { url: self.config.url.clone(), source })?;
        let value = serde_json::from_slice(&bytes).map_err(|e| ConsulError::Refused {
            what: what.to_string(),
            status: 200,
            body: e.to_string(),
        })?;
        Ok((value, index))
    }

    fn dc(&self) -> String {
        self.config.datacenter.as_ref().map(|d| format!("&dc={d}")).unwrap_or_default()
    }

    /// Registers (or updates) a service instance on the agent.
    pub async fn register(&self, r: &Registration) -> Result<(), ConsulError> {
        self.send(
            "service registration",
            self.request(reqwest::Method::PUT, "/v1/agent/service/register")
                .header("Content-Type", "application/json")
                .body(serde_json::to_vec(r).unwrap_or_default()),
        )
        .await
        .map(|_| ())
    }

    /// Deregisters a service instance.
    pub async fn deregister(&self, id: &str) -> Result<(), ConsulError> {
        self.send("service deregistration", self.request(reqwest::Method::PUT, &format!("/v1/agent/service/deregister/{id}")))
            .await
            .map(|_| ())
    }

    /// Every service instance registered on the agent.
    pub async fn agent_services(&self) -> Result<BTreeMap<String, AgentService>, ConsulError> {
        self.json("the agent's services", self.request(reqwest::Method::GET, "/v1/agent/services")).await.map(|(v, _)| v)
    }

    /// Service names in the catalog (blocking query when `index` > 0).
    pub async fn services(&self, index: u64, wait: Duration) -> Result<(BTreeMap<String, Vec<String>>, u64), ConsulError> {
        let path = format!("/v1/catalog/services?index={index}&wait={}s{}", wait.as_secs().max(1), self.dc());
        self.json("the catalog", self.request(reqwest::Method::GET, &path)).await
    }

    /// Blocks until any health check changes (or `wait` passes); returns the new index.
    pub async fn wait_health(&self, index: u64, wait: Duration) -> Result<u64, ConsulError> {
        let path = format!("/v1/health/state/any?index={index}&wait={}s{}", wait.as_secs().max(1), self.dc());
        self.json::<Value>("health states", self.request(reqwest::Method::GET, &path)).await.map(|(_, i)| i)
    }

    /// `(address, port)` of every passing instance of `service`.
    pub async fn passing(&self, service: &str) -> Result<Vec<(String, u32)>, ConsulError> {
        let path = format!("/v1/health/service/{service}?passing=true{}", self.dc());
        let (entries, _): (Vec<Value>, u64) = self.json("service health", self.request(reqwest::Method::GET, &path)).await?;
        Ok(entries
            .iter()
            .filter_map(|e| {
                let s = &e["Service"];
                let addr = s["Address"].as_str().filter(|a| !a.is_empty()).or_else(|| e["Node"]["Address"].as_str())?;
                Some((addr.to_string(), u32::try_from(s["Port"].as_u64()?).ok()?))
            })
            .collect())
    }
}
