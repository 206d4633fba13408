//! Google STS `POST /v1/token` (reference D.1): exchanges an external OIDC token for a
//! federated access token through a workload identity provider.
//!
//! Both encodings are accepted: the RFC 8693 form (`application/x-www-form-urlencoded`,
//! snake_case names) and JSON (camelCase names per the discovery document, or the proto
//! names; unknown JSON fields are refused). The subject token is verified the way the
//! provider is configured: `iss` equal to the provider's issuer URI, signature against
//! the JWKS found through the issuer's discovery document (`RS256`/`ES256`, `kid`
//! required), `exp` in the future, `iat` not in the future, `exp - iat` under 48 hours,
//! `aud` one of the allowed audiences (by default the provider's full name, with or
//! without `https:`), `sub` at most 127 bytes (the `google.subject` limit), then the
//! attribute condition. Errors are OAuth-shaped (`{"error", "error_description"}`, 400).
//!
//! A successful exchange answers `{"access_token", "issued_token_type", "token_type":
//! "Bearer", "expires_in": 3600}`; the token acts as `principal://iam.googleapis.com/
//! projects/{NUMBER}/locations/global/workloadIdentityPools/{POOL}/subject/{sub}` with the
//! requested scopes.
//!
//! Where the reference is silent: a wrong `grant_type` is `unsupported_grant_type`
//! (RFC 6749), missing or malformed parameters and an `Authorization` header are
//! `invalid_request`, and unrecognized form parameters are ignored (RFC 6749 §3.2).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

use super::auth::{AccessTokens, Principal, TokenSource};
use super::cel::AttributeCondition;
use super::proto_json::Fields;
use super::status::GoogleError;
use crate::issuer::unix_now;
use crate::server::Server;

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT_TYPES: &[&str] = &[
    "urn:ietf:params:oauth:token-type:jwt",
    "urn:ietf:params:oauth:token-type:id_token",
];
const OTHER_SUBJECT_TYPES: &[&str] = &[
    "urn:ietf:params:aws:token-type:aws4_request",
    "urn:ietf:params:oauth:token-type:access_token",
    "urn:ietf:params:oauth:token-type:saml2",
];
const LIFETIME: Duration = Duration::from_secs(3600);
const MAX_TOKEN_AGE: u64 = 48 * 3600;
const MAX_SUBJECT_BYTES: usize = 127;
const BAD_AUDIENCE: &str = "Invalid value for \"audience\". This value should be the full \
     resource name of the Identity Provider. See \
     https://cloud.google.com/iam/docs/reference/sts/rest/v1/TopLevel/token for the list of \
     possible formats.";
const BAD_TARGET: &str = "The target service indicated by the \"audience\" parameters is \
     invalid. This might either be because the pool or provider is disabled or deleted or \
     because it doesn't exist.";
const CONDITION_REJECTED: &str = "The given credential is rejected by the attribute condition.";

/// An OAuth error as STS answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OauthError {
    pub status: u16,
    /// `invalid_request`, `invalid_grant`, `invalid_target`, `unsupported_grant_type`...
    pub error: String,
    pub description: String,
}

impl OauthError {
    pub fn new(status: u16, error: &str, description: &str) -> Self {
        Self {
            status,
            error: error.to_owned(),
            description: description.to_owned(),
        }
    }

    pub fn invalid_request(description: &str) -> Self {
        Self::new(400, "invalid_request", description)
    }

    pub fn invalid_grant(description: &str) -> Self {
        Self::new(400, "invalid_grant", description)
    }

    pub fn invalid_target() -> Self {
        Self::new(400, "invalid_target", BAD_TARGET)
    }

    /// 503 `temporarily_unavailable`, for fault injection.
    pub fn unavailable() -> Self {
        Self::new(
            503,
            "temporarily_unavailable",
            "The service is currently unavailable.",
        )
    }

    pub fn body(&self) -> Value {
        json!({ "error": self.error, "error_description": self.description })
    }
}

impl IntoResponse for OauthError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        (
            status,
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            self.body().to_string(),
        )
            .into_response()
    }
}

/// A workload identity pool provider trusting one OIDC issuer.
#[derive(Debug, Clone)]
pub struct WorkloadIdentityProvider {
    pub project_number: String,
    pub pool: String,
    pub provider: String,
    /// Tokens must carry exactly this `iss`; keys come from its discovery document.
    pub issuer_uri: String,
    /// Empty: the token's `aud` must be the provider's full name, with or without `https:`.
    pub allowed_audiences: Vec<String>,
    pub attribute_condition: Option<AttributeCondition>,
    pub disabled: bool,
}

