//! Every failure is an HTTP status and a one-line message: JSON for the
//! `/api/` endpoints, an escaped HTML page for the pages.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

#[derive(Debug)]
pub struct Failure {
    pub status: StatusCode,
    pub message: String,
    /// Answer as JSON (an `/api/` endpoint) rather than as a page.
    pub json: bool,
}

impl Failure {
    /// Bad input: the user can fix it.
    pub fn bad(message: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, message: message.into(), json: false }
    }

    pub fn status(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), json: false }
    }

    pub fn json(mut self) -> Self {
        self.json = true;
        self
    }
}

/// An engine or lake error: a 500 naming what failed (its first line only).
impl From<funnelpulse_engine::Error> for Failure {
    fn from(error: funnelpulse_engine::Error) -> Self {
        log::warn!("dashboard query failed: {error:#}");
        let message = funnelpulse_engine::user_error::one_line(&error);
        Self::status(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        if self.json {
            return (self.status, axum::Json(serde_json::json!({ "error": self.message }))).into_response();
        }
        let page = crate::pages::error_page(self.status, &self.message);
        (self.status, Html(page.into_string())).into_response()
    }
}

/// A page handler's result.
pub type PageResult = Result<Html<String>, Failure>;
/// An `/api/` handler's result.
pub type ApiResult = Result<axum::Json<serde_json::Value>, Failure>;
