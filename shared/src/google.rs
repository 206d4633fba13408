//! Google API plumbing shared by the STS exchange, IAM Credentials and the Secret
//! Manager adapter: the `google.rpc.Status` error envelope and its classification.

use crate::http::HttpError;
use crate::report::{Failure, FailureClass};
use serde::Deserialize;

/// The default endpoints.
pub const STS: &str = "https://sts.googleapis.com";
pub const IAM_CREDENTIALS: &str = "https://iamcredentials.googleapis.com";
pub const SECRET_MANAGER: &str = "https://secretmanager.googleapis.com";
pub const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";

/// A Google API error: `{"error": {"code", "message", "status"}}`.
#[derive(Debug, Clone)]
pub struct GoogleError {
    pub http: Option<u16>,
    /// The canonical status name (`NOT_FOUND`, `PERMISSION_DENIED`, ...).
    pub status: Option<String>,
    pub message: Option<String>,
    pub class: FailureClass,
    pub transport: Option<String>,
}

#[derive(Deserialize)]
struct Envelope {
    error: Status,
}

#[derive(Deserialize)]
struct Status {
    status: Option<String>,
    message: Option<String>,
}

impl GoogleError {
    pub fn from_http(e: &HttpError) -> Self {
        let parsed = serde_json::from_str::<Envelope>(&e.body)
            .ok()
            .map(|env| env.error);
        let status = parsed.as_ref().and_then(|s| s.status.clone());
        let class = match status.as_deref() {
            Some("UNAUTHENTICATED" | "PERMISSION_DENIED") => FailureClass::Auth,
            Some("NOT_FOUND") => FailureClass::NotFound,
            Some("ALREADY_EXISTS" | "ABORTED" | "FAILED_PRECONDITION") => FailureClass::Conflict,
            Some("RESOURCE_EXHAUSTED") => FailureClass::Throttled,
            Some("UNAVAILABLE" | "DEADLINE_EXCEEDED" | "INTERNAL" | "UNKNOWN") => {
                FailureClass::Unavailable
            }
            Some("INVALID_ARGUMENT" | "OUT_OF_RANGE") => FailureClass::BadInput,
            _ => e.class(),
        };
        GoogleError {
            http: e.status.map(|s| s.as_u16()),
            status,
            message: parsed.and_then(|s| s.message),
            class,
            transport: e.transport.clone(),
        }
    }

    pub fn is(&self, status: &str) -> bool {
        self.status.as_deref() == Some(status)
    }

    /// `STATUS: message (HTTP n)`, or what is known of it.
    pub fn describe(&self) -> String {
        let mut s = match (&self.status, &self.message, &self.transport) {
            (Some(st), Some(m), _) => format!("{st}: {m}"),
            (Some(st), None, _) => st.clone(),
            (None, Some(m), _) => m.clone(),
            (None, None, Some(t)) => t.clone(),
            (None, None, None) => "an unrecognized error".into(),
        };
        if let Some(code) = self.http {
            s.push_str(&format!(" (HTTP {code})"));
        }
        s
    }

    pub fn into_failure(self, context: impl std::fmt::Display) -> Failure {
        Failure::new(self.class, format!("{context}: {}", self.describe()))
    }
}
