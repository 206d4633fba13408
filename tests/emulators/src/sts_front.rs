//! A validating AWS STS front for `AssumeRoleWithWebIdentity`.
//!
//! moto's own `AssumeRoleWithWebIdentity` accepts any token for any role, so trust cannot
//! be tested against it. This front checks the web-identity token the way AWS does
//! (trusted issuer, signature against the issuer's JWKS found through OIDC discovery,
//! expiry, then the role's trust policy on `iss`, `aud` and `sub`) and only then obtains
//! credentials for the role: real moto credentials through moto's signed `AssumeRole`
//! ([`StsFront::start`]), or a session the emulated IAM issues itself, which the
//! in-process Secrets Manager accepts ([`StsFront::start_local`]). It answers in the AWS
//! Query protocol, so the AWS SDK (which sends this call unsigned) can talk to it.
//!
//! It also answers the signed `GetWebIdentityToken` of outbound identity federation
//! (see [`outbound`]).

mod outbound;

pub use outbound::{AWS_CLAIMS, TokenRequest};

use std::collections::{HashMap, HashSet, VecDeque};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_sdk_sts::config::http::HttpResponse;
use aws_sdk_sts::error::{DisplayErrorContext, SdkError};
use aws_sdk_sts::primitives::{DateTime, DateTimeFormat};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use url::form_urlencoded;

use crate::aws::iam::{Iam, Session};
use crate::server::Server;
use crate::sigv4;
use crate::xml;

const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
const API_VERSION: &str = "2011-06-15";
const OPERATION: &str = "AssumeRoleWithWebIdentity";
const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-amzn-requestid");
const NOT_AUTHORIZED: &str = "Not authorized to perform sts:AssumeRoleWithWebIdentity";
const IDP_UNREACHABLE: &str = "Couldn't retrieve verification key from your identity provider, \
                               please reference AssumeRoleWithWebIdentity documentation for \
                               requirements";

/// What a role's trust policy requires of a token (each compared exactly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleTrust {
    pub issuer: String,
    pub audience: String,
    pub subject: String,
}

/// An STS error as the Query protocol sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsError {
    /// HTTP status.
    pub status: u16,
    /// `Sender` (the caller's fault) or `Receiver` (the service's).
    pub error_type: ErrorType,
    /// The `<Code>`, for example `InvalidIdentityToken`.
    pub code: String,
    pub message: String,
}

/// The `<Type>` of a Query-protocol error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    Sender,
    Receiver,
}

impl StsError {
    /// An error of any shape: `Receiver` for 5xx statuses, `Sender` otherwise.
    pub fn new(status: u16, code: &str, message: &str) -> Self {
        let error_type = if status >= 500 {
            ErrorType::Receiver
        } else {
            ErrorType::Sender
        };
        Self {
            status,
            error_type,
            code: code.to_owned(),
            message: message.to_owned(),
        }
    }

    /// `Throttling` (400), which the SDKs retry.
    pub fn throttling() -> Self {
        Self::new(400, "Throttling", "Rate exceeded")
    }

    /// `IDPCommunicationError` (400): STS could not reach the identity provider.
    pub fn idp_communication_error() -> Self {
        Self::new(400, "IDPCommunicationError", IDP_UNREACHABLE)
    }

    /// `InternalFailure` (500).
    pub fn internal_failure() -> Self {
        Self::new(
            500,
            "InternalFailure",
            "The request processing has failed because of an unknown error, exception or failure.",
        )
    }

    /// `ServiceUnavailable` (503).
    pub fn service_unavailable() -> Self {
        Self::new(
            503,
            "ServiceUnavailable",
            "The request has failed due to a temporary failure of the server.",
        )
    }

    fn invalid_identity_token(message: &str) -> Self {
        Self::new(400, "InvalidIdentityToken", message)
    }

    fn access_denied() -> Self {
        Self::new(403, "AccessDenied", NOT_AUTHORIZED)
    }

