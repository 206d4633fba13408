//! `fedsync trust lint FILE...`: reads trust definitions (an AWS role trust
//! policy, a Google workload identity pool provider or IAM policy, Azure
//! federated identity credentials), recognises each file's kind from its JSON
//! shape, and reports trust broader than one workload with one audience.
//!
//! Exit code: 0 when nothing is found, 1 when anything is, 2 when a file cannot
//! be read or is not a recognised kind.

mod aws;
mod azure;
mod finding;
mod google;

pub use finding::{Finding, Severity};

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The kinds of trust definition `trust lint` understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    AwsTrustPolicy,
    GoogleProvider,
    GoogleIamPolicy,
    AzureCredential,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::AwsTrustPolicy => "aws-role-trust-policy",
            Kind::GoogleProvider => "gcp-workload-identity-provider",
            Kind::GoogleIamPolicy => "gcp-iam-policy",
            Kind::AzureCredential => "azure-federated-credential",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Kind::AwsTrustPolicy => "AWS IAM role trust policy",
            Kind::GoogleProvider => "Google workload identity pool provider",
            Kind::GoogleIamPolicy => "Google IAM policy",
            Kind::AzureCredential => "Azure federated identity credentials",
        }
    }
}

/// One file's outcome: its kind and findings, or why it could not be checked.
struct Checked {
    file: String,
    result: Result<(Kind, Vec<Finding>), String>,
}

