//! The outcome of one sync: one entry per destination, and the status vocabulary
//! every entry point maps to its platform's success or retry semantics.

use serde::Serialize;
use std::fmt;

/// Why something failed, in the terms an operator acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureClass {
    /// The input (event, configuration, secret value) is wrong; retrying cannot help.
    BadInput,
    /// The identity was refused, or lacks permission.
    Auth,
    /// Something named does not exist.
    NotFound,
    /// The cloud asked us to slow down.
    Throttled,
    /// The cloud or the network failed transiently.
    Unavailable,
    /// The target is in a state that refuses the write (owned by someone else, pending deletion, collision).
    Conflict,
}

impl FailureClass {
    /// Whether the same request may succeed later without anyone changing anything.
    pub fn is_retryable(self) -> bool {
        matches!(self, FailureClass::Throttled | FailureClass::Unavailable)
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            FailureClass::BadInput => "bad input",
            FailureClass::Auth => "auth",
            FailureClass::NotFound => "not found",
            FailureClass::Throttled => "throttled",
            FailureClass::Unavailable => "unavailable",
            FailureClass::Conflict => "conflict",
        };
        f.write_str(s)
    }
}

/// A classified failure with a message a person can act on. Messages never carry secret values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{class}: {message}")]
pub struct Failure {
    pub class: FailureClass,
    pub message: String,
}

impl Failure {
    pub fn new(class: FailureClass, message: impl Into<String>) -> Self {
        Failure {
            class,
            message: message.into(),
        }
    }

    pub fn is_retryable(&self) -> bool {
        self.class.is_retryable()
    }

    /// The same failure with `context: ` put in front of its message.
    pub fn context(self, context: impl fmt::Display) -> Self {
        Failure {
            class: self.class,
            message: format!("{context}: {}", self.message),
        }
    }

    /// The same failure with fedsync's explanation of its likely cause (which
    /// setting or claim to check, and how to fix it) after what happened.
    pub fn with_likely_cause(self, cause: impl fmt::Display) -> Self {
        Failure {
            class: self.class,
            message: format!("{}{LIKELY_CAUSE}{cause}", self.message),
        }
    }

    /// What happened, and apart from it the likely cause fedsync named, if any.
    pub fn likely_cause(&self) -> (&str, Option<&str>) {
        match self.message.split_once(LIKELY_CAUSE) {
            Some((what, cause)) => (what, Some(cause)),
            None => (&self.message, None),
        }
    }
}

/// Separates what happened from its likely cause in a failure's message.
const LIKELY_CAUSE: &str = ". Likely cause: ";

/// What happened at one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Status {
    /// A new value was written.
    Synced,
    /// The destination already held this source version.
    Unchanged,
    /// The destination secret was deleted because its source was.
    Deleted,
    /// A policy (overwrite, on_delete) chose not to act.
    Skipped { reason: String },
    /// A reconcile pass found the destination changed outside fedsync; with
    /// `on_drift = "repair"` the source's value was written over it again.
    Drift { reason: String, repaired: bool },
    /// The write failed.
    Failed {
        class: FailureClass,
        retryable: bool,
        message: String,
    },
}

impl fmt::Display for Status {
    /// One line for a person: the status, and its reason or failure.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Synced => f.write_str("synced"),
            Status::Unchanged => f.write_str("unchanged"),
            Status::Deleted => f.write_str("deleted"),
            Status::Skipped { reason } => write!(f, "skipped: {reason}"),
            Status::Drift {
                reason,
                repaired: true,
            } => write!(f, "drift, repaired: {reason}"),
            Status::Drift {
                reason,
                repaired: false,
            } => write!(f, "drift, reported: {reason}"),
            Status::Failed { class, message, .. } => write!(f, "failed ({class}): {message}"),
        }
    }
}

impl From<Failure> for Status {
    fn from(f: Failure) -> Self {
        Status::Failed {
            class: f.class,
            retryable: f.is_retryable(),
            message: f.message,
        }
    }
}

/// One destination's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The destination's name in the configuration.
    pub destination: String,
    /// The secret's name at the destination.
    pub name: String,
    #[serde(flatten)]
    pub status: Status,
    /// Credential exchanges this outcome caused (0 when the cache answered).
    pub exchanges: u32,
    pub elapsed_ms: u64,
    /// When the destination answered (for the propagation latency metric).
    #[serde(skip)]
    pub acknowledged_at: std::time::SystemTime,
}

/// The report of one change, returned to the trigger and logged.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub source: String,
    pub secret: String,
    pub kind: crate::event::ChangeKind,
    /// The source version that was synced, when a value was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    /// Why nothing was done, when nothing was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// A failure before any destination was reached (the source read, the value).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
    pub outcomes: Vec<Outcome>,
}

impl Report {
    /// True when something failed that a retry of the whole change could fix.
    pub fn needs_retry(&self) -> bool {
        self.error.as_ref().is_some_and(Failure::is_retryable)
            || self.outcomes.iter().any(|o| {
                matches!(
                    o.status,
                    Status::Failed {
                        retryable: true,
                        ..
                    }
                )
            })
    }

    /// True when anything failed, retryable or not.
    pub fn has_failures(&self) -> bool {
        self.error.is_some()
            || self
                .outcomes
                .iter()
                .any(|o| matches!(o.status, Status::Failed { .. }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_throttled_and_unavailable_are_retryable() {
        use FailureClass::*;
        let retryable: Vec<_> = [BadInput, Auth, NotFound, Throttled, Unavailable, Conflict]
            .into_iter()
            .filter(|c| c.is_retryable())
            .collect();
        assert_eq!(retryable, vec![Throttled, Unavailable]);
    }

    #[test]
    fn the_likely_cause_is_told_apart_from_what_happened_and_survives_context() {
        let f = Failure::new(FailureClass::Auth, "refused")
            .with_likely_cause("the audience")
            .context("destination \"d\"");
        assert_eq!(
            f.message,
            "destination \"d\": refused. Likely cause: the audience"
        );
        assert_eq!(
            f.likely_cause(),
            ("destination \"d\": refused", Some("the audience"))
        );
        let plain = Failure::new(FailureClass::Auth, "refused");
        assert_eq!(plain.likely_cause(), ("refused", None));
    }

    #[test]
    fn failed_status_serializes_with_class_and_retryable() {
        let status = Status::from(Failure::new(FailureClass::Throttled, "slow down"));
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["status"], "failed");
        assert_eq!(json["class"], "throttled");
        assert_eq!(json["retryable"], true);
    }
}
