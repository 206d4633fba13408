//! A small AWS Lambda Runtime API server that feeds events to a real Lambda binary (built
//! with `lambda_runtime`), and helpers to find and run that binary the way Lambda does.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use crate::leaks::Role;
use crate::process::CapturedProcess;
use crate::server::Server;

const REQUEST_ID: HeaderName = HeaderName::from_static("lambda-runtime-aws-request-id");
const DEADLINE_MS: HeaderName = HeaderName::from_static("lambda-runtime-deadline-ms");
const FUNCTION_ARN: HeaderName = HeaderName::from_static("lambda-runtime-invoked-function-arn");
const TRACE_ID: HeaderName = HeaderName::from_static("lambda-runtime-trace-id");
const FUNCTION_ERROR_TYPE: HeaderName =
    HeaderName::from_static("lambda-runtime-function-error-type");

/// The identity of the function the server pretends to host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionConfig {
    pub name: String,
    pub region: String,
    pub account_id: String,
    pub memory_mb: u32,
}

impl Default for FunctionConfig {
    fn default() -> Self {
        Self {
            name: "fedsync".to_owned(),
            region: "us-east-1".to_owned(),
            account_id: "123456789012".to_owned(),
            memory_mb: 128,
        }
    }
}

impl FunctionConfig {
    /// `arn:aws:lambda:REGION:ACCOUNT:function:NAME`.
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{}",
            self.region, self.account_id, self.name
        )
    }
}

/// How one invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// The function answered on `/response` (the body as JSON; a non-JSON body as a string).
    Ok(Value),
    /// The function answered on `/error`, or reported an init error on `/init/error`.
    Error { error_type: String, message: String },
    /// No answer within the invocation's timeout.
    Timeout,
}

impl Invocation {
    /// The response, panicking with the outcome if the invocation did not succeed.
    #[track_caller]
    pub fn expect_ok(self) -> Value {
        match self {
            Self::Ok(value) => value,
            other => panic!("expected a successful invocation, got {other:?}"),
        }
    }

    /// `(error_type, message)`, panicking if the invocation did not end in an error.
    #[track_caller]
    pub fn expect_error(self) -> (String, String) {
        match self {
            Self::Error {
                error_type,
                message,
            } => (error_type, message),
            other => panic!("expected a failed invocation, got {other:?}"),
        }
    }
}

/// An error the runtime reported: the `{"errorType","errorMessage"}` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionError {
    pub error_type: String,
    pub message: String,
}

#[derive(Debug)]
struct QueuedEvent {
    request_id: String,
    event: Value,
    deadline_ms: u128,
}

#[derive(Debug)]
struct ApiState {
    function_arn: String,
    queue: mpsc::UnboundedSender<QueuedEvent>,
    next: tokio::sync::Mutex<mpsc::UnboundedReceiver<QueuedEvent>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Invocation>>>,
    first_poll: watch::Sender<Option<Instant>>,
    init_error: Mutex<Option<FunctionError>>,
}

impl ApiState {
    fn take_pending(&self, request_id: &str) -> Option<oneshot::Sender<Invocation>> {
        self.pending
            .lock()
            .expect("pending lock")
            .remove(request_id)
    }

    fn is_pending(&self, request_id: &str) -> bool {
        self.pending
            .lock()
            .expect("pending lock")
            .contains_key(request_id)
    }
}

/// The Runtime API server, listening on `127.0.0.1` on an ephemeral port.
#[derive(Debug)]
pub struct LambdaApi {
    state: Arc<ApiState>,
    config: FunctionConfig,
    server: Server,
}

impl LambdaApi {
    /// Starts a server for the default [`FunctionConfig`].
    pub async fn start() -> Self {
        Self::start_with(FunctionConfig::default()).await
    }

    /// Starts a server for the given function identity.
    pub async fn start_with(config: FunctionConfig) -> Self {
        let (queue, next) = mpsc::unbounded_channel();
        let state = Arc::new(ApiState {
            function_arn: config.arn(),
            queue,
            next: tokio::sync::Mutex::new(next),
            pending: Mutex::new(HashMap::new()),
            first_poll: watch::Sender::new(None),
            init_error: Mutex::new(None),
        });
        let router_state = Arc::clone(&state);
        let server = Server::start(|_| {
            Router::new()
                .route("/2018-06-01/runtime/invocation/next", get(next_event))
                .route(
                    "/2018-06-01/runtime/invocation/{id}/response",
                    post(invocation_response),
                )
                .route(
                    "/2018-06-01/runtime/invocation/{id}/error",
                    post(invocation_error),
                )
                .route("/2018-06-01/runtime/init/error", post(init_error))
                .with_state(router_state)
        })
        .await;
        Self {
            state,
            config,
            server,
        }
    }

