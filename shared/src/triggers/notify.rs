//! fedsync's own change notice (`POST /v1/notify`, `{"source", "secret",
//! "version"?, "kind"?}`), for any system that can POST one. Authenticated by
//! an HMAC-SHA256 signature over `{timestamp}.{body}` (`X-Fedsync-Timestamp`,
//! `X-Fedsync-Signature: sha256=<hex>`; a 5-minute window, and the same request
//! twice is a no-op), or by a bearer JWT from a trusted issuer (found through its
//! discovery document) with an exact audience and an allowed subject.

use super::malformed;
use crate::config::{Config, NotifyConfig, TrustedIssuer};
use crate::event::{ChangeKind, SecretChange};
use crate::http;
use crate::jwks::{JwksVerifier, Refused};
use crate::reference::Reference;
use crate::report::{Failure, FailureClass};
use hmac::{Hmac, Mac};
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use sha2::Sha256;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::OnceCell;

/// How far a signed request's timestamp may be from now.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(300);
pub const TIMESTAMP_HEADER: &str = "x-fedsync-timestamp";
pub const SIGNATURE_HEADER: &str = "x-fedsync-signature";

/// A request the notice route accepted.
#[derive(Debug)]
pub enum Accepted<'a> {
    /// A request to handle. A signed one is held as in flight by its claim
    /// until the caller says how it ended.
    New(Option<Claim<'a>>),
    /// A signed request already handled within the window: do nothing again.
    Replay,
    /// The same signed request is being handled right now: the sender should
    /// try again shortly (its outcome is not known yet).
    InFlight,
}

/// Whether a signature was handled to the end, or is being handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    InFlight,
    Done,
}

/// A signed request being handled. [`Claim::done`] records it as handled, so
/// that a resend is a replay; dropped without that (the sync asked for a retry,
/// or the request was abandoned), it is forgotten, so that the sender's retry
/// of the identical request is handled anew rather than taken for a replay.
#[derive(Debug)]
pub struct Claim<'a> {
    seen: &'a Mutex<Replays>,
    signature: Vec<u8>,
    done: bool,
}

impl Claim<'_> {
    pub fn done(mut self) {
        self.done = true;
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut replays = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if self.done {
            if let Some(entry) = replays.seen.get_mut(&self.signature) {
                entry.0 = Seen::Done;
            }
        } else {
            replays.seen.remove(&self.signature);
        }
    }
}

/// The signatures seen within the window, how far each got and when it stops
/// mattering. `expiry` lists them in the order they were claimed, which is the
/// order they expire in (each lives the same time), so that forgetting the
/// expired ones costs each request only what has expired since the last.
#[derive(Debug, Default)]
struct Replays {
    seen: HashMap<Vec<u8>, (Seen, Instant)>,
    expiry: VecDeque<(Instant, Vec<u8>)>,
}

impl Replays {
    fn forget_expired(&mut self, now: Instant) {
        while self.expiry.front().is_some_and(|(until, _)| *until <= now) {
            let Some((_, signature)) = self.expiry.pop_front() else {
                break;
            };
            // Kept if it was claimed again since (forgotten, then seen anew).
            if self
                .seen
                .get(&signature)
                .is_some_and(|(_, until)| *until <= now)
            {
                self.seen.remove(&signature);
            }
        }
    }

    fn claim(&mut self, signature: Vec<u8>, until: Instant) {
        self.seen.insert(signature.clone(), (Seen::InFlight, until));
        self.expiry.push_back((until, signature));
    }
}

struct Issuer {
    trust: TrustedIssuer,
    verifier: OnceCell<JwksVerifier>,
}

/// Authenticates notices.
pub struct NotifyAuth {
    hmac_key: Option<Vec<u8>>,
    issuers: Vec<Issuer>,
    seen: Mutex<Replays>,
}

#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
}

#[derive(Deserialize)]
struct Discovery {
    jwks_uri: String,
}