/// Runs `trust lint` over `files`, printing a report grouped by file (or a JSON
/// array of findings with `json`).
pub fn lint(files: &[PathBuf], json: bool) -> Result<ExitCode, String> {
    if files.is_empty() {
        return Err("trust lint needs at least one file".into());
    }
    let checked: Vec<Checked> = files
        .iter()
        .map(|path| Checked {
            file: path.display().to_string(),
            result: lint_file(path),
        })
        .collect();
    if json {
        let all: Vec<Value> = checked
            .iter()
            .filter_map(|c| c.result.as_ref().ok().map(|r| (c, r)))
            .flat_map(|(c, (kind, findings))| {
                findings.iter().map(|f| f.to_json(&c.file, kind.as_str()))
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&Value::Array(all)).unwrap_or_default()
        );
    } else {
        print!("{}", human_report(&checked));
    }
    let mut unreadable = false;
    // Each on stderr, in both output modes, so that stdout stays the report.
    for c in &checked {
        if let Err(why) = &c.result {
            eprintln!("fedsync: {}: {why}", c.file);
            unreadable = true;
        }
    }
    let found = checked
        .iter()
        .any(|c| matches!(&c.result, Ok((_, f)) if !f.is_empty()));
    Ok(if unreadable {
        ExitCode::from(2)
    } else if found {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Reads and checks one file.
fn lint_file(path: &Path) -> Result<(Kind, Vec<Finding>), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read the file: {e}"))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
    lint_value(&value)
}

/// Recognises the kind of `value` from its shape and checks it.
pub fn lint_value(value: &Value) -> Result<(Kind, Vec<Finding>), String> {
    let kind = detect(value)?;
    let findings = match kind {
        Kind::AwsTrustPolicy => aws::lint(value)?,
        Kind::GoogleProvider => google::lint_provider(value)?,
        Kind::GoogleIamPolicy => google::lint_iam_policy(value)?,
        Kind::AzureCredential => azure::lint(value)?,
    };
    Ok((kind, findings))
}

/// The kind of trust definition `value` is, or why it is none of them.
fn detect(value: &Value) -> Result<Kind, String> {
    if aws::recognises(value) {
        Ok(Kind::AwsTrustPolicy)
    } else if google::recognises_iam_policy(value) {
        Ok(Kind::GoogleIamPolicy)
    } else if google::recognises_provider(value) {
        Ok(Kind::GoogleProvider)
    } else if azure::recognises(value) {
        Ok(Kind::AzureCredential)
    } else {
        Err(format!(
            "not a recognised trust definition: found {}; expected an AWS role trust policy \
             (\"Statement\", \"AssumeRolePolicyDocument\" or \"Role\".\"AssumeRolePolicyDocument\"), \
             a Google workload identity pool provider (\"oidc\", \"attributeMapping\", \
             \"attributeCondition\"), a Google IAM policy (\"bindings\") or Azure federated \
             identity credentials (\"issuer\", \"subject\", \"audiences\", alone or in an array)",
            shape(value)
        ))
    }
}

/// A short description of a JSON value's shape, for an error.
fn shape(value: &Value) -> String {
    match value {
        Value::Object(map) if map.is_empty() => "an empty object".into(),
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().take(8).map(|k| format!("\"{k}\"")).collect();
            let more = if map.len() > 8 { ", ..." } else { "" };
            format!("an object with keys {}{more}", keys.join(", "))
        }
        Value::Array(items) if items.is_empty() => "an empty array".into(),
        Value::Array(items) => format!("an array of {} whose first is {}", items.len(), {
            match &items[0] {
                Value::Object(_) => shape(&items[0]),
                other => kind_of(other).to_string(),
            }
        }),
        other => kind_of(other).to_string(),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The report for people: each file, its kind, then its findings.
fn human_report(checked: &[Checked]) -> String {
    let mut out = String::new();
    let (mut high, mut medium, mut passing) = (0, 0, 0);
    for c in checked {
        let (kind, findings) = match &c.result {
            Ok(r) => r,
            // Said on stderr, where errors go.
            Err(_) => continue,
        };
        if findings.is_empty() {
            passing += 1;
            out.push_str(&format!("{} ({}): no finding\n", c.file, kind.describe()));
            continue;
        }
        out.push_str(&format!("{} ({})\n", c.file, kind.describe()));
        for f in findings {
            match f.severity {
                Severity::High => high += 1,
                Severity::Medium => medium += 1,
            }
            out.push_str(&format!("  {:<6}  {}\n", f.severity.as_str(), f.field));
            out.push_str(&format!("          why: {}\n", f.reason));
            out.push_str("          tighter:\n");
            for line in f.example.lines() {
                out.push_str(&format!("            {line}\n"));
            }
        }
        out.push('\n');
    }
    let unchecked = checked.iter().filter(|c| c.result.is_err()).count();
    out.push_str(&format!(
        "{} finding{} ({high} high, {medium} medium); {passing} of {} file{} pass{}\n",
        high + medium,
        if high + medium == 1 { "" } else { "s" },
        checked.len(),
        if checked.len() == 1 { "" } else { "s" },
        if unchecked > 0 {
            format!(", {unchecked} not checked (see the errors)")
        } else {
            String::new()
        }
    ));
    out
}

/// `value` as a list of strings: one string, or an array of strings.
fn string_list<'a>(value: &'a Value, field: &str) -> Result<Vec<&'a str>, String> {
    match value {
        Value::String(s) => Ok(vec![s.as_str()]),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_str()
                    .ok_or_else(|| format!("{field}[{i}] is {}, not a string", kind_of(item)))
            })
            .collect(),
        other => Err(format!(
            "{field} is {}, not a string or an array of strings",
            kind_of(other)
        )),
    }
}

/// A map key in a field path: `["token.actions.githubusercontent.com:sub"]`.
fn key(name: &str) -> String {
    format!("[{}]", Value::String(name.to_string()))
}

/// Whether a string matched as a pattern (IAM `StringLike`, glob) is a wildcard.
fn has_wildcard(pattern: &str) -> bool {
    pattern.contains('*') || pattern.contains('?')
}

/// GitHub Actions' OIDC issuer, whose subjects name a repository.
const GITHUB_ISSUER_HOST: &str = "token.actions.githubusercontent.com";

