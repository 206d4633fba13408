//! The relay between EventBridge and the change queue. An EventBridge rule can
//! give an SQS FIFO target only one fixed message group; the relay reads each
//! Secrets Manager event and queues it with the secret as its message group, so
//! that one secret's changes are synced one at a time and in order across every
//! Lambda instance while different secrets are synced side by side, and with
//! the event's id as its deduplication id, so that an event delivered twice is
//! queued once. It reads no secret and needs no configuration: only the queue's
//! URL and `sqs:SendMessage` on that queue.

use super::eventbridge;
use crate::aws::{EgressGuard, ambient_config};
use crate::report::{Failure, FailureClass};
use crate::retry::Idempotency;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The variable that names the change queue's URL.
pub const QUEUE_URL_ENV: &str = "FEDSYNC_CHANGE_QUEUE_URL";
/// SQS's limit on a message group id, and on a deduplication id.
const MAX_ID: usize = 128;

/// The SQS client and the queue that changes are relayed to.
pub struct Relay {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

/// What became of one event.
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Relayed {
    /// Queued in `group` (SQS's message id; a duplicate within five minutes
    /// gets the first one's id and is not queued again).
    Queued { group: String, message_id: String },
    /// Not a change fedsync acts on; nothing was queued.
    Ignored,
    /// Not a usable event; nothing was queued, and a retry would not help.
    Rejected { error: String },
}

impl Relay {
    /// The relay to the queue named by `FEDSYNC_CHANGE_QUEUE_URL`, with the
    /// host's own credentials (the function's execution role).
    pub async fn from_environment() -> Result<Relay, Failure> {
        let queue_url = std::env::var(QUEUE_URL_ENV).map_err(|_| {
            Failure::new(
                FailureClass::BadInput,
                format!("{QUEUE_URL_ENV} is not set: it names the change queue's URL"),
            )
        })?;
        url::Url::parse(&queue_url).map_err(|e| {
            Failure::new(
                FailureClass::BadInput,
                format!("{QUEUE_URL_ENV} is not a URL ({e})"),
            )
        })?;
        let shared = ambient_config(None, None).await;
        let config = aws_sdk_sqs::config::Builder::from(&shared)
            .interceptor(EgressGuard)
            .build();
        Ok(Relay {
            sqs: aws_sdk_sqs::Client::from_conf(config),
            queue_url,
        })
    }

    /// Queues `event` in its secret's message group.
    pub async fn forward(&self, event: &Value) -> Result<Relayed, Failure> {
        let observed = match eventbridge::observe(event) {
            Ok(Some(observed)) => observed,
            Ok(None) => return Ok(Relayed::Ignored),
            Err(f) => {
                tracing::error!(error = %f.message, "an event that cannot be relayed; nothing was queued");
                return Ok(Relayed::Rejected { error: f.message });
            }
        };
        let group = message_group(&observed.secret);
        // EventBridge keeps an event's id on every delivery; without one, the
        // queue's content-based deduplication applies.
        let deduplication = observed
            .id
            .filter(|id| !id.is_empty() && id.len() <= MAX_ID);
        let body = event.to_string();
        // A repeat with the same deduplication id is queued once.
        let idempotency = if deduplication.is_some() {
            Idempotency::Idempotent
        } else {
            Idempotency::NotIdempotent
        };
        let sent = crate::aws::send("SendMessage", idempotency, || {
            self.sqs
                .send_message()
                .queue_url(&self.queue_url)
                .message_body(&body)
                .message_group_id(&group)
                .set_message_deduplication_id(deduplication.clone())
                .send()
        })
        .await
        .map_err(|e| {
            e.into_failure(format_args!(
                "queueing the change of {:?} in {}",
                observed.secret, self.queue_url
            ))
        })?;
        let message_id = sent.message_id.unwrap_or_default();
        tracing::info!(secret = %observed.secret, group = %group, message_id = %message_id, "queued a change");
        Ok(Relayed::Queued { group, message_id })
    }
}

/// The message group of a secret: its name, so that the events naming it by
/// full ARN or by name share one group. A name SQS cannot take as a group id
/// (longer than 128 characters, or with characters outside printable ASCII) is
/// replaced by its SHA-256.
pub fn message_group(secret: &str) -> String {
    let name = eventbridge::secret_name(secret);
    let usable =
        !name.is_empty() && name.len() <= MAX_ID && name.bytes().all(|b| b.is_ascii_graphic());
    if usable {
        name.to_string()
    } else {
        format!("sha256:{}", hex::encode(Sha256::digest(name.as_bytes())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_named_by_arn_or_by_name_has_one_group() {
        let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/app/db-AbCdEf";
        assert_eq!(message_group(arn), "prod/app/db");
        assert_eq!(message_group("prod/app/db"), "prod/app/db");
    }

    #[test]
    fn a_name_sqs_cannot_take_becomes_its_digest() {
        let long = "a/".repeat(100);
        let group = message_group(&long);
        assert!(group.starts_with("sha256:") && group.len() == 71, "{group}");
        assert_eq!(group, message_group(&long), "the same name, the same group");
        assert_ne!(group, message_group(&"b/".repeat(100)));
        assert!(message_group("with space").starts_with("sha256:"));
    }
}
