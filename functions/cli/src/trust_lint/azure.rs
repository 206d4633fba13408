//! Azure (Entra ID) federated identity credentials: which issuer, subject and
//! audience an application or managed identity accepts. Takes one credential
//! (`az ad app federated-credential show`, Microsoft Graph), an array of them
//! (`... federated-credential list`), or Graph's `{"value": [...]}` list.

use super::finding::ordered;
use super::{Finding, Severity, example_subject, has_wildcard, kind_of, string_list};
use serde_json::{Map, Value, json};

/// The audiences Entra ID expects, per cloud (public, US Government, China).
const ENTRA_AUDIENCES: &[&str] = &[
    "api://AzureADTokenExchange",
    "api://AzureADTokenExchangeUSGov",
    "api://AzureADTokenExchangeChina",
];

/// Whether `value` is one federated credential or a list of them.
pub fn recognises(value: &Value) -> bool {
    match credentials(value) {
        Some((items, _)) => !items.is_empty() && items.into_iter().all(is_credential),
        None => false,
    }
}

fn is_credential(value: &Value) -> bool {
    value.as_object().is_some_and(|o| {
        o.contains_key("issuer")
            && ["subject", "audiences", "claimsMatchingExpression"]
                .iter()
                .any(|k| o.contains_key(*k))
    })
}

/// The credentials in `value`, each with its path prefix; `None` when `value`
/// is not one credential or a list.
fn credentials(value: &Value) -> Option<(Vec<&Value>, Vec<String>)> {
    match value {
        Value::Array(items) => Some((
            items.iter().collect(),
            (0..items.len()).map(|i| format!("[{i}].")).collect(),
        )),
        Value::Object(o) if !o.contains_key("issuer") => match o.get("value") {
            Some(Value::Array(items)) => Some((
                items.iter().collect(),
                (0..items.len()).map(|i| format!("value[{i}].")).collect(),
            )),
            _ => None,
        },
        Value::Object(_) => Some((vec![value], vec![String::new()])),
        _ => None,
    }
}

/// The findings of one credential or list of credentials.
pub fn lint(value: &Value) -> Result<Vec<Finding>, String> {
    let (items, prefixes) = credentials(value).ok_or("not Azure federated identity credentials")?;
    let mut findings = Vec::new();
    let mut subjects: Vec<&str> = Vec::new();
    for (item, prefix) in items.iter().zip(&prefixes) {
        let credential = item.as_object().ok_or_else(|| {
            format!(
                "{}: {} is not a credential object",
                trim(prefix),
                kind_of(item)
            )
        })?;
        if let Some(subject) = lint_credential(credential, prefix, &mut findings)? {
            subjects.push(subject);
        }
    }
    subjects.sort_unstable();
    subjects.dedup();
    if items.len() > 1 && subjects.len() > 1 {
        let list = if matches!(value, Value::Array(_)) {
            "[*]"
        } else {
            "value[*]"
        };
        let first = items.first().and_then(|c| c.as_object());
        findings.push(Finding::new(
            format!("{list}.subject"),
            Severity::Medium,
            format!(
                "One application is trusted by {} workloads ({}), so each of them gets the \
                 others' access: give each workload its own application or managed identity.",
                subjects.len(),
                subjects.join(", ")
            ),
            first.map_or_else(String::new, |c| {
                let issuer = string_field(c, "issuer").unwrap_or_default();
                tight_example(c, issuer, subjects[0])
            }),
        ));
    }
    Ok(findings)
}

fn trim(prefix: &str) -> &str {
    prefix.trim_end_matches('.')
}

fn string_field<'a>(credential: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    credential.get(name).and_then(Value::as_str)
}

/// The credential as it should read: one exact subject, Entra's audience.
fn tight_example(credential: &Map<String, Value>, issuer: &str, subject: &str) -> String {
    ordered(&[
        (
            "name",
            json!(string_field(credential, "name").unwrap_or("fedsync-prod")),
        ),
        ("issuer", json!(issuer)),
        ("subject", json!(subject)),
        ("audiences", json!([ENTRA_AUDIENCES[0]])),
    ])
}

