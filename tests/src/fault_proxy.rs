//! A fault-injecting reverse proxy between fedsync and the servers it talks to
//! (moto, OpenBao, the Google and Azure emulators, the STS front): one loopback
//! port per upstream, so a configuration points an endpoint at the proxy instead
//! of the server. By a seeded schedule it answers 500, 502 or 503 itself, answers
//! 429 with `Retry-After`, resets the connection before forwarding or after the
//! upstream answered (the write landed, the answer is lost), holds a request
//! without answering, cuts a forwarded answer's body short, and fails every
//! token request with 503 during outage windows. It records what it forwarded
//! and what it injected, for the test to check against.
//!
//! The schedule is reproducible: every upstream draws its faults from its own
//! generator seeded from the plan's seed, in the order its requests arrive.
//! [`FaultPlan::from_env`] takes the seed from `FEDSYNC_FAULT_SEED` when set,
//! and prints the seed it uses.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// The environment variable that replays a schedule.
pub const SEED_VAR: &str = "FEDSYNC_FAULT_SEED";

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ProxyBody = BoxBody<Bytes, BoxError>;

/// What the proxy can do to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// Answers 500 without forwarding.
    InternalError,
    /// Answers 502 without forwarding.
    BadGateway,
    /// Answers 503 without forwarding.
    Unavailable,
    /// Answers 429 with `Retry-After` without forwarding.
    Throttled,
    /// Resets the connection without forwarding.
    ResetBefore,
    /// Forwards, then resets the connection instead of answering.
    ResetAfter,
    /// Holds the request unanswered, then resets the connection.
    Timeout,
    /// Forwards, then sends the status, the headers and half the body, and closes.
    Truncated,
    /// A token request during an outage window: 503 without forwarding.
    TokenOutage,
}

impl FaultKind {
    /// The kinds drawn per request, in the order their rates are laid out.
    pub const SCHEDULED: [FaultKind; 8] = [
        FaultKind::InternalError,
        FaultKind::BadGateway,
        FaultKind::Unavailable,
        FaultKind::Throttled,
        FaultKind::ResetBefore,
        FaultKind::ResetAfter,
        FaultKind::Timeout,
        FaultKind::Truncated,
    ];

    /// Whether the upstream saw the request.
    pub fn forwards(self) -> bool {
        matches!(self, FaultKind::ResetAfter | FaultKind::Truncated)
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FaultKind::InternalError => "500",
            FaultKind::BadGateway => "502",
            FaultKind::Unavailable => "503",
            FaultKind::Throttled => "429",
            FaultKind::ResetBefore => "reset-before",
            FaultKind::ResetAfter => "reset-after",
            FaultKind::Timeout => "timeout",
            FaultKind::Truncated => "truncated",
            FaultKind::TokenOutage => "token-outage",
        })
    }
}

/// Periodic windows during which every token request fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenOutages {
    /// From the start of one window to the start of the next.
    pub every: Duration,
    /// How long each window lasts.
    pub length: Duration,
}

/// The schedule: a seed, a rate per fault kind, and how faults behave.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    seed: u64,
    rates: BTreeMap<FaultKind, f64>,
    /// How long a `Timeout` holds a request at most (it ends sooner when the
    /// caller hangs up).
    hold: Duration,
    /// The `Retry-After` of a 429, in seconds.
    retry_after: u64,
    outages: Option<TokenOutages>,
}

impl FaultPlan {
    /// No faults yet, with `seed`.
    pub fn seeded(seed: u64) -> Self {
        FaultPlan {
            seed,
            rates: BTreeMap::new(),
            hold: Duration::from_secs(30),
            retry_after: 1,
            outages: None,
        }
    }

    /// The seed from `FEDSYNC_FAULT_SEED`, or a fresh one; printed either way so
    /// that a failing run can be replayed.
    pub fn from_env() -> Self {
        let seed = match std::env::var(SEED_VAR) {
            Ok(text) => text
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("{SEED_VAR}={text:?} is not an unsigned integer")),
            Err(_) => fastrand::u64(..),
        };
        println!("fault schedule seed {seed} (replay with {SEED_VAR}={seed})");
        Self::seeded(seed)
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Injects `kind` into this fraction of requests (0 to 1; all rates together at most 1).
    pub fn rate(mut self, kind: FaultKind, rate: f64) -> Self {
        assert!(
            FaultKind::SCHEDULED.contains(&kind),
            "{kind} is not drawn per request"
        );
        assert!((0.0..=1.0).contains(&rate), "rate {rate} is not in [0, 1]");
        self.rates.insert(kind, rate);
        let total: f64 = self.rates.values().sum();
        assert!(total <= 1.0 + 1e-9, "the rates add up to {total} > 1");
        self
    }

