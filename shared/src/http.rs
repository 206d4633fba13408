//! The one shared HTTP client for the clouds fedsync reaches without an SDK
//! (Google, Azure, Vault, issuers): timeouts, the egress guard on every request
//! (see [`crate::egress`]), no redirects, the retry policy on every request (see
//! [`crate::retry`]), and failures that describe the call without carrying
//! anything that could be a secret (no request bodies, no tokens).

use crate::egress::{self, Refused};
use crate::report::{Failure, FailureClass};
use crate::retry::{self, Idempotency};
use reqwest::{IntoUrl, Method, Response, StatusCode};
use serde::de::DeserializeOwned;
use std::fmt;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

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
    /// The configured metadata server only (its name resolves to a link-local
    /// address). Built on its first request: building a client loads the system's
    /// root certificates (a few milliseconds), which most processes, never asking
    /// a metadata server, need not pay twice.
    metadata: OnceLock<reqwest::Client>,
}

impl Client {
    fn new(resolver: egress::Resolver) -> Self {
        Client {
            public: build(builder().dns_resolver(resolver)),
            metadata: OnceLock::new(),
        }
    }

    /// The client for the configured metadata server.
    fn metadata(&self) -> &reqwest::Client {
        self.metadata.get_or_init(|| build(builder()))
    }

    pub fn get<U: IntoUrl>(&self, url: U) -> RequestBuilder<'_> {
        self.request(Method::GET, url)
    }

    pub fn post<U: IntoUrl>(&self, url: U) -> RequestBuilder<'_> {
        self.request(Method::POST, url)
    }

    pub fn request<U: IntoUrl>(&self, method: Method, url: U) -> RequestBuilder<'_> {
        // Reads may always be sent again; anything else only when its caller says so.
        let idempotency = if method.is_safe() {
            Idempotency::Idempotent
        } else {
            Idempotency::NotIdempotent
        };
        RequestBuilder {
            client: self,
            inner: self.public.request(method, url),
            metadata_server: None,
            idempotency,
        }
    }
}

/// The settings both of [`Client`]'s clients share.
fn builder() -> reqwest::ClientBuilder {
    #[allow(clippy::disallowed_methods)] // The one place a reqwest client is built.
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(25))
        .user_agent(concat!("fedsync/", env!("CARGO_PKG_VERSION")))
        // A redirect would re-send a token request's body elsewhere, or lead
        // past the guard: never follow one (a 3xx is an error).
        .redirect(reqwest::redirect::Policy::none())
}

fn build(builder: reqwest::ClientBuilder) -> reqwest::Client {
    builder
        .build()
        .expect("the HTTP client's settings are valid")
}

/// A request being built; [`RequestBuilder::send`] checks it against the guard.
pub struct RequestBuilder<'a> {
    client: &'a Client,
    inner: reqwest::RequestBuilder,
    /// The configured metadata server this request is for, when it is.
    metadata_server: Option<String>,
    /// Whether the request may be sent again after its answer was lost.
    idempotency: Idempotency,
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

    /// Marks a request that is not a read as harmless to repeat (a token
    /// exchange): if its answer is lost, it is sent again.
    pub fn idempotent(mut self) -> Self {
        self.idempotency = Idempotency::Idempotent;
        self
    }

    /// Checks the final URL against the egress guard, sends the request under
    /// the retry policy, and checks the answer's status: success passes through
    /// (its body read whole), anything else (a redirect too) is an error. A
    /// refused URL is never contacted.
    pub async fn send(self) -> Result<Response, HttpError> {
        let (_, request) = self.inner.build_split();
        let request = request?;
        let client = match &self.metadata_server {
            Some(server) => {
                egress::check_metadata_request(request.url(), server)?;
                self.client.metadata()
            }
            None => {
                egress::check(request.url())?;
                &self.client.public
            }
        };
        // Named by method and path: a query may carry anything.
        let call = format!("{} {}", request.method(), request.url().path());
        // Bodies here are bytes (JSON, forms), which always clone; a stream could not be resent.
        if request.try_clone().is_none() {
            return receive(client.execute(request).await?).await;
        }
        retry::run(&call, self.idempotency, || {
            let attempt = request.try_clone();
            async move {
                let attempt = attempt.ok_or_else(|| {
                    HttpError::without_response(
                        "the request could not be repeated".into(),
                        Delivery::NotSent,
                    )
                })?;
                receive(client.execute(attempt).await?).await
            }
        })
        .await
    }
}

/// How far a failed request got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Never sent: the guard refused it, or the connection could not be made.
    NotSent,
    /// The server answered with a status.
    Answered,
    /// Sent, but the answer was lost: a timeout, a reset, a body cut short.
    Lost,
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
    /// How far the request got.
    pub delivery: Delivery,
}