impl WorkloadIdentityProvider {
    /// An enabled provider with no allowed audiences and no condition.
    pub fn new(project_number: &str, pool: &str, provider: &str, issuer_uri: &str) -> Self {
        Self {
            project_number: project_number.to_owned(),
            pool: pool.to_owned(),
            provider: provider.to_owned(),
            issuer_uri: issuer_uri.to_owned(),
            allowed_audiences: Vec::new(),
            attribute_condition: None,
            disabled: false,
        }
    }

    /// Sets the allowed audiences.
    pub fn allowed_audiences(mut self, audiences: &[&str]) -> Self {
        self.allowed_audiences = audiences.iter().map(|a| (*a).to_owned()).collect();
        self
    }

    /// Sets the attribute condition.
    ///
    /// # Panics
    /// If `condition` is outside the supported CEL subset: a configuration error.
    pub fn condition(mut self, condition: &str) -> Self {
        let parsed = AttributeCondition::parse(condition)
            .unwrap_or_else(|e| panic!("unsupported attribute condition {condition:?}: {e}"));
        self.attribute_condition = Some(parsed);
        self
    }

    /// `//iam.googleapis.com/projects/{NUMBER}/locations/global/workloadIdentityPools/
    /// {POOL}/providers/{PROVIDER}`: the `audience` of an exchange.
    pub fn name(&self) -> String {
        format!(
            "//iam.googleapis.com/projects/{}/locations/global/workloadIdentityPools/{}/providers/{}",
            self.project_number, self.pool, self.provider
        )
    }

    /// The principal a token with `subject` becomes.
    pub fn principal(&self, subject: &str) -> Principal {
        Principal::federated(&self.project_number, &self.pool, subject)
    }
}

/// One `/v1/token` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsExchange {
    pub audience: Option<String>,
    /// `Ok(principal member)` or `Err(error code)`.
    pub outcome: Result<String, String>,
}

#[derive(Debug, Default)]
struct Config {
    providers: HashMap<String, WorkloadIdentityProvider>,
    faults: VecDeque<OauthError>,
    exchanges: Vec<StsExchange>,
}

#[derive(Debug)]
struct StsState {
    tokens: AccessTokens,
    http: reqwest::Client,
    config: Mutex<Config>,
}

impl StsState {
    fn config(&self) -> MutexGuard<'_, Config> {
        self.config.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The STS emulator on `127.0.0.1`.
#[derive(Debug)]
pub struct Sts {
    state: Arc<StsState>,
    server: Server,
}

impl Sts {
    /// Starts an STS that knows no provider yet and issues into `tokens`.
    pub async fn start(tokens: &AccessTokens) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("build an HTTP client");
        let state = Arc::new(StsState {
            tokens: tokens.clone(),
            http,
            config: Mutex::default(),
        });
        let router_state = Arc::clone(&state);
        let server = Server::start_api(|_| {
            Router::new()
                .route("/v1/token", post(token))
                .fallback(|| async { GoogleError::method_not_found() })
                .with_state(router_state)
        })
        .await;
        Self { state, server }
    }

    /// `http://127.0.0.1:PORT` (the token URL is `{endpoint}/v1/token`).
    pub fn endpoint(&self) -> String {
        self.server.base_url()
    }

    /// `{endpoint}/v1/token`.
    pub fn token_url(&self) -> String {
        format!("{}/v1/token", self.server.base_url())
    }

    /// Adds or replaces a provider; returns its full name (the exchange's `audience`).
    pub fn add_provider(&self, provider: WorkloadIdentityProvider) -> String {
        let name = provider.name();
        self.state.config().providers.insert(name.clone(), provider);
        name
    }

    /// Disables or re-enables the provider named `name`.
    ///
    /// # Panics
    /// If there is no such provider.
    pub fn set_provider_disabled(&self, name: &str, disabled: bool) {
        self.state
            .config()
            .providers
            .get_mut(name)
            .unwrap_or_else(|| panic!("no provider {name}"))
            .disabled = disabled;
    }

    /// Deletes the provider named `name`.
    pub fn remove_provider(&self, name: &str) {
        self.state.config().providers.remove(name);
    }

    /// Answers the next `count` exchanges with `error`, before looking at them.
    pub fn fail_next(&self, count: usize, error: OauthError) {
        self.state
            .config()
            .faults
            .extend(std::iter::repeat_n(error, count));
    }

    /// Every exchange so far, oldest first.
    pub fn exchanges(&self) -> Vec<StsExchange> {
        self.state.config().exchanges.clone()
    }

