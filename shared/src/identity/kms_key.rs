//! Signing keys held by AWS KMS (`key = "kms:ARN"`): KMS `Sign` signs every token,
//! so the private key never leaves KMS; the public key comes from `GetPublicKey`,
//! fetched once. The client uses the host's ambient credentials, the region of
//! the key's ARN, and the SDK's endpoint settings (`AWS_ENDPOINT_URL_KMS`).

use super::jose::{P256_COORDINATE, PublicJwk, ecdsa_der_to_jws};
use crate::aws::{EgressGuard, ambient_config};
use crate::report::{Failure, FailureClass};
use crate::retry::Idempotency;
use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeyUsageType, MessageType, SigningAlgorithmSpec};
use jsonwebtoken::Algorithm;
use tokio::sync::OnceCell;

/// The key specs fedsync signs with, and the JWS algorithm of each.
const SPECS: &[(&str, Algorithm)] = &[
    ("RSA_2048", Algorithm::RS256),
    ("RSA_3072", Algorithm::RS256),
    ("RSA_4096", Algorithm::RS256),
    ("ECC_NIST_P256", Algorithm::ES256),
];

/// The region of a KMS key ARN, `arn:PARTITION:kms:REGION:ACCOUNT:key/KEY-ID`.
pub(crate) fn key_arn_region(arn: &str) -> Result<&str, String> {
    let wrong = || {
        format!(
            "{arn:?} is not the ARN of a KMS key; expected arn:aws:kms:REGION:ACCOUNT:key/KEY-ID"
        )
    };
    let fields: Vec<&str> = arn.splitn(6, ':').collect();
    let ["arn", partition, "kms", region, account, resource] = fields[..] else {
        return Err(wrong());
    };
    let name = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    let key_id = resource.strip_prefix("key/").unwrap_or_default();
    let key_id_ok = !key_id.is_empty()
        && key_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    let account_ok = account.len() == 12 && account.chars().all(|c| c.is_ascii_digit());
    if name(partition) && name(region) && account_ok && key_id_ok {
        Ok(region)
    } else {
        Err(wrong())
    }
}

/// A KMS asymmetric key that signs fedsync's tokens.
pub(crate) struct KmsKey {
    arn: String,
    region: String,
    client: OnceCell<Client>,
    public: OnceCell<KmsPublic>,
}

/// What `GetPublicKey` told: the published key and how KMS signs with it.
struct KmsPublic {
    key: PublicJwk,
    signing: SigningAlgorithmSpec,
}

