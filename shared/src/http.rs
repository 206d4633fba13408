//! The one shared HTTP client for the clouds fedsync reaches without an SDK
//! (Google, Azure, Vault): timeouts, and failures that describe the call without
//! carrying anything that could be a secret (no request bodies, no tokens).

use crate::report::{Failure, FailureClass};
use reqwest::{Response, StatusCode};
use serde::de::DeserializeOwned;
use std::sync::OnceLock;
use std::time::Duration;

/// How much of an error response's body is kept.
const MAX_ERROR_BODY: usize = 4096;

/// The process-wide client (one connection pool for every destination).
pub fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(25))
            .user_agent(concat!("fedsync/", env!("CARGO_PKG_VERSION")))
            // A redirect would re-send a token request's body elsewhere: never follow one.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the HTTP client's settings are valid")
    })
}

/// A failed HTTP exchange: the status and error body when the server answered
/// (error bodies never hold secret values), or what went wrong on the way.
#[derive(Debug, Clone)]
pub struct HttpError {
    pub status: Option<StatusCode>,
    /// The error response's body (truncated), for the cloud-specific error parsers.
    pub body: String,
    /// `Retry-After`, when the server sent one in seconds.
    pub retry_after: Option<Duration>,
    /// What happened when there is no response.
    pub transport: Option<String>,
}

impl HttpError {
    /// The default classification by status; adapters refine it with the cloud's own codes.
    pub fn class(&self) -> FailureClass {
        match self.status.map(|s| s.as_u16()) {
            None => FailureClass::Unavailable,
            Some(401 | 403) => FailureClass::Auth,
            Some(404) => FailureClass::NotFound,
            Some(409 | 412) => FailureClass::Conflict,
            Some(429) => FailureClass::Throttled,
            Some(s) if s >= 500 => FailureClass::Unavailable,
            Some(_) => FailureClass::BadInput,
        }
    }

    pub fn is(&self, status: u16) -> bool {
        self.status.is_some_and(|s| s.as_u16() == status)
    }
}

impl From<reqwest::Error> for HttpError {
    fn from(e: reqwest::Error) -> Self {
        // reqwest's Display names the URL and the cause, never a body.
        let what = if e.is_timeout() {
            "timed out"
        } else {
            "failed"
        };
        HttpError {
            status: None,
            body: String::new(),
            retry_after: None,
            transport: Some(format!("request {what}: {e}")),
        }
    }
}

/// Checks a response's status: success passes through, anything else becomes an error.
pub async fn check(response: Response) -> Result<Response, HttpError> {
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    // Error bodies are read only as far as a parser needs them.
    let bytes = response.bytes().await.unwrap_or_default();
    let body = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_ERROR_BODY)]).into_owned();
    Err(HttpError {
        status: Some(status),
        body,
        retry_after,
        transport: None,
    })
}

/// Reads a successful response's JSON body; a body that does not parse is
/// described by its position only (it may hold a secret value).
pub async fn json<T: DeserializeOwned>(response: Response) -> Result<T, HttpError> {
    let status = response.status();
    let bytes = response.bytes().await?;
    serde_json::from_slice(&bytes).map_err(|e| HttpError {
        status: Some(status),
        body: String::new(),
        retry_after: None,
        transport: Some(format!(
            "unexpected response body (line {}, column {})",
            e.line(),
            e.column()
        )),
    })
}

/// A failure for an error that has no cloud-specific explanation.
pub fn failure(e: &HttpError, context: impl std::fmt::Display) -> Failure {
    let what = match (&e.transport, e.status) {
        (Some(t), _) => t.clone(),
        (None, Some(s)) => format!("HTTP {}", s.as_u16()),
        (None, None) => "no response".into(),
    };
    Failure::new(e.class(), format!("{context}: {what}"))
}

/// Something that hands out bearer tokens, and forgets one a store refused.
#[async_trait::async_trait]
pub trait Bearer: Send + Sync {
    async fn token(&self) -> Result<crate::exchange::BearerToken, Failure>;
    async fn invalidate(&self, refused: &crate::exchange::BearerToken);
}

/// Why a call with a bearer token failed: obtaining the token, or the call.
pub enum BearerError {
    Token(Failure),
    Http(HttpError),
}

/// Throttled calls are retried this many times, after the wait the store asks for.
const THROTTLE_RETRIES: u32 = 2;
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// Sends `method url` with a bearer token (and a JSON body): a 401 (an expired or
/// revoked token) makes one fresh exchange and one retry; a 429 is retried after
/// its `Retry-After`, a bounded number of times.
pub async fn send_with_bearer(
    bearer: &dyn Bearer,
    method: reqwest::Method,
    url: &str,
    query: &[(&str, &str)],
    body: Option<&serde_json::Value>,
) -> Result<Response, BearerError> {
    let send = |token: crate::exchange::BearerToken| {
        let mut request = client()
            .request(method.clone(), url)
            .query(query)
            .bearer_auth(token.expose());
        if let Some(b) = body {
            request = request.json(b);
        }
        async move {
            match request.send().await {
                Ok(r) => check(r).await,
                Err(e) => Err(HttpError::from(e)),
            }
        }
    };
    let mut token = bearer.token().await.map_err(BearerError::Token)?;
    let (mut refreshed, mut throttled) = (false, 0);
    loop {
        match send(token.clone()).await {
            Err(e) if e.is(401) && !refreshed => {
                tracing::warn!(
                    url,
                    "the store refused the cached access token; exchanging again"
                );
                bearer.invalidate(&token).await;
                token = bearer.token().await.map_err(BearerError::Token)?;
                refreshed = true;
            }
            Err(e) if e.is(429) && throttled < THROTTLE_RETRIES => {
                throttled += 1;
                let wait = e
                    .retry_after
                    .unwrap_or(Duration::from_secs(1))
                    .min(MAX_RETRY_AFTER);
                tracing::warn!(
                    url,
                    wait_ms = wait.as_millis() as u64,
                    "the store is throttling; waiting as it asks"
                );
                tokio::time::sleep(wait).await;
            }
            other => return other.map_err(BearerError::Http),
        }
    }
}
