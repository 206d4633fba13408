//! SQS batches from an event source mapping on the FIFO queue that EventBridge
//! delivers Secrets Manager events to: each record's body is one EventBridge
//! event.
//!
//! Records of one message group are handled one at a time, in the order SQS
//! delivered them; different groups run concurrently. The answer is a partial
//! batch response (`ReportBatchItemFailures`) listing the records SQS must
//! deliver again. Because a FIFO group's order matters, once a record of a
//! group needs a retry, the later records of that group are not handled but
//! listed too, so that SQS delivers them again after it, still in order.

use super::{Handled, malformed};
use crate::report::Failure;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsMessage};
use futures_util::future::join_all;
use serde_json::Value;
use std::collections::HashMap;

const EVENT_SOURCE: &str = "aws:sqs";
const GROUP_ATTRIBUTE: &str = "MessageGroupId";

/// One record of a batch, as far as fedsync needs it.
#[derive(Debug)]
pub struct Record {
    /// The SQS message id: what the answer names.
    pub message_id: String,
    /// The FIFO message group; `None` on a standard queue, where each record stands alone.
    pub group: Option<String>,
    /// The body as JSON, or why it cannot be used.
    pub body: Result<Value, Failure>,
}

/// Whether `event` is an SQS batch rather than a single EventBridge event
/// (which has no `Records`).
pub fn is_batch(event: &Value) -> bool {
    event.get("Records").is_some()
}

/// The records of a batch, in delivery order. A record that cannot be read as
/// an SQS message, or has no message id, cannot be named in the answer: it is
/// logged and left out (SQS always sends both).
pub fn records(event: &Value) -> Vec<Record> {
    let Some(records) = event.get("Records").and_then(Value::as_array) else {
        let f = malformed("the SQS batch's \"Records\" is not an array");
        tracing::error!(error = %f, "rejected an SQS batch that cannot be read");
        return Vec::new();
    };
    records
        .iter()
        .enumerate()
        .filter_map(|(index, raw)| {
            record(index, raw)
                .inspect_err(|f| tracing::error!(error = %f, "skipped an SQS record that cannot be named in the answer"))
                .ok()
        })
        .collect()
}

fn record(index: usize, raw: &Value) -> Result<Record, Failure> {
    let message: SqsMessage = serde_json::from_value(raw.clone()).map_err(|e| {
        let e = crate::excerpt::serde_message(&e.to_string());
        malformed(format!("Records[{index}] is not an SQS message ({e})"))
    })?;
    let message_id = message
        .message_id
        .clone()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| malformed(format!("Records[{index}] has no \"messageId\"")))?;
    Ok(Record {
        message_id,
        group: message.attributes.get(GROUP_ATTRIBUTE).cloned(),
        body: body(index, &message),
    })
}

/// A record's body: the JSON text of one EventBridge event.
fn body(index: usize, message: &SqsMessage) -> Result<Value, Failure> {
    if let Some(source) = message
        .event_source
        .as_deref()
        .filter(|s| *s != EVENT_SOURCE)
    {
        return Err(malformed(format!(
            "Records[{index}].eventSource is {}, not {EVENT_SOURCE:?}",
            crate::excerpt::quote(source)
        )));
    }
    let text = message
        .body
        .as_deref()
        .ok_or_else(|| malformed(format!("Records[{index}] has no \"body\"")))?;
    serde_json::from_str(text).map_err(|e| {
        let e = crate::excerpt::serde_message(&e.to_string());
        malformed(format!("Records[{index}].body is not JSON ({e})"))
    })
}

/// Handles the records through `handle`, one at a time per message group and
/// the groups concurrently, and answers with the records to deliver again, in
/// batch order.
pub async fn process(
    records: Vec<Record>,
    handle: impl AsyncFn(&Value) -> Handled,
) -> SqsBatchResponse {
    let mut groups: Vec<Vec<(usize, Record)>> = Vec::new();
    let mut slots: HashMap<String, usize> = HashMap::new();
    for (index, record) in records.into_iter().enumerate() {
        let slot = match &record.group {
            Some(group) => *slots.entry(group.clone()).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            }),
            None => {
                groups.push(Vec::new());
                groups.len() - 1
            }
        };
        groups[slot].push((index, record));
    }
    let handle = &handle;
    let mut failed: Vec<(usize, String)> = join_all(
        groups
            .into_iter()
            .map(|group| async move { process_group(group, handle).await }),
    )
    .await
    .into_iter()
    .flatten()
    .collect();
    failed.sort_by_key(|(index, _)| *index);
    let mut response = SqsBatchResponse::default();
    for (_, message_id) in failed {
        response.add_failure(message_id);
    }
    response
}

/// Handles one group's records in order; returns those to deliver again.
async fn process_group(
    records: Vec<(usize, Record)>,
    handle: &impl AsyncFn(&Value) -> Handled,
) -> Vec<(usize, String)> {
    let mut failed: Vec<(usize, String)> = Vec::new();
    for (index, record) in records {
        let Record {
            message_id,
            group,
            body,
        } = record;
        let group = group.as_deref().unwrap_or("(none)");
        if let Some((_, first)) = failed.first() {
            tracing::warn!(%message_id, %group, held_back_by = %first,
                "not handled: an earlier record of its message group needs a retry, so SQS delivers this one again after it");
            failed.push((index, message_id));
            continue;
        }
        match body {
            // Not listed for a retry: no number of deliveries makes the record
            // readable. Listed, SQS would deliver it again and again (forever
            // without a redrive policy), holding back every later record of its
            // group each time, before it reached the dead-letter queue.
            Err(f) => {
                tracing::error!(%message_id, %group, error = %f,
                    "rejected an SQS record that cannot be processed; it will not be retried");
            }
            Ok(event) => {
                tracing::info!(%message_id, %group, "handling an SQS record");
                if let Some(reason) = handle(&event).await.retry_reason() {
                    tracing::warn!(%message_id, %group, %reason,
                        "the record needs a retry; so do the later records of its message group");
                    failed.push((index, message_id));
                }
            }
        }
    }
    failed
}

/// Parses and syncs a batch of EventBridge events delivered through SQS.
pub async fn handle(engine: &crate::sync::Engine, event: &Value) -> SqsBatchResponse {
    let records = records(event);
    tracing::info!(records = records.len(), "SQS batch received");
    process(records, async |event: &Value| {
        super::eventbridge::handle(engine, event).await
    })
    .await
}

#[cfg(test)]
mod tests;