impl NotifyAuth {
    pub fn new(config: &NotifyConfig) -> Result<Self, Failure> {
        let hmac_key = match &config.hmac_secret {
            None => None,
            Some(secret) => {
                let key = Reference::parse(secret)
                    .and_then(|r| r.read())
                    .map_err(|e| {
                        Failure::new(
                            FailureClass::BadInput,
                            format!("triggers.notify.hmac_secret: {e}"),
                        )
                    })?;
                let key = key.trim().as_bytes().to_vec();
                if key.len() < 32 {
                    return Err(Failure::new(
                        FailureClass::BadInput,
                        "triggers.notify.hmac_secret: the secret must be at least 32 bytes",
                    ));
                }
                Some(key)
            }
        };
        let issuers = config
            .issuers
            .iter()
            .map(|t| Issuer {
                trust: t.clone(),
                verifier: OnceCell::new(),
            })
            .collect();
        Ok(NotifyAuth {
            hmac_key,
            issuers,
            seen: Mutex::default(),
        })
    }

    /// Checks a notice: its signature headers, or its bearer token.
    pub async fn verify(
        &self,
        authorization: Option<&str>,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<Accepted<'_>, Refused> {
        if let (Some(key), Some(signature)) = (&self.hmac_key, signature) {
            return self.verify_signature(key, timestamp, signature, body);
        }
        if authorization.is_some() && !self.issuers.is_empty() {
            return self
                .verify_token(authorization)
                .await
                .map(|()| Accepted::New(None));
        }
        Err(Refused(
            "neither a signature nor a bearer token this receiver accepts".into(),
        ))
    }

    fn verify_signature(
        &self,
        key: &[u8],
        timestamp: Option<&str>,
        signature: &str,
        body: &[u8],
    ) -> Result<Accepted<'_>, Refused> {
        let timestamp =
            timestamp.ok_or_else(|| Refused(format!("no {TIMESTAMP_HEADER} header")))?;
        let at: u64 = timestamp
            .parse()
            .map_err(|_| Refused("the timestamp is not Unix seconds".into()))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        if now.abs_diff(at) > REPLAY_WINDOW.as_secs() {
            return Err(Refused(
                "the timestamp is outside the 5-minute window".into(),
            ));
        }
        let given = signature
            .strip_prefix("sha256=")
            .and_then(|h| hex::decode(h).ok())
            .ok_or_else(|| Refused("the signature is not sha256=<hex>".into()))?;
        // Constant-time comparison.
        mac(key, timestamp, body)
            .map_err(|_| Refused("unusable key".into()))?
            .verify_slice(&given)
            .map_err(|_| Refused("the signature does not match".into()))?;
        let mut replays = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        replays.forget_expired(now);
        match replays.seen.get(&given) {
            Some((Seen::Done, _)) => return Ok(Accepted::Replay),
            Some((Seen::InFlight, _)) => return Ok(Accepted::InFlight),
            None => {}
        }
        replays.claim(given.clone(), now + 2 * REPLAY_WINDOW);
        Ok(Accepted::New(Some(Claim {
            seen: &self.seen,
            signature: given,
            done: false,
        })))
    }

    async fn verify_token(&self, authorization: Option<&str>) -> Result<(), Refused> {
        let token = crate::jwks::bearer(authorization)?;
        let unverified =
            jsonwebtoken::dangerous::insecure_decode_claims::<serde_json::Value>(token)
                .map_err(|_| Refused("not a JWT".into()))?;
        let iss = unverified
            .get("iss")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        // Only a configured issuer is ever contacted.
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.trust.issuer == iss)
            .ok_or_else(|| {
                Refused(format!(
                    "issuer {} is not trusted",
                    crate::excerpt::quote(iss)
                ))
            })?;
        let verifier = issuer
            .verifier
            .get_or_try_init(|| async {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    iss.trim_end_matches('/')
                );
                let response = http::client().get(url).send().await?;
                let discovery: Discovery = http::json(response).await?;
                Ok(JwksVerifier::new(
                    &discovery.jwks_uri,
                    &[Algorithm::RS256, Algorithm::ES256],
                ))
            })
            .await
            .map_err(|e: http::HttpError| {
                Refused(format!(
                    "the issuer's discovery document is unreachable ({:?})",
                    e.status
                ))
            })?;
        let claims: Claims = verifier
            .verify(
                token,
                std::slice::from_ref(&issuer.trust.issuer),
                &issuer.trust.audience,
            )
            .await?;
        let sub = claims.sub.unwrap_or_default();
        if !issuer.trust.subjects.contains(&sub) {
            return Err(Refused(format!(
                "subject {} is not allowed to send notices",
                crate::excerpt::quote(&sub)
            )));
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Notice {
    source: String,
    secret: String,
    version: Option<String>,
    kind: Option<String>,
}

/// The HMAC of a notice: `{timestamp}.{body}` under `key`.
fn mac(
    key: &[u8],
    timestamp: &str,
    body: &[u8],
) -> Result<Hmac<Sha256>, hmac::digest::InvalidLength> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key)?;
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(mac)
}

