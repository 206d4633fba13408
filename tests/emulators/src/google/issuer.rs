//! The Google accounts issuer: an RSA key that signs Google ID tokens (the metadata
//! server's identity tokens and Pub/Sub push tokens, reference D.6 and D.7), with OpenID
//! discovery and a JWKS served on `127.0.0.1`.
//!
//! Real Google tokens carry `iss: "https://accounts.google.com"`, which is where a strict
//! verifier would look up keys; tests that verify through discovery (a validating AWS STS
//! front, for example) set the tokens' `iss` to this server's own URL with
//! [`GoogleIssuer::set_token_issuer`]. The discovery document always names the server's own
//! URL as `issuer` and `/oauth2/v3/certs` (Google's path) as `jwks_uri`. The JWKS is sent
//! with `Cache-Control: public, max-age=N` as Google does, and keys can be rotated.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use jsonwebtoken::Header;
use serde_json::{Value, json};

use super::auth::service_account_unique_id;
use crate::issuer::{KeyType, SigningKey, unix_now};
use crate::server::Server;

/// The `iss` of real Google ID tokens.
pub const GOOGLE_ACCOUNTS: &str = "https://accounts.google.com";
/// Where the JWKS is served (Google's own path).
pub const JWKS_PATH: &str = "/oauth2/v3/certs";

#[derive(Debug)]
struct Keys {
    token_issuer: String,
    current: SigningKey,
    /// Keys rotated out, still published (Google publishes the previous key for a while).
    previous: Vec<SigningKey>,
    max_age: Duration,
}

/// The signing half of the issuer, shared with the metadata server.
#[derive(Debug)]
pub(crate) struct Signer {
    url: String,
    keys: Mutex<Keys>,
    jwks_fetches: AtomicUsize,
}

impl Signer {
    fn keys(&self) -> MutexGuard<'_, Keys> {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn token_issuer(&self) -> String {
        self.keys().token_issuer.clone()
    }

    pub(crate) fn sign(&self, claims: &Value) -> String {
        self.keys().current.sign(claims)
    }

    fn jwks(&self) -> Value {
        let keys = self.keys();
        let published: Vec<&Value> = std::iter::once(&keys.current)
            .chain(&keys.previous)
            .map(SigningKey::public_jwk)
            .collect();
        json!({ "keys": published })
    }

    /// Claims of a Google ID token for a service account.
    pub(crate) fn id_token_claims(
        &self,
        audience: &str,
        email: &str,
        unique_id: &str,
        include_email: bool,
        email_verified: bool,
        ttl: Duration,
    ) -> Value {
        let now = unix_now();
        let mut claims = json!({
            "aud": audience,
            "azp": unique_id,
            "sub": unique_id,
            "iat": now,
            "exp": now + ttl.as_secs(),
            "iss": self.token_issuer(),
        });
        if include_email {
            claims["email"] = json!(email);
            claims["email_verified"] = json!(email_verified);
        }
        claims
    }
}

/// The issuer, serving discovery and its JWKS on `127.0.0.1`.
#[derive(Debug)]
pub struct GoogleIssuer {
    signer: Arc<Signer>,
    _server: Server,
}

impl GoogleIssuer {
    /// Generates an RSA-2048 key and starts serving; tokens carry
    /// `iss: "https://accounts.google.com"` until [`Self::set_token_issuer`].
    pub async fn start() -> Self {
        let mut signer = None;
        let server = Server::start(|url| {
            let shared = Arc::new(Signer {
                url: url.to_owned(),
                keys: Mutex::new(Keys {
                    token_issuer: GOOGLE_ACCOUNTS.to_owned(),
                    current: SigningKey::generate(KeyType::Rsa),
                    previous: Vec::new(),
                    max_age: Duration::from_secs(3600),
                }),
                jwks_fetches: AtomicUsize::new(0),
            });
            signer = Some(Arc::clone(&shared));
            Router::new()
                .route("/.well-known/openid-configuration", get(discovery))
                .route(JWKS_PATH, get(serve_jwks))
                .with_state(shared)
        })
        .await;
        Self {
            signer: signer.expect("the router was built"),
            _server: server,
        }
    }

