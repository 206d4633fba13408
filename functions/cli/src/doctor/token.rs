//! The token step: an identity's token as the clouds will read it (header and
//! claims, times in UTC; never the token or its signature), refused when it has
//! expired or does not carry the audience a store asks for, and what to fix
//! when an identity yields no token at all.

use fedsync::config::IdentityConfig;
use fedsync::identity::TokenInspection;
use fedsync::report::Failure;
use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The claims shown first, in this order; any other follows by name.
const LEADING: &[&str] = &["iss", "sub", "aud", "iat", "nbf", "exp"];
/// Claims that are times (NumericDate).
const TIMES: &[&str] = &["iat", "nbf", "exp", "auth_time"];

/// The token's header and claims in one line: `iss "…", sub "…", aud "…",
/// iat 2030-01-01T00:00:00Z, exp … (in 5m), kid "…", alg RS256, then the rest`.
pub fn describe(seen: &TokenInspection) -> String {
    let leading = LEADING
        .iter()
        .filter_map(|name| Some((*name, seen.claims.get(*name)?)));
    let mut parts: Vec<String> = leading
        .map(|(name, value)| format!("{name} {}", shown(seen, name, value)))
        .collect();
    let kid = seen
        .kid
        .as_deref()
        .map_or("(none)".into(), |k| format!("{k:?}"));
    parts.push(format!("kid {kid}"));
    parts.push(format!("alg {}", seen.alg));
    for (name, value) in &seen.claims {
        if !LEADING.contains(&name.as_str()) {
            parts.push(format!("{name} {}", shown(seen, name, value)));
        }
    }
    parts.join(", ")
}

/// One claim's value: a time in UTC, a quoted string, a list of them, or JSON.
fn shown(seen: &TokenInspection, name: &str, value: &Value) -> String {
    if TIMES.contains(&name)
        && let Some(at) = seen.time(name)
    {
        return time(name, at);
    }
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Array(items) if items.iter().all(Value::is_string) => {
            let items: Vec<String> = items
                .iter()
                .filter_map(Value::as_str)
                .map(|s| format!("{s:?}"))
                .collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

/// A time claim in UTC, with how far it is from now for `exp`.
fn time(name: &str, at: i64) -> String {
    let Some(when) = u64::try_from(at)
        .ok()
        .and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s)))
    else {
        return at.to_string();
    };
    let utc = humantime::format_rfc3339_seconds(when).to_string();
    if name != "exp" {
        return utc;
    }
    match when.duration_since(SystemTime::now()) {
        Ok(left) => format!("{utc} (in {})", round(left)),
        Err(past) => format!("{utc} ({} ago)", round(past.duration())),
    }
}

fn round(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(Duration::from_secs(d.as_secs()))
}

/// The token as JSON for machines: its header and every claim.
pub fn to_json(seen: &TokenInspection) -> Value {
    json!({
        "header": {"alg": seen.alg, "kid": seen.kid, "typ": seen.typ},
        "claims": seen.claims,
    })
}

/// Why a token that was obtained will still be refused, with what to fix:
/// it has expired, or it does not carry the audience the store asks for.
pub fn problem(seen: &TokenInspection, audience: &str, users: &str) -> Option<(String, String)> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    if let Some(exp) = seen.time("exp")
        && exp <= now as i64
    {
        return Some((
            format!("the token has expired ({})", time("exp", exp)),
            "every cloud refuses an expired token: a token file the platform no longer refreshes is stale (check that it still projects it), or this host's clock is wrong".into(),
        ));
    }
    let audiences = seen.audiences();
    if !audiences.contains(&audience) {
        return Some((
            format!(
                "the token's aud {:?} does not include {audience:?}, which {users} asks for",
                audiences.join(" ")
            ),
            format!(
                "this identity cannot choose its audience (a token file holds what the platform wrote, a Vault role's client_id is its tokens' aud): have it issue tokens for {audience:?}, or set the `audience` of {users} to one the token carries"
            ),
        ));
    }
    None
}

/// What to check when an identity yields no token: the failure's own likely
/// cause when it names one, else what each kind of identity needs.
pub fn no_token_hint(config: Option<&IdentityConfig>, failure: &Failure) -> String {
    if let (_, Some(cause)) = failure.likely_cause() {
        return cause.to_string();
    }
    match config {
        Some(IdentityConfig::File { .. }) => "the file must hold the platform's current token (a projected service-account token, AWS_WEB_IDENTITY_TOKEN_FILE, AZURE_FEDERATED_TOKEN_FILE): check the path, or the variable naming it, and that the platform mounts the token there".into(),
        Some(IdentityConfig::SigningKey(_)) => "the key must be readable where `key` points: a PEM private key (RSA, or EC P-256) in the variable or file named, or a KMS key ARN the host's credentials may sign with".into(),
        Some(IdentityConfig::GithubActions {}) => "run inside a GitHub Actions job whose workflow grants `permissions: id-token: write`; elsewhere ACTIONS_ID_TOKEN_REQUEST_URL is not set".into(),
        Some(IdentityConfig::GcpMetadata { .. }) => "the metadata server answers only on Google Cloud (Cloud Run, GCE, GKE) or where metadata_host points".into(),
        Some(IdentityConfig::VaultOidc(_)) => "fedsync must be able to log in to Vault, and the OIDC role must exist and allow the entity it logs in as".into(),
        Some(IdentityConfig::AwsOutbound(_)) => "the host's AWS credentials must allow sts:GetWebIdentityToken, and outbound identity federation must be enabled in the account".into(),
        None => "the identity is not in the configuration".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inspection(claims: Value) -> TokenInspection {
        TokenInspection {
            alg: "RS256".into(),
            kid: Some("k1".into()),
            typ: Some("JWT".into()),
            claims: claims.as_object().unwrap().clone(),
        }
    }

    #[test]
    fn claims_read_in_order_with_times_in_utc_and_the_rest_after() {
        let seen = inspection(json!({
            "repository": "acme/app", "exp": 4_102_444_800u64, "iss": "https://i",
            "sub": "fedsync:prod", "aud": ["a", "b"], "iat": 946_684_800,
        }));
        let line = describe(&seen);
        assert!(
            line.starts_with(
                r#"iss "https://i", sub "fedsync:prod", aud ["a", "b"], iat 2000-01-01T00:00:00Z, exp 2100-01-01T00:00:00Z (in "#
            ),
            "{line}"
        );
        assert!(
            line.ends_with(r#"kid "k1", alg RS256, repository "acme/app""#),
            "{line}"
        );
    }

    #[test]
    fn an_expired_token_or_a_missing_audience_is_a_problem() {
        let expired = inspection(json!({"aud": "a", "exp": 946_684_800}));
        let (what, fix) = problem(&expired, "a", "destination \"d\"").unwrap();
        assert!(what.contains("expired") && what.contains(" ago)"), "{what}");
        assert!(fix.contains("stale"), "{fix}");
        let elsewhere = inspection(json!({"aud": "b", "exp": 4_102_444_800u64}));
        let (what, fix) = problem(&elsewhere, "a", "destination \"d\"").unwrap();
        assert_eq!(
            what,
            r#"the token's aud "b" does not include "a", which destination "d" asks for"#
        );
        assert!(fix.contains("`audience` of destination \"d\""), "{fix}");
        assert!(problem(&elsewhere, "b", "destination \"d\"").is_none());
    }
}
