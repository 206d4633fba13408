//! IAM Credentials `POST /v1/projects/-/serviceAccounts/{EMAIL_OR_UNIQUE_ID}:
//! generateAccessToken` (reference D.2): a caller holding one of our access tokens obtains
//! a token that acts as a service account, if IAM lets it.
//!
//! The caller needs `iam.serviceAccounts.getAccessToken` on the service account, which
//! `roles/iam.workloadIdentityUser` and `roles/iam.serviceAccountTokenCreator` include
//! (`roles/iam.serviceAccountUser` does not). With `delegates`, every link of the chain
//! needs it on the next. Order of checks: bearer token (401), JSON shape (400, unknown
//! fields refused), `scope` present (400), permission (403 with Google's exact message,
//! also for a service account that does not exist), `lifetime` at most 3600 s (400).
//! Success answers `{"accessToken", "expireTime"}` (RFC 3339).

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::auth::{
    AccessTokens, CLOUD_PLATFORM, IAM_SCOPE, Principal, TokenSource, service_account_unique_id,
};
use super::proto_json::{Fields, parse_body, percent_decode, query_params, rfc3339};
use super::status::{GoogleError, json_ok};
use crate::server::Server;

const SERVICE: &str = "iamcredentials.googleapis.com";
const PERMISSION: &str = "iam.serviceAccounts.getAccessToken";
const MAX_LIFETIME: Duration = Duration::from_secs(3600);

/// A role on a service account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceAccountRole {
    /// `roles/iam.workloadIdentityUser`: includes `getAccessToken`.
    WorkloadIdentityUser,
    /// `roles/iam.serviceAccountTokenCreator`: includes `getAccessToken`.
    ServiceAccountTokenCreator,
    /// `roles/iam.serviceAccountUser` (`actAs`): does not include `getAccessToken`.
    ServiceAccountUser,
}

impl ServiceAccountRole {
    pub fn name(self) -> &'static str {
        match self {
            Self::WorkloadIdentityUser => "roles/iam.workloadIdentityUser",
            Self::ServiceAccountTokenCreator => "roles/iam.serviceAccountTokenCreator",
            Self::ServiceAccountUser => "roles/iam.serviceAccountUser",
        }
    }

    fn can_get_access_token(self) -> bool {
        matches!(
            self,
            Self::WorkloadIdentityUser | Self::ServiceAccountTokenCreator
        )
    }
}

/// One `generateAccessToken` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamCall {
    /// The service account as named in the URL.
    pub service_account: String,
    /// The caller's IAM member, when the bearer token was valid.
    pub caller: Option<String>,
    /// `Ok(())` or the HTTP status answered.
    pub outcome: Result<(), u16>,
}

#[derive(Debug, Default)]
struct Config {
    /// `(service account email, role, member)`.
    bindings: HashSet<(String, ServiceAccountRole, String)>,
    faults: VecDeque<GoogleError>,
    calls: Vec<IamCall>,
}

#[derive(Debug)]
struct IamState {
    tokens: AccessTokens,
    config: Mutex<Config>,
}

impl IamState {
    fn config(&self) -> MutexGuard<'_, Config> {
        self.config.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The IAM Credentials emulator on `127.0.0.1`.
#[derive(Debug)]
pub struct IamCredentials {
    state: Arc<IamState>,
    server: Server,
}

impl IamCredentials {
    /// Starts with no bindings; accepts tokens from and issues into `tokens`.
    pub async fn start(tokens: &AccessTokens) -> Self {
        let state = Arc::new(IamState {
            tokens: tokens.clone(),
            config: Mutex::default(),
        });
        let router_state = Arc::clone(&state);
        let server =
            Server::start_api(|_| Router::new().fallback(handle).with_state(router_state)).await;
        Self { state, server }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        self.server.base_url()
    }

    /// Grants `role` on the service account `email` to `member` (an IAM member:
    /// `principal://…`, `principalSet://…/*` or `serviceAccount:…`).
    pub fn grant(&self, email: &str, role: ServiceAccountRole, member: &str) {
        self.state
            .config()
            .bindings
            .insert((email.to_owned(), role, member.to_owned()));
    }

    /// Removes a grant made with [`Self::grant`].
    pub fn revoke(&self, email: &str, role: ServiceAccountRole, member: &str) {
        self.state
            .config()
            .bindings
            .remove(&(email.to_owned(), role, member.to_owned()));
    }

    /// Answers the next `count` calls with `error`, before looking at them.
    pub fn fail_next(&self, count: usize, error: GoogleError) {
        self.state
            .config()
            .faults
            .extend(std::iter::repeat_n(error, count));
    }

    /// Every call so far, oldest first.
    pub fn calls(&self) -> Vec<IamCall> {
        self.state.config().calls.clone()
    }