    /// How many exchanges issued a token.
    pub fn successes(&self) -> usize {
        self.state
            .config()
            .exchanges
            .iter()
            .filter(|e| e.outcome.is_ok())
            .count()
    }

    /// How many exchanges were refused (injected faults included).
    pub fn failures(&self) -> usize {
        self.state
            .config()
            .exchanges
            .iter()
            .filter(|e| e.outcome.is_err())
            .count()
    }
}

/// The request's parameters, whichever encoding carried them.
#[derive(Debug, Default)]
struct ExchangeRequest {
    grant_type: Option<String>,
    audience: Option<String>,
    scope: Option<String>,
    requested_token_type: Option<String>,
    subject_token: Option<String>,
    subject_token_type: Option<String>,
    options: Option<String>,
}

async fn token(State(state): State<Arc<StsState>>, headers: HeaderMap, body: Bytes) -> Response {
    let fault = state.config().faults.pop_front();
    let (audience, outcome) = match fault {
        Some(fault) => (None, Err(fault)),
        None => match parse_request(&headers, &body) {
            Ok(request) => {
                let audience = request.audience.clone();
                (audience, exchange(&state, request).await)
            }
            Err(error) => (None, Err(error)),
        },
    };
    state.config().exchanges.push(StsExchange {
        audience,
        outcome: match &outcome {
            Ok((principal, _)) => Ok(principal.member()),
            Err(error) => Err(error.error.clone()),
        },
    });
    match outcome {
        Ok((_, body)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            body.to_string(),
        )
            .into_response(),
        Err(error) => error.into_response(),
    }
}