    /// How long a held request waits at most before its connection is reset.
    pub fn hold(mut self, hold: Duration) -> Self {
        self.hold = hold;
        self
    }

    /// The `Retry-After` of injected 429s, in seconds.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = seconds;
        self
    }

    /// Token requests fail during a window of `length` every `every`; where the
    /// windows fall is drawn from the seed.
    pub fn token_outages(mut self, every: Duration, length: Duration) -> Self {
        assert!(length < every, "an outage must end before the next one");
        self.outages = Some(TokenOutages { every, length });
        self
    }

    /// The fault for a draw `x` in `[0, 1)`, if any.
    fn pick(&self, x: f64) -> Option<FaultKind> {
        let mut edge = 0.0;
        for kind in FaultKind::SCHEDULED {
            edge += self.rates.get(&kind).copied().unwrap_or(0.0);
            if x < edge {
                return Some(kind);
            }
        }
        None
    }
}

/// One request the proxy forwarded, and the upstream's answer.
#[derive(Debug, Clone)]
pub struct Forwarded {
    /// The order in which the upstreams answered, across all of them.
    pub seq: u64,
    pub upstream: String,
    pub method: String,
    /// Path and query.
    pub path: String,
    /// `X-Amz-Target` (the operation of AWS JSON APIs), if any.
    pub target: Option<String>,
    pub request_body: Bytes,
    /// The upstream's status.
    pub status: u16,
    pub response_body: Bytes,
    /// What the proxy did to the answer: `ResetAfter`, `Truncated`, or nothing.
    pub fault: Option<FaultKind>,
}

impl Forwarded {
    /// Whether the upstream accepted the request (2xx), whether or not its answer
    /// reached the caller.
    pub fn succeeded(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

#[derive(Default)]
struct Record {
    forwarded: Vec<Forwarded>,
    /// (upstream, kind) -> count.
    faults: BTreeMap<(String, FaultKind), usize>,
    /// upstream -> every request received.
    requests: BTreeMap<String, usize>,
}

struct Shared {
    plan: FaultPlan,
    started: Instant,
    /// Where the periodic outage windows start, relative to `started`.
    outage_phase: Duration,
    /// A manual outage, until then.
    outage_until: Mutex<Option<Instant>>,
    record: Mutex<Record>,
    seq: AtomicU64,
    client: reqwest::Client,
}

impl Shared {
    fn record(&self) -> std::sync::MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn in_outage(&self) -> bool {
        let now = Instant::now();
        let manual = *self
            .outage_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if manual.is_some_and(|until| now < until) {
            return true;
        }
        self.plan.outages.is_some_and(|o| {
            let since = now.duration_since(self.started) + self.outage_phase;
            since.as_nanos() % o.every.as_nanos() < o.length.as_nanos()
        })
    }

    fn count_fault(&self, upstream: &str, kind: FaultKind) {
        *self
            .record()
            .faults
            .entry((upstream.to_string(), kind))
            .or_default() += 1;
    }
}

/// One upstream behind its own port.
struct Route {
    name: String,
    upstream: String,
    /// This upstream's fault generator.
    rng: Mutex<fastrand::Rng>,
}

/// The running proxy; every port closes when it drops.
pub struct FaultProxy {
    shared: Arc<Shared>,
    listeners: Mutex<Vec<JoinHandle<()>>>,
}

impl FaultProxy {
    pub fn new(plan: FaultPlan) -> Self {
        let mut phase = fastrand::Rng::with_seed(plan.seed ^ 0x6f75_7461_6765);
        let outage_phase = plan.outages.map_or(Duration::ZERO, |o| {
            Duration::from_millis(phase.u64(0..o.every.as_millis().max(1) as u64))
        });
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a plain HTTP client");
        FaultProxy {
            shared: Arc::new(Shared {
                plan,
                started: Instant::now(),
                outage_phase,
                outage_until: Mutex::new(None),
                record: Mutex::new(Record::default()),
                seq: AtomicU64::new(0),
                client,
            }),
            listeners: Mutex::new(Vec::new()),
        }
    }

    pub fn seed(&self) -> u64 {
        self.shared.plan.seed
    }

    /// Listens on a new loopback port in front of `upstream` (`http://host:port`),
    /// recorded as `name`; returns the proxy's base URL for it.
    pub async fn route(&self, name: &str, upstream: &str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an ephemeral port on 127.0.0.1");
        let addr = listener.local_addr().expect("a bound listener's address");
        let route = Arc::new(Route {
            name: name.to_string(),
            upstream: upstream.trim_end_matches('/').to_string(),
            rng: Mutex::new(fastrand::Rng::with_seed(self.shared.plan.seed ^ fnv(name))),
        });
        let shared = self.shared.clone();
        let task = tokio::spawn(async move {
            // Dropping the set (when the proxy drops) ends every open connection.
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (shared, route) = (shared.clone(), route.clone());
                connections.spawn(serve_connection(stream, shared, route));
                while connections.try_join_next().is_some() {}
            }
        });
        self.listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(task);
        format!("http://{addr}")
    }

    /// Every token request fails with 503 for `length` from now.
    pub fn token_outage_for(&self, length: Duration) {
        *self
            .shared
            .outage_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now() + length);
    }