impl fmt::Debug for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpError")
            .field("status", &self.status)
            .field("body_bytes", &self.body.len())
            .field("retry_after", &self.retry_after)
            .field("transport", &self.transport)
            .field("refused", &self.refused)
            .field("delivery", &self.delivery)
            .finish()
    }
}

impl HttpError {
    /// The default classification by status; adapters refine it with the cloud's own codes.
    pub fn class(&self) -> FailureClass {
        if self.refused {
            return FailureClass::BadInput;
        }
        if self.delivery == Delivery::Lost {
            return FailureClass::Unavailable;
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

    fn without_response(transport: String, delivery: Delivery) -> Self {
        HttpError {
            status: None,
            body: String::new(),
            retry_after: None,
            transport: Some(transport),
            refused: false,
            delivery,
        }
    }
}

/// The policy retries throttling, the 5xx answers of an overloaded or failing
/// server, and failures on the way (connect errors, timeouts, resets, bodies cut
/// short). A non-idempotent request is sent again only after a connect error, a
/// 429 or a 503: answers that say it was not acted on.
impl retry::Transient for HttpError {
    fn is_transient(&self) -> bool {
        !self.refused
            && self
                .status
                .is_none_or(|s| matches!(s.as_u16(), 429 | 500 | 502 | 503 | 504))
    }

    fn may_have_acted(&self) -> bool {
        match self.delivery {
            Delivery::NotSent => false,
            Delivery::Lost => true,
            Delivery::Answered => !(self.is(429) || self.is(503)),
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    fn class(&self) -> FailureClass {
        HttpError::class(self)
    }

    fn out_of_time(call: &str, sent: bool) -> Self {
        let (transport, delivery) = if sent {
            (
                format!("{call} timed out at the invocation's deadline"),
                Delivery::Lost,
            )
        } else {
            (
                format!("{call} was not sent: the invocation's deadline is too near"),
                Delivery::NotSent,
            )
        };
        HttpError::without_response(transport, delivery)
    }
}

impl From<Refused> for HttpError {
    fn from(refused: Refused) -> Self {
        HttpError {
            refused: true,
            ..HttpError::without_response(refused.to_string(), Delivery::NotSent)
        }
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
        // Only a connection never made proves the server saw nothing.
        let delivery = if e.is_connect() || e.is_builder() {
            Delivery::NotSent
        } else {
            Delivery::Lost
        };
        HttpError::without_response(format!("request {what}: {e}"), delivery)
    }
}

/// Checks a response's status: success passes through with its body read whole
/// (a body cut short, or declared JSON but incomplete, is a lost answer), anything
/// else becomes an error.
async fn receive(response: Response) -> Result<Response, HttpError> {
    let status = response.status();
    if !status.is_success() {
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        // An error answer cut short may have lost the code that tells what it
        // means (a 404's `NOT_FOUND`): it is a lost answer, not an empty one.
        let bytes = response.bytes().await.map_err(|e| {
            HttpError::without_response(
                format!("the HTTP {} answer was cut short: {e}", status.as_u16()),
                Delivery::Lost,
            )
        })?;
        let body = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_ERROR_BODY)]).into_owned();
        return Err(HttpError {
            status: Some(status),
            body,
            retry_after,
            transport: None,
            refused: false,
            delivery: Delivery::Answered,
        });
    }
    let (version, headers) = (response.version(), response.headers().clone());
    let bytes = response.bytes().await.map_err(|e| {
        HttpError::without_response(
            format!("the response body was cut short: {e}"),
            Delivery::Lost,
        )
    })?;
    let declared_json = headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .is_some_and(|m| m == "application/json" || m.ends_with("+json"));
    if declared_json
        && status != StatusCode::NO_CONTENT
        && let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes)
    {
        // Described by its position only: the body may hold a secret value.
        return Err(HttpError::without_response(
            format!(
                "the response body is incomplete JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
            Delivery::Lost,
        ));
    }
    let mut whole = axum::http::Response::new(bytes);
    *whole.status_mut() = status;
    *whole.version_mut() = version;
    *whole.headers_mut() = headers;
    Ok(Response::from(whole))
}

/// `Retry-After`: seconds, or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or_default())
}

