//! AWS Lambda entry point: Secrets Manager changes delivered by EventBridge,
//! either directly (one event) or through an SQS FIFO queue (a batch of them).
//! It only translates: the event goes to the engine, the report comes back. A
//! single event that a destination failed in a retryable way makes the
//! invocation fail, so that Lambda retries it and finally dead-letters it; a
//! batch answers with the records SQS must deliver again.

use fedsync::triggers::{eventbridge, sqs};
use fedsync::{Config, Engine};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use std::sync::Arc;

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
        async move { handler(&engine, event.payload).await }
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