fn parse_request(headers: &HeaderMap, body: &[u8]) -> Result<ExchangeRequest, OauthError> {
    if headers.contains_key(header::AUTHORIZATION) {
        return Err(OauthError::invalid_request(
            "The token exchange request must not carry an Authorization header.",
        ));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match media_type.as_str() {
        "application/x-www-form-urlencoded" => parse_form(body),
        "application/json" => parse_json(body),
        _ => Err(OauthError::invalid_request(&format!(
            "Unsupported Content-Type {content_type:?}: use application/x-www-form-urlencoded \
             or application/json."
        ))),
    }
}

fn parse_form(body: &[u8]) -> Result<ExchangeRequest, OauthError> {
    let mut params: HashMap<String, String> = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(body) {
        if params
            .insert(name.to_string(), value.into_owned())
            .is_some()
        {
            return Err(OauthError::invalid_request(&format!(
                "The parameter {name} is given more than once."
            )));
        }
    }
    Ok(ExchangeRequest {
        grant_type: params.remove("grant_type"),
        audience: params.remove("audience"),
        scope: params.remove("scope"),
        requested_token_type: params.remove("requested_token_type"),
        subject_token: params.remove("subject_token"),
        subject_token_type: params.remove("subject_token_type"),
        options: params.remove("options"),
    })
}

fn parse_json(body: &[u8]) -> Result<ExchangeRequest, OauthError> {
    let to_oauth = |e: GoogleError| OauthError::invalid_request(&e.message);
    let value = super::proto_json::parse_body(body).map_err(to_oauth)?;
    let fields = Fields::parse(
        &value,
        "",
        &[
            ("grantType", "grant_type"),
            ("audience", "audience"),
            ("scope", "scope"),
            ("requestedTokenType", "requested_token_type"),
            ("subjectToken", "subject_token"),
            ("subjectTokenType", "subject_token_type"),
            ("options", "options"),
        ],
    )
    .map_err(to_oauth)?;
    let get = |name: &str| -> Result<Option<String>, OauthError> {
        Ok(fields.string(name).map_err(to_oauth)?.map(str::to_owned))
    };
    Ok(ExchangeRequest {
        grant_type: get("grantType")?,
        audience: get("audience")?,
        scope: get("scope")?,
        requested_token_type: get("requestedTokenType")?,
        subject_token: get("subjectToken")?,
        subject_token_type: get("subjectTokenType")?,
        options: get("options")?,
    })
}

fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, OauthError> {
    match value.as_deref() {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(OauthError::invalid_request(&format!(
            "The \"{name}\" parameter is required."
        ))),
    }
}

/// Checks in this order: grant type, audience (format, then provider), token types,
/// scope, options, then the subject token and the provider's trust.
async fn exchange(
    state: &StsState,
    request: ExchangeRequest,
) -> Result<(Principal, Value), OauthError> {
    let grant_type = required(&request.grant_type, "grant_type")?;
    if grant_type != TOKEN_EXCHANGE {
        return Err(OauthError::new(
            400,
            "unsupported_grant_type",
            &format!("Unsupported grant_type {grant_type:?}: only {TOKEN_EXCHANGE} is supported."),
        ));
    }
    let audience = required(&request.audience, "audience")
        .map_err(|_| OauthError::invalid_request(BAD_AUDIENCE))?;
    if !is_provider_name(audience) {
        return Err(OauthError::invalid_request(BAD_AUDIENCE));
    }
    let provider = state
        .config()
        .providers
        .get(audience)
        .filter(|p| !p.disabled)
        .cloned()
        .ok_or_else(OauthError::invalid_target)?;
    let subject_token_type = required(&request.subject_token_type, "subject_token_type")?;
    if !JWT_TYPES.contains(&subject_token_type) {
        let description = if OTHER_SUBJECT_TYPES.contains(&subject_token_type) {
            format!(
                "The subject_token_type {subject_token_type} is not supported by an OIDC \
                 provider: use {} or {}.",
                JWT_TYPES[0], JWT_TYPES[1]
            )
        } else {
            format!("Invalid value for \"subject_token_type\": {subject_token_type:?}.")
        };
        return Err(OauthError::invalid_request(&description));
    }
    let requested = required(&request.requested_token_type, "requested_token_type")?;
    if requested != ACCESS_TOKEN_TYPE {
        return Err(OauthError::invalid_request(&format!(
            "Invalid value for \"requested_token_type\": {requested:?}; only \
             {ACCESS_TOKEN_TYPE} is supported."
        )));
    }
    let scope = required(&request.scope, "scope").map_err(|_| {
        OauthError::invalid_request(
            "A scope is required when exchanging an external credential for a Google access \
             token.",
        )
    })?;
    if let Some(options) = &request.options
        && !serde_json::from_str::<Value>(options).is_ok_and(|v| v.is_object())
    {
        return Err(OauthError::invalid_request(
            "Invalid value for \"options\": it must be a URL-encoded JSON object.",
        ));
    }
    let subject_token = required(&request.subject_token, "subject_token")?;
    let claims = verify_subject_token(state, &provider, subject_token).await?;
    check_audience(&provider, &claims)?;
    let subject = claims["sub"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| OauthError::invalid_grant("The ID Token has no sub claim."))?;
    if subject.len() > MAX_SUBJECT_BYTES {
        return Err(OauthError::invalid_grant(&format!(
            "The size of mapped attribute google.subject exceeds the {MAX_SUBJECT_BYTES} bytes \
             limit. Either modify your attribute mapping or the incoming assertion to produce a \
             mapped attribute that is less than {MAX_SUBJECT_BYTES} bytes."
        )));
    }
    if let Some(condition) = &provider.attribute_condition
        && !condition.evaluate(&claims)
    {
        return Err(OauthError::invalid_grant(CONDITION_REJECTED));
    }
    let principal = provider.principal(subject);
    let scopes: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
    let lifetime = crate::conditions::lifetime(LIFETIME);
    let access_token = state
        .tokens
        .issue(principal.clone(), &scopes, lifetime, TokenSource::Sts);
    Ok((
        principal,
        json!({
            "access_token": access_token,
            "issued_token_type": ACCESS_TOKEN_TYPE,
            "token_type": "Bearer",
            "expires_in": lifetime.as_secs(),
        }),
    ))
}

/// `//iam.googleapis.com/projects/{NUMBER}/locations/global/workloadIdentityPools/{POOL}/
/// providers/{PROVIDER}` with a numeric project and non-empty ids.
fn is_provider_name(audience: &str) -> bool {
    let Some(rest) = audience.strip_prefix("//iam.googleapis.com/projects/") else {
        return false;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let id = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    matches!(
        parts.as_slice(),
        [number, "locations", "global", "workloadIdentityPools", pool, "providers", provider]
            if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) && id(pool) && id(provider)
    )
}

/// The subject token's claims after checking its header, `iss`, signature and times.
async fn verify_subject_token(
    state: &StsState,
    provider: &WorkloadIdentityProvider,
    token: &str,
) -> Result<Value, OauthError> {
    let header = jsonwebtoken::decode_header(token)
        .map_err(|_| OauthError::invalid_grant("Unable to parse the ID Token."))?;
    if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
        return Err(OauthError::invalid_grant(&format!(
            "The ID Token's signing algorithm {:?} is not supported: use RS256 or ES256.",
            header.alg
        )));
    }
    let kid = header
        .kid
        .ok_or_else(|| OauthError::invalid_grant("The ID Token's header has no kid."))?;
    let unverified: Value = jsonwebtoken::dangerous::insecure_decode_claims(token)
        .map_err(|_| OauthError::invalid_grant("Unable to parse the ID Token."))?;
    let issuer = unverified["iss"].as_str().unwrap_or_default();
    if issuer != provider.issuer_uri {
        return Err(OauthError::invalid_grant(&format!(
            "The issuer in ID Token [{issuer}] does not match the expected issuer [{}].",
            provider.issuer_uri
        )));
    }
    let jwks = fetch_jwks(state, &provider.issuer_uri).await?;
    let jwk = jwks.find(&kid).ok_or_else(|| {
        OauthError::invalid_grant(&format!(
            "The ID Token's kid [{kid}] is not among the keys of the issuer [{}].",
            provider.issuer_uri
        ))
    })?;
    if let Some(declared) = jwk.common.key_algorithm
        && declared.to_string().parse::<Algorithm>().ok() != Some(header.alg)
    {
        return Err(OauthError::invalid_grant(&format!(
            "The ID Token's alg does not match the algorithm of key [{kid}]."
        )));
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|_| {
        OauthError::invalid_grant(&format!("The issuer's key [{kid}] cannot be used."))
    })?;
    let mut validation = Validation::new(header.alg);
    validation.leeway = 0;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.validate_aud = false; // Checked against the provider below.
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                OauthError::invalid_grant("Invalid ID Token signature.")
            }
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                OauthError::invalid_grant("The ID Token has expired.")
            }
            jsonwebtoken::errors::ErrorKind::ImmatureSignature => {
                OauthError::invalid_grant("The ID Token is not valid yet (nbf).")
            }
            other => OauthError::invalid_grant(&format!("The ID Token is invalid: {other:?}.")),
        })?
        .claims;
    let now = unix_now() as f64;
    let issued_at = claims["iat"]
        .as_f64()
        .ok_or_else(|| OauthError::invalid_grant("The ID Token has no iat claim."))?;
    let expires = claims["exp"].as_f64().unwrap_or_default();
    if expires <= now {
        return Err(OauthError::invalid_grant("The ID Token has expired."));
    }
    if issued_at > now {
        return Err(OauthError::invalid_grant(
            "The ID Token's iat claim is in the future.",
        ));
    }
    if expires - issued_at >= MAX_TOKEN_AGE as f64 {
        return Err(OauthError::invalid_grant(
            "The ID Token's lifetime (exp - iat) must be less than 48 hours.",
        ));
    }
    Ok(claims)
}