/// `X-Fedsync-Signature` of a notice, as its sender computes it.
pub fn sign(key: &[u8], timestamp: &str, body: &[u8]) -> Result<String, Failure> {
    let mac = mac(key, timestamp, body)
        .map_err(|_| Failure::new(FailureClass::BadInput, "the notice key is unusable"))?;
    Ok(format!(
        "sha256={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

/// Syncs the change of a request accepted as new, then settles its claim: the
/// request is recorded as handled unless the sync asks for a retry, in which
/// case it is forgotten, so that the sender's identical resend is handled.
pub async fn sync_claimed(
    engine: &crate::sync::Engine,
    claim: Option<Claim<'_>>,
    parsed: Result<Option<SecretChange>, Failure>,
) -> super::Handled {
    let handled = super::handle(engine, parsed).await;
    if let Some(claim) = claim.filter(|_| !handled.needs_retry()) {
        claim.done();
    }
    handled
}

/// Parses a notice's body; the error says what is wrong with it.
pub fn parse(body: &[u8], config: &Config) -> Result<SecretChange, Failure> {
    let notice: Notice = serde_json::from_slice(body).map_err(|e| {
        malformed(format!(
            "expected {{\"source\", \"secret\", \"version\"?, \"kind\"?}} ({})",
            crate::excerpt::serde_message(&e.to_string())
        ))
    })?;
    if !config.sources.contains_key(&notice.source) {
        return Err(malformed(format!(
            "unknown source {}",
            crate::excerpt::quote(&notice.source)
        )));
    }
    if notice.secret.is_empty() {
        return Err(malformed("\"secret\" is empty"));
    }
    let kind = match notice.kind.as_deref() {
        None | Some("upsert") => ChangeKind::Upsert,
        Some("delete") => ChangeKind::Delete,
        Some(other) => {
            return Err(malformed(format!(
                "kind {} is neither \"upsert\" nor \"delete\"",
                crate::excerpt::quote(other)
            )));
        }
    };
    Ok(SecretChange {
        source: notice.source,
        secret: notice.secret,
        version: notice.version,
        kind,
        observed_at: SystemTime::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> NotifyAuth {
        NotifyAuth {
            hmac_key: Some(vec![7u8; 32]),
            issuers: vec![],
            seen: Mutex::default(),
        }
    }

    fn sign(key: &[u8], timestamp: &str, body: &[u8]) -> String {
        super::sign(key, timestamp, body).unwrap()
    }

    fn now() -> String {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            .to_string()
    }

    #[tokio::test]
    async fn a_signed_notice_handled_to_the_end_is_then_a_replay() {
        let (a, ts, body) = (auth(), now(), br#"{"source":"main","secret":"s"}"#);
        let sig = sign(&[7u8; 32], &ts, body);
        let Ok(Accepted::New(Some(claim))) = a.verify(None, Some(&ts), Some(&sig), body).await
        else {
            panic!("a new signed notice is claimed")
        };
        assert!(matches!(
            a.verify(None, Some(&ts), Some(&sig), body).await,
            Ok(Accepted::InFlight)
        ));
        claim.done();
        assert!(matches!(
            a.verify(None, Some(&ts), Some(&sig), body).await,
            Ok(Accepted::Replay)
        ));
    }

    #[test]
    fn expired_signatures_are_forgotten_and_a_claim_made_again_is_kept() {
        let start = Instant::now();
        let later = |s: u64| start + std::time::Duration::from_secs(s);
        let mut replays = Replays::default();
        replays.claim(b"first".to_vec(), later(10));
        replays.claim(b"second".to_vec(), later(20));
        // "first" is forgotten (a retry), then claimed again, living longer.
        replays.seen.remove(b"first".as_slice());
        replays.claim(b"first".to_vec(), later(30));
        replays.forget_expired(later(10));
        assert!(
            replays.seen.contains_key(b"first".as_slice()),
            "claimed again"
        );
        replays.forget_expired(later(20));
        assert!(!replays.seen.contains_key(b"second".as_slice()));
        assert!(replays.seen.contains_key(b"first".as_slice()));
        replays.forget_expired(later(30));
        assert!(replays.seen.is_empty() && replays.expiry.is_empty());
    }

    #[tokio::test]
    async fn a_signed_notice_that_needs_a_retry_is_handled_again_when_resent() {
        let (a, ts, body) = (auth(), now(), br#"{"source":"main","secret":"s"}"#);
        let sig = sign(&[7u8; 32], &ts, body);
        let first = a.verify(None, Some(&ts), Some(&sig), body).await;
        assert!(matches!(first, Ok(Accepted::New(Some(_)))));
        // The sync asked for a retry: the claim is dropped, not marked done.
        drop(first);
        assert!(matches!(
            a.verify(None, Some(&ts), Some(&sig), body).await,
            Ok(Accepted::New(Some(_)))
        ));
    }

    #[tokio::test]
    async fn forged_stale_and_tampered_notices_are_refused() {
        let (a, ts, body) = (auth(), now(), br#"{"source":"main","secret":"s"}"#);
        let forged = sign(&[8u8; 32], &ts, body);
        assert!(
            a.verify(None, Some(&ts), Some(&forged), body)
                .await
                .is_err()
        );
        let old = (SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            - 301)
            .to_string();
        assert!(
            a.verify(None, Some(&old), Some(&sign(&[7u8; 32], &old, body)), body)
                .await
                .unwrap_err()
                .0
                .contains("window")
        );
        let sig = sign(&[7u8; 32], &ts, body);
        assert!(
            a.verify(
                None,
                Some(&ts),
                Some(&sig),
                br#"{"source":"main","secret":"t"}"#
            )
            .await
            .is_err()
        );
        assert!(a.verify(None, None, None, body).await.is_err());
    }

    #[test]
    fn refusals_never_repeat_a_value_of_the_notice() {
        let config =
            Config::parse("[sources.main]\nkind = \"aws-secrets-manager\"\n", "t").unwrap();
        let pasted = "pasted-secret-0123456789-abcdefghijklmnopqrstuvwxyz";
        for body in [
            serde_json::json!(pasted),
            serde_json::json!({"source": pasted, "secret": "s"}),
            serde_json::json!({"source": "main", "secret": "s", "kind": pasted}),
            serde_json::json!({"source": "main", "secret": "s", pasted: 1}),
        ] {
            let err = parse(body.to_string().as_bytes(), &config).unwrap_err();
            assert!(!err.message.contains(&pasted[..40]), "{}", err.message);
        }
    }
}
