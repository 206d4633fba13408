//! Cloud Run entry point: an HTTP server on `$PORT` for a Pub/Sub push
//! subscription carrying Secret Manager notifications. It only translates: a
//! request without a valid Google-signed push token gets 401 and touches
//! nothing; a change goes to the engine; the answer tells Pub/Sub whether to
//! redeliver (non-2xx) or not (2xx, also for an authentic but unusable message,
//! which is logged instead, so that it cannot loop forever).

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use fedsync::triggers::pubsub::{self, PushAuth};
use fedsync::{Config, Engine};
use std::sync::Arc;

/// Push messages are small (metadata only); anything larger is not one.
const MAX_BODY_BYTES: usize = 64 * 1024;

struct App {
    engine: Engine,
    auth: PushAuth,
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
    });
    let router = Router::new()
        .route("/", post(receive))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(app);
    fedsync::serve::serve(router).await?;
    Ok(())
}

async fn receive(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Err(refused) = app.auth.verify(authorization).await {
        tracing::warn!(reason = %refused, "refused an unauthenticated push request");
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let handled = pubsub::handle(&app.engine, &body).await;
    // Pub/Sub redelivers on any status but 102, 200, 201, 202 and 204.
    let status = if handled.needs_retry() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, axum::Json(handled.to_json())).into_response()
}
