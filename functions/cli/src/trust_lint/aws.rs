//! AWS IAM role trust policies: who may call `sts:AssumeRoleWithWebIdentity`
//! on the role, with which audience and subject. Accepts a policy document, the
//! output of `aws iam get-role`, and a CloudFormation-style
//! `AssumeRolePolicyDocument` (inline, as JSON text or URL-encoded).

use super::finding::pretty;
use super::{Finding, Severity, example_subject, has_wildcard, key, kind_of, string_list};
use serde_json::{Map, Value, json};

/// The action a federated workload calls.
const WEB_IDENTITY_ACTION: &str = "sts:AssumeRoleWithWebIdentity";
/// The audience AWS expects by default.
const AWS_AUDIENCE: &str = "sts.amazonaws.com";
/// A provider to show in examples when the policy names none.
const EXAMPLE_PROVIDER: &str = "arn:aws:iam::123456789012:oidc-provider/issuer.example.com/fedsync";

/// Whether `value` holds a role trust policy in one of the accepted shapes.
pub fn recognises(value: &Value) -> bool {
    document(value).is_some()
}

/// The policy document inside `value` and the path that leads to it.
fn document(value: &Value) -> Option<(&Value, &'static str)> {
    let object = value.as_object()?;
    if object.contains_key("Statement") {
        return Some((value, ""));
    }
    if let Some(doc) = object.get("AssumeRolePolicyDocument") {
        return Some((doc, "AssumeRolePolicyDocument."));
    }
    if let Some(doc) = object
        .get("Role")
        .and_then(|r| r.get("AssumeRolePolicyDocument"))
    {
        return Some((doc, "Role.AssumeRolePolicyDocument."));
    }
    if let Some(doc) = object
        .get("Properties")
        .and_then(|p| p.get("AssumeRolePolicyDocument"))
    {
        return Some((doc, "Properties.AssumeRolePolicyDocument."));
    }
    None
}

/// The findings of one trust policy.
pub fn lint(value: &Value) -> Result<Vec<Finding>, String> {
    let (doc, prefix) = document(value).ok_or("not an AWS role trust policy")?;
    let parsed;
    let doc = match doc {
        Value::String(text) => {
            parsed = parse_document_text(text)
                .map_err(|e| format!("{}: {e}", prefix.trim_end_matches('.')))?;
            &parsed
        }
        other => other,
    };
    let statements: Vec<(String, &Value)> = match doc.get("Statement") {
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("{prefix}Statement[{i}]"), s))
            .collect(),
        Some(one @ Value::Object(_)) => vec![(format!("{prefix}Statement"), one)],
        Some(other) => {
            return Err(format!(
                "{prefix}Statement is {}, not an object or an array",
                kind_of(other)
            ));
        }
        None => return Err(format!("{prefix}Statement is missing")),
    };
    let mut findings = Vec::new();
    let mut subjects: Vec<(String, String)> = Vec::new();
    for (path, statement) in statements {
        lint_statement(&path, statement, &mut findings, &mut subjects)?;
    }
    subjects.sort();
    subjects.dedup();
    if subjects.len() > 1 {
        let (issuer, first) = &subjects[0];
        let names: Vec<&str> = subjects.iter().map(|(_, s)| s.as_str()).collect();
        findings.push(Finding::new(
            format!("{prefix}Statement"),
            Severity::Medium,
            format!(
                "One role is trusted by {} workloads ({}), so each of them gets the others' \
                 permissions: give each workload its own role.",
                subjects.len(),
                names.join(", ")
            ),
            pretty(&json!({"Condition": {"StringEquals": {
                format!("{issuer}:aud"): AWS_AUDIENCE,
                format!("{issuer}:sub"): first,
            }}})),
        ));
    }
    Ok(findings)
}

/// A policy document given as JSON text, possibly URL-encoded (as IAM's API returns it).
fn parse_document_text(text: &str) -> Result<Value, String> {
    let decoded;
    let text = if text.trim_start().starts_with('{') {
        text
    } else {
        decoded = percent_decode(text)?;
        &decoded
    };
    serde_json::from_str(text).map_err(|e| format!("not a JSON policy document: {e}"))
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("a malformed %-escape in the URL-encoded policy document")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the URL-encoded policy document is not UTF-8".to_string())
}

