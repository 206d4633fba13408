//! The webhook receiver: an HTTP server on `$PORT` (a container). Routes:
//! `POST /v1/notify` for fedsync's own change notices (HMAC-signed, or with a
//! bearer JWT from a trusted issuer); `POST /v1/azure/events` for Azure Event
//! Grid deliveries of Key Vault events (Event Grid schema or CloudEvents), and
//! `OPTIONS` on the same path for the CloudEvents validation handshake. Every
//! request is authenticated first; one that is not gets 401 and touches nothing.

use axum::Router;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use fedsync::triggers::event_grid::{self, EventGridAuth};
use fedsync::triggers::notify::{self, Accepted, NotifyAuth};
use fedsync::{Config, Engine};
use std::collections::HashMap;
use std::sync::Arc;

/// Event Grid delivers at most 1 MB per request.
const MAX_BODY_BYTES: usize = 1024 * 1024;

struct App {
    engine: Engine,
    event_grid: Option<EventGridAuth>,
    notify: Option<NotifyAuth>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    fedsync::logging::init_json();
    let config =
        Config::from_environment().inspect_err(|e| tracing::error!(error = %e, "configuration"))?;
    let event_grid = match &config.triggers.event_grid {
        Some(c) => Some(
            EventGridAuth::new(c).inspect_err(|e| tracing::error!(error = %e, "configuration"))?,
        ),
        None => None,
    };
    let notify = match &config.triggers.notify {
        Some(c) => {
            Some(NotifyAuth::new(c).inspect_err(|e| tracing::error!(error = %e, "configuration"))?)
        }
        None => None,
    };
    let engine = Engine::new(config)
        .await
        .inspect_err(|e| tracing::error!(error = %e, "start-up"))?;
    let app = Arc::new(App {
        engine,
        event_grid,
        notify,
    });
    let router = Router::new()
        .route("/v1/notify", post(notice))
        .route(
            "/v1/azure/events",
            post(azure_events).options(azure_handshake),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(app);
    fedsync::serve::serve(router).await?;
    Ok(())
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

async fn notice(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(auth) = &app.notify else {
        return (
            StatusCode::NOT_FOUND,
            "notices are not enabled ([triggers.notify])",
        )
            .into_response();
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let json = header("content-type").is_some_and(|t| {
        t.split(';')
            .next()
            .is_some_and(|m| m.trim() == "application/json")
    });
    if !json {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected Content-Type: application/json",
        )
            .into_response();
    }
    let verified = auth
        .verify(
            header("authorization"),
            header(notify::TIMESTAMP_HEADER),
            header(notify::SIGNATURE_HEADER),
            &body,
        )
        .await;
    match verified {
        Err(reason) => {
            tracing::warn!(reason = %reason, "refused an unauthenticated notice");
            StatusCode::UNAUTHORIZED.into_response()
        }
        Ok(Accepted::Replay) => {
            tracing::info!("ignored a notice already received");
            (
                StatusCode::OK,
                axum::Json(serde_json::json!({"status": "duplicate"})),
            )
                .into_response()
        }
        Ok(Accepted::New) => match notify::parse(&body, app.engine.config()) {
            Err(f) => (
                StatusCode::BAD_REQUEST,
                axum::Json(serde_json::json!({"status": "rejected", "error": f})),
            )
                .into_response(),
            Ok(change) => {
                let handled = fedsync::triggers::Handled::Synced(app.engine.sync(&change).await);
                let status = if handled.needs_retry() {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                };
                (status, axum::Json(handled.to_json())).into_response()
            }
        },
    }
}