    /// The requests forwarded to `upstream`, in the order it answered them.
    pub fn forwarded(&self, upstream: &str) -> Vec<Forwarded> {
        let mut list: Vec<Forwarded> = self
            .shared
            .record()
            .forwarded
            .iter()
            .filter(|f| f.upstream == upstream)
            .cloned()
            .collect();
        list.sort_by_key(|f| f.seq);
        list
    }

    /// How many requests reached the proxy for `upstream`, faulted or not.
    pub fn requests(&self, upstream: &str) -> usize {
        self.shared
            .record()
            .requests
            .get(upstream)
            .copied()
            .unwrap_or(0)
    }

    /// Faults injected, by kind, across every upstream.
    pub fn faults(&self) -> BTreeMap<FaultKind, usize> {
        let mut totals = BTreeMap::new();
        for ((_, kind), n) in &self.shared.record().faults {
            *totals.entry(*kind).or_default() += n;
        }
        totals
    }

    /// Faults injected into requests for `upstream`, by kind.
    pub fn faults_at(&self, upstream: &str) -> BTreeMap<FaultKind, usize> {
        self.shared
            .record()
            .faults
            .iter()
            .filter(|((u, _), _)| u == upstream)
            .map(|((_, k), n)| (*k, *n))
            .collect()
    }

    /// `500=3 502=1 …`, every kind drawn or windowed, zero included.
    pub fn fault_summary(&self) -> String {
        let faults = self.faults();
        FaultKind::SCHEDULED
            .iter()
            .chain([&FaultKind::TokenOutage])
            .map(|k| format!("{k}={}", faults.get(k).copied().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        for task in self
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            task.abort();
        }
    }
}

/// 64-bit FNV-1a, to give each upstream its own stream of draws.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A token endpoint's request: AWS `AssumeRoleWithWebIdentity`, Google STS
/// `/v1/token`, IAM Credentials `generateAccessToken`, Entra's `/oauth2/v2.0/token`,
/// and OpenBao/Vault `auth/*/login`.
pub fn is_token_request(path: &str, body: &[u8]) -> bool {
    let path = path.split('?').next().unwrap_or(path);
    path == "/v1/token"
        || path.ends_with(":generateAccessToken")
        || path.ends_with("/oauth2/v2.0/token")
        || (path.starts_with("/v1/auth/") && path.ends_with("/login"))
        || url::form_urlencoded::parse(body)
            .any(|(k, v)| k == "Action" && v == "AssumeRoleWithWebIdentity")
}

/// A TCP stream that ends with a reset (RST, not FIN) when told to.
struct Connection {
    stream: TcpStream,
    reset: Arc<AtomicBool>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        if self.reset.load(Ordering::SeqCst) {
            // With a zero linger, closing sends RST and discards unsent data.
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Why the proxy closed a connection on purpose.
#[derive(Debug)]
struct Injected(FaultKind);

impl fmt::Display for Injected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "injected fault: {}", self.0)
    }
}

impl std::error::Error for Injected {}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>, route: Arc<Route>) {
    let reset = Arc::new(AtomicBool::new(false));
    let io = TokioIo::new(Connection {
        stream,
        reset: reset.clone(),
    });
    let service = hyper::service::service_fn(move |request| {
        let (shared, route, reset) = (shared.clone(), route.clone(), reset.clone());
        handle(shared, route, reset, request)
    });
    // Injected resets end the connection with an error: nothing to report.
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .await;
}

