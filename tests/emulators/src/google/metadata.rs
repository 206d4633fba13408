//! The metadata server of a Google runtime (Cloud Run, GCE, GKE; reference D.7), for the
//! instance's service account:
//!
//! - `GET /computeMetadata/v1/instance/service-accounts/{default|EMAIL}/identity?audience=
//!   …[&format=full]` → a raw Google ID token (`text/plain`) signed by the
//!   [`GoogleIssuer`](super::issuer::GoogleIssuer): `iss`, `aud`, `azp` and `sub` (the
//!   account's unique ID), `iat`, `exp` (one hour), plus `email` and `email_verified` with
//!   `format=full`;
//! - `…/token[?scopes=a,b]` → `{"access_token", "expires_in", "token_type": "Bearer"}`, a
//!   token that acts as the service account at Secret Manager and IAM Credentials;
//! - `…/email` → the account's email.
//!
//! Every request needs `Metadata-Flavor: Google` and must not carry `X-Forwarded-For`
//! (403 otherwise, as the real server); answers carry `Metadata-Flavor: Google`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::auth::{
    AccessTokens, CLOUD_PLATFORM, Principal, TokenSource, service_account_unique_id,
};
use super::issuer::{GoogleIssuer, Signer};
use super::proto_json::percent_decode;
use crate::server::Server;

const FLAVOR: HeaderName = HeaderName::from_static("metadata-flavor");
const PREFIX: &str = "/computeMetadata/v1/instance/service-accounts/";
const ID_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
const ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(3599);

/// Which endpoint a metadata request hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetadataEndpoint {
    Identity,
    Token,
    Email,
}

#[derive(Debug)]
struct Config {
    email: String,
    unique_id: String,
    scopes: Vec<String>,
    faults: VecDeque<(u16, String)>,
    requests: Vec<(MetadataEndpoint, u16)>,
}

#[derive(Debug)]
struct MetadataState {
    signer: Arc<Signer>,
    tokens: AccessTokens,
    config: Mutex<Config>,
}

impl MetadataState {
    fn config(&self) -> MutexGuard<'_, Config> {
        self.config.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The metadata server on `127.0.0.1`.
#[derive(Debug)]
pub struct MetadataServer {
    state: Arc<MetadataState>,
    server: Server,
}

impl MetadataServer {
    /// Starts a server for the service account `email` (unique ID derived from it, scope
    /// `cloud-platform`), signing with `issuer` and issuing into `tokens`.
    pub async fn start(issuer: &GoogleIssuer, tokens: &AccessTokens, email: &str) -> Self {
        let state = Arc::new(MetadataState {
            signer: issuer.signer(),
            tokens: tokens.clone(),
            config: Mutex::new(Config {
                email: email.to_owned(),
                unique_id: service_account_unique_id(email),
                scopes: vec![CLOUD_PLATFORM.to_owned()],
                faults: VecDeque::new(),
                requests: Vec::new(),
            }),
        });
        let router_state = Arc::clone(&state);
        let server =
            Server::start(|_| Router::new().fallback(handle).with_state(router_state)).await;
        Self { state, server }
    }

    /// `http://127.0.0.1:PORT` (in place of `http://metadata.google.internal`).
    pub fn endpoint(&self) -> String {
        self.server.base_url()
    }

    /// `host:port`, as `GCE_METADATA_HOST` takes it.
    pub fn host(&self) -> String {
        self.server.addr().to_string()
    }

    /// The instance's service account email.
    pub fn email(&self) -> String {
        self.state.config().email.clone()
    }

    /// Its unique ID (the `sub` of its identity tokens).
    pub fn unique_id(&self) -> String {
        self.state.config().unique_id.clone()
    }

    /// Changes the instance's service account.
    pub fn set_service_account(&self, email: &str, unique_id: &str) {
        let mut config = self.state.config();
        config.email = email.to_owned();
        config.unique_id = unique_id.to_owned();
    }

    /// The scopes of the tokens `…/token` issues when the request names none.
    pub fn set_scopes(&self, scopes: &[&str]) {
        self.state.config().scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
    }