    fn validation(violations: &[String]) -> Self {
        let count = violations.len();
        let plural = if count == 1 { "" } else { "s" };
        let message = format!(
            "{count} validation error{plural} detected: {}",
            violations.join("; ")
        );
        Self::new(400, "ValidationError", &message)
    }

    /// The `<ErrorResponse>` document.
    pub fn to_xml(&self, request_id: &str) -> String {
        let error_type = match self.error_type {
            ErrorType::Sender => "Sender",
            ErrorType::Receiver => "Receiver",
        };
        format!(
            "<ErrorResponse xmlns=\"{NAMESPACE}\">\n  <Error>\n    <Type>{error_type}</Type>\n    \
             <Code>{}</Code>\n    <Message>{}</Message>\n  </Error>\n  \
             <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n",
            xml::escape(&self.code),
            xml::escape(&self.message),
        )
    }
}

/// One `AssumeRoleWithWebIdentity` call the front answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// The `RoleArn` parameter, if the request had one.
    pub role_arn: Option<String>,
    /// The `RoleSessionName` parameter, if the request had one.
    pub role_session_name: Option<String>,
    /// `Ok(())`, or the error `<Code>` the front answered.
    pub outcome: Result<(), String>,
}

#[derive(Debug, Default)]
struct Config {
    issuers: HashSet<String>,
    roles: HashMap<String, RoleTrust>,
    faults: VecDeque<StsError>,
    exchanges: Vec<Exchange>,
    outbound: outbound::Outbound,
}

/// Where the front obtains the credentials of a role once it has verified a token.
#[derive(Debug)]
enum Upstream {
    /// moto's signed `AssumeRole`, with an IAM user's key.
    Moto(aws_sdk_sts::Client),
    /// A session the emulated IAM issues itself.
    Local,
}

#[derive(Debug)]
struct FrontState {
    upstream: Upstream,
    /// The keys `GetWebIdentityToken` accepts and, for a local front, the roles it
    /// issues sessions of.
    iam: Arc<Iam>,
    http: reqwest::Client,
    config: Mutex<Config>,
}

impl FrontState {
    fn config(&self) -> std::sync::MutexGuard<'_, Config> {
        self.config.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The STS front, listening on `127.0.0.1` on an ephemeral port.
#[derive(Debug)]
pub struct StsFront {
    state: Arc<FrontState>,
    server: Server,
}

impl StsFront {
    /// Starts a front that trusts nothing yet and obtains credentials through `upstream`,
    /// an STS client for moto signed with an IAM user's key (see `Moto::sts`).
    pub async fn start(upstream: aws_sdk_sts::Client) -> Self {
        Self::serve(Upstream::Moto(upstream), Arc::new(Iam::new())).await
    }

    /// Starts a front that trusts nothing yet and issues sessions of the roles of
    /// `iam` itself, which the other emulated AWS services then accept.
    pub async fn start_local(iam: Arc<Iam>) -> Self {
        Self::serve(Upstream::Local, iam).await
    }

