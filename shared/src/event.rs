//! The normalized change every trigger produces and the engine consumes.

use serde::Serialize;
use std::time::SystemTime;

/// What happened to the source secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// Created, or given a new value: sync the latest value.
    Upsert,
    /// Deleted (or scheduled for deletion) at the source.
    Delete,
}

/// One change of one secret in one configured source. Events are hints: the engine
/// always reads the source's current state rather than trusting a value or version
/// carried by the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretChange {
    /// The configured source's name (`[sources.<name>]`).
    pub source: String,
    /// The secret's identifier as the event names it (a name, or a store-specific id such as an ARN).
    pub secret: String,
    /// The version the event mentions, if any.
    pub version: Option<String>,
    pub kind: ChangeKind,
    pub observed_at: SystemTime,
}