/// An exact subject to suggest for an issuer: a GitHub repository and
/// environment for GitHub's issuer (keeping the owner of `seen` when it names
/// one), fedsync's own deployment subject otherwise.
fn example_subject(issuer: &str, seen: Option<&str>) -> String {
    if issuer.contains(GITHUB_ISSUER_HOST) {
        let owner = seen
            .and_then(|s| s.strip_prefix("repo:"))
            .and_then(|s| s.split('/').next())
            .filter(|o| !o.is_empty() && !has_wildcard(o))
            .unwrap_or("example-org");
        format!("repo:{owner}/secrets:environment:prod")
    } else {
        "fedsync:prod".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn detects_each_kind_from_its_shape() {
        let cases = [
            (
                json!({"Version": "2012-10-17", "Statement": []}),
                Kind::AwsTrustPolicy,
            ),
            (
                json!({"Role": {"AssumeRolePolicyDocument": {"Statement": []}}}),
                Kind::AwsTrustPolicy,
            ),
            (
                json!({"AssumeRolePolicyDocument": {"Statement": []}}),
                Kind::AwsTrustPolicy,
            ),
            (json!({"bindings": []}), Kind::GoogleIamPolicy),
            (
                json!({"name": "projects/1/locations/global/workloadIdentityPools/p/providers/q",
                       "oidc": {"issuerUri": "https://issuer.example.com"}}),
                Kind::GoogleProvider,
            ),
            (
                json!({"issuer": "https://issuer.example.com", "subject": "s", "audiences": []}),
                Kind::AzureCredential,
            ),
            (
                json!([{"issuer": "https://issuer.example.com", "subject": "s"}]),
                Kind::AzureCredential,
            ),
        ];
        for (value, kind) in cases {
            assert_eq!(detect(&value), Ok(kind), "{value}");
        }
    }

    #[test]
    fn an_unrecognised_shape_is_named() {
        let err = detect(&json!({"hello": 1})).unwrap_err();
        assert!(err.contains("not a recognised trust definition"), "{err}");
        assert!(err.contains("\"hello\""), "{err}");
        let err = detect(&json!([])).unwrap_err();
        assert!(err.contains("an empty array"), "{err}");
        let err = detect(&json!("text")).unwrap_err();
        assert!(err.contains("a string"), "{err}");
    }

    #[test]
    fn bad_shapes_inside_a_recognised_kind_are_errors() {
        let err = lint_value(&json!({"Statement": 3})).unwrap_err();
        assert!(err.contains("Statement"), "{err}");
        let err = lint_value(&json!({"bindings": [{"role": "r", "members": 1}]})).unwrap_err();
        assert!(err.contains("bindings[0].members"), "{err}");
    }

    #[test]
    fn the_human_report_groups_by_file_and_counts() {
        let checked = vec![
            Checked {
                file: "a.json".into(),
                result: Ok((
                    Kind::AzureCredential,
                    vec![Finding::new("audiences", Severity::High, "why", "{\n}")],
                )),
            },
            Checked {
                file: "b.json".into(),
                result: Ok((Kind::GoogleIamPolicy, vec![])),
            },
            Checked {
                file: "c.json".into(),
                result: Err("cannot read the file".into()),
            },
        ];
        let text = human_report(&checked);
        assert!(
            text.contains("a.json (Azure federated identity credentials)\n  high    audiences")
        );
        assert!(text.contains("b.json (Google IAM policy): no finding"));
        assert!(!text.contains("c.json"));
        assert!(text.contains("1 finding (1 high, 0 medium); 1 of 3 files pass, 1 not checked"));
    }

    #[test]
    fn github_subjects_keep_the_owner() {
        assert_eq!(
            example_subject(
                "https://token.actions.githubusercontent.com",
                Some("repo:acme/*")
            ),
            "repo:acme/secrets:environment:prod"
        );
        assert_eq!(
            example_subject("https://issuer.example.com/fedsync", None),
            "fedsync:prod"
        );
    }
}
