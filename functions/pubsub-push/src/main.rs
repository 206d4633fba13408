//! Cloud Run entry point: an HTTP server on `$PORT` for a Pub/Sub push
//! subscription carrying Secret Manager notifications. It only translates: a
//! request without a valid Google-signed push token gets 401 and touches
//! nothing; a change goes to the engine; the answer tells Pub/Sub whether to
//! redeliver (non-2xx) or not (2xx, also for an authentic but unusable message,
//! which is logged instead, so that it cannot loop forever). Every push is
//! answered within the subscription's ack deadline (`[triggers.pubsub]
//! ack_deadline`), retries of outbound calls included. `POST /reconcile`,
//! authenticated the same way (Cloud Scheduler's OIDC token), runs a reconcile
//! pass within `[reconcile] time_limit` and answers 500 if the pass failed.

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use fedsync::retry;
use fedsync::triggers::pubsub::{self, PushAuth};
use fedsync::triggers::schedule;
use fedsync::{Config, Engine};
use std::sync::Arc;
use std::time::Duration;

/// Push messages are small (metadata only); anything larger is not one.
const MAX_BODY_BYTES: usize = 64 * 1024;

struct App {
    engine: Engine,
    auth: PushAuth,
    ack_deadline: Duration,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    fedsync::logging::init_json();
    let config =
        Config::from_environment().inspect_err(|e| tracing::error!(error = %e, "configuration"))?;
    let Some(push) = config.triggers.pubsub.clone() else {
        let message =
            "the configuration has no [triggers.pubsub] section (audience, service_account)";
        tracing::error!(error = message, "configuration");
        return Err(message.into());
    };
    let engine = Engine::new(config)
        .await
        .inspect_err(|e| tracing::error!(error = %e, "start-up"))?;
    let app = Arc::new(App {
        engine,
        auth: PushAuth::new(&push),
        ack_deadline: push.ack_deadline,
    });
    let router = Router::new()
        .route("/", post(receive))
        .route("/reconcile", post(reconcile))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(app);
    fedsync::serve::serve(router).await?;
    Ok(())
}

/// A reconcile pass, asked for by a schedule (Cloud Scheduler with an OIDC
/// token for the same audience and service account as the push subscription).
async fn reconcile(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(refused) = app.auth.verify(authorization(&headers)).await {
        tracing::warn!(reason = %refused, "refused an unauthenticated reconcile request");
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let request = serde_json::from_slice(&body)
        .ok()
        .and_then(|v| schedule::reconcile_request(&v));
    let source = match request {
        Some(Ok(r)) => r.source,
        Some(Err(f)) => return (StatusCode::BAD_REQUEST, f.message).into_response(),
        None => {
            let message = "expected {\"fedsync\": \"reconcile\"}";
            return (StatusCode::BAD_REQUEST, message).into_response();
        }
    };
    let time_limit = app.engine.config().reconcile.time_limit;
    let stop_at = std::time::Instant::now() + time_limit;
    let pass = app.engine.reconcile(source.as_deref(), Some(stop_at));
    let report = retry::with_deadline(retry::deadline_in(time_limit), pass).await;
    // A pass that failed somewhere, or did not finish, shows as a failed run of
    // the job (retried only if the job's retry configuration asks).
    let status = if report.has_failures() {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    (status, axum::Json(report)).into_response()
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

async fn receive(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let deadline = retry::deadline_in(app.ack_deadline);
    retry::with_deadline(deadline, answer(&app, &headers, &body)).await
}

async fn answer(app: &App, headers: &HeaderMap, body: &[u8]) -> Response {
    if let Err(refused) = app.auth.verify(authorization(headers)).await {
        tracing::warn!(reason = %refused, "refused an unauthenticated push request");
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let handled = pubsub::handle(&app.engine, body).await;
    // Pub/Sub redelivers on any status but 102, 200, 201, 202 and 204.
    let status = if handled.needs_retry() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, axum::Json(handled.to_json())).into_response()
}
