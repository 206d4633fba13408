//! Identities: named token sources that yield a signed JWT for an audience, which
//! the exchanges present to each destination cloud.

mod aws_outbound;
mod file;
mod gcp_metadata;
mod github_actions;
mod inspection;
pub mod issuer;
mod jose;
mod kms_key;
mod signing_key;
mod vault_oidc;

pub use aws_outbound::AwsOutbound;
pub use file::FileToken;
pub use gcp_metadata::MetadataServer;
pub use github_actions::GithubActions;
pub use inspection::TokenInspection;
pub(crate) use kms_key::key_arn_region as kms_key_region;
pub use signing_key::SigningKey;
#[cfg(test)]
pub(crate) use signing_key::tests::generated_pem;
pub use vault_oidc::VaultOidc;

use crate::config::IdentityConfig;
use crate::exchange::{BearerToken, CredentialCache};
use crate::report::Failure;
use secrecy::{ExposeSecret, SecretBox};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

/// A signed JWT and the claims it presents (read, not verified, for explanations).
pub struct IdentityToken {
    jwt: SecretBox<str>,
    pub claims: Claims,
}

impl IdentityToken {
    /// Wraps a JWT, reading its claims so that failures can say what was presented.
    pub fn new(jwt: String) -> Self {
        let mut claims =
            jsonwebtoken::dangerous::insecure_decode_claims::<Claims>(&jwt).unwrap_or_default();
        claims.kid = jsonwebtoken::decode_header(&jwt).ok().and_then(|h| h.kid);
        IdentityToken {
            jwt: SecretBox::new(jwt.into_boxed_str()),
            claims,
        }
    }

    /// The token itself; only ever sent to a token endpoint, never logged.
    pub fn expose(&self) -> &str {
        self.jwt.expose_secret()
    }

    /// `failure` without this token in its message (an endpoint may echo it).
    pub fn scrub(&self, failure: Failure) -> Failure {
        crate::secret::scrub_credential(self.expose(), failure)
    }
}

impl fmt::Debug for IdentityToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityToken")
            .field("claims", &self.claims)
            .finish_non_exhaustive()
    }
}

/// The claims of a token that matter to trust decisions.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Claims {
    pub iss: Option<String>,
    pub sub: Option<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    pub iat: Option<i64>,
    pub exp: Option<i64>,
    /// The key id, from the token's header.
    #[serde(skip)]
    pub kid: Option<String>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => vec![],
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(v)) => v,
    })
}

impl fmt::Display for Claims {
    /// `issuer "…", subject "…", audience "…"`: what a cloud compares with its trust.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let or_none = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
        write!(
            f,
            "issuer {:?}, subject {:?}, audience {:?}",
            or_none(&self.iss),
            or_none(&self.sub),
            self.aud.join(" ")
        )
    }
}

/// A token source.
#[async_trait::async_trait]
pub trait TokenSource: Send + Sync {
    /// A token for `audience`. Sources that cannot choose the audience (a token
    /// file) return what they have; the exchange's error then shows the mismatch.
    async fn token(&self, audience: &str) -> Result<IdentityToken, Failure>;
}

/// Builds every identity; a `vault-oidc` identity after the one it logs in to
/// Vault with (validation has made sure that one is not `vault-oidc` too).
pub fn build_all(
    configs: &BTreeMap<String, IdentityConfig>,
    vault_tokens: &Arc<CredentialCache<BearerToken>>,
) -> Result<HashMap<String, Arc<dyn TokenSource>>, Failure> {
    let mut built = HashMap::new();
    let (last, first): (Vec<_>, Vec<_>) = configs
        .iter()
        .partition(|(_, c)| matches!(c, IdentityConfig::VaultOidc(_)));
    for (name, config) in first.into_iter().chain(last) {
        let identity = build(name, config, &built, vault_tokens)
            .map_err(|f| f.context(format!("identity {name:?}")))?;
        tracing::debug!(identity = name, "identity ready");
        built.insert(name.clone(), identity);
    }
    Ok(built)
}

/// Builds every identity on its own, so that one that cannot be built (a
/// missing key) leaves the others usable: for a check that reports each.
pub fn build_each(
    configs: &BTreeMap<String, IdentityConfig>,
    vault_tokens: &Arc<CredentialCache<BearerToken>>,
) -> BTreeMap<String, Result<Arc<dyn TokenSource>, Failure>> {
    let mut built = HashMap::new();
    let mut each = BTreeMap::new();
    let (last, first): (Vec<_>, Vec<_>) = configs
        .iter()
        .partition(|(_, c)| matches!(c, IdentityConfig::VaultOidc(_)));
    for (name, config) in first.into_iter().chain(last) {
        let identity = build(name, config, &built, vault_tokens);
        if let Ok(identity) = &identity {
            built.insert(name.clone(), identity.clone());
        }
        each.insert(name.clone(), identity);
    }
    each
}

/// Builds the token source a configuration entry describes.
fn build(
    name: &str,
    config: &IdentityConfig,
    built: &HashMap<String, Arc<dyn TokenSource>>,
    vault_tokens: &Arc<CredentialCache<BearerToken>>,
) -> Result<Arc<dyn TokenSource>, Failure> {
    Ok(match config {
        IdentityConfig::File { path } => Arc::new(FileToken::new(path)),
        IdentityConfig::SigningKey(sk) => Arc::new(SigningKey::from_config(sk)?),
        IdentityConfig::GithubActions {} => Arc::new(GithubActions),
        IdentityConfig::GcpMetadata { metadata_host } => {
            Arc::new(MetadataServer::new(metadata_host.as_deref()))
        }
        IdentityConfig::VaultOidc(v) => {
            let login = v.login.identity.as_ref().and_then(|i| built.get(i));
            Arc::new(VaultOidc::new(v, login.cloned(), vault_tokens.clone()))
        }
        IdentityConfig::AwsOutbound(o) => Arc::new(AwsOutbound::new(name, o)),
    })
}
