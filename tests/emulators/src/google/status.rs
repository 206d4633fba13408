//! The `google.rpc.Status` error envelope every Google REST API answers errors in
//! (reference D.5): `{"error": {"code": <HTTP status>, "message", "status": <canonical
//! name>, "details": [...]}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An error as Google's JSON front ends send it.
#[derive(Debug, Clone, PartialEq)]
pub struct GoogleError {
    /// The HTTP status, repeated as `error.code`.
    pub code: u16,
    /// The canonical code name, for example `PERMISSION_DENIED`.
    pub status: String,
    pub message: String,
    /// `error.details`, omitted from the body when empty.
    pub details: Vec<Value>,
}

impl GoogleError {
    /// An error of any code and status.
    pub fn new(code: u16, status: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            status: status.to_owned(),
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// 400 `INVALID_ARGUMENT`.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(400, "INVALID_ARGUMENT", message)
    }

    /// 400 `FAILED_PRECONDITION`.
    pub fn failed_precondition(message: impl Into<String>) -> Self {
        Self::new(400, "FAILED_PRECONDITION", message)
    }

    /// 404 `NOT_FOUND`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "NOT_FOUND", message)
    }

    /// 409 `ALREADY_EXISTS`.
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(409, "ALREADY_EXISTS", message)
    }

    /// 409 `ABORTED`.
    pub fn aborted(message: impl Into<String>) -> Self {
        Self::new(409, "ABORTED", message)
    }

    /// 429 `RESOURCE_EXHAUSTED`, as a quota refusal.
    pub fn resource_exhausted() -> Self {
        Self::new(
            429,
            "RESOURCE_EXHAUSTED",
            "Resource has been exhausted (e.g. check quota).",
        )
    }

    /// 500 `INTERNAL`.
    pub fn internal() -> Self {
        Self::new(500, "INTERNAL", "Internal error encountered.")
    }

    /// 501 `UNIMPLEMENTED`: used for real features this emulator does not emulate, so a
    /// test that relies on one fails loudly instead of passing against a fake.
    pub fn unimplemented(message: impl Into<String>) -> Self {
        Self::new(501, "UNIMPLEMENTED", message)
    }

    /// 503 `UNAVAILABLE`.
    pub fn unavailable() -> Self {
        Self::new(503, "UNAVAILABLE", "The service is currently unavailable.")
    }

    /// 504 `DEADLINE_EXCEEDED`.
    pub fn deadline_exceeded() -> Self {
        Self::new(
            504,
            "DEADLINE_EXCEEDED",
            "Deadline expired before operation could complete.",
        )
    }

    /// 404 `NOT_FOUND` for a URL or HTTP method no API method is bound to.
    pub fn method_not_found() -> Self {
        Self::not_found("Method not found.")
    }

    /// 403 `PERMISSION_DENIED` with the `ErrorInfo` detail IAM attaches.
    pub(crate) fn iam_permission_denied(
        message: String,
        domain: &str,
        permission: &str,
        resource: Option<&str>,
    ) -> Self {
        let mut metadata = json!({ "permission": permission });
        if let Some(resource) = resource {
            metadata["resource"] = json!(resource);
        }
        Self::new(403, "PERMISSION_DENIED", message).with_error_info(
            "IAM_PERMISSION_DENIED",
            domain,
            metadata,
        )
    }

    /// Adds a `google.rpc.ErrorInfo` detail.
    pub fn with_error_info(mut self, reason: &str, domain: &str, metadata: Value) -> Self {
        self.details.push(json!({
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": reason,
            "domain": domain,
            "metadata": metadata,
        }));
        self
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let mut error = json!({
            "code": self.code,
            "message": self.message,
            "status": self.status,
        });
        if !self.details.is_empty() {
            error["details"] = json!(self.details);
        }
        json!({ "error": error })
    }

    /// The `ErrorInfo.reason` of the first such detail, if any.
    pub fn reason(&self) -> Option<&str> {
        self.details.iter().find_map(|d| d["reason"].as_str())
    }
}

impl IntoResponse for GoogleError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
            self.body().to_string(),
        )
            .into_response();
        if self.code == 401 {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"https://accounts.google.com/\""),
            );
        }
        response
    }
}

/// A successful JSON answer as Google's front ends send it.
pub(crate) fn json_ok(body: &Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        body.to_string(),
    )
        .into_response()
}
