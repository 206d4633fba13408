//! AWS Lambda entry point: Secrets Manager changes delivered by EventBridge,
//! either directly (one event) or through an SQS FIFO queue (a batch of them).
//! It only translates: the event goes to the engine, the report comes back. A
//! single event that a destination failed in a retryable way makes the
//! invocation fail, so that Lambda retries it and finally dead-letters it; a
//! batch answers with the records SQS must deliver again. A schedule's
//! `{"fedsync": "reconcile"}` runs a reconcile pass. Every outbound call,
//! retries included, ends before the invocation's deadline.

use fedsync::retry;
use fedsync::triggers::{eventbridge, schedule, sqs};
use fedsync::{Config, Engine};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

/// Time kept back from the deadline to report a reconcile pass.
const REPORT_MARGIN: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> Result<(), Error> {
    fedsync::logging::init_json();
    let config =
        Config::from_environment().inspect_err(|e| tracing::error!(error = %e, "configuration"))?;
    let engine = Arc::new(
        Engine::new(config)
            .await
            .inspect_err(|e| tracing::error!(error = %e, "start-up"))?,
    );
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let engine = engine.clone();
        let deadline = UNIX_EPOCH + Duration::from_millis(event.context.deadline);
        let deadline = retry::deadline_at(deadline);
        async move {
            if let Some(request) = schedule::reconcile_request(&event.payload) {
                let stop_at = (deadline.into_std() - REPORT_MARGIN)
                    .min(Instant::now() + engine.config().reconcile.time_limit);
                let only = request?.source;
                let pass = engine.reconcile(only.as_deref(), Some(stop_at));
                let report = retry::with_deadline(deadline, pass).await;
                // A failed pass is not retried by Lambda: the next schedule runs one anyway.
                return Ok(serde_json::to_value(report)?);
            }
            retry::with_deadline(deadline, handler(&engine, event.payload)).await
        }
    }))
    .await
}

/// Handles one invocation: the partial batch response for an SQS batch; for a
/// single event, the report on success, an error when Lambda should retry.
async fn handler(engine: &Engine, event: Value) -> Result<Value, Error> {
    if sqs::is_batch(&event) {
        return Ok(serde_json::to_value(sqs::handle(engine, &event).await)?);
    }
    let handled = eventbridge::handle(engine, &event).await;
    if let Some(reason) = handled.retry_reason() {
        return Err(reason.into());
    }
    Ok(handled.to_json())
}
