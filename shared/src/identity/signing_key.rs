//! The `signing-key` identity: fedsync signs its own short-lived tokens (RS256 or
//! ES256) with a PEM private key, and the clouds trust the issuer whose discovery
//! document and JWKS publish the matching public key.

use super::{IdentityToken, TokenSource};
use crate::config::SigningKeyConfig;
use crate::reference::Reference;
use crate::report::{Failure, FailureClass};
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A private key and the claims fedsync puts in every token it signs.
pub struct SigningKey {
    key: EncodingKey,
    algorithm: Algorithm,
    kid: String,
    public: Jwk,
    issuer: String,
    subject: String,
    ttl: Duration,
}

#[derive(Serialize)]
struct TokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: u64,
    nbf: u64,
    exp: u64,
    jti: String,
}

impl SigningKey {
    pub fn from_config(config: &SigningKeyConfig) -> Result<Self, Failure> {
        let pem = Reference::parse(&config.key)
            .and_then(|r| r.read())
            .map_err(|e| Failure::new(FailureClass::BadInput, format!("signing key: {e}")))?;
        Self::from_pem(pem.as_bytes(), &config.issuer, &config.subject, config.ttl)
    }

    /// Loads an RSA (RS256) or P-256 (ES256) private key in PEM (PKCS#8, or PKCS#1 for RSA).
    pub fn from_pem(
        pem: &[u8],
        issuer: &str,
        subject: &str,
        ttl: Duration,
    ) -> Result<Self, Failure> {
        let (key, algorithm) = match EncodingKey::from_rsa_pem(pem) {
            Ok(k) => (k, Algorithm::RS256),
            Err(_) => match EncodingKey::from_ec_pem(pem) {
                Ok(k) => (k, Algorithm::ES256),
                Err(_) => {
                    return Err(Failure::new(
                        FailureClass::BadInput,
                        "the signing key is neither an RSA nor a P-256 EC private key in PEM form",
                    ));
                }
            },
        };
        let bad = |e: jsonwebtoken::errors::Error| {
            Failure::new(
                FailureClass::BadInput,
                format!("the signing key cannot be used: {e}"),
            )
        };
        let mut public = Jwk::from_encoding_key(&key, algorithm).map_err(bad)?;
        let kid = public.thumbprint(ThumbprintHash::SHA256).map_err(bad)?;
        public.common.key_id = Some(kid.clone());
        public.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
        Ok(SigningKey {
            key,
            algorithm,
            kid,
            public,
            issuer: issuer.to_string(),
            subject: subject.to_string(),
            ttl,
        })
    }

    /// The key id: the RFC 7638 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK, for the issuer's JWKS.
    pub fn public_jwk(&self) -> &Jwk {
        &self.public
    }

    /// Signs a token for `audience` valid from now for the configured lifetime.
    pub fn sign(&self, audience: &str) -> Result<IdentityToken, Failure> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = TokenClaims {
            iss: &self.issuer,
            sub: &self.subject,
            aud: audience,
            iat: now,
            nbf: now,
            exp: now + self.ttl.as_secs(),
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        let jwt = jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| {
            Failure::new(FailureClass::BadInput, format!("cannot sign a token: {e}"))
        })?;
        Ok(IdentityToken::new(jwt))
    }
}

#[async_trait::async_trait]
impl TokenSource for SigningKey {
    async fn token(&self, audience: &str) -> Result<IdentityToken, Failure> {
        self.sign(audience)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    /// Test keys generated at run time, never committed.
    pub(crate) fn generated_pem(algorithm: Algorithm) -> String {
        use aws_lc_rs::encoding::AsDer;
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        let der = match algorithm {
            Algorithm::RS256 => aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .unwrap()
                .as_der()
                .unwrap()
                .as_ref()
                .to_vec(),
            _ => {
                let k = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
                k.to_pkcs8v1().unwrap().as_ref().to_vec()
            }
        };
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        let body: Vec<_> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            body.join("\n")
        )
    }

    fn round_trip(algorithm: Algorithm) {
        let pem = generated_pem(algorithm);
        let key = SigningKey::from_pem(
            pem.as_bytes(),
            "https://issuer.test",
            "fedsync:test",
            Duration::from_secs(300),
        )
        .unwrap();
        assert_eq!(key.algorithm, algorithm);
        let token = key.sign("sts.amazonaws.com").unwrap();
        let header = jsonwebtoken::decode_header(token.expose()).unwrap();
        assert_eq!(header.kid.as_deref(), Some(key.kid()));
        assert_eq!(header.alg, algorithm);
        let decoding = DecodingKey::from_jwk(key.public_jwk()).unwrap();
        let mut validation = Validation::new(algorithm);
        validation.set_audience(&["sts.amazonaws.com"]);
        validation.set_issuer(&["https://issuer.test"]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "sub", "aud"]);
        let data =
            jsonwebtoken::decode::<serde_json::Value>(token.expose(), &decoding, &validation)
                .unwrap();
        let c = data.claims;
        assert_eq!(c["sub"], "fedsync:test");
        assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), 300);
        assert_eq!(c["jti"].as_str().unwrap().len(), 36);
        let other = key.sign("sts.amazonaws.com").unwrap();
        let other_claims =
            jsonwebtoken::dangerous::insecure_decode_claims::<serde_json::Value>(other.expose())
                .unwrap();
        assert_ne!(other_claims["jti"], c["jti"], "every token has its own jti");
        assert_eq!(
            token.claims.to_string(),
            "issuer \"https://issuer.test\", subject \"fedsync:test\", audience \"sts.amazonaws.com\""
        );
    }

    #[test]
    fn rs256_tokens_verify_against_the_published_jwk() {
        round_trip(Algorithm::RS256);
    }

    #[test]
    fn es256_tokens_verify_against_the_published_jwk() {
        round_trip(Algorithm::ES256);
    }

    #[test]
    fn garbage_is_refused_with_a_clear_error() {
        let err = SigningKey::from_pem(b"not a key", "https://i", "s", Duration::from_secs(60))
            .err()
            .unwrap();
        assert!(
            err.message.contains("neither an RSA nor a P-256"),
            "{}",
            err.message
        );
    }
}
