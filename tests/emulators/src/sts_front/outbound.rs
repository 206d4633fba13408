//! STS `GetWebIdentityToken` (AWS outbound identity federation) as AWS answers it: only
//! to a SigV4-signed request from credentials IAM knows (the test registers them with
//! the principal they belong to), with the STS model's constraints on `Audience`,
//! `SigningAlgorithm`, `DurationSeconds` and `Tags`, refused with
//! `OutboundWebIdentityFederationDisabledException` until the account enables the
//! feature, and with `SessionDurationEscalationException` when the token would outlive
//! the calling session. The token is minted by the account's own issuer (discovery and
//! JWKS served like AWS's): `iss` the issuer, `aud` the audiences, `sub` the caller's
//! principal ARN, `iat`, `exp`, `jti`, and AWS's claims (the tags as `request_tags`)
//! under the `https://sts.amazonaws.com/` namespace.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sdk_sts::primitives::DateTime;
use serde_json::{Map, Value, json};

use super::{NAMESPACE, StsError, StsFront, check_operation, duration_seconds, format_time};
use crate::aws::iam::{AuthFailure, Authenticated};
use crate::issuer::{Issuer, unix_now};
use crate::sigv4::{self, Authorization};
use crate::xml;

/// The action.
pub(super) const OPERATION: &str = "GetWebIdentityToken";
/// The namespace claim under which AWS puts its own claims and the request tags.
pub const AWS_CLAIMS: &str = "https://sts.amazonaws.com/";
const ALGORITHMS: &[&str] = &["RS256", "ES384"];
const MAX_AUDIENCES: usize = 10;
const MAX_TAGS: usize = 50;
const DEFAULT_DURATION: u64 = 300;
const INVALID_TOKEN: &str = "The security token included in the request is invalid.";

/// The account's outbound federation: its callers, whether it is enabled, its issuer.
#[derive(Debug, Default)]
pub(super) struct Outbound {
    enabled: bool,
    issuer: Option<Arc<Issuer>>,
    requests: Vec<TokenRequest>,
}

/// One `GetWebIdentityToken` call the front answered.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRequest {
    /// The access key id the request was signed with, if it was.
    pub access_key_id: Option<String>,
    /// The region of the signature's credential scope.
    pub region: Option<String>,
    /// `Ok(the claims of the token issued)`, or the error `<Code>` the front answered.
    pub outcome: Result<Value, String>,
}

impl StsFront {
    /// Lets `credentials` sign calls as the IAM principal `principal_arn` (for
    /// temporary credentials, the role they are a session of): like IAM, the front
    /// then knows the key's secret, its session token and when it expires.
    pub fn register_credentials(&self, credentials: &Credentials, principal_arn: &str) {
        self.state
            .iam
            .register_credentials(credentials, principal_arn);
    }

    /// IAM `EnableOutboundWebIdentityFederation`: the account's issuer is started on first
    /// use (and kept, as AWS keeps an account's issuer URL); its URL, the
    /// `IssuerIdentifier` that external services trust.
    pub async fn enable_outbound_federation(&self) -> String {
        let existing = self.state.config().outbound.issuer.clone();
        let issuer = match existing {
            Some(issuer) => issuer,
            None => Arc::new(Issuer::start_with_p384().await),
        };
        let mut config = self.state.config();
        let issuer = config.outbound.issuer.get_or_insert(issuer).clone();
        config.outbound.enabled = true;
        issuer.url().to_owned()
    }

    /// IAM `DisableOutboundWebIdentityFederation`.
    pub fn disable_outbound_federation(&self) {
        self.state.config().outbound.enabled = false;
    }

    /// The account's issuer, once outbound federation has been enabled.
    pub fn outbound_issuer(&self) -> Option<Arc<Issuer>> {
        self.state.config().outbound.issuer.clone()
    }

    /// Every `GetWebIdentityToken` call answered so far, oldest first.
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.state.config().outbound.requests.clone()
    }
}

/// The parameters of a valid request.
struct Request {
    audiences: Vec<String>,
    algorithm: String,
    duration: u64,
    tags: BTreeMap<String, String>,
}

/// Answers one `GetWebIdentityToken` call and records it: the response document, or
/// the error to send.
pub(super) fn answer(
    front: &super::FrontState,
    request: &sigv4::Request<'_>,
    params: &HashMap<String, String>,
    request_id: &str,
) -> Result<String, StsError> {
    let authorization = request
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(Authorization::parse);
    let outcome = authenticate(front, request).and_then(|who| issue(front, &who, params));
    let signed_by = authorization.as_ref().and_then(|a| a.as_ref().ok());
    front.config().outbound.requests.push(TokenRequest {
        access_key_id: signed_by.map(|a| a.access_key_id.clone()),
        region: signed_by.map(|a| a.region.clone()),
        outcome: outcome
            .as_ref()
            .map(|(claims, _)| claims.clone())
            .map_err(|e| e.code.clone()),
    });
    let (claims, token) = outcome?;
    Ok(success_xml(&token, &claims, request_id))
}

