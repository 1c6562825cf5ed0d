//! Errors as the API reports them: an HTTP status and Marathon's error JSON.

use framework_core::app::AppError;
use framework_core::ids::DeploymentId;
use serde_json::{Value, json};

/// An error bound for an API client.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// Marathon's error body (`{"message", "details"?, "deployments"?}`).
    pub body: Value,
}

impl ApiError {
    /// An error with just a message.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self { status, body: json!({ "message": message.into() }) }
    }

    /// 404 for an unknown app.
    pub fn app_not_found(id: impl std::fmt::Display) -> Self {
        Self::new(404, format!("App '{id}' does not exist"))
    }

    /// 404 for an unknown group.
    pub fn group_not_found(id: impl std::fmt::Display) -> Self {
        Self::new(404, format!("Group '{id}' does not exist"))
    }

    /// 409 when a change touches apps locked by running deployments.
    pub fn locked(deployments: &[DeploymentId]) -> Self {
        let first = deployments.first().map(|d| d.0.as_str()).unwrap_or_default();
        Self {
            status: 409,
            body: json!({
                "message": format!("App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/{first}'."),
                "deployments": deployments.iter().map(|d| json!({"id": d.0})).collect::<Vec<_>>(),
            }),
        }
    }

    /// 503 when state could not be persisted; nothing was changed.
    pub fn storage(err: impl std::fmt::Display) -> Self {
        Self::new(503, format!("The change could not be stored, nothing was changed: {err}. Retry when the state store is healthy."))
    }

    /// 503 while the scheduler is not running (shutting down).
    pub fn unavailable() -> Self {
        Self::new(503, "The scheduler is not running; retry shortly.")
    }
}

/// Handlers return `Result<_, ApiError>`; the error answers with its status and Marathon's JSON.
impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        crate::api::json_response(self.status, &self.body)
    }
}

impl From<framework_core::scheduler::Rejection> for ApiError {
    fn from(r: framework_core::scheduler::Rejection) -> Self {
        Self { status: r.status, body: r.body }
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        Self { status: e.status(), body: e.to_json() }
    }
}
