//! Google workload identity federation: a pool provider (which tokens the pool
//! accepts, and which principal each becomes) and an IAM policy (which of those
//! principals may impersonate a service account or reach Secret Manager).

use super::finding::{ordered, pretty};
use super::{Finding, Severity, example_subject, key, kind_of, string_list};
use serde_json::{Map, Value, json};

/// Audiences other clouds use: a token minted for one of them must not be accepted here.
const FOREIGN_AUDIENCES: &[(&str, &str)] = &[
    ("sts.amazonaws.com", "AWS"),
    ("api://AzureADTokenExchange", "Azure"),
    ("api://AzureADTokenExchangeUSGov", "Azure"),
    ("api://AzureADTokenExchangeChina", "Azure"),
    ("vault", "Vault and OpenBao"),
];

/// Roles that hand a federated principal a service account's identity or secrets.
const SENSITIVE_ROLES: &[&str] = &[
    "roles/iam.workloadIdentityUser",
    "roles/iam.serviceAccountTokenCreator",
];

/// Whether `value` is an IAM policy (`{"bindings": [...]}`, or a `setIamPolicy` body).
pub fn recognises_iam_policy(value: &Value) -> bool {
    iam_bindings(value).is_some()
}

fn iam_bindings(value: &Value) -> Option<(&Value, &'static str)> {
    if let Some(bindings) = value.get("bindings") {
        return Some((bindings, ""));
    }
    value
        .get("policy")
        .and_then(|p| p.get("bindings"))
        .map(|b| (b, "policy."))
}

/// Whether `value` is a workload identity pool provider (gcloud or REST).
pub fn recognises_provider(value: &Value) -> bool {
    let Some(object) = value.as_object() else {
        return false;
    };
    let named = object
        .get("name")
        .and_then(Value::as_str)
        .is_some_and(|n| n.contains("/workloadIdentityPools/") && n.contains("/providers/"));
    named
        || ["oidc", "attributeMapping", "attributeCondition"]
            .iter()
            .any(|k| object.contains_key(*k))
}

