//! Verifying a JWT against an issuer's published keys: the JWKS is fetched once,
//! refetched when a token names an unknown `kid` (at most every few seconds, so
//! forged kids cannot hammer the issuer) and at least hourly, and every check is
//! exact: signature (only the algorithms the caller names, never HMAC), issuer,
//! audience, expiry and not-before.

use crate::http::{self, HttpError};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::de::DeserializeOwned;
use std::time::{Duration, Instant};
use tokio::sync::RwLock;

/// Keys are refetched this often, so that keys the issuer withdrew stop being trusted.
const MAX_KEY_AGE: Duration = Duration::from_secs(3600);
/// How soon an unknown `kid` may trigger another fetch.
const REFETCH_AFTER: Duration = Duration::from_secs(5);
/// Clock skew tolerated on `exp`/`nbf`.
const LEEWAY_SECONDS: u64 = 30;

/// Why a token was refused (shown in logs; never contains the token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer(authorization: Option<&str>) -> Result<&str, Refused> {
    let value = authorization.ok_or_else(|| Refused("no bearer token".into()))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| Refused("no bearer token".into()))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(Refused("no bearer token".into()));
    }
    Ok(token.trim())
}

/// Keys of one issuer, from its JWKS URL.
pub struct JwksVerifier {
    jwks_url: String,
    algorithms: &'static [Algorithm],
    keys: RwLock<Keys>,
}

/// The keys last fetched, when, and why the last fetch failed (if it did).
struct Keys {
    set: JwkSet,
    fetched_at: Option<Instant>,
    failed: Option<String>,
}

impl Keys {
    /// The refusal for a `kid` these keys do not hold: with the fetch failure, if any.
    fn missing(&self, kid: &str) -> Refused {
        match &self.failed {
            Some(why) => Refused(format!(
                "no key {kid:?}: the issuer's JWKS cannot be fetched ({why})"
            )),
            None => Refused(format!("no key {kid:?} in the issuer's JWKS")),
        }
    }
}

impl JwksVerifier {
    /// A verifier accepting tokens signed with one of `algorithms` (RS256 and ES256 at most).
    pub fn new(jwks_url: &str, algorithms: &'static [Algorithm]) -> Self {
        JwksVerifier {
            jwks_url: jwks_url.to_string(),
            algorithms,
            keys: RwLock::new(Keys {
                set: JwkSet { keys: vec![] },
                fetched_at: None,
                failed: None,
            }),
        }
    }

    /// Verifies `token` and returns its claims: signed by a key of the JWKS,
    /// `iss` one of `issuers`, `aud` exactly `audience`, not expired.
    pub async fn verify<C: DeserializeOwned>(
        &self,
        token: &str,
        issuers: &[String],
        audience: &str,
    ) -> Result<C, Refused> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| Refused("not a JWT".into()))?;
        if !self.algorithms.contains(&header.alg)
            || !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256)
        {
            return Err(Refused(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| Refused("the token names no key (kid)".into()))?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(issuers);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        jsonwebtoken::decode::<C>(token, &key, &validation)
            .map(|d| d.claims)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind::*;
                Refused(match e.kind() {
                    ExpiredSignature => "the token has expired".into(),
                    ImmatureSignature => "the token is not valid yet".into(),
                    InvalidAudience => format!("the token's audience is not {audience:?}"),
                    InvalidIssuer => format!("the token's issuer is not one of {issuers:?}"),
                    InvalidSignature => "the signature does not verify".into(),
                    MissingRequiredClaim(c) => format!("the token has no {c} claim"),
                    _ => format!("the token is invalid ({e})"),
                })
            })
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, Refused> {
        let find = |set: &JwkSet| {
            set.find(kid)
                .and_then(|jwk| DecodingKey::from_jwk(jwk).ok())
        };
        let fresh = |keys: &Keys| keys.fetched_at.is_some_and(|at| at.elapsed() < MAX_KEY_AGE);
        {
            let keys = self.keys.read().await;
            if let Some(key) = find(&keys.set).filter(|_| fresh(&keys)) {
                return Ok(key);
            }
            if keys
                .fetched_at
                .is_some_and(|at| at.elapsed() < REFETCH_AFTER)
            {
                return Err(keys.missing(kid));
            }
        }
        let mut keys = self.keys.write().await;
        if let Some(key) = find(&keys.set).filter(|_| fresh(&keys)) {
            return Ok(key);
        }
        if keys
            .fetched_at
            .is_none_or(|at| at.elapsed() >= REFETCH_AFTER)
        {
            keys.fetched_at = Some(Instant::now());
            match self.fetch().await {
                Ok(set) => {
                    keys.set = set;
                    keys.failed = None;
                }
                Err(e) => {
                    let why = e.describe();
                    tracing::warn!(url = %self.jwks_url, error = %why, "cannot fetch the JWKS");
                    keys.failed = Some(why);
                }
            }
        }
        find(&keys.set).ok_or_else(|| keys.missing(kid))
    }

    async fn fetch(&self) -> Result<JwkSet, HttpError> {
        let response = http::client().get(&self.jwks_url).send().await?;
        http::json(response).await
    }
}