    pub(crate) fn signer(&self) -> Arc<Signer> {
        Arc::clone(&self.signer)
    }

    /// The server's base URL, `http://127.0.0.1:PORT`: the discovery document's `issuer`.
    pub fn url(&self) -> &str {
        &self.signer.url
    }

    /// `{url}/oauth2/v3/certs`.
    pub fn jwks_uri(&self) -> String {
        format!("{}{JWKS_PATH}", self.signer.url)
    }

    /// The JWKS as served: the current key first, then rotated-out ones.
    pub fn jwks(&self) -> Value {
        self.signer.jwks()
    }

    /// The `iss` the issued tokens carry.
    pub fn token_issuer(&self) -> String {
        self.signer.token_issuer()
    }

    /// Sets the `iss` of tokens issued from now on (for example [`Self::url`], so that a
    /// verifier can discover the keys).
    pub fn set_token_issuer(&self, iss: &str) {
        self.signer.keys().token_issuer = iss.to_owned();
    }

    /// The `max-age` of the JWKS `Cache-Control` header (default one hour).
    pub fn set_jwks_max_age(&self, max_age: Duration) {
        self.signer.keys().max_age = max_age;
    }

    /// How many times the JWKS has been fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.signer.jwks_fetches.load(Ordering::SeqCst)
    }

    /// The current signing key (a clone: sign with it to forge headers).
    pub fn key(&self) -> SigningKey {
        self.signer.keys().current.clone()
    }

    /// Replaces the signing key with a fresh one; the old key stays in the JWKS.
    pub fn rotate_key(&self) {
        let mut keys = self.signer.keys();
        let old = std::mem::replace(&mut keys.current, SigningKey::generate(KeyType::Rsa));
        keys.previous.insert(0, old);
    }

    /// Drops the rotated-out keys from the JWKS.
    pub fn retire_old_keys(&self) {
        self.signer.keys().previous.clear();
    }

    /// Signs `claims` as Google does: header `{"alg":"RS256","kid":<current>,"typ":"JWT"}`.
    pub fn sign(&self, claims: &Value) -> String {
        self.signer.sign(claims)
    }

    /// Signs `claims` with the current key under an arbitrary header (wrong `kid`, `alg`...).
    pub fn sign_with_header(&self, header: &Header, claims: &Value) -> String {
        self.signer.keys().current.sign_with_header(header, claims)
    }

    /// The claims of a Pub/Sub push token (D.6): `aud`, `azp` and `sub` (the service
    /// account's unique ID), `email`, `email_verified`, `iat`, `exp` (`iat + ttl`), `iss`.
    pub fn push_claims(
        &self,
        audience: &str,
        email: &str,
        email_verified: bool,
        ttl: Duration,
    ) -> Value {
        let unique_id = service_account_unique_id(email);
        self.signer
            .id_token_claims(audience, email, &unique_id, true, email_verified, ttl)
    }

    /// Exactly what Pub/Sub push sends in `Authorization: Bearer`: [`Self::push_claims`]
    /// signed RS256 under the current `kid` with `typ: JWT`.
    pub fn push_token(
        &self,
        audience: &str,
        email: &str,
        email_verified: bool,
        ttl: Duration,
    ) -> String {
        self.sign(&self.push_claims(audience, email, email_verified, ttl))
    }
}

async fn discovery(State(signer): State<Arc<Signer>>) -> axum::Json<Value> {
    axum::Json(json!({
        "issuer": signer.url,
        "jwks_uri": format!("{}{JWKS_PATH}", signer.url),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": ["aud", "azp", "email", "email_verified", "exp", "iat", "iss", "sub"],
    }))
}

async fn serve_jwks(State(signer): State<Arc<Signer>>) -> impl IntoResponse {
    signer.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let max_age = signer.keys().max_age.as_secs();
    (
        [(
            header::CACHE_CONTROL,
            format!("public, max-age={max_age}, must-revalidate, no-transform"),
        )],
        axum::Json(signer.jwks()),
    )
}
