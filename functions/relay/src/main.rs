//! AWS Lambda entry point of the relay: EventBridge invokes it with each
//! Secrets Manager event, and it queues the event on the SQS FIFO change queue
//! in its secret's message group (see `fedsync::triggers::relay`). A failure to
//! queue fails the invocation, so that Lambda retries it and finally hands it to
//! the function's failure destination; an event that is not usable is logged
//! and answered, since no retry would make it usable.

use fedsync::retry;
use fedsync::triggers::relay::Relay;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use std::time::{Duration, UNIX_EPOCH};

#[tokio::main]
async fn main() -> Result<(), Error> {
    fedsync::logging::init_json();
    let relay = Relay::from_environment()
        .await
        .inspect_err(|f| tracing::error!(error = %f.message, "start-up"))
        .map_err(|f| f.message)?;
    let relay = &relay;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = UNIX_EPOCH + Duration::from_millis(event.context.deadline);
        let relayed =
            retry::with_deadline(retry::deadline_at(deadline), relay.forward(&event.payload))
                .await
                .map_err(|f| f.message)?;
        Ok::<Value, Error>(serde_json::to_value(relayed)?)
    }))
    .await
}