    /// `host:port`, the value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.server.addr().to_string()
    }

    /// The function identity this server reports.
    pub fn config(&self) -> &FunctionConfig {
        &self.config
    }

    /// Queues `event` for the runtime and waits up to `timeout` (which also sets the
    /// `Lambda-Runtime-Deadline-Ms` header) for its outcome.
    pub async fn invoke(&self, event: Value, timeout: Duration) -> Invocation {
        if let Some(error) = self.init_error() {
            return Invocation::Error {
                error_type: error.error_type,
                message: error.message,
            };
        }
        let request_id = Uuid::new_v4().to_string();
        let (done, outcome) = oneshot::channel();
        self.state
            .pending
            .lock()
            .expect("pending lock")
            .insert(request_id.clone(), done);
        let deadline = SystemTime::now() + timeout;
        let deadline_ms = deadline
            .duration_since(UNIX_EPOCH)
            .expect("the clock is after 1970")
            .as_millis();
        self.state
            .queue
            .send(QueuedEvent {
                request_id: request_id.clone(),
                event,
                deadline_ms,
            })
            .expect("the queue's receiver lives as long as the server state");
        match tokio::time::timeout(timeout, outcome).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) | Err(_) => {
                // Forget it, so a late answer is refused and a still-queued event is skipped.
                self.state.take_pending(&request_id);
                Invocation::Timeout
            }
        }
    }

    /// When the runtime first polled `/invocation/next`, if it has.
    pub fn first_poll(&self) -> Option<Instant> {
        *self.state.first_poll.borrow()
    }

    /// Waits up to `timeout` for the runtime's first poll of `/invocation/next`.
    pub async fn wait_for_first_poll(&self, timeout: Duration) -> Option<Instant> {
        let mut polls = self.state.first_poll.subscribe();
        tokio::time::timeout(timeout, polls.wait_for(Option::is_some))
            .await
            .ok()
            .and_then(|seen| seen.ok().and_then(|instant| *instant))
    }

    /// The error the runtime reported on `/init/error`, if any.
    pub fn init_error(&self) -> Option<FunctionError> {
        self.state
            .init_error
            .lock()
            .expect("init error lock")
            .clone()
    }
}

async fn next_event(State(state): State<Arc<ApiState>>) -> Response {
    state.first_poll.send_if_modified(|first| {
        let unset = first.is_none();
        if unset {
            *first = Some(Instant::now());
        }
        unset
    });
    let mut queue = state.next.lock().await;
    let queued = loop {
        match queue.recv().await {
            // Skip events whose invocation already timed out.
            Some(queued) if state.is_pending(&queued.request_id) => break queued,
            Some(_) => {}
            None => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        }
    };
    drop(queue);
    let mut headers = HeaderMap::new();
    headers.insert(REQUEST_ID, header_value(&queued.request_id));
    headers.insert(DEADLINE_MS, header_value(&queued.deadline_ms.to_string()));
    headers.insert(FUNCTION_ARN, header_value(&state.function_arn));
    headers.insert(TRACE_ID, header_value(&trace_id()));
    (headers, axum::Json(queued.event)).into_response()
}

async fn invocation_response(
    State(state): State<Arc<ApiState>>,
    UrlPath(request_id): UrlPath<String>,
    body: Bytes,
) -> Response {
    let Some(done) = state.take_pending(&request_id) else {
        return invalid_request_id();
    };
    let value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
    };
    let _ = done.send(Invocation::Ok(value));
    accepted()
}

async fn invocation_error(
    State(state): State<Arc<ApiState>>,
    UrlPath(request_id): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(done) = state.take_pending(&request_id) else {
        return invalid_request_id();
    };
    let error = function_error(&headers, &body);
    let _ = done.send(Invocation::Error {
        error_type: error.error_type,
        message: error.message,
    });
    accepted()
}

async fn init_error(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let error = function_error(&headers, &body);
    *state.init_error.lock().expect("init error lock") = Some(error.clone());
    let pending: Vec<_> = state
        .pending
        .lock()
        .expect("pending lock")
        .drain()
        .collect();
    for (_, done) in pending {
        let _ = done.send(Invocation::Error {
            error_type: error.error_type.clone(),
            message: error.message.clone(),
        });
    }
    accepted()
}

