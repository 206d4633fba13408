//! The scheduled reconcile pass's request: the constant input a schedule
//! (an EventBridge schedule rule, Cloud Scheduler) sends,
//! `{"fedsync": "reconcile"}`, optionally with `"source": "<name>"` to
//! reconcile one source only.

use crate::report::{Failure, FailureClass};
use serde::Deserialize;
use serde_json::Value;

/// A request for a reconcile pass.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileRequest {
    fedsync: String,
    /// Only this source.
    pub source: Option<String>,
}

/// The request, when `event` is one; an error when it says `fedsync` but is
/// not a valid request.
pub fn reconcile_request(event: &Value) -> Option<Result<ReconcileRequest, Failure>> {
    event.get("fedsync")?;
    let refuse = |why: String| {
        Failure::new(
            FailureClass::BadInput,
            format!(
                "a scheduled request must be {{\"fedsync\": \"reconcile\"}} (optionally with \"source\"): {why}"
            ),
        )
    };
    Some(
        serde_json::from_value::<ReconcileRequest>(event.clone())
            .map_err(|e| refuse(crate::excerpt::serde_message(&e.to_string())))
            .and_then(|r| match r.fedsync.as_str() {
                "reconcile" => Ok(r),
                _ => Err(refuse("\"fedsync\" must be \"reconcile\"".into())),
            }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_schedule_input_asks_for_a_pass() {
        let all = reconcile_request(&json!({"fedsync": "reconcile"}));
        assert_eq!(all.unwrap().unwrap().source, None);
        let one = reconcile_request(&json!({"fedsync": "reconcile", "source": "main"}));
        assert_eq!(one.unwrap().unwrap().source.as_deref(), Some("main"));
    }

    #[test]
    fn other_events_are_not_requests_and_bad_requests_say_why() {
        assert!(reconcile_request(&json!({"source": "aws.secretsmanager"})).is_none());
        let e = reconcile_request(&json!({"fedsync": "sync"}))
            .unwrap()
            .unwrap_err();
        assert!(e.message.contains("must be \"reconcile\""), "{e}");
        let e = reconcile_request(&json!({"fedsync": "reconcile", "extra": 1}))
            .unwrap()
            .unwrap_err();
        assert!(e.message.contains("extra"), "{e}");
    }
}
