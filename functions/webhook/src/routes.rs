//! The webhook's routes. `POST /v1/notify` takes fedsync's own change notices
//! and `POST /v1/vault/events` Vault's event notifications (CloudEvents JSON of
//! `kv-v2/*` events, forwarded by a relay), both authenticated by an HMAC
//! signature or a bearer JWT from a trusted issuer (`[triggers.notify]`).
//! `POST /v1/azure/events` takes Azure Event Grid deliveries of Key Vault events
//! (Event Grid schema or CloudEvents), and `OPTIONS` on the same path answers
//! the CloudEvents validation handshake. Every request is authenticated first;
//! one that is not gets 401 and touches nothing. Every request's outbound calls,
//! retries included, end within the budget (on Lambda, or before the
//! invocation's deadline when that is sooner).

use axum::Router;
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use fedsync::report::Failure;
use fedsync::retry;
use fedsync::triggers::event_grid::{self, EventGridAuth};
use fedsync::triggers::notify::{self, Accepted, NotifyAuth};
use fedsync::triggers::{Handled, vault_events};
use fedsync::{Config, Engine, SecretChange};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// Event Grid delivers at most 1 MB per request; notices and Vault events are far smaller.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every request needs.
pub struct App {
    pub engine: Engine,
    pub event_grid: Option<EventGridAuth>,
    pub notify: Option<NotifyAuth>,
    /// The time one request (or one sync from the audit stream) may take.
    pub budget: Duration,
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/notify", post(notice))
        .route("/v1/vault/events", post(vault_event))
        .route(
            "/v1/azure/events",
            post(azure_events).options(azure_handshake),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(app.clone(), within_budget))
        .with_state(app)
}

/// Sets the request's deadline: the budget from now, or the Lambda
/// invocation's deadline when that is sooner.
async fn within_budget(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let mut deadline = retry::deadline_in(app.budget);
    if let Some(lambda) = request.extensions().get::<lambda_http::Context>() {
        let invocation = UNIX_EPOCH + Duration::from_millis(lambda.deadline);
        deadline = deadline.min(retry::deadline_at(invocation));
    }
    retry::with_deadline(deadline, next.run(request)).await
}

/// The HTTP answer to a handled change: 503 when the sender should retry.
fn answer(handled: &Handled) -> Response {
    let status = match handled {
        Handled::Rejected(_) => StatusCode::BAD_REQUEST,
        h if h.needs_retry() => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    };
    (status, axum::Json(handled.to_json())).into_response()
}

/// Whether the body is declared as JSON (`application/json`, or `+json`).
fn is_json(headers: &HeaderMap) -> bool {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    media.is_some_and(|m| m == "application/json" || m.ends_with("+json"))
}

/// Authenticates a notice or a Vault event (`[triggers.notify]`): `Ok` with
/// whether it is new, or the response that refuses it.
async fn authenticate<'a>(
    app: &'a App,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Accepted<'a>, Response> {
    let Some(auth) = &app.notify else {
        return Err((
            StatusCode::NOT_FOUND,
            "change notices are not enabled ([triggers.notify])",
        )
            .into_response());
    };
    if !is_json(headers) {
        return Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected Content-Type: application/json",
        )
            .into_response());
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    auth.verify(
        header("authorization"),
        header(notify::TIMESTAMP_HEADER),
        header(notify::SIGNATURE_HEADER),
        body,
    )
    .await
    .map_err(|reason| {
        tracing::warn!(reason = %reason, "refused an unauthenticated request");
        StatusCode::UNAUTHORIZED.into_response()
    })
}

/// Authenticates a notice or a Vault event, then parses it with `parse` and syncs it.
async fn receive(
    app: &App,
    headers: &HeaderMap,
    body: &[u8],
    parse: impl FnOnce(&Config) -> Result<Option<SecretChange>, Failure>,
) -> Response {
    match authenticate(app, headers, body).await {
        Err(refusal) => refusal,
        Ok(Accepted::Replay) => {
            tracing::info!("ignored a request already received");
            (StatusCode::OK, axum::Json(json!({"status": "duplicate"}))).into_response()
        }
        Ok(Accepted::InFlight) => {
            tracing::info!("the same request is being handled; asked the sender to try again");
            let retry = [(header::RETRY_AFTER, "1")];
            (
                StatusCode::SERVICE_UNAVAILABLE,
                retry,
                axum::Json(json!({"status": "in_flight"})),
            )
                .into_response()
        }
        Ok(Accepted::New(claim)) => {
            let parsed = parse(app.engine.config());
            answer(&notify::sync_claimed(&app.engine, claim, parsed).await)
        }
    }
}

async fn notice(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    receive(&app, &headers, &body, |config| {
        notify::parse(&body, config).map(Some)
    })
    .await
}

async fn vault_event(
    State(app): State<Arc<App>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let source = query.get("source").map(String::as_str);
    receive(&app, &headers, &body, |config| {
        vault_events::parse(&body, config, source)
    })
    .await
}

/// Authenticates an Event Grid request; `None` when it may proceed.
async fn refused(
    app: &App,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Option<Response> {
    let Some(auth) = &app.event_grid else {
        tracing::warn!(
            "an Event Grid delivery arrived, but [triggers.event_grid] is not configured"
        );
        return Some(StatusCode::NOT_FOUND.into_response());
    };
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let key = query
        .get("key")
        .map(String::as_str)
        .or_else(|| headers.get("x-fedsync-key").and_then(|v| v.to_str().ok()));
    match auth.verify(authorization, key).await {
        Ok(()) => None,
        Err(reason) => {
            tracing::warn!(reason = %reason, "refused an unauthenticated Event Grid request");
            Some(StatusCode::UNAUTHORIZED.into_response())
        }
    }
}

async fn azure_handshake(
    State(app): State<Arc<App>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = refused(&app, &headers, &query).await {
        return response;
    }
    let origin = headers
        .get("webhook-request-origin")
        .cloned()
        .unwrap_or(HeaderValue::from_static("*"));
    tracing::info!("answered the CloudEvents validation handshake");
    (
        StatusCode::OK,
        [
            ("webhook-allowed-origin", origin),
            ("webhook-allowed-rate", HeaderValue::from_static("*")),
        ],
    )
        .into_response()
}

async fn azure_events(
    State(app): State<Arc<App>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(response) = refused(&app, &headers, &query).await {
        return response;
    }
    let answer = event_grid::handle(&app.engine, &body).await;
    // Event Grid retries on 5xx (and some 4xx); 200 for everything that must not repeat.
    let status = if answer.needs_retry() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, axum::Json(answer.to_json())).into_response()
}
