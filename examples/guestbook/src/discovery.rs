//! Where a backing service is: a fixed `host:port`, or the passing instances of a Consul service
//! (the registrations `framework --consul` makes for healthy tasks).

use std::time::Duration;

use serde_json::Value;

/// How to find one backing service.
#[derive(Debug, Clone)]
pub enum Locator {
    /// Always this `host:port`.
    Fixed(String),
    /// A passing instance of `service` in the Consul agent at `consul` (e.g. `http://127.0.0.1:8500`).
    Consul {
        /// Consul's HTTP address.
        consul: String,
        /// The service name.
        service: String,
    },
}

/// Why a service could not be located.
#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    /// Consul did not answer or answered with an error.
    #[error("cannot ask Consul at {consul} for {service}: {reason}")]
    Consul {
        /// Consul's HTTP address.
        consul: String,
        /// The service asked for.
        service: String,
        /// What went wrong.
        reason: String,
    },
    /// Consul knows no passing instance.
    #[error("no passing instance of {0} in Consul (is it deployed and healthy?)")]
    NoneHealthy(String),
}

impl Locator {
    /// The `host:port` to connect to now.
    pub async fn locate(&self, http: &reqwest::Client) -> Result<String, LocateError> {
        match self {
            Locator::Fixed(addr) => Ok(addr.clone()),
            Locator::Consul { consul, service } => {
                let fail = |reason: String| LocateError::Consul { consul: consul.clone(), service: service.clone(), reason };
                let url = format!("{}/v1/health/service/{service}?passing=true", consul.trim_end_matches('/'));
                let resp = http.get(&url).timeout(Duration::from_secs(3)).send().await.map_err(|e| fail(e.to_string()))?;
                if !resp.status().is_success() {
                    return Err(fail(format!("HTTP {}", resp.status())));
                }
                let body = resp.text().await.map_err(|e| fail(e.to_string()))?;
                let entries: Value = serde_json::from_str(&body).map_err(|e| fail(e.to_string()))?;
                first_address(&entries).ok_or_else(|| LocateError::NoneHealthy(service.clone()))
            }
        }
    }
}

/// The `host:port` of the first entry of a `/v1/health/service` answer (the service's address,
/// or its node's when the service has none).
pub fn first_address(entries: &Value) -> Option<String> {
    let e = entries.as_array()?.first()?;
    let port = e["Service"]["Port"].as_u64()?;
    let host = e["Service"]["Address"].as_str().filter(|a| !a.is_empty()).or_else(|| e["Node"]["Address"].as_str())?;
    Some(if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn takes_the_service_address_then_the_nodes() {
        let a = json!([{"Node": {"Address": "10.0.0.1"}, "Service": {"Address": "10.0.0.9", "Port": 3306}}]);
        assert_eq!(first_address(&a).as_deref(), Some("10.0.0.9:3306"));
        let b = json!([{"Node": {"Address": "10.0.0.1"}, "Service": {"Address": "", "Port": 6379}}]);
        assert_eq!(first_address(&b).as_deref(), Some("10.0.0.1:6379"));
        let v6 = json!([{"Node": {"Address": "::1"}, "Service": {"Port": 80}}]);
        assert_eq!(first_address(&v6).as_deref(), Some("[::1]:80"));
    }

    #[test]
    fn nothing_passing_is_none() {
        assert_eq!(first_address(&json!([])), None);
        assert_eq!(first_address(&json!({"error": 1})), None);
    }
}
