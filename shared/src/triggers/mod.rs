//! Triggers: parsers from wire events to `SecretChange`. Each one recognizes its
//! own events, ignores unrelated ones, and rejects malformed ones with a clear,
//! non-retryable error.

pub mod eventbridge;

use crate::report::{Failure, FailureClass};

/// A malformed event: what is wrong and where.
pub(crate) fn malformed(what: impl Into<String>) -> Failure {
    Failure::new(FailureClass::BadInput, format!("malformed event: {}", what.into()))
}
