//! One finding of `fedsync trust lint`: which field of a trust definition is
//! broader than it should be, how bad that is, why, and a tighter version.

use serde_json::{Value, json};
use std::fmt;

/// How much a finding widens the trust.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// More workloads than intended share one identity; worth fixing.
    Medium,
    /// Workloads (or tokens) outside the intended one are accepted.
    High,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A field of one trust definition that trusts too much.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Where in the document, e.g. `Statement[0].Condition.StringLike["host:sub"]`.
    pub field: String,
    pub severity: Severity,
    /// Why it is risky, in one sentence.
    pub reason: String,
    /// A tighter version to paste (JSON or CEL).
    pub example: String,
}

impl Finding {
    pub fn new(
        field: impl Into<String>,
        severity: Severity,
        reason: impl Into<String>,
        example: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            severity,
            reason: reason.into(),
            example: example.into(),
        }
    }

    /// The finding as one element of `--json` output.
    pub fn to_json(&self, file: &str, kind: &str) -> Value {
        json!({
            "file": file,
            "kind": kind,
            "field": self.field,
            "severity": self.severity.as_str(),
            "reason": self.reason,
            "example": self.example,
        })
    }
}

/// A JSON value as indented text, for a finding's example.
pub fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// A JSON object with its keys in the order given (the order people write
/// them), as indented text, for a finding's example.
pub fn ordered(pairs: &[(&str, Value)]) -> String {
    let mut out = String::from("{\n");
    for (i, (name, value)) in pairs.iter().enumerate() {
        let value = pretty(value).replace('\n', "\n  ");
        let comma = if i + 1 < pairs.len() { "," } else { "" };
        out.push_str(&format!(
            "  {}: {value}{comma}\n",
            Value::String(name.to_string())
        ));
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_objects_keep_their_order_and_stay_json() {
        let text = ordered(&[("role", json!("r")), ("members", json!(["a", "b"]))]);
        assert!(text.find("role") < text.find("members"), "{text}");
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed, json!({"role": "r", "members": ["a", "b"]}));
    }
}