/// One condition entry: `Condition.OPERATOR["KEY"] = VALUES`.
struct Condition<'a> {
    operator: &'a str,
    key: &'a str,
    values: Vec<String>,
}

impl Condition<'_> {
    /// The operator without its set qualifier (`ForAnyValue:`) and `IfExists`.
    fn base(&self) -> &str {
        let op = self.operator;
        let op = op.split_once(':').map_or(op, |(qualifier, rest)| {
            if qualifier.eq_ignore_ascii_case("ForAnyValue")
                || qualifier.eq_ignore_ascii_case("ForAllValues")
            {
                rest
            } else {
                op
            }
        });
        op.strip_suffix("IfExists").unwrap_or(op)
    }

    /// Whether the operator requires the key to match its values (not a negation, not `Null`).
    fn pins(&self) -> bool {
        ["StringEquals", "StringEqualsIgnoreCase", "StringLike"]
            .iter()
            .any(|b| self.base().eq_ignore_ascii_case(b))
    }

    fn is_like(&self) -> bool {
        self.base().eq_ignore_ascii_case("StringLike")
    }

    fn field(&self, statement: &str) -> String {
        format!("{statement}.Condition.{}{}", self.operator, key(self.key))
    }
}

/// Every entry of a statement's `Condition` block.
fn conditions<'a>(
    statement: &'a Map<String, Value>,
    path: &str,
) -> Result<Vec<Condition<'a>>, String> {
    let Some(block) = statement.get("Condition") else {
        return Ok(Vec::new());
    };
    let block = block
        .as_object()
        .ok_or_else(|| format!("{path}.Condition is {}, not an object", kind_of(block)))?;
    let mut all = Vec::new();
    for (operator, entries) in block {
        let entries = entries.as_object().ok_or_else(|| {
            format!(
                "{path}.Condition.{operator} is {}, not an object",
                kind_of(entries)
            )
        })?;
        for (key, values) in entries {
            all.push(Condition {
                operator,
                key,
                values: scalars(values),
            });
        }
    }
    Ok(all)
}

/// A condition value (string, number, boolean, or an array of them) as strings.
fn scalars(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items.iter().flat_map(scalars).collect(),
        Value::String(s) => vec![s.clone()],
        Value::Null => Vec::new(),
        other => vec![other.to_string()],
    }
}

fn lint_statement(
    path: &str,
    statement: &Value,
    findings: &mut Vec<Finding>,
    subjects: &mut Vec<(String, String)>,
) -> Result<(), String> {
    let statement = statement
        .as_object()
        .ok_or_else(|| format!("{path} is {}, not an object", kind_of(statement)))?;
    let allows = statement.get("Effect").and_then(Value::as_str) == Some("Allow");
    if !allows {
        return Ok(());
    }
    if statement.contains_key("NotPrincipal") {
        findings.push(Finding::new(
            format!("{path}.NotPrincipal"),
            Severity::High,
            "Allow with NotPrincipal trusts every principal except the ones listed, anyone on \
             AWS included.",
            pretty(&json!({"Principal": {"Federated": EXAMPLE_PROVIDER}})),
        ));
    }
    let web_identity = match (statement.get("Action"), statement.get("NotAction")) {
        (_, Some(not_action)) => {
            findings.push(Finding::new(
                format!("{path}.NotAction"),
                Severity::High,
                "Allow with NotAction grants every action except the ones listed, so more \
                 ways to assume the role than the one fedsync needs.",
                pretty(&json!({"Action": WEB_IDENTITY_ACTION})),
            ));
            let excluded = string_list(not_action, &format!("{path}.NotAction"))?;
            !excluded.iter().any(|p| glob(p, WEB_IDENTITY_ACTION))
        }
        (Some(action), None) => string_list(action, &format!("{path}.Action"))?
            .iter()
            .any(|p| glob(p, WEB_IDENTITY_ACTION)),
        (None, None) => false,
    };
    let mut federated = Vec::new();
    match statement.get("Principal") {
        Some(Value::String(s)) if s == "*" => findings.push(public_principal(
            format!("{path}.Principal"),
            "A principal of \"*\" lets anyone",
        )),
        Some(Value::Object(principals)) => {
            for (kind, names) in principals {
                let field = format!("{path}.Principal.{kind}");
                let names = string_list(names, &field)?;
                if names.contains(&"*") {
                    findings.push(public_principal(
                        field,
                        &format!("A principal of {{\"{kind}\": \"*\"}} lets anyone"),
                    ));
                } else if kind == "Federated" {
                    federated.extend(names);
                }
            }
        }
        Some(Value::String(_)) | None => {}
        Some(other) => {
            return Err(format!(
                "{path}.Principal is {}, not a string or an object",
                kind_of(other)
            ));
        }
    }
    if !web_identity {
        return Ok(());
    }
    let conditions = conditions(statement, path)?;
    for provider in federated {
        let Some(issuer) = issuer_of(provider) else {
            continue;
        };
        lint_provider(path, &issuer, &conditions, findings, subjects);
    }
    Ok(())
}