async fn handle(
    shared: Arc<Shared>,
    route: Arc<Route>,
    reset: Arc<AtomicBool>,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, BoxError> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    *shared
        .record()
        .requests
        .entry(route.name.clone())
        .or_default() += 1;
    // Every request draws, so that the schedule depends only on the arrival order.
    let draw = route
        .rng
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .f64();
    let fault = if is_token_request(&path, &body) && shared.in_outage() {
        Some(FaultKind::TokenOutage)
    } else {
        shared.plan.pick(draw)
    };
    if let Some(kind) = fault {
        shared.count_fault(&route.name, kind);
    }
    match fault {
        Some(FaultKind::InternalError) => {
            return refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n");
        }
        Some(FaultKind::BadGateway) => return refuse(StatusCode::BAD_GATEWAY, "bad gateway\n"),
        Some(FaultKind::Unavailable | FaultKind::TokenOutage) => {
            return refuse(StatusCode::SERVICE_UNAVAILABLE, "service unavailable\n");
        }
        Some(FaultKind::Throttled) => {
            let mut response = refuse(StatusCode::TOO_MANY_REQUESTS, "too many requests\n")?;
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(shared.plan.retry_after),
            );
            return Ok(response);
        }
        Some(FaultKind::ResetBefore) => {
            reset.store(true, Ordering::SeqCst);
            return Err(Injected(FaultKind::ResetBefore).into());
        }
        Some(FaultKind::Timeout) => {
            // The connection's task drops this future when the caller hangs up.
            tokio::time::sleep(shared.plan.hold).await;
            reset.store(true, Ordering::SeqCst);
            return Err(Injected(FaultKind::Timeout).into());
        }
        _ => {}
    }
    let mut forward = shared
        .client
        .request(parts.method.clone(), format!("{}{path}", route.upstream))
        .body(body.clone());
    for (name, value) in &parts.headers {
        if !is_hop_by_hop(name) {
            forward = forward.header(name, value);
        }
    }
    let answer = match forward.send().await {
        Ok(answer) => answer,
        Err(e) => {
            let text = format!("the proxy could not reach {}: {e}\n", route.name);
            return Ok(Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(full(Bytes::from(text)))?);
        }
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let response_body = answer.bytes().await?;
    shared.record().forwarded.push(Forwarded {
        seq: shared.seq.fetch_add(1, Ordering::SeqCst),
        upstream: route.name.clone(),
        method: parts.method.to_string(),
        path,
        target: parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        request_body: body,
        status: status.as_u16(),
        response_body: response_body.clone(),
        fault,
    });
    let mut response = Response::builder().status(status);
    for (name, value) in &headers {
        if !is_hop_by_hop(name) && name != header::CONTENT_LENGTH {
            response = response.header(name, value);
        }
    }
    response = response.header(header::CONTENT_LENGTH, response_body.len());
    match fault {
        Some(FaultKind::ResetAfter) => {
            reset.store(true, Ordering::SeqCst);
            Err(Injected(FaultKind::ResetAfter).into())
        }
        Some(FaultKind::Truncated) => {
            // The head and half the body go out; then the body fails, and hyper
            // closes the connection with the declared length unmet.
            let half = response_body.slice(..response_body.len() / 2);
            let first = futures_util::stream::iter([Ok::<_, BoxError>(Frame::data(half))]);
            let cut = futures_util::stream::once(async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Err::<Frame<Bytes>, BoxError>(Injected(FaultKind::Truncated).into())
            });
            let body = StreamBody::new(futures_util::StreamExt::chain(first, cut));
            Ok(response.body(BodyExt::boxed(body))?)
        }
        _ => Ok(response.body(full(response_body))?),
    }
}

/// The proxy's own answer, in place of the upstream's.
fn refuse(status: StatusCode, text: &'static str) -> Result<Response<ProxyBody>, BoxError> {
    let response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(full(Bytes::from_static(text.as_bytes())))?;
    Ok(response)
}

fn full(bytes: Bytes) -> ProxyBody {
    Full::new(bytes)
        .map_err(|never: Infallible| match never {})
        .boxed()
}

