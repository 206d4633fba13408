//! The one shared HTTP client for the clouds fedsync reaches without an SDK
//! (Google, Azure, Vault, issuers): timeouts, the egress guard on every request
//! (see [`crate::egress`]), no redirects, and failures that describe the call
//! without carrying anything that could be a secret (no request bodies, no tokens).

use crate::egress::{self, Refused};
use crate::report::{Failure, FailureClass};
use reqwest::{IntoUrl, Method, Response, StatusCode};
use serde::de::DeserializeOwned;
use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

/// How much of an error response's body is kept.
const MAX_ERROR_BODY: usize = 4096;

/// The process-wide client (one connection pool for every destination).
pub fn client() -> &'static Client {
    static CLIENT: OnceLock<Client> = OnceLock::new();
    CLIENT.get_or_init(|| Client::new(egress::Resolver::system()))
}

/// An HTTP client whose every request passes the egress guard before it is sent.
pub struct Client {
    /// Everything but the metadata server: names resolving to link-local or
    /// metadata addresses are refused.
    public: reqwest::Client,
    /// The configured metadata server only (its name resolves to a link-local address).
    metadata: reqwest::Client,
}

impl Client {
    fn new(resolver: egress::Resolver) -> Self {
        #[allow(clippy::disallowed_methods)] // The one place a reqwest client is built.
        let builder = || {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(3))
                .timeout(Duration::from_secs(25))
                .user_agent(concat!("fedsync/", env!("CARGO_PKG_VERSION")))
                // A redirect would re-send a token request's body elsewhere, or lead
                // past the guard: never follow one (a 3xx is an error).
                .redirect(reqwest::redirect::Policy::none())
        };
        let build =
            |b: reqwest::ClientBuilder| b.build().expect("the HTTP client's settings are valid");
        Client {
            public: build(builder().dns_resolver(resolver)),
            metadata: build(builder()),
        }
    }

    pub fn get<U: IntoUrl>(&self, url: U) -> RequestBuilder<'_> {
        self.request(Method::GET, url)
    }

    pub fn post<U: IntoUrl>(&self, url: U) -> RequestBuilder<'_> {
        self.request(Method::POST, url)
    }

    pub fn request<U: IntoUrl>(&self, method: Method, url: U) -> RequestBuilder<'_> {
        RequestBuilder {
            client: self,
            inner: self.public.request(method, url),
            metadata_server: None,
        }
    }
}

/// A request being built; [`RequestBuilder::send`] checks it against the guard.
pub struct RequestBuilder<'a> {
    client: &'a Client,
    inner: reqwest::RequestBuilder,
    /// The configured metadata server this request is for, when it is.
    metadata_server: Option<String>,
}

impl RequestBuilder<'_> {
    fn map(mut self, f: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder) -> Self {
        self.inner = f(self.inner);
        self
    }

    pub fn header(self, name: &'static str, value: &str) -> Self {
        self.map(|b| b.header(name, value))
    }

    pub fn query<T: serde::Serialize + ?Sized>(self, query: &T) -> Self {
        self.map(|b| b.query(query))
    }

    pub fn bearer_auth(self, token: &str) -> Self {
        self.map(|b| b.bearer_auth(token))
    }

    pub fn json<T: serde::Serialize + ?Sized>(self, body: &T) -> Self {
        self.map(|b| b.json(body))
    }

    pub fn form<T: serde::Serialize + ?Sized>(self, body: &T) -> Self {
        self.map(|b| b.form(body))
    }

    /// Lets this request reach `server`, the configured metadata server
    /// (`host[:port]`), over plain HTTP; any other host is still refused.
    pub fn metadata_server(mut self, server: &str) -> Self {
        self.metadata_server = Some(server.to_string());
        self
    }

    /// Checks the final URL against the egress guard, sends the request, and
    /// checks the answer's status: success passes through, anything else
    /// (a redirect too) is an error. A refused URL is never contacted.
    pub async fn send(self) -> Result<Response, HttpError> {
        let (_, request) = self.inner.build_split();
        let request = request?;
        let client = match &self.metadata_server {
            Some(server) => {
                egress::check_metadata_request(request.url(), server)?;
                &self.client.metadata
            }
            None => {
                egress::check(request.url())?;
                &self.client.public
            }
        };
        check(client.execute(request).await?).await
    }
}

/// A failed HTTP exchange: the status and error body when the server answered,
/// what went wrong on the way, or the guard's refusal.
#[derive(Clone)]
pub struct HttpError {
    pub status: Option<StatusCode>,
    /// The error response's body (truncated), for the cloud-specific error
    /// parsers. Some services echo the request in it: it is never printed.
    pub body: String,
    /// `Retry-After`, when the server sent one in seconds.
    pub retry_after: Option<Duration>,
    /// What happened when there is no response.
    pub transport: Option<String>,
    /// The egress guard refused the URL: nothing was sent.
    pub refused: bool,
}

impl fmt::Debug for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpError")
            .field("status", &self.status)
            .field("body_bytes", &self.body.len())
            .field("retry_after", &self.retry_after)
            .field("transport", &self.transport)
            .field("refused", &self.refused)
            .finish()
    }
}