impl KmsKey {
    pub fn new(arn: &str) -> Result<Self, String> {
        let region = key_arn_region(arn)?.to_string();
        Ok(KmsKey {
            arn: arn.to_string(),
            region,
            client: OnceCell::new(),
            public: OnceCell::new(),
        })
    }

    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| async {
                let sdk = ambient_config(Some(&self.region), None).await;
                let config = aws_sdk_kms::config::Builder::from(&sdk).interceptor(EgressGuard);
                Client::from_conf(config.build())
            })
            .await
    }

    /// The public key, from `GetPublicKey` the first time (a failure is not kept).
    pub async fn public_key(&self) -> Result<&PublicJwk, Failure> {
        Ok(&self.ready().await?.key)
    }

    async fn ready(&self) -> Result<&KmsPublic, Failure> {
        self.public.get_or_try_init(|| self.fetch_public()).await
    }

    async fn fetch_public(&self) -> Result<KmsPublic, Failure> {
        let arn = &self.arn;
        let client = self.client().await;
        let out = crate::aws::send("GetPublicKey", Idempotency::Idempotent, || {
            client.get_public_key().key_id(arn).send()
        })
        .await
        .map_err(|e| e.into_failure(format_args!("KMS GetPublicKey of signing key {arn}")))?;
        let refuse = |message: String| {
            Failure::new(FailureClass::BadInput, format!("KMS key {arn}: {message}"))
        };
        let usage = out.key_usage().map_or("(none)", KeyUsageType::as_str);
        if out.key_usage() != Some(&KeyUsageType::SignVerify) {
            return Err(refuse(format!(
                "its key usage is {usage}; a signing key needs SIGN_VERIFY"
            )));
        }
        // Real KMS answers KeySpec; servers that mimic older KMS only the deprecated
        // CustomerMasterKeySpec, which names the same specs.
        #[allow(deprecated)]
        let spec = out.key_spec().map(|s| s.as_str()).or_else(|| {
            out.customer_master_key_spec()
                .map(aws_sdk_kms::types::CustomerMasterKeySpec::as_str)
        });
        let supported: Vec<&str> = SPECS.iter().map(|(s, _)| *s).collect();
        let Some(&(_, algorithm)) = SPECS.iter().find(|(s, _)| Some(*s) == spec) else {
            return Err(refuse(format!(
                "its key spec is {}; fedsync signs with {} keys",
                spec.unwrap_or("not given"),
                supported.join(", ")
            )));
        };
        let signing = match algorithm {
            Algorithm::ES256 => SigningAlgorithmSpec::EcdsaSha256,
            _ => SigningAlgorithmSpec::RsassaPkcs1V15Sha256,
        };
        if !out.signing_algorithms().contains(&signing) {
            return Err(refuse(format!(
                "it does not offer the signing algorithm {}",
                signing.as_str()
            )));
        }
        let der = out.public_key().ok_or_else(|| {
            Failure::new(
                FailureClass::Unavailable,
                format!("KMS GetPublicKey of signing key {arn} answered without a public key"),
            )
        })?;
        let key = PublicJwk::from_spki(der.as_ref()).map_err(refuse)?;
        if key.algorithm != algorithm {
            return Err(refuse(format!(
                "its public key does not match its key spec {}",
                spec.unwrap_or_default()
            )));
        }
        tracing::debug!(key = %arn, kid = %key.kid, "KMS signing key ready");
        Ok(KmsPublic { key, signing })
    }

    /// Signs `message` with KMS (`MessageType` RAW) and returns the signature in
    /// JWS form (for ES256, `r || s` instead of KMS's DER).
    pub async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Failure> {
        let ready = self.ready().await?;
        let arn = &self.arn;
        let client = self.client().await;
        // Signing changes nothing: harmless to repeat.
        let out = crate::aws::send("Sign", Idempotency::Idempotent, || {
            client
                .sign()
                .key_id(arn)
                .message(Blob::new(message))
                .message_type(MessageType::Raw)
                .signing_algorithm(ready.signing.clone())
                .send()
        })
        .await
        .map_err(|e| e.into_failure(format_args!("KMS Sign with key {arn}")))?;
        let unreadable = |what: String| {
            Failure::new(
                FailureClass::Unavailable,
                format!("KMS Sign with key {arn}: {what}"),
            )
        };
        let signature = out
            .signature()
            .ok_or_else(|| unreadable("the answer has no signature".into()))?;
        match ready.key.algorithm {
            Algorithm::ES256 => {
                ecdsa_der_to_jws(signature.as_ref(), P256_COORDINATE).map_err(unreadable)
            }
            _ => Ok(signature.as_ref().to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_arns_give_their_region() {
        let arn = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        assert_eq!(key_arn_region(arn).unwrap(), "eu-west-1");
        let gov = "arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/mrk-1234abcd";
        assert_eq!(key_arn_region(gov).unwrap(), "us-gov-west-1");
    }

    #[test]
    fn other_strings_are_not_key_arns() {
        for wrong in [
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws:kms:eu-west-1:123456789012:alias/fedsync",
            "arn:aws:kms:eu-west-1:123456789012:key/",
            "arn:aws:kms::123456789012:key/abcd",
            "arn:aws:kms:eu-west-1:1234:key/abcd",
            "arn:aws:secretsmanager:eu-west-1:123456789012:key/abcd",
            "arn:aws:kms:eu-west-1:123456789012:key/ab/cd",
            "arn:aws:kms:EU-WEST-1:123456789012:key/abcd",
        ] {
            let err = key_arn_region(wrong).unwrap_err();
            assert!(
                err.contains("arn:aws:kms:REGION:ACCOUNT:key/KEY-ID"),
                "{err}"
            );
        }
    }
}
