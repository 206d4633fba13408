//! The `signing-key` identity: fedsync signs its own short-lived tokens (RS256 or
//! ES256) with a PEM private key, or through AWS KMS with a key that never leaves
//! it, and the clouds trust the issuer whose discovery document and JWKS publish
//! the matching public key.

use super::jose::PublicJwk;
use super::kms_key::KmsKey;
use super::{IdentityToken, TokenSource};
use crate::config::SigningKeyConfig;
use crate::reference::Reference;
use crate::report::{Failure, FailureClass};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A private key and the claims fedsync puts in every token it signs.
pub struct SigningKey {
    signer: Signer,
    issuer: String,
    subject: String,
    ttl: Duration,
}

/// What makes the signature.
enum Signer {
    /// A PEM private key in memory.
    Pem { key: EncodingKey, public: PublicJwk },
    /// A KMS key; its public key is fetched on first use.
    Kms(KmsKey),
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

fn bad_key(message: impl std::fmt::Display) -> Failure {
    Failure::new(FailureClass::BadInput, format!("signing key: {message}"))
}

impl SigningKey {
    /// Reads a PEM key now; a KMS key is only named here (KMS is first asked
    /// when a token or the public key is needed).
    pub fn from_config(config: &SigningKeyConfig) -> Result<Self, Failure> {
        let signer = match Reference::parse(&config.key).map_err(bad_key)? {
            Reference::Kms(arn) => Signer::Kms(KmsKey::new(&arn).map_err(bad_key)?),
            pem => Self::pem_signer(pem.read().map_err(bad_key)?.as_bytes())?,
        };
        Ok(SigningKey {
            signer,
            issuer: config.issuer.clone(),
            subject: config.subject.clone(),
            ttl: config.ttl,
        })
    }

    /// Loads an RSA (RS256) or P-256 (ES256) private key in PEM (PKCS#8, or PKCS#1 for RSA).
    pub fn from_pem(
        pem: &[u8],
        issuer: &str,
        subject: &str,
        ttl: Duration,
    ) -> Result<Self, Failure> {
        Ok(SigningKey {
            signer: Self::pem_signer(pem)?,
            issuer: issuer.to_string(),
            subject: subject.to_string(),
            ttl,
        })
    }

    fn pem_signer(pem: &[u8]) -> Result<Signer, Failure> {
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
        let unusable = |e: String| {
            Failure::new(
                FailureClass::BadInput,
                format!("the signing key cannot be used: {e}"),
            )
        };
        let jwk = Jwk::from_encoding_key(&key, algorithm).map_err(|e| unusable(e.to_string()))?;
        let public = PublicJwk::new(jwk, algorithm).map_err(unusable)?;
        Ok(Signer::Pem { key, public })
    }

    async fn public(&self) -> Result<&PublicJwk, Failure> {
        match &self.signer {
            Signer::Pem { public, .. } => Ok(public),
            Signer::Kms(kms) => kms.public_key().await,
        }
    }

    /// The public key as a JWK, for the issuer's JWKS; its `kid` is the RFC 7638
    /// thumbprint of the key. A KMS key's comes from KMS the first time.
    pub async fn public_jwk(&self) -> Result<&Jwk, Failure> {
        Ok(&self.public().await?.jwk)
    }

    /// Signs a token for `audience` valid from now for the configured lifetime.
    pub async fn sign(&self, audience: &str) -> Result<IdentityToken, Failure> {
        let public = self.public().await?;
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
        let mut header = Header::new(public.algorithm);
        header.kid = Some(public.kid.clone());
        let signing_input = format!("{}.{}", jws_part(&header)?, jws_part(&claims)?);
        let signature = match &self.signer {
            Signer::Pem { key, .. } => {
                jsonwebtoken::crypto::sign(signing_input.as_bytes(), key, public.algorithm)
                    .map_err(|e| {
                        Failure::new(FailureClass::BadInput, format!("cannot sign a token: {e}"))
                    })?
            }
            Signer::Kms(kms) => URL_SAFE_NO_PAD.encode(kms.sign(signing_input.as_bytes()).await?),
        };
        Ok(IdentityToken::new(format!("{signing_input}.{signature}")))
    }
}

/// One part of a compact JWS: the base64url of its JSON.
fn jws_part(value: &impl Serialize) -> Result<String, Failure> {
    let json = serde_json::to_vec(value)
        .map_err(|e| Failure::new(FailureClass::BadInput, format!("cannot sign a token: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

#[async_trait::async_trait]
impl TokenSource for SigningKey {
    async fn token(&self, audience: &str) -> Result<IdentityToken, Failure> {
        self.sign(audience).await
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

    async fn round_trip(algorithm: Algorithm) {
        let pem = generated_pem(algorithm);
        let key = SigningKey::from_pem(
            pem.as_bytes(),
            "https://issuer.test",
            "fedsync:test",
            Duration::from_secs(300),
        )
        .unwrap();
        let public = key.public().await.unwrap();
        assert_eq!(public.algorithm, algorithm);
        let token = key.sign("sts.amazonaws.com").await.unwrap();
        let header = jsonwebtoken::decode_header(token.expose()).unwrap();
        assert_eq!(header.kid.as_deref(), Some(public.kid.as_str()));
        assert_eq!(header.alg, algorithm);
        let decoding = DecodingKey::from_jwk(key.public_jwk().await.unwrap()).unwrap();
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
        let other = key.sign("sts.amazonaws.com").await.unwrap();
        let other_claims =
            jsonwebtoken::dangerous::insecure_decode_claims::<serde_json::Value>(other.expose())
                .unwrap();
        assert_ne!(other_claims["jti"], c["jti"], "every token has its own jti");
        assert_eq!(
            token.claims.to_string(),
            "issuer \"https://issuer.test\", subject \"fedsync:test\", audience \"sts.amazonaws.com\""
        );
    }

    #[tokio::test]
    async fn rs256_tokens_verify_against_the_published_jwk() {
        round_trip(Algorithm::RS256).await;
    }

    #[tokio::test]
    async fn es256_tokens_verify_against_the_published_jwk() {
        round_trip(Algorithm::ES256).await;
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
