//! An issuer checked the way the clouds check it before they trust one of its
//! tokens: `{iss}/.well-known/openid-configuration` must answer JSON naming the
//! same issuer and a `jwks_uri`; the JWKS there must hold the key the token's
//! `kid` names; and that key must verify the token's signature. A failure says
//! which of these steps failed and what to publish to fix it.

use crate::http::{self, HttpError};
use crate::identity::IdentityToken;
use crate::report::{Failure, FailureClass};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;

/// What a passing check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerChecked {
    pub discovery_url: String,
    pub jwks_uri: String,
    /// The key that verifies the token.
    pub kid: String,
}

/// The discovery document's URL for `issuer`.
pub fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// Checks the issuer of `token` end to end (see the module's documentation).
pub async fn check_issuer(token: &IdentityToken) -> Result<IssuerChecked, Failure> {
    let seen = token.inspect()?;
    let Some(issuer) = seen.text("iss") else {
        return Err(failure("the token has no iss claim").with_likely_cause(
            "the clouds find the issuer's keys through its iss: the identity must sign tokens with an issuer URL",
        ));
    };
    let discovery_url = discovery_url(issuer);
    let discovery = fetch_json(&discovery_url, "discovery document").await?;
    let named = discovery.get("issuer").and_then(Value::as_str);
    if named != Some(issuer) {
        let named = named.map_or_else(|| "no issuer".to_string(), |n| format!("issuer {n:?}"));
        return Err(failure(format!(
            "the discovery document {discovery_url} names {named}, not the token's iss {issuer:?}"
        ))
        .with_likely_cause(
            "the document's issuer must equal the token's iss character for character (scheme, host, path, trailing slash): publish the document for this issuer, or correct the issuer the identity signs with",
        ));
    }
    let Some(jwks_uri) = discovery.get("jwks_uri").and_then(Value::as_str) else {
        return Err(failure(format!(
            "the discovery document {discovery_url} has no jwks_uri"
        ))
        .with_likely_cause("add jwks_uri, the URL of the issuer's JWKS, to the document"));
    };
    let jwks = fetch_json(jwks_uri, "JWKS").await?;
    let Some(kid) = seen.kid.as_deref() else {
        return Err(failure("the token's header names no key (kid)").with_likely_cause(
            "the clouds pick the verifying key by kid: the identity must sign its tokens with a kid that its JWKS lists",
        ));
    };
    let keys = jwks.get("keys").and_then(Value::as_array).ok_or_else(|| {
        failure(format!("the JWKS {jwks_uri} has no keys list")).with_likely_cause(
            "a JWKS is {\"keys\": [...]}: publish the one `fedsync issuer` writes",
        )
    })?;
    let Some(jwk) = keys
        .iter()
        .find(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
    else {
        let held: Vec<String> = keys
            .iter()
            .filter_map(|k| k.get("kid").and_then(Value::as_str))
            .map(|k| format!("{k:?}"))
            .collect();
        let held = if held.is_empty() {
            "no key with a kid".to_string()
        } else {
            held.join(", ")
        };
        return Err(failure(format!(
            "the JWKS {jwks_uri} holds no key {kid:?} (it holds {held})"
        ))
        .with_likely_cause(format!(
            "the key that signs this identity's tokens (kid {kid:?}) is not published, so every cloud refuses them: run `fedsync issuer` again and upload its JWKS (after a rotation, keep the old key listed until its tokens expire)"
        )));
    };
    verify_signature(token, jwk, kid, jwks_uri)?;
    Ok(IssuerChecked {
        discovery_url,
        jwks_uri: jwks_uri.to_string(),
        kid: kid.to_string(),
    })
}

/// Whether the published key `kid` verifies the token's signature (nothing else:
/// times and audiences are each cloud's to check).
fn verify_signature(
    token: &IdentityToken,
    jwk: &Value,
    kid: &str,
    jwks_uri: &str,
) -> Result<(), Failure> {
    let unusable = |why: String| {
        failure(format!(
            "key {kid:?} of the JWKS {jwks_uri} cannot be used: {why}"
        ))
        .with_likely_cause("publish the key as the JWK `fedsync issuer` writes (kty, alg and its public parameters)")
    };
    let jwk: Jwk = serde_json::from_value(jwk.clone())
        .map_err(|e| unusable(crate::excerpt::serde_message(&e.to_string())))?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| unusable(e.to_string()))?;
    let header = jsonwebtoken::decode_header(token.expose())
        .map_err(|_| failure("the token's header cannot be read"))?;
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(token.expose(), &key, &validation)
        .map(|_| ())
        .map_err(|e| {
            failure(format!(
                "key {kid:?} of the JWKS {jwks_uri} does not verify the token's signature ({})",
                e.kind_description()
            ))
            .with_likely_cause(
                "the key published under this kid is not the one that signs the tokens: publish the JWKS of the current signing key (`fedsync issuer`)",
            )
        })
}

/// A short description of why jsonwebtoken refused, never quoting the token.
trait KindDescription {
    fn kind_description(&self) -> &'static str;
}

impl KindDescription for jsonwebtoken::errors::Error {
    fn kind_description(&self) -> &'static str {
        use jsonwebtoken::errors::ErrorKind::*;
        match self.kind() {
            InvalidSignature => "the signature does not match",
            InvalidAlgorithm => "the key is not for the token's algorithm",
            InvalidKeyFormat | InvalidRsaKey(_) | InvalidEcdsaKey => "the key is malformed",
            _ => "the token does not verify",
        }
    }
}

