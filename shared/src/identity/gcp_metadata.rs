//! The `gcp-metadata` identity: the Google metadata server (Cloud Run, GCE, GKE)
//! issues an identity token for any audience, and an access token for the host's
//! own service account (used to read a Google source as the host itself).

use super::{IdentityToken, TokenSource};
use crate::exchange::BearerToken;
use crate::http::{self, HttpError};
use crate::report::Failure;
use serde::Deserialize;
use std::time::{Duration, SystemTime};

/// The environment variable Google's client libraries use to override the host.
pub const HOST_ENV: &str = "GCE_METADATA_HOST";
const DEFAULT_HOST: &str = "metadata.google.internal";
const ACCOUNT: &str = "computeMetadata/v1/instance/service-accounts/default";

/// The metadata server at `host[:port]`: the one metadata service the egress
/// guard lets fedsync call.
#[derive(Debug, Clone)]
pub struct MetadataServer {
    host: String,
    base: String,
}

#[derive(Deserialize)]
struct AccessToken {
    access_token: String,
    expires_in: u64,
}

impl MetadataServer {
    /// The configured host, else `GCE_METADATA_HOST`, else the metadata server's name.
    pub fn new(host: Option<&str>) -> Self {
        let host = host
            .map(str::to_string)
            .or_else(|| std::env::var(HOST_ENV).ok())
            .unwrap_or_else(|| DEFAULT_HOST.into());
        MetadataServer {
            base: format!("http://{host}/{ACCOUNT}"),
            host,
        }
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<reqwest::Response, Failure> {
        let sent = http::client()
            .get(format!("{}/{path}", self.base))
            .metadata_server(&self.host)
            .header("Metadata-Flavor", "Google")
            .query(query)
            .send()
            .await;
        // Transport failures stay retryable: a lost change is worse than a retry.
        sent.map_err(|e| {
            http::failure(
                &e,
                format_args!("the metadata server ({}) refused {path}", self.base),
            )
        })
    }

    /// The service account's base URL on this metadata server.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// The host service account's access token.
    pub async fn access_token(&self) -> Result<BearerToken, Failure> {
        let response = self.get("token", &[]).await?;
        let token: AccessToken = http::json(response)
            .await
            .map_err(|e| http::failure(&e, "the metadata server's access token"))?;
        Ok(BearerToken::new(
            token.access_token,
            SystemTime::now() + Duration::from_secs(token.expires_in),
        ))
    }
}

#[async_trait::async_trait]
impl TokenSource for MetadataServer {
    async fn token(&self, audience: &str) -> Result<IdentityToken, Failure> {
        let response = self
            .get("identity", &[("audience", audience), ("format", "full")])
            .await?;
        let jwt = response.text().await.map_err(|e| {
            http::failure(&HttpError::from(e), "the metadata server's identity token")
        })?;
        Ok(IdentityToken::new(jwt.trim().to_string()))
    }
}