fn public_principal(field: String, who: &str) -> Finding {
    Finding::new(
        field,
        Severity::High,
        format!(
            "{who} on AWS, in any account, ask to assume this role, held back only by \
             whatever the conditions happen to check."
        ),
        pretty(&json!({"Principal": {"Federated": EXAMPLE_PROVIDER}})),
    )
}

/// The issuer key of a federated principal (`HOST/PATH` of an IAM OIDC provider
/// ARN, or a built-in provider such as `accounts.google.com`); `None` for SAML.
fn issuer_of(provider: &str) -> Option<String> {
    if let Some((_, issuer)) = provider.split_once(":oidc-provider/") {
        return Some(issuer.to_string());
    }
    if provider.contains(":saml-provider/") {
        return None;
    }
    Some(provider.to_string())
}

/// The `aud` and `sub` conditions for one OIDC provider of a statement.
fn lint_provider(
    path: &str,
    issuer: &str,
    conditions: &[Condition<'_>],
    findings: &mut Vec<Finding>,
    subjects: &mut Vec<(String, String)>,
) {
    let on = |claim: &str| -> Vec<&Condition<'_>> {
        let wanted = format!("{issuer}:{claim}");
        conditions
            .iter()
            .filter(|c| c.pins() && c.key.eq_ignore_ascii_case(&wanted))
            .collect()
    };
    let exact = |cs: &[&Condition<'_>]| -> Vec<String> {
        cs.iter()
            .flat_map(|c| c.values.iter())
            .filter(|v| !has_wildcard(v))
            .cloned()
            .collect()
    };
    let (aud, sub) = (on("aud"), on("sub"));
    let wildcard_sub = sub
        .iter()
        .filter(|c| c.is_like())
        .flat_map(|c| c.values.iter())
        .find(|v| has_wildcard(v))
        .map(String::as_str);
    let aud_example = exact(&aud)
        .into_iter()
        .next()
        .unwrap_or_else(|| AWS_AUDIENCE.into());
    let sub_example = exact(&sub)
        .into_iter()
        .next()
        .unwrap_or_else(|| example_subject(issuer, wildcard_sub));
    let example = pretty(&json!({"Condition": {"StringEquals": {
        format!("{issuer}:aud"): aud_example,
        format!("{issuer}:sub"): sub_example,
    }}}));
    let github = issuer.starts_with(super::GITHUB_ISSUER_HOST);
    if aud.is_empty() {
        findings.push(Finding::new(
            format!("{path}.Condition{}", key(&format!("{issuer}:aud"))),
            Severity::Medium,
            format!(
                "No condition on \"{issuer}:aud\": this issuer's tokens minted for any audience \
                 the OIDC provider lists (another cloud or application included) are accepted here."
            ),
            example.clone(),
        ));
    }
    if sub.is_empty() {
        let who = if github {
            "every GitHub Actions workflow of every repository on GitHub".to_string()
        } else {
            format!("any workload {issuer} signs a token for")
        };
        findings.push(Finding::new(
            format!("{path}.Condition{}", key(&format!("{issuer}:sub"))),
            Severity::High,
            format!("No condition on \"{issuer}:sub\": {who} can assume this role."),
            example.clone(),
        ));
    }
    for c in aud.iter().chain(sub.iter()).filter(|c| c.is_like()) {
        if let Some(pattern) = c.values.iter().find(|v| has_wildcard(v)) {
            let claim = if c.key.to_ascii_lowercase().ends_with(":sub") {
                if github {
                    "subject, so every branch, environment or repository it matches"
                } else {
                    "subject, so every workload it matches"
                }
            } else {
                "audience, so tokens minted for other audiences it matches"
            };
            findings.push(Finding::new(
                c.field(path),
                Severity::High,
                format!(
                    "The wildcard \"{pattern}\" matches more than one {claim} can assume this role."
                ),
                example.clone(),
            ));
        }
    }
    subjects.extend(exact(&sub).into_iter().map(|s| (issuer.to_string(), s)));
}