/// `url`'s JSON body; `what` names the document in failures.
async fn fetch_json(url: &str, what: &str) -> Result<Value, Failure> {
    let response = http::client()
        .get(url)
        .send()
        .await
        .map_err(|e| fetch_failure(&e, url, what))?;
    let bytes = response.bytes().await.map_err(|e| {
        failure(format!(
            "the {what} {url} is unreachable (its body was cut short: {e})"
        ))
        .with_likely_cause(PUBLISH)
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        failure(format!(
            "the {what} {url} is not JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
        .with_likely_cause(
            "serve the document itself as JSON at exactly this URL, not a web page or a sign-in page",
        )
    })
}

/// Where the clouds look for an issuer's documents, and how to put them there.
const PUBLISH: &str = "the clouds fetch the discovery document and the JWKS anonymously before trusting a token: host them at exactly these URLs (`fedsync issuer --out DIR` writes them for a signing key) and check they answer from the internet";

fn fetch_failure(e: &HttpError, url: &str, what: &str) -> Failure {
    let detail = match (e.status, &e.transport) {
        (Some(status), _) => format!(
            "the {what} {url} answered HTTP {} instead of the document",
            status.as_u16()
        ),
        (None, Some(t)) if t.contains("JSON") => format!("the {what} {url} is not JSON ({t})"),
        (None, _) => format!("the {what} {url} is unreachable ({})", e.describe()),
    };
    let mut f = failure(detail).with_likely_cause(PUBLISH);
    if e.refused {
        f.class = FailureClass::BadInput;
    }
    f
}

fn failure(message: impl Into<String>) -> Failure {
    Failure::new(FailureClass::Auth, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::SigningKey;
    use axum::Router;
    use axum::routing::get;
    use jsonwebtoken::Algorithm;
    use serde_json::json;
    use std::time::Duration;

    fn key(issuer: &str) -> SigningKey {
        let pem = crate::identity::generated_pem(Algorithm::ES256);
        SigningKey::from_pem(pem.as_bytes(), issuer, "s", Duration::from_secs(300)).unwrap()
    }

    /// An issuer at a fresh address serving the documents `documents` writes from
    /// its URL, its key's JWK and another key's JWK; and a token it signed.
    async fn issuer(
        documents: impl FnOnce(&str, &Value, &Value) -> (Value, Value),
    ) -> IdentityToken {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let signer = key(&url);
        let jwk = serde_json::to_value(signer.public_jwk().await.unwrap()).unwrap();
        let other = serde_json::to_value(key(&url).public_jwk().await.unwrap()).unwrap();
        let (discovery, jwks) = documents(&url, &jwk, &other);
        let router = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || async move { axum::Json(discovery) }),
            )
            .route(
                "/.well-known/jwks.json",
                get(move || async move { axum::Json(jwks) }),
            );
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        signer.sign("a").await.unwrap()
    }

    fn good(url: &str, jwk: &Value) -> (Value, Value) {
        (
            json!({"issuer": url, "jwks_uri": format!("{url}/.well-known/jwks.json")}),
            json!({"keys": [jwk]}),
        )
    }

    #[tokio::test]
    async fn a_published_key_that_verifies_the_token_passes() {
        let token = issuer(|url, jwk, _| good(url, jwk)).await;
        let checked = check_issuer(&token).await.unwrap();
        assert!(checked.jwks_uri.ends_with("/.well-known/jwks.json"));
        assert_eq!(Some(checked.kid), token.claims.kid);
    }

    #[tokio::test]
    async fn each_failing_step_is_named_with_its_fix() {
        let other_issuer = issuer(|url, jwk, _| {
            let (mut d, j) = good(url, jwk);
            d["issuer"] = json!(format!("{url}/"));
            (d, j)
        });
        let kid_missing = issuer(|url, jwk, other| (good(url, jwk).0, json!({"keys": [other]})));
        let wrong_key = issuer(|url, jwk, other| {
            let mut impostor = other.clone();
            impostor["kid"] = jwk["kid"].clone();
            (good(url, jwk).0, json!({"keys": [impostor]}))
        });
        for (token, what, cause) in [
            (
                other_issuer.await,
                "not the token's iss",
                "character for character",
            ),
            (kid_missing.await, "holds no key", "`fedsync issuer`"),
            (wrong_key.await, "does not verify", "not the one that signs"),
        ] {
            let f = check_issuer(&token).await.unwrap_err();
            let (happened, likely) = f.likely_cause();
            assert!(happened.contains(what), "{f}");
            assert!(likely.is_some_and(|l| l.contains(cause)), "{f}");
            assert!(!f.message.contains(token.expose()), "{f}");
        }
    }

    #[tokio::test]
    async fn a_document_that_is_not_json_or_not_there_says_so() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = Router::new().route(
            "/.well-known/openid-configuration",
            get(|| async { "<html>sign in</html>" }),
        );
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        let f = check_issuer(&key(&base).sign("a").await.unwrap())
            .await
            .unwrap_err();
        assert!(f.message.contains("is not JSON"), "{f}");
        let f = check_issuer(&key(&format!("{base}/nothing")).sign("a").await.unwrap())
            .await
            .unwrap_err();
        assert!(f.message.contains("answered HTTP 404"), "{f}");
    }
}