/// SigV4 as AWS checks it (see [`crate::aws::iam::Iam::authenticate`]), refused in the Query protocol's
/// words.
fn authenticate(
    front: &super::FrontState,
    request: &sigv4::Request<'_>,
) -> Result<Authenticated, StsError> {
    front
        .iam
        .authenticate(request, "sts")
        .map_err(|failure| match failure {
            AuthFailure::Missing => StsError::new(
                403,
                "MissingAuthenticationToken",
                "Request is missing Authentication Token",
            ),
            AuthFailure::Incomplete(m) => StsError::new(400, "IncompleteSignature", &m),
            AuthFailure::SignatureMismatch(m) => StsError::new(403, "SignatureDoesNotMatch", &m),
            AuthFailure::UnknownKey => StsError::new(403, "InvalidClientTokenId", INVALID_TOKEN),
            AuthFailure::Expired => StsError::new(
                403,
                "ExpiredToken",
                "The security token included in the request is expired",
            ),
        })
}

/// The checks after authentication, in AWS's order (operation, parameters, the
/// account's feature, the calling session), then the token and its claims.
fn issue(
    front: &super::FrontState,
    who: &Authenticated,
    params: &HashMap<String, String>,
) -> Result<(Value, String), StsError> {
    check_operation(params, OPERATION)?;
    let request = parse_request(params)?;
    let issuer = {
        let config = front.config();
        config
            .outbound
            .issuer
            .clone()
            .filter(|_| config.outbound.enabled)
    };
    let Some(issuer) = issuer else {
        return Err(StsError::new(
            403,
            "OutboundWebIdentityFederationDisabledException",
            "Outbound web identity federation is disabled for this account. Enable it with \
             EnableOutboundWebIdentityFederation.",
        ));
    };
    let now = unix_now();
    let expires = now + request.duration;
    let session_ends = who.caller.expires_at.map(|e| {
        e.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
    });
    if session_ends.is_some_and(|end| expires > end) {
        return Err(StsError::new(
            403,
            "SessionDurationEscalationException",
            "The requested DurationSeconds would extend the token beyond the expiration of \
             the calling session.",
        ));
    }
    let claims = claims(&issuer, who, &request, now, expires);
    let token = match request.algorithm.as_str() {
        "ES384" => issuer
            .p384()
            .expect("the outbound issuer has a P-384 key")
            .sign(&claims),
        _ => issuer.rsa().sign(&claims),
    };
    Ok((claims, token))
}

fn claims(issuer: &Issuer, who: &Authenticated, request: &Request, now: u64, exp: u64) -> Value {
    let principal = &who.caller.principal_arn;
    let account = principal.split(':').nth(4).unwrap_or_default();
    let mut aws = Map::new();
    aws.insert("aws_account".into(), json!(account));
    aws.insert("source_region".into(), json!(who.region));
    if !request.tags.is_empty() {
        aws.insert("request_tags".into(), json!(request.tags));
    }
    let audience = match request.audiences.as_slice() {
        [one] => json!(one),
        many => json!(many),
    };
    json!({
        "iss": issuer.url(),
        "aud": audience,
        "sub": principal,
        "iat": now,
        "exp": exp,
        "jti": uuid::Uuid::new_v4().to_string(),
        AWS_CLAIMS: aws,
    })
}