/// The findings of one pool provider.
pub fn lint_provider(value: &Value) -> Result<Vec<Finding>, String> {
    let provider = value
        .as_object()
        .ok_or("a workload identity pool provider must be an object")?;
    let oidc = match provider.get("oidc") {
        Some(Value::Object(oidc)) => Some(oidc),
        Some(Value::Null) | None => None,
        Some(other) => return Err(format!("oidc is {}, not an object", kind_of(other))),
    };
    // A provider that is neither SAML nor AWS federates OIDC tokens.
    let is_oidc =
        oidc.is_some() || !(provider.contains_key("saml") || provider.contains_key("aws"));
    let issuer = oidc
        .and_then(|o| o.get("issuerUri"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let name = provider.get("name").and_then(Value::as_str);
    let mut findings = Vec::new();
    lint_condition(provider, issuer, is_oidc, &mut findings)?;
    if is_oidc {
        lint_subject_mapping(provider, &mut findings)?;
    }
    if let Some(oidc) = oidc {
        lint_audiences(oidc, name, &mut findings)?;
    }
    Ok(findings)
}

/// The CEL condition to suggest for `issuer`.
fn pinned_condition(issuer: &str, seen: Option<&str>) -> String {
    format!("assertion.sub == '{}'", example_subject(issuer, seen))
}

fn lint_condition(
    provider: &Map<String, Value>,
    issuer: &str,
    is_oidc: bool,
    findings: &mut Vec<Finding>,
) -> Result<(), String> {
    let condition = match provider.get("attributeCondition") {
        Some(Value::String(c)) => c.trim(),
        Some(Value::Null) | None => "",
        Some(other) => {
            return Err(format!(
                "attributeCondition is {}, not a string",
                kind_of(other)
            ));
        }
    };
    let who = if issuer.is_empty() {
        "the issuer".to_string()
    } else {
        issuer.to_string()
    };
    if condition.is_empty() {
        findings.push(Finding::new(
            "attributeCondition",
            Severity::High,
            format!(
                "No attribute condition: every token {who} signs is accepted, for any workload."
            ),
            pinned_condition(issuer, None),
        ));
        return Ok(());
    }
    let cel = Cel::scan(condition);
    let example = pinned_condition(issuer, cel.literals.first().map(String::as_str));
    if is_oidc && !cel.pins_subject() {
        findings.push(Finding::new(
            "attributeCondition",
            Severity::High,
            "The condition does not pin the subject with an equality such as \
             assertion.sub == '...', so every workload that meets the rest of it is accepted.",
            example.clone(),
        ));
    }
    for (construct, why) in cel.broad_constructs() {
        findings.push(Finding::new(
            "attributeCondition",
            Severity::High,
            format!("The condition uses {construct}, {why}."),
            example.clone(),
        ));
    }
    Ok(())
}

fn lint_subject_mapping(
    provider: &Map<String, Value>,
    findings: &mut Vec<Finding>,
) -> Result<(), String> {
    let field = format!("attributeMapping{}", key("google.subject"));
    let mapping = match provider.get("attributeMapping") {
        Some(Value::Object(m)) => m.get("google.subject"),
        Some(Value::Null) | None => None,
        Some(other) => {
            return Err(format!(
                "attributeMapping is {}, not an object",
                kind_of(other)
            ));
        }
    };
    let example = pretty(&json!({"attributeMapping": {"google.subject": "assertion.sub"}}));
    let expression = match mapping {
        Some(Value::String(e)) => e,
        None | Some(Value::Null) => {
            findings.push(Finding::new(
                field,
                Severity::Medium,
                "google.subject is not mapped from assertion.sub, so principals cannot name \
                 one workload.",
                example,
            ));
            return Ok(());
        }
        Some(other) => return Err(format!("{field} is {}, not a string", kind_of(other))),
    };
    let compact: String = expression.chars().filter(|c| !c.is_whitespace()).collect();
    if compact == "assertion.sub"
        || compact == "assertion['sub']"
        || compact == "assertion[\"sub\"]"
    {
        return Ok(());
    }
    let severity = if compact.contains("assertion.sub") {
        Severity::Medium
    } else {
        Severity::High
    };
    findings.push(Finding::new(
        field,
        severity,
        format!(
            "google.subject is mapped from {expression}, not assertion.sub, so many workloads \
             share one principal and every grant to it."
        ),
        example,
    ));
    Ok(())
}

fn lint_audiences(
    oidc: &Map<String, Value>,
    name: Option<&str>,
    findings: &mut Vec<Finding>,
) -> Result<(), String> {
    let audiences = match oidc.get("allowedAudiences") {
        Some(Value::Null) | None => return Ok(()),
        Some(value) => string_list(value, "oidc.allowedAudiences")?,
    };
    let own: Vec<Value> = name
        .map(|n| {
            Value::String(format!(
                "https://iam.googleapis.com/{}",
                n.trim_start_matches('/')
            ))
        })
        .into_iter()
        .collect();
    let example = pretty(&json!({"oidc": {"allowedAudiences": own}}));
    for (i, audience) in audiences.iter().enumerate() {
        if let Some((_, cloud)) = FOREIGN_AUDIENCES
            .iter()
            .find(|(foreign, _)| foreign.eq_ignore_ascii_case(audience.trim()))
        {
            findings.push(Finding::new(
                format!("oidc.allowedAudiences[{i}]"),
                Severity::High,
                format!(
                    "\"{audience}\" is the audience {cloud} uses, so a token minted for {cloud} \
                     is accepted here too."
                ),
                example.clone(),
            ));
        }
    }
    if audiences.len() > 1 {
        findings.push(Finding::new(
            "oidc.allowedAudiences",
            Severity::Medium,
            format!(
                "{} audiences are allowed, so a token minted for any one of them is accepted \
                 here: keep the provider's own.",
                audiences.len()
            ),
            example,
        ));
    }
    Ok(())
}

/// A CEL condition with its string literals set apart, so operators inside a
/// quoted subject are not taken for operators.
struct Cel {
    /// The expression with every literal emptied (`'repo:a/b'` becomes `''`),
    /// `assertion['sub']` written as `assertion.sub`, and no whitespace.
    code: String,
    literals: Vec<String>,
}

impl Cel {
    fn scan(condition: &str) -> Self {
        let normalised = condition
            .replace("assertion['sub']", "assertion.sub")
            .replace("assertion[\"sub\"]", "assertion.sub");
        let mut code = String::new();
        let mut literals = Vec::new();
        let mut chars = normalised.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\'' || c == '"' {
                let mut literal = String::new();
                while let Some(d) = chars.next() {
                    match d {
                        '\\' => {
                            if let Some(e) = chars.next() {
                                literal.push(e);
                            }
                        }
                        d if d == c => break,
                        d => literal.push(d),
                    }
                }
                code.push(c);
                code.push(c);
                literals.push(literal);
            } else if !c.is_whitespace() {
                code.push(c);
            } else {
                // Keep word boundaries: `a in b` must not become `ainb`.
                code.push(' ');
            }
        }
        Self { code, literals }
    }

    fn compact(&self) -> String {
        self.code.chars().filter(|c| *c != ' ').collect()
    }

    /// An equality between the subject and a literal.
    fn pins_subject(&self) -> bool {
        let code = self.compact();
        ["assertion.sub", "google.subject"].iter().any(|s| {
            code.contains(&format!("{s}==''"))
                || code.contains(&format!("{s}==\"\""))
                || code.contains(&format!("''=={s}"))
                || code.contains(&format!("\"\"=={s}"))
        })
    }

    /// The constructs that accept more than one value, each with why.
    fn broad_constructs(&self) -> Vec<(&'static str, &'static str)> {
        let code = self.compact();
        let mut found = Vec::new();
        for (needle, construct, why) in [
            (
                ".startsWith(",
                "startsWith",
                "which accepts every value with that prefix (every branch or repository under it)",
            ),
            (
                ".endsWith(",
                "endsWith",
                "which accepts every value with that suffix",
            ),
            (
                ".matches(",
                ".matches()",
                "a regular expression that accepts every value it matches",
            ),
            (
                "||",
                "||",
                "so a token that meets either side is accepted, the looser side included",
            ),
            (
                "!=",
                "!=",
                "which accepts every value but the one it excludes",
            ),
        ] {
            if code.contains(needle) {
                found.push((construct, why));
            }
        }
        if self.has_bare_true() {
            found.push(("true", "a clause that holds for every token"));
        }
        found
    }

    /// `true` as a clause of its own, not compared with `==` or `!=`.
    fn has_bare_true(&self) -> bool {
        let code = &self.code;
        let bytes = code.as_bytes();
        let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'.';
        let mut start = 0;
        while let Some(at) = code[start..].find("true") {
            let begin = start + at;
            let end = begin + 4;
            start = end;
            if (begin > 0 && word(bytes[begin - 1])) || (end < bytes.len() && word(bytes[end])) {
                continue;
            }
            let before = code[..begin].trim_end();
            let after = code[end..].trim_start();
            let compared = before.ends_with("==")
                || before.ends_with("!=")
                || after.starts_with("==")
                || after.starts_with("!=");
            if !compared {
                return true;
            }
        }
        false
    }
}

/// The findings of one IAM policy.
pub fn lint_iam_policy(value: &Value) -> Result<Vec<Finding>, String> {
    let (bindings, prefix) = iam_bindings(value).ok_or("not an IAM policy")?;
    let bindings = match bindings {
        Value::Array(items) => items,
        Value::Null => return Ok(Vec::new()),
        other => {
            return Err(format!(
                "{prefix}bindings is {}, not an array",
                kind_of(other)
            ));
        }
    };
    let mut findings = Vec::new();
    for (i, binding) in bindings.iter().enumerate() {
        let path = format!("{prefix}bindings[{i}]");
        let role = binding
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{path}.role is missing or not a string"))?;
        let sensitive = SENSITIVE_ROLES.contains(&role) || role.starts_with("roles/secretmanager.");
        let members = match binding.get("members") {
            Some(members) => string_list(members, &format!("{path}.members"))?,
            None => Vec::new(),
        };
        if !sensitive {
            continue;
        }
        for (j, member) in members.iter().enumerate() {
            if let Some((severity, reason, example_member)) = broad_member(member) {
                findings.push(Finding::new(
                    format!("{path}.members[{j}]"),
                    severity,
                    format!("{role} is granted to {reason}."),
                    ordered(&[("role", json!(role)), ("members", json!([example_member]))]),
                ));
            }
        }
    }
    Ok(findings)
}

/// Attributes that name a whole organisation or owner rather than one workload.
const OWNER_ATTRIBUTES: &[&str] = &[
    "repository_owner",
    "repository_owner_id",
    "enterprise",
    "organization",
    "org",
    "owner",
    "namespace",
];

/// Why a member is broader than one workload: severity, reason, a tighter member.
fn broad_member(member: &str) -> Option<(Severity, String, String)> {
    let pool_example = |pool: &str, subject: &str| format!("principal://{pool}/subject/{subject}");
    match member {
        "allUsers" => {
            return Some((
                Severity::High,
                "allUsers: anyone on the internet".into(),
                pool_example(EXAMPLE_POOL, "fedsync:prod"),
            ));
        }
        "allAuthenticatedUsers" => {
            return Some((
                Severity::High,
                "allAuthenticatedUsers: any Google account or workload".into(),
                pool_example(EXAMPLE_POOL, "fedsync:prod"),
            ));
        }
        _ => {}
    }
    let set = member.strip_prefix("principalSet://")?;
    // iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/POOL/REST
    let marker = ["/workloadIdentityPools/", "/workforcePools/"]
        .iter()
        .find_map(|m| set.find(m).map(|at| at + m.len()))?;
    let (pool_id, rest) = set[marker..]
        .split_once('/')
        .unwrap_or((&set[marker..], ""));
    let pool = &set[..marker + pool_id.len()];
    if rest.is_empty() || rest == "*" {
        return Some((
            Severity::High,
            "the whole pool: every identity any of its providers accepts".into(),
            pool_example(pool, "fedsync:prod"),
        ));
    }
    if let Some(group) = rest.strip_prefix("group/") {
        return Some((
            Severity::Medium,
            format!("every identity in the group \"{group}\", not one workload"),
            pool_example(pool, "fedsync:prod"),
        ));
    }
    let attribute = rest.strip_prefix("attribute.")?;
    let (name, value) = attribute.split_once('/').unwrap_or((attribute, ""));
    let subject = if name.starts_with("repository") {
        example_subject(super::GITHUB_ISSUER_HOST, Some(&format!("repo:{value}")))
    } else {
        "fedsync:prod".into()
    };
    let severity = if OWNER_ATTRIBUTES.contains(&name) {
        Severity::High
    } else {
        Severity::Medium
    };
    Some((
        severity,
        format!(
            "every workload whose attribute.{name} is \"{value}\", a set broader than one workload"
        ),
        pool_example(pool, &subject),
    ))
}

/// A pool to show in examples when the member names none.
const EXAMPLE_POOL: &str =
    "iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/fedsync";

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str =
        "projects/123456/locations/global/workloadIdentityPools/fedsync/providers/fedsync";

    fn provider(condition: Value, subject: Value, audiences: Value) -> Value {
        json!({
            "name": NAME,
            "state": "ACTIVE",
            "disabled": false,
            "attributeMapping": {"google.subject": subject},
            "attributeCondition": condition,
            "oidc": {"issuerUri": "https://issuer.example.com/fedsync", "allowedAudiences": audiences},
        })
    }

    fn tight() -> Value {
        provider(
            json!("assertion.sub == 'fedsync:prod'"),
            json!("assertion.sub"),
            json!([]),
        )
    }

    fn fields(findings: &[Finding]) -> Vec<&str> {
        findings.iter().map(|f| f.field.as_str()).collect()
    }

    #[test]
    fn the_tight_provider_passes() {
        assert_eq!(lint_provider(&tight()).unwrap(), vec![]);
        let own = format!("https://iam.googleapis.com/{NAME}");
        let p = provider(
            json!("google.subject == \"fedsync:prod\" && assertion.env == 'prod'"),
            json!("assertion.sub"),
            json!([own]),
        );
        assert_eq!(lint_provider(&p).unwrap(), vec![]);
        let p = provider(
            json!("'fedsync:prod' == assertion['sub']"),
            json!(" assertion.sub "),
            Value::Null,
        );
        assert_eq!(lint_provider(&p).unwrap(), vec![]);
    }

    #[test]
    fn a_missing_or_empty_condition_is_found() {
        for condition in [Value::Null, json!(""), json!("  ")] {
            let findings =
                lint_provider(&provider(condition, json!("assertion.sub"), json!([]))).unwrap();
            assert_eq!(fields(&findings), ["attributeCondition"]);
            assert_eq!(findings[0].severity, Severity::High);
            assert!(
                findings[0].reason.contains("every token"),
                "{}",
                findings[0].reason
            );
            assert_eq!(findings[0].example, "assertion.sub == 'fedsync:prod'");
        }
        let mut p = tight();
        p.as_object_mut().unwrap().remove("attributeCondition");
        assert_eq!(fields(&lint_provider(&p).unwrap()), ["attributeCondition"]);
    }

    #[test]
    fn a_condition_that_does_not_pin_the_subject_is_found() {
        let p = provider(
            json!("assertion.repository_owner == 'acme'"),
            json!("assertion.sub"),
            json!([]),
        );
        let findings = lint_provider(&p).unwrap();
        assert_eq!(fields(&findings), ["attributeCondition"]);
        assert!(
            findings[0].reason.contains("does not pin the subject"),
            "{}",
            findings[0].reason
        );
    }

    #[test]
    fn broad_constructs_are_found_one_by_one() {
        for (condition, word) in [
            ("assertion.sub.startsWith('repo:acme/')", "startsWith"),
            ("assertion.sub.matches('repo:acme/.*')", ".matches()"),
            ("assertion.sub == 'a' || assertion.sub == 'b'", "||"),
            (
                "assertion.sub == 'a' && assertion.ref != 'refs/heads/x'",
                "!=",
            ),
            ("assertion.sub == 'a' || true", "true"),
            ("true", "true"),
        ] {
            let p = provider(json!(condition), json!("assertion.sub"), json!([]));
            let findings = lint_provider(&p).unwrap();
            assert!(
                findings.iter().any(|f| f.field == "attributeCondition"
                    && f.reason.contains(&format!("uses {word},"))),
                "{condition}: {findings:#?}"
            );
        }
    }

    #[test]
    fn operators_inside_literals_and_compared_true_are_not_broad() {
        let p = provider(
            json!("assertion.sub == 'a||b != true' && assertion.email_verified == true"),
            json!("assertion.sub"),
            json!([]),
        );
        assert_eq!(lint_provider(&p).unwrap(), vec![]);
    }

    #[test]
    fn a_subject_mapped_from_anything_else_is_found() {
        let p = provider(
            json!("assertion.sub == 'fedsync:prod'"),
            json!("assertion.repository_owner"),
            json!([]),
        );
        let findings = lint_provider(&p).unwrap();
        assert_eq!(fields(&findings), ["attributeMapping[\"google.subject\"]"]);
        assert_eq!(findings[0].severity, Severity::High);
        assert!(
            findings[0].reason.contains("share one principal"),
            "{}",
            findings[0].reason
        );

        let p = provider(
            json!("assertion.sub == 'fedsync:prod'"),
            json!("assertion.sub.split(':')[0]"),
            json!([]),
        );
        let findings = lint_provider(&p).unwrap();
        assert_eq!(findings[0].severity, Severity::Medium);
    }

    #[test]
    fn foreign_and_several_audiences_are_found() {
        let p = provider(
            json!("assertion.sub == 'fedsync:prod'"),
            json!("assertion.sub"),
            json!(["sts.amazonaws.com", "api://AzureADTokenExchange", "vault"]),
        );
        let findings = lint_provider(&p).unwrap();
        assert_eq!(
            fields(&findings),
            [
                "oidc.allowedAudiences[0]",
                "oidc.allowedAudiences[1]",
                "oidc.allowedAudiences[2]",
                "oidc.allowedAudiences"
            ]
        );
        assert!(findings[0].reason.contains("AWS"), "{}", findings[0].reason);
        assert!(
            findings[1].reason.contains("Azure"),
            "{}",
            findings[1].reason
        );
        assert!(
            findings[2].reason.contains("Vault"),
            "{}",
            findings[2].reason
        );
        assert!(
            findings[3].reason.contains("3 audiences"),
            "{}",
            findings[3].reason
        );
        assert!(
            findings[3]
                .example
                .contains(&format!("https://iam.googleapis.com/{NAME}"))
        );

        let p = provider(
            json!("assertion.sub == 'fedsync:prod'"),
            json!("assertion.sub"),
            json!(["a", "b"]),
        );
        assert_eq!(
            fields(&lint_provider(&p).unwrap()),
            ["oidc.allowedAudiences"]
        );
    }

    #[test]
    fn bad_provider_shapes_are_errors() {
        for bad in [
            provider(json!(1), json!("assertion.sub"), json!([])),
            provider(json!("assertion.sub == 'a'"), json!(1), json!([])),
            provider(
                json!("assertion.sub == 'a'"),
                json!("assertion.sub"),
                json!({}),
            ),
            json!({"name": NAME, "oidc": "x"}),
            json!({"name": NAME, "attributeMapping": []}),
        ] {
            assert!(lint_provider(&bad).is_err(), "{bad}");
        }
    }

    fn policy(role: &str, member: &str) -> Value {
        json!({"version": 1, "etag": "BwY=", "bindings": [
            {"role": "roles/viewer", "members": ["principalSet://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/*"]},
            {"role": role, "members": [member]},
        ]})
    }

    const POOL: &str =
        "iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/fedsync";

    #[test]
    fn one_subject_passes() {
        let member = format!("principal://{POOL}/subject/fedsync:prod");
        for role in [
            "roles/iam.workloadIdentityUser",
            "roles/secretmanager.secretAccessor",
        ] {
            assert_eq!(lint_iam_policy(&policy(role, &member)).unwrap(), vec![]);
        }
        let body = json!({"policy": policy("roles/iam.workloadIdentityUser", &member)});
        assert_eq!(lint_iam_policy(&body).unwrap(), vec![]);
    }

    #[test]
    fn the_whole_pool_is_found() {
        let member = format!("principalSet://{POOL}/*");
        let findings = lint_iam_policy(&policy("roles/iam.workloadIdentityUser", &member)).unwrap();
        assert_eq!(fields(&findings), ["bindings[1].members[0]"]);
        assert_eq!(findings[0].severity, Severity::High);
        assert!(
            findings[0].reason.contains("whole pool"),
            "{}",
            findings[0].reason
        );
        assert!(
            findings[0]
                .example
                .contains(&format!("principal://{POOL}/subject/"))
        );
    }

    #[test]
    fn attribute_sets_and_groups_are_found() {
        let owner = format!("principalSet://{POOL}/attribute.repository_owner/acme");
        let findings =
            lint_iam_policy(&policy("roles/iam.serviceAccountTokenCreator", &owner)).unwrap();
        assert_eq!(fields(&findings), ["bindings[1].members[0]"]);
        assert_eq!(findings[0].severity, Severity::High);
        assert!(
            findings[0].reason.contains("attribute.repository_owner"),
            "{}",
            findings[0].reason
        );
        assert!(
            findings[0]
                .example
                .contains("subject/repo:acme/secrets:environment:prod"),
            "{}",
            findings[0].example
        );

        let repo = format!("principalSet://{POOL}/attribute.repository/acme/app");
        let findings = lint_iam_policy(&policy("roles/secretmanager.admin", &repo)).unwrap();
        assert_eq!(findings[0].severity, Severity::Medium);
        assert!(
            findings[0].reason.contains("broader than one workload"),
            "{}",
            findings[0].reason
        );

        let group = format!("principalSet://{POOL}/group/deployers");
        let findings = lint_iam_policy(&policy("roles/iam.workloadIdentityUser", &group)).unwrap();
        assert!(
            findings[0].reason.contains("group"),
            "{}",
            findings[0].reason
        );

        let findings =
            lint_iam_policy(&policy("roles/iam.workloadIdentityUser", "allUsers")).unwrap();
        assert!(
            findings[0].reason.contains("anyone"),
            "{}",
            findings[0].reason
        );
    }

    #[test]
    fn bad_policy_shapes_are_errors() {
        for bad in [
            json!({"bindings": {}}),
            json!({"bindings": [{"members": []}]}),
            json!({"bindings": [{"role": "r", "members": [1]}]}),
        ] {
            assert!(lint_iam_policy(&bad).is_err(), "{bad}");
        }
    }
}
