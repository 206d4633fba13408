//! AWS Lambda entry point: Secrets Manager changes delivered by EventBridge.
//! It only translates: the event goes to the engine, the report comes back, and
//! a destination that failed in a retryable way makes the invocation fail so
//! that Lambda retries it and finally dead-letters it.

use fedsync::triggers::{Handled, eventbridge};
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

/// Handles one event: the report on success, an error when Lambda should retry.
async fn handler(engine: &Engine, event: Value) -> Result<Value, Error> {
    let handled = eventbridge::handle(engine, &event).await;
    if handled.needs_retry() {
        return Err(retry_error(&handled).into());
    }
    Ok(handled.to_json())
}

/// Names each destination that failed in a retryable way, and why.
fn retry_error(handled: &Handled) -> String {
    let Handled::Synced(report) = handled else {
        return "retry".into();
    };
    let mut failed: Vec<String> = report
        .outcomes
        .iter()
        .filter_map(|o| match &o.status {
            fedsync::report::Status::Failed {
                retryable: true,
                message,
                ..
            } => Some(format!("{}: {message}", o.destination)),
            _ => None,
        })
        .collect();
    if let Some(e) = report.error.as_ref().filter(|e| e.is_retryable()) {
        failed.insert(0, format!("source: {}", e.message));
    }
    format!(
        "sync of {} needs a retry; {}",
        report.secret,
        failed.join("; ")
    )
}