/// Headers that belong to one connection, not to the request or answer.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::TE,
        header::TRAILER,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
    ]
    .contains(name)
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::Server;
    use axum::Router;
    use axum::routing::post;
    use std::sync::atomic::AtomicUsize;

    /// An upstream that echoes every body it receives and counts the requests.
    async fn upstream() -> (Server, Arc<AtomicUsize>) {
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let echo = move |body: Bytes| {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                body
            }
        };
        let server = Server::start(|_| {
            Router::new()
                .route("/echo", post(echo.clone()))
                .route("/v1/token", post(echo))
        })
        .await;
        (server, hits)
    }

    /// A proxy injecting only `kind`, into every request.
    async fn always(kind: FaultKind) -> (FaultProxy, String, Arc<AtomicUsize>, Server) {
        let (server, hits) = upstream().await;
        let plan = FaultPlan::seeded(7)
            .rate(kind, 1.0)
            .hold(Duration::from_millis(300));
        let proxy = FaultProxy::new(plan);
        let url = proxy.route("echo", &server.base_url()).await;
        (proxy, url, hits, server)
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder().no_proxy().build().unwrap()
    }

    /// Whether the connection was reset (RST) under the request.
    fn reset(error: &reqwest::Error) -> bool {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(e) = source {
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionReset)
            {
                return true;
            }
            source = e.source();
        }
        false
    }

    async fn echo(url: &str) -> Result<reqwest::Response, reqwest::Error> {
        client()
            .post(format!("{url}/echo"))
            .body("a body that is long enough to be cut in half")
            .send()
            .await
    }

    #[tokio::test]
    async fn without_faults_requests_pass_through_and_are_recorded() {
        let (server, hits) = upstream().await;
        let proxy = FaultProxy::new(FaultPlan::seeded(1));
        let url = proxy.route("echo", &server.base_url()).await;
        let answer = client()
            .post(format!("{url}/echo?x=1"))
            .header("x-amz-target", "secretsmanager.PutSecretValue")
            .body("hello")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.text().await.unwrap(), "hello");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        let forwarded = proxy.forwarded("echo");
        assert_eq!(forwarded.len(), 1);
        let f = &forwarded[0];
        assert_eq!(
            (f.method.as_str(), f.path.as_str(), f.status, f.fault),
            ("POST", "/echo?x=1", 200, None)
        );
        assert_eq!(f.target.as_deref(), Some("secretsmanager.PutSecretValue"));
        assert_eq!(
            (&f.request_body[..], &f.response_body[..]),
            (&b"hello"[..], &b"hello"[..])
        );
        assert!(proxy.faults().is_empty());
        assert_eq!(proxy.requests("echo"), 1);
    }

    #[tokio::test]
    async fn error_statuses_are_answered_without_forwarding() {
        for (kind, status) in [
            (FaultKind::InternalError, 500),
            (FaultKind::BadGateway, 502),
            (FaultKind::Unavailable, 503),
            (FaultKind::Throttled, 429),
        ] {
            let (proxy, url, hits, _server) = always(kind).await;
            let answer = echo(&url).await.unwrap();
            assert_eq!(answer.status(), status, "{kind}");
            if kind == FaultKind::Throttled {
                assert_eq!(answer.headers()["retry-after"], "1");
            }
            assert_eq!(hits.load(Ordering::SeqCst), 0, "{kind} forwarded nothing");
            assert_eq!(proxy.faults(), BTreeMap::from([(kind, 1)]));
            assert!(proxy.forwarded("echo").is_empty());
        }
    }

    #[tokio::test]
    async fn a_reset_before_forwarding_reaches_nothing() {
        let (proxy, url, hits, _server) = always(FaultKind::ResetBefore).await;
        let error = echo(&url).await.unwrap_err();
        assert!(reset(&error), "{error:?}");
        assert_eq!(hits.load(Ordering::SeqCst), 0);
        assert_eq!(
            proxy.faults_at("echo"),
            BTreeMap::from([(FaultKind::ResetBefore, 1)])
        );
    }

    #[tokio::test]
    async fn a_reset_after_forwarding_loses_an_answer_the_upstream_gave() {
        let (proxy, url, hits, _server) = always(FaultKind::ResetAfter).await;
        let error = echo(&url).await.unwrap_err();
        assert!(reset(&error), "{error:?}");
        assert_eq!(hits.load(Ordering::SeqCst), 1, "the write landed");
        let forwarded = proxy.forwarded("echo");
        assert_eq!(
            (forwarded.len(), forwarded[0].status, forwarded[0].fault),
            (1, 200, Some(FaultKind::ResetAfter))
        );
        assert!(forwarded[0].succeeded());
    }

    #[tokio::test]
    async fn a_truncated_answer_fails_while_its_body_is_read() {
        let (proxy, url, hits, _server) = always(FaultKind::Truncated).await;
        let answer = echo(&url).await.unwrap();
        assert_eq!(answer.status(), 200);
        let error = answer.bytes().await.unwrap_err();
        assert!(error.is_body() || error.is_decode(), "{error:?}");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        assert_eq!(proxy.forwarded("echo")[0].fault, Some(FaultKind::Truncated));
    }

    #[tokio::test]
    async fn a_held_request_outlasts_the_caller_and_is_never_forwarded() {
        let (proxy, url, hits, _server) = always(FaultKind::Timeout).await;
        let started = Instant::now();
        let error = client()
            .post(format!("{url}/echo"))
            .timeout(Duration::from_millis(100))
            .send()
            .await
            .unwrap_err();
        assert!(error.is_timeout(), "{error:?}");
        // A caller that waits longer than the hold sees the connection reset.
        let error = echo(&url).await.unwrap_err();
        assert!(reset(&error), "{error:?}");
        assert!(started.elapsed() >= Duration::from_millis(400));
        assert_eq!(hits.load(Ordering::SeqCst), 0);
        assert_eq!(proxy.faults(), BTreeMap::from([(FaultKind::Timeout, 2)]));
    }

    #[tokio::test]
    async fn token_requests_fail_during_an_outage_and_others_pass() {
        let (server, hits) = upstream().await;
        let proxy = FaultProxy::new(FaultPlan::seeded(3));
        let url = proxy.route("sts", &server.base_url()).await;
        proxy.token_outage_for(Duration::from_millis(500));
        let token = client()
            .post(format!("{url}/v1/token"))
            .send()
            .await
            .unwrap();
        assert_eq!(token.status(), 503);
        assert_eq!(echo(&url).await.unwrap().status(), 200);
        tokio::time::sleep(Duration::from_millis(600)).await;
        let token = client()
            .post(format!("{url}/v1/token"))
            .send()
            .await
            .unwrap();
        assert_eq!(token.status(), 200, "the outage is over");
        assert_eq!(hits.load(Ordering::SeqCst), 2);
        assert_eq!(
            proxy.faults(),
            BTreeMap::from([(FaultKind::TokenOutage, 1)])
        );
    }

    #[tokio::test]
    async fn periodic_outages_come_and_go() {
        let (server, _hits) = upstream().await;
        let plan = FaultPlan::seeded(5)
            .token_outages(Duration::from_millis(400), Duration::from_millis(200));
        let proxy = FaultProxy::new(plan);
        let url = proxy.route("sts", &server.base_url()).await;
        let mut statuses = Vec::new();
        for _ in 0..40 {
            let token = client().post(format!("{url}/v1/token")).send().await;
            statuses.push(token.unwrap().status().as_u16());
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(
            statuses.contains(&503) && statuses.contains(&200),
            "{statuses:?}"
        );
    }

    #[test]
    fn token_requests_are_recognized_for_every_cloud() {
        for path in [
            "/v1/token",
            "/v1/projects/-/serviceAccounts/a@b.iam.gserviceaccount.com:generateAccessToken",
            "/6c2f1a3e-8b4d-4f5a-9e2c-1d3b5a7c9e0f/oauth2/v2.0/token",
            "/v1/auth/jwt/login",
        ] {
            assert!(is_token_request(path, b""), "{path}");
        }
        let sts = b"Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=x";
        assert!(is_token_request("/", sts));
        assert!(!is_token_request("/", b"Action=GetCallerIdentity"));
        assert!(!is_token_request("/v1/secret/data/app", b""));
        assert!(!is_token_request(
            "/v1/projects/p/secrets/s:addVersion",
            b""
        ));
    }

    #[tokio::test]
    async fn one_seed_gives_one_schedule() {
        async fn statuses(seed: u64) -> Vec<u16> {
            let (server, _hits) = upstream().await;
            let plan = FaultPlan::seeded(seed).rate(FaultKind::Unavailable, 0.5);
            let proxy = FaultProxy::new(plan);
            let url = proxy.route("echo", &server.base_url()).await;
            let mut statuses = Vec::new();
            for _ in 0..24 {
                statuses.push(echo(&url).await.unwrap().status().as_u16());
            }
            statuses
        }
        let first = statuses(42).await;
        assert!(first.contains(&503) && first.contains(&200), "{first:?}");
        assert_eq!(statuses(42).await, first, "replayed");
        assert_ne!(statuses(43).await, first);
    }
}