/// Checks one credential; returns its exact subject, if it has one.
fn lint_credential<'a>(
    credential: &'a Map<String, Value>,
    prefix: &str,
    findings: &mut Vec<Finding>,
) -> Result<Option<&'a str>, String> {
    let issuer = match credential.get("issuer") {
        Some(Value::String(s)) => s.as_str(),
        Some(Value::Null) | None => "",
        Some(other) => {
            return Err(format!(
                "{prefix}issuer is {}, not a string",
                kind_of(other)
            ));
        }
    };
    let subject = match credential.get("subject") {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.as_str()),
        Some(Value::String(_) | Value::Null) | None => None,
        Some(other) => {
            return Err(format!(
                "{prefix}subject is {}, not a string",
                kind_of(other)
            ));
        }
    };
    let expression = match credential.get("claimsMatchingExpression") {
        Some(Value::Object(e)) => match e.get("value") {
            Some(Value::String(v)) => Some(v.as_str()),
            Some(Value::Null) | None => None,
            Some(other) => {
                return Err(format!(
                    "{prefix}claimsMatchingExpression.value is {}, not a string",
                    kind_of(other)
                ));
            }
        },
        Some(Value::String(v)) => Some(v.as_str()),
        Some(Value::Null) | None => None,
        Some(other) => {
            return Err(format!(
                "{prefix}claimsMatchingExpression is {}, not an object",
                kind_of(other)
            ));
        }
    };
    let seen = expression.and_then(first_literal);
    let suggested = subject
        .map(str::to_string)
        .unwrap_or_else(|| example_subject(issuer, seen.as_deref()));
    let example = tight_example(credential, issuer, &suggested);
    lint_audiences(credential, prefix, &example, findings)?;
    if let Some(expression) = expression {
        let field_name = if matches!(
            credential.get("claimsMatchingExpression"),
            Some(Value::Object(_))
        ) {
            "claimsMatchingExpression.value"
        } else {
            "claimsMatchingExpression"
        };
        if uses_wildcard_match(expression) {
            findings.push(Finding::new(
                format!("{prefix}{field_name}"),
                Severity::High,
                "The flexible credential matches claims against a wildcard, so every \
                 workload whose claims fit the pattern (every branch or repository) is accepted.",
                example.clone(),
            ));
        }
    } else if subject.is_none() {
        findings.push(Finding::new(
            format!("{prefix}subject"),
            Severity::High,
            "The credential names no subject, so it does not say which one workload it trusts.",
            example,
        ));
    }
    Ok(subject)
}

fn lint_audiences(
    credential: &Map<String, Value>,
    prefix: &str,
    example: &str,
    findings: &mut Vec<Finding>,
) -> Result<(), String> {
    let field = format!("{prefix}audiences");
    let audiences = match credential.get("audiences") {
        Some(Value::Null) | None => Vec::new(),
        Some(value) => string_list(value, &field)?,
    };
    if audiences.is_empty() {
        findings.push(Finding::new(
            field,
            Severity::Medium,
            "No audience is set, so the credential does not say it accepts only tokens minted \
             for Entra ID (api://AzureADTokenExchange).",
            example,
        ));
        return Ok(());
    }
    for (i, audience) in audiences.iter().enumerate() {
        if !ENTRA_AUDIENCES.contains(audience) {
            findings.push(Finding::new(
                format!("{field}[{i}]"),
                Severity::High,
                format!(
                    "\"{audience}\" is a foreign audience, not Entra ID's own \
                     (api://AzureADTokenExchange), so a token minted for another cloud or \
                     service is accepted here too."
                ),
                example,
            ));
        }
    }
    if audiences.len() > 1 {
        findings.push(Finding::new(
            field,
            Severity::Medium,
            format!(
                "{} audiences are accepted, so a token minted for any one of them is accepted \
                 here: keep exactly api://AzureADTokenExchange.",
                audiences.len()
            ),
            example,
        ));
    }
    Ok(())
}

/// Whether a claims matching expression uses `matches` with `*` or `?` in its pattern.
fn uses_wildcard_match(expression: &str) -> bool {
    let mut rest = expression;
    while let Some(at) = rest.find("matches") {
        let after = &rest[at + "matches".len()..];
        // The pattern is the next quoted literal after the operator.
        if let Some(literal) = first_literal(after)
            && has_wildcard(&literal)
        {
            return true;
        }
        rest = after;
    }
    false
}