/// Reads a successful response's JSON body; a body that does not parse is
/// described by its position only (it may hold a secret value). A body that
/// is not JSON at all counts as a lost answer; JSON of another shape does not.
pub async fn json<T: DeserializeOwned>(response: Response) -> Result<T, HttpError> {
    let status = response.status();
    let bytes = response.bytes().await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        let (status, delivery) = match e.classify() {
            serde_json::error::Category::Data => (Some(status), Delivery::Answered),
            _ => (None, Delivery::Lost),
        };
        HttpError {
            status,
            transport: Some(format!(
                "unexpected response body (line {}, column {})",
                e.line(),
                e.column()
            )),
            ..HttpError::without_response(String::new(), delivery)
        }
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

/// Sends `method url` with a bearer token (and a JSON body) under the retry
/// policy (a read is repeated after a lost answer; anything else is not). A 401
/// (an expired or revoked token) makes one fresh exchange and one more send:
/// not a repeat of the same call, since the token differs.
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
    let token = bearer.token().await.map_err(BearerError::Token)?;
    match send(&token).await {
        Err(e) if e.is(401) => {
            tracing::warn!(
                url,
                "the store refused the cached access token; exchanging again"
            );
            bearer.invalidate(&token).await;
            let token = bearer.token().await.map_err(BearerError::Token)?;
            send(&token).await.map_err(BearerError::Http)
        }
        other => other.map_err(BearerError::Http),
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

    #[tokio::test]
    async fn an_error_answer_cut_short_is_lost_not_empty() {
        let cut = "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 60\r\nconnection: close\r\n\r\n{\"error\":{\"status\":\"NOT_";
        let (base, requests) = raw(vec![Some(cut), Some(OK_JSON)]).await;
        let answer = client().get(format!("{base}/v1/x")).send().await.unwrap();
        assert_eq!(ok_json(answer).await["ok"], true, "a read is repeated");
        assert_eq!(requests.load(Ordering::SeqCst), 2);
        let (base, _) = raw(vec![Some(cut)]).await;
        let e = client()
            .request(Method::PUT, format!("{base}/v1/w"))
            .send()
            .await
            .unwrap_err();
        assert_eq!((e.delivery, e.status), (Delivery::Lost, None));
        assert_eq!(e.class(), FailureClass::Unavailable);
        assert!(
            e.describe().contains("HTTP 404 answer was cut short"),
            "{}",
            e.describe()
        );
    }

    #[test]
    fn debug_never_shows_an_error_body() {
        let e = HttpError {
            status: Some(StatusCode::BAD_REQUEST),
            body: "echoed: hunter2".into(),
            retry_after: None,
            transport: None,
            refused: false,
            delivery: Delivery::Answered,
        };
        assert!(!format!("{e:?}").contains("hunter2"));
    }

    /// Serves raw HTTP answers on a loopback port, one connection per entry of
    /// `script` in turn: `Some(answer)` is written after the whole request is
    /// read; `None` reads the request and closes without answering (an answer
    /// lost after the server acted). Counts the requests read.
    async fn raw(script: Vec<Option<&'static str>>) -> (String, Arc<AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        tokio::spawn(async move {
            for answer in script {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut read = Vec::new();
                let mut buffer = [0u8; 4096];
                loop {
                    let n = socket.read(&mut buffer).await.unwrap();
                    read.extend_from_slice(&buffer[..n]);
                    let text = String::from_utf8_lossy(&read).to_ascii_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                        if read.len() >= end + 4 + length {
                            break;
                        }
                    }
                    assert!(n > 0, "the client closed mid-request");
                }
                counted.fetch_add(1, Ordering::SeqCst);
                if let Some(answer) = answer {
                    socket.write_all(answer.as_bytes()).await.unwrap();
                }
                socket.shutdown().await.ok();
            }
        });
        (format!("http://{addr}"), requests)
    }

    const OK_JSON: &str = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\nconnection: close\r\n\r\n{\"ok\":true}";

    fn status(code: u16, extra: &str) -> String {
        format!("HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n{extra}\r\n")
    }

    fn leak(s: String) -> &'static str {
        Box::leak(s.into_boxed_str())
    }

    async fn ok_json(response: Response) -> serde_json::Value {
        json(response).await.unwrap()
    }

    #[tokio::test]
    async fn a_503_is_retried_until_the_call_succeeds() {
        let (base, requests) = raw(vec![
            Some(leak(status(503, ""))),
            Some(leak(status(503, ""))),
            Some(OK_JSON),
        ])
        .await;
        let answer = client().get(format!("{base}/v1/x")).send().await.unwrap();
        assert_eq!(ok_json(answer).await["ok"], true);
        assert_eq!(requests.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_429_waits_at_least_as_long_as_retry_after_says() {
        let (base, requests) = raw(vec![
            Some(leak(status(429, "retry-after: 1\r\n"))),
            Some(OK_JSON),
        ])
        .await;
        let started = std::time::Instant::now();
        let answer = client().get(format!("{base}/v1/x")).send().await.unwrap();
        assert_eq!(ok_json(answer).await["ok"], true);
        assert_eq!(requests.load(Ordering::SeqCst), 2);
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn client_errors_are_not_retried() {
        for code in [400, 401, 403, 404, 409] {
            let (base, requests) = raw(vec![Some(leak(status(code, ""))), Some(OK_JSON)]).await;
            let e = client()
                .get(format!("{base}/v1/x"))
                .send()
                .await
                .unwrap_err();
            assert!(e.is(code), "{e:?}");
            assert_eq!(requests.load(Ordering::SeqCst), 1, "HTTP {code}");
        }
    }

    #[tokio::test]
    async fn the_deadline_stops_retries_before_it_passes() {
        let budget = Duration::from_millis(1500);
        let (base, requests) = raw(vec![Some(leak(status(503, ""))); 100]).await;
        let started = std::time::Instant::now();
        let e = retry::with_deadline(
            retry::deadline_in(budget),
            client().get(format!("{base}/v1/x")).send(),
        )
        .await
        .unwrap_err();
        assert!(e.is(503), "{e:?}");
        assert!(started.elapsed() < budget - retry::MARGIN + Duration::from_millis(100));
        assert!(
            requests.load(Ordering::SeqCst) >= 2,
            "retried while there was time"
        );
    }

    #[tokio::test]
    async fn a_retry_after_past_the_deadline_gives_up_at_once() {
        let (base, requests) = raw(vec![
            Some(leak(status(429, "retry-after: 10\r\n"))),
            Some(OK_JSON),
        ])
        .await;
        let started = std::time::Instant::now();
        let e = retry::with_deadline(
            retry::deadline_in(Duration::from_secs(3)),
            client().get(format!("{base}/v1/x")).send(),
        )
        .await
        .unwrap_err();
        assert!(e.is(429), "{e:?}");
        assert_eq!(e.class(), FailureClass::Throttled);
        assert_eq!(requests.load(Ordering::SeqCst), 1);
        assert!(started.elapsed() < Duration::from_millis(500));
    }

    #[tokio::test]
    async fn a_write_whose_answer_was_lost_is_not_sent_again() {
        let (base, requests) = raw(vec![None, Some(OK_JSON)]).await;
        let e = client()
            .post(format!("{base}/v1/secrets/s:addVersion"))
            .json(&serde_json::json!({"payload": {}}))
            .send()
            .await
            .unwrap_err();
        assert_eq!(e.delivery, Delivery::Lost, "{e:?}");
        assert_eq!(
            e.class(),
            FailureClass::Unavailable,
            "the trigger's retry re-inspects"
        );
        assert_eq!(requests.load(Ordering::SeqCst), 1);
        // A 500 may have acted too; a 503 says it did not, so that one is resent.
        let (base, requests) = raw(vec![Some(leak(status(500, ""))), Some(OK_JSON)]).await;
        let e = client()
            .post(format!("{base}/v1/w"))
            .send()
            .await
            .unwrap_err();
        assert!(e.is(500));
        assert_eq!(requests.load(Ordering::SeqCst), 1);
        let (base, requests) = raw(vec![Some(leak(status(503, ""))), Some(OK_JSON)]).await;
        client().post(format!("{base}/v1/w")).send().await.unwrap();
        assert_eq!(requests.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_repeatable_call_whose_answer_was_lost_is_sent_again() {
        let (base, requests) = raw(vec![None, Some(OK_JSON)]).await;
        let answer = client()
            .post(format!("{base}/v1/token"))
            .form(&[("grant_type", "x")])
            .idempotent()
            .send()
            .await
            .unwrap();
        assert_eq!(ok_json(answer).await["ok"], true);
        assert_eq!(requests.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_body_cut_short_is_a_lost_answer_and_a_read_is_repeated() {
        // Cut short of its declared length, then a complete-looking but truncated JSON body.
        let short = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 40\r\nconnection: close\r\n\r\n{\"ok\":tr";
        let truncated = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 8\r\nconnection: close\r\n\r\n{\"ok\":tr";
        let (base, requests) = raw(vec![Some(short), Some(truncated), Some(OK_JSON)]).await;
        let answer = client().get(format!("{base}/v1/x")).send().await.unwrap();
        assert_eq!(ok_json(answer).await["ok"], true);
        assert_eq!(requests.load(Ordering::SeqCst), 3);
        let (base, requests) = raw(vec![Some(truncated), Some(OK_JSON)]).await;
        let e = client()
            .request(Method::PUT, format!("{base}/v1/w"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(e.delivery, Delivery::Lost);
        assert_eq!(
            requests.load(Ordering::SeqCst),
            1,
            "a write is not repeated"
        );
        assert!(
            e.describe().contains("incomplete JSON (line 1, column 8)"),
            "{}",
            e.describe()
        );
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        let wait = parse_retry_after(&later).unwrap();
        assert!(wait > Duration::from_secs(110) && wait <= Duration::from_secs(120));
        let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(60));
        assert_eq!(parse_retry_after(&past), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