/// Case-insensitive IAM action matching: `*` any run, `?` any one character.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let t: Vec<char> = text.to_ascii_lowercase().chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const GITHUB: &str = "token.actions.githubusercontent.com";

    fn github_statement(condition: Value) -> Value {
        json!({
            "Effect": "Allow",
            "Principal": {"Federated": format!("arn:aws:iam::123456789012:oidc-provider/{GITHUB}")},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": condition,
        })
    }

    fn tight() -> Value {
        json!({"Version": "2012-10-17", "Statement": [github_statement(json!({"StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": "repo:example-org/secrets:environment:prod",
        }}))]})
    }

    fn only(findings: &[Finding], field: &str) -> Finding {
        let matching: Vec<_> = findings.iter().filter(|f| f.field == field).collect();
        assert_eq!(matching.len(), 1, "{field} in {findings:#?}");
        matching[0].clone()
    }

    #[test]
    fn the_tight_policy_passes_in_every_shape() {
        assert_eq!(lint(&tight()).unwrap(), vec![]);
        let doc = tight();
        assert_eq!(
            lint(&json!({"Role": {"AssumeRolePolicyDocument": doc}})).unwrap(),
            vec![]
        );
        assert_eq!(
            lint(&json!({"AssumeRolePolicyDocument": tight()})).unwrap(),
            vec![]
        );
        let text = tight().to_string();
        assert_eq!(
            lint(&json!({"AssumeRolePolicyDocument": text})).unwrap(),
            vec![]
        );
        let encoded: String = text
            .bytes()
            .map(|b| match b {
                b'{' | b'}' | b'"' | b':' | b' ' | b'/' => format!("%{b:02X}"),
                _ => (b as char).to_string(),
            })
            .collect();
        assert_eq!(
            lint(&json!({"Role": {"AssumeRolePolicyDocument": encoded}})).unwrap(),
            vec![]
        );
        // One statement as an object, values as arrays.
        let one = json!({"Statement": {
            "Effect": "Allow",
            "Principal": {"Federated": [format!("arn:aws:iam::1:oidc-provider/{GITHUB}")]},
            "Action": ["sts:AssumeRoleWithWebIdentity"],
            "Condition": {"StringEquals": {
                "token.actions.githubusercontent.com:aud": ["sts.amazonaws.com"],
                "token.actions.githubusercontent.com:sub": ["repo:example-org/secrets:environment:prod"],
            }},
        }});
        assert_eq!(lint(&one).unwrap(), vec![]);
    }

    #[test]
    fn a_missing_audience_condition_is_found() {
        let policy = json!({"Statement": [github_statement(json!({"StringEquals": {
            "token.actions.githubusercontent.com:sub": "repo:example-org/secrets:environment:prod",
        }}))]});
        let findings = lint(&policy).unwrap();
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = only(
            &findings,
            "Statement[0].Condition[\"token.actions.githubusercontent.com:aud\"]",
        );
        assert_eq!(f.severity, Severity::Medium);
        assert!(f.reason.contains("audience"), "{}", f.reason);
        assert!(f.example.contains("sts.amazonaws.com"));
    }

    #[test]
    fn a_missing_subject_condition_is_every_repository_on_github() {
        let policy = json!({"Role": {"AssumeRolePolicyDocument": {"Statement": [
            github_statement(json!({"StringEquals": {
                "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            }}))
        ]}}});
        let findings = lint(&policy).unwrap();
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = only(
            &findings,
            "Role.AssumeRolePolicyDocument.Statement[0].Condition[\"token.actions.githubusercontent.com:sub\"]",
        );
        assert_eq!(f.severity, Severity::High);
        assert!(
            f.reason.contains("every repository on GitHub"),
            "{}",
            f.reason
        );
    }

    #[test]
    fn no_condition_at_all_is_both_findings() {
        let mut statement = github_statement(json!({}));
        statement.as_object_mut().unwrap().remove("Condition");
        let findings = lint(&json!({"Statement": statement})).unwrap();
        assert_eq!(findings.len(), 2, "{findings:#?}");
        only(
            &findings,
            "Statement.Condition[\"token.actions.githubusercontent.com:aud\"]",
        );
        only(
            &findings,
            "Statement.Condition[\"token.actions.githubusercontent.com:sub\"]",
        );
    }

    #[test]
    fn a_negated_subject_condition_does_not_pin_it() {
        let policy = json!({"Statement": [github_statement(json!({
            "StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
            "StringNotEquals": {"token.actions.githubusercontent.com:sub": "repo:evil/x:ref:refs/heads/main"},
        }))]});
        let findings = lint(&policy).unwrap();
        only(
            &findings,
            "Statement[0].Condition[\"token.actions.githubusercontent.com:sub\"]",
        );
    }

    #[test]
    fn a_wildcard_subject_is_found() {
        let policy = json!({"Statement": [github_statement(json!({
            "StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
            "StringLike": {"token.actions.githubusercontent.com:sub": "repo:acme/*"},
        }))]});
        let findings = lint(&policy).unwrap();
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = only(
            &findings,
            "Statement[0].Condition.StringLike[\"token.actions.githubusercontent.com:sub\"]",
        );
        assert_eq!(f.severity, Severity::High);
        assert!(f.reason.contains("wildcard"), "{}", f.reason);
        assert!(
            f.example.contains("repo:acme/secrets:environment:prod"),
            "{}",
            f.example
        );
    }

    #[test]
    fn a_wildcard_audience_and_for_any_value_are_found() {
        let issuer = "issuer.example.com/fedsync";
        let policy = json!({"Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": format!("arn:aws:iam::1:oidc-provider/{issuer}")},
            "Action": "sts:*",
            "Condition": {
                "StringLike": {"issuer.example.com/fedsync:aud": "sts.*"},
                "ForAnyValue:StringLike": {"issuer.example.com/fedsync:sub": ["fedsync:pro?"]},
            },
        }]});
        let findings = lint(&policy).unwrap();
        assert_eq!(findings.len(), 2, "{findings:#?}");
        let f = only(
            &findings,
            "Statement[0].Condition.StringLike[\"issuer.example.com/fedsync:aud\"]",
        );
        assert!(f.reason.contains("audience"), "{}", f.reason);
        let f = only(
            &findings,
            "Statement[0].Condition.ForAnyValue:StringLike[\"issuer.example.com/fedsync:sub\"]",
        );
        assert!(f.reason.contains("wildcard"), "{}", f.reason);
        assert!(f.example.contains("fedsync:prod"), "{}", f.example);
    }

    #[test]
    fn string_like_without_a_wildcard_is_exact() {
        let policy = json!({"Statement": [github_statement(json!({"StringLike": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": "repo:example-org/secrets:environment:prod",
        }}))]});
        assert_eq!(lint(&policy).unwrap(), vec![]);
    }

    #[test]
    fn public_principals_are_found() {
        let star = json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"}]});
        let f = only(&lint(&star).unwrap(), "Statement[0].Principal");
        assert_eq!(f.severity, Severity::High);
        assert!(f.reason.contains("anyone"), "{}", f.reason);

        let aws = json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": ["*"]}, "Action": "sts:AssumeRole"}]});
        let f = only(&lint(&aws).unwrap(), "Statement[0].Principal.AWS");
        assert!(f.reason.contains("anyone"), "{}", f.reason);

        // A Deny statement never widens trust.
        let deny = json!({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "*"}]});
        assert_eq!(lint(&deny).unwrap(), vec![]);
    }

    #[test]
    fn not_principal_and_not_action_with_allow_are_found() {
        let policy = json!({"Statement": [{
            "Effect": "Allow",
            "NotPrincipal": {"AWS": "arn:aws:iam::1:root"},
            "Action": "sts:AssumeRole",
        }, {
            "Effect": "Allow",
            "Principal": {"Federated": "arn:aws:iam::1:oidc-provider/issuer.example.com/fedsync"},
            "NotAction": "sts:TagSession",
            "Condition": {"StringEquals": {
                "issuer.example.com/fedsync:aud": "sts.amazonaws.com",
                "issuer.example.com/fedsync:sub": "fedsync:prod",
            }},
        }]});
        let findings = lint(&policy).unwrap();
        assert_eq!(findings.len(), 2, "{findings:#?}");
        let f = only(&findings, "Statement[0].NotPrincipal");
        assert!(f.reason.contains("except"), "{}", f.reason);
        let f = only(&findings, "Statement[1].NotAction");
        assert!(f.reason.contains("every action except"), "{}", f.reason);
    }

    #[test]
    fn several_exact_subjects_share_one_role() {
        let sub = "token.actions.githubusercontent.com:sub";
        let aud = "token.actions.githubusercontent.com:aud";
        let policy = json!({"Statement": [
            github_statement(json!({"StringEquals": {aud: "sts.amazonaws.com", sub: ["repo:a/x:ref:refs/heads/main", "repo:a/y:ref:refs/heads/main"]}})),
            github_statement(json!({"StringEquals": {aud: "sts.amazonaws.com", sub: "repo:a/x:ref:refs/heads/main"}})),
        ]});
        let findings = lint(&policy).unwrap();
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = only(&findings, "Statement");
        assert_eq!(f.severity, Severity::Medium);
        assert!(f.reason.contains("2 workloads"), "{}", f.reason);
    }

    #[test]
    fn other_actions_need_no_web_identity_conditions() {
        let policy = json!({"Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }, {
            "Effect": "Allow",
            "Principal": {"Federated": "arn:aws:iam::1:saml-provider/corp"},
            "Action": "sts:AssumeRoleWithSAML",
        }]});
        assert_eq!(lint(&policy).unwrap(), vec![]);
    }

    #[test]
    fn bad_shapes_are_errors_not_panics() {
        for bad in [
            json!({"Statement": "x"}),
            json!({"Statement": [1]}),
            json!({"Statement": [{"Effect": "Allow", "Principal": 3, "Action": "*"}]}),
            json!({"Statement": [{"Effect": "Allow", "Principal": {"Federated": 3}, "Action": "*"}]}),
            json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": {"a": 1}}]}),
            json!({"Statement": [github_statement(json!("x"))]}),
            json!({"Statement": [github_statement(json!({"StringEquals": 1}))]}),
            json!({"AssumeRolePolicyDocument": "%7"}),
            json!({"AssumeRolePolicyDocument": "%7B"}),
            json!({"AssumeRolePolicyDocument": {}}),
        ] {
            assert!(lint(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn actions_match_as_iam_does() {
        assert!(glob("sts:AssumeRoleWith*", WEB_IDENTITY_ACTION));
        assert!(glob("*", WEB_IDENTITY_ACTION));
        assert!(glob("STS:assumerolewithwebidentity", WEB_IDENTITY_ACTION));
        assert!(glob("sts:AssumeRoleWith?ebIdentity", WEB_IDENTITY_ACTION));
        assert!(!glob("sts:AssumeRole", WEB_IDENTITY_ACTION));
        assert!(!glob("sts:AssumeRoleWithSAML", WEB_IDENTITY_ACTION));
    }
}
