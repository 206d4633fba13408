//! A test OpenID Connect issuer: signing keys generated at run time (RSA-2048 and EC P-256,
//! and EC P-384 where an issuer signs ES384 too),
//! OIDC discovery and a JWKS served over HTTP on `127.0.0.1`, and token minting for tests.
//!
//! Each JWK's `kid` is its RFC 7638 thumbprint (SHA-256, base64url without padding), the
//! same rule the library under test uses, so a token it signs with one of these private
//! keys names a key this JWKS serves.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair,
    EcdsaSigningAlgorithm, KeyPair,
};
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::server::Server;

/// The kind of a [`SigningKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// RSA-2048, signing RS256.
    Rsa,
    /// EC P-256, signing ES256.
    Ec,
    /// EC P-384, signing ES384.
    EcP384,
}

/// A private signing key with its public JWK.
#[derive(Debug, Clone)]
pub struct SigningKey {
    key_type: KeyType,
    private_key_pem: String,
    public_jwk: Value,
    kid: String,
}

impl SigningKey {
    /// Generates a fresh key of the given type.
    pub fn generate(key_type: KeyType) -> Self {
        let (pkcs8_der, public_jwk) = match key_type {
            KeyType::Rsa => {
                let pair = aws_lc_rs::rsa::KeyPair::generate(KeySize::Rsa2048)
                    .expect("generate an RSA-2048 key");
                let public = pair.public_key();
                let jwk = json!({
                    "kty": "RSA",
                    "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
                    "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
                });
                let der = pair.as_der().expect("encode an RSA key as PKCS#8");
                (der.as_ref().to_vec(), jwk)
            }
            KeyType::Ec => ec_key(&ECDSA_P256_SHA256_FIXED_SIGNING, "P-256", 32),
            KeyType::EcP384 => ec_key(&ECDSA_P384_SHA384_FIXED_SIGNING, "P-384", 48),
        };
        let kid = jwk_thumbprint(&public_jwk);
        let mut public_jwk = public_jwk;
        let fields = public_jwk.as_object_mut().expect("a JWK is an object");
        fields.insert("kid".to_owned(), json!(kid));
        fields.insert("use".to_owned(), json!("sig"));
        fields.insert("alg".to_owned(), json!(algorithm_name(key_type)));
        Self {
            key_type,
            private_key_pem: pem("PRIVATE KEY", &pkcs8_der),
            public_jwk,
            kid,
        }
    }

    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// `RS256` for RSA, `ES256` for EC P-256, `ES384` for EC P-384.
    pub fn algorithm(&self) -> Algorithm {
        match self.key_type {
            KeyType::Rsa => Algorithm::RS256,
            KeyType::Ec => Algorithm::ES256,
            KeyType::EcP384 => Algorithm::ES384,
        }
    }

    /// The private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), as a user would put
    /// it in `FEDSYNC_SIGNING_KEY`.
    pub fn private_key_pem(&self) -> &str {
        &self.private_key_pem
    }

    /// The public key as a JWK with `kid`, `use` and `alg`.
    pub fn public_jwk(&self) -> &Value {
        &self.public_jwk
    }

    /// The RFC 7638 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs `claims` with a header of `alg` and this key's `kid` (`typ` JWT).
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.algorithm());
        header.kid = Some(self.kid.clone());
        self.sign_with_header(&header, claims)
    }

    /// Signs `claims` under an arbitrary header (for tokens that lie about `kid` or `alg`).
    pub fn sign_with_header(&self, header: &Header, claims: &Value) -> String {
        let pem = self.private_key_pem.as_bytes();
        let key = match self.key_type {
            KeyType::Rsa => EncodingKey::from_rsa_pem(pem),
            KeyType::Ec | KeyType::EcP384 => EncodingKey::from_ec_pem(pem),
        }
        .expect("jsonwebtoken reads the PKCS#8 PEM it was given");
        jsonwebtoken::encode(header, claims, &key).expect("sign a token")
    }
}

/// A fresh EC key of `algorithm`'s curve, as PKCS#8 DER and its public JWK.
fn ec_key(algorithm: &'static EcdsaSigningAlgorithm, crv: &str, size: usize) -> (Vec<u8>, Value) {
    let pair = EcdsaKeyPair::generate(algorithm).expect("generate an EC key");
    // An uncompressed SEC1 point: 0x04 || x || y, each coordinate `size` bytes.
    let point = pair.public_key().as_ref();
    assert_eq!(point.len(), 1 + 2 * size, "uncompressed {crv} point");
    let jwk = json!({
        "kty": "EC",
        "crv": crv,
        "x": URL_SAFE_NO_PAD.encode(&point[1..=size]),
        "y": URL_SAFE_NO_PAD.encode(&point[size + 1..]),
    });
    let der = pair.to_pkcs8v1().expect("encode an EC key as PKCS#8");
    (der.as_ref().to_vec(), jwk)
}

#[derive(Debug)]
struct IssuerState {
    url: String,
    jwks: Value,
    algorithms: Vec<&'static str>,
}

/// An OpenID issuer serving discovery and a JWKS with one RSA and one EC key (and a
/// P-384 key when started with [`Issuer::start_with_p384`]).
#[derive(Debug)]
pub struct Issuer {
    url: String,
    rsa: SigningKey,
    ec: SigningKey,
    p384: Option<SigningKey>,
    _server: Server,
}

