//! A stand-in for the GitHub Actions OIDC token URL: with the job's request
//! token as bearer, `GET ?api-version=2.0&audience=AUD` answers `{"value": JWT}`,
//! signed by the test issuer with a workflow's claims.

use crate::issuer::Issuer;
use crate::server::Server;
use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::get;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The token URL of one job.
#[derive(Debug)]
pub struct ActionsTokenUrl {
    url: String,
    request_token: String,
    _server: Server,
}

struct Job {
    claims: Value,
    request_token: String,
    sign: Box<dyn Fn(&Value) -> String + Send + Sync>,
}

impl ActionsTokenUrl {
    /// Serves tokens with subject `subject`, signed by `issuer`'s RSA key.
    pub async fn start(issuer: &Issuer, subject: &str) -> Self {
        let request_token = uuid::Uuid::new_v4().simple().to_string();
        let base = issuer.claims(subject, "", Duration::from_secs(300));
        let key = issuer.rsa().clone();
        let job = Arc::new(Job {
            claims: base,
            request_token: request_token.clone(),
            sign: Box::new(move |claims| key.sign(claims)),
        });
        let server =
            Server::start(|_| Router::new().route("/token", get(token)).with_state(job)).await;
        let url = format!("{}/token?api-version=2.0", server.base_url());
        ActionsTokenUrl {
            url,
            request_token,
            _server: server,
        }
    }

    /// `ACTIONS_ID_TOKEN_REQUEST_URL` (it already carries a query string).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `ACTIONS_ID_TOKEN_REQUEST_TOKEN`.
    pub fn request_token(&self) -> &str {
        &self.request_token
    }
}

async fn token(
    State(job): State<Arc<Job>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> (StatusCode, Json<Value>) {
    let expected = format!("Bearer {}", job.request_token);
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(expected.as_str())
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Bad credentials"})),
        );
    }
    let Some(audience) = query.get("audience") else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "audience is required"})),
        );
    };
    let mut claims = job.claims.clone();
    claims["aud"] = json!(audience);
    claims["repository"] = json!("acme/app");
    (
        StatusCode::OK,
        Json(json!({"count": 1, "value": (job.sign)(&claims)})),
    )
}
