//! The `github-actions` identity: inside a GitHub Actions job with
//! `permissions: id-token: write`, the runner's token URL
//! (`ACTIONS_ID_TOKEN_REQUEST_URL`, with `ACTIONS_ID_TOKEN_REQUEST_TOKEN`)
//! issues an OIDC token for any audience.

use super::{IdentityToken, TokenSource};
use crate::http::{self, HttpError};
use crate::report::{Failure, FailureClass};
use serde::Deserialize;

pub const URL_ENV: &str = "ACTIONS_ID_TOKEN_REQUEST_URL";
pub const TOKEN_ENV: &str = "ACTIONS_ID_TOKEN_REQUEST_TOKEN";

/// Asks the Actions runner for a token (both variables are read at every refresh).
#[derive(Debug, Clone, Default)]
pub struct GithubActions;

#[derive(Deserialize)]
struct Answer {
    value: String,
}

#[async_trait::async_trait]
impl TokenSource for GithubActions {
    async fn token(&self, audience: &str) -> Result<IdentityToken, Failure> {
        let missing = |name: &str| {
            Failure::new(
                FailureClass::Auth,
                format!(
                    "{name} is not set: run inside a GitHub Actions job with `permissions: id-token: write`"
                ),
            )
        };
        let base = std::env::var(URL_ENV).map_err(|_| missing(URL_ENV))?;
        let bearer = std::env::var(TOKEN_ENV).map_err(|_| missing(TOKEN_ENV))?;
        let mut url = url::Url::parse(&base).map_err(|e| {
            Failure::new(
                FailureClass::BadInput,
                format!("{URL_ENV} is not a URL ({e})"),
            )
        })?;
        let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if url.scheme() != "https" && !loopback {
            return Err(Failure::new(
                FailureClass::BadInput,
                format!("{URL_ENV} must be an https:// URL"),
            ));
        }
        // The URL already carries a query string; the audience is added to it.
        url.query_pairs_mut().append_pair("audience", audience);
        let sent = http::client().get(url).bearer_auth(bearer).send().await;
        let answer = match sent {
            Ok(r) => http::check(r).await,
            Err(e) => Err(HttpError::from(e)),
        };
        let response = answer.map_err(|e| http::failure(&e, "the GitHub Actions token request"))?;
        let answer: Answer = http::json(response)
            .await
            .map_err(|e| http::failure(&e, "the GitHub Actions token answer"))?;
        Ok(IdentityToken::new(answer.value))
    }
}