    async fn serve(upstream: Upstream, iam: Arc<Iam>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("build an HTTP client");
        let state = Arc::new(FrontState {
            upstream,
            iam,
            http,
            config: Mutex::default(),
        });
        let router_state = Arc::clone(&state);
        let server = Server::start_api(|_| {
            Router::new()
                .route("/", post(handle))
                .with_state(router_state)
        })
        .await;
        Self { state, server }
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL_STS` or `endpoint_url`.
    pub fn endpoint(&self) -> String {
        self.server.base_url()
    }

    /// Registers an OpenID provider (like an IAM OIDC provider): tokens whose `iss` is
    /// exactly `issuer` are verified against its JWKS; any other issuer is refused.
    pub fn trust_issuer(&self, issuer: &str) {
        self.state.config().issuers.insert(issuer.to_owned());
    }

    /// Sets the trust policy of `role_arn`; a role with none refuses every token.
    pub fn trust_role(&self, role_arn: &str, trust: RoleTrust) {
        self.state.config().roles.insert(role_arn.to_owned(), trust);
    }

    /// Answers the next `count` calls with `error`, before looking at them.
    pub fn fail_next(&self, count: usize, error: StsError) {
        let mut config = self.state.config();
        config.faults.extend(std::iter::repeat_n(error, count));
    }

    /// Drops the faults `fail_next` queued that have not been served yet.
    pub fn clear_faults(&self) {
        self.state.config().faults.clear();
    }

    /// Every call answered so far, oldest first.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.state.config().exchanges.clone()
    }

    /// How many calls for `role_arn` got credentials.
    pub fn successes(&self, role_arn: &str) -> usize {
        self.count(role_arn, true)
    }

    /// How many calls for `role_arn` were refused (injected faults included).
    pub fn failures(&self, role_arn: &str) -> usize {
        self.count(role_arn, false)
    }

    fn count(&self, role_arn: &str, succeeded: bool) -> usize {
        self.state
            .config()
            .exchanges
            .iter()
            .filter(|e| e.role_arn.as_deref() == Some(role_arn) && e.outcome.is_ok() == succeeded)
            .count()
    }
}

/// The parameters of a valid request.
struct Request {
    role_arn: String,
    role_session_name: String,
    token: String,
    duration_seconds: Option<i32>,
    policy: Option<String>,
}

/// The claims of a token that passed verification.
struct VerifiedToken {
    issuer: String,
    subject: String,
    audiences: Vec<String>,
}

async fn handle(
    State(state): State<Arc<FrontState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let params: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    if params.get("Action").map(String::as_str) == Some(outbound::OPERATION) {
        let request = sigv4::Request {
            method: method.as_str(),
            path: uri.path(),
            query: uri.query().unwrap_or_default(),
            headers: &headers,
            body: &body,
        };
        let outcome = outbound::answer(&state, &request, &params, &request_id);
        return respond(outcome, &request_id);
    }
    let outcome = exchange(&state, &params, &request_id).await;
    state.config().exchanges.push(Exchange {
        role_arn: params.get("RoleArn").cloned(),
        role_session_name: params.get("RoleSessionName").cloned(),
        outcome: outcome.as_ref().map(|_| ()).map_err(|e| e.code.clone()),
    });
    respond(outcome, &request_id)
}

/// The Query-protocol answer: the document, or the error's `<ErrorResponse>`.
fn respond(outcome: Result<String, StsError>, request_id: &str) -> Response {
    let (status, body) = match outcome {
        Ok(body) => (StatusCode::OK, body),
        Err(error) => (
            StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            error.to_xml(request_id),
        ),
    };
    (
        status,
        [
            (header::CONTENT_TYPE, "text/xml".to_owned()),
            (REQUEST_ID_HEADER, request_id.to_owned()),
        ],
        body,
    )
        .into_response()
}

/// The whole exchange, in AWS's order: operation, injected faults, parameters, token
/// (issuer, signature, expiry), trust policy, then credentials from upstream.
async fn exchange(
    state: &FrontState,
    params: &HashMap<String, String>,
    request_id: &str,
) -> Result<String, StsError> {
    check_operation(params, OPERATION)?;
    if let Some(fault) = state.config().faults.pop_front() {
        return Err(fault);
    }
    let request = parse_request(params)?;
    let token = verify_token(state, &request.token).await?;
    let audience = check_trust(state, &request.role_arn, &token)?;
    let issued = match &state.upstream {
        Upstream::Moto(client) => {
            let assumed = client
                .assume_role()
                .role_arn(&request.role_arn)
                .role_session_name(&request.role_session_name)
                .set_duration_seconds(request.duration_seconds)
                .set_policy(request.policy)
                .send()
                .await
                .map_err(upstream_error)?;
            Issued::from_moto(&assumed)
        }
        Upstream::Local => {
            let duration = request.duration_seconds.map_or(3600, |s| s.unsigned_abs());
            let session = state
                .iam
                .issue_session(
                    &request.role_arn,
                    &request.role_session_name,
                    Duration::from_secs(u64::from(duration)),
                )
                .ok_or_else(StsError::access_denied)?;
            Issued::from_session(&session)
        }
    };
    Ok(success_xml(&issued, &token, &audience, request_id))
}

/// moto's refusal (for example `AccessDenied` when the role's trust policy does not name
/// the upstream user) passed on with its status, code and message. moto words it as
/// `<ErrorResponse><Errors><Error>…`, which the SDK cannot read, so the raw body is used.
fn upstream_error<E>(error: SdkError<E, HttpResponse>) -> StsError
where
    E: std::error::Error + 'static,
{
    let Some(response) = error.raw_response() else {
        let message = format!(
            "upstream AssumeRole failed: {}",
            DisplayErrorContext(&error)
        );
        return StsError::new(500, "InternalFailure", &message);
    };
    let body = String::from_utf8_lossy(response.body().bytes().unwrap_or_default());
    let code = xml::element_text(&body, "Code").unwrap_or_else(|| "InternalFailure".to_owned());
    let message = xml::element_text(&body, "Message").unwrap_or_else(|| body.clone().into_owned());
    StsError::new(
        response.status().as_u16(),
        &code,
        &format!("upstream AssumeRole failed: {message}"),
    )
}

fn check_operation(params: &HashMap<String, String>, operation: &str) -> Result<(), StsError> {
    let Some(action) = params.get("Action") else {
        return Err(StsError::new(400, "MissingAction", "Missing Action"));
    };
    let Some(version) = params.get("Version") else {
        let message = "The request must contain the parameter Version";
        return Err(StsError::new(400, "MissingParameter", message));
    };
    if action != operation || version != API_VERSION {
        let message = format!("Could not find operation {action} for version {version}");
        return Err(StsError::new(400, "InvalidAction", &message));
    }
    Ok(())
}

/// Checks the parameters against the STS model's constraints, reporting every violation
/// in one `ValidationError` as AWS does.
fn parse_request(params: &HashMap<String, String>) -> Result<Request, StsError> {
    let mut violations = Vec::new();
    let mut required = |name: &str, member: &str, min: usize, max: usize| {
        let Some(value) = params.get(name) else {
            violations.push(format!(
                "Value null at '{member}' failed to satisfy constraint: Member must not be null"
            ));
            return String::new();
        };
        let length = value.chars().count();
        if length < min {
            violations.push(format!(
                "Value at '{member}' failed to satisfy constraint: Member must have length \
                 greater than or equal to {min}"
            ));
        } else if length > max {
            violations.push(format!(
                "Value at '{member}' failed to satisfy constraint: Member must have length \
                 less than or equal to {max}"
            ));
        }
        value.clone()
    };
    let role_arn = required("RoleArn", "roleArn", 20, 2048);
    let role_session_name = required("RoleSessionName", "roleSessionName", 2, 64);
    let token = required("WebIdentityToken", "webIdentityToken", 4, 20_000);
    if !role_session_name.chars().all(is_session_name_char) {
        violations.push(format!(
            "Value '{role_session_name}' at 'roleSessionName' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: [\\w+=,.@-]*"
        ));
    }
    let duration_seconds = duration_seconds(params, 900..=43_200, &mut violations);
    if !violations.is_empty() {
        return Err(StsError::validation(&violations));
    }
    Ok(Request {
        role_arn,
        role_session_name,
        token,
        duration_seconds,
        policy: params.get("Policy").cloned(),
    })
}

/// `DurationSeconds`, when given, within the action's `range` (else a violation).
fn duration_seconds(
    params: &HashMap<String, String>,
    range: RangeInclusive<i32>,
    violations: &mut Vec<String>,
) -> Option<i32> {
    match params.get("DurationSeconds").map(|d| d.parse::<i32>()) {
        None => None,
        Some(Ok(seconds)) if range.contains(&seconds) => Some(seconds),
        Some(Ok(seconds)) => {
            violations.push(format!(
                "Value '{seconds}' at 'durationSeconds' failed to satisfy constraint: Member \
                 must have value between {} and {}",
                range.start(),
                range.end()
            ));
            None
        }
        Some(Err(_)) => {
            violations.push(
                "Value at 'durationSeconds' failed to satisfy constraint: Member must be an \
                 integer"
                    .to_owned(),
            );
            None
        }
    }
}

/// `[\w+=,.@-]`, where `\w` is ASCII letters, digits and `_`.
fn is_session_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

async fn verify_token(state: &FrontState, token: &str) -> Result<VerifiedToken, StsError> {
    let malformed =
        || StsError::invalid_identity_token("The ID Token provided is not a valid JWT.");
    // `alg: none` (or any name jsonwebtoken does not know) fails here.
    let header = jsonwebtoken::decode_header(token).map_err(|_| malformed())?;
    if !matches!(
        header.alg,
        Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::ES256
            | Algorithm::ES384
    ) {
        let message = format!("Unsupported token signing algorithm {:?}", header.alg);
        return Err(StsError::invalid_identity_token(&message));
    }
    let unverified: Value =
        jsonwebtoken::dangerous::insecure_decode_claims(token).map_err(|_| malformed())?;
    let issuer = unverified["iss"]
        .as_str()
        .ok_or_else(|| StsError::invalid_identity_token("The token has no iss claim."))?
        .to_owned();
    if !state.config().issuers.contains(&issuer) {
        let message = format!("No OpenIDConnect provider found in your account for {issuer}");
        return Err(StsError::invalid_identity_token(&message));
    }
    let jwks = fetch_jwks(state, &issuer).await?;
    let kid = header
        .kid
        .ok_or_else(|| StsError::invalid_identity_token("The token header has no kid."))?;
    let jwk = jwks.find(&kid).ok_or_else(|| {
        let message = format!("No key with kid {kid} in the identity provider's JWKS.");
        StsError::invalid_identity_token(&message)
    })?;
    let declared = jwk.common.key_algorithm;
    if declared.is_some_and(|a| a.to_string().parse::<Algorithm>().ok() != Some(header.alg)) {
        let message = format!("The token's alg does not match key {kid}.");
        return Err(StsError::invalid_identity_token(&message));
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|_| StsError::idp_communication_error())?;
    let mut validation = Validation::new(header.alg);
    validation.leeway = 0;
    validation.validate_aud = false; // The trust policy decides about the audience.
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    let data =
        jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => {
                let exp = unverified["exp"].as_i64().unwrap_or_default();
                let message = format!(
                    "Token expired: current date/time {} must be before the expiration \
                     date/time {}",
                    format_time(DateTime::from(std::time::SystemTime::now())),
                    format_time(DateTime::from_secs(exp)),
                );
                StsError::new(400, "ExpiredTokenException", &message)
            }
            ErrorKind::InvalidSignature => {
                StsError::invalid_identity_token("The token's signature is invalid.")
            }
            other => {
                let message = format!("The token is not valid: {other:?}");
                StsError::invalid_identity_token(&message)
            }
        })?;
    let claims = data.claims;
    let subject = claims["sub"]
        .as_str()
        .ok_or_else(|| StsError::invalid_identity_token("The sub claim is not a string."))?
        .to_owned();
    let audiences = match &claims["aud"] {
        Value::String(audience) => vec![audience.clone()],
        Value::Array(audiences) => audiences
            .iter()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect(),
        _ => {
            return Err(StsError::invalid_identity_token(
                "The aud claim is invalid.",
            ));
        }
    };
    Ok(VerifiedToken {
        issuer,
        subject,
        audiences,
    })
}

/// The issuer's JWKS through `{iss}/.well-known/openid-configuration` -> `jwks_uri`.
async fn fetch_jwks(state: &FrontState, issuer: &str) -> Result<JwkSet, StsError> {
    let discovery_url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let discovery: Value = get_json(&state.http, &discovery_url).await?;
    let jwks_uri = discovery["jwks_uri"]
        .as_str()
        .ok_or_else(StsError::idp_communication_error)?;
    get_json(&state.http, jwks_uri).await
}

async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
) -> Result<T, StsError> {
    let response = http
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|_| StsError::idp_communication_error())?;
    response
        .json()
        .await
        .map_err(|_| StsError::idp_communication_error())
}

/// The role's trust policy against the verified token; the matching audience on success.
fn check_trust(
    state: &FrontState,
    role_arn: &str,
    token: &VerifiedToken,
) -> Result<String, StsError> {
    let config = state.config();
    let trust = config
        .roles
        .get(role_arn)
        .ok_or_else(StsError::access_denied)?;
    let trusted = trust.issuer == token.issuer
        && trust.subject == token.subject
        && token.audiences.contains(&trust.audience);
    if trusted {
        Ok(trust.audience.clone())
    } else {
        Err(StsError::access_denied())
    }
}

/// The credentials of a role session, from wherever the front obtained them.
struct Issued {
    arn: String,
    assumed_role_id: String,
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
    expiration: DateTime,
}

impl Issued {
    fn from_moto(assumed: &aws_sdk_sts::operation::assume_role::AssumeRoleOutput) -> Self {
        let credentials = assumed
            .credentials
            .as_ref()
            .expect("moto's AssumeRole answers credentials");
        let user = assumed
            .assumed_role_user
            .as_ref()
            .expect("moto's AssumeRole answers the assumed role user");
        Issued {
            arn: user.arn.clone(),
            assumed_role_id: user.assumed_role_id.clone(),
            access_key_id: credentials.access_key_id.clone(),
            secret_access_key: credentials.secret_access_key.clone(),
            session_token: credentials.session_token.clone(),
            expiration: credentials.expiration,
        }
    }

    fn from_session(session: &Session) -> Self {
        let c = &session.credentials;
        Issued {
            arn: session.arn.clone(),
            assumed_role_id: session.assumed_role_id.clone(),
            access_key_id: c.access_key_id().to_owned(),
            secret_access_key: c.secret_access_key().to_owned(),
            session_token: c.session_token().unwrap_or_default().to_owned(),
            expiration: c.expiry().map_or(DateTime::from_secs(0), DateTime::from),
        }
    }
}

fn success_xml(issued: &Issued, token: &VerifiedToken, audience: &str, request_id: &str) -> String {
    let e = xml::escape;
    format!(
        "<AssumeRoleWithWebIdentityResponse xmlns=\"{NAMESPACE}\">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>{subject}</SubjectFromWebIdentityToken>
    <Audience>{audience}</Audience>
    <AssumedRoleUser>
      <Arn>{arn}</Arn>
      <AssumedRoleId>{role_id}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>{session_token}</SessionToken>
      <SecretAccessKey>{secret}</SecretAccessKey>
      <Expiration>{expiration}</Expiration>
      <AccessKeyId>{access_key}</AccessKeyId>
    </Credentials>
    <Provider>{provider}</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata>
    <RequestId>{request_id}</RequestId>
  </ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>
",
        subject = e(&token.subject),
        audience = e(audience),
        arn = e(&issued.arn),
        role_id = e(&issued.assumed_role_id),
        session_token = e(&issued.session_token),
        secret = e(&issued.secret_access_key),
        expiration = format_time(issued.expiration),
        access_key = e(&issued.access_key_id),
        provider = e(&token.issuer),
    )
}

/// ISO 8601 in UTC to the second, as STS writes timestamps (`2014-10-24T23:00:23Z`).
fn format_time(time: DateTime) -> String {
    DateTime::from_secs(time.secs())
        .fmt(DateTimeFormat::DateTime)
        .expect("a timestamp in range formats")
}