impl Issuer {
    /// Generates the keys and starts serving.
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// An issuer that also signs ES384 with a P-384 key, as AWS's outbound issuer does.
    pub async fn start_with_p384() -> Self {
        Self::start_with(Some(SigningKey::generate(KeyType::EcP384))).await
    }

    async fn start_with(p384: Option<SigningKey>) -> Self {
        let rsa = SigningKey::generate(KeyType::Rsa);
        let ec = SigningKey::generate(KeyType::Ec);
        let jwks = jwks([Some(&rsa), Some(&ec), p384.as_ref()]);
        let mut algorithms = vec!["RS256", "ES256"];
        if p384.is_some() {
            algorithms.push("ES384");
        }
        let server = Server::start(|url| {
            let state = Arc::new(IssuerState {
                url: url.to_owned(),
                jwks,
                algorithms,
            });
            Router::new()
                .route("/.well-known/openid-configuration", get(discovery))
                .route("/.well-known/jwks.json", get(serve_jwks))
                .with_state(state)
        })
        .await;
        Self {
            url: server.base_url(),
            rsa,
            ec,
            p384,
            _server: server,
        }
    }

    /// The issuer identifier (`iss`): its own base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where the JWKS is served.
    pub fn jwks_uri(&self) -> String {
        format!("{}/.well-known/jwks.json", self.url)
    }

    /// The JWKS this issuer serves.
    pub fn jwks(&self) -> Value {
        jwks([Some(&self.rsa), Some(&self.ec), self.p384.as_ref()])
    }

    /// The RSA-2048 key (RS256).
    pub fn rsa(&self) -> &SigningKey {
        &self.rsa
    }

    /// The EC P-256 key (ES256).
    pub fn ec(&self) -> &SigningKey {
        &self.ec
    }

    /// The EC P-384 key (ES384), when started with [`Issuer::start_with_p384`].
    pub fn p384(&self) -> Option<&SigningKey> {
        self.p384.as_ref()
    }

    /// Claims from this issuer for `subject` and `audience`, issued now and valid for `ttl`.
    pub fn claims(&self, subject: &str, audience: &str, ttl: Duration) -> Value {
        let now = unix_now();
        json!({
            "iss": self.url,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + ttl.as_secs(),
            "jti": uuid::Uuid::new_v4().to_string(),
        })
    }

    /// A token with arbitrary `claims`, signed with the RSA key.
    pub fn mint(&self, claims: &Value) -> String {
        self.rsa.sign(claims)
    }
}

async fn discovery(State(state): State<Arc<IssuerState>>) -> axum::Json<Value> {
    axum::Json(json!({
        "issuer": state.url,
        "jwks_uri": format!("{}/.well-known/jwks.json", state.url),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": state.algorithms,
        "claims_supported": ["iss", "sub", "aud", "iat", "nbf", "exp", "jti"],
    }))
}

/// The JWKS of the keys given.
fn jwks<'a>(keys: impl IntoIterator<Item = Option<&'a SigningKey>>) -> Value {
    let keys: Vec<&Value> = keys
        .into_iter()
        .flatten()
        .map(SigningKey::public_jwk)
        .collect();
    json!({ "keys": keys })
}

async fn serve_jwks(State(state): State<Arc<IssuerState>>) -> axum::Json<Value> {
    axum::Json(state.jwks.clone())
}

/// The RFC 7638 thumbprint of a public JWK: SHA-256 over the JSON object of its required
/// members in lexicographic order without whitespace, base64url without padding.
///
/// # Panics
/// If the JWK is neither an RSA nor an EC key with its required members.
pub fn jwk_thumbprint(jwk: &Value) -> String {
    let member = |name: &str| {
        let value = jwk[name]
            .as_str()
            .unwrap_or_else(|| panic!("JWK member `{name}` is missing: {jwk}"));
        serde_json::to_string(value).expect("a string serializes")
    };
    let canonical = match jwk["kty"].as_str() {
        Some("RSA") => format!(r#"{{"e":{},"kty":"RSA","n":{}}}"#, member("e"), member("n")),
        Some("EC") => format!(
            r#"{{"crv":{},"kty":"EC","x":{},"y":{}}}"#,
            member("crv"),
            member("x"),
            member("y")
        ),
        other => panic!("unsupported JWK kty {other:?}"),
    };
    URL_SAFE_NO_PAD.encode(digest(&SHA256, canonical.as_bytes()))
}

fn algorithm_name(key_type: KeyType) -> &'static str {
    match key_type {
        KeyType::Rsa => "RS256",
        KeyType::Ec => "ES256",
        KeyType::EcP384 => "ES384",
    }
}

/// An issuer's keys as a relying party finds them: its discovery document at
/// `{issuer}/.well-known/openid-configuration`, which must name `issuer`, then the JWKS
/// at its `jwks_uri`.
///
/// # Panics
/// If either cannot be fetched or read, or the discovery document names another issuer.
pub async fn discover_jwks(http: &reqwest::Client, issuer: &str) -> JwkSet {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let get = |url: String| async move {
        http.get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
    };
    let discovery: Value = get(url).await.json().await.expect("a discovery document");
    assert_eq!(
        discovery["issuer"], issuer,
        "the discovery document's issuer"
    );
    let jwks_uri = discovery["jwks_uri"]
        .as_str()
        .expect("a jwks_uri")
        .to_owned();
    get(jwks_uri).await.json().await.expect("a JWKS")
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

/// PEM armour with 64-column base64 lines.
fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}