impl HttpError {
    /// The default classification by status; adapters refine it with the cloud's own codes.
    pub fn class(&self) -> FailureClass {
        if self.refused {
            return FailureClass::BadInput;
        }
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

    /// What went wrong, in a few words: the transport failure or refusal, else the status.
    pub fn describe(&self) -> String {
        match (&self.transport, self.status) {
            (Some(t), _) => t.clone(),
            (None, Some(s)) => format!("HTTP {}", s.as_u16()),
            (None, None) => "no response".into(),
        }
    }

    fn without_response(transport: String, refused: bool) -> Self {
        HttpError {
            status: None,
            body: String::new(),
            retry_after: None,
            transport: Some(transport),
            refused,
        }
    }
}

impl From<Refused> for HttpError {
    fn from(refused: Refused) -> Self {
        HttpError::without_response(refused.to_string(), true)
    }
}

impl From<reqwest::Error> for HttpError {
    fn from(e: reqwest::Error) -> Self {
        // The resolver's refusal of a name, wrapped by the HTTP stack.
        if let Some(refused) = egress::refusal_in(&e) {
            return refused.clone().into();
        }
        // reqwest's Display names the URL and the cause, never a body.
        let what = if e.is_timeout() {
            "timed out"
        } else {
            "failed"
        };
        HttpError::without_response(format!("request {what}: {e}"), false)
    }
}

/// Checks a response's status: success passes through, anything else becomes an error.
async fn check(response: Response) -> Result<Response, HttpError> {
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
        refused: false,
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
        refused: false,
    })
}

/// A failure for an error that has no cloud-specific explanation.
pub fn failure(e: &HttpError, context: impl std::fmt::Display) -> Failure {
    Failure::new(e.class(), format!("{context}: {}", e.describe()))
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
    let send = |token: &crate::exchange::BearerToken| {
        let mut request = client()
            .request(method.clone(), url)
            .query(query)
            .bearer_auth(token.expose());
        if let Some(b) = body {
            request = request.json(b);
        }
        request.send()
    };
    let mut token = bearer.token().await.map_err(BearerError::Token)?;
    let (mut refreshed, mut throttled) = (false, 0);
    loop {
        match send(&token).await {
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::get;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Serves `router` on a loopback port; returns its base URL.
    async fn serve(router: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn a_redirect_is_an_error_and_its_target_is_never_called() {
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let target = serve(Router::new().route(
            "/token",
            get(move || async move {
                counted.fetch_add(1, Ordering::SeqCst);
                "moved here"
            }),
        ))
        .await;
        let location = format!("{target}/token");
        let redirecting = serve(Router::new().route(
            "/token",
            axum::routing::post(move || async move {
                (
                    StatusCode::FOUND,
                    [(reqwest::header::LOCATION, location.clone())],
                )
            }),
        ))
        .await;
        let e = client()
            .post(format!("{redirecting}/token"))
            .form(&[("subject_token", "t")])
            .send()
            .await
            .unwrap_err();
        assert_eq!(e.status, Some(StatusCode::FOUND));
        assert_eq!(e.class(), FailureClass::BadInput);
        assert_eq!(hits.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_refused_url_fails_at_once_as_bad_input_naming_its_host() {
        for url in [
            "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            "http://issuer.example.com/.well-known/jwks.json",
            "http://metadata.google.internal/computeMetadata/v1/",
        ] {
            let started = std::time::Instant::now();
            let e = client().get(url).send().await.unwrap_err();
            assert!(e.refused, "{url}: {e:?}");
            assert_eq!(e.class(), FailureClass::BadInput);
            let host = url::Url::parse(url)
                .unwrap()
                .host_str()
                .unwrap()
                .to_string();
            let text = failure(&e, "fetching the JWKS").message;
            assert!(
                text.contains(&format!("refused to call {host}: ")),
                "{text}"
            );
            assert!(started.elapsed() < Duration::from_millis(500), "{url}");
        }
    }

    #[tokio::test]
    async fn a_name_resolving_only_to_metadata_addresses_is_refused() {
        let guarded = Client::new(egress::Resolver::with(|_| {
            Box::pin(async { Ok(vec!["169.254.169.254:0".parse().unwrap()]) })
        }));
        let e = guarded
            .get("https://innocent.example.com/jwks.json")
            .send()
            .await
            .unwrap_err();
        assert!(e.refused, "{e:?}");
        assert_eq!(
            e.transport.as_deref(),
            Some(
                "refused to call innocent.example.com: the name resolves only to link-local or cloud metadata addresses, which are never called"
            )
        );
    }

    #[tokio::test]
    async fn only_the_configured_metadata_server_may_be_asked_over_plain_http() {
        let base = serve(Router::new().route("/token", get(|| async { "ok" }))).await;
        let server = base.trim_start_matches("http://");
        let answer = client()
            .get(format!("{base}/token"))
            .metadata_server(server)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.text().await.unwrap(), "ok");
        let e = client()
            .get("http://169.254.169.254/computeMetadata/v1/")
            .metadata_server(server)
            .send()
            .await
            .unwrap_err();
        assert!(e.refused, "{e:?}");
    }

    #[test]
    fn debug_never_shows_an_error_body() {
        let e = HttpError {
            status: Some(StatusCode::BAD_REQUEST),
            body: "echoed: hunter2".into(),
            retry_after: None,
            transport: None,
            refused: false,
        };
        assert!(!format!("{e:?}").contains("hunter2"));
    }
}
