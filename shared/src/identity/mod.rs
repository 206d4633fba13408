//! Identities: named token sources that yield a signed JWT for an audience, which
//! the exchanges present to each destination cloud.

mod file;
mod gcp_metadata;
mod github_actions;
pub mod issuer;
mod signing_key;

pub use file::FileToken;
pub use gcp_metadata::MetadataServer;
pub use github_actions::GithubActions;
pub use signing_key::SigningKey;

use crate::config::IdentityConfig;
use crate::report::Failure;
use secrecy::{ExposeSecret, SecretBox};
use serde::Deserialize;
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
        let claims =
            jsonwebtoken::dangerous::insecure_decode_claims::<Claims>(&jwt).unwrap_or_default();
        IdentityToken {
            jwt: SecretBox::new(jwt.into_boxed_str()),
            claims,
        }
    }

    /// The token itself; only ever sent to a token endpoint, never logged.
    pub fn expose(&self) -> &str {
        self.jwt.expose_secret()
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

/// Builds the token source a configuration entry describes.
pub fn build(name: &str, config: &IdentityConfig) -> Result<Arc<dyn TokenSource>, Failure> {
    let built: Arc<dyn TokenSource> = match config {
        IdentityConfig::File { path } => Arc::new(FileToken::new(path)),
        IdentityConfig::SigningKey(sk) => Arc::new(SigningKey::from_config(sk)?),
        IdentityConfig::GithubActions {} => Arc::new(GithubActions),
        IdentityConfig::GcpMetadata { metadata_host } => {
            Arc::new(MetadataServer::new(metadata_host.as_deref()))
        }
    };
    tracing::debug!(identity = name, "identity ready");
    Ok(built)
}
