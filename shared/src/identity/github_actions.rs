//! The `github-actions` identity: inside a GitHub Actions job with
//! `permissions: id-token: write`, the runner's token URL
//! (`ACTIONS_ID_TOKEN_REQUEST_URL`, with `ACTIONS_ID_TOKEN_REQUEST_TOKEN`)
//! issues an OIDC token for any audience.

use super::{IdentityToken, TokenSource};
use crate::http;
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
        // The URL already carries a query string; the audience is added to it.
        // The egress guard refuses anything but https:// (or loopback) before sending.
        url.query_pairs_mut().append_pair("audience", audience);
        let sent = http::client().get(url).bearer_auth(&bearer).send().await;
        // The request token is a credential too: an echo of it is scrubbed.
        let fail = |e: &http::HttpError, what: &dyn std::fmt::Display| {
            crate::secret::scrub_credential(&bearer, http::failure(e, what))
        };
        let response = sent.map_err(|e| fail(&e, &URL_ENV))?;
        let answer: Answer = http::json(response)
            .await
            .map_err(|e| fail(&e, &"the GitHub Actions token answer"))?;
        Ok(IdentityToken::new(answer.value))
    }
}