/// Reads `{"errorType","errorMessage"}`, falling back to the error-type header and the raw
/// body when the runtime sent something else.
fn function_error(headers: &HeaderMap, body: &[u8]) -> FunctionError {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let error_type = parsed["errorType"]
        .as_str()
        .or_else(|| headers.get(FUNCTION_ERROR_TYPE)?.to_str().ok())
        .unwrap_or("Unknown")
        .to_owned();
    let message = parsed["errorMessage"]
        .as_str()
        .map_or_else(|| String::from_utf8_lossy(body).into_owned(), str::to_owned);
    FunctionError {
        error_type,
        message,
    }
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, axum::Json(json!({"status": "OK"}))).into_response()
}

fn invalid_request_id() -> Response {
    let body = json!({
        "errorType": "InvalidRequestID",
        "errorMessage": "Invalid request ID",
    });
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

fn header_value(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).expect("generated header values are visible ASCII")
}

/// An X-Ray trace header of the shape Lambda sends.
fn trace_id() -> String {
    let epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs();
    let random = Uuid::new_v4().simple().to_string();
    format!(
        "Root=1-{epoch:08x}-{};Parent={};Sampled=0",
        &random[..24],
        &random[16..]
    )
}

/// A function binary running against a [`LambdaApi`] with the environment a real Lambda
/// sets, its output kept in memory; killed when dropped.
#[derive(Debug)]
pub struct LambdaProcess {
    process: CapturedProcess,
}

impl LambdaProcess {
    /// Spawns `binary` with a clean environment: the variables Lambda sets for an OS-only
    /// (`provided.al2023`) runtime, then `env` (which may override any of them). The
    /// working directory is the binary's directory, as `LAMBDA_TASK_ROOT` says.
    pub fn spawn<K, V>(
        binary: &Path,
        api: &LambdaApi,
        env: impl IntoIterator<Item = (K, V)>,
    ) -> Self
    where
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let config = api.config();
        let task_root = binary.parent().unwrap_or(Path::new("."));
        let mut command = Command::new(binary);
        command
            .env_clear()
            .current_dir(task_root)
            .env("AWS_LAMBDA_RUNTIME_API", api.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", &config.name)
            .env(
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                config.memory_mb.to_string(),
            )
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", config.name),
            )
            .env(
                "AWS_LAMBDA_LOG_STREAM_NAME",
                format!("2026/01/01/[$LATEST]{}", Uuid::new_v4().simple()),
            )
            .env("AWS_REGION", &config.region)
            .env("AWS_DEFAULT_REGION", &config.region)
            .env("_HANDLER", "bootstrap")
            .env("LAMBDA_TASK_ROOT", task_root)
            .env("LAMBDA_RUNTIME_DIR", "/var/runtime")
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LANG", "en_US.UTF-8")
            .env("TZ", ":UTC")
            .envs(env);
        let process = CapturedProcess::spawn(Role::Fedsync, &mut command)
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        Self { process }
    }

    /// The process id (to read its resource use from /proc).
    pub fn id(&self) -> u32 {
        self.process.id()
    }

    /// Everything the function has written to stdout and stderr so far.
    pub fn logs(&self) -> String {
        self.process.logs()
    }

    /// Waits until the logs contain `needle`; `false` if they do not within `timeout`.
    pub async fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        self.process.wait_for_log(needle, timeout).await
    }

    /// The exit status if the function has exited (a runtime exits on an init error).
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        self.process.try_exit_status()
    }

    /// Waits up to `timeout` for the function to exit.
    pub async fn wait_for_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.process.wait_for_exit(timeout).await
    }

    /// Kills the function now.
    pub fn kill(&mut self) {
        self.process.kill();
    }
}

/// The path of a binary of this workspace, in the target directory of the running test
/// executable (`target/PROFILE/deps/TEST` -> `target/PROFILE/NAME`).
///
/// # Panics
/// If the binary has not been built.
#[track_caller]
pub fn workspace_binary(name: &str) -> PathBuf {
    let binary =
        crate::process::profile_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.is_file(),
        "binary `{name}` not found at {}: run `cargo build --workspace --bins` (with --release for benchmarks) first",
        binary.display()
    );
    binary
}
