//! Errors as the API reports them: an HTTP status and Marathon's error JSON.

use framework_core::app::AppError;
use framework_core::ids::DeploymentId;
use framework_core::scheduler::Rejection;
use serde_json::Value;

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
        Rejection::new(status, message).into()
    }

    /// 404 for an unknown app.
    pub fn app_not_found(id: impl std::fmt::Display) -> Self {
        Rejection::app_not_found(id).into()
    }

    /// 404 for an unknown group.
    pub fn group_not_found(id: impl std::fmt::Display) -> Self {
        Rejection::group_not_found(id).into()
    }

    /// 409 when a change touches apps locked by running deployments.
    pub fn locked(deployments: &[DeploymentId]) -> Self {
        Rejection::locked(deployments).into()
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

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        Self { status: r.status, body: r.body }
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        Self { status: e.status(), body: e.to_json() }
    }
}
