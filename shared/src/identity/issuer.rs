//! What fedsync publishes as an issuer: for every `signing-key` identity, the
//! OpenID discovery document and the JWKS that the clouds fetch to verify the
//! tokens fedsync signs. Host both at the issuer URL (`fedsync issuer`).

use super::SigningKey;
use crate::config::{Config, IdentityConfig};
use crate::report::Failure;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// One issuer's documents.
#[derive(Debug, Clone, PartialEq)]
pub struct IssuerDocuments {
    pub issuer: String,
    /// `/.well-known/openid-configuration`
    pub discovery: Value,
    /// `/.well-known/jwks.json`
    pub jwks: Value,
}

impl IssuerDocuments {
    pub fn jwks_uri(issuer: &str) -> String {
        format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/'))
    }
}

/// The documents of every issuer the configuration's signing keys sign for
/// (several identities may share one issuer: their keys share one JWKS). A KMS
/// key's public key is fetched from KMS (`GetPublicKey`).
pub async fn documents(config: &Config) -> Result<Vec<IssuerDocuments>, Failure> {
    let mut keys: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (name, identity) in &config.identities {
        let IdentityConfig::SigningKey(sk) = identity else {
            continue;
        };
        let in_identity = |f: Failure| f.context(format!("identity {name:?}"));
        let key = SigningKey::from_config(sk).map_err(in_identity)?;
        let jwk = key.public_jwk().await.map_err(in_identity)?;
        let jwk = serde_json::to_value(jwk).unwrap_or_default();
        let set = keys.entry(sk.issuer.clone()).or_default();
        if !set.contains(&jwk) {
            set.push(jwk);
        }
    }
    Ok(keys
        .into_iter()
        .map(|(issuer, keys)| {
            // What the keys sign with, as each JWK's `alg` says.
            let algorithms: BTreeSet<&str> =
                keys.iter().filter_map(|k| k["alg"].as_str()).collect();
            let discovery = json!({
                "issuer": issuer,
                "jwks_uri": IssuerDocuments::jwks_uri(&issuer),
                "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": algorithms,
                "claims_supported": ["iss", "sub", "aud", "iat", "nbf", "exp", "jti"],
            });
            IssuerDocuments {
                issuer,
                discovery,
                jwks: json!({ "keys": keys }),
            }
        })
        .collect())
}