    /// Answers the next `count` requests with `status` and a plain-text body.
    pub fn fail_next(&self, count: usize, status: u16, body: &str) {
        self.state
            .config()
            .faults
            .extend(std::iter::repeat_n((status, body.to_owned()), count));
    }

    /// How many requests hit `endpoint` (refused ones included).
    pub fn requests(&self, endpoint: MetadataEndpoint) -> usize {
        self.state
            .config()
            .requests
            .iter()
            .filter(|(e, _)| *e == endpoint)
            .count()
    }
}

async fn handle(
    State(state): State<Arc<MetadataState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let (status, content_type, body) = answer(&state, &method, &uri, &headers);
    let mut response = (status, body).into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(FLAVOR, HeaderValue::from_static("Google"));
    response_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn text(status: StatusCode, body: &str) -> (StatusCode, &'static str, String) {
    (status, "text/plain; charset=utf-8", body.to_owned())
}

fn answer(
    state: &MetadataState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> (StatusCode, &'static str, String) {
    let not_found = || text(StatusCode::NOT_FOUND, "Not Found\n");
    let Some(rest) = uri.path().strip_prefix(PREFIX) else {
        return not_found();
    };
    let Some((account, leaf)) = rest.split_once('/') else {
        return not_found();
    };
    let endpoint = match leaf {
        "identity" => MetadataEndpoint::Identity,
        "token" => MetadataEndpoint::Token,
        "email" => MetadataEndpoint::Email,
        _ => return not_found(),
    };
    let result = serve(state, endpoint, method, account, uri, headers);
    let status = result.0;
    state.config().requests.push((endpoint, status.as_u16()));
    result
}

fn serve(
    state: &MetadataState,
    endpoint: MetadataEndpoint,
    method: &Method,
    account: &str,
    uri: &Uri,
    headers: &HeaderMap,
) -> (StatusCode, &'static str, String) {
    if let Some((status, body)) = state.config().faults.pop_front() {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return text(status, &body);
    }
    if headers.get(FLAVOR).map(HeaderValue::as_bytes) != Some(b"Google") {
        return text(
            StatusCode::FORBIDDEN,
            "Missing required header \"Metadata-Flavor\": \"Google\"\n",
        );
    }
    if headers.contains_key("x-forwarded-for") {
        return text(
            StatusCode::FORBIDDEN,
            "Request contains an X-Forwarded-For header and was rejected.\n",
        );
    }
    if method != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n");
    }
    let (email, unique_id, default_scopes) = {
        let config = state.config();
        (
            config.email.clone(),
            config.unique_id.clone(),
            config.scopes.clone(),
        )
    };
    if account != "default" && percent_decode(account).as_deref() != Some(email.as_str()) {
        return text(StatusCode::NOT_FOUND, "Not Found\n");
    }
    let params: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let param = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    match endpoint {
        MetadataEndpoint::Email => text(StatusCode::OK, &email),
        MetadataEndpoint::Identity => {
            let Some(audience) = param("audience").filter(|a| !a.is_empty()) else {
                return text(
                    StatusCode::BAD_REQUEST,
                    "non-empty audience parameter required\n",
                );
            };
            let include_email = match param("format") {
                None | Some("standard") => false,
                Some("full") => true,
                Some(_) => {
                    return text(
                        StatusCode::BAD_REQUEST,
                        "format must be \"standard\" or \"full\"\n",
                    );
                }
            };
            let claims = state.signer.id_token_claims(
                audience,
                &email,
                &unique_id,
                include_email,
                true,
                ID_TOKEN_LIFETIME,
            );
            text(StatusCode::OK, &state.signer.sign(&claims))
        }
        MetadataEndpoint::Token => {
            let scopes: Vec<String> = match param("scopes") {
                Some(scopes) => scopes
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
                None => default_scopes,
            };
            let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
            let token = state.tokens.issue(
                Principal::service_account(&email),
                &scopes,
                ACCESS_TOKEN_LIFETIME,
                TokenSource::Metadata,
            );
            let body = json!({
                "access_token": token,
                "expires_in": ACCESS_TOKEN_LIFETIME.as_secs(),
                "token_type": "Bearer",
            });
            (StatusCode::OK, "application/json", body.to_string())
        }
    }
}