/// Checks the parameters against the STS model, every violation in one `ValidationError`.
fn parse_request(params: &HashMap<String, String>) -> Result<Request, StsError> {
    let mut violations = Vec::new();
    let audiences = members(params, "Audience.member.");
    if audiences.is_empty() && !params.contains_key("Audience") {
        violations.push(
            "Value null at 'audience' failed to satisfy constraint: Member must not be null"
                .to_owned(),
        );
    } else if !(1..=MAX_AUDIENCES).contains(&audiences.len()) {
        violations.push(format!(
            "Value at 'audience' failed to satisfy constraint: Member must have length between \
             1 and {MAX_AUDIENCES}"
        ));
    }
    for (i, audience) in audiences.iter().enumerate() {
        let member = format!("audience.{}.member", i + 1);
        violations.extend(length(audience, &member, 1, 1000));
    }
    let mut tags = BTreeMap::new();
    let tag_indexes = tag_indexes(params);
    if tag_indexes.len() > MAX_TAGS {
        violations.push(format!(
            "Value at 'tags' failed to satisfy constraint: Member must have length less than \
             or equal to {MAX_TAGS}"
        ));
    }
    for (n, index) in tag_indexes.into_iter().enumerate() {
        let member = format!("tags.{}.member", n + 1);
        let key = params.get(&format!("Tags.member.{index}.Key"));
        let value = params.get(&format!("Tags.member.{index}.Value"));
        let (Some(key), Some(value)) = (key, value) else {
            violations.push(format!(
                "Value null at '{member}.{}' failed to satisfy constraint: Member must not be \
                 null",
                if key.is_none() { "key" } else { "value" }
            ));
            continue;
        };
        violations.extend(length(key, &format!("{member}.key"), 1, 128));
        violations.extend(length(value, &format!("{member}.value"), 0, 256));
        for (what, text) in [("key", key), ("value", value)] {
            if !text.chars().all(is_tag_char) {
                violations.push(format!(
                    "Value '{text}' at '{member}.{what}' failed to satisfy constraint: Member \
                     must satisfy regular expression pattern: [\\p{{L}}\\p{{Z}}\\p{{N}}_.:/=+\\-@]*"
                ));
            }
        }
        tags.insert(key.clone(), value.clone());
    }
    let algorithm = params.get("SigningAlgorithm").cloned();
    match &algorithm {
        None => violations.push(
            "Value null at 'signingAlgorithm' failed to satisfy constraint: Member must not be \
             null"
                .to_owned(),
        ),
        // The model fixes the length at 5; the service then names the two it offers.
        Some(a) => match length(a, "signingAlgorithm", 5, 5) {
            Some(violation) => violations.push(violation),
            None if !ALGORITHMS.contains(&a.as_str()) => violations.push(format!(
                "Value '{a}' at 'signingAlgorithm' failed to satisfy constraint: Member must \
                 be one of RS256, ES384"
            )),
            None => {}
        },
    }
    let duration = duration_seconds(params, 60..=3600, &mut violations)
        .map_or(DEFAULT_DURATION, |seconds| {
            u64::from(seconds.unsigned_abs())
        });
    if !violations.is_empty() {
        return Err(StsError::validation(&violations));
    }
    Ok(Request {
        audiences,
        algorithm: algorithm.unwrap_or_default(),
        duration,
        tags,
    })
}

/// The violation of a length constraint, if any.
fn length(value: &str, member: &str, min: usize, max: usize) -> Option<String> {
    let count = value.chars().count();
    let bound = if count < min {
        format!("greater than or equal to {min}")
    } else if count > max {
        format!("less than or equal to {max}")
    } else {
        return None;
    };
    Some(format!(
        "Value at '{member}' failed to satisfy constraint: Member must have length {bound}"
    ))
}

/// The values of `{prefix}N` in the order of N.
fn members(params: &HashMap<String, String>, prefix: &str) -> Vec<String> {
    let mut indexed: Vec<(u32, &String)> = params
        .iter()
        .filter_map(|(name, value)| Some((name.strip_prefix(prefix)?.parse().ok()?, value)))
        .collect();
    indexed.sort();
    indexed.into_iter().map(|(_, v)| v.clone()).collect()
}

/// The N of every `Tags.member.N.Key` or `.Value`, in order.
fn tag_indexes(params: &HashMap<String, String>) -> Vec<u32> {
    let mut indexes: Vec<u32> = params
        .keys()
        .filter_map(|name| {
            let rest = name.strip_prefix("Tags.member.")?;
            let (index, field) = rest.split_once('.')?;
            matches!(field, "Key" | "Value").then(|| index.parse().ok())?
        })
        .collect();
    indexes.sort_unstable();
    indexes.dedup();
    indexes
}

/// `[\p{L}\p{Z}\p{N}_.:/=+\-@]`.
fn is_tag_char(c: char) -> bool {
    c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c)
}

fn success_xml(token: &str, claims: &Value, request_id: &str) -> String {
    let exp = claims["exp"].as_i64().unwrap_or_default();
    format!(
        "<GetWebIdentityTokenResponse xmlns=\"{NAMESPACE}\">
  <GetWebIdentityTokenResult>
    <WebIdentityToken>{token}</WebIdentityToken>
    <Expiration>{expiration}</Expiration>
  </GetWebIdentityTokenResult>
  <ResponseMetadata>
    <RequestId>{request_id}</RequestId>
  </ResponseMetadata>
</GetWebIdentityTokenResponse>
",
        token = xml::escape(token),
        expiration = format_time(DateTime::from_secs(exp)),
    )
}