/// The first single- or double-quoted literal in `text`.
fn first_literal(text: &str) -> Option<String> {
    let start = text.find(['\'', '"'])?;
    let quote = text[start..].chars().next()?;
    let body = &text[start + 1..];
    let end = body.find(quote)?;
    Some(body[..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential(subject: Value, audiences: Value) -> Value {
        json!({
            "name": "fedsync-prod",
            "issuer": "https://issuer.example.com/fedsync",
            "subject": subject,
            "description": null,
            "audiences": audiences,
        })
    }

    fn tight() -> Value {
        credential(json!("fedsync:prod"), json!(["api://AzureADTokenExchange"]))
    }

    fn fields(findings: &[Finding]) -> Vec<&str> {
        findings.iter().map(|f| f.field.as_str()).collect()
    }

    #[test]
    fn the_tight_credential_passes_alone_and_in_lists() {
        assert_eq!(lint(&tight()).unwrap(), vec![]);
        assert_eq!(lint(&json!([tight()])).unwrap(), vec![]);
        assert_eq!(
            lint(&json!({"@odata.context": "x", "value": [tight(), tight()]})).unwrap(),
            vec![]
        );
        assert!(recognises(&tight()));
        assert!(!recognises(&json!([])));
        assert!(!recognises(&json!([tight(), 1])));
    }

    #[test]
    fn audiences_other_than_entra_are_found() {
        let findings = lint(&credential(
            json!("fedsync:prod"),
            json!(["sts.amazonaws.com"]),
        ))
        .unwrap();
        assert_eq!(fields(&findings), ["audiences[0]"]);
        assert_eq!(findings[0].severity, Severity::High);
        assert!(
            findings[0].reason.contains("foreign"),
            "{}",
            findings[0].reason
        );
        assert!(findings[0].example.contains("api://AzureADTokenExchange"));

        let findings = lint(&credential(
            json!("fedsync:prod"),
            json!([
                "api://AzureADTokenExchange",
                "api://AzureADTokenExchangeUSGov"
            ]),
        ))
        .unwrap();
        assert_eq!(fields(&findings), ["audiences"]);
        assert!(
            findings[0].reason.contains("2 audiences"),
            "{}",
            findings[0].reason
        );

        for missing in [Value::Null, json!([])] {
            let findings = lint(&credential(json!("fedsync:prod"), missing)).unwrap();
            assert_eq!(fields(&findings), ["audiences"]);
            assert!(
                findings[0].reason.contains("No audience"),
                "{}",
                findings[0].reason
            );
        }
    }

    #[test]
    fn a_missing_subject_is_found() {
        for missing in [Value::Null, json!("")] {
            let findings =
                lint(&credential(missing, json!(["api://AzureADTokenExchange"]))).unwrap();
            assert_eq!(fields(&findings), ["subject"]);
            assert!(
                findings[0].reason.contains("no subject"),
                "{}",
                findings[0].reason
            );
        }
    }

    #[test]
    fn a_wildcard_claims_matching_expression_is_found() {
        let mut flexible = credential(Value::Null, json!(["api://AzureADTokenExchange"]));
        flexible["claimsMatchingExpression"] = json!({
            "value": "claims['sub'] matches 'repo:acme/*'",
            "languageVersion": 1,
        });
        let findings = lint(&flexible).unwrap();
        assert_eq!(fields(&findings), ["claimsMatchingExpression.value"]);
        assert!(
            findings[0].reason.contains("wildcard"),
            "{}",
            findings[0].reason
        );

        flexible["claimsMatchingExpression"]["value"] =
            json!("claims['sub'] eq 'repo:acme/app:environment:prod'");
        assert_eq!(lint(&flexible).unwrap(), vec![]);
    }

    #[test]
    fn several_subjects_on_one_application_are_found() {
        let list = json!([
            tight(),
            credential(
                json!("fedsync:staging"),
                json!(["api://AzureADTokenExchange"])
            )
        ]);
        let findings = lint(&list).unwrap();
        assert_eq!(fields(&findings), ["[*].subject"]);
        assert_eq!(findings[0].severity, Severity::Medium);
        assert!(
            findings[0].reason.contains("2 workloads"),
            "{}",
            findings[0].reason
        );

        let graph = json!({"value": list});
        let findings = lint(&graph).unwrap();
        assert_eq!(fields(&findings), ["value[*].subject"]);
    }

    #[test]
    fn paths_in_lists_name_the_credential() {
        let list = json!([tight(), credential(json!("fedsync:prod"), json!(["vault"]))]);
        assert_eq!(fields(&lint(&list).unwrap()), ["[1].audiences[0]"]);
    }

    #[test]
    fn bad_shapes_are_errors() {
        for bad in [
            credential(json!(1), json!([])),
            credential(json!("s"), json!({})),
            credential(json!("s"), json!([1])),
            json!({"issuer": 1, "subject": "s"}),
            json!([tight(), "x"]),
        ] {
            assert!(lint(&bad).is_err(), "{bad}");
        }
    }
}
