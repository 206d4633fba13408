//! Triggers: parsers from wire events to `SecretChange`. Each one recognizes its
//! own events, ignores unrelated ones, and rejects malformed ones with a clear,
//! non-retryable error.

pub mod event_grid;
pub mod eventbridge;
mod kv_v2;
pub mod notify;
pub mod pubsub;
pub mod relay;
pub mod schedule;
pub mod sqs;
pub mod vault_audit;
pub mod vault_events;

use crate::report::{Failure, FailureClass};

/// A malformed event: what is wrong and where.
pub(crate) fn malformed(what: impl Into<String>) -> Failure {
    Failure::new(
        FailureClass::BadInput,
        format!("malformed event: {}", what.into()),
    )
}

/// What became of one delivered event.
#[derive(Debug)]
pub enum Handled {
    /// Not a change fedsync acts on.
    Ignored,
    /// Malformed or unusable: never retried.
    Rejected(Failure),
    /// Synced; the report says how each destination fared.
    Synced(crate::report::Report),
}

impl Handled {
    /// Whether the platform should deliver the event again.
    pub fn needs_retry(&self) -> bool {
        matches!(self, Handled::Synced(r) if r.needs_retry())
    }

    /// Why the platform should deliver the event again, naming each destination
    /// (or the source) that failed in a retryable way; `None` when it should not.
    pub fn retry_reason(&self) -> Option<String> {
        let Handled::Synced(report) = self else {
            return None;
        };
        if !report.needs_retry() {
            return None;
        }
        let mut failed: Vec<String> = report
            .outcomes
            .iter()
            .filter_map(|o| match &o.status {
                crate::report::Status::Failed {
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
        Some(format!(
            "sync of {} needs a retry; {}",
            report.secret,
            failed.join("; ")
        ))
    }

    /// The machine-readable answer (no secret value can be in it).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Handled::Ignored => serde_json::json!({"status": "ignored"}),
            Handled::Rejected(f) => serde_json::json!({"status": "rejected", "error": f}),
            Handled::Synced(r) => serde_json::json!({"status": "processed", "report": r}),
        }
    }
}

/// Syncs the change a trigger parsed, logging what happened. A change whose
/// secret name could address another resource than the one named is rejected
/// before any rule or store sees it (see `naming::check_source_name`).
pub async fn handle(
    engine: &crate::sync::Engine,
    parsed: Result<Option<crate::event::SecretChange>, Failure>,
) -> Handled {
    let parsed = parsed.and_then(|change| match change {
        Some(c) => crate::naming::check_source_name(&c.secret)
            .map(|()| Some(c))
            .map_err(malformed),
        None => Ok(None),
    });
    match parsed {
        Ok(None) => Handled::Ignored,
        Err(f) => {
            tracing::error!(error = %f, "rejected an event that cannot be processed; it will not be retried");
            Handled::Rejected(f)
        }
        Ok(Some(change)) => {
            tracing::info!(source = %change.source, secret = %change.secret, kind = ?change.kind, "change received");
            Handled::Synced(engine.sync(&change).await)
        }
    }
}

/// Parses and syncs an event of any kind fedsync knows, told apart by its shape
/// (for running saved events locally; the functions each know their own kind).
pub async fn handle_any(engine: &crate::sync::Engine, event: &serde_json::Value) -> Handled {
    if event.get("message").is_some() && event.get("subscription").is_some() {
        let body = serde_json::to_vec(event).unwrap_or_default();
        pubsub::handle(engine, &body).await
    } else {
        eventbridge::handle(engine, event).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ChangeKind, SecretChange};
    use std::collections::HashMap;
    use std::time::SystemTime;

    fn change(secret: &str) -> Result<Option<SecretChange>, Failure> {
        Ok(Some(SecretChange {
            source: "main".into(),
            secret: secret.into(),
            version: None,
            kind: ChangeKind::Upsert,
            observed_at: SystemTime::now(),
        }))
    }

    #[tokio::test]
    async fn a_name_that_could_address_another_resource_never_reaches_the_engine() {
        let config =
            crate::config::Config::parse("[sources.main]\nkind = \"aws-secrets-manager\"\n", "t")
                .unwrap();
        // No store behind the source: a change that reaches the engine is reported
        // as synced with an error, one that does not is rejected.
        let engine = crate::sync::Engine::with_stores(config, HashMap::new(), HashMap::new());
        for (name, reason) in [
            ("prod/../admin/root", "segment"),
            ("prod/app/db\n", "control character"),
            ("prod/app/db?x", "not allowed"),
        ] {
            let Handled::Rejected(f) = handle(&engine, change(name)).await else {
                panic!("{name:?} reached the engine");
            };
            assert_eq!(f.class, FailureClass::BadInput);
            assert!(f.message.contains(reason), "{}", f.message);
        }
        assert!(matches!(
            handle(&engine, change("prod/app/db")).await,
            Handled::Synced(_)
        ));
    }
}