    /// How many calls issued a token.
    pub fn successes(&self) -> usize {
        self.state
            .config()
            .calls
            .iter()
            .filter(|c| c.outcome.is_ok())
            .count()
    }
}

async fn handle(
    State(state): State<Arc<IamState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(account) = route(&method, uri.path()) else {
        return GoogleError::method_not_found().into_response();
    };
    let fault = state.config().faults.pop_front();
    let mut caller = None;
    let outcome = match fault {
        Some(fault) => Err(fault),
        None => generate(&state, &account, uri.query(), &headers, &body, &mut caller),
    };
    state.config().calls.push(IamCall {
        service_account: account,
        caller,
        outcome: outcome.as_ref().map(|_| ()).map_err(|e| e.code),
    });
    match outcome {
        Ok(body) => json_ok(&body),
        Err(error) => error.into_response(),
    }
}

/// The service account of `POST /v1/projects/-/serviceAccounts/{sa}:generateAccessToken`.
fn route(method: &Method, path: &str) -> Option<String> {
    let rest = path.strip_prefix("/v1/projects/")?;
    let (project, rest) = rest.split_once('/')?;
    let account = rest.strip_prefix("serviceAccounts/")?;
    let account = account.strip_suffix(":generateAccessToken")?;
    if method != Method::POST || account.contains('/') || project.contains(':') {
        return None;
    }
    let account = percent_decode(account)?;
    Some(format!("{project}/{account}"))
}

fn generate(
    state: &IamState,
    route: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
    caller_member: &mut Option<String>,
) -> Result<serde_json::Value, GoogleError> {
    let (project, account) = route
        .split_once('/')
        .expect("route joins project and account");
    let caller = state
        .tokens
        .authenticate(headers, SERVICE, &[CLOUD_PLATFORM, IAM_SCOPE])?;
    *caller_member = Some(caller.principal.member());
    query_params(query, &[])?;
    if project != "-" {
        return Err(GoogleError::invalid_argument(
            "The project of the service account must be the wildcard \"-\": \
             projects/-/serviceAccounts/{ACCOUNT_EMAIL_OR_UNIQUEID}.",
        ));
    }
    let value = parse_body(body)?;
    let fields = Fields::parse(
        &value,
        "",
        &[
            ("name", "name"),
            ("delegates", "delegates"),
            ("scope", "scope"),
            ("lifetime", "lifetime"),
        ],
    )?;
    let scopes = fields.strings("scope")?.unwrap_or_default();
    if scopes.is_empty() {
        return Err(GoogleError::invalid_argument("Field [scope] is required."));
    }
    let lifetime = fields.duration("lifetime")?;
    let delegates = fields.strings("delegates")?.unwrap_or_default();
    let mut chain = Vec::new();
    for delegate in &delegates {
        let email = delegate
            .strip_prefix("projects/-/serviceAccounts/")
            .filter(|e| !e.is_empty() && !e.contains('/'))
            .ok_or_else(|| {
                GoogleError::invalid_argument(format!(
                    "Invalid delegate {delegate:?}: expected \
                     projects/-/serviceAccounts/{{ACCOUNT_EMAIL_OR_UNIQUEID}}."
                ))
            })?;
        chain.push(email.to_owned());
    }
    let config = state.config();
    let resolve = |account: &str| resolve_account(&config, account);
    let target = resolve(account);
    let mut member = caller.principal.clone();
    for link in chain
        .iter()
        .map(|a| resolve(a))
        .chain(std::iter::once(target.clone()))
    {
        let allowed = link.as_deref().is_some_and(|email| {
            config.bindings.iter().any(|(sa, role, granted)| {
                sa == email && role.can_get_access_token() && member.is_member(granted)
            })
        });
        if !allowed {
            return Err(GoogleError::iam_permission_denied(
                format!("Permission '{PERMISSION}' denied on resource (or it may not exist)."),
                "iam.googleapis.com",
                PERMISSION,
                None,
            ));
        }
        member = Principal::service_account(link.as_deref().unwrap_or_default());
    }
    drop(config);
    let email = target.expect("a permitted target exists");
    let lifetime = match lifetime {
        None => MAX_LIFETIME,
        Some(Ok(lifetime)) if !lifetime.is_zero() && lifetime <= MAX_LIFETIME => lifetime,
        Some(_) => {
            return Err(GoogleError::invalid_argument(
                "The lifetime must be positive and at most 3600s \
                 (constraints/iam.allowServiceAccountCredentialLifetimeExtension is not \
                 enabled).",
            ));
        }
    };
    let lifetime = crate::conditions::lifetime(lifetime);
    let access_token = state.tokens.issue(
        Principal::service_account(&email),
        &scopes,
        lifetime,
        TokenSource::IamCredentials,
    );
    Ok(json!({
        "accessToken": access_token,
        "expireTime": rfc3339(SystemTime::now() + lifetime),
    }))
}

/// The email of a service account named by email or by unique ID, if any binding knows it.
fn resolve_account(config: &Config, account: &str) -> Option<String> {
    if account.contains('@') {
        return Some(account.to_owned());
    }
    config
        .bindings
        .iter()
        .map(|(email, _, _)| email)
        .find(|email| service_account_unique_id(email) == account)
        .cloned()
}