/// `{issuer}/.well-known/openid-configuration` → `jwks_uri` → the JWKS; the discovery
/// document must name the same issuer.
async fn fetch_jwks(state: &StsState, issuer: &str) -> Result<JwkSet, OauthError> {
    let unreachable = || {
        OauthError::invalid_grant(&format!(
            "Unable to retrieve the public keys of the issuer [{issuer}] through its OpenID \
             discovery document."
        ))
    };
    let discovery_url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let discovery: Value = get_json(&state.http, &discovery_url)
        .await
        .ok_or_else(unreachable)?;
    if discovery["issuer"].as_str() != Some(issuer) {
        return Err(OauthError::invalid_grant(&format!(
            "The OpenID discovery document of [{issuer}] names a different issuer."
        )));
    }
    let jwks_uri = discovery["jwks_uri"].as_str().ok_or_else(unreachable)?;
    get_json(&state.http, jwks_uri)
        .await
        .ok_or_else(unreachable)
}

async fn get_json<T: serde::de::DeserializeOwned>(http: &reqwest::Client, url: &str) -> Option<T> {
    let response = http.get(url).send().await.ok()?.error_for_status().ok()?;
    response.json().await.ok()
}

fn check_audience(provider: &WorkloadIdentityProvider, claims: &Value) -> Result<(), OauthError> {
    let audiences: Vec<&str> = match &claims["aud"] {
        Value::String(audience) => vec![audience.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let name = provider.name();
    let https_name = format!("https:{name}");
    let accepted = |audience: &str| {
        if provider.allowed_audiences.is_empty() {
            audience == name || audience == https_name
        } else {
            provider.allowed_audiences.iter().any(|a| a == audience)
        }
    };
    if audiences.iter().any(|a| accepted(a)) {
        return Ok(());
    }
    Err(OauthError::invalid_grant(&format!(
        "The audience in ID Token [{}] does not match the expected audience.",
        audiences.join(", ")
    )))
}
